/*
 * runner.c - the worker pool, deadlines, single flight and cache.
 *
 * One lock guards everything here. Per check there is at most one flight:
 * a run that is queued or inside run(), with the list of request slots
 * waiting for it. A flight ends in one of three ways, each through
 * answer_waiters(): the run returns (finish), its deadline passes first
 * (expire, from the timer thread; the run is abandoned and its late result
 * discarded), or healthd shuts down. Plugin code never runs under the lock.
 * A job with an answer budget may leave its flights before they end: its
 * waiting slots are unlinked and answered (expire_budget, from the timer).
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
#include "log.h"
#include "plugin_loader.h"
#include "report.h"

struct slot {
	struct runner_job *job;
	struct slot *next; /* next waiter of the same flight */
	struct slot *prev; /* ...and the one before, so that a budget can unlink it */
	struct cstate *flight; /* the flight it waits for; NULL once filled */
	struct runner_result res;
	char *msg;         /* owned; res.message points here */
	struct report_value *values; /* owned; res.values points here */
};

struct runner_job {
	struct runner *r;
	size_t n, pending;
	bool armed;
	void (*resume)(void *);
	void *arg;
	struct runner_job *done_next;
	/* an answer budget (runner_submit_budget): on r->budgets until finished */
	int budget_ms;
	int64_t submitted, budget_deadline;
	bool budgeted;
	struct runner_job *bprev, *bnext;
	struct slot slots[];
};

struct cstate {
	const struct check *check; /* in the newest registry attached that has it */
	uint32_t slot;    /* its index in runner.cs; never reused */
	bool dead;        /* no registry attached since has it: freed once idle */
	/* the copy its flight runs with: a reload may point check at a newer one */
	const struct check *flying;
	/* the flight, while busy */
	bool busy;        /* queued or running: never two runs at once */
	bool executing;   /* inside run() now */
	bool abandoned;   /* deadline passed, waiters answered; late result is discarded */
	bool inline_run;  /* run by the submitting thread (HEALTHD_CHECK_INLINE) */
	bool released;    /* its worker was counted out of `active` when it expired */
	bool remote;      /* in an executor: no thread here waits for it */
	uint32_t gen;     /* flights so far; with the slot, a remote run's token */
	uint64_t token;
	int64_t queued_at, deadline;
	struct healthd_report *report; /* the executing run's, on its thread's stack */
	struct slot *waiters;
	struct cstate *qnext;
	/* the last result, for the cache and /metrics */
	bool has_last;
	enum healthd_status last_status;
	int64_t last_done, last_duration;
	char last_msg[REPORT_MESSAGE_MAX];
	size_t last_nvalues;
	struct report_value last_values[HEALTHD_VALUES_MAX];
	uint64_t runs, failures, timeouts;
	/* background checks (interval_ms) and thresholds: see sched_main() and
	 * thresholds_count() */
	bool last_timed_out;
	int64_t last_wall_ms;          /* CLOCK_REALTIME when the last result came in */
	int64_t next_run;              /* CLOCK_MONOTONIC ms of the next background run */
	enum healthd_status effective; /* what requests answer, once has_last */
	uint32_t fail_streak, pass_streak; /* consecutive failed / passing runs */
};

/* A worker thread's slot. Workers are joined, never detached, so that their
 * thread-local destructors (OpenSSL's error state, say) have run before
 * shutdown unloads the plugins that own them. */
struct worker {
	struct runner *r;
	pthread_t thread;
	bool used;   /* a thread was started here and not joined yet */
	bool exited; /* it left worker_main(); join it to finish it */
};

struct runner {
	const struct registry *reg; /* the newest attached: runner_submit()'s ids */
	pthread_mutex_t lock;
	pthread_cond_t work_cv;  /* workers: a flight was queued, or stop */
	pthread_cond_t timer_cv; /* timer: an earlier deadline, or stop */
	pthread_cond_t idle_cv;  /* shutdown: a worker left or a run returned */
	struct cstate **cs;      /* by slot (struct check.slot); 0 and freed ones NULL */
	size_t ncs, cscap;
	struct cstate *qhead, *qtail;
	int target;              /* workers wanted */
	int active;              /* workers alive and not stuck in an abandoned run */
	int live;                /* worker threads alive */
	int max_threads;
	struct worker *workers;  /* max_threads slots */
	int executing;           /* runs inside plugin code, inline ones included */
	int executing_inline;    /* of which on HTTP threads */
	int resuming;            /* threads resuming finished jobs outside the lock */
	bool stopping;
	int64_t timer_wake;      /* when the timer looks next; INT64_MAX: idle */
	struct runner_job *budgets; /* unfinished jobs with an answer budget */
	pthread_t timer;
	bool timer_started;
	/* the background schedule (runner_start) */
	pthread_cond_t sched_cv; /* scheduler: stop */
	pthread_t sched;
	bool sched_started;
	bool scheduled;          /* background checks answer from their last run */
	uint64_t rng;            /* jitter (xorshift64), under the lock */
};

