/* timer.c - the deadline waits of timer.h: a condvar's or poll()'s. */
#include "timer.h"

#include <limits.h>
#include <time.h>

#include "lock.h"

int
timer_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	int rc;

	if ((rc = pthread_condattr_init(&attr)) != 0)
		return rc;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}

int
timer_poll_timeout(int64_t deadline, int64_t now)
{
	if (deadline == TIMER_NONE)
		return -1;
	if (deadline <= now)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

void
timer_wait(pthread_cond_t *cv, pthread_mutex_t *m, int64_t deadline)
{
	struct timespec ts;

	LOCK_HELD(m);
	if (deadline == TIMER_NONE) {
		pthread_cond_wait(cv, m);
		return;
	}
	ts = (struct timespec){.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000L};
	pthread_cond_timedwait(cv, m, &ts);
}
