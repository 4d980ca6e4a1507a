/*
 * Unit tests: the runner's concurrency, deadlines, single flight, cache,
 * stuck checks and shutdown, with real threads and real sleeps. Bounds are
 * generous (a shared 2-core machine) but each still fails if the runner
 * falls back to running checks one after another.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "clock.h"
#include "report.h"
#include "runner.h"
#include "testing.h"

struct sleeper {
	int ms;
	enum healthd_status status;
};

static enum healthd_status
run_sleep(void *state, struct healthd_report *report)
{
	const struct sleeper *s = state;
	struct timespec ts = {.tv_sec = s->ms / 1000, .tv_nsec = (s->ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1)
		;
	snprintf(report->message, sizeof(report->message), "slept %d ms", s->ms);
	return s->status;
}

/* "Done" signalling for armed jobs: resume posts, the test waits. */
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

/* Waits (10 s at most) until `want` jobs were resumed in all; false if not.
 * A job not resumed may still be on a waiter list: never free it then. */
static bool
wait_resumed(int want)
{
	bool ok;

	int64_t until = clock_ms() + 10000;

	pthread_mutex_lock(&lock);
	while (resumed < want && clock_ms() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&cond, &lock, &ts);
	}
	ok = resumed >= want;
	pthread_mutex_unlock(&lock);
	return ok;
}

static void
reset_resumed(void)
{
	pthread_mutex_lock(&lock);
	resumed = 0;
	pthread_mutex_unlock(&lock);
}

/* Waits in 10 ms slices until the host cancels it (ABI 1.1), 5 s at most. */
static atomic_int saw_cancel_after_ms = -1;

static enum healthd_status
run_polls(void *state, struct healthd_report *report)
{
	int64_t t0 = clock_ms();
	struct timespec slice = {0, 10000000L};

	(void)state;
	while (clock_ms() - t0 < 5000) {
		if (atomic_load(&report->cancelled)) {
			atomic_store(&saw_cancel_after_ms, (int)(clock_ms() - t0));
			break;
		}
		nanosleep(&slice, NULL);
	}
	return HEALTHD_CRITICAL;
}

/* Gives up on its own and says it was a timeout (ABI 1.1). */
static enum healthd_status
run_gives_up(void *state, struct healthd_report *report)
{
	(void)state;
	snprintf(report->message, sizeof(report->message), "timeout after %lld ms",
	         (long long)report->timeout_ms);
	report->timed_out = true;
	return HEALTHD_CRITICAL;
}

static struct sleeper s200 = {200, HEALTHD_OK};
static struct sleeper s3000 = {3000, HEALTHD_OK};
static struct sleeper s0warn = {0, HEALTHD_WARNING};

/* id  name    sleeper   timeout  cache */
static struct registry *
make_registry(void)
{
	static const struct {
		const char *name;
		struct sleeper *s;
		int timeout_ms, cache_ms;
	} defs[] = {
		{"a",      &s200,   2000, 0},
		{"b",      &s200,   2000, 0},
		{"c",      &s200,   2000, 0},
		{"stuck",  &s3000,  1000, 0},  /* room for a slow worker start */
		{"cached", &s0warn, 2000, 400},
		{"polls",  NULL,    100,  0},   /* run_polls */
		{"gives",  NULL,    700,  0},   /* run_gives_up */
	};
	struct registry *r = registry_new();
	char err[256];

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		struct check c = {.run = run_sleep, .state = defs[i].s, .origin = "t",
		                  .timeout_ms = defs[i].timeout_ms, .cache_ms = defs[i].cache_ms};
		if (strcmp(defs[i].name, "polls") == 0)
			c.run = run_polls;
		else if (strcmp(defs[i].name, "gives") == 0)
			c.run = run_gives_up;
		strcpy(c.name, defs[i].name);
		registry_add(r, &c, err, sizeof(err));
	}
	registry_seal(r);
	return r;
}

