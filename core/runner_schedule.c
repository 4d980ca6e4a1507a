/* runner_schedule.c - the background schedule: runs each check with
 * interval_ms > 0 when it is due, through the same flights as requests. */
#include "runner.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "runner_impl.h"
#include "timer.h"

static void *sched_main(void *arg);

/* Up to a tenth of the interval (1 s at most) earlier, so that checks with
 * the same interval spread out instead of hitting their targets together. */
static int64_t
jitter_ms(struct runner *r, int interval_ms)
{
	int64_t span = interval_ms / 10 < 1000 ? interval_ms / 10 : 1000;

	LOCK_HELD(&r->lock);
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return span > 0 ? (int64_t)(r->rng % (uint64_t)(span + 1)) : 0;
}

/* Starts each background check's run when it is due. A run still going (or
 * stuck past its timeout) is not doubled: that turn is skipped, and a result
 * that gets too old reads as stale. */
static void *
sched_main(void *arg)
{
	struct runner *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		struct runner_job *done = NULL;
		int64_t now = clock_ms(), next = TIMER_NONE;

		for (size_t i = 0; i < r->ncs; i++) {
			struct cstate *c = r->cs[i];
			int interval;

			if (c == NULL || c->dead || (interval = c->check->interval_ms) <= 0)
				continue;
			if (c->next_run <= now) {
				if (!c->busy) /* the scheduler never runs plugin code itself */
					runner_flight_start(r, c, now, NULL, &done);
				c->next_run = now + interval - jitter_ms(r, interval);
			}
			timer_min(&next, c->next_run);
		}
		/* no job waits for a background run; a failed dispatch answers none */
		runner_resume_unlocked(r, done);
		if (r->stopping)
			break;
		timer_wait(&r->sched_cv, &r->lock, next); /* TIMER_NONE: a reload wakes it */
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int
runner_start(struct runner *r)
{
	int rc;

	/* always, even without background checks yet: a reload may add some
	 * (runner_attach() wakes it); idle, it only waits */
	pthread_mutex_lock(&r->lock);
	if (r->stopping || r->sched_started) {
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	r->scheduled = true;
	rc = pthread_create(&r->sched, NULL, sched_main, r);
	if (rc != 0) {
		r->scheduled = false;
		pthread_mutex_unlock(&r->lock);
		log_err("runner: cannot start the background scheduler: %s", strerror(rc));
		return -1;
	}
	r->sched_started = true;
	pthread_mutex_unlock(&r->lock);
	return 0;
}
