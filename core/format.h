/*
 * format.h - what goes on the wire, built from the registry and a finished
 * job: the seed's JSON body (plus ?verbose=1 details), the IETF health+json
 * format, and Prometheus text. Thin views: no state of their own.
 */
#ifndef HEALTHD_FORMAT_H
#define HEALTHD_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "runner.h"

/* OK and WARNING pass; CRITICAL and UNKNOWN fail (the seed's true/false). */
bool format_passed(enum healthd_status st);
bool format_job_passed(const struct runner_job *job);
/* Whether thresholds can hold c's answer back from its last run's (then
 * ?verbose=1 shows both). */
bool format_has_thresholds(const struct check *c);

/*
 * Bodies for GET P/. ids are the selected checks sorted by name; job holds
 * their results in the same order. Return a malloc'd body (ending in a
 * newline) and its length in *len, or NULL when out of memory.
 */
char *format_seed(const struct registry *reg, const uint32_t *ids, const struct runner_job *job,
                  bool verbose, size_t *len);
char *format_health_json(const struct registry *reg, const uint32_t *ids,
                         const struct runner_job *job, size_t *len);

/* One request counter row for /metrics. */
struct format_counter {
	const char *route;
	unsigned code;
	uint64_t count;
};

/* What the HTTP layer counts, for /metrics. */
struct format_http {
	const struct format_counter *counters; /* requests, by route and code */
	size_t ncounters;
	unsigned open, max;                    /* connections open now; max_connections */
	uint64_t refused, reclaimed, timed_out; /* connections healthd ended, by reason */
};

struct executor_set;
struct plugin_loader;
/* loader, execs: the plugins in process (always up) and isolated (up, restarts,
 * RSS); either may be NULL. http: NULL leaves the HTTP metrics out. */
char *format_metrics(const struct registry *reg, struct runner *runner,
                     const struct plugin_loader *loader, struct executor_set *execs,
                     const struct format_http *http, size_t *len);

/* A reload ended (reload.c); counted in healthd_reloads_total. */
void format_count_reload(bool ok);

#endif
