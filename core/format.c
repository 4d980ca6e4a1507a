/* format.c - the JSON bodies of GET P/ (json-c): the seed's and health+json. */
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "config.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
/* names live in the sealed registry for the whole run */
#define CONST_KEY (JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY)

/* status          seed   health+json */
static const char *const status_words[] = {
	[HEALTHD_OK] = "pass",
	[HEALTHD_WARNING] = "warn",
	[HEALTHD_CRITICAL] = "fail",
	[HEALTHD_UNKNOWN] = "fail",
};

bool
format_passed(enum healthd_status st)
{
	return st == HEALTHD_OK || st == HEALTHD_WARNING;
}

bool
format_job_passed(const struct runner_job *job)
{
	for (size_t i = 0; i < runner_job_count(job); i++)
		if (!format_passed(runner_job_result(job, i)->status))
			return false;
	return true;
}

/* A value's shortest text that reads back as the same double: 0.52, not
 * 0.52000000000000002 (json-c's and printf's %.17g). */
void
format_number(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, len, "%.17g", v);
}

enum format_part
format_value_part(const char *name, size_t *stem)
{
	static const char *const suffix[] = {
		[FORMAT_WARN] = ";warn", [FORMAT_CRIT] = ";crit",
		[FORMAT_MIN] = ";min",   [FORMAT_MAX] = ";max",
	};
	size_t n = strlen(name);

	for (int p = FORMAT_WARN; p <= FORMAT_MAX; p++) {
		size_t k = strlen(suffix[p]);
		if (n > k && strcmp(name + n - k, suffix[p]) == 0) {
			*stem = n - k;
			return (enum format_part)p;
		}
	}
	*stem = n;
	return FORMAT_VALUE;
}

static struct json_object *
json_number(double v)
{
	char text[32];

	format_number(v, text, sizeof(text));
	return json_object_new_double_s(v, text);
}

/* The indexes of n values in name order (n <= HEALTHD_VALUES_MAX): keys are sorted. */
static void
values_by_name(const struct report_value *v, size_t n, size_t *order)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		for (; j > 0 && strcmp(v[order[j - 1]].name, v[i].name) > 0; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
}

/* {"name": value, ...} for ?verbose=1, or NULL when out of memory; thresholds
 * ("<name>;warn" ...) are in /metrics, not here. */
static struct json_object *
values_object(const struct report_value *v, size_t n)
{
	struct json_object *o = json_object_new_object();
	size_t order[HEALTHD_VALUES_MAX];

	if (o == NULL)
		return NULL;
	values_by_name(v, n, order);
	for (size_t i = 0; i < n; i++) {
		size_t stem;
		if (format_value_part(v[order[i]].name, &stem) == FORMAT_VALUE) /* not thresholds */
			json_object_object_add(o, v[order[i]].name, json_number(v[order[i]].value));
	}
	return o;
}

/* Serialises compactly with the one trailing newline, and frees root. */
static char *
finish_json(struct json_object *root, size_t *len)
{
	const char *s;
	char *out = NULL;
	size_t n;

	if (root == NULL)
		return NULL;
	s = json_object_to_json_string_length(root, JSON_FLAGS, &n);
	if (s != NULL && (out = malloc(n + 1)) != NULL) {
		memcpy(out, s, n);
		out[n] = '\n';
		*len = n + 1;
	}
	json_object_put(root);
	return out;
}

bool
format_has_thresholds(const struct check *c)
{
	return c->failures_before_critical > 1 || c->successes_before_passing > 1;
}

/* Whether s goes into a JSON string as it is (check_name_error's characters do). */
static bool
json_plain(const char *s, size_t *len)
{
	const char *p;

	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\')
			return false;
	*len = (size_t)(p - s);
	return true;
}

static void
put(char *out, size_t *off, const char *s, size_t n)
{
	memcpy(out + *off, s, n);
	*off += n;
}