DEF_TEST(checks_run_side_by_side)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 4);
	uint32_t ids[] = {0, 1, 2};
	struct runner_job *job;
	int64_t t0 = clock_ms(), took;

	reset_resumed();
	job = runner_submit(r, ids, 3);
	EXPECT_TRUE(runner_job_arm(job, no_suspend, on_resume, NULL));
	if (!wait_resumed(1))
		return 1;
	took = clock_ms() - t0;
	EXPECT_TRUE(took >= 195 && took < 500); /* one after another would be 600 */
	for (size_t i = 0; i < 3; i++) {
		EXPECT_EQ_INT(HEALTHD_OK, runner_job_result(job, i)->status);
		EXPECT_EQ_STR("slept 200 ms", runner_job_result(job, i)->message);
	}
	runner_job_free(job);
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL));
	runner_free(r);
	registry_free(reg);
	return 0;
}

DEF_TEST(timeout_answers_at_deadline_and_frees_nothing_else)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 1); /* one worker: the stuck run takes it */
	uint32_t stuck[] = {3}, a[] = {0};
	struct runner_job *job, *job2;
	struct runner_stats st;
	int64_t t0 = clock_ms(), took;

	reset_resumed();
	job = runner_submit(r, stuck, 1);
	EXPECT_TRUE(runner_job_arm(job, no_suspend, on_resume, NULL));
	if (!wait_resumed(1))
		return 1;
	took = clock_ms() - t0;
	EXPECT_TRUE(took >= 995 && took < 2500);
	EXPECT_EQ_INT(HEALTHD_CRITICAL, runner_job_result(job, 0)->status);
	EXPECT_TRUE(runner_job_result(job, 0)->timed_out);
	EXPECT_EQ_STR("timeout after 1000 ms", runner_job_result(job, 0)->message);
	runner_stats(r, 3, &st);
	EXPECT_EQ_INT(1, st.runs); /* it did start: it is asleep in run() now */

	/* the stuck run still holds the only worker; another check must not wait */
	t0 = clock_ms();
	job2 = runner_submit(r, a, 1);
	EXPECT_TRUE(runner_job_arm(job2, no_suspend, on_resume, NULL));
	if (!wait_resumed(2))
		return 1;
	took = clock_ms() - t0;
	EXPECT_TRUE(took < 1000);
	EXPECT_EQ_INT(HEALTHD_OK, runner_job_result(job2, 0)->status);

	/* while the earlier run is stuck, the check fails at once instead of queueing */
	runner_job_free(job);
	job = runner_submit(r, stuck, 1);
	EXPECT_TRUE(!runner_job_arm(job, no_suspend, on_resume, NULL));
	EXPECT_CONTAINS("still stuck", runner_job_result(job, 0)->message);

	runner_stats(r, 3, &st);
	EXPECT_EQ_INT(1, st.runs);
	EXPECT_EQ_INT(1, st.timeouts);
	EXPECT_EQ_INT(1, st.failures);
	runner_job_free(job);
	runner_job_free(job2);
	EXPECT_EQ_INT(0, runner_shutdown(r, 5000, NULL)); /* waits for the stuck sleep to end */
	runner_free(r);
	registry_free(reg);
	return 0;
}

/* A flight that expires before any worker takes it never runs, and the next
 * request starts a fresh one (not "an earlier run is still stuck"). */
DEF_TEST(expired_in_queue_never_runs)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 1);
	uint32_t stuck[] = {3}, polls[] = {5};
	struct runner_job *job, *job2;
	struct runner_stats st;

	reset_resumed();
	job = runner_submit(r, stuck, 1); /* takes the only worker for 3 s */
	EXPECT_TRUE(runner_job_arm(job, no_suspend, on_resume, NULL));
	job2 = runner_submit(r, polls, 1); /* queued behind it, 100 ms timeout */
	EXPECT_TRUE(runner_job_arm(job2, no_suspend, on_resume, NULL));
	if (!wait_resumed(1))
		return 1;
	EXPECT_EQ_STR("timeout after 100 ms", runner_job_result(job2, 0)->message);
	runner_stats(r, 5, &st);
	EXPECT_EQ_INT(0, st.runs);
	EXPECT_TRUE(!st.running);
	if (!wait_resumed(2))
		return 1;
	runner_job_free(job);
	runner_job_free(job2);
	EXPECT_EQ_INT(0, runner_shutdown(r, 5000, NULL));
	runner_free(r);
	registry_free(reg);
	return 0;
}

