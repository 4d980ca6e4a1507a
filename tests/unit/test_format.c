/* Unit tests: the seed body, byte for byte, verbose details, health+json, metrics. */
#include <unistd.h>

#include <math.h>

#include "format.h"
#include "metrics.h"
#include "plugin_loader.h"
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

/* Reports values through the host table as a 1.2 plugin does; the message
 * lists what each call returned. */
static enum healthd_status
run_values(void *state, struct healthd_report *report)
{
	const struct healthd_host_api *api = plugin_host_api();
	char long_name[HEALTHD_VALUE_NAME_MAX + 2];
	int rc[8], n = 0;

	(void)state;
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	api->value(report, "zeta", 1.5, "s");
	api->value(report, "alpha", 0.52, NULL);
	api->value(report, "q\"uo\\te", 3, "B");
	api->value(report, "status", 77, "");
	rc[n++] = api->value(report, "alpha", 0.25, NULL); /* replaces */
	rc[n++] = api->value(report, "", 1, NULL);
	rc[n++] = api->value(report, "bad\nname", 1, NULL);
	rc[n++] = api->value(report, "nan", NAN, NULL);
	rc[n++] = api->value(report, long_name, 1, NULL);
	rc[n++] = api->value(report, "unit", 1, "sixteen-bytes-xx");
	snprintf(report->message, sizeof(report->message), "rc=%d,%d,%d,%d,%d,%d", rc[0], rc[1],
	         rc[2], rc[3], rc[4], rc[5]);
	return HEALTHD_WARNING;
}

static enum healthd_status
run_many_values(void *state, struct healthd_report *report)
{
	const struct healthd_host_api *api = plugin_host_api();
	char name[16];
	int last = 0;

	(void)state;
	for (int i = 0; i <= HEALTHD_VALUES_MAX; i++) {
		snprintf(name, sizeof(name), "v%02d", i);
		last = api->value(report, name, i, NULL);
	}
	snprintf(report->message, sizeof(report->message), "17th=%d", last);
	return HEALTHD_OK;
}

/* Values whose names the draft's key form cannot take as they are. */
static enum healthd_status
run_odd_values(void *state, struct healthd_report *report)
{
	const struct healthd_host_api *api = plugin_host_api();

	(void)state;
	api->value(report, "pool:idle%", 3, NULL);
	api->value(report, "responseTime", 99, "s");
	return HEALTHD_OK;
}

/* Perfdata as the exec plugin reports it: units, thresholds, a counter. */
static enum healthd_status
run_perfdata(void *state, struct healthd_report *report)
{
	const struct healthd_host_api *api = plugin_host_api();

	(void)state;
	api->value(report, "rta", 12.5, "ms");
	api->value(report, "used", 3, "MB");
	api->value(report, "free", 40, "%");
	api->value(report, "packets", 1234, "c");
	api->value(report, "temp", 21.5, "C");
	api->value(report, "rta;warn", 100, "ms");
	api->value(report, "rta;crit", 500, "ms");
	api->value(report, "rta;min", 0, "ms");
	api->value(report, "free;warn", 20, "%");
	api->value(report, "free;max", 100, "%");
	api->value(report, "packets;crit", 5000, "c");
	api->value(report, "gone;warn", 1, ""); /* no value "gone": no series */
	return HEALTHD_OK;
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

static void zero_run_times(char *s);

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
	zero_run_times(out);
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

/*
 * An inline check that returns at once takes 0 ms, or 1 ms when the clock
 * ticks during its run (on a loaded machine, or a sanitizer's): each run
 * time in s ("duration_ms":N, and the ms responseTime "observedValue":N) must
 * be below 100 ms and is written as 0, so that bodies compare exactly.
 */
static void
zero_run_times(char *s)
{
	static const char *const keys[] = {"\"duration_ms\":",
	                                   "\"observedUnit\":\"ms\",\"observedValue\":"};

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		for (char *p = strstr(s, keys[k]); p != NULL; p = strstr(p, keys[k])) {
			char *digits = p + strlen(keys[k]), *end = digits;
			while (*end >= '0' && *end <= '9')
				end++;
			EXPECT_TRUE(end > digits && end - digits <= 2); /* 0-99 ms */
			if (end > digits) {
				*digits = '0';
				memmove(digits + 1, end, strlen(end) + 1);
			}
			p = digits;
		}
	}
}