/*
 * The seed's body without details, the one probes ask for, written
 * directly: json-c's objects were a tenth of a request's CPU. *plain is
 * false when a name would need escaping (then json-c writes it).
 */
static char *
seed_plain(const struct registry *reg, const uint32_t *ids, const struct runner_job *job,
           size_t *len, bool *plain)
{
	static const char head[] = "{\"available_checks\":[", mid[] = "],\"checks\":{",
	                  tail_ok[] = "},\"health\":\"running\"}\n",
	                  tail_bad[] = "},\"health\":\"degraded\"}\n";
	size_t count = registry_count(reg), n = runner_job_count(job), size, off = 0, k;
	bool passed = format_job_passed(job);
	char *out;

	*plain = false;
	size = sizeof(head) + sizeof(mid) + sizeof(tail_bad);
	for (uint32_t id = 0; id < count; id++) {
		if (!json_plain(registry_at(reg, id)->name, &k))
			return NULL;
		size += k + 3; /* "name", */
	}
	for (size_t i = 0; i < n; i++)
		size += strlen(registry_at(reg, ids[i])->name) + 10; /* "name":false, */
	*plain = true;
	if ((out = malloc(size)) == NULL)
		return NULL;
	put(out, &off, head, sizeof(head) - 1);
	for (uint32_t id = 0; id < count; id++) {
		const char *name = registry_at(reg, id)->name;

		if (id > 0)
			out[off++] = ',';
		out[off++] = '"';
		put(out, &off, name, strlen(name));
		out[off++] = '"';
	}
	put(out, &off, mid, sizeof(mid) - 1);
	for (size_t i = 0; i < n; i++) {
		const char *name = registry_at(reg, ids[i])->name;
		bool ok = format_passed(runner_job_result(job, i)->status);

		if (i > 0)
			out[off++] = ',';
		out[off++] = '"';
		put(out, &off, name, strlen(name));
		put(out, &off, ok ? "\":true" : "\":false", ok ? 6 : 7);
	}
	if (passed)
		put(out, &off, tail_ok, sizeof(tail_ok) - 1);
	else
		put(out, &off, tail_bad, sizeof(tail_bad) - 1);
	*len = off;
	return out;
}

/* Keys are added in sorted order: json-c keeps insertion order, and the seed
 * sorts keys. */
char *
format_seed(const struct registry *reg, const uint32_t *ids, const struct runner_job *job,
            bool verbose, size_t *len)
{
	struct json_object *root, *avail, *checks, *details = NULL;
	size_t count = registry_count(reg), n = runner_job_count(job);
	bool plain;
	char *body;

	if (!verbose && ((body = seed_plain(reg, ids, job, len, &plain)) != NULL || plain))
		return body;
	root = json_object_new_object();
	avail = json_object_new_array_ext((int)count);
	checks = json_object_new_object();
	if (verbose)
		details = json_object_new_object();
	if (root == NULL || avail == NULL || checks == NULL || (verbose && details == NULL))
		goto oom;
	for (uint32_t id = 0; id < count; id++)
		json_object_array_add(avail, json_object_new_string(registry_at(reg, id)->name));
	for (size_t i = 0; i < n; i++) {
		const struct runner_result *res = runner_job_result(job, i);
		const char *name = registry_at(reg, ids[i])->name;

		json_object_object_add_ex(checks, name,
		                          json_object_new_boolean(format_passed(res->status)),
		                          CONST_KEY);
		if (verbose) {
			struct json_object *d = json_object_new_object();
			if (d == NULL)
				goto oom;
			if (res->age_ms >= 0) /* a background or earlier run's result */
				json_object_object_add(d, "age_ms", json_object_new_int64(res->age_ms));
			json_object_object_add(d, "cached", json_object_new_boolean(res->cached));
			json_object_object_add(d, "duration_ms",
			                       json_object_new_int64(res->duration_ms));
			if (res->flapping) /* left out when not: the body stays as it was */
				json_object_object_add(d, "flapping", json_object_new_boolean(true));
			json_object_object_add(d, "output", json_object_new_string(res->message));
			if (format_has_thresholds(registry_at(reg, ids[i])))
				json_object_object_add(d, "run_status",
				                       json_object_new_string(status_words[res->run_status]));
			json_object_object_add(d, "status",
			                       json_object_new_string(status_words[res->status]));
			if (res->suppressed_by[0] != '\0')
				json_object_object_add(d, "suppressed_by",
				                       json_object_new_string(res->suppressed_by));
			if (res->nvalues > 0)
				json_object_object_add(d, "values",
				                       values_object(res->values, res->nvalues));
			json_object_object_add_ex(details, name, d, CONST_KEY);
		}
	}
	json_object_object_add(root, "available_checks", avail);
	json_object_object_add(root, "checks", checks);
	if (verbose)
		json_object_object_add(root, "details", details);
	json_object_object_add(root, "health",
	                       json_object_new_string(format_job_passed(job) ? "running"
	                                                                     : "degraded"));
	return finish_json(root, len);
oom:
	json_object_put(root);
	json_object_put(avail);
	json_object_put(checks);
	json_object_put(details);
	return NULL;
}

