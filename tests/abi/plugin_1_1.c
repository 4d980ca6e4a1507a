/*
 * plugin_1_1.c - a plugin built against the frozen ABI 1.1 header, never the
 * current one (this target has no include path to include/). It uses what 1.1
 * added (timeout_ms, cancelled, timed_out) and says what it saw in its
 * messages, so test_abi.py can prove through the real binary that a 1.1 plugin
 * keeps working in a newer host.
 *
 *     {"name": "legacy11", "plugin": "abi11", "mode": "ok"}      (or "timeout")
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthd-plugin-1.1.h"

static const struct healthd_host_api *api;

static enum healthd_status
abi11_run(void *state, struct healthd_report *report)
{
	const bool *give_up = state;

	if (*give_up) {
		/* as a plugin that stopped waiting at its deadline reports it */
		api->message(report, "gave up after %lld ms", (long long)api->timeout_ms(report));
		api->timed_out(report);
		return HEALTHD_CRITICAL;
	}
	api->message(report, "timeout_ms=%lld cancelled=%s table=%u",
	             (long long)api->timeout_ms(report),
	             api->cancelled(report) ? "true" : "false", api->size);
	return HEALTHD_OK;
}

static int
abi11_instantiate(struct healthd_host *h, const struct healthd_host_api *a,
                  const char *check_name, const struct healthd_options *options, char *err,
                  size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;
	const char *mode = a->option(options, "mode");
	bool *give_up;

	api = a;
	if (mode != NULL && strcmp(mode, "ok") != 0 && strcmp(mode, "timeout") != 0) {
		snprintf(err, errlen, "mode: expected ok or timeout");
		return -1;
	}
	give_up = malloc(sizeof(*give_up));
	if (give_up == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*give_up = mode != NULL && strcmp(mode, "timeout") == 0;
	check.name = check_name;
	check.run = abi11_run;
	check.destroy = free;
	check.state = give_up;
	if (a->register_check(h, &check, err, errlen) == -1) {
		free(give_up);
		return -1;
	}
	return 0;
}

HEALTHD_PLUGIN(.name = "abi11",
               .version = "1.1.0",
               .description = "built against the frozen ABI 1.1 header",
               .instantiate = abi11_instantiate);
