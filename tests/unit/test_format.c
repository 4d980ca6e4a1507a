/* Unit tests: the seed body, byte for byte, verbose details, health+json, metrics. */
#include <unistd.h>

#include "format.h"
#include "report.h"
#include "testing.h"

static enum healthd_status
run_ok(void *state, struct healthd_report *report)
{
	(void)state;
	(void)report;
	return HEALTHD_OK;
}

static enum healthd_status
run_fail(void *state, struct healthd_report *report)
{
	(void)state;
	snprintf(report->message, sizeof(report->message), "said \"no\"\\");
	return HEALTHD_CRITICAL;
}

static enum healthd_status
run_warn(void *state, struct healthd_report *report)
{
	(void)state;
	(void)report;
	return HEALTHD_WARNING;
}

struct fixture {
	struct registry *reg;
	struct runner *runner;
};

/* Registration order: true, foo, false, warn — inline, so jobs finish at once. */
static void
setup(struct fixture *f)
{
	static const struct {
		const char *name;
		enum healthd_status (*run)(void *, struct healthd_report *);
	} defs[] = {{"true", run_ok}, {"foo", run_ok}, {"false", run_fail}, {"warn", run_warn}};
	char err[256];

	f->reg = registry_new();
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		struct check c = {.run = defs[i].run, .flags = HEALTHD_CHECK_INLINE,
		                  .timeout_ms = 2000, .origin = "t"};
		strcpy(c.name, defs[i].name);
		registry_add(f->reg, &c, err, sizeof(err));
	}
	registry_seal(f->reg);
	f->runner = runner_new(f->reg, 1);
}

static void
teardown(struct fixture *f)
{
	EXPECT_EQ_INT(0, runner_shutdown(f->runner, 1000, NULL));
	runner_free(f->runner);
	registry_free(f->reg);
}

/* Runs the checks named in sel (already sorted) and formats the seed body. */
static char *
seed_body(struct fixture *f, const char *const *sel, size_t n, bool verbose)
{
	uint32_t ids[8];
	struct runner_job *job;
	size_t len = 0;
	char *body, *out;

	for (size_t i = 0; i < n; i++)
		ids[i] = (uint32_t)registry_find(f->reg, sel[i], strlen(sel[i]));
	job = runner_submit(f->runner, ids, n);
	EXPECT_TRUE(!runner_job_arm(job, NULL, NULL, NULL)); /* inline: finished already */
	body = format_seed(f->reg, ids, job, verbose, &len);
	out = strndup(body, len);
	EXPECT_EQ_INT(strlen(out), len);
	free(body);
	runner_job_free(job);
	return out;
}

DEF_TEST(seed_body_exact)
{
	static const char *const sel[] = {"foo"};
	struct fixture f;
	char *body;

	setup(&f);
	body = seed_body(&f, sel, 1, false);
	EXPECT_EQ_STR("{\"available_checks\":[\"true\",\"foo\",\"false\",\"warn\"],"
	              "\"checks\":{\"foo\":true},\"health\":\"running\"}\n", body);
	free(body);
	teardown(&f);
	return 0;
}

DEF_TEST(seed_body_degraded_and_warning_passes)
{
	static const char *const sel[] = {"false", "true", "warn"};
	struct fixture f;
	char *body;

	setup(&f);
	body = seed_body(&f, sel, 3, false);
	EXPECT_EQ_STR("{\"available_checks\":[\"true\",\"foo\",\"false\",\"warn\"],"
	              "\"checks\":{\"false\":false,\"true\":true,\"warn\":true},"
	              "\"health\":\"degraded\"}\n", body);
	free(body);
	teardown(&f);
	return 0;
}

DEF_TEST(seed_body_empty_selection_runs)
{
	struct fixture f;
	char *body;

	setup(&f);
	body = seed_body(&f, NULL, 0, false);
	EXPECT_EQ_STR("{\"available_checks\":[\"true\",\"foo\",\"false\",\"warn\"],"
	              "\"checks\":{},\"health\":\"running\"}\n", body);
	free(body);
	teardown(&f);
	return 0;
}

DEF_TEST(verbose_details_escaped)
{
	static const char *const sel[] = {"false", "warn"};
	struct fixture f;
	char *body;

	setup(&f);
	body = seed_body(&f, sel, 2, true);
	EXPECT_CONTAINS("\"checks\":{\"false\":false,\"warn\":true},\"details\":{\"false\":"
	                "{\"cached\":false,\"duration_ms\":0,\"output\":\"said \\\"no\\\"\\\\\","
	                "\"status\":\"fail\"},\"warn\":{\"cached\":false,\"duration_ms\":0,"
	                "\"output\":\"\",\"status\":\"warn\"}},\"health\":\"degraded\"}\n", body);
	free(body);
	teardown(&f);
	return 0;
}

DEF_TEST(health_json_worst_status)
{
	uint32_t ids[2];
	struct runner_job *job;
	struct fixture f;
	size_t len;
	char *body;

	setup(&f);
	ids[0] = (uint32_t)registry_find(f.reg, "true", 4);
	ids[1] = (uint32_t)registry_find(f.reg, "warn", 4);
	job = runner_submit(f.runner, ids, 2);
	body = format_health_json(f.reg, ids, job, &len);
	EXPECT_CONTAINS("\"true:status\":[{", body);
	EXPECT_CONTAINS("\"status\":\"warn\"}\n", body);
	free(body);
	runner_job_free(job);
	teardown(&f);
	return 0;
}

DEF_TEST(metrics_counts_runs)
{
	static const char *const sel[] = {"false"};
	struct format_counter rows[] = {{"ping", 200, 7}};
	struct fixture f;
	size_t len;
	char *body;

	setup(&f);
	free(seed_body(&f, sel, 1, false));
	free(seed_body(&f, sel, 1, false));
	body = format_metrics(f.reg, f.runner, NULL, NULL, rows, 1, &len);
	EXPECT_CONTAINS("healthd_check_runs_total{check=\"false\"} 2\n", body);
	EXPECT_CONTAINS("healthd_check_failures_total{check=\"false\"} 2\n", body);
	EXPECT_CONTAINS("healthd_check_up{check=\"false\"} 0\n", body);
	EXPECT_CONTAINS("healthd_check_runs_total{check=\"true\"} 0\n", body);
	EXPECT_TRUE(strstr(body, "healthd_check_up{check=\"true\"}") == NULL); /* never ran */
	EXPECT_CONTAINS("healthd_http_requests_total{route=\"ping\",code=\"200\"} 7\n", body);
	free(body);
	teardown(&f);
	return 0;
}

int
main(void)
{
	RUN_TEST(seed_body_exact);
	RUN_TEST(seed_body_degraded_and_warning_passes);
	RUN_TEST(seed_body_empty_selection_runs);
	RUN_TEST(verbose_details_escaped);
	RUN_TEST(health_json_worst_status);
	RUN_TEST(metrics_counts_runs);
	END_TEST;
}
