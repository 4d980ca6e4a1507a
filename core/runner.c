/*
 * runner.c - the worker pool, deadlines, single flight and cache.
 *
 * One lock guards everything here. Per check there is at most one flight:
 * a run that is queued or inside run(), with the list of request answers
 * waiting for it. A flight ends in one of three ways, each through
 * answer_waiters(): the run returns (finish), its deadline passes first
 * (expire, from the timer thread; the run is abandoned and its late result
 * discarded), or healthd shuts down. Plugin code never runs under the lock.
 * A job with an answer budget may leave its flights before they end: its
 * waiting answers are unlinked and filled (expire_budget, from the timer).
 * Every result is recorded by runner_record() (runner_record.c), the one
 * place that sees a check's state change; the log lines it makes are written
 * once the lock is dropped.
 */
#include "runner.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "crash.h"
#include "executor.h"
#include "history.h"
#include "history_store.h"
#include "log.h"
#include "plugin_loader.h"
#include "report.h"
#include "runner_impl.h"
#include "thresholds.h"
#include "timer.h"

static void *worker_main(void *arg);
static void *timer_main(void *arg);
static void unlist_budget(struct runner_job *job);
static void fill_last(struct cstate *c, struct answer *a, int64_t now, struct runner_job **done);
static void effective_message(const struct runner *r, const struct cstate *c, char *buf,
                              size_t len);
static int64_t stale_after_ms(const struct check *k);
static void fill_background(struct cstate *c, struct answer *a, int64_t now,
                            struct runner_job **done);
static void stats_locked(const struct runner *r, const struct cstate *c,
                         struct runner_stats *out);

static void
fill(struct answer *a, enum healthd_status st, const char *msg, int64_t dur, bool cached,
     bool timed_out, struct runner_job **done)
{
	struct runner_job *job = a->job;

	LOCK_HELD(&job->r->lock);
	a->msg = (msg != NULL && msg[0] != '\0') ? strdup(msg) : NULL;
	a->res = (struct runner_result){
		.status = st,
		.cached = cached,
		.timed_out = timed_out,
		.duration_ms = dur,
		.message = a->msg ? a->msg : "",
		.measured_ms = clock_wall_ms(),
		.run_status = st,
		.age_ms = -1,
	};
	if (a->cs != NULL) {
		const char *by = runner_suppressor(job->r, a->cs, st);

		a->res.flapping = a->cs->flapping;
		if (by != NULL)
			snprintf(a->res.suppressed_by, sizeof(a->res.suppressed_by), "%s", by);
	}
	a->flight = NULL;
	if (--job->pending == 0)
		unlist_budget(job);
	if (job->pending == 0 && job->armed) {
		job->done_next = *done;
		*done = job;
	}
}

/* Gives a filled answer its own copy of a run's values (none if out of memory). */
static void
fill_values(struct answer *a, const struct report_value *v, size_t n)
{
	LOCK_HELD(&a->job->r->lock);
	if (n == 0 || (a->values = malloc(n * sizeof(*v))) == NULL)
		return;
	memcpy(a->values, v, n * sizeof(*v));
	a->res.values = a->values;
	a->res.nvalues = n;
}

static void
answer_waiters(struct runner *r, struct cstate *c, enum healthd_status st, const char *msg,
               int64_t dur, bool timed_out, const struct report_value *v, size_t nv,
               struct runner_job **done)
{
	struct answer *a = c->waiters, *next;

	LOCK_HELD(&r->lock);
	c->waiters = NULL;
	for (; a != NULL; a = next) {
		next = a->next;
		a->flight = NULL;
		fill(a, st, msg, dur, false, timed_out, done);
		fill_values(a, v, nv);
	}
}

/* The answer a waits for c's flight (pushed at the head of its waiters). */
static void
wait_for(struct cstate *c, struct answer *a)
{
	LOCK_HELD(&a->job->r->lock);
	a->flight = c;
	a->prev = NULL;
	a->next = c->waiters;
	if (c->waiters != NULL)
		c->waiters->prev = a;
	c->waiters = a;
}

/* Takes a waiting answer off its flight's waiters; the flight goes on. */
static void
unwait(struct answer *a)
{
	struct cstate *c = a->flight;

	LOCK_HELD(&a->job->r->lock);
	if (a->prev != NULL)
		a->prev->next = a->next;
	else
		c->waiters = a->next;
	if (a->next != NULL)
		a->next->prev = a->prev;
	a->flight = NULL;
}

/* The timer thread looks again by `at` at the latest. At most one wake-up per
 * earlier deadline while it idles. */
void
runner_wake_timer(struct runner *r, int64_t at)
{
	LOCK_HELD(&r->lock);
	if (at >= r->timer_wake)
		return;
	r->timer_wake = at;
	pthread_cond_signal(&r->timer_cv);
}