/* A body (len bytes, not NUL-terminated) as a string, run times zeroed
 * (zero_run_times); frees body. */
static char *
terminated(char *body, size_t len)
{
	char *s = strndup(body, len);

	free(body);
	zero_run_times(s);
	return s;
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
	body = format_health_json(f.reg, NULL, ids, job, &len);
	body = terminated(body, len);
	EXPECT_CONTAINS("{\"checks\":{\"true:responseTime\":[{\"componentId\":\"true\","
	                "\"componentType\":\"component\",\"observedUnit\":\"ms\","
	                "\"observedValue\":0,\"status\":\"pass\",\"time\":\"", body);
	EXPECT_CONTAINS("\"status\":\"warn\"}\n", body);
	EXPECT_TRUE(strstr(body, ":status\"") == NULL); /* not a draft measurement name */
	free(body);
	runner_job_free(job);
	teardown(&f);
	return 0;
}

/*
 * The draft's rules: no ':' in a component name (%3A, the exact name in
 * componentId), output on fail and warn only, and time as RFC 3339 UTC.
 */
DEF_TEST(health_json_draft_rules)
{
	struct registry *reg = registry_new();
	struct check fail = {.run = run_fail, .flags = HEALTHD_CHECK_INLINE, .timeout_ms = 2000,
	                     .origin = "t"};
	struct check ok = fail;
	struct runner *runner;
	struct runner_job *job;
	uint32_t ids[2];
	char err[256], *body;
	size_t len;

	strcpy(fail.name, "db:primary");
	ok.run = run_ok;
	strcpy(ok.name, "ok");
	registry_add(reg, &fail, err, sizeof(err));
	registry_add(reg, &ok, err, sizeof(err));
	registry_seal(reg);
	runner = runner_new(reg, 1);
	ids[0] = 0;
	ids[1] = 1;
	job = runner_submit(runner, ids, 2);
	body = format_health_json(reg, NULL, ids, job, &len);
	body = terminated(body, len);
	EXPECT_CONTAINS("\"db%3Aprimary:responseTime\":[{\"componentId\":\"db:primary\","
	                "\"componentType\":\"component\",\"observedUnit\":\"ms\",\"observedValue\":0,"
	                "\"output\":\"said \\\"no\\\"\\\\\",\"status\":\"fail\",\"time\":\"", body);
	EXPECT_CONTAINS("\"ok:responseTime\":[{\"componentId\":\"ok\",\"componentType\":\"component\","
	                "\"observedUnit\":\"ms\",\"observedValue\":0,\"status\":\"pass\",\"time\":\"",
	                body);
	EXPECT_TRUE(strstr(body, "\"db:primary:") == NULL);
	EXPECT_CONTAINS("\"status\":\"fail\"}\n", body);
	free(body);
	runner_job_free(job);

	/* a value's name is escaped too; one named responseTime would replace the
	 * check's own measurement: left out */
	ok.run = run_odd_values;
	strcpy(ok.name, "odd");
	runner_shutdown(runner, 1000, NULL);
	runner_free(runner);
	registry_free(reg);
	reg = registry_new();
	registry_add(reg, &ok, err, sizeof(err));
	registry_seal(reg);
	runner = runner_new(reg, 1);
	job = runner_submit(runner, ids, 1);
	body = format_health_json(reg, NULL, ids, job, &len);
	body = terminated(body, len);
	EXPECT_CONTAINS("\"odd:pool%3Aidle%25\":[{\"componentId\":\"odd\",\"componentType\":"
	                "\"component\",\"observedValue\":3,\"status\":\"pass\"", body);
	EXPECT_CONTAINS("\"odd:responseTime\":[{\"componentId\":\"odd\",\"componentType\":"
	                "\"component\",\"observedUnit\":\"ms\",\"observedValue\":0,", body);
	EXPECT_TRUE(strstr(body, "\"observedValue\":99") == NULL);
	EXPECT_CONTAINS("\"status\":\"pass\"}\n", body);
	free(body);
	runner_job_free(job);
	EXPECT_EQ_INT(0, runner_shutdown(runner, 1000, NULL));
	runner_free(runner);
	registry_free(reg);
	return 0;
}

