/* Unit tests: history rings, transitions, availability, flap detection, and
 * the P/history JSON body. */
#include <malloc.h>
#include <pthread.h>

#include <json-c/json.h>

#include "history.h"
#include "testing.h"

#define T0  1700000000000LL /* 2023-11-14T22:13:20Z */
#define MIN (60 * 1000LL)

#define EXPECT_NEAR(expect, actual)                                                        \
	do {                                                                               \
		double e__ = (expect), a__ = (actual);                                     \
		check_count__++;                                                           \
		if (e__ - a__ > 1e-6 || a__ - e__ > 1e-6)                                                \
			FAIL__("%s: expected %.6f, got %.6f", #actual, e__, a__);          \
	} while (0)

static const char *const names[] = {"db", "api"};
static struct history_snapshot snap; /* large: not on the stack */

static struct history *
make(void)
{
	struct history *h = history_new(names, 2);

	if (h == NULL)
		abort();
	return h;
}

DEF_TEST(ring_evicts_oldest_and_allocates_nothing)
{
	struct history *h = make();
	size_t before = mallinfo2().uordblks;

	for (int k = 0; k < 1000; k++)
		history_record(h, 0, T0 + k, 0, (uint32_t)k, "ok", NULL);
	EXPECT_EQ_INT(before, mallinfo2().uordblks); /* the budget is fixed at history_new */
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(HISTORY_RESULTS, snap.nresults);
	EXPECT_EQ_INT(T0 + 1000 - HISTORY_RESULTS, snap.results[0].time_ms);
	EXPECT_EQ_INT(T0 + 999, snap.results[HISTORY_RESULTS - 1].time_ms);
	EXPECT_EQ_INT(999, snap.results[HISTORY_RESULTS - 1].duration_ms);
	EXPECT_EQ_INT(1, snap.ntransitions);
	/* the other check saw nothing */
	history_snapshot(h, 1, &snap);
	EXPECT_EQ_INT(0, snap.nresults);
	EXPECT_EQ_STR("api", snap.name);
	EXPECT_EQ_INT(1, history_find(h, "api"));
	EXPECT_EQ_INT(-1, history_find(h, "nope"));
	EXPECT_EQ_INT(-1, history_record(h, 2, T0, 0, 0, "", NULL));
	EXPECT_EQ_INT(-1, history_record(h, 0, T0, 4, 0, "", NULL));
	history_free(h);
	return 0;
}

DEF_TEST(long_message_is_cut)
{
	struct history *h = make();
	char msg[500];

	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	history_record(h, 0, T0, 2, 5, msg, NULL);
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(HISTORY_RESULT_MSG - 1, strlen(snap.results[0].message));
	EXPECT_EQ_INT(HISTORY_MSG_SIZE - 1, strlen(snap.transitions[0].message));
	history_record(h, 0, T0 + 1, 2, 5, NULL, NULL);
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_STR("", snap.results[1].message);
	history_free(h);
	return 0;
}

DEF_TEST(transitions_only_on_change)
{
	struct history *h = make();
	struct history_transition t;
	static const int st[] = {0, 0, 1, 1, 0, 0, 2};
	static const int changed[] = {1, 0, 1, 0, 1, 0, 1};

	for (int k = 0; k < 7; k++)
		EXPECT_EQ_INT(changed[k], history_record(h, 0, T0 + k * MIN, st[k], 1, "m", &t));
	EXPECT_EQ_INT(0, t.from);
	EXPECT_EQ_INT(2, t.to);
	EXPECT_EQ_INT(T0 + 6 * MIN, t.time_ms);
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(4, snap.ntransitions);
	EXPECT_EQ_INT(HISTORY_NONE, snap.transitions[0].from);
	EXPECT_EQ_INT(0, snap.transitions[0].to);
	EXPECT_EQ_INT(0, snap.transitions[1].from);
	EXPECT_EQ_INT(1, snap.transitions[1].to);
	EXPECT_EQ_INT(T0 + 2 * MIN, snap.transitions[1].time_ms);
	EXPECT_EQ_INT(T0, snap.known_since_ms);
	history_free(h);
	return 0;
}

/*
 * OK at T0, CRITICAL at T0+30m, OK again at T0+45m.
 * now = T0+60m: 1 h = [T0, T0+60m] all known, 45 of 60 min passing = 0.75.
 * now = T0+120m: 1 h = [T0+60m, T0+120m] all OK = 1; 24 h knows only the
 * 120 min since the first result, 105 of them passing = 0.875 (not 105/1440).
 */
DEF_TEST(availability_on_a_crafted_timeline)
{
	struct history *h = make();

	history_snapshot(h, 0, &snap);
	EXPECT_NEAR(-1, history_availability(&snap, T0, HISTORY_1H)); /* nothing known */
	history_record(h, 0, T0, 0, 1, "up", NULL);
	history_record(h, 0, T0 + 10 * MIN, 0, 1, "up", NULL);
	history_record(h, 0, T0 + 30 * MIN, 2, 1, "down", NULL);
	history_record(h, 0, T0 + 45 * MIN, 1, 1, "slow", NULL); /* WARNING passes */
	history_snapshot(h, 0, &snap);
	EXPECT_NEAR(0.75, history_availability(&snap, T0 + 60 * MIN, HISTORY_1H));
	EXPECT_NEAR(1.0, history_availability(&snap, T0 + 120 * MIN, HISTORY_1H));
	EXPECT_NEAR(0.875, history_availability(&snap, T0 + 120 * MIN, HISTORY_24H));
	EXPECT_NEAR(0.875, history_availability(&snap, T0 + 120 * MIN, HISTORY_7D));
	/* 40 min window ending in the outage's middle: [T0-5m, T0+35m] knows 35 min, 5 down */
	EXPECT_NEAR(30.0 / 35.0, history_availability(&snap, T0 + 35 * MIN, 40 * MIN));
	history_free(h);
	return 0;
}

/* With the ring full, the evicted transition's time starts the known time,
 * and the state until the oldest kept transition is that transition's from. */
DEF_TEST(availability_after_transitions_evicted)
{
	struct history *h = make();
	int n = HISTORY_TRANSITIONS + 2; /* 34 results, each a change: 0,2,0,2,... */

	for (int k = 0; k < n; k++)
		history_record(h, 0, T0 + k * MIN, k % 2 ? 2 : 0, 1, NULL, NULL);
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(HISTORY_TRANSITIONS, snap.ntransitions);
	EXPECT_EQ_INT(T0 + 1 * MIN, snap.known_since_ms); /* the 2nd was evicted last */
	EXPECT_EQ_INT(T0 + 2 * MIN, snap.transitions[0].time_ms);
	/* known [T0+1m, T0+34m]: 33 minutes, OK in the minutes starting 2,4,..,32 */
	EXPECT_NEAR(16.0 / 33.0, history_availability(&snap, T0 + 34 * MIN, HISTORY_24H));
	history_free(h);
	return 0;
}

DEF_TEST(spans_clip_to_the_window)
{
	struct history *h = make();
	struct history_span sp[HISTORY_TRANSITIONS + 1];

	history_record(h, 0, T0, 0, 1, NULL, NULL);
	history_record(h, 0, T0 + 30 * MIN, 2, 1, NULL, NULL);
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(2, history_spans(&snap, T0 - 60 * MIN, T0 + 40 * MIN, sp, 33));
	EXPECT_EQ_INT(T0, sp[0].from_ms);
	EXPECT_EQ_INT(T0 + 30 * MIN, sp[0].to_ms);
	EXPECT_EQ_INT(0, sp[0].status);
	EXPECT_EQ_INT(T0 + 40 * MIN, sp[1].to_ms);
	EXPECT_EQ_INT(2, sp[1].status);
	EXPECT_EQ_INT(1, history_spans(&snap, T0 + 31 * MIN, T0 + 40 * MIN, sp, 33));
	history_free(h);
	return 0;
}

/*
 * Worked example. Weight of pair x (1 oldest .. 20 newest) = 0.75 +
 * (x - 1) * 0.5 / 19. Statuses 0 x16 then 2,0,2,0,2: changes at x = 16..20,
 * weights 1.144737 + 1.171053 + 1.197368 + 1.223684 + 1.25 = 5.986842, so
 * 5.986842 * 100 / 20 = 29.934211 %. One change at the oldest pair: 0.75 /
 * 20 = 3.75 %; at the newest: 1.25 / 20 = 6.25 %.
 */
DEF_TEST(flap_percent_worked_example)
{
	uint8_t st[21] = {0};

	st[16] = 2, st[18] = 2, st[20] = 2;
	EXPECT_NEAR(29.934211, history_flap_percent(st, 21));
	memset(st, 0, sizeof(st));
	st[0] = 1;
	EXPECT_NEAR(3.75, history_flap_percent(st, 21));
	memset(st, 0, sizeof(st));
	st[20] = 1;
	EXPECT_NEAR(6.25, history_flap_percent(st, 21));
	/* fewer than 21: the missing older ones count as unchanged */
	EXPECT_NEAR(6.25, history_flap_percent(st + 19, 2));
	EXPECT_NEAR(0, history_flap_percent(st, 1));
	EXPECT_NEAR(0, history_flap_percent(st, 0));
	return 0;
}

/*
 * Hysteresis at the defaults (start >= 30, stop < 20): the example above is
 * 29.93 % (not flapping); one more change (0) makes changes at x = 15..20:
 * 7.105263 / 20 = 35.526316 % (flapping). Each further OK moves the changes
 * one pair older (-0.789 %): after 8, 29.21 % < 30 but still flapping, until
 * the percent falls below 20.
 */
DEF_TEST(flapping_hysteresis)
{
	struct history *h = make();
	int64_t t = T0;
	int k;

	for (k = 0; k < 16; k++)
		history_record(h, 0, t++, 0, 1, NULL, NULL);
	for (k = 0; k < 5; k++)
		history_record(h, 0, t++, k % 2 ? 0 : 2, 1, NULL, NULL);
	history_snapshot(h, 0, &snap);
	EXPECT_NEAR(29.934211, snap.flap_percent);
	EXPECT_TRUE(!snap.flapping);
	history_record(h, 0, t++, 0, 1, NULL, NULL);
	history_snapshot(h, 0, &snap);
	EXPECT_NEAR(35.526316, snap.flap_percent);
	EXPECT_TRUE(snap.flapping);
	EXPECT_TRUE(history_flapping(h, 0));
	for (k = 0; k < 8; k++)
		history_record(h, 0, t++, 0, 1, NULL, NULL);
	history_snapshot(h, 0, &snap);
	EXPECT_NEAR(29.210526, snap.flap_percent);
	EXPECT_TRUE(snap.flapping); /* below high, above low: holds */
	for (k = 0; k < 30 && history_flapping(h, 0); k++) {
		history_snapshot(h, 0, &snap);
		EXPECT_TRUE(snap.flap_percent >= 20.0);
		history_record(h, 0, t++, 0, 1, NULL, NULL);
	}
	history_snapshot(h, 0, &snap);
	EXPECT_TRUE(!snap.flapping);
	EXPECT_TRUE(snap.flap_percent < 20.0);
	history_free(h);
	return 0;
}

DEF_TEST(flap_thresholds_configurable)
{
	struct history *h = make();
	uint8_t st[21] = {0};

	EXPECT_EQ_INT(-1, history_set_flap_thresholds(h, 50, 40));
	EXPECT_EQ_INT(-1, history_set_flap_thresholds(h, 10, 101));
	EXPECT_EQ_INT(0, history_set_flap_thresholds(h, 1, 5));
	st[20] = 2; /* 6.25 % >= 5 */
	for (int k = 0; k < 21; k++)
		history_record(h, 0, T0 + k, st[k], 1, NULL, NULL);
	EXPECT_TRUE(history_flapping(h, 0));
	history_free(h);
	return 0;
}

DEF_TEST(restore_keeps_order_and_ignores_old)
{
	struct history *h = make();
	struct history_result r = {.time_ms = T0, .status = 0, .duration_ms = 3};
	struct history_transition t = {.time_ms = T0, .from = HISTORY_NONE, .to = 0};

	EXPECT_EQ_INT(1, history_restore_transition(h, 0, &t));
	EXPECT_EQ_INT(1, history_restore_result(h, 0, &r));
	EXPECT_EQ_INT(0, history_restore_result(h, 0, &r)); /* not newer */
	t.to = 9;
	t.time_ms = T0 + 1;
	EXPECT_EQ_INT(0, history_restore_transition(h, 0, &t)); /* bad status */
	EXPECT_EQ_INT(0, history_restore_result(h, 7, &r));     /* no such check */
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(1, snap.nresults);
	EXPECT_EQ_INT(1, snap.ntransitions);
	EXPECT_EQ_INT(T0, snap.known_since_ms);
	/* the next live result in the same state is no transition */
	EXPECT_EQ_INT(0, history_record(h, 0, T0 + 5, 0, 1, NULL, NULL));
	history_free(h);
	return 0;
}

/* Changes a millisecond apart share a stamp: all of them come back from a
 * store, and a rotation's checkpoint that repeats them adds nothing. */
DEF_TEST(restore_keeps_changes_in_the_same_millisecond)
{
	struct history *h = make();
	static const struct history_transition t[] = {
		{.time_ms = T0, .from = HISTORY_NONE, .to = 0},
		{.time_ms = T0 + 1, .from = 0, .to = 2},
		{.time_ms = T0 + 1, .from = 2, .to = 0},
	};
	struct history_result r = {.time_ms = T0 + 1, .status = 2, .duration_ms = 1};

	for (size_t k = 0; k < 3; k++)
		EXPECT_EQ_INT(1, history_restore_transition(h, 0, &t[k]));
	for (size_t k = 0; k < 3; k++) /* the checkpoint */
		EXPECT_EQ_INT(0, history_restore_transition(h, 0, &t[k]));
	EXPECT_EQ_INT(1, history_restore_result(h, 0, &r));
	r.status = 0;
	EXPECT_EQ_INT(1, history_restore_result(h, 0, &r));
	EXPECT_EQ_INT(0, history_restore_result(h, 0, &r));
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(3, snap.ntransitions);
	EXPECT_EQ_INT(0, snap.transitions[2].to);
	EXPECT_EQ_INT(2, snap.nresults);
	history_free(h);
	return 0;
}

DEF_TEST(json_body)
{
	struct history *h = make();
	struct json_object *o, *v, *a;
	size_t len = 0;
	char *body;

	history_record(h, 0, T0, 0, 12, "fine", NULL);
	history_record(h, 0, T0 + 30 * MIN, 2, 2000, "timeout after 2000 ms", NULL);
	history_snapshot(h, 0, &snap);
	body = history_json(&snap, T0 + 60 * MIN, true, &len);
	EXPECT_TRUE(body != NULL && len == strlen(body) && body[len - 1] == '\n');
	o = json_tokener_parse(body);
	EXPECT_TRUE(o != NULL);
	EXPECT_TRUE(json_object_object_get_ex(o, "check", &v));
	EXPECT_EQ_STR("db", json_object_get_string(v));
	EXPECT_TRUE(json_object_object_get_ex(o, "transitions", &a));
	EXPECT_EQ_INT(2, json_object_array_length(a));
	v = json_object_array_get_idx(a, 1);
	EXPECT_EQ_STR("pass", json_object_get_string(json_object_object_get(v, "from")));
	EXPECT_EQ_STR("fail", json_object_get_string(json_object_object_get(v, "to")));
	EXPECT_EQ_STR("2023-11-14T22:43:20.000Z",
	              json_object_get_string(json_object_object_get(v, "time")));
	EXPECT_EQ_STR("timeout after 2000 ms",
	              json_object_get_string(json_object_object_get(v, "message")));
	EXPECT_TRUE(json_object_get_type(json_object_object_get(
	                    json_object_array_get_idx(a, 0), "from")) == json_type_null);
	EXPECT_TRUE(json_object_object_get_ex(o, "results", &a));
	EXPECT_EQ_INT(2, json_object_array_length(a));
	EXPECT_CONTAINS("\"availability\":{\"1h\":0.5,\"24h\":0.5,\"7d\":0.5}", body);
	EXPECT_CONTAINS("\"flapping\":false", body);
	json_object_put(o);
	free(body);
	/* without messages */
	body = history_json(&snap, T0 + 60 * MIN, false, &len);
	EXPECT_TRUE(body != NULL && strstr(body, "timeout") == NULL && strstr(body, "fine") == NULL);
	free(body);
	/* nothing known yet: availability null */
	history_snapshot(h, 1, &snap);
	body = history_json(&snap, T0, true, &len);
	EXPECT_CONTAINS("\"availability\":{\"1h\":null,\"24h\":null,\"7d\":null}", body);
	free(body);
	history_free(h);
	return 0;
}

/* Writers on their own check and on a shared one, a reader snapshotting the
 * shared one meanwhile: every snapshot's transitions chain (from = the
 * previous to), however the writers interleave. Run under TSan too. */
static struct history *shared_h;

static void *
writer(void *arg)
{
	size_t own = (size_t)(uintptr_t)arg;

	for (int k = 0; k < 2000; k++) {
		history_record(shared_h, own, T0 + k, 0, 1, "own", NULL);
		history_record(shared_h, 0, T0 + k, (int)own % 2 ? 2 : 0, 1, "shared", NULL);
	}
	return NULL;
}

DEF_TEST(concurrent_record_and_snapshot)
{
	static const char *const many[] = {"shared", "a", "b", "c"};
	static struct history_snapshot s2;
	pthread_t th[3];
	int broken = 0;

	shared_h = history_new(many, 4);
	for (size_t i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, writer, (void *)(uintptr_t)(i + 1));
	for (int r = 0; r < 200; r++) {
		history_snapshot(shared_h, 0, &s2);
		for (uint32_t k = 1; k < s2.ntransitions; k++)
			broken += s2.transitions[k].from != s2.transitions[k - 1].to;
	}
	for (size_t i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	EXPECT_EQ_INT(0, broken);
	history_snapshot(shared_h, 0, &s2);
	EXPECT_EQ_INT(HISTORY_RESULTS, s2.nresults);
	for (size_t i = 1; i < 4; i++) {
		history_snapshot(shared_h, i, &s2);
		EXPECT_EQ_INT(HISTORY_RESULTS, s2.nresults);
		EXPECT_EQ_INT(1, s2.ntransitions);
	}
	history_free(shared_h);
	return 0;
}

/* A reload: checks that stay keep their history by name, wherever their
 * index moved; new ones start empty; the old history is left as it was. */
DEF_TEST(carry_by_name)
{
	static const char *const next[] = {"new", "db"};
	struct history *h = make(), *h2 = history_new(next, 2);

	for (int k = 0; k < 30; k++)
		history_record(h, 0, T0 + k * MIN, k % 2 ? 2 : 0, 7, "db says", NULL);
	history_record(h, 1, T0, 1, 3, "api", NULL);
	EXPECT_EQ_INT(1, history_flapping(h, 0));
	EXPECT_EQ_INT(1, history_carry(h2, h));
	history_snapshot(h2, 1, &snap);
	EXPECT_EQ_STR("db", snap.name);
	EXPECT_EQ_INT(30, snap.nresults);
	EXPECT_EQ_INT(30, snap.ntransitions);
	EXPECT_EQ_INT(T0 + 29 * MIN, snap.results[29].time_ms);
	EXPECT_EQ_INT(1, history_flapping(h2, 1));
	history_snapshot(h2, 0, &snap);
	EXPECT_EQ_STR("new", snap.name);
	EXPECT_EQ_INT(0, snap.nresults);
	/* the carried rings go on where they were */
	EXPECT_EQ_INT(0, history_record(h2, 1, T0 + 30 * MIN, 2, 1, "", NULL)); /* was 2 */
	history_snapshot(h2, 1, &snap);
	EXPECT_EQ_INT(31, snap.nresults);
	EXPECT_EQ_INT(T0 + 30 * MIN, snap.results[30].time_ms);
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(30, snap.nresults);
	history_free(h);
	history_free(h2);
	return 0;
}

int
main(void)
{
	RUN_TEST(ring_evicts_oldest_and_allocates_nothing);
	RUN_TEST(long_message_is_cut);
	RUN_TEST(transitions_only_on_change);
	RUN_TEST(availability_on_a_crafted_timeline);
	RUN_TEST(availability_after_transitions_evicted);
	RUN_TEST(spans_clip_to_the_window);
	RUN_TEST(flap_percent_worked_example);
	RUN_TEST(flapping_hysteresis);
	RUN_TEST(flap_thresholds_configurable);
	RUN_TEST(restore_keeps_order_and_ignores_old);
	RUN_TEST(restore_keeps_changes_in_the_same_millisecond);
	RUN_TEST(json_body);
	RUN_TEST(concurrent_record_and_snapshot);
	RUN_TEST(carry_by_name);
	END_TEST;
}
