/* config_checks.c - the configuration's checks, their options and
 * depends_on, and its groups. */
#include "config_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_name.h"

void
config_group_free(struct config_group *g)
{
	for (size_t i = 0; i < g->nchecks; i++)
		free(g->checks[i]);
	free(g->checks);
	free(g->name);
	free(g->selection);
}

/* Why a group's name cannot be one, or NULL: a check name's characters, and
 * a path segment that clients send as it is. */
static const char *
group_name_error(const char *name)
{
	if (check_name_error(name) != NULL)
		return "a group name is 1 to 64 of letters, digits and _ . : - and does not start "
		       "with _ (as a check name)";
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return "clients resolve \".\" and \"..\" in a path: not a group name";
	if (strcmp(name, "ping") == 0)
		return "clashes with P/ping, which is never a group";
	return NULL;
}

/* The check names of a group: a non-empty array of names, each once. */
static int
read_group_checks(struct reader *rd, const char *where, struct json_object *v,
                  struct config_group *g)
{
	char item[256];
	size_t n, used = 0;

	if (!json_object_is_type(v, json_type_array))
		return config_fail(rd, where, "expected an array of check names, got %s", config_type_name(v));
	n = json_object_array_length(v);
	if (n == 0)
		return config_fail(rd, where, "an empty group: name at least one check");
	g->checks = calloc(n, sizeof(*g->checks));
	g->selection = malloc(n * (CHECK_NAME_MAX + 1));
	if (g->checks == NULL || g->selection == NULL)
		return config_fail(rd, where, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *s, *why;

		snprintf(item, sizeof(item), "%s[%zu]", where, i);
		s = config_want_string(rd, item, json_object_array_get_idx(v, i));
		if (s == NULL)
			return -1;
		if ((why = check_name_error(s)) != NULL)
			return config_fail(rd, item, "\"%.80s\" is not a check name: %s", s, why);
		for (size_t k = 0; k < g->nchecks; k++)
			if (strcmp(g->checks[k], s) == 0)
				return config_fail(rd, item, "\"%s\" is in the group twice", s);
		if ((g->checks[g->nchecks] = strdup(s)) == NULL)
			return config_fail(rd, item, "out of memory");
		g->nchecks++;
		used += (size_t)sprintf(g->selection + used, "%s%s", i ? "," : "", s);
	}
	return 0;
}

/* "groups": {"live": ["app"], "ready": {"checks": ["app", "db"], "timeout_ms": 900,
 *            "max_result_age_ms": 60000}} */
int
config_key_groups(struct reader *rd, const char *key, struct json_object *v)
{
	struct config *c = rd->c;
	char where[256], sub[300];
	size_t n;

	if (!json_object_is_type(v, json_type_object))
		return config_fail(rd, key, "expected an object of groups {\"NAME\": [checks], ...}, got %s",
		            config_type_name(v));
	for (size_t i = 0; i < c->ngroups; i++)
		config_group_free(&c->groups[i]);
	free(c->groups);
	c->groups = NULL;
	c->ngroups = 0;
	n = (size_t)json_object_object_length(v);
	if (n > 0 && (c->groups = calloc(n, sizeof(*c->groups))) == NULL)
		return config_fail(rd, key, "out of memory");
	json_object_object_foreach(v, name, val) {
		struct config_group *g = &c->groups[c->ngroups];
		const char *why;

		snprintf(where, sizeof(where), "%s.%.100s", key, name);
		if ((why = group_name_error(name)) != NULL)
			return config_fail(rd, where, "%s", why);
		if ((g->name = strdup(name)) == NULL)
			return config_fail(rd, where, "out of memory");
		c->ngroups++;
		g->max_result_age_ms = CONFIG_DEFAULT_MAX_RESULT_AGE_MS;
		if (!json_object_is_type(val, json_type_object)) {
			if (read_group_checks(rd, where, val, g) == -1)
				return -1;
			continue;
		}
		json_object_object_foreach(val, k, kv) {
			snprintf(sub, sizeof(sub), "%s.%.30s", where, k);
			if (strcmp(k, "checks") == 0) {
				if (read_group_checks(rd, sub, kv, g) == -1)
					return -1;
			} else if (strcmp(k, "timeout_ms") == 0) {
				if (config_want_int(rd, sub, kv, 1, 3600000, &g->timeout_ms) == -1)
					return -1;
			} else if (strcmp(k, "max_result_age_ms") == 0) {
				if (config_want_int(rd, sub, kv, 0, 86400000, &g->max_result_age_ms) == -1)
					return -1;
			} else {
				return config_fail(rd, sub, "unknown key (known: checks, timeout_ms, "
				            "max_result_age_ms)");
			}
		}
		if (g->checks == NULL)
			return config_fail(rd, where, "missing \"checks\" (the group's check names)");
	}
	return 0;
}

const struct config_group *
config_group(const struct config *c, const char *name, size_t len)
{
	for (size_t i = 0; i < c->ngroups; i++)
		if (strlen(c->groups[i].name) == len && memcmp(c->groups[i].name, name, len) == 0)
			return &c->groups[i];
	return NULL;
}