DEF_TEST(metrics_counts_runs)
{
	static const char *const sel[] = {"false"};
	struct metrics_counter rows[] = {{"ping", 200, 7}};
	struct metrics_http http = {.counters = rows, .ncounters = 1, .open = 3, .max = 64,
	                            .refused = 5, .reclaimed = 6, .timed_out = 7};
	struct fixture f;
	size_t len;
	char *body;

	setup(&f);
	free(seed_body(&f, sel, 1, false));
	free(seed_body(&f, sel, 1, false));
	body = metrics_render(f.reg, f.runner, NULL, NULL, &http, &len);
	body = terminated(body, len);
	EXPECT_CONTAINS("healthd_check_runs_total{check=\"false\"} 2\n", body);
	EXPECT_CONTAINS("healthd_check_failures_total{check=\"false\"} 2\n", body);
	EXPECT_CONTAINS("healthd_check_up{check=\"false\"} 0\n", body);
	EXPECT_CONTAINS("healthd_check_runs_total{check=\"true\"} 0\n", body);
	EXPECT_TRUE(strstr(body, "healthd_check_up{check=\"true\"}") == NULL); /* never ran */
	EXPECT_CONTAINS("healthd_http_requests_total{route=\"ping\",code=\"200\"} 7\n", body);
	EXPECT_CONTAINS("\nhealthd_http_connections 3\n", body);
	EXPECT_CONTAINS("\nhealthd_http_connections_limit 64\n", body);
	EXPECT_CONTAINS("healthd_http_connections_closed_total{reason=\"refused\"} 5\n", body);
	EXPECT_CONTAINS("healthd_http_connections_closed_total{reason=\"reclaimed\"} 6\n", body);
	EXPECT_CONTAINS("healthd_http_connections_closed_total{reason=\"timed_out\"} 7\n", body);
	free(body);
	teardown(&f);
	return 0;
}

