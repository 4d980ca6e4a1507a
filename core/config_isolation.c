/* config_isolation.c - the configuration's "isolation" (executors and the
 * sandbox's layers) and "in_process". */
#include "config_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The keys of "isolation": {"kill_after_ms": 1000, ...}. */
static const struct {
	const char *key;
	size_t field;
	long long min, max;
} isolation_keys[] = {
	/* key               field                                             min   max */
	{"kill_after_ms",    offsetof(struct config_isolation, kill_after_ms),  0,    600000},
	{"max_rss_mb",       offsetof(struct config_isolation, max_rss_mb),     8,    1 << 20},
	{"restart_min_ms",   offsetof(struct config_isolation, restart_min_ms), 10,   600000},
	{"restart_max_ms",   offsetof(struct config_isolation, restart_max_ms), 10,   3600000},
	{"crash_reset_ms",   offsetof(struct config_isolation, crash_reset_ms), 10,   86400000},
	{"max_threads",      offsetof(struct config_isolation, max_threads),    1,    4096},
	{"max_tasks",        offsetof(struct config_isolation, max_tasks),      8,    1 << 22},
	{"load_timeout_ms",  offsetof(struct config_isolation, load_timeout_ms), 10,  600000},
};

/* The sandbox layers by name, as isolation.require and isolation.plugins
 * spell them, and /metrics' layer label. */
static const struct {
	const char *name;
	unsigned bit;
} sandbox_layers[] = {
	{"namespaces",    SANDBOX_NAMESPACES},
	{"pid_namespace", SANDBOX_PID_NAMESPACE},
	{"seccomp",       SANDBOX_SECCOMP},
	{"landlock",      SANDBOX_LANDLOCK},
	{"tasks",         SANDBOX_TASKS},
};

const char *
config_sandbox_layer_name(size_t i, unsigned *bit)
{
	if (i >= sizeof(sandbox_layers) / sizeof(sandbox_layers[0]))
		return NULL;
	*bit = sandbox_layers[i].bit;
	return sandbox_layers[i].name;
}

unsigned
config_sandbox_layer(const char *name)
{
	for (size_t i = 0; i < sizeof(sandbox_layers) / sizeof(sandbox_layers[0]); i++)
		if (strcmp(sandbox_layers[i].name, name) == 0)
			return sandbox_layers[i].bit;
	return 0;
}

/* "require": true, or a list of layer names. */
static int
key_sandbox_require(struct reader *rd, const char *key, struct json_object *v)
{
	unsigned req = 0;

	if (json_object_is_type(v, json_type_boolean)) {
		rd->c->sandbox_require = json_object_get_boolean(v) ? SANDBOX_ALL : 0;
		return 0;
	}
	if (!json_object_is_type(v, json_type_array))
		return config_fail(rd, key, "expected true, false or a list of layers, got %s",
		            config_type_name(v));
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		unsigned bit = json_object_is_type(e, json_type_string) ?
		               config_sandbox_layer(json_object_get_string(e)) : 0;
		if (bit == 0)
			return config_fail(rd, key, "unknown layer %s (known: namespaces, pid_namespace, "
			            "seccomp, landlock, tasks)", json_object_to_json_string(e));
		req |= bit;
	}
	rd->c->sandbox_require = req;
	return 0;
}

/* "plugins": {"exec": {"pid_namespace": false, ...}, ...}: opt-outs by plugin. */
static int
key_sandbox_plugins(struct reader *rd, const char *key, struct json_object *v)
{
	struct config *c = rd->c;
	char where[512];

	if (!json_object_is_type(v, json_type_object))
		return config_fail(rd, key, "expected an object, got %s", config_type_name(v));
	for (size_t i = 0; i < c->nsandbox_off; i++)
		free(c->sandbox_off[i].plugin);
	free(c->sandbox_off);
	c->sandbox_off = NULL;
	c->nsandbox_off = 0;
	if (json_object_object_length(v) > 0 &&
	    (c->sandbox_off = calloc((size_t)json_object_object_length(v),
	                             sizeof(*c->sandbox_off))) == NULL)
		return config_fail(rd, key, "out of memory");
	json_object_object_foreach(v, name, layers) {
		struct config_sandbox_off *o = &c->sandbox_off[c->nsandbox_off];
		snprintf(where, sizeof(where), "%.200s.%.100s", key, name);
		if (!json_object_is_type(layers, json_type_object))
			return config_fail(rd, where, "expected an object, got %s", config_type_name(layers));
		json_object_object_foreach(layers, layer, on) {
			unsigned bit = config_sandbox_layer(layer);
			snprintf(where, sizeof(where), "%.200s.%.100s.%.100s", key, name, layer);
			if (bit == 0)
				return config_fail(rd, where, "unknown layer (known: namespaces, "
				            "pid_namespace, seccomp, landlock, tasks)");
			if (!json_object_is_type(on, json_type_boolean))
				return config_fail(rd, where, "expected true or false, got %s", config_type_name(on));
			if (!json_object_get_boolean(on))
				o->layers |= bit;
		}
		/* no user namespace, no PID namespace inside it */
		if (o->layers & SANDBOX_NAMESPACES)
			o->layers |= SANDBOX_PID_NAMESPACE;
		if ((o->plugin = strdup(name)) == NULL)
			return config_fail(rd, key, "out of memory");
		c->nsandbox_off++;
	}
	return 0;
}

