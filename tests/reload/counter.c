/* counter - an in-process plugin for the reload tests: each configured check
 * counts its runs ("run 3 of c"), so a test sees a kept check keep its state;
 * destroy() logs "destroy c after 3 runs", so it sees when and how often a
 * check's state goes. `delay_ms` holds a run that long, ignoring the deadline. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <healthd/plugin.h>

struct counter {
	const struct healthd_host_api *api; /* per check: instantiate() writes no global */
	struct healthd_host *host;
	char name[65];
	int64_t delay_ms;
	unsigned long runs; /* run() is never called twice at once for a check */
};

static enum healthd_status
counter_run(void *state, struct healthd_report *report)
{
	struct counter *c = state;
	struct timespec ts = {(time_t)(c->delay_ms / 1000), (long)(c->delay_ms % 1000) * 1000000L};

	if (c->delay_ms > 0) {
		while (nanosleep(&ts, &ts) == -1)
			;
	}
	c->runs++;
	if (c->delay_ms > 0)
		c->api->log(c->host, HEALTHD_LOG_INFO, "%s: run %lu ended", c->name, c->runs);
	c->api->message(report, "run %lu of %s", c->runs, c->name);
	return HEALTHD_OK;
}

static void
counter_destroy(void *state)
{
	struct counter *c = state;

	c->api->log(c->host, HEALTHD_LOG_INFO, "destroy %s after %lu runs", c->name, c->runs);
	free(c);
}

static int
counter_instantiate(struct healthd_host *host, const struct healthd_host_api *api,
                    const char *name, const struct healthd_options *opts, char *err,
                    size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;
	struct counter *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->api = api;
	c->host = host;
	snprintf(c->name, sizeof(c->name), "%s", name);
	if (api->option_int(opts, "delay_ms", 0, 0, 60000, &c->delay_ms) == -1)
		goto fail;
	check.name = name;
	check.run = counter_run;
	check.destroy = counter_destroy;
	check.state = c;
	if (api->register_check(host, &check, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	free(c);
	return -1;
}

HEALTHD_PLUGIN(.name = "counter", .version = "1.0", .description =
               "counts each check's runs, logs destroy (reload tests)",
               .instantiate = counter_instantiate);