static void *worker_main(void *arg);
static void *timer_main(void *arg);
static void unlist_budget(struct runner_job *job);
static void *sched_main(void *arg);

/* The seed's true: OK and WARNING pass (format_passed(), without the view). */
static inline bool
status_passes(enum healthd_status st)
{
	return st == HEALTHD_OK || st == HEALTHD_WARNING;
}
static void thresholds_count(struct cstate *c, enum healthd_status st);
static void thresholds_recheck(struct cstate *c);
static int64_t stale_after_ms(const struct check *k);
static void fill_background(struct cstate *c, struct slot *s, int64_t now,
                            struct runner_job **done);
static void stats_locked(const struct runner *r, const struct cstate *c,
                         struct runner_stats *out);

static void
fill(struct slot *s, enum healthd_status st, const char *msg, int64_t dur, bool cached,
     bool timed_out, struct runner_job **done)
{
	struct runner_job *job = s->job;

	s->msg = (msg != NULL && msg[0] != '\0') ? strdup(msg) : NULL;
	s->res = (struct runner_result){
		.status = st,
		.cached = cached,
		.timed_out = timed_out,
		.duration_ms = dur,
		.message = s->msg ? s->msg : "",
		.measured_ms = clock_wall_ms(),
		.run_status = st,
		.age_ms = -1,
	};
	s->flight = NULL;
	if (--job->pending == 0)
		unlist_budget(job);
	if (job->pending == 0 && job->armed) {
		job->done_next = *done;
		*done = job;
	}
}

/* Gives a filled slot its own copy of a run's values (none if out of memory). */
static void
fill_values(struct slot *s, const struct report_value *v, size_t n)
{
	if (n == 0 || (s->values = malloc(n * sizeof(*v))) == NULL)
		return;
	memcpy(s->values, v, n * sizeof(*v));
	s->res.values = s->values;
	s->res.nvalues = n;
}

static void
answer_waiters(struct cstate *c, enum healthd_status st, const char *msg, int64_t dur,
               bool timed_out, const struct report_value *v, size_t nv,
               struct runner_job **done)
{
	struct slot *s = c->waiters, *next;

	c->waiters = NULL;
	for (; s != NULL; s = next) {
		next = s->next;
		s->flight = NULL;
		fill(s, st, msg, dur, false, timed_out, done);
		fill_values(s, v, nv);
	}
}

/* s waits for c's flight (pushed at the head of its waiters). */
static void
wait_for(struct cstate *c, struct slot *s)
{
	s->flight = c;
	s->prev = NULL;
	s->next = c->waiters;
	if (c->waiters != NULL)
		c->waiters->prev = s;
	c->waiters = s;
}

/* Takes a waiting s off its flight's waiters; the flight goes on. */
static void
unwait(struct slot *s)
{
	struct cstate *c = s->flight;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		c->waiters = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->flight = NULL;
}

/* Puts a job on the budget list; returns whether the timer must wake sooner. */
static bool
list_budget(struct runner *r, struct runner_job *job, int64_t deadline)
{
	job->budget_deadline = deadline;
	job->budgeted = true;
	job->bprev = NULL;
	job->bnext = r->budgets;
	if (r->budgets != NULL)
		r->budgets->bprev = job;
	r->budgets = job;
	if (deadline >= r->timer_wake)
		return false;
	r->timer_wake = deadline;
	return true;
}

/* Takes a finished (or expiring) job off the budget list; idempotent. */
static void
unlist_budget(struct runner_job *job)
{
	struct runner *r = job->r;

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

/* The job's answer budget passed: every slot still waiting is answered as
 * timed out now; the flights it leaves go on for their other waiters. */
static void
expire_budget(struct runner_job *job, int64_t now, struct runner_job **done)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "timeout after %d ms (group timeout_ms)", job->budget_ms);
	unlist_budget(job);
	for (size_t i = 0; i < job->n; i++) {
		struct slot *s = &job->slots[i];

		if (s->flight == NULL)
			continue;
		unwait(s);
		fill(s, HEALTHD_CRITICAL, msg, now - job->submitted, false, true, done);
	}
}