unsigned
config_sandbox_off(const struct config *c, const char *name, size_t len)
{
	for (size_t i = 0; i < c->nsandbox_off; i++)
		if (strlen(c->sandbox_off[i].plugin) == len &&
		    memcmp(c->sandbox_off[i].plugin, name, len) == 0)
			return c->sandbox_off[i].layers;
	return 0;
}

int
config_key_isolation(struct reader *rd, const char *key, struct json_object *v)
{
	struct config_isolation *iso = &rd->c->isolation;
	char where[256];

	if (!json_object_is_type(v, json_type_object))
		return config_fail(rd, key, "expected an object, got %s", config_type_name(v));
	json_object_object_foreach(v, k, val) {
		size_t i;
		snprintf(where, sizeof(where), "%s.%.100s", key, k);
		if (strcmp(k, "require") == 0) {
			if (key_sandbox_require(rd, where, val) == -1)
				return -1;
			continue;
		}
		if (strcmp(k, "plugins") == 0) {
			if (key_sandbox_plugins(rd, where, val) == -1)
				return -1;
			continue;
		}
		for (i = 0; i < sizeof(isolation_keys) / sizeof(isolation_keys[0]); i++)
			if (strcmp(isolation_keys[i].key, k) == 0)
				break;
		if (i == sizeof(isolation_keys) / sizeof(isolation_keys[0]))
			return config_fail(rd, where, "unknown key (known: kill_after_ms, max_rss_mb, "
			            "restart_min_ms, restart_max_ms, crash_reset_ms, max_threads, max_tasks, "
			            "load_timeout_ms, require, plugins)");
		if (config_want_int(rd, where, val, isolation_keys[i].min, isolation_keys[i].max,
		             (int *)((char *)iso + isolation_keys[i].field)) == -1)
			return -1;
	}
	if (iso->restart_max_ms < iso->restart_min_ms)
		return config_fail(rd, "isolation.restart_max_ms", "must not be below restart_min_ms (%d)",
		            iso->restart_min_ms);
	return 0;
}

/* "in_process": ["dummy", ...]: plugin names, as the "plugin" key spells them. */
int
config_key_in_process(struct reader *rd, const char *key, struct json_object *v)
{
	struct config *c = rd->c;
	char where[64];
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return config_fail(rd, key, "expected an array of plugin names, got %s", config_type_name(v));
	for (size_t i = 0; i < c->nin_process; i++)
		free(c->in_process[i]);
	free(c->in_process);
	c->in_process = NULL;
	c->nin_process = 0;
	n = json_object_array_length(v);
	if (n > 0 && (c->in_process = calloc(n, sizeof(*c->in_process))) == NULL)
		return config_fail(rd, key, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *s;
		size_t len;

		snprintf(where, sizeof(where), "%s[%zu]", key, i);
		s = config_want_string(rd, where, json_object_array_get_idx(v, i));
		if (s == NULL)
			return -1;
		len = strlen(s);
		if (len == 0 || len > 32 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len)
			return config_fail(rd, where, "\"%.64s\" is not a plugin name (1 to 32 of a-z, 0-9, "
			            "_ and -)", s);
		c->in_process[c->nin_process] = strdup(s);
		if (c->in_process[c->nin_process] == NULL)
			return config_fail(rd, where, "out of memory");
		c->nin_process++;
	}
	return 0;
}

bool
config_in_process(const struct config *c, const char *name, size_t len)
{
	for (size_t i = 0; i < c->nin_process; i++)
		if (strlen(c->in_process[i]) == len && memcmp(c->in_process[i], name, len) == 0)
			return true;
	return false;
}
