/*
 * runner_impl.h - the runner's insides, shared by runner.c (pool, flights,
 * results) and runner_schedule.c (background checks): its structs, under the
 * runner's one lock, and the two functions the scheduler calls.
 */
#ifndef HEALTHD_RUNNER_IMPL_H
#define HEALTHD_RUNNER_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <healthd/plugin.h>

#include "history.h"
#include "lock.h"
#include "registry.h"
#include "report.h"
#include "runner.h"
#include "thresholds.h"
#include "transitions.h"

/* One check's answer in a job: filled at once, or by the flight it waits for.
 * (In the runner a `slot` is only a check state's index: struct check.slot.) */
struct answer {
	struct runner_job *job;
	struct cstate *cs;   /* the check's state, for its annotations */
	struct answer *next; /* next waiter of the same flight */
	struct answer *prev; /* ...and the one before, so that a budget can unlink it */
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
	int max_age_ms;       /* past the budget, a last result up to this old */
	int64_t submitted, budget_deadline;
	bool budgeted;
	struct runner_job *bprev, *bnext;
	struct answer answers[];
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
	struct answer *waiters;
	struct cstate *qnext;
	/* the last result, for the cache and /metrics */
	bool has_last;
	enum healthd_status last_status;
	int64_t last_done, last_duration;
	char last_msg[REPORT_MESSAGE_MAX];
	size_t last_nvalues;
	struct report_value last_values[HEALTHD_VALUES_MAX];
	uint64_t runs, failures, timeouts;
	/* background checks (interval_ms) and thresholds: see runner_schedule.c and
	 * thresholds.h */
	bool last_timed_out;
	int64_t last_wall_ms;          /* CLOCK_REALTIME when the last result came in */
	int64_t next_run;              /* CLOCK_MONOTONIC ms of the next background run */
	struct thresholds th;          /* th.effective: what requests answer, once has_last */
	struct transitions tr;         /* th.effective's changes, for the log */
	long hidx;                     /* its index in runner.hist; -1: none */
	bool flapping;                 /* the history says so, as of its last result */
};

/* A result for the history store, saved after the lock is dropped (it writes). */
struct runner_save {
	struct runner_save *next;
	char name[CHECK_NAME_MAX + 1];
	int64_t time_ms;
	int status;
	uint32_t duration_ms;
	char msg[HISTORY_MSG_SIZE];
	bool has_t;
	struct history_transition t;
};

/* A log line made under the lock, written after it is dropped (stderr may block). */
struct runner_line {
	struct runner_line *next;
	int level;
	char text[];
};

/* A worker thread's entry in runner.workers. Workers are joined, never detached, so that their
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
	pthread_mutex_t lock;    /* guards all of the runner; taken before executors' (runner.h) */
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
	struct worker *workers;  /* max_threads entries */
	int executing;           /* runs inside plugin code, inline ones included */
	int executing_inline;    /* of which on HTTP threads */
	int resuming;            /* threads resuming finished jobs outside the lock */
	bool stopping;
	int64_t timer_wake;      /* when the timer looks next; TIMER_NONE: idle */
	struct runner_job *budgets; /* unfinished jobs with an answer budget */
	pthread_t timer;
	bool timer_started;
	/* the background schedule (runner_start) */
	pthread_cond_t sched_cv; /* scheduler: stop */
	pthread_t sched;
	bool sched_started;
	bool scheduled;          /* background checks answer from their last run */
	uint64_t rng;            /* jitter (xorshift64), under the lock */
	/* state-change lines waiting for runner_resume_unlocked() to write them */
	struct runner_line *lines, *lines_tail;
	/* the history results are recorded into, and its store (runner_set_history) */
	struct history *hist;
	struct history_store *store;   /* NULL once runner_shutdown() is over */
	struct runner_save *saves, *saves_tail; /* for the store, like lines */
};

/* Starts c's flight (runner.c); with the lock held. inl NULL: never inline. */
void runner_flight_start(struct runner *r, struct cstate *c, int64_t now, struct cstate **inl,
                         struct runner_job **done);
/* Resumes the jobs in done and writes the lines waiting outside the lock;
 * called and returns with it held. */
void runner_resume_unlocked(struct runner *r, struct runner_job *done);

/* Wakes the timer thread if at is before its next wake-up; lock held. */
void runner_wake_timer(struct runner *r, int64_t at);

/* runner_record.c: what a finished run leaves behind (see there). */
void runner_record(struct runner *r, struct cstate *c, enum healthd_status st, const char *msg,
                   int64_t dur, int64_t now);
const char *runner_suppressor(const struct runner *r, const struct cstate *c,
                              enum healthd_status st);
void runner_queue_line(struct runner *r, int level, const char *text);
void runner_write_lines(struct runner_line *line);
void runner_write_saves(struct history_store *st, struct runner_save *sv);
void runner_index_history(struct runner *r);

#endif
