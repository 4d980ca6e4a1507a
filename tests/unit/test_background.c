/*
 * Unit tests: thresholds counted per run, runner_adopt() carrying a check's
 * history to a new runner (reload), and the background schedule of
 * runner_start(): requests never run a background check, "no result yet",
 * stale results, and a shutdown that stops the scheduler. Waits are for
 * events, bounded by 10 s times HEALTHD_TIME_SCALE.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "report.h"
#include "runner.h"
#include "testing.h"

static int64_t bound_ms = 10000; /* times HEALTHD_TIME_SCALE, set in main() */

/* "flip": answers whatever flip_status holds; counts its runs. */
static atomic_int flip_status = HEALTHD_OK;
static atomic_int flip_runs;

static enum healthd_status
run_flip(void *state, struct healthd_report *report)
{
	(void)state;
	atomic_fetch_add(&flip_runs, 1);
	snprintf(report->message, sizeof(report->message), "run %d", atomic_load(&flip_runs));
	return (enum healthd_status)atomic_load(&flip_status);
}

/* "counted": OK, counts its runs; "gated" waits until gate_open (bounded). */
static atomic_int counted_runs, gated_runs;
static atomic_bool gate_open;

static enum healthd_status
run_counted(void *state, struct healthd_report *report)
{
	(void)state;
	(void)report;
	atomic_fetch_add(&counted_runs, 1);
	return HEALTHD_OK;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1)
		;
}

static enum healthd_status
run_gated(void *state, struct healthd_report *report)
{
	int64_t until = clock_ms() + 60000;

	(void)state;
	(void)report;
	atomic_fetch_add(&gated_runs, 1);
	while (!atomic_load(&gate_open) && clock_ms() < until)
		sleep_ms(5);
	return HEALTHD_OK;
}

/* "hangs": 800 ms past a 100 ms timeout, ignoring the deadline. */
static enum healthd_status
run_hangs(void *state, struct healthd_report *report)
{
	(void)state;
	(void)report;
	sleep_ms(800);
	return HEALTHD_OK;
}

enum { FLIP, COUNTED, GATED, HANGS };

/* id        run          interval  timeout  failures  successes
 * (flip_failures: flip's failures_before_critical, as a reload may change it;
 * flip_slot: its runner state, kept across runner_attach(); background: false
 * makes every check run on request) */
static struct registry *
make_registry_with(int flip_failures, uint32_t flip_slot, bool background)
{
	static const struct {
		const char *name;
		enum healthd_status (*run)(void *, struct healthd_report *);
		int interval_ms, timeout_ms, failures, successes;
	} defs[] = {
		[FLIP]    = {"flip",    run_flip,    0,     2000,  3, 2},
		[COUNTED] = {"counted", run_counted, 60000, 2000,  0, 0},
		[GATED]   = {"gated",   run_gated,   100,   60000, 0, 0},
		[HANGS]   = {"hangs",   run_hangs,   100,   100,   0, 0},
	};
	struct registry *r = registry_new();
	char err[256];

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		struct check c = {.run = defs[i].run, .origin = "t", .timeout_ms = defs[i].timeout_ms,
		                  .interval_ms = defs[i].interval_ms,
		                  .failures_before_critical = defs[i].failures,
		                  .successes_before_passing = defs[i].successes};
		strcpy(c.name, defs[i].name);
		if (i == FLIP) {
			c.failures_before_critical = flip_failures;
			c.slot = flip_slot;
		}
		if (!background)
			c.interval_ms = 0;
		if (registry_add(r, &c, err, sizeof(err)) == -1)
			abort();
	}
	registry_seal(r);
	return r;
}

static struct registry *
make_registry(void)
{
	return make_registry_with(3, 0, true);
}

/* resume() of the jobs below: posts; the test waits for it. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int resumed;

static void
no_suspend(void *arg)
{
	(void)arg;
}

static void
on_resume(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	resumed++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

/* One job for check id, waited for (bounded); NULL if it never finished. */
static struct runner_job *
run_one(struct runner *r, uint32_t id)
{
	struct runner_job *job;
	int64_t until = clock_ms() + bound_ms;
	bool ok;

	pthread_mutex_lock(&lock);
	resumed = 0;
	pthread_mutex_unlock(&lock);
	job = runner_submit(r, &id, 1);
	if (job == NULL || !runner_job_arm(job, no_suspend, on_resume, NULL))
		return job;
	pthread_mutex_lock(&lock);
	while (resumed == 0 && clock_ms() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&cond, &lock, &ts);
	}
	ok = resumed > 0;
	pthread_mutex_unlock(&lock);
	return ok ? job : NULL; /* not resumed: still on a waiter list, never free it */
}