/* Puts a job on the budget list, its deadline on the timer. */
static void
list_budget(struct runner *r, struct runner_job *job, int64_t deadline)
{
	LOCK_HELD(&r->lock);
	job->budget_deadline = deadline;
	job->budgeted = true;
	job->bprev = NULL;
	job->bnext = r->budgets;
	if (r->budgets != NULL)
		r->budgets->bprev = job;
	r->budgets = job;
	runner_wake_timer(r, deadline);
}

/* Takes a finished (or expiring) job off the budget list; idempotent. */
static void
unlist_budget(struct runner_job *job)
{
	struct runner *r = job->r;

	LOCK_HELD(&r->lock);
	if (!job->budgeted)
		return;
	if (job->bprev != NULL)
		job->bprev->bnext = job->bnext;
	else
		r->budgets = job->bnext;
	if (job->bnext != NULL)
		job->bnext->bprev = job->bprev;
	job->budgeted = false;
}

/*
 * The job's answer budget passed: every answer still waiting is filled now
 * with its check's last result if that is at most max_age_ms old, else as
 * timed out. So a probe's verdict is the newest result at its budget's end,
 * whether it joined a run or started one. The flights go on for the others.
 */
static void
expire_budget(struct runner_job *job, int64_t now, struct runner_job **done)
{
	char msg[64];

	LOCK_HELD(&job->r->lock);
	snprintf(msg, sizeof(msg), "timeout after %d ms (group timeout_ms)", job->budget_ms);
	unlist_budget(job);
	for (size_t i = 0; i < job->n; i++) {
		struct answer *a = &job->answers[i];
		struct cstate *c = a->flight;

		if (c == NULL)
			continue;
		unwait(a);
		if (job->max_age_ms > 0 && c->has_last && now - c->last_done <= job->max_age_ms)
			fill_last(c, a, now, done);
		else
			fill(a, HEALTHD_CRITICAL, msg, now - job->submitted, false, true, done);
	}
}

/* Answers a with c's last result, cached; now >= 0 also gives its age. */
static void
fill_last(struct cstate *c, struct answer *a, int64_t now, struct runner_job **done)
{
	char msg[REPORT_MESSAGE_MAX + 64];

	LOCK_HELD(&a->job->r->lock);
	effective_message(a->job->r, c, msg, sizeof(msg));
	fill(a, c->th.effective, msg, c->last_duration, true, false, done);
	fill_values(a, c->last_values, c->last_nvalues);
	a->res.measured_ms = c->last_wall_ms;
	a->res.run_status = c->last_status;
	if (now >= 0)
		a->res.age_ms = now - c->last_done;
}

/* The check's last result as requests read it: the message that goes with
 * its effective status (after thresholds). */
static void
effective_message(const struct runner *r, const struct cstate *c, char *buf, size_t len)
{
	LOCK_HELD(&r->lock);
	thresholds_message(&c->th, c->check, c->last_status, c->last_msg, buf, len);
}

/* Answers the flight's waiters with the run just recorded, thresholds applied. */
static void
answer_run(struct runner *r, struct cstate *c, const struct report_value *v, size_t nv,
           struct runner_job **done)
{
	char msg[REPORT_MESSAGE_MAX + 64];
	struct answer *a = c->waiters;

	LOCK_HELD(&r->lock);
	effective_message(r, c, msg, sizeof(msg));
	answer_waiters(r, c, c->th.effective, msg, c->last_duration,
	               c->last_timed_out && !thresholds_passes(c->th.effective), v, nv, done);
	for (; a != NULL; a = a->next) {
		a->res.run_status = c->last_status;
		/* the run's one stamp, as its cached answers and /metrics give it;
		 * the clock read again here could be a millisecond on */
		a->res.measured_ms = c->last_wall_ms;
	}
}

/* Outside the lock: each resume is MHD_resume_connection. */
static void
resume_all(struct runner_job *done)
{
	while (done != NULL) {
		struct runner_job *next = done->done_next;
		done->resume(done->arg);
		done = next;
	}
}

/*
 * Resumes the jobs in done outside the lock, then writes the lines waiting;
 * called and returns with it held. Counted in `resuming`, so that shutdown
 * waits for the last resume before the HTTP server may be stopped (which
 * must not find a connection suspended).
 */
