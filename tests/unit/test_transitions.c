/*
 * Unit tests: transitions.h on its own, with a made-up clock: a first result,
 * one line per change with the time in the old state, the flapping limit and
 * its summary at the window's end, and the quiet spell ending once settled.
 */
#include "log.h"
#include "testing.h"
#include "timer.h"
#include "transitions.h"

static struct transitions t;
static char line[512];

static int
note(enum healthd_status st, const char *msg, int64_t now)
{
	line[0] = '\0';
	return transitions_note(&t, "db", st, msg, now, false, NULL, line, sizeof(line));
}

DEF_TEST(first_result_logs_only_if_not_ok)
{
	t = (struct transitions){0};
	EXPECT_EQ_INT(0, note(HEALTHD_OK, "fine", 1000));
	EXPECT_EQ_STR("", line);
	EXPECT_EQ_INT(0, note(HEALTHD_OK, "fine", 2000)); /* no change, no line */

	t = (struct transitions){0};
	EXPECT_EQ_INT(LOG_WARNING, note(HEALTHD_CRITICAL, "connection refused", 1000));
	EXPECT_EQ_STR("check db: CRITICAL at its first result: connection refused", line);
	return 0;
}

DEF_TEST(a_change_names_both_states_and_the_time_in_the_old)
{
	int64_t now = 5000;

	t = (struct transitions){0};
	note(HEALTHD_OK, "fine", now);
	now += (3 * 3600 + 12 * 60) * 1000LL;
	EXPECT_EQ_INT(LOG_WARNING, note(HEALTHD_CRITICAL, "connection refused", now));
	EXPECT_EQ_STR("check db: OK -> CRITICAL after 3h12m in OK: connection refused", line);
	EXPECT_EQ_INT(0, note(HEALTHD_CRITICAL, "connection refused", now + 10));
	EXPECT_EQ_INT(LOG_INFO, note(HEALTHD_OK, "", now + 45000));
	EXPECT_EQ_STR("check db: CRITICAL -> OK after 45s in CRITICAL: no message", line);
	EXPECT_EQ_INT(LOG_WARNING, note(HEALTHD_WARNING, "slow", now + 47500));
	EXPECT_EQ_STR("check db: OK -> WARNING after 2.5s in OK: slow", line);
	EXPECT_EQ_INT(TIMER_NONE, transitions_due(&t));
	return 0;
}

DEF_TEST(flapping_is_summarised_once_per_window)
{
	int64_t now = 1000, start;
	int logged = 0;

	t = (struct transitions){0};
	note(HEALTHD_OK, "up", now);
	start = now + 100;
	/* 14 changes, 1 s apart: the first TRANSITIONS_MAX_LINES are logged */
	for (int i = 1; i <= 14; i++) {
		now = start + (i - 1) * 1000;
		if (note(i % 2 ? HEALTHD_CRITICAL : HEALTHD_OK, "x", now) != 0)
			logged++;
		if (i == TRANSITIONS_MAX_LINES)
			EXPECT_EQ_STR("check db: OK -> CRITICAL after 1.0s in OK: x (flapping: 5 state "
			              "changes within 60 s; further ones are summarised)", line);
	}
	EXPECT_EQ_INT(TRANSITIONS_MAX_LINES, logged);
	EXPECT_EQ_INT(start + TRANSITIONS_WINDOW_MS, transitions_due(&t));
	EXPECT_EQ_INT(0, transitions_tick(&t, "db", start + TRANSITIONS_WINDOW_MS - 1, line,
	                                  sizeof(line)));
	/* the window ends: one summary, and the next window is quiet too */
	now = start + TRANSITIONS_WINDOW_MS;
	EXPECT_EQ_INT(LOG_WARNING, transitions_tick(&t, "db", now, line, sizeof(line)));
	EXPECT_EQ_STR("check db: 14 state changes in the last 60 s, now OK for 47s", line);
	EXPECT_EQ_INT(0, note(HEALTHD_CRITICAL, "x", now + 10));
	EXPECT_EQ_INT(now + TRANSITIONS_WINDOW_MS, transitions_due(&t));
	now += TRANSITIONS_WINDOW_MS;
	EXPECT_EQ_INT(LOG_WARNING, transitions_tick(&t, "db", now, line, sizeof(line)));
	EXPECT_EQ_STR("check db: 1 state changes in the last 60 s, now CRITICAL for 59s", line);
	/* a window without a change: settled, silently; lines come again */
	now += TRANSITIONS_WINDOW_MS;
	EXPECT_EQ_INT(0, transitions_tick(&t, "db", now, line, sizeof(line)));
	EXPECT_EQ_INT(TIMER_NONE, transitions_due(&t));
	EXPECT_EQ_INT(LOG_INFO, note(HEALTHD_OK, "up", now + 5));
	EXPECT_EQ_STR("check db: CRITICAL -> OK after 1m59s in CRITICAL: up", line);
	return 0;
}