/*
 * health+json (draft-inadarei-api-health-check-06). Keys are
 * "componentName:measurementName", neither part holding a ':'. The component
 * is the check: a ':' in its name is written %3A (check names never hold a
 * '%', so this reads back exactly; componentId carries the name as it is).
 * The check's own measurement is the draft's "responseTime" (its run time in
 * ms); each value it reported is one more, named after the value ('%' and ':'
 * written %25 and %3A). componentType is the draft's generic "component":
 * the host cannot tell a datastore from a service.
 */
#define HEALTH_JSON_COMPONENT_TYPE "component"
#define HEALTH_JSON_KEY_MAX (3 * (CHECK_NAME_MAX + HEALTHD_VALUE_NAME_MAX) + 2)

/* name with '%' and ':' percent-encoded, appended to out at *off. */
static void
key_part(char *out, size_t *off, const char *name)
{
	for (; *name != '\0' && *off + 4 <= HEALTH_JSON_KEY_MAX; name++) {
		if (*name == ':' || *name == '%')
			*off += (size_t)snprintf(out + *off, 4, "%%%02X", (unsigned char)*name);
		else
			out[(*off)++] = *name;
	}
	out[*off] = '\0';
}

static void
health_json_key(char *out, const char *check, const char *measurement)
{
	size_t off = 0;

	key_part(out, &off, check);
	out[off++] = ':';
	key_part(out, &off, measurement);
}

/* When the result was measured, as RFC 3339 UTC with milliseconds. */
static void
health_json_time(int64_t ms, char *out, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, len - n, ".%03dZ", (int)(ms % 1000));
}

/* One measurement of a check: [{"componentId": ..., ...}] under key. value
 * and when NULL: nothing measured yet, so neither observedValue nor time. */
static int
add_measurement(struct json_object *checks, const char *key, const char *check,
                const struct runner_result *res, const char *unit, struct json_object *value,
                const char *when)
{
	struct json_object *list = json_object_new_array_ext(1), *m = json_object_new_object();

	if (list == NULL || m == NULL || (value == NULL && when != NULL)) {
		json_object_put(list);
		json_object_put(m);
		json_object_put(value);
		return -1;
	}
	json_object_object_add(m, "componentId", json_object_new_string(check));
	json_object_object_add(m, "componentType",
	                       json_object_new_string(HEALTH_JSON_COMPONENT_TYPE));
	if (res->flapping) /* healthd's annotations, as in ?verbose=1 */
		json_object_object_add(m, "flapping", json_object_new_boolean(true));
	if (value != NULL && unit != NULL && unit[0] != '\0')
		json_object_object_add(m, "observedUnit", json_object_new_string(unit));
	if (value != NULL)
		json_object_object_add(m, "observedValue", value);
	/* the draft: output is for "fail" and "warn", left out on "pass" */
	if (res->status != HEALTHD_OK && res->message[0] != '\0')
		json_object_object_add(m, "output", json_object_new_string(res->message));
	json_object_object_add(m, "status", json_object_new_string(status_words[res->status]));
	if (res->suppressed_by[0] != '\0')
		json_object_object_add(m, "suppressed_by", json_object_new_string(res->suppressed_by));
	if (when != NULL)
		json_object_object_add(m, "time", json_object_new_string(when));
	json_object_array_add(list, m);
	json_object_object_add(checks, key, list);
	return 0;
}