void
runner_resume_unlocked(struct runner *r, struct runner_job *done)
{
	struct runner_line *lines;
	struct runner_save *saves;
	struct history_store *st = r->store;

	LOCK_HELD(&r->lock);
	lines = r->lines;
	saves = r->saves;
	if (done == NULL && lines == NULL && saves == NULL)
		return;
	r->lines = r->lines_tail = NULL;
	r->saves = r->saves_tail = NULL;
	r->resuming++;
	pthread_mutex_unlock(&r->lock);
	resume_all(done);
	runner_write_lines(lines);
	runner_write_saves(st, saves); /* the store stays open while resuming > 0 */
	pthread_mutex_lock(&r->lock);
	r->resuming--;
	pthread_cond_broadcast(&r->idle_cv);
}

/* Takes c off the work queue (it expired before a worker picked it up). */
static void
unqueue(struct runner *r, struct cstate *c)
{
	struct cstate **p = &r->qhead, *prev = NULL;

	LOCK_HELD(&r->lock);
	while (*p != NULL && *p != c) {
		prev = *p;
		p = &(*p)->qnext;
	}
	if (*p == NULL)
		return;
	*p = c->qnext;
	if (r->qtail == c)
		r->qtail = prev;
}

/* A replacement for a worker stuck in an abandoned run, so that one stuck
 * check never starves the others. Bounded: one per check at most. */
static void
spawn_worker(struct runner *r)
{
	struct worker *w = NULL;
	int rc;

	LOCK_HELD(&r->lock);
	for (int i = 0; i < r->max_threads; i++) {
		if (r->workers[i].used && r->workers[i].exited) {
			/* it left already; joining only waits for its thread exit */
			pthread_join(r->workers[i].thread, NULL);
			r->workers[i].used = false;
		}
		if (!r->workers[i].used && w == NULL)
			w = &r->workers[i];
	}
	if (w == NULL || r->live >= r->max_threads)
		return;
	*w = (struct worker){.r = r, .used = true};
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc == 0) {
		r->live++;
		r->active++;
	} else {
		w->used = false;
		log_warn("runner: cannot start a worker thread: %s", strerror(rc));
	}
}

/* The flight's deadline passed: answer its waiters with a timeout now. */
static void
expire(struct runner *r, struct cstate *c, int64_t now, struct runner_job **done)
{
	char msg[64];

	LOCK_HELD(&r->lock);
	snprintf(msg, sizeof(msg), "timeout after %d ms", c->check->timeout_ms);
	c->abandoned = true;
	c->timeouts++;
	if (c->report != NULL)
		atomic_store_explicit(&c->report->cancelled, true, memory_order_relaxed);
	runner_record(r, c, HEALTHD_CRITICAL, msg, now - c->queued_at, now);
	c->last_timed_out = true;
	answer_run(r, c, NULL, 0, done);
	if (c->remote) {
		/* the executor tells the plugin; if the run never reached one, it is
		 * over, else its executor reports its end (or is retired) */
		if (executor_cancel(c->flying->exec, c->token)) {
			c->busy = false;
			c->abandoned = false;
			c->remote = false;
			c->executing = false;
		}
		return;
	}
	if (!c->executing) {
		/* expired in the queue: it never ran; the next request starts afresh */
		unqueue(r, c);
		c->busy = false;
		c->abandoned = false;
		return;
	}
	log_warn("check %s: no answer after %d ms, counted as failed; its run goes on "
	         "in the background and its result will be discarded",
	         c->check->name, c->check->timeout_ms);
	if (!c->inline_run) {
		c->released = true;
		r->active--;
		if (r->active < r->target)
			spawn_worker(r);
	}
}

/* The run returned st after dur ms, with report's message and values;
 * report->timed_out: the plugin says it gave up at the deadline itself. */
static void
finish(struct runner *r, struct cstate *c, const struct healthd_report *report,
       enum healthd_status st, int64_t dur, int64_t now, struct runner_job **done)
{
	LOCK_HELD(&r->lock);
	/* late, though the timer had not seen it yet; a run that stopped at its
	 * deadline has HEALTHD_DEADLINE_GRACE_MS to be heard (ABI 1.2) */
	if (!c->abandoned && now > c->deadline + HEALTHD_DEADLINE_GRACE_MS)
		expire(r, c, now, done);
	if (c->abandoned && report->never_returned) {
		/* killed, or its executor died: it never returned, whatever dur says */
		log_msg(r->stopping ? LOG_INFO : LOG_WARNING, "check %s: %s; result discarded",
		        c->check->name, report->message);
	} else if (c->abandoned && r->stopping) {
		log_info("check %s: run returned after %lld ms, during shutdown", c->check->name,
		         (long long)dur);
	} else if (c->abandoned) {
		log_warn("check %s: run returned after %lld ms, past its %d ms timeout; "
		         "result discarded", c->check->name, (long long)dur, c->check->timeout_ms);
	} else {
		if ((unsigned)st > HEALTHD_UNKNOWN)
			st = HEALTHD_UNKNOWN;
		bool timed_out = report->timed_out && st >= HEALTHD_CRITICAL;
		if (timed_out)
			c->timeouts++;
		runner_record(r, c, st, report->message, dur, now);
		c->last_timed_out = timed_out;
		c->last_nvalues = report->nvalues;
		memcpy(c->last_values, report->values, report->nvalues * sizeof(report->values[0]));
		answer_run(r, c, c->last_values, c->last_nvalues, done);
	}
	c->busy = false;
	c->abandoned = false;
	c->inline_run = false;
	c->released = false;
	c->remote = false;
	c->executing = false;
}

