/*
 * Unit tests: thresholds.h on its own, without a runner: the first run
 * taken as it is, failures and successes held back until their streak,
 * a change within one side followed at once, a reload's recheck, and the
 * message that notes a held-back run.
 */
#include "testing.h"
#include "thresholds.h"

static struct thresholds t;
static bool first;

static void
run(const struct check *k, enum healthd_status st)
{
	thresholds_count(&t, k, first, st);
	first = false;
}

static void
start(void)
{
	t = (struct thresholds){0};
	first = true;
}

DEF_TEST(first_run_is_taken_as_it_is)
{
	struct check k = {.failures_before_critical = 3, .successes_before_passing = 2};

	start();
	run(&k, HEALTHD_CRITICAL);
	EXPECT_EQ_INT(HEALTHD_CRITICAL, t.effective);
	EXPECT_EQ_INT(1, t.fail_streak);
	return 0;
}

DEF_TEST(failures_held_until_their_streak)
{
	struct check k = {.failures_before_critical = 3, .successes_before_passing = 1};

	start();
	run(&k, HEALTHD_OK);
	run(&k, HEALTHD_CRITICAL);
	EXPECT_EQ_INT(HEALTHD_OK, t.effective);
	run(&k, HEALTHD_UNKNOWN);
	EXPECT_EQ_INT(HEALTHD_OK, t.effective);
	run(&k, HEALTHD_CRITICAL);
	EXPECT_EQ_INT(HEALTHD_CRITICAL, t.effective);
	run(&k, HEALTHD_UNKNOWN); /* the same side: followed at once */
	EXPECT_EQ_INT(HEALTHD_UNKNOWN, t.effective);
	run(&k, HEALTHD_WARNING); /* successes_before_passing 1: at once */
	EXPECT_EQ_INT(HEALTHD_WARNING, t.effective);
	return 0;
}

DEF_TEST(successes_held_until_their_streak)
{
	struct check k = {.failures_before_critical = 0, .successes_before_passing = 2};

	start();
	run(&k, HEALTHD_CRITICAL);
	run(&k, HEALTHD_OK);
	EXPECT_EQ_INT(HEALTHD_CRITICAL, t.effective);
	run(&k, HEALTHD_CRITICAL); /* the streak starts over */
	run(&k, HEALTHD_WARNING);
	EXPECT_EQ_INT(HEALTHD_CRITICAL, t.effective);
	run(&k, HEALTHD_OK);
	EXPECT_EQ_INT(HEALTHD_OK, t.effective);
	EXPECT_EQ_INT(2, t.pass_streak);
	EXPECT_EQ_INT(0, t.fail_streak);
	return 0;
}

DEF_TEST(recheck_applies_lowered_thresholds)
{
	struct check k = {.failures_before_critical = 3, .successes_before_passing = 1};

	start();
	run(&k, HEALTHD_OK);
	run(&k, HEALTHD_CRITICAL);
	run(&k, HEALTHD_CRITICAL);
	thresholds_recheck(&t, &k, HEALTHD_CRITICAL);
	EXPECT_EQ_INT(HEALTHD_OK, t.effective); /* unchanged: still 2 of 3 */
	k.failures_before_critical = 2;
	thresholds_recheck(&t, &k, HEALTHD_CRITICAL);
	EXPECT_EQ_INT(HEALTHD_CRITICAL, t.effective);
	return 0;
}

DEF_TEST(message_notes_a_held_run)
{
	struct check k = {.failures_before_critical = 3, .successes_before_passing = 2};
	char buf[128];

	start();
	run(&k, HEALTHD_OK);
	thresholds_message(&t, &k, HEALTHD_OK, "fine", buf, sizeof(buf));
	EXPECT_EQ_STR("fine", buf);
	run(&k, HEALTHD_CRITICAL);
	thresholds_message(&t, &k, HEALTHD_CRITICAL, "down", buf, sizeof(buf));
	EXPECT_EQ_STR("down (failure 1 of 3 before critical)", buf);
	run(&k, HEALTHD_CRITICAL);
	run(&k, HEALTHD_CRITICAL);
	run(&k, HEALTHD_OK);
	thresholds_message(&t, &k, HEALTHD_OK, "up", buf, sizeof(buf));
	EXPECT_EQ_STR("up (success 1 of 2 before passing)", buf);
	return 0;
}

int
main(void)
{
	RUN_TEST(first_run_is_taken_as_it_is);
	RUN_TEST(failures_held_until_their_streak);
	RUN_TEST(successes_held_until_their_streak);
	RUN_TEST(recheck_applies_lowered_thresholds);
	RUN_TEST(message_notes_a_held_run);
	END_TEST;
}
