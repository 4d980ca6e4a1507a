/* timer.h - waiting for the nearest deadline (CLOCK_MONOTONIC ms, clock.h), as
 * redis' ae.c keeps its time events: a loop folds its deadlines with
 * timer_min(), then sleeps with timer_wait() (a condvar) or poll(timer_poll_timeout()). */
#ifndef HEALTHD_TIMER_H
#define HEALTHD_TIMER_H

#include <pthread.h>
#include <stdint.h>

/* No deadline: wait until woken. */
#define TIMER_NONE INT64_MAX

/* Folds deadline into *next, the nearest so far (start from TIMER_NONE). */
static inline void
timer_min(int64_t *next, int64_t deadline)
{
	if (deadline < *next)
		*next = deadline;
}

/* Initialises cv on CLOCK_MONOTONIC, the clock timer_wait() deadlines are on. */
int timer_cond_init(pthread_cond_t *cv);

/* poll()'s timeout for deadline at now: -1 for TIMER_NONE, 0 once it has
 * passed, else the milliseconds left, clamped to INT_MAX. */
int timer_poll_timeout(int64_t deadline, int64_t now);

/* Waits on cv (from timer_cond_init(), m held) until signalled or deadline;
 * TIMER_NONE waits without bound. As pthread_cond_wait: may wake early. */
void timer_wait(pthread_cond_t *cv, pthread_mutex_t *m, int64_t deadline);

#endif
