/* history_json.c - the body of GET P/history?check=NAME (json-c), built from
 * a snapshot: no lock, no state. */
#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

/* keys are added in sorted order, as format.c's bodies have them */
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static struct json_object *json_time(int64_t ms);
static struct json_object *json_fixed(double v);
static struct json_object *json_availability(const struct history_snapshot *s, int64_t now_ms);

char *
history_json(const struct history_snapshot *s, int64_t now_ms, bool messages, size_t *len)
{
	struct json_object *root = json_object_new_object();
	struct json_object *results = json_object_new_array_ext((int)s->nresults);
	struct json_object *transitions = json_object_new_array_ext((int)s->ntransitions);
	const char *text;
	char *out = NULL;
	size_t n;

	for (uint32_t k = 0; k < s->nresults; k++) {
		const struct history_result *r = &s->results[k];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "duration_ms", json_object_new_int64(r->duration_ms));
		if (messages)
			json_object_object_add(o, "message", json_object_new_string(r->message));
		json_object_object_add(o, "status",
		                       json_object_new_string(history_status_word(r->status)));
		json_object_object_add(o, "time", json_time(r->time_ms));
		json_object_array_add(results, o);
	}
	for (uint32_t k = 0; k < s->ntransitions; k++) {
		const struct history_transition *t = &s->transitions[k];
		struct json_object *o = json_object_new_object();

		/* a check's first state came from nothing: null */
		json_object_object_add(o, "from", t->from == HISTORY_NONE ? NULL :
		                       json_object_new_string(history_status_word(t->from)));
		if (messages)
			json_object_object_add(o, "message", json_object_new_string(t->message));
		json_object_object_add(o, "time", json_time(t->time_ms));
		json_object_object_add(o, "to", json_object_new_string(history_status_word(t->to)));
		json_object_array_add(transitions, o);
	}
	json_object_object_add(root, "availability", json_availability(s, now_ms));
	json_object_object_add(root, "check", json_object_new_string(s->name));
	json_object_object_add(root, "flap_percent", json_fixed(s->flap_percent));
	json_object_object_add(root, "flapping", json_object_new_boolean(s->flapping));
	json_object_object_add(root, "results", results);
	json_object_object_add(root, "transitions", transitions);

	text = json_object_to_json_string_length(root, JSON_FLAGS, &n);
	if (text != NULL && (out = malloc(n + 2)) != NULL) {
		memcpy(out, text, n);
		out[n] = '\n';
		out[n + 1] = '\0';
		*len = n + 1;
	}
	json_object_put(root);
	return out;
}

/* RFC 3339 UTC with milliseconds, as health+json's "time". */
static struct json_object *
json_time(int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	char buf[40];
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ms % 1000));
	return json_object_new_string(buf);
}

/* v with at most 4 decimals, not json-c's 17 digits (0.99, not 0.98999...). */
static struct json_object *
json_fixed(double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.4f", v);
	for (size_t n = strlen(buf); n > 1 && buf[n - 1] == '0' && buf[n - 2] != '.'; n--)
		buf[n - 1] = '\0';
	return json_object_new_double_s(v, buf);
}

/* {"1h": x, "24h": x, "7d": x}: null where none of the window is known. */
static struct json_object *
json_availability(const struct history_snapshot *s, int64_t now_ms)
{
	static const struct {
		const char *key;
		int64_t window_ms;
	} windows[] = {{"1h", HISTORY_1H}, {"24h", HISTORY_24H}, {"7d", HISTORY_7D}};
	struct json_object *o = json_object_new_object();

	for (size_t k = 0; k < sizeof(windows) / sizeof(windows[0]); k++) {
		double a = history_availability(s, now_ms, windows[k].window_ms);

		json_object_object_add(o, windows[k].key, a < 0 ? NULL : json_fixed(a));
	}
	return o;
}