/* Hands a new flight to its executor; called with the lock held. */
static void
dispatch_remote(struct runner *r, struct cstate *c, int64_t now, struct runner_job **done)
{
	struct healthd_report rep = {0};

	LOCK_HELD(&r->lock);
	c->remote = true;
	c->executing = true;
	/* slots are never reused, so a token is unique across reloads too */
	c->token = ((uint64_t)c->slot << 32) | ++c->gen;
	if (executor_run(c->check, c->slot, c->token, c->deadline, rep.message, sizeof(rep.message)) ==
	    -1) {
		/* down after a crash, or shutting down: fail fast, say why */
		finish(r, c, &rep, HEALTHD_CRITICAL, 0, now, done);
		return;
	}
	c->runs++;
}

/*
 * Starts c's flight, the one way every run begins (a request's or the
 * scheduler's): its deadline goes on the timer, then the run goes to its
 * executor, to a worker, or, for an inline check when inl is not NULL, onto
 * *inl for the caller to execute(). Waiters may already be on c. Its end is
 * recorded by finish() or expire(), as every run's is.
 */
void
runner_flight_start(struct runner *r, struct cstate *c, int64_t now, struct cstate **inl,
                    struct runner_job **done)
{
	LOCK_HELD(&r->lock);
	c->busy = true;
	c->queued_at = now;
	c->deadline = now + c->check->timeout_ms;
	c->flying = c->check;
	/* inline flights too: one that hangs still answers its joiners at the deadline */
	runner_wake_timer(r, c->deadline + HEALTHD_DEADLINE_GRACE_MS);
	if (c->check->exec != NULL) {
		dispatch_remote(r, c, now, done);
	} else if (inl != NULL && (c->check->flags & HEALTHD_CHECK_INLINE)) {
		c->inline_run = true;
		c->qnext = *inl;
		*inl = c;
	} else {
		c->qnext = NULL;
		if (r->qtail != NULL)
			r->qtail->qnext = c;
		else
			r->qhead = c;
		r->qtail = c;
		pthread_cond_signal(&r->work_cv); /* one worker per flight: side by side */
	}
}

bool
runner_remote_done(void *runner, uint32_t id, uint64_t token, enum healthd_status st,
                   const struct healthd_report *rep, int64_t dur_ms)
{
	struct runner *r = runner;
	struct runner_job *done = NULL;
	struct cstate *c;

	pthread_mutex_lock(&r->lock);
	c = id < r->ncs ? r->cs[id] : NULL;
	if (c == NULL || !c->busy || !c->remote || c->token != token) {
		pthread_mutex_unlock(&r->lock);
		return false; /* not this flight's: stale or forged */
	}
	finish(r, c, rep, st, dur_ms, clock_ms(), &done);
	runner_resume_unlocked(r, done);
	pthread_mutex_unlock(&r->lock);
	return true;
}

/* Runs c's flight on this thread; called and returns with the lock held. */
static void
execute(struct runner *r, struct cstate *c, bool on_worker)
{
	/* read under the lock: a reload may point c at a newer registry's copy */
	const struct check *chk = c->check;
	struct healthd_report report = {.deadline_ms = c->deadline,
	                                .timeout_ms = chk->timeout_ms};
	struct runner_job *done = NULL;
	enum healthd_status st;
	int64_t started, ended;
	bool released;

	LOCK_HELD(&r->lock);
	c->flying = chk;
	c->executing = true;
	c->report = &report;
	c->runs++;
	r->executing++;
	r->executing_inline += !on_worker;
	pthread_mutex_unlock(&r->lock);

	started = clock_ms();
	st = plugin_run(chk, &report, NULL);
	ended = clock_ms();

	pthread_mutex_lock(&r->lock);
	c->executing = false;
	c->report = NULL;
	r->executing--;
	r->executing_inline -= !on_worker;
	released = c->released;
	finish(r, c, &report, st, ended - started, ended, &done);
	if (released)
		r->active++; /* back from a stuck run; a surplus worker then leaves */
	pthread_cond_broadcast(&r->idle_cv);
	runner_resume_unlocked(r, done);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct runner *r = w->r;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct cstate *c;

		while (!r->stopping && r->qhead == NULL && r->active <= r->target)
			pthread_cond_wait(&r->work_cv, &r->lock);
		if (r->stopping || r->active > r->target)
			break;
		c = r->qhead;
		r->qhead = c->qnext;
		if (r->qhead == NULL)
			r->qtail = NULL;
		if (c->abandoned) { /* expired while queued: nobody waits for it */
			c->busy = false;
			c->abandoned = false;
			continue;
		}
		execute(r, c, true);
	}
	r->active--;
	r->live--;
	w->exited = true;
	pthread_cond_broadcast(&r->idle_cv);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void *
