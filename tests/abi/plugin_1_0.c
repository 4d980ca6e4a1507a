/*
 * plugin_1_0.c - a plugin built against the frozen ABI 1.0 header, never the
 * current one (this target has no include path to include/). It uses every
 * member of the 1.0 host table and every lifecycle hook, and says what it saw
 * in its messages and log lines, so test_abi.py can prove through the real
 * binary that a 1.0 plugin keeps working in this host.
 *
 *     {"name": "legacy", "plugin": "abi10", "greeting": "hello", "count": 3,
 *      "loud": true}
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthd-plugin-1.0.h"

struct instance {
	char name[65];
	char greeting[32];
	int64_t count;
	bool loud;
	size_t noptions; /* seen through option_at */
};

static const struct healthd_host_api *api;
static struct healthd_host *host; /* valid until unload() returns */
static char fixed_state[] = "built against ABI 1.0";

static enum healthd_status
fixed_run(void *state, struct healthd_report *report)
{
	int64_t left = api->deadline_ms(report) - api->now_ms();

	api->message(report, "%s; %lld ms to the deadline", (const char *)state, (long long)left);
	return HEALTHD_OK;
}

static enum healthd_status
instance_run(void *state, struct healthd_report *report)
{
	const struct instance *in = state;
	int64_t left = api->deadline_ms(report) - api->now_ms();

	api->message(report, "greeting=%s count=%lld loud=%s options=%zu left_ms=%lld",
	             in->greeting, (long long)in->count, in->loud ? "true" : "false", in->noptions,
	             (long long)left);
	return HEALTHD_WARNING;
}

static void
fixed_destroy(void *state)
{
	api->log(host, HEALTHD_LOG_INFO, "destroy fixed (%s)", (const char *)state);
}

static void
instance_destroy(void *state)
{
	struct instance *in = state;

	api->log(host, HEALTHD_LOG_INFO, "destroy %s", in->name);
	free(in);
}

static int
abi10_load(struct healthd_host *h, const struct healthd_host_api *a, char *err, size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;

	api = a;
	host = h;
	check.name = "abi10-fixed";
	check.run = fixed_run;
	check.destroy = fixed_destroy;
	check.state = fixed_state;
	check.in_defaults = true;
	if (api->register_check(host, &check, err, errlen) == -1)
		return -1;
	api->log(host, HEALTHD_LOG_INFO, "loaded into a host table of %u bytes", a->size);
	return 0;
}

static int
abi10_instantiate(struct healthd_host *h, const struct healthd_host_api *a,
                  const char *check_name, const struct healthd_options *options, char *err,
                  size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;
	const char *key, *value, *greeting;
	struct instance *in;

	in = calloc(1, sizeof(*in));
	if (in == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(in->name, sizeof(in->name), "%s", check_name);
	while (a->option_at(options, in->noptions, &key, &value))
		in->noptions++;
	greeting = a->option(options, "greeting");
	snprintf(in->greeting, sizeof(in->greeting), "%s", greeting ? greeting : "(none)");
	if (a->option_int(options, "count", 1, 0, 100, &in->count) == -1 ||
	    a->option_bool(options, "loud", false, &in->loud) == -1)
		goto fail;
	check.name = check_name;
	check.run = instance_run;
	check.destroy = instance_destroy;
	check.state = in;
	if (a->register_check(h, &check, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	free(in);
	return -1;
}

static void
abi10_unload(void)
{
	api->log(host, HEALTHD_LOG_INFO, "unload");
}

HEALTHD_PLUGIN(.name = "abi10",
               .version = "1.0.0",
               .description = "built against the frozen ABI 1.0 header",
               .load = abi10_load,
               .instantiate = abi10_instantiate,
               .unload = abi10_unload);