DEF_TEST(at_the_limit_without_more_the_quiet_spell_ends_silently)
{
	int64_t now = 0;

	t = (struct transitions){0};
	note(HEALTHD_OK, "up", now);
	for (int i = 1; i <= TRANSITIONS_MAX_LINES; i++)
		EXPECT_EQ_INT(i % 2 ? LOG_WARNING : LOG_INFO,
		              note(i % 2 ? HEALTHD_UNKNOWN : HEALTHD_OK, "x", now += 10));
	EXPECT_EQ_INT(0, transitions_tick(&t, "db", transitions_due(&t), line, sizeof(line)));
	EXPECT_EQ_INT(TIMER_NONE, transitions_due(&t));
	return 0;
}

DEF_TEST(changes_spread_out_never_reach_the_limit)
{
	int64_t now = 0;

	t = (struct transitions){0};
	note(HEALTHD_OK, "up", now);
	for (int i = 1; i <= 3 * TRANSITIONS_MAX_LINES; i++) {
		now += TRANSITIONS_WINDOW_MS / (TRANSITIONS_MAX_LINES - 1);
		EXPECT_TRUE(note(i % 2 ? HEALTHD_CRITICAL : HEALTHD_OK, "x", now) != 0);
	}
	return 0;
}

DEF_TEST(spans)
{
	char buf[32];
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
		{-5, "0ms"}, {850, "850ms"}, {4249, "4.2s"}, {45000, "45s"}, {125000, "2m05s"},
		{11520000, "3h12m"}, {187200000, "2d04h"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		transitions_span(cases[i].ms, buf, sizeof(buf));
		EXPECT_EQ_STR(cases[i].text, buf);
	}
	return 0;
}

/* The history's flap detection: the change it is first seen with is logged
 * saying so, and later ones wait for the window's summary. */
DEF_TEST(history_flapping_summarises_at_once)
{
	t = (struct transitions){0};
	note(HEALTHD_OK, "up", 1000);
	EXPECT_EQ_INT(LOG_WARNING, transitions_note(&t, "db", HEALTHD_CRITICAL, "down", 2000,
	                                            true, NULL, line, sizeof(line)));
	EXPECT_EQ_STR("check db: OK -> CRITICAL after 1.0s in OK: down (flapping; further ones "
	              "are summarised)", line);
	line[0] = '\0';
	EXPECT_EQ_INT(0, transitions_note(&t, "db", HEALTHD_OK, "up", 3000, true, NULL, line,
	                                  sizeof(line)));
	EXPECT_EQ_STR("", line);
	EXPECT_EQ_INT(1000 + TRANSITIONS_WINDOW_MS + 1000, transitions_due(&t));
	EXPECT_EQ_INT(LOG_WARNING, transitions_tick(&t, "db", 2000 + TRANSITIONS_WINDOW_MS, line,
	                                            sizeof(line)));
	EXPECT_CONTAINS("check db: 2 state changes in the last 60 s, now OK", line);
	return 0;
}

/* A failure while a dependency fails says so, at info; recovery never does. */
DEF_TEST(suppressed_by_a_dependency)
{
	t = (struct transitions){0};
	EXPECT_EQ_INT(LOG_INFO, transitions_note(&t, "orders", HEALTHD_CRITICAL, "502", 1000,
	                                         false, "gateway", line, sizeof(line)));
	EXPECT_EQ_STR("check orders: CRITICAL at its first result: 502 (suppressed by gateway)",
	              line);
	EXPECT_EQ_INT(LOG_INFO, transitions_note(&t, "orders", HEALTHD_OK, "200", 5000, false,
	                                         "gateway", line, sizeof(line)));
	EXPECT_EQ_STR("check orders: CRITICAL -> OK after 4.0s in CRITICAL: 200", line);
	EXPECT_EQ_INT(LOG_INFO, transitions_note(&t, "orders", HEALTHD_WARNING, "slow", 6000,
	                                         false, "gateway", line, sizeof(line)));
	EXPECT_EQ_STR("check orders: OK -> WARNING after 1.0s in OK: slow (suppressed by gateway)",
	              line);
	EXPECT_EQ_INT(LOG_WARNING, transitions_note(&t, "orders", HEALTHD_CRITICAL, "500", 7000,
	                                            false, NULL, line, sizeof(line)));
	EXPECT_EQ_STR("check orders: WARNING -> CRITICAL after 1.0s in WARNING: 500", line);
	return 0;
}

int
main(void)
{
	RUN_TEST(first_result_logs_only_if_not_ok);
	RUN_TEST(a_change_names_both_states_and_the_time_in_the_old);
	RUN_TEST(flapping_is_summarised_once_per_window);
	RUN_TEST(at_the_limit_without_more_the_quiet_spell_ends_silently);
	RUN_TEST(changes_spread_out_never_reach_the_limit);
	RUN_TEST(spans);
	RUN_TEST(history_flapping_summarises_at_once);
	RUN_TEST(suppressed_by_a_dependency);
	END_TEST;
}