/* Runs flip once with st; expects the answer want (effective) and the run's st. */
static int
flip_once(struct runner *r, enum healthd_status st, enum healthd_status want,
          const char *note)
{
	struct runner_job *job;
	const struct runner_result *res;

	atomic_store(&flip_status, st);
	job = run_one(r, FLIP);
	if (job == NULL)
		return -1;
	res = runner_job_result(job, 0);
	EXPECT_EQ_INT(want, res->status);
	EXPECT_EQ_INT(st, res->run_status);
	if (note != NULL)
		EXPECT_CONTAINS(note, res->message);
	else
		EXPECT_TRUE(strchr(res->message, '(') == NULL);
	runner_job_free(job);
	return 0;
}

DEF_TEST(thresholds_hold_both_ways)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 2);
	struct runner_stats st;
	int rc = 0;

	/* the first run is taken as it is: nothing to damp yet */
	rc |= flip_once(r, HEALTHD_OK, HEALTHD_OK, NULL);
	rc |= flip_once(r, HEALTHD_CRITICAL, HEALTHD_OK, "(failure 1 of 3 before critical)");
	rc |= flip_once(r, HEALTHD_UNKNOWN, HEALTHD_OK, "(failure 2 of 3 before critical)");
	rc |= flip_once(r, HEALTHD_CRITICAL, HEALTHD_CRITICAL, NULL);
	rc |= flip_once(r, HEALTHD_UNKNOWN, HEALTHD_UNKNOWN, NULL); /* same side: at once */
	rc |= flip_once(r, HEALTHD_WARNING, HEALTHD_UNKNOWN, "(success 1 of 2 before passing)");
	rc |= flip_once(r, HEALTHD_OK, HEALTHD_OK, NULL);
	rc |= flip_once(r, HEALTHD_WARNING, HEALTHD_WARNING, NULL);
	runner_stats(r, FLIP, &st);
	EXPECT_EQ_INT(8, st.runs);
	EXPECT_EQ_INT(4, st.failures);
	EXPECT_EQ_INT(HEALTHD_WARNING, st.effective_status);
	EXPECT_TRUE(st.last_wall_ms > 0);
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL));
	runner_free(r);
	registry_free(reg);
	return rc;
}

/* Waits until fn() is true, bound_ms at most. */
static bool wait_for(bool (*fn)(void));
static int counted_base;

static bool
counted_ran_since_base(void)
{
	return atomic_load(&counted_runs) > counted_base;
}

/*
 * A reload (runner_attach) keeps a check's state by its slot: its streak goes
 * on under the new thresholds, which a held-back answer may already meet;
 * and a background check the reload adds runs at once, though the scheduler
 * had nothing to do before.
 */
DEF_TEST(attach_keeps_streaks_and_schedules_new_background_checks)
{
	struct registry *reg = make_registry_with(3, 0, false), *reg2;
	struct runner *r = runner_new(reg, 2);
	struct runner_stats st;
	int rc = 0;

	atomic_store(&gate_open, true); /* reg2's gated check must not hold shutdown */
	EXPECT_EQ_INT(0, runner_start(r));
	rc |= flip_once(r, HEALTHD_OK, HEALTHD_OK, NULL);
	rc |= flip_once(r, HEALTHD_CRITICAL, HEALTHD_OK, "(failure 1 of 3");
	rc |= flip_once(r, HEALTHD_CRITICAL, HEALTHD_OK, "(failure 2 of 3");
	counted_base = atomic_load(&counted_runs);
	reg2 = make_registry_with(2, registry_at(reg, FLIP)->slot, true);
	EXPECT_EQ_INT(0, runner_attach(r, reg2, NULL));
	runner_stats(r, FLIP, &st);
	EXPECT_EQ_INT(3, st.runs);
	EXPECT_EQ_INT(HEALTHD_CRITICAL, st.effective_status); /* 2 of 2 met */
	rc |= flip_once(r, HEALTHD_CRITICAL, HEALTHD_CRITICAL, NULL);
	if (!wait_for(counted_ran_since_base))
		return 1;
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL));
	runner_free(r);
	registry_free(reg);
	registry_free(reg2);
	return rc;
}

/* Waits until fn() is true, bound_ms at most. */
static bool
wait_for(bool (*fn)(void))
{
	int64_t until = clock_ms() + bound_ms;

	while (!fn()) {
		if (clock_ms() > until)
			return false;
		sleep_ms(5);
	}
	return true;
}

static bool
counted_ran(void)
{
	return atomic_load(&counted_runs) >= 1;
}

static bool
gated_ran(void)
{
	return atomic_load(&gated_runs) >= 1;
}

static bool
gated_ran_twice(void)
{
	return atomic_load(&gated_runs) >= 2;
}

static struct runner *stale_runner;

