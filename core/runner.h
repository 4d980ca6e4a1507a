/*
 * runner.h - runs checks: a worker pool, deadlines, single flight, cache,
 * and the per-check counters that /metrics and ?verbose=1 show.
 *
 * Every outcome reaches a request through one door: the job's answer for a
 * check is filled (by a worker, the timer, the cache or shutdown) and, when
 * the last answer is filled, the job's resume callback is called once. The
 * HTTP layer starts jobs and reads finished ones; it never sees threads or
 * flights.
 *
 * Lock order: runner, then executors. The runner's one lock is held while it
 * takes the executor set's (a flight started, expired or cancelled at
 * shutdown: runner_submit*(), the timer, the scheduler, runner_shutdown());
 * an executor reports a run's end (runner_remote_done()) without its own lock
 * held, so that the runner can take its lock then.
 */
#ifndef HEALTHD_RUNNER_H
#define HEALTHD_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <healthd/plugin.h>

#include "registry.h"
#include "report.h"

struct runner;
struct runner_job;

struct runner_result {
	enum healthd_status status;
	bool cached;          /* answered from a result younger than cache_ms */
	bool timed_out;
	int64_t duration_ms;
	const char *message;  /* "" if none; owned by the job */
	size_t nvalues;       /* values the run reported (ABI 1.2) */
	const struct report_value *values; /* owned by the job; NULL if none */
	int64_t measured_ms;  /* wall clock (ms since the epoch) when the result was
	                       * measured: a cached or background result keeps its
	                       * run's time */
	/* Thresholds and background checks: status is what the check answers
	 * (effective); run_status is its last run's own, which differs while
	 * failures_before_critical or successes_before_passing hold it back. */
	enum healthd_status run_status;
	bool background;      /* read from a background check's last run, not run */
	int64_t age_ms;       /* background: how old that run's result is; -1: none */
	/* README "History, flapping and dependencies": the check flaps (the
	 * history's flap detection), and the failing dependency a status other
	 * than OK is put down to ("" if none). The status itself stays the truth. */
	bool flapping;
	char suppressed_by[CHECK_NAME_MAX + 1];
};

/* Per check, for /metrics. */
struct runner_stats {
	uint64_t runs, failures, timeouts; /* runs: calls of run() */
	bool has_last;
	enum healthd_status last_status;
	int64_t last_duration_ms;
	bool running;
	size_t last_nvalues;  /* the last result's values */
	struct report_value last_values[HEALTHD_VALUES_MAX];
	int64_t last_wall_ms; /* CLOCK_REALTIME ms when the last result came in */
	/* what a request would answer now (if has_last): last_status after the
	 * thresholds, CRITICAL when a background check's result is stale */
	enum healthd_status effective_status;
	bool flapping;                           /* as in struct runner_result */
	char suppressed_by[CHECK_NAME_MAX + 1];
};

/* Starts `workers` threads and attaches the sealed registry. NULL on failure. */
struct runner *runner_new(struct registry *reg, int workers);

struct history;
struct history_store;
/*
 * The history every result is recorded into (history.h: the effective
 * status, after thresholds), indexed like the registry attached, and the
 * store that saves it (NULL: none). Main thread, before the first submit
 * and runner_start(). The runner owns neither; the store must stay open until
 * runner_shutdown() returned, the history until a reload replaced it (and
 * the runner is freed).
 */
void runner_set_history(struct runner *r, struct history *h, struct history_store *st);

/*
 * Reload. The runner keeps one state per check (flight, cache, counters),
 * found through struct check.slot. runner_attach() gives the checks of reg
 * without a slot a new state and points kept ones (slot set, copied from the
 * previous registry) at their new entry, then makes reg the one whose ids
 * runner_submit() and runner_stats() take. h: reg's history (indexed like
 * it), which takes over, under the runner's lock, the history of every check
 * that stays (history_carry) and the store; NULL: no history from then on.
 * Returns -1 if out of memory.
 * runner_retire_except() marks every state none of regs[0..n) has (the
 * registries requests may still use) as dead, freed once its flight is
 * over, and returns how many it marked.
 * runner_uses(reg, runs) is true while a state points at one of reg's checks
 * (a state not in any registry attached since, until it is retired and its
 * flight is over) or, with runs, a flight runs with one: only then may reg be
 * freed. A state reaches a check's plugin (check.exec); a run in process only
 * its check (a run in an executor keeps its plugin alive there).
 */