/* A plugin option's JSON value as the string the plugin reads. */
static int
option_text(struct reader *rd, const char *where, struct json_object *v, char **out)
{
	const char *s;

	switch (json_object_get_type(v)) {
	case json_type_string:
		s = config_want_string(rd, where, v);
		if (s == NULL)
			return -1;
		*out = strdup(s);
		break;
	case json_type_int:
	case json_type_double:
	case json_type_boolean:
		*out = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		break;
	default:
		return config_fail(rd, where, "expected a string, number or boolean, got %s",
		            config_type_name(v));
	}
	if (*out == NULL)
		return config_fail(rd, where, "out of memory");
	return 0;
}

static int
add_option(struct reader *rd, struct healthd_options *o, const char *where, const char *key,
           struct json_object *v)
{
	struct config_option *grown;
	char *value;

	if (option_text(rd, where, v, &value) == -1)
		return -1;
	grown = realloc(o->v, (o->n + 1) * sizeof(*o->v));
	if (grown == NULL) {
		free(value);
		return config_fail(rd, where, "out of memory");
	}
	o->v = grown;
	o->v[o->n] = (struct config_option){.key = strdup(key), .value = value};
	if (o->v[o->n].key == NULL) {
		free(value);
		return config_fail(rd, where, "out of memory");
	}
	o->n++;
	return 0;
}

void
config_options_free(struct healthd_options *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].key);
		free(o->v[i].value);
	}
	free(o->v);
	o->v = NULL;
	o->n = 0;
}

/* "depends_on": ["gateway", ...]: names, checked once every check is known
 * (config_check_depends). */
static int
read_depends(struct reader *rd, const char *key, struct json_object *v, struct config_check *ck)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return config_fail(rd, key, "expected a list of check names, got %s", config_type_name(v));
	n = json_object_array_length(v);
	if ((ck->depends_on = calloc(n ? n : 1, sizeof(*ck->depends_on))) == NULL)
		return config_fail(rd, key, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char where[600];
		const char *s;

		snprintf(where, sizeof(where), "%.500s[%zu]", key, i);
		if ((s = config_want_string(rd, where, json_object_array_get_idx(v, i))) == NULL)
			return -1;
		if ((ck->depends_on[ck->ndepends_on++] = strdup(s)) == NULL)
			return config_fail(rd, where, "out of memory");
	}
	return 0;
}

/* One element of a check list: host keys, the rest as the plugin's options. */
static int
read_check(struct reader *rd, const char *where, struct json_object *v)
{
	struct config *c = rd->c;
	struct config_check *grown, *ck;
	char key[512];

	if (!json_object_is_type(v, json_type_object))
		return config_fail(rd, where, "expected a check object {\"name\": ..., \"plugin\": ...}, "
		            "got %s", config_type_name(v));
	grown = realloc(c->checks, (c->nchecks + 1) * sizeof(*c->checks));
	if (grown == NULL)
		return config_fail(rd, where, "out of memory");
	c->checks = grown;
	ck = &c->checks[c->nchecks++];
	*ck = (struct config_check){.defaults = true, .timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS};
	if (asprintf(&ck->origin, "%s: %s", rd->file, where) == -1) {
		ck->origin = NULL;
		return config_fail(rd, where, "out of memory");
	}
	json_object_object_foreach(v, k, val) {
		snprintf(key, sizeof(key), "%s.%.200s", where, k);
		if (strcmp(k, "name") == 0 || strcmp(k, "plugin") == 0) {
			const char *s = config_want_string(rd, key, val);
			if (s == NULL)
				return -1;
			if (config_replace_string(k[0] == 'n' ? &ck->name : &ck->plugin, s) == -1)
				return config_fail(rd, key, "out of memory");
		} else if (strcmp(k, "defaults") == 0) {
			if (!json_object_is_type(val, json_type_boolean))
				return config_fail(rd, key, "expected true or false, got %s", config_type_name(val));
			ck->defaults = json_object_get_boolean(val);
		} else if (strcmp(k, "timeout_ms") == 0) {
			if (config_want_int(rd, key, val, 1, 3600000, &ck->timeout_ms) == -1)
				return -1;
		} else if (strcmp(k, "cache_ms") == 0) {
			if (config_want_int(rd, key, val, 0, 86400000, &ck->cache_ms) == -1)
				return -1;
		} else if (strcmp(k, "interval_ms") == 0) {
			if (config_want_int(rd, key, val, CONFIG_MIN_INTERVAL_MS, 86400000,
			             &ck->interval_ms) == -1)
				return -1;
		} else if (strcmp(k, "failures_before_critical") == 0) {
			if (config_want_int(rd, key, val, 0, 1000, &ck->failures_before_critical) == -1)
				return -1;
		} else if (strcmp(k, "successes_before_passing") == 0) {
			if (config_want_int(rd, key, val, 0, 1000, &ck->successes_before_passing) == -1)
				return -1;
		} else if (strcmp(k, "depends_on") == 0) {
			if (read_depends(rd, key, val, ck) == -1)
				return -1;
		} else if (json_object_is_type(val, json_type_object)) {
			/* {"header": {"X-A": "b"}} reaches the plugin as "header:X-A" */
			json_object_object_foreach(val, sub, subval) {
				char flat[512], subwhere[768];
				snprintf(flat, sizeof(flat), "%.200s:%.200s", k, sub);
				snprintf(subwhere, sizeof(subwhere), "%s.%.200s", key, sub);
				if (add_option(rd, &ck->options, subwhere, flat, subval) == -1)
					return -1;
			}
		} else if (json_object_is_type(val, json_type_array)) {
			/* {"command": ["/bin/x", "-v"]} reaches the plugin as "command:0",
			 * "command:1" (ABI 1.2) */
			for (size_t i = 0; i < json_object_array_length(val); i++) {
				char flat[512], subwhere[768];
				snprintf(flat, sizeof(flat), "%.200s:%zu", k, i);
				snprintf(subwhere, sizeof(subwhere), "%s[%zu]", key, i);
				if (add_option(rd, &ck->options, subwhere, flat,
				               json_object_array_get_idx(val, i)) == -1)
					return -1;
			}
		} else if (add_option(rd, &ck->options, key, k, val) == -1) {
			return -1;
		}
	}
	if (ck->name == NULL)
		return config_fail(rd, where, "missing \"name\"");
	if (ck->plugin == NULL)
		return config_fail(rd, where, "missing \"plugin\" (the check's plugin, e.g. \"http\")");
	if (ck->interval_ms > 0 && ck->cache_ms > 0) {
		snprintf(key, sizeof(key), "%s.cache_ms", where);
		return config_fail(rd, key, "a background check (interval_ms) always answers from its "
		            "last run; drop cache_ms");
	}
	return 0;
}