timer_main(void *arg)
{
	struct runner *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		struct runner_job *done = NULL;
		int64_t now = clock_ms(), next = TIMER_NONE;

		for (size_t i = 0; i < r->ncs; i++) {
			struct cstate *c = r->cs[i];
			char line[256];
			int level;

			if (c == NULL)
				continue;
			/* the end of a flapping check's window: its summary line */
			level = transitions_tick(&c->tr, c->check->name, now, line, sizeof(line));
			if (level != 0)
				runner_queue_line(r, level, line);
			timer_min(&next, transitions_due(&c->tr));
			/* an inline flight waiting for its turn on the submitting
			 * thread is not the timer's: the run before it is */
			if (!c->busy || c->abandoned || (c->inline_run && !c->executing))
				continue;
			if (c->deadline + HEALTHD_DEADLINE_GRACE_MS <= now)
				expire(r, c, now, &done);
			else
				timer_min(&next, c->deadline + HEALTHD_DEADLINE_GRACE_MS);
		}
		for (struct runner_job *job = r->budgets, *bnext; job != NULL; job = bnext) {
			bnext = job->bnext;
			if (job->budget_deadline <= now)
				expire_budget(job, now, &done);
			else
				timer_min(&next, job->budget_deadline);
		}
		r->timer_wake = next;
		if (done != NULL || r->lines != NULL || r->saves != NULL) {
			runner_resume_unlocked(r, done);
			continue;
		}
		timer_wait(&r->timer_cv, &r->lock, next);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct runner *
runner_new(struct registry *reg, int workers)
{
	struct runner *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->ncs = 1; /* slot 0: no slot yet */
	r->target = workers;
	/* room for a replacement of every stuck worker, up to 1024: a reload
	 * that adds checks keeps this bound */
	r->max_threads = workers + 1024;
	r->workers = calloc((size_t)r->max_threads, sizeof(*r->workers));
	if (r->workers == NULL) {
		free(r);
		return NULL;
	}
	r->timer_wake = TIMER_NONE;
	pthread_mutex_init(&r->lock, NULL);
	/* deadlines are monotonic */
	timer_cond_init(&r->work_cv);
	timer_cond_init(&r->timer_cv);
	timer_cond_init(&r->idle_cv);
	timer_cond_init(&r->sched_cv);
	r->rng = (uint64_t)clock_wall_ms() ^ ((uint64_t)(uintptr_t)r << 16) ^ 0x9e3779b97f4a7c15u;
	if (runner_attach(r, reg, NULL) == -1) {
		runner_free(r);
		return NULL;
	}

	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < workers; i++)
		spawn_worker(r);
	pthread_mutex_unlock(&r->lock);
	if (r->live > 0 && pthread_create(&r->timer, NULL, timer_main, r) == 0)
		r->timer_started = true;
	if (!r->timer_started) {
		log_err("runner: cannot start its threads");
		if (runner_shutdown(r, 1000, NULL) == 0)
			runner_free(r);
		return NULL;
	}
	return r;
}

struct runner_job *
runner_submit(struct runner *r, const uint32_t *ids, size_t n)
{
	return runner_submit_in(r, NULL, ids, n, 0, 0);
}

struct runner_job *
runner_submit_budget(struct runner *r, const uint32_t *ids, size_t n, int budget_ms)
{
	return runner_submit_in(r, NULL, ids, n, budget_ms, 0);
}