int runner_attach(struct runner *r, struct registry *reg, struct history *h);
size_t runner_retire_except(struct runner *r, const struct registry *const *regs, size_t n);
bool runner_uses(struct runner *r, const struct registry *reg, bool runs);

/*
 * Starts the background schedule: each check with interval_ms > 0 runs at
 * once, then every interval_ms (less up to a tenth, as jitter), through the
 * same flights as requests (in process or in an executor, so call it after
 * executor_start()). From then on a request for such a check reads its last
 * result and never starts a run: "no result yet" before the first, "stale:
 * ..." once it is older than interval + timeout. Without this call (as for
 * --run-check) those checks run on request like any other. Main thread,
 * once. Returns 0, or -1 if the thread could not start.
 */
int runner_start(struct runner *r);


/*
 * Starts a job for the checks ids[0..n). Fresh cached results and inline
 * checks are answered before this returns; the rest run on the pool, joined
 * to a run already in flight for the same check. Any thread. NULL: no memory.
 */
struct runner_job *runner_submit(struct runner *r, const uint32_t *ids, size_t n);

/*
 * The same with an answer budget (a group's timeout_ms): budget_ms after the
 * submit, every check still without a result is answered as timed out
 * ("timeout after N ms (group timeout_ms)") and the job finishes then. The
 * flights themselves go on for the other jobs joined to them, and their
 * results still reach the cache and /metrics. budget_ms <= 0: no budget.
 */
struct runner_job *runner_submit_budget(struct runner *r, const uint32_t *ids, size_t n,
                                        int budget_ms);
/*
 * Both, for ids of reg: an attached registry that may be older than the
 * newest (a request that began before a reload). reg NULL: the newest.
 * max_age_ms > 0: when the budget runs out, a check whose last result is at
 * most that old answers it instead (cached, with its age_ms), so that the
 * verdict does not depend on whether a probe joined a run or started one.
 */
struct runner_job *runner_submit_in(struct runner *r, const struct registry *reg,
                                    const uint32_t *ids, size_t n, int budget_ms,
                                    int max_age_ms);

/*
 * If the job is finished, returns false and calls nothing. Otherwise calls
 * suspend(arg) at once, under the runner's lock (so it cannot race the
 * finish), returns true, and later calls resume(arg) exactly once, from
 * another thread, after the last result is in.
 */
bool runner_job_arm(struct runner_job *job, void (*suspend)(void *), void (*resume)(void *),
                    void *arg);

/* Results of a finished job, in the order of the ids submitted. */
const struct runner_result *runner_job_result(const struct runner_job *job, size_t i);
size_t runner_job_count(const struct runner_job *job);
/* Frees a finished job. */
void runner_job_free(struct runner_job *job);

/* Id of the newest registry attached. */
void runner_stats(struct runner *r, uint32_t id, struct runner_stats *out);
/* For a check of any attached registry. */
void runner_stats_of(struct runner *r, const struct check *check, struct runner_stats *out);
/* Checks of the newest registry, and how many of them last failed. */
void runner_summary(struct runner *r, size_t *count, size_t *failing);

/*
 * The one door back from executors: an executor_done_fn (executor.h), handed
 * to executor_start() with the runner as arg. The run with this token of
 * check id ended with st and rep, after dur_ms. Any thread, without the
 * executors' lock. Returns false (and does nothing) if that run is not the
 * check's flight: late, or not what the executor claims.
 */
struct healthd_report;
bool runner_remote_done(void *runner, uint32_t id, uint64_t token, enum healthd_status st,
                        const struct healthd_report *rep, int64_t dur_ms);

/*
 * Answers every waiting job ("healthd is shutting down") and every later
 * submit at once; workers stop after their current run. Then waits up to
 * grace_ms for runs still inside plugin code. Returns how many are still
 * stuck there: their checks must not be destroyed, nor their plugins
 * unloaded, and the runner is then left allocated on purpose. *stuck_inline
 * (if not NULL) says how many of them hold an HTTP thread, which then cannot
 * be joined either. Returns only after every resume it caused has happened.
 */
int runner_shutdown(struct runner *r, int grace_ms, int *stuck_inline);
/* Frees the runner after runner_shutdown() returned 0. */
void runner_free(struct runner *r);

#endif