int
config_read_check_list(struct reader *rd, const char *key, struct json_object *v)
{
	char where[256];
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return config_fail(rd, key[0] ? key : NULL, "expected a list of checks, got %s",
		            config_type_name(v));
	n = json_object_array_length(v);
	for (size_t i = 0; i < n; i++) {
		snprintf(where, sizeof(where), "%s[%zu]", key, i);
		if (read_check(rd, where, json_object_array_get_idx(v, i)) == -1)
			return -1;
	}
	return 0;
}

int
config_key_checks(struct reader *rd, const char *key, struct json_object *v)
{
	return config_read_check_list(rd, key, v);
}

/* The configured check named name, or -1. */
static long
check_index(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nchecks; i++)
		if (strcmp(c->checks[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* Depth-first from check i; mark: 0 new, 1 on the path, 2 done. On a cycle
 * returns the check whose depends_on closes it and the path in path[]. */
static long
find_cycle(const struct config *c, size_t i, unsigned char *mark, size_t *path, size_t depth,
           size_t *start)
{
	const struct config_check *ck = &c->checks[i];

	mark[i] = 1;
	path[depth] = i;
	for (size_t k = 0; k < ck->ndepends_on; k++) {
		long j = check_index(c, ck->depends_on[k]);
		long found;

		if (j < 0 || mark[j] == 2)
			continue;
		if (mark[j] == 1) {
			*start = depth; /* path[..depth] ends in i, which depends on j */
			while (path[*start] != (size_t)j)
				(*start)--;
			return (long)depth;
		}
		if ((found = find_cycle(c, (size_t)j, mark, path, depth + 1, start)) >= 0)
			return found;
	}
	mark[i] = 2;
	return -1;
}

int
config_check_depends(const struct config *c, bool (*known)(const void *arg, const char *name),
                     const void *arg, char *err, size_t errlen)
{
	unsigned char *mark;
	size_t *path, start = 0;
	int rc = 0;

	for (size_t i = 0; i < c->nchecks; i++) {
		const struct config_check *ck = &c->checks[i];

		for (size_t k = 0; k < ck->ndepends_on; k++) {
			if (!known(arg, ck->depends_on[k])) {
				snprintf(err, errlen, "%s.depends_on: unknown check \"%.100s\" (neither "
				         "declared in checks nor registered by a plugin)", ck->origin,
				         ck->depends_on[k]);
				config_one_line(err);
				return -1;
			}
		}
	}
	mark = calloc(c->nchecks + 1, 1);
	path = calloc(c->nchecks + 1, sizeof(*path));
	if (mark == NULL || path == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < c->nchecks; i++) {
		long end = mark[i] ? -1 : find_cycle(c, i, mark, path, 0, &start);
		size_t off;

		if (end < 0)
			continue;
		/* reported at the check whose entry closes the cycle, from it round */
		off = (size_t)snprintf(err, errlen, "%s.depends_on: cycle %s",
		                       c->checks[path[end]].origin, c->checks[path[end]].name);
		for (size_t k = start; k <= (size_t)end && off < errlen; k++)
			off += (size_t)snprintf(err + off, errlen - off, " -> %s",
			                        c->checks[path[k]].name);
		config_one_line(err);
		rc = -1;
	}
	free(mark);
	free(path);
	return rc;
}