DEF_TEST(values_in_every_format)
{
	struct registry *reg = registry_new();
	struct check c = {.run = run_values, .flags = HEALTHD_CHECK_INLINE, .timeout_ms = 2000,
	                  .cache_ms = 600000, .origin = "t"};
	struct check many = {.run = run_many_values, .flags = HEALTHD_CHECK_INLINE,
	                     .timeout_ms = 2000, .origin = "t"};
	struct runner *runner;
	struct runner_job *job;
	uint32_t ids[2];
	char err[256], *body;
	size_t len;

	strcpy(c.name, "vals");
	strcpy(many.name, "many");
	registry_add(reg, &c, err, sizeof(err));
	registry_add(reg, &many, err, sizeof(err));
	registry_seal(reg);
	runner = runner_new(reg, 1);
	ids[0] = (uint32_t)registry_find(reg, "many", 4);
	ids[1] = (uint32_t)registry_find(reg, "vals", 4);
	job = runner_submit(runner, ids, 2);

	body = format_seed(reg, ids, job, true, &len);
	body = terminated(body, len);
	/* sorted by name, the replaced one once, shortest exact numbers */
	EXPECT_CONTAINS("\"vals\":{\"cached\":false,\"duration_ms\":0,"
	                "\"output\":\"rc=0,-1,-1,-1,-1,-1\",\"status\":\"warn\","
	                "\"values\":{\"alpha\":0.25,\"q\\\"uo\\\\te\":3,\"status\":77,"
	                "\"zeta\":1.5}}", body);
	EXPECT_CONTAINS("\"output\":\"17th=-1\"", body);
	EXPECT_CONTAINS("\"v15\":15}", body);
	EXPECT_TRUE(strstr(body, "v16") == NULL);
	free(body);

	body = format_health_json(reg, NULL, ids, job, &len);
	body = terminated(body, len);
	EXPECT_CONTAINS("\"vals:zeta\":[{\"componentId\":\"vals\",\"componentType\":\"component\","
	                "\"observedUnit\":\"s\",\"observedValue\":1.5,"
	                "\"output\":\"rc=0,-1,-1,-1,-1,-1\",\"status\":\"warn\",", body);
	EXPECT_CONTAINS("\"vals:alpha\":[{\"componentId\":\"vals\",\"componentType\":\"component\","
	                "\"observedValue\":0.25,\"output\":", body);
	EXPECT_CONTAINS("\"vals:responseTime\":[{\"componentId\":\"vals\","
	                "\"componentType\":\"component\",\"observedUnit\":\"ms\",", body);
	/* "status" is no longer the check's own measurement: a value like any other */
	EXPECT_CONTAINS("\"vals:status\":[{\"componentId\":\"vals\",\"componentType\":\"component\","
	                "\"observedValue\":77,", body);
	free(body);

	body = metrics_render(reg, runner, NULL, NULL, NULL, &len);
	body = terminated(body, len);
	EXPECT_CONTAINS("# TYPE healthd_check_value gauge\n", body);
	EXPECT_CONTAINS("healthd_check_value{check=\"vals\",name=\"zeta\",unit=\"seconds\"} 1.5\n", body);
	EXPECT_CONTAINS("healthd_check_value{check=\"vals\",name=\"alpha\"} 0.25\n", body);
	EXPECT_CONTAINS("healthd_check_value{check=\"vals\",name=\"q\\\"uo\\\\te\",unit=\"bytes\"} 3\n",
	                body);
	EXPECT_CONTAINS("healthd_check_value{check=\"many\",name=\"v15\"} 15\n", body);
	free(body);

	runner_job_free(job);

	/* a cached answer carries the values of the run it repeats */
	job = runner_submit(runner, &ids[1], 1);
	EXPECT_TRUE(runner_job_result(job, 0)->cached);
	EXPECT_EQ_INT(4, runner_job_result(job, 0)->nvalues);
	EXPECT_EQ_STR("zeta", runner_job_result(job, 0)->values[0].name);
	EXPECT_EQ_STR("s", runner_job_result(job, 0)->values[0].unit);
	runner_job_free(job);

	EXPECT_EQ_INT(0, runner_shutdown(runner, 1000, NULL));
	runner_free(runner);
	registry_free(reg);
	return 0;
}