static bool
hangs_is_stale(void)
{
	uint32_t id = HANGS;
	struct runner_job *job = runner_submit(stale_runner, &id, 1);
	bool stale;

	if (job == NULL)
		return false;
	stale = !runner_job_arm(job, no_suspend, on_resume, NULL) &&
	        strncmp(runner_job_result(job, 0)->message, "stale: ", 7) == 0;
	runner_job_free(job);
	return stale;
}

DEF_TEST(background_checks_answer_from_their_last_run)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 4);
	uint32_t ids[] = {COUNTED, GATED};
	struct runner_stats st;

	atomic_store(&counted_runs, 0); /* earlier tests' runners are gone */
	atomic_store(&gated_runs, 0);
	atomic_store(&gate_open, false);
	EXPECT_EQ_INT(0, runner_start(r));
	if (!wait_for(counted_ran) || !wait_for(gated_ran))
		return 1;
	for (int i = 0; i < 100; i++) {
		/* answered at once, from the last result: never armed, never run */
		struct runner_job *job = runner_submit(r, ids, 2);
		EXPECT_TRUE(!runner_job_arm(job, no_suspend, on_resume, NULL));
		if (i == 0) {
			const struct runner_result *g = runner_job_result(job, 1);
			EXPECT_TRUE(g->background);
			EXPECT_EQ_INT(HEALTHD_CRITICAL, g->status);
			EXPECT_EQ_STR("no result yet", g->message);
			EXPECT_EQ_INT(-1, g->age_ms);
		}
		runner_job_free(job);
	}
	EXPECT_EQ_INT(1, atomic_load(&counted_runs)); /* the next one is a minute away */
	EXPECT_EQ_INT(1, atomic_load(&gated_runs));   /* still in its first run */
	runner_stats(r, GATED, &st);
	EXPECT_TRUE(!st.has_last);
	EXPECT_TRUE(st.running);

	atomic_store(&gate_open, true);
	if (!wait_for(gated_ran_twice)) /* the first ended: its schedule goes on */
		return 1;
	struct runner_job *job = runner_submit(r, ids, 2);
	EXPECT_TRUE(!runner_job_arm(job, no_suspend, on_resume, NULL));
	EXPECT_EQ_INT(HEALTHD_OK, runner_job_result(job, 0)->status);
	EXPECT_EQ_INT(HEALTHD_OK, runner_job_result(job, 1)->status);
	EXPECT_TRUE(runner_job_result(job, 1)->age_ms >= 0);
	runner_job_free(job);
	/* shutdown stops the scheduler: no run starts after it */
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL));
	int after = atomic_load(&gated_runs);
	sleep_ms(300); /* three intervals: a live scheduler would have started runs */
	EXPECT_EQ_INT(after, atomic_load(&gated_runs));
	runner_free(r);
	registry_free(reg);
	return 0;
}

DEF_TEST(a_hanging_run_makes_the_result_stale)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 2);
	uint32_t id = HANGS;
	struct runner_job *job;
	struct runner_stats st;

	EXPECT_EQ_INT(0, runner_start(r));
	stale_runner = r;
	if (!wait_for(hangs_is_stale))
		return 1;
	runner_stats(r, HANGS, &st);
	EXPECT_TRUE(st.timeouts >= 1); /* its first run, or a later one on a slow machine */
	EXPECT_EQ_INT(HEALTHD_CRITICAL, st.effective_status);
	job = runner_submit(r, &id, 1);
	EXPECT_TRUE(!runner_job_arm(job, no_suspend, on_resume, NULL));
	EXPECT_TRUE(runner_job_result(job, 0)->age_ms > 100 + 100);
	runner_job_free(job);
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL)); /* waits for the hanging run */
	runner_free(r);
	registry_free(reg);
	return 0;
}

DEF_TEST(without_runner_start_they_run_on_request)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 2);
	struct runner_job *job;
	int before = atomic_load(&counted_runs);

	job = run_one(r, COUNTED); /* as --run-check does */
	if (job == NULL)
		return 1;
	EXPECT_EQ_INT(HEALTHD_OK, runner_job_result(job, 0)->status);
	EXPECT_TRUE(!runner_job_result(job, 0)->background);
	EXPECT_EQ_INT(before + 1, atomic_load(&counted_runs));
	runner_job_free(job);
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL));
	runner_free(r);
	registry_free(reg);
	return 0;
}

int
main(void)
{
	const char *scale = getenv("HEALTHD_TIME_SCALE");

	if (scale != NULL && atof(scale) > 1)
		bound_ms = (int64_t)(bound_ms * atof(scale));
	RUN_TEST(thresholds_hold_both_ways);
	RUN_TEST(attach_keeps_streaks_and_schedules_new_background_checks);
	RUN_TEST(background_checks_answer_from_their_last_run);
	RUN_TEST(a_hanging_run_makes_the_result_stale);
	RUN_TEST(without_runner_start_they_run_on_request);
	END_TEST;
}