struct runner_job *
runner_submit_in(struct runner *r, const struct registry *reg, const uint32_t *ids, size_t n,
                 int budget_ms, int max_age_ms)
{
	struct runner_job *job, *done = NULL;
	struct cstate *inl = NULL;
	int64_t now;

	job = calloc(1, sizeof(*job) + n * sizeof(struct answer));
	if (job == NULL)
		return NULL;
	job->r = r;
	job->n = n;
	job->pending = n;
	now = clock_ms();
	job->submitted = now;
	job->budget_ms = budget_ms;
	job->max_age_ms = max_age_ms;

	pthread_mutex_lock(&r->lock);
	if (reg == NULL)
		reg = r->reg;
	for (size_t i = 0; i < n; i++) {
		struct cstate *c = r->cs[registry_at(reg, ids[i])->slot];
		struct answer *a = &job->answers[i];

		a->job = job;
		a->cs = c;
		if (r->stopping) {
			fill(a, HEALTHD_UNKNOWN, "healthd is shutting down", 0, false, false, &done);
		} else if (r->scheduled && c->check->interval_ms > 0) {
			fill_background(c, a, now, &done); /* never runs it */
		} else if (c->check->cache_ms > 0 && c->has_last &&
		           now - c->last_done < c->check->cache_ms) {
			fill_last(c, a, -1, &done);
		} else if (c->busy && c->abandoned) {
			char msg[96];
			snprintf(msg, sizeof(msg), "timeout after %d ms (an earlier run is still stuck)",
			         c->check->timeout_ms);
			fill(a, HEALTHD_CRITICAL, msg, 0, false, true, &done);
		} else {
			/* waiting first: a flight that fails to start answers it */
			wait_for(c, a);
			if (!c->busy) /* a new flight; later requests for this check join it */
				runner_flight_start(r, c, now, &inl, &done);
		}
	}
	if (budget_ms > 0 && job->pending > 0)
		list_budget(r, job, now + budget_ms);
	while (inl != NULL) {
		struct cstate *c = inl;
		inl = c->qnext;
		execute(r, c, false);
	}
	/* job is not armed yet, so done holds only other requests' jobs */
	runner_resume_unlocked(r, done);
	pthread_mutex_unlock(&r->lock);
	return job;
}

bool
runner_job_arm(struct runner_job *job, void (*suspend)(void *), void (*resume)(void *),
               void *arg)
{
	struct runner *r = job->r;
	bool waits;

	/* Flights finish under this lock too, so resume cannot overtake suspend. */
	pthread_mutex_lock(&r->lock);
	waits = job->pending > 0;
	if (waits) {
		job->armed = true;
		job->resume = resume;
		job->arg = arg;
		suspend(arg);
	}
	pthread_mutex_unlock(&r->lock);
	return waits;
}

const struct runner_result *
runner_job_result(const struct runner_job *job, size_t i)
{
	return &job->answers[i].res;
}

size_t
runner_job_count(const struct runner_job *job)
{
	return job->n;
}

void
runner_job_free(struct runner_job *job)
{
	if (job == NULL)
		return;
	for (size_t i = 0; i < job->n; i++) {
		free(job->answers[i].msg);
		free(job->answers[i].values);
	}
	free(job);
}

void
runner_stats(struct runner *r, uint32_t id, struct runner_stats *out)
{
	pthread_mutex_lock(&r->lock);
	stats_locked(r, r->cs[registry_at(r->reg, id)->slot], out);
	pthread_mutex_unlock(&r->lock);
}

void
runner_stats_of(struct runner *r, const struct check *check, struct runner_stats *out)
{
	pthread_mutex_lock(&r->lock);
	stats_locked(r, check->slot < r->ncs ? r->cs[check->slot] : NULL, out);
	pthread_mutex_unlock(&r->lock);
}

void
runner_summary(struct runner *r, size_t *count, size_t *failing)
{
	*count = *failing = 0;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->ncs; i++) {
		const struct cstate *c = r->cs[i];
		if (c == NULL || c->dead)
			continue;
		(*count)++;
		*failing += c->has_last && c->th.effective >= HEALTHD_CRITICAL; /* thresholds applied */
	}
	pthread_mutex_unlock(&r->lock);
}

static void
stats_locked(const struct runner *r, const struct cstate *c, struct runner_stats *out)
{
	LOCK_HELD(&r->lock);
	if (c == NULL) {
		*out = (struct runner_stats){0};
		return;
	}
	*out = (struct runner_stats){
		.runs = c->runs,
		.failures = c->failures,
		.timeouts = c->timeouts,
		.has_last = c->has_last,
		.last_status = c->last_status,
		.last_duration_ms = c->last_duration,
		.running = c->busy,
		.last_nvalues = c->last_nvalues,
		.last_wall_ms = c->last_wall_ms,
		.effective_status = c->th.effective,
		.flapping = c->flapping,
	};
	if (r->scheduled && c->check->interval_ms > 0 && c->has_last &&
	    clock_ms() - c->last_done > stale_after_ms(c->check))
		out->effective_status = HEALTHD_CRITICAL;
	const char *by = c->has_last ? runner_suppressor(r, c, out->effective_status) : NULL;
	if (by != NULL)
		snprintf(out->suppressed_by, sizeof(out->suppressed_by), "%s", by);
	memcpy(out->last_values, c->last_values, c->last_nvalues * sizeof(c->last_values[0]));
}