DEF_TEST(single_flight)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 4);
	struct runner_job *jobs[64];
	uint32_t a[] = {0};
	struct runner_stats st;

	reset_resumed();
	for (int i = 0; i < 64; i++) {
		jobs[i] = runner_submit(r, a, 1);
		EXPECT_TRUE(runner_job_arm(jobs[i], no_suspend, on_resume, NULL));
	}
	if (!wait_resumed(64))
		return 1;
	runner_stats(r, 0, &st);
	EXPECT_EQ_INT(1, st.runs);
	for (int i = 0; i < 64; i++) {
		EXPECT_EQ_INT(HEALTHD_OK, runner_job_result(jobs[i], 0)->status);
		runner_job_free(jobs[i]);
	}
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL));
	runner_free(r);
	registry_free(reg);
	return 0;
}

DEF_TEST(cache_within_cache_ms_then_fresh)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 2);
	struct runner_job *job;
	uint32_t c[] = {4};
	struct runner_stats st;
	struct timespec ts = {0, 500000000L};
	int64_t measured;

	reset_resumed();
	job = runner_submit(r, c, 1);
	if (runner_job_arm(job, no_suspend, on_resume, NULL))
		wait_resumed(1);
	EXPECT_TRUE(!runner_job_result(job, 0)->cached);
	EXPECT_EQ_INT(HEALTHD_WARNING, runner_job_result(job, 0)->status);
	measured = runner_job_result(job, 0)->measured_ms;
	EXPECT_TRUE(measured > 0 && measured <= clock_wall_ms());
	runner_job_free(job);

	/* the wall clock moves on: a cached answer keeps its run's time */
	while (clock_wall_ms() <= measured + 2)
		nanosleep(&(struct timespec){0, 1000000L}, NULL);
	job = runner_submit(r, c, 1);
	EXPECT_TRUE(!runner_job_arm(job, no_suspend, on_resume, NULL)); /* answered at once */
	EXPECT_TRUE(runner_job_result(job, 0)->cached);
	EXPECT_EQ_INT(HEALTHD_WARNING, runner_job_result(job, 0)->status);
	EXPECT_EQ_INT(measured, runner_job_result(job, 0)->measured_ms);
	runner_job_free(job);

	nanosleep(&ts, NULL); /* past cache_ms = 400 */
	reset_resumed();
	job = runner_submit(r, c, 1);
	if (runner_job_arm(job, no_suspend, on_resume, NULL))
		wait_resumed(1);
	EXPECT_TRUE(!runner_job_result(job, 0)->cached);
	runner_job_free(job);
	runner_stats(r, 4, &st);
	EXPECT_EQ_INT(2, st.runs);
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL));
	runner_free(r);
	registry_free(reg);
	return 0;
}

DEF_TEST(shutdown_answers_waiting_jobs)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 2);
	struct runner_job *job;
	uint32_t a[] = {0};

	reset_resumed();
	job = runner_submit(r, a, 1);
	EXPECT_TRUE(runner_job_arm(job, no_suspend, on_resume, NULL));
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL));
	EXPECT_EQ_INT(1, resumed);
	EXPECT_EQ_INT(HEALTHD_UNKNOWN, runner_job_result(job, 0)->status);
	EXPECT_EQ_STR("healthd is shutting down", runner_job_result(job, 0)->message);
	runner_job_free(job);
	runner_free(r);
	registry_free(reg);
	return 0;
}

DEF_TEST(expiry_cancels_the_run)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 2);
	uint32_t polls[] = {5};
	struct runner_job *job;

	reset_resumed();
	job = runner_submit(r, polls, 1);
	EXPECT_TRUE(runner_job_arm(job, no_suspend, on_resume, NULL));
	wait_resumed(1);
	EXPECT_EQ_STR("timeout after 100 ms", runner_job_result(job, 0)->message);
	runner_job_free(job);
	/* the run sees cancelled() soon after its 100 ms deadline, not after 5 s */
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL));
	EXPECT_TRUE(atomic_load(&saw_cancel_after_ms) >= 95);
	EXPECT_TRUE(atomic_load(&saw_cancel_after_ms) < 1000);
	runner_free(r);
	registry_free(reg);
	return 0;
}