DEF_TEST(metrics_perfdata_in_base_units)
{
	struct registry *reg = registry_new();
	struct check c = {.run = run_perfdata, .flags = HEALTHD_CHECK_INLINE, .timeout_ms = 2000,
	                  .origin = "t"};
	struct runner *runner;
	struct runner_job *job;
	uint32_t id = 0;
	char err[256], *body;
	size_t len;

	strcpy(c.name, "p");
	registry_add(reg, &c, err, sizeof(err));
	registry_seal(reg);
	runner = runner_new(reg, 1);
	job = runner_submit(runner, &id, 1);
	body = metrics_render(reg, runner, NULL, NULL, NULL, &len);
	body = terminated(body, len);
	/* seconds, bytes (binary multiples, as check_disk's MB), ratios */
	EXPECT_CONTAINS("healthd_check_value{check=\"p\",name=\"rta\",unit=\"seconds\"} 0.0125\n",
	                body);
	EXPECT_CONTAINS("healthd_check_value{check=\"p\",name=\"used\",unit=\"bytes\"} 3145728\n",
	                body);
	EXPECT_CONTAINS("healthd_check_value{check=\"p\",name=\"free\",unit=\"ratio\"} 0.4\n",
	                body);
	/* a unit without a base unit is kept as given */
	EXPECT_CONTAINS("healthd_check_value{check=\"p\",name=\"temp\",unit=\"C\"} 21.5\n", body);
	/* a Nagios counter is a counter, in its own family */
	EXPECT_CONTAINS("# TYPE healthd_check_perfdata_total counter\n"
	                "healthd_check_perfdata_total{check=\"p\",name=\"packets\"} 1234\n", body);
	EXPECT_TRUE(strstr(body, "healthd_check_value{check=\"p\",name=\"packets\"") == NULL);
	/* thresholds under their value's labels, in its base unit */
	EXPECT_CONTAINS("# TYPE healthd_check_value_warning gauge\n"
	                "healthd_check_value_warning{check=\"p\",name=\"rta\",unit=\"seconds\"} 0.1\n"
	                "healthd_check_value_warning{check=\"p\",name=\"free\",unit=\"ratio\"} 0.2\n"
	                "# HELP healthd_check_value_critical", body);
	EXPECT_CONTAINS("# TYPE healthd_check_value_critical gauge\n"
	                "healthd_check_value_critical{check=\"p\",name=\"rta\",unit=\"seconds\"} 0.5\n"
	                "healthd_check_value_critical{check=\"p\",name=\"packets\"} 5000\n", body);
	EXPECT_CONTAINS("healthd_check_value_min{check=\"p\",name=\"rta\",unit=\"seconds\"} 0\n",
	                body);
	EXPECT_CONTAINS("healthd_check_value_max{check=\"p\",name=\"free\",unit=\"ratio\"} 1\n",
	                body);
	/* a threshold is no value of its own, anywhere */
	EXPECT_TRUE(strstr(body, "warn\"") == NULL);
	EXPECT_TRUE(strstr(body, "gone") == NULL);
	free(body);
	body = format_seed(reg, &id, job, true, &len);
	body = terminated(body, len);
	EXPECT_CONTAINS("\"values\":{\"free\":40,\"packets\":1234,\"rta\":12.5,\"temp\":21.5,"
	                "\"used\":3}", body);
	free(body);
	body = format_health_json(reg, NULL, &id, job, &len);
	body = terminated(body, len);
	EXPECT_TRUE(strstr(body, ";warn") == NULL);
	/* health+json keeps the plugin's unit: observedUnit says which */
	EXPECT_CONTAINS("\"p:used\":[{\"componentId\":\"p\",\"componentType\":\"component\","
	                "\"observedUnit\":\"MB\",\"observedValue\":3,", body);
	free(body);
	runner_job_free(job);
	EXPECT_EQ_INT(0, runner_shutdown(runner, 1000, NULL));
	runner_free(runner);
	registry_free(reg);
	return 0;
}

/* The configured identity, in the draft's names and sorted among the keys. */
DEF_TEST(health_json_service_identity)
{
	struct fixture f;
	struct config_service svc = {.id = "shop-api", .version = "2.4.1",
	                             .release_id = "2.4.1-7", .description = "d\"q"};
	struct runner_job *job;
	uint32_t ids[1];
	char *body;
	size_t len;

	setup(&f);
	ids[0] = (uint32_t)registry_find(f.reg, "true", 4);
	job = runner_submit(f.runner, ids, 1);
	body = format_health_json(f.reg, &svc, ids, job, &len);
	body = terminated(body, len);
	EXPECT_CONTAINS("}]},\"description\":\"d\\\"q\",\"releaseId\":\"2.4.1-7\","
	                "\"serviceId\":\"shop-api\",\"status\":\"pass\",\"version\":\"2.4.1\"}\n",
	                body);
	free(body);
	svc = (struct config_service){.id = "only"};
	body = format_health_json(f.reg, &svc, ids, job, &len);
	body = terminated(body, len);
	EXPECT_CONTAINS("}]},\"serviceId\":\"only\",\"status\":\"pass\"}\n", body);
	free(body);
	runner_job_free(job);
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
	RUN_TEST(health_json_draft_rules);
	RUN_TEST(metrics_counts_runs);
	RUN_TEST(values_in_every_format);
	RUN_TEST(metrics_perfdata_in_base_units);
	RUN_TEST(health_json_service_identity);
	END_TEST;
}
