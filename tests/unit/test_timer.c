/*
 * Unit tests: timer.h, the deadline helper of the runner's loops: poll()
 * timeouts (none, passed, left, clamped), the nearest of several deadlines,
 * and a condvar wait that returns by its deadline.
 */
#include <limits.h>
#include <pthread.h>

#include "clock.h"
#include "testing.h"
#include "timer.h"

DEF_TEST(poll_timeout_none_passed_left_clamped)
{
	EXPECT_EQ_INT(-1, timer_poll_timeout(TIMER_NONE, 1000));
	EXPECT_EQ_INT(0, timer_poll_timeout(999, 1000));
	EXPECT_EQ_INT(0, timer_poll_timeout(1000, 1000));
	EXPECT_EQ_INT(1, timer_poll_timeout(1001, 1000));
	EXPECT_EQ_INT(250, timer_poll_timeout(1250, 1000));
	EXPECT_EQ_INT(INT_MAX, timer_poll_timeout((int64_t)INT_MAX + 5000, 1000));
	return 0;
}

DEF_TEST(min_keeps_the_nearest)
{
	int64_t next = TIMER_NONE;

	timer_min(&next, 300);
	EXPECT_EQ_INT(300, next);
	timer_min(&next, 500);
	EXPECT_EQ_INT(300, next);
	timer_min(&next, 100);
	EXPECT_EQ_INT(100, next);
	return 0;
}

DEF_TEST(wait_returns_by_its_deadline)
{
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	int64_t deadline;

	EXPECT_EQ_INT(0, timer_cond_init(&cv));
	pthread_mutex_lock(&m);
	timer_wait(&cv, &m, clock_ms() - 1); /* passed already: returns at once */
	/* nobody signals: only the deadline ends these waits */
	deadline = clock_ms() + 20;
	while (clock_ms() < deadline)
		timer_wait(&cv, &m, deadline);
	EXPECT_TRUE(clock_ms() >= deadline);
	pthread_mutex_unlock(&m);
	pthread_cond_destroy(&cv);
	return 0;
}

int
main(void)
{
	RUN_TEST(poll_timeout_none_passed_left_clamped);
	RUN_TEST(min_keeps_the_nearest);
	RUN_TEST(wait_returns_by_its_deadline);
	END_TEST;
}
