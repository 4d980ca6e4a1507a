/*
 * dummy - checks for tests and demos.
 *
 * Fixed checks "true" and "false" (the seed's check_true and check_false, not
 * in the defaults), and configured instances:
 *
 *     {"name": "slow", "plugin": "dummy", "result": "warning", "delay_ms": 300}
 *
 * result:   ok | warning | critical | unknown (default ok)
 * delay_ms: sleep this long before answering, ignoring the deadline on
 *           purpose: a stand-in for a stuck check (default 0)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <healthd/plugin.h>

struct dummy {
	enum healthd_status result;
	int64_t delay_ms;
};

static const struct healthd_host_api *api;

/* option value  status */
static const struct {
	const char *name;
	enum healthd_status status;
} results[] = {
	{"ok",       HEALTHD_OK},
	{"warning",  HEALTHD_WARNING},
	{"critical", HEALTHD_CRITICAL},
	{"unknown",  HEALTHD_UNKNOWN},
};

static enum healthd_status
dummy_true(void *state, struct healthd_report *report)
{
	(void)state;
	(void)report;
	return HEALTHD_OK;
}

static enum healthd_status
dummy_false(void *state, struct healthd_report *report)
{
	(void)state;
	api->message(report, "always fails");
	return HEALTHD_CRITICAL;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static enum healthd_status
dummy_run(void *state, struct healthd_report *report)
{
	const struct dummy *d = state;

	if (d->delay_ms > 0)
		sleep_ms(d->delay_ms);
	api->message(report, "%s after %lld ms", results[d->result].name, (long long)d->delay_ms);
	return d->result;
}

static int
dummy_load(struct healthd_host *host, const struct healthd_host_api *host_api, char *err,
           size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;

	api = host_api;
	check.flags = HEALTHD_CHECK_INLINE;
	check.in_defaults = false;
	check.name = "true";
	check.run = dummy_true;
	if (api->register_check(host, &check, err, errlen) == -1)
		return -1;
	check.name = "false";
	check.run = dummy_false;
	return api->register_check(host, &check, err, errlen);
}

static int
dummy_instantiate(struct healthd_host *host, const struct healthd_host_api *host_api,
                  const char *check_name, const struct healthd_options *options, char *err,
                  size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;
	struct dummy *d;
	const char *result;
	size_t i;

	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	result = host_api->option(options, "result");
	if (result != NULL) {
		for (i = 0; i < sizeof(results) / sizeof(results[0]); i++)
			if (strcmp(result, results[i].name) == 0)
				break;
		if (i == sizeof(results) / sizeof(results[0])) {
			snprintf(err, errlen,
			         "result: expected ok, warning, critical or unknown, got \"%.64s\"",
			         result);
			goto fail;
		}
		d->result = results[i].status;
	}
	if (host_api->option_int(options, "delay_ms", 0, 0, 3600000, &d->delay_ms) == -1)
		goto fail;

	check.name = check_name;
	check.run = dummy_run;
	check.destroy = free;
	check.state = d;
	if (host_api->register_check(host, &check, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	free(d);
	return -1;
}

HEALTHD_PLUGIN(.name = "dummy",
               .version = "1.0",
               .description = "fixed checks true and false; configurable test checks",
               .load = dummy_load,
               .instantiate = dummy_instantiate);