/* A check's measurements: responseTime, then each value it reported (a value
 * named responseTime would replace the check's own: left out here, it still
 * shows in ?verbose=1 and /metrics; so are thresholds, "<name>;warn" ...). */
static int
add_check(struct json_object *checks, const char *check, const struct runner_result *res)
{
	char key[HEALTH_JSON_KEY_MAX + 1], when[40];

	health_json_key(key, check, "responseTime");
	/* a background check before its first run: no reading, so no made-up
	 * observedValue 0 at the current time */
	if (res->background && res->age_ms < 0)
		return add_measurement(checks, key, check, res, NULL, NULL, NULL);
	health_json_time(res->measured_ms, when, sizeof(when));
	if (add_measurement(checks, key, check, res, "ms", json_object_new_int64(res->duration_ms),
	                    when) == -1)
		return -1;
	for (size_t j = 0; j < res->nvalues; j++) {
		const struct report_value *v = &res->values[j];

		size_t stem;

		/* a threshold is not a measurement of its own */
		if (strcmp(v->name, "responseTime") == 0 ||
		    format_value_part(v->name, &stem) != FORMAT_VALUE)
			continue;
		health_json_key(key, check, v->name);
		if (add_measurement(checks, key, check, res, v->unit, json_number(v->value),
		                    when) == -1)
			return -1;
	}
	return 0;
}

/* The service's identity, in the draft's names; keys added in sorted order. */
static void
add_service(struct json_object *root, const struct config_service *svc, bool before_status)
{
	if (svc == NULL)
		return;
	if (before_status) {
		if (svc->description != NULL)
			json_object_object_add(root, "description",
			                       json_object_new_string(svc->description));
		if (svc->release_id != NULL)
			json_object_object_add(root, "releaseId",
			                       json_object_new_string(svc->release_id));
		if (svc->id != NULL)
			json_object_object_add(root, "serviceId", json_object_new_string(svc->id));
	} else if (svc->version != NULL) {
		json_object_object_add(root, "version", json_object_new_string(svc->version));
	}
}

/* {"checks": {"name:responseTime": [{...}], ...}, "description": ..., "releaseId": ...,
 *  "serviceId": ..., "status": "pass|warn|fail", "version": ...} */
char *
format_health_json(const struct registry *reg, const struct config_service *service,
                   const uint32_t *ids, const struct runner_job *job, size_t *len)
{
	struct json_object *root, *checks;
	enum healthd_status worst = HEALTHD_OK;

	root = json_object_new_object();
	checks = json_object_new_object();
	if (root == NULL || checks == NULL)
		goto oom;
	for (size_t i = 0; i < runner_job_count(job); i++) {
		const struct runner_result *res = runner_job_result(job, i);

		if (res->status > worst)
			worst = res->status;
		/* a check missing from the answer would misreport it: all or nothing */
		if (add_check(checks, registry_at(reg, ids[i])->name, res) == -1)
			goto oom;
	}
	json_object_object_add(root, "checks", checks);
	add_service(root, service, true);
	json_object_object_add(root, "status", json_object_new_string(status_words[worst]));
	add_service(root, service, false);
	return finish_json(root, len);
oom:
	json_object_put(root);
	json_object_put(checks);
	return NULL;
}