DEF_TEST(plugin_reported_timeout_is_counted)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 2);
	uint32_t gives[] = {6};
	struct runner_job *job;
	struct runner_stats st;

	reset_resumed();
	job = runner_submit(r, gives, 1);
	if (runner_job_arm(job, no_suspend, on_resume, NULL))
		wait_resumed(1);
	EXPECT_EQ_STR("timeout after 700 ms", runner_job_result(job, 0)->message);
	EXPECT_TRUE(runner_job_result(job, 0)->timed_out);
	runner_stats(r, 6, &st);
	EXPECT_EQ_INT(1, st.timeouts);
	EXPECT_EQ_INT(1, st.failures);
	runner_job_free(job);
	EXPECT_EQ_INT(0, runner_shutdown(r, 3000, NULL));
	runner_free(r);
	registry_free(reg);
	return 0;
}

/*
 * A job's answer budget: what is missing when it passes is answered as timed
 * out, what came in stays; the flight it leaves goes on for the job joined
 * to it, whose answer is the check's own, and the check's counters do not
 * count the budget as its timeout. A job finished within its budget leaves
 * the timer's list (ASan would see the timer read it after the free).
 */
DEF_TEST(budget_answers_what_is_missing)
{
	struct registry *reg = make_registry();
	struct runner *r = runner_new(reg, 4);
	uint32_t a[] = {0}, stuck[] = {3}, both[] = {4, 3};
	struct runner_job *early, *plain, *budget;
	struct runner_stats st;

	reset_resumed();
	early = runner_submit_budget(r, a, 1, 5000);
	EXPECT_TRUE(runner_job_arm(early, no_suspend, on_resume, NULL));
	if (!wait_resumed(1))
		return 1;
	EXPECT_EQ_STR("slept 200 ms", runner_job_result(early, 0)->message);
	runner_job_free(early);

	reset_resumed();
	plain = runner_submit(r, stuck, 1);
	EXPECT_TRUE(runner_job_arm(plain, no_suspend, on_resume, NULL));
	budget = runner_submit_budget(r, both, 2, 300);
	EXPECT_TRUE(runner_job_arm(budget, no_suspend, on_resume, NULL));
	if (!wait_resumed(2)) /* both: the budget's, then the check's own timeout */
		return 1;
	EXPECT_EQ_INT(HEALTHD_WARNING, runner_job_result(budget, 0)->status);
	EXPECT_TRUE(!runner_job_result(budget, 0)->timed_out);
	EXPECT_EQ_INT(HEALTHD_CRITICAL, runner_job_result(budget, 1)->status);
	EXPECT_TRUE(runner_job_result(budget, 1)->timed_out);
	EXPECT_EQ_STR("timeout after 300 ms (group timeout_ms)", runner_job_result(budget, 1)->message);
	EXPECT_TRUE(runner_job_result(budget, 1)->duration_ms >= 300);
	EXPECT_EQ_STR("timeout after 1000 ms", runner_job_result(plain, 0)->message);
	runner_stats(r, 3, &st);
	EXPECT_EQ_INT(1, st.runs);
	EXPECT_EQ_INT(1, st.timeouts);
	runner_job_free(budget);
	runner_job_free(plain);
	EXPECT_EQ_INT(0, runner_shutdown(r, 5000, NULL));
	runner_free(r);
	registry_free(reg);
	return 0;
}

int
main(void)
{
	RUN_TEST(checks_run_side_by_side);
	RUN_TEST(timeout_answers_at_deadline_and_frees_nothing_else);
	RUN_TEST(expired_in_queue_never_runs);
	RUN_TEST(single_flight);
	RUN_TEST(cache_within_cache_ms_then_fresh);
	RUN_TEST(shutdown_answers_waiting_jobs);
	RUN_TEST(expiry_cancels_the_run);
	RUN_TEST(plugin_reported_timeout_is_counted);
	RUN_TEST(budget_answers_what_is_missing);
	END_TEST;
}