int
runner_attach(struct runner *r, struct registry *reg, struct history *h)
{
	size_t n = registry_count(reg), need = 0, k = 0;
	struct cstate **fresh;

	pthread_mutex_lock(&r->lock);
	for (uint32_t id = 0; id < n; id++) {
		uint32_t slot = registry_at(reg, id)->slot;
		need += slot == 0 || slot >= r->ncs || r->cs[slot] == NULL;
	}
	/* everything that can fail first: a failed attach changes nothing */
	fresh = calloc(need ? need : 1, sizeof(*fresh));
	for (size_t i = 0; fresh != NULL && i < need; i++) {
		if ((fresh[i] = calloc(1, sizeof(**fresh))) == NULL) {
			while (i-- > 0)
				free(fresh[i]);
			free(fresh);
			fresh = NULL;
		}
	}
	if (fresh != NULL && r->ncs + need > r->cscap) {
		size_t cap = (r->ncs + need) * 2;
		struct cstate **grown = realloc(r->cs, cap * sizeof(*grown));
		if (grown == NULL) {
			for (size_t i = 0; i < need; i++)
				free(fresh[i]);
			free(fresh);
			fresh = NULL;
		} else {
			memset(grown + r->cscap, 0, (cap - r->cscap) * sizeof(*grown));
			r->cs = grown;
			r->cscap = cap;
		}
	}
	if (fresh == NULL) {
		pthread_mutex_unlock(&r->lock);
		return -1;
	}
	for (uint32_t id = 0; id < n; id++) {
		const struct check *chk = registry_at(reg, id);
		struct cstate *c = chk->slot < r->ncs ? r->cs[chk->slot] : NULL;
		if (chk->slot == 0 || c == NULL) {
			c = fresh[k++];
			c->slot = (uint32_t)r->ncs;
			r->cs[r->ncs++] = c;
			registry_set_slot(reg, id, c->slot);
		}
		c->check = chk; /* a kept check reads its new timeout, cache, defaults */
		c->dead = false;
		if (c->has_last) /* its thresholds may have changed */
			thresholds_recheck(&c->th, c->check, c->last_status);
	}
	free(fresh);
	r->reg = reg;
	/* under the lock: no result falls between the old history and the new */
	if (h != NULL && r->hist != NULL)
		history_carry(h, r->hist);
	if (h != NULL && r->store != NULL)
		history_store_rebind(r->store, h);
	r->hist = h;
	runner_index_history(r);
	/* a new background check is due at once (next_run 0); a kept one keeps
	 * its schedule, at its new interval from its next run on */
	pthread_cond_signal(&r->sched_cv);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Frees dead states whose flight is over; under the lock. */
static void
sweep(struct runner *r)
{
	LOCK_HELD(&r->lock);
	for (size_t i = 1; i < r->ncs; i++) {
		struct cstate *c = r->cs[i];
		if (c != NULL && c->dead && !c->busy) {
			r->cs[i] = NULL;
			free(c);
		}
	}
}

size_t
runner_retire_except(struct runner *r, const struct registry *const *regs, size_t nregs)
{
	size_t gone = 0;
	bool *keep;

	pthread_mutex_lock(&r->lock);
	keep = calloc(r->ncs, sizeof(*keep));
	if (keep == NULL) {
		pthread_mutex_unlock(&r->lock);
		return 0; /* kept a while longer: harmless */
	}
	for (size_t k = 0; k < nregs; k++)
		for (uint32_t id = 0; id < registry_count(regs[k]); id++)
			keep[registry_at(regs[k], id)->slot] = true;
	for (size_t i = 1; i < r->ncs; i++) {
		struct cstate *c = r->cs[i];
		if (c != NULL && !c->dead && !keep[i]) {
			c->dead = true;
			gone++;
		}
	}
	sweep(r);
	pthread_mutex_unlock(&r->lock);
	free(keep);
	return gone;
}

bool
runner_uses(struct runner *r, const struct registry *reg, bool runs)
{
	bool used = false;

	pthread_mutex_lock(&r->lock);
	sweep(r);
	for (uint32_t id = 0; id < registry_count(reg) && !used; id++) {
		const struct check *chk = registry_at(reg, id);
		const struct cstate *c = chk->slot < r->ncs ? r->cs[chk->slot] : NULL;
		used = c != NULL && (c->check == chk || (runs && c->busy && c->flying == chk));
	}
	pthread_mutex_unlock(&r->lock);
	return used;
}

int
runner_shutdown(struct runner *r, int grace_ms, int *stuck_inline)
{
	struct runner_job *done = NULL;
	int64_t until;
	int stuck;

	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	for (size_t i = 0; i < r->ncs; i++) {
		struct cstate *c = r->cs[i];
		if (c == NULL || !c->busy || c->abandoned)
			continue;
		answer_waiters(r, c, HEALTHD_UNKNOWN, "healthd is shutting down", 0, false, NULL, 0,
		               &done);
		if (c->remote) {
			c->abandoned = true; /* executor_shutdown() ends it */
			if (executor_cancel(c->flying->exec, c->token)) {
				c->busy = false;
				c->remote = false;
				c->executing = false;
			}
		} else if (c->executing) {
			c->abandoned = true; /* its result, if it comes, is discarded */
			if (c->report != NULL)
				atomic_store_explicit(&c->report->cancelled, true, memory_order_relaxed);
		}
		else
			c->busy = false;     /* queued: dropped below */
	}
	r->qhead = r->qtail = NULL;
	pthread_cond_broadcast(&r->work_cv);
	pthread_cond_signal(&r->timer_cv);
	pthread_cond_signal(&r->sched_cv);
	runner_resume_unlocked(r, done);
	pthread_mutex_unlock(&r->lock);
	if (r->timer_started)
		pthread_join(r->timer, NULL);
	r->timer_started = false;
	if (r->sched_started)
		pthread_join(r->sched, NULL);
	r->sched_started = false;

	pthread_mutex_lock(&r->lock);
	until = clock_ms() + grace_ms;
	while (r->live > 0 || r->executing > 0) {
		if (clock_ms() >= until)
			break;
		timer_wait(&r->idle_cv, &r->lock, until);
	}
	/* Resumes never block: wait for every one, or the HTTP server could be
	 * stopped with a connection still suspended. */
	while (r->resuming > 0)
		pthread_cond_wait(&r->idle_cv, &r->lock);
	/* no resume writes to the store from here on: the server may close it */
	r->store = NULL;
	stuck = r->live > r->executing ? r->live : r->executing;
	if (stuck_inline != NULL)
		*stuck_inline = r->executing_inline;
	for (int i = 0; i < r->max_threads; i++) {
		if (r->workers[i].used && r->workers[i].exited) {
			pthread_join(r->workers[i].thread, NULL);
			r->workers[i].used = false;
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (stuck > 0)
		log_warn("shutdown: %d check run(s) still inside plugin code after %d ms; "
		         "abandoning them", stuck, grace_ms);
	return stuck;
}

void
runner_free(struct runner *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->work_cv);
	pthread_cond_destroy(&r->timer_cv);
	pthread_cond_destroy(&r->idle_cv);
	pthread_cond_destroy(&r->sched_cv);
	free(r->workers);
	runner_write_lines(r->lines); /* a run that ended after the last resume */
	runner_write_saves(NULL, r->saves);
	for (size_t i = 0; i < r->ncs; i++)
		free(r->cs[i]);
	free(r->cs);
	free(r);
}

/* ---- background checks (issue 13): how requests read them; runner_schedule.c
 * runs them ---- */

/* Runs start at most interval_ms apart and end by their timeout (plus the
 * grace the timer gives a run that stops at its deadline): a result older
 * than that means runs have stopped coming. */
static int64_t
stale_after_ms(const struct check *k)
{
	return (int64_t)k->interval_ms + k->timeout_ms + HEALTHD_DEADLINE_GRACE_MS;
}

/* A request's answer for a background check: its last result, never a run. */
static void
fill_background(struct cstate *c, struct answer *a, int64_t now, struct runner_job **done)
{
	char msg[REPORT_MESSAGE_MAX + 64];
	int64_t age = now - c->last_done;
	struct runner *r = a->job->r;

	LOCK_HELD(&r->lock);
	if (!c->has_last) {
		fill(a, HEALTHD_CRITICAL, "no result yet", 0, false, false, done);
	} else if (age > stale_after_ms(c->check)) {
		snprintf(msg, sizeof(msg), "stale: last result %.1f s ago", (double)age / 1000.0);
		fill(a, HEALTHD_CRITICAL, msg, c->last_duration, false, false, done);
		a->res.run_status = c->last_status;
		a->res.age_ms = age;
		a->res.measured_ms = c->last_wall_ms;
	} else {
		effective_message(r, c, msg, sizeof(msg));
		fill(a, c->th.effective, msg, c->last_duration, false,
		     c->last_timed_out && !thresholds_passes(c->th.effective), done);
		fill_values(a, c->last_values, c->last_nvalues);
		a->res.run_status = c->last_status;
		a->res.age_ms = age;
		a->res.measured_ms = c->last_wall_ms;
	}
	a->res.background = true;
}
