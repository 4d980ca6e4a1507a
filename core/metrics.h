/*
 * metrics.h - GET /metrics in the Prometheus text format, and the counter of
 * reloads it shows. Holds state: the reload counter, process-wide, atomic.
 */
#ifndef HEALTHD_METRICS_H
#define HEALTHD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "runner.h"

/* One request counter row for /metrics. */
struct metrics_counter {
	const char *route;
	unsigned code;
	uint64_t count;
};

/* What the HTTP layer counts, for /metrics. */
struct metrics_http {
	const struct metrics_counter *counters; /* requests, by route and code */
	size_t ncounters;
	unsigned open, max;                    /* connections open now; max_connections */
	uint64_t refused, reclaimed, timed_out; /* connections healthd ended, by reason */
};

struct executor_set;
struct plugin_loader;
/* loader, execs: the plugins in process (always up) and isolated (up, restarts,
 * RSS); either may be NULL. http: NULL leaves the HTTP metrics out. */
char *metrics_render(const struct registry *reg, struct runner *runner,
                     const struct plugin_loader *loader, struct executor_set *execs,
                     const struct metrics_http *http, size_t *len);

/* A reload ended (reload.c); counted in healthd_reloads_total. Any thread. */
void metrics_count_reload(bool ok);

#endif