/*
 * The check's last result as requests read it: its effective status (after
 * thresholds) and message, noting a run that thresholds held back.
 */
static void
effective_message(const struct cstate *c, char *buf, size_t len)
{
	bool held = status_passes(c->effective) != status_passes(c->last_status);

	if (!held)
		snprintf(buf, len, "%s", c->last_msg);
	else if (status_passes(c->effective))
		snprintf(buf, len, "%s (failure %u of %d before critical)", c->last_msg,
		         c->fail_streak, c->check->failures_before_critical);
	else
		snprintf(buf, len, "%s (success %u of %d before passing)", c->last_msg,
		         c->pass_streak, c->check->successes_before_passing);
}

/* Answers the flight's waiters with the run just recorded, thresholds applied. */
static void
answer_run(struct cstate *c, const struct report_value *v, size_t nv, struct runner_job **done)
{
	char msg[REPORT_MESSAGE_MAX + 64];
	struct slot *s = c->waiters;

	effective_message(c, msg, sizeof(msg));
	answer_waiters(c, c->effective, msg, c->last_duration,
	               c->last_timed_out && !status_passes(c->effective), v, nv, done);
	for (; s != NULL; s = s->next) {
		s->res.run_status = c->last_status;
		/* the run's one stamp, as its cached answers and /metrics give it;
		 * the clock read again here could be a millisecond on */
		s->res.measured_ms = c->last_wall_ms;
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
 * Resumes the jobs in done outside the lock; called and returns with it held.
 * Counted in `resuming`, so that shutdown waits for the last resume before
 * the HTTP server may be stopped (which must not find a connection suspended).
 */
static void
resume_unlocked(struct runner *r, struct runner_job *done)
{
	if (done == NULL)
		return;
	r->resuming++;
	pthread_mutex_unlock(&r->lock);
	resume_all(done);
	pthread_mutex_lock(&r->lock);
	r->resuming--;
	pthread_cond_broadcast(&r->idle_cv);
}

/* Takes c off the work queue (it expired before a worker picked it up). */
static void
unqueue(struct runner *r, struct cstate *c)
{
	struct cstate **p = &r->qhead, *prev = NULL;

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

static void
record(struct cstate *c, enum healthd_status st, const char *msg, int64_t dur, int64_t now)
{
	thresholds_count(c, st); /* before has_last: the first run is taken as it is */
	c->last_wall_ms = clock_wall_ms(); /* health+json's time, and /metrics' */
	c->last_timed_out = false; /* the caller sets it */
	c->has_last = true;
	c->last_status = st;
	c->last_duration = dur;
	c->last_done = now;
	snprintf(c->last_msg, sizeof(c->last_msg), "%s", msg);
	c->last_nvalues = 0; /* a run that returned sets them after this */
	if (st >= HEALTHD_CRITICAL)
		c->failures++;
}

/* A replacement for a worker stuck in an abandoned run, so that one stuck
 * check never starves the others. Bounded: one per check at most. */
static void
spawn_worker(struct runner *r)
{
	struct worker *w = NULL;
	int rc;

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

	snprintf(msg, sizeof(msg), "timeout after %d ms", c->check->timeout_ms);
	c->abandoned = true;
	c->timeouts++;
	if (c->report != NULL)
		atomic_store_explicit(&c->report->cancelled, true, memory_order_relaxed);
	record(c, HEALTHD_CRITICAL, msg, now - c->queued_at, now);
	c->last_timed_out = true;
	answer_run(c, NULL, 0, done);
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
	/* late, though the timer had not seen it yet; a run that stopped at its
	 * deadline has HEALTHD_DEADLINE_GRACE_MS to be heard (ABI 1.2) */
	if (!c->abandoned && now > c->deadline + HEALTHD_DEADLINE_GRACE_MS)
		expire(r, c, now, done);
	if (c->abandoned && r->stopping) {
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
		record(c, st, report->message, dur, now);
		c->last_timed_out = timed_out;
		c->last_nvalues = report->nvalues;
		memcpy(c->last_values, report->values, report->nvalues * sizeof(report->values[0]));
		answer_run(c, c->last_values, c->last_nvalues, done);
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
	resume_unlocked(r, done);
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
	resume_unlocked(r, done);
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
		int64_t now = clock_ms(), next = INT64_MAX;

		for (size_t i = 0; i < r->ncs; i++) {
			struct cstate *c = r->cs[i];
			if (c == NULL)
				continue;
			/* an inline flight waiting for its turn on the submitting
			 * thread is not the timer's: the run before it is */
			if (!c->busy || c->abandoned || (c->inline_run && !c->executing))
				continue;
			if (c->deadline + HEALTHD_DEADLINE_GRACE_MS <= now)
				expire(r, c, now, &done);
			else if (c->deadline + HEALTHD_DEADLINE_GRACE_MS < next)
				next = c->deadline + HEALTHD_DEADLINE_GRACE_MS;
		}
		for (struct runner_job *job = r->budgets, *bnext; job != NULL; job = bnext) {
			bnext = job->bnext;
			if (job->budget_deadline <= now)
				expire_budget(job, now, &done);
			else if (job->budget_deadline < next)
				next = job->budget_deadline;
		}
		r->timer_wake = next;
		if (done != NULL) {
			resume_unlocked(r, done);
			continue;
		}
		if (next == INT64_MAX) {
			pthread_cond_wait(&r->timer_cv, &r->lock);
		} else {
			struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000L};
			pthread_cond_timedwait(&r->timer_cv, &r->lock, &ts);
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct runner *
runner_new(struct registry *reg, int workers)
{
	pthread_condattr_t attr;
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
	r->timer_wake = INT64_MAX;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* deadlines are monotonic */
	pthread_cond_init(&r->work_cv, &attr);
	pthread_cond_init(&r->timer_cv, &attr);
	pthread_cond_init(&r->idle_cv, &attr);
	pthread_cond_init(&r->sched_cv, &attr);
	pthread_condattr_destroy(&attr);
	r->rng = (uint64_t)clock_wall_ms() ^ ((uint64_t)(uintptr_t)r << 16) ^ 0x9e3779b97f4a7c15u;
	if (runner_attach(r, reg) == -1) {
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
	return runner_submit_in(r, NULL, ids, n, 0);
}

struct runner_job *
runner_submit_budget(struct runner *r, const uint32_t *ids, size_t n, int budget_ms)
{
	return runner_submit_in(r, NULL, ids, n, budget_ms);
}

struct runner_job *
runner_submit_in(struct runner *r, const struct registry *reg, const uint32_t *ids, size_t n,
                 int budget_ms)
{
	struct runner_job *job, *done = NULL;
	struct cstate *inl = NULL;
	bool wake_timer = false;
	int queued = 0;
	int64_t now;

	job = calloc(1, sizeof(*job) + n * sizeof(struct slot));
	if (job == NULL)
		return NULL;
	job->r = r;
	job->n = n;
	job->pending = n;
	now = clock_ms();
	job->submitted = now;
	job->budget_ms = budget_ms;

	pthread_mutex_lock(&r->lock);
	if (reg == NULL)
		reg = r->reg;
	for (size_t i = 0; i < n; i++) {
		struct cstate *c = r->cs[registry_at(reg, ids[i])->slot];
		struct slot *s = &job->slots[i];

		s->job = job;
		if (r->stopping) {
			fill(s, HEALTHD_UNKNOWN, "healthd is shutting down", 0, false, false, &done);
		} else if (r->scheduled && c->check->interval_ms > 0) {
			fill_background(c, s, now, &done); /* never runs it */
		} else if (c->check->cache_ms > 0 && c->has_last &&
		           now - c->last_done < c->check->cache_ms) {
			char msg[REPORT_MESSAGE_MAX + 64];
			effective_message(c, msg, sizeof(msg));
			fill(s, c->effective, msg, c->last_duration, true, false, &done);
			fill_values(s, c->last_values, c->last_nvalues);
			s->res.measured_ms = c->last_wall_ms;
			s->res.run_status = c->last_status;
		} else if (c->busy && c->abandoned) {
			char msg[96];
			snprintf(msg, sizeof(msg), "timeout after %d ms (an earlier run is still stuck)",
			         c->check->timeout_ms);
			fill(s, HEALTHD_CRITICAL, msg, 0, false, true, &done);
		} else {
			if (!c->busy) {
				/* a new flight; later requests for this check join it */
				c->busy = true;
				c->queued_at = now;
				c->deadline = now + c->check->timeout_ms;
				c->flying = c->check;
				if (c->check->exec != NULL) {
					wait_for(c, s);
					if (c->deadline + HEALTHD_DEADLINE_GRACE_MS < r->timer_wake) {
						r->timer_wake = c->deadline + HEALTHD_DEADLINE_GRACE_MS;
						wake_timer = true;
					}
					dispatch_remote(r, c, now, &done);
					continue;
				} else if (c->check->flags & HEALTHD_CHECK_INLINE) {
					c->inline_run = true;
					c->qnext = inl;
					inl = c;
				} else {
					c->qnext = NULL;
					if (r->qtail != NULL)
						r->qtail->qnext = c;
					else
						r->qhead = c;
					r->qtail = c;
					queued++;
				}
				/* inline flights too: one that hangs still answers its
				 * joiners at the deadline. At most one wake-up per
				 * timeout while the timer idles. */
				if (c->deadline + HEALTHD_DEADLINE_GRACE_MS < r->timer_wake) {
					r->timer_wake = c->deadline + HEALTHD_DEADLINE_GRACE_MS;
					wake_timer = true;
				}
			}
			wait_for(c, s);
		}
	}
	if (budget_ms > 0 && job->pending > 0)
		wake_timer |= list_budget(r, job, now + budget_ms);
	while (queued-- > 0) /* one worker per flight: they run side by side */
		pthread_cond_signal(&r->work_cv);
	if (wake_timer)
		pthread_cond_signal(&r->timer_cv);
	while (inl != NULL) {
		struct cstate *c = inl;
		inl = c->qnext;
		execute(r, c, false);
	}
	/* job is not armed yet, so done holds only other requests' jobs */
	resume_unlocked(r, done);
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
	return &job->slots[i].res;
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
		free(job->slots[i].msg);
		free(job->slots[i].values);
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
		*failing += c->has_last && c->effective >= HEALTHD_CRITICAL; /* thresholds applied */
	}
	pthread_mutex_unlock(&r->lock);
}

static void
stats_locked(const struct runner *r, const struct cstate *c, struct runner_stats *out)
{
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
		.effective_status = c->effective,
	};
	if (r->scheduled && c->check->interval_ms > 0 && c->has_last &&
	    clock_ms() - c->last_done > stale_after_ms(c->check))
		out->effective_status = HEALTHD_CRITICAL;
	memcpy(out->last_values, c->last_values, c->last_nvalues * sizeof(c->last_values[0]));
}

int
runner_attach(struct runner *r, struct registry *reg)
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
		thresholds_recheck(c);
	}
	free(fresh);
	r->reg = reg;
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
		answer_waiters(c, HEALTHD_UNKNOWN, "healthd is shutting down", 0, false, NULL, 0,
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
	resume_unlocked(r, done);
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
		int64_t now = clock_ms();
		struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};
		if (now >= until)
			break;
		pthread_cond_timedwait(&r->idle_cv, &r->lock, &ts);
	}
	/* Resumes never block: wait for every one, or the HTTP server could be
	 * stopped with a connection still suspended. */
	while (r->resuming > 0)
		pthread_cond_wait(&r->idle_cv, &r->lock);
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
	for (size_t i = 0; i < r->ncs; i++)
		free(r->cs[i]);
	free(r->cs);
	free(r);
}

/* ---- background checks and thresholds (issue 13) ---- */


/* Runs start at most interval_ms apart and end by their timeout (plus the
 * grace the timer gives a run that stops at its deadline): a result older
 * than that means runs have stopped coming. */
static int64_t
stale_after_ms(const struct check *k)
{
	return (int64_t)k->interval_ms + k->timeout_ms + HEALTHD_DEADLINE_GRACE_MS;
}

/*
 * Counts a run for the thresholds (Consul's semantics): the effective status
 * turns failing only after failures_before_critical failed runs in a row, and
 * back to passing only after successes_before_passing passing runs in a row.
 * Within the same side (OK and WARNING, or CRITICAL and UNKNOWN) it follows
 * the run at once. The first run ever sets it: there is nothing to damp yet.
 */
static void
thresholds_count(struct cstate *c, enum healthd_status st)
{
	bool passed = status_passes(st);
	uint32_t need;

	if (passed) {
		c->pass_streak++;
		c->fail_streak = 0;
		need = (uint32_t)c->check->successes_before_passing;
	} else {
		c->fail_streak++;
		c->pass_streak = 0;
		need = (uint32_t)c->check->failures_before_critical;
	}
	if (!c->has_last || passed == status_passes(c->effective) ||
	    (passed ? c->pass_streak : c->fail_streak) >= need)
		c->effective = st;
}

/* A kept check's thresholds may have changed (a reload): one that the runs
 * held back already meet answers as they do. */
static void
thresholds_recheck(struct cstate *c)
{
	bool passed = status_passes(c->last_status);
	uint32_t streak = passed ? c->pass_streak : c->fail_streak;
	int need = passed ? c->check->successes_before_passing
	                  : c->check->failures_before_critical;

	if (c->has_last && passed != status_passes(c->effective) && streak >= (uint32_t)need)
		c->effective = c->last_status;
}

/* A request's answer for a background check: its last result, never a run. */
static void
fill_background(struct cstate *c, struct slot *s, int64_t now, struct runner_job **done)
{
	char msg[REPORT_MESSAGE_MAX + 64];
	int64_t age = now - c->last_done;

	if (!c->has_last) {
		fill(s, HEALTHD_CRITICAL, "no result yet", 0, false, false, done);
	} else if (age > stale_after_ms(c->check)) {
		snprintf(msg, sizeof(msg), "stale: last result %.1f s ago", (double)age / 1000.0);
		fill(s, HEALTHD_CRITICAL, msg, c->last_duration, false, false, done);
		s->res.run_status = c->last_status;
		s->res.age_ms = age;
		s->res.measured_ms = c->last_wall_ms;
	} else {
		effective_message(c, msg, sizeof(msg));
		fill(s, c->effective, msg, c->last_duration, false,
		     c->last_timed_out && !status_passes(c->effective), done);
		fill_values(s, c->last_values, c->last_nvalues);
		s->res.run_status = c->last_status;
		s->res.age_ms = age;
		s->res.measured_ms = c->last_wall_ms;
	}
	s->res.background = true;
}

/* Up to a tenth of the interval (1 s at most) earlier, so that checks with
 * the same interval spread out instead of hitting their targets together. */
static int64_t
jitter_ms(struct runner *r, int interval_ms)
{
	int64_t span = interval_ms / 10 < 1000 ? interval_ms / 10 : 1000;

	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return span > 0 ? (int64_t)(r->rng % (uint64_t)(span + 1)) : 0;
}

/* A background run: a flight like a request's, with nobody waiting for it.
 * Its end is recorded by finish() or expire(), as every run's is. */
static void
background_start(struct runner *r, struct cstate *c, int64_t now, struct runner_job **done)
{
	c->busy = true;
	c->queued_at = now;
	c->deadline = now + c->check->timeout_ms;
	c->flying = c->check;
	if (c->deadline + HEALTHD_DEADLINE_GRACE_MS < r->timer_wake) {
		r->timer_wake = c->deadline + HEALTHD_DEADLINE_GRACE_MS;
		pthread_cond_signal(&r->timer_cv);
	}
	if (c->check->exec != NULL) {
		dispatch_remote(r, c, now, done);
		return;
	}
	/* an inline check too: the scheduler never runs plugin code itself */
	c->qnext = NULL;
	if (r->qtail != NULL)
		r->qtail->qnext = c;
	else
		r->qhead = c;
	r->qtail = c;
	pthread_cond_signal(&r->work_cv);
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
		int64_t now = clock_ms(), next = INT64_MAX;

		for (size_t i = 0; i < r->ncs; i++) {
			struct cstate *c = r->cs[i];
			int interval;

			if (c == NULL || c->dead || (interval = c->check->interval_ms) <= 0)
				continue;
			if (c->next_run <= now) {
				if (!c->busy)
					background_start(r, c, now, &done);
				c->next_run = now + interval - jitter_ms(r, interval);
			}
			if (c->next_run < next)
				next = c->next_run;
		}
		/* no job waits for a background run; a failed dispatch answers none */
		resume_unlocked(r, done);
		if (r->stopping)
			break;
		if (next == INT64_MAX) {
			pthread_cond_wait(&r->sched_cv, &r->lock); /* none yet: a reload wakes it */
		} else {
			struct timespec ts = {.tv_sec = next / 1000,
			                      .tv_nsec = (next % 1000) * 1000000L};
			pthread_cond_timedwait(&r->sched_cv, &r->lock, &ts);
		}
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
