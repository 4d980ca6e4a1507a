/*
 * format.h - the JSON bodies of GET P/, built from the registry and a
 * finished job: the seed's (plus ?verbose=1 details) and the IETF
 * health+json format. Pure functions: nothing here keeps state between
 * calls (/metrics and its reload counter are metrics.h's).
 */
#ifndef HEALTHD_FORMAT_H
#define HEALTHD_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
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
/* service: the configured identity (serviceId, version, ...); NULL for none. */
char *format_health_json(const struct registry *reg, const struct config_service *service,
                         const uint32_t *ids, const struct runner_job *job, size_t *len);

/*
 * Which part of a perfdata item a reported value is: the value itself, or
 * one of its thresholds, reported beside it as "<name>;warn", "<name>;crit",
 * "<name>;min" and "<name>;max" (the exec plugin does). *stem gets the
 * length of the value's own name.
 */
enum format_part { FORMAT_VALUE, FORMAT_WARN, FORMAT_CRIT, FORMAT_MIN, FORMAT_MAX };
enum format_part format_value_part(const char *name, size_t *stem);

/* A value's shortest text that reads back as the same double (JSON and
 * Prometheus alike); len 32 holds any. */
void format_number(double v, char *buf, size_t len);

#endif
