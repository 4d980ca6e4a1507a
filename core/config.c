/* config.c - the JSON configuration file (json-c) and the embedded default. */
#include "config.h"
#include "dirlist.h"
#include "log.h"
#include "check_name.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#define CONFIG_MAX_BYTES (16 << 20)
#define SECRET_MAX_BYTES 4096

/* What a key handler gets: the file being read, for messages and relative paths. */
struct reader {
	struct config *c;
	const char *file; /* as named to the user */
	char *dir;        /* directory of file, for relative paths */
	char *err;
	size_t errlen;
	bool saw_secret, saw_secret_file;
};

typedef int (*key_fn)(struct reader *rd, const char *key, struct json_object *v);

static int key_listen(struct reader *, const char *, struct json_object *);
static int key_prefix(struct reader *, const char *, struct json_object *);
static int key_secret(struct reader *, const char *, struct json_object *);
static int key_secret_file(struct reader *, const char *, struct json_object *);
static int key_path(struct reader *, const char *, struct json_object *);
static int key_int(struct reader *, const char *, struct json_object *);
static int key_metrics_path(struct reader *, const char *, struct json_object *);
static int key_bool(struct reader *, const char *, struct json_object *);
static int key_checks(struct reader *, const char *, struct json_object *);
static int key_limits(struct reader *, const char *, struct json_object *);
static int key_isolation(struct reader *, const char *, struct json_object *);
static int key_in_process(struct reader *, const char *, struct json_object *);
static int key_groups(struct reader *, const char *, struct json_object *);
static int key_history(struct reader *, const char *, struct json_object *);
static int key_service(struct reader *, const char *, struct json_object *);

/* The top-level keys; anything else in the file is refused as unknown. */
static const struct {
	const char *key;
	key_fn fn;
	size_t field;         /* offsetof into struct config, for the generic handlers */
	long long min, max;   /* key_int */
} top_keys[] = {
	/* key               handler            field                                min  max */
	{"listen",           key_listen,        0,                                     0, 0},
	{"url_prefix",       key_prefix,        0,                                     0, 0},
	{"url_secret",       key_secret,        0,                                     0, 0},
	{"url_secret_file",  key_secret_file,   0,                                     0, 0},
	{"plugin_dir",       key_path,          offsetof(struct config, plugin_dir),   0, 0},
	{"checks_dir",       key_path,          offsetof(struct config, checks_dir),   0, 0},
	{"workers",          key_int,           offsetof(struct config, workers),      1, 1024},
	{"http_threads",     key_int,           offsetof(struct config, http_threads), 1, 64},
	{"metrics_path",     key_metrics_path,  0,                                     0, 0},
	{"metrics_auth",     key_bool,          offsetof(struct config, metrics_auth), 0, 0},
	{"limits",           key_limits,        0,                                     0, 0},
	{"isolation",        key_isolation,     0,                                     0, 0},
	{"in_process",       key_in_process,    0,                                     0, 0},
	{"checks",           key_checks,        0,                                     0, 0},
	{"groups",           key_groups,        0,                                     0, 0},
	{"state_dir",        key_path,          offsetof(struct config, state_dir),    0, 0},
	{"history",          key_history,       0,                                     0, 0},
	{"status_public",    key_bool,          offsetof(struct config, status_public), 0, 0},
	{"service",          key_service,       0,                                     0, 0},
};

/* The keys of "limits": {"max_connections": 1024, ...}. */
static const struct {
	const char *key;
	size_t field;
	long long min, max;
} limit_keys[] = {
	/* key                 field                                               min     max */
	{"max_connections",    offsetof(struct config_limits, max_connections),    1,      1000000},
	{"idle_timeout_s",     offsetof(struct config_limits, idle_timeout_s),     1,      86400},
	{"max_request_bytes",  offsetof(struct config_limits, max_request_bytes),  4096,   1 << 24},
	{"max_names",          offsetof(struct config_limits, max_names),          1,      1000000},
	{"max_connections_per_ip", offsetof(struct config_limits, max_connections_per_ip), 0, 1000000},
	{"max_body_bytes",     offsetof(struct config_limits, max_body_bytes),     0,      1 << 24},
	{"header_timeout_s",   offsetof(struct config_limits, header_timeout_s),   1,      86400},
	{"body_timeout_s",     offsetof(struct config_limits, body_timeout_s),     1,      86400},
	{"send_timeout_s",     offsetof(struct config_limits, send_timeout_s),     1,      86400},
};

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

static int
fail(struct reader *rd, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(struct reader *rd, const char *key, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(rd->err, rd->errlen, "%s: %s%s", rd->file, key ? key : "", key ? ": " : "");
	if (n < 0 || (size_t)n >= rd->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(rd->err + n, rd->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *
type_name(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a number";
	case json_type_int: return "an integer";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "a value";
}

/* A JSON string without NUL bytes, or NULL after reporting the problem. */
static const char *
want_string(struct reader *rd, const char *key, struct json_object *v)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string)) {
		fail(rd, key, "expected a string, got %s", type_name(v));
		return NULL;
	}
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v)) {
		fail(rd, key, "must not contain NUL characters");
		return NULL;
	}
	return s;
}

static int
want_int(struct reader *rd, const char *key, struct json_object *v, long long min,
         long long max, int *out)
{
	int64_t n;

	if (!json_object_is_type(v, json_type_int)) {
		fail(rd, key, "expected an integer from %lld to %lld, got %s", min, max, type_name(v));
		return -1;
	}
	errno = 0;
	n = json_object_get_int64(v);
	if (errno != 0 || n < min || n > max) {
		fail(rd, key, "expected an integer from %lld to %lld, got %s", min, max,
		     json_object_to_json_string(v));
		return -1;
	}
	*out = (int)n;
	return 0;
}

static int
replace_string(char **field, const char *value)
{
	char *copy = value ? strdup(value) : NULL;

	if (value != NULL && copy == NULL)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

/* path, made relative to the config file's directory when it is relative. */
static char *
resolve_path(const struct reader *rd, const char *path)
{
	char *out;

	if (path[0] == '/' || rd->dir == NULL)
		return strdup(path);
	if (asprintf(&out, "%s/%s", rd->dir, path) == -1)
		return NULL;
	return out;
}

int
config_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
                  size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char host[256];
	const char *port, *colon;
	size_t hlen;
	char *end;
	long p;
	int rc;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "expected [IPV6]:PORT, got \"%.100s\"", s);
			return -1;
		}
		hlen = (size_t)(close - s - 1);
		memcpy(host, s + 1, hlen < sizeof(host) ? hlen : 0);
		port = close + 2;
		hints.ai_family = AF_INET6;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			snprintf(err, errlen, "expected ADDRESS:PORT, got \"%.100s\"", s);
			return -1;
		}
		hlen = (size_t)(colon - s);
		memcpy(host, s, hlen < sizeof(host) ? hlen : 0);
		port = colon + 1;
		if (memchr(s, ':', hlen) != NULL) {
			snprintf(err, errlen, "write IPv6 addresses in brackets: [%.*s]:PORT",
			         (int)hlen, s);
			return -1;
		}
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		snprintf(err, errlen, "missing or overlong address in \"%.100s\"", s);
		return -1;
	}
	host[hlen] = '\0';
	errno = 0;
	p = strtol(port, &end, 10);
	if (port[0] < '0' || port[0] > '9' || *end != '\0' || errno != 0 || p < 0 || p > 65535) {
		snprintf(err, errlen, "port must be a number from 0 to 65535 in \"%.100s\"", s);
		return -1;
	}
	if (strcmp(host, "*") == 0)
		strcpy(host, "0.0.0.0");
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int
config_set_listen(struct config *c, const char *const *addrs, size_t n, const char *where,
                  char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char why[256];
	char **list;

	if (n == 0) {
		snprintf(err, errlen, "%s: needs at least one ADDRESS:PORT", where);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (config_parse_addr(addrs[i], &ss, &sslen, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s: %s", where, why);
			return -1;
		}
	}
	list = calloc(n, sizeof(*list));
	if (list == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		list[i] = strdup(addrs[i]);
		if (list[i] == NULL) {
			while (i-- > 0)
				free(list[i]);
			free(list);
			goto oom;
		}
	}
	for (size_t i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->listen);
	c->listen = list;
	c->nlisten = n;
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", where);
	return -1;
}

int
config_set_prefix(struct config *c, const char *prefix, const char *where, char *err,
                  size_t errlen)
{
	size_t len = strlen(prefix);

	if (prefix[0] != '/') {
		snprintf(err, errlen, "%s: must start with '/', got \"%.100s\"", where, prefix);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)prefix[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '?' || ch == '#' || ch == '%') {
			snprintf(err, errlen, "%s: may not contain spaces, control characters, "
			         "'?', '#' or '%%', got \"%.100s\"", where, prefix);
			return -1;
		}
	}
	while (len > 0 && prefix[len - 1] == '/')
		len--; /* "/health/" means "/health"; "/" means the root */
	free(c->url_prefix);
	c->url_prefix = strndup(prefix, len);
	if (c->url_prefix == NULL) {
		snprintf(err, errlen, "%s: out of memory", where);
		return -1;
	}
	return 0;
}

static int
key_listen(struct reader *rd, const char *key, struct json_object *v)
{
	const char *addrs[64];
	size_t n = 0;
	char where[512];

	if (json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		if (n > sizeof(addrs) / sizeof(addrs[0]))
			return fail(rd, key, "at most 64 addresses");
		for (size_t i = 0; i < n; i++) {
			snprintf(where, sizeof(where), "%s[%zu]", key, i);
			addrs[i] = want_string(rd, where, json_object_array_get_idx(v, i));
			if (addrs[i] == NULL)
				return -1;
		}
	} else if (json_object_is_type(v, json_type_string)) {
		addrs[n++] = want_string(rd, key, v);
		if (addrs[0] == NULL)
			return -1;
	} else {
		return fail(rd, key, "expected \"ADDRESS:PORT\" or a list of them, got %s",
		            type_name(v));
	}
	snprintf(where, sizeof(where), "%s: %s", rd->file, key);
	return config_set_listen(rd->c, addrs, n, where, rd->err, rd->errlen);
}

static int
key_prefix(struct reader *rd, const char *key, struct json_object *v)
{
	const char *s = want_string(rd, key, v);
	char where[512];

	if (s == NULL)
		return -1;
	snprintf(where, sizeof(where), "%s: %s", rd->file, key);
	return config_set_prefix(rd->c, s, where, rd->err, rd->errlen);
}

static int
key_secret(struct reader *rd, const char *key, struct json_object *v)
{
	const char *s;

	rd->saw_secret = true;
	if (json_object_is_type(v, json_type_null)) {
		rd->c->secret_mode = SECRET_OFF;
		return replace_string(&rd->c->secret, NULL);
	}
	s = want_string(rd, key, v);
	if (s == NULL)
		return -1;
	if (s[0] == '\0')
		return fail(rd, key, "must not be empty; use null to turn auth off");
	rd->c->secret_mode = SECRET_SET;
	if (replace_string(&rd->c->secret, s) == -1)
		return fail(rd, key, "out of memory");
	return 0;
}

/* sshd's StrictModes for files with a secret: a warning, not a refusal. */
static void
warn_readable(const char *path, const char *what)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & S_IROTH))
		log_warn("%s %s and is readable by every user (mode %04o): chmod o-r it", path, what,
		         (unsigned)(st.st_mode & 07777));
}

/* The secret from a file, as container secrets are mounted: trailing white
 * space (the newline editors add) is not part of it. */
static int
key_secret_file(struct reader *rd, const char *key, struct json_object *v)
{
	const char *s = want_string(rd, key, v);
	char *path;

	rd->saw_secret_file = true;
	if (s == NULL)
		return -1;
	path = resolve_path(rd, s);
	if (path == NULL)
		return fail(rd, key, "out of memory");
	/* read by config_read_secret(), once the command line and the
	 * environment had their say: a unit's credential path must not stop
	 * a --check-config run by hand with HEALTH_URL_SECRET set */
	free(rd->c->secret_file);
	rd->c->secret_file = path;
	rd->c->secret_mode = SECRET_SET;
	rd->c->secret_pending = true;
	return 0;
}

int
config_read_secret(struct config *c, char *err, size_t errlen)
{
	struct reader rd = {.c = c, .file = c->path ? c->path : "(embedded default)",
	                    .err = err, .errlen = errlen};
	char buf[SECRET_MAX_BYTES + 1];
	const char *key = "url_secret_file", *path = c->secret_file;
	size_t n;
	FILE *f;

	if (path != NULL) /* read or not, a secret in it is out for every user */
		warn_readable(path, "is url_secret_file");
	if (!c->secret_pending)
		return 0;
	f = fopen(path, "r");
	if (f == NULL)
		return fail(&rd, key, "cannot read %s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > SECRET_MAX_BYTES)
		return fail(&rd, key, "%s is longer than %d bytes", path, SECRET_MAX_BYTES);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
	                 buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	if (n == 0 || strlen(buf) != n)
		return fail(&rd, key, "%s is empty or holds a NUL byte", path);
	if (replace_string(&c->secret, buf) == -1)
		return fail(&rd, key, "out of memory");
	c->secret_pending = false;
	return 0;
}

static size_t
field_of(const char *key)
{
	for (size_t i = 0; i < sizeof(top_keys) / sizeof(top_keys[0]); i++)
		if (strcmp(top_keys[i].key, key) == 0)
			return i;
	return 0;
}

static int
key_path(struct reader *rd, const char *key, struct json_object *v)
{
	const char *s = want_string(rd, key, v);
	char **field = (char **)((char *)rd->c + top_keys[field_of(key)].field);
	char *path;

	if (s == NULL)
		return -1;
	if (s[0] == '\0')
		return fail(rd, key, "must not be empty");
	path = resolve_path(rd, s);
	if (path == NULL)
		return fail(rd, key, "out of memory");
	free(*field);
	*field = path;
	return 0;
}

static int
key_int(struct reader *rd, const char *key, struct json_object *v)
{
	size_t i = field_of(key);

	return want_int(rd, key, v, top_keys[i].min, top_keys[i].max,
	                (int *)((char *)rd->c + top_keys[i].field));
}

static int
key_bool(struct reader *rd, const char *key, struct json_object *v)
{
	if (!json_object_is_type(v, json_type_boolean))
		return fail(rd, key, "expected true or false, got %s", type_name(v));
	*(bool *)((char *)rd->c + top_keys[field_of(key)].field) = json_object_get_boolean(v);
	return 0;
}

static int
key_metrics_path(struct reader *rd, const char *key, struct json_object *v)
{
	const char *s;

	if (json_object_is_type(v, json_type_null))
		return replace_string(&rd->c->metrics_path, NULL);
	s = want_string(rd, key, v);
	if (s == NULL)
		return -1;
	if (s[0] != '/' || strpbrk(s, "?# %") != NULL)
		return fail(rd, key, "expected a path starting with '/' (or null to turn "
		            "metrics off), got \"%.100s\"", s);
	if (replace_string(&rd->c->metrics_path, s) == -1)
		return fail(rd, key, "out of memory");
	return 0;
}

static int
key_limits(struct reader *rd, const char *key, struct json_object *v)
{
	char where[256];

	if (!json_object_is_type(v, json_type_object))
		return fail(rd, key, "expected an object, got %s", type_name(v));
	json_object_object_foreach(v, k, val) {
		size_t i;
		for (i = 0; i < sizeof(limit_keys) / sizeof(limit_keys[0]); i++)
			if (strcmp(limit_keys[i].key, k) == 0)
				break;
		snprintf(where, sizeof(where), "%s.%.100s", key, k);
		if (i == sizeof(limit_keys) / sizeof(limit_keys[0]))
			return fail(rd, where, "unknown key (known: max_connections, "
			            "idle_timeout_s, max_request_bytes, max_names, "
			            "max_connections_per_ip, max_body_bytes, "
			            "header_timeout_s, body_timeout_s, send_timeout_s)");
		if (want_int(rd, where, val, limit_keys[i].min, limit_keys[i].max,
		             (int *)((char *)&rd->c->limits + limit_keys[i].field)) == -1)
			return -1;
	}
	return 0;
}

/* A number from min to max, integer or not. */
static int
want_number(struct reader *rd, const char *key, struct json_object *v, double min, double max,
            double *out)
{
	double d;

	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return fail(rd, key, "expected a number from %g to %g, got %s", min, max,
		            type_name(v));
	d = json_object_get_double(v);
	if (!(d >= min && d <= max))
		return fail(rd, key, "expected a number from %g to %g, got %s", min, max,
		            json_object_to_json_string(v));
	*out = d;
	return 0;
}

/* "history": {"max_file_bytes": 4194304, "flap_low_percent": 20,
 * "flap_high_percent": 30} */
static int
key_history(struct reader *rd, const char *key, struct json_object *v)
{
	struct config_history *hi = &rd->c->history;
	char where[256];

	if (!json_object_is_type(v, json_type_object))
		return fail(rd, key, "expected an object, got %s", type_name(v));
	json_object_object_foreach(v, k, val) {
		snprintf(where, sizeof(where), "%s.%.100s", key, k);
		if (strcmp(k, "max_file_bytes") == 0) {
			/* at least 16 records of history_store.h's 224 bytes */
			if (want_int(rd, where, val, 16 * 224, 1 << 30, &hi->max_file_bytes) == -1)
				return -1;
		} else if (strcmp(k, "flap_low_percent") == 0) {
			if (want_number(rd, where, val, 0, 100, &hi->flap_low) == -1)
				return -1;
		} else if (strcmp(k, "flap_high_percent") == 0) {
			if (want_number(rd, where, val, 0, 100, &hi->flap_high) == -1)
				return -1;
		} else {
			return fail(rd, where, "unknown key (known: max_file_bytes, flap_low_percent, "
			            "flap_high_percent)");
		}
	}
	if (hi->flap_low > hi->flap_high)
		return fail(rd, key, "flap_low_percent (%g) is above flap_high_percent (%g): a "
		            "check stops flapping below the low one and starts at the high one",
		            hi->flap_low, hi->flap_high);
	return 0;
}

/* The sandbox layers by name, as isolation.require and isolation.plugins
 * spell them. */
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
		return fail(rd, key, "expected true, false or a list of layers, got %s",
		            type_name(v));
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		unsigned bit = json_object_is_type(e, json_type_string) ?
		               config_sandbox_layer(json_object_get_string(e)) : 0;
		if (bit == 0)
			return fail(rd, key, "unknown layer %s (known: namespaces, pid_namespace, "
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
		return fail(rd, key, "expected an object, got %s", type_name(v));
	for (size_t i = 0; i < c->nsandbox_off; i++)
		free(c->sandbox_off[i].plugin);
	free(c->sandbox_off);
	c->sandbox_off = NULL;
	c->nsandbox_off = 0;
	if (json_object_object_length(v) > 0 &&
	    (c->sandbox_off = calloc((size_t)json_object_object_length(v),
	                             sizeof(*c->sandbox_off))) == NULL)
		return fail(rd, key, "out of memory");
	json_object_object_foreach(v, name, layers) {
		struct config_sandbox_off *o = &c->sandbox_off[c->nsandbox_off];
		snprintf(where, sizeof(where), "%.200s.%.100s", key, name);
		if (!json_object_is_type(layers, json_type_object))
			return fail(rd, where, "expected an object, got %s", type_name(layers));
		json_object_object_foreach(layers, layer, on) {
			unsigned bit = config_sandbox_layer(layer);
			snprintf(where, sizeof(where), "%.200s.%.100s.%.100s", key, name, layer);
			if (bit == 0)
				return fail(rd, where, "unknown layer (known: namespaces, "
				            "pid_namespace, seccomp, landlock, tasks)");
			if (!json_object_is_type(on, json_type_boolean))
				return fail(rd, where, "expected true or false, got %s", type_name(on));
			if (!json_object_get_boolean(on))
				o->layers |= bit;
		}
		/* no user namespace, no PID namespace inside it */
		if (o->layers & SANDBOX_NAMESPACES)
			o->layers |= SANDBOX_PID_NAMESPACE;
		if ((o->plugin = strdup(name)) == NULL)
			return fail(rd, key, "out of memory");
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

static int
key_isolation(struct reader *rd, const char *key, struct json_object *v)
{
	struct config_isolation *iso = &rd->c->isolation;
	char where[256];

	if (!json_object_is_type(v, json_type_object))
		return fail(rd, key, "expected an object, got %s", type_name(v));
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
			return fail(rd, where, "unknown key (known: kill_after_ms, max_rss_mb, "
			            "restart_min_ms, restart_max_ms, crash_reset_ms, max_threads, max_tasks, "
			            "load_timeout_ms, require, plugins)");
		if (want_int(rd, where, val, isolation_keys[i].min, isolation_keys[i].max,
		             (int *)((char *)iso + isolation_keys[i].field)) == -1)
			return -1;
	}
	if (iso->restart_max_ms < iso->restart_min_ms)
		return fail(rd, "isolation.restart_max_ms", "must not be below restart_min_ms (%d)",
		            iso->restart_min_ms);
	return 0;
}

/* The keys of "service", each a string shown in health+json as named. */
#define SERVICE_TEXT_MAX 1024
static const struct {
	const char *key;
	size_t field;    /* offsetof into struct config_service */
} service_keys[] = {
	/* key            field                                        health+json */
	{"id",            offsetof(struct config_service, id)},          /* serviceId */
	{"version",       offsetof(struct config_service, version)},     /* version */
	{"release_id",    offsetof(struct config_service, release_id)},  /* releaseId */
	{"description",   offsetof(struct config_service, description)}, /* description */
};

/* "service": {"id": "shop-api", "version": "2.4.1", ...}, all optional. */
static int
key_service(struct reader *rd, const char *key, struct json_object *v)
{
	char where[256];
	const char *s;

	if (!json_object_is_type(v, json_type_object))
		return fail(rd, key, "expected an object, got %s", type_name(v));
	json_object_object_foreach(v, k, val) {
		size_t i;
		for (i = 0; i < sizeof(service_keys) / sizeof(service_keys[0]); i++)
			if (strcmp(service_keys[i].key, k) == 0)
				break;
		snprintf(where, sizeof(where), "%s.%.100s", key, k);
		if (i == sizeof(service_keys) / sizeof(service_keys[0]))
			return fail(rd, where, "unknown key (known: id, version, release_id, "
			            "description)");
		if ((s = want_string(rd, where, val)) == NULL)
			return -1;
		if (strlen(s) > SERVICE_TEXT_MAX)
			return fail(rd, where, "longer than %d bytes", SERVICE_TEXT_MAX);
		if (replace_string((char **)((char *)&rd->c->service + service_keys[i].field), s)
		    == -1)
			return fail(rd, where, "out of memory");
	}
	return 0;
}

/* "in_process": ["dummy", ...]: plugin names, as the "plugin" key spells them. */
static int
key_in_process(struct reader *rd, const char *key, struct json_object *v)
{
	struct config *c = rd->c;
	char where[64];
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return fail(rd, key, "expected an array of plugin names, got %s", type_name(v));
	for (size_t i = 0; i < c->nin_process; i++)
		free(c->in_process[i]);
	free(c->in_process);
	c->in_process = NULL;
	c->nin_process = 0;
	n = json_object_array_length(v);
	if (n > 0 && (c->in_process = calloc(n, sizeof(*c->in_process))) == NULL)
		return fail(rd, key, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *s;
		size_t len;

		snprintf(where, sizeof(where), "%s[%zu]", key, i);
		s = want_string(rd, where, json_object_array_get_idx(v, i));
		if (s == NULL)
			return -1;
		len = strlen(s);
		if (len == 0 || len > 32 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len)
			return fail(rd, where, "\"%.64s\" is not a plugin name (1 to 32 of a-z, 0-9, "
			            "_ and -)", s);
		c->in_process[c->nin_process] = strdup(s);
		if (c->in_process[c->nin_process] == NULL)
			return fail(rd, where, "out of memory");
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

static void
group_free(struct config_group *g)
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
		return fail(rd, where, "expected an array of check names, got %s", type_name(v));
	n = json_object_array_length(v);
	if (n == 0)
		return fail(rd, where, "an empty group: name at least one check");
	g->checks = calloc(n, sizeof(*g->checks));
	g->selection = malloc(n * (CHECK_NAME_MAX + 1));
	if (g->checks == NULL || g->selection == NULL)
		return fail(rd, where, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *s, *why;

		snprintf(item, sizeof(item), "%s[%zu]", where, i);
		s = want_string(rd, item, json_object_array_get_idx(v, i));
		if (s == NULL)
			return -1;
		if ((why = check_name_error(s)) != NULL)
			return fail(rd, item, "\"%.80s\" is not a check name: %s", s, why);
		for (size_t k = 0; k < g->nchecks; k++)
			if (strcmp(g->checks[k], s) == 0)
				return fail(rd, item, "\"%s\" is in the group twice", s);
		if ((g->checks[g->nchecks] = strdup(s)) == NULL)
			return fail(rd, item, "out of memory");
		g->nchecks++;
		used += (size_t)sprintf(g->selection + used, "%s%s", i ? "," : "", s);
	}
	return 0;
}

/* "groups": {"live": ["app"], "ready": {"checks": ["app", "db"], "timeout_ms": 900,
 *            "max_result_age_ms": 60000}} */
static int
key_groups(struct reader *rd, const char *key, struct json_object *v)
{
	struct config *c = rd->c;
	char where[256], sub[300];
	size_t n;

	if (!json_object_is_type(v, json_type_object))
		return fail(rd, key, "expected an object of groups {\"NAME\": [checks], ...}, got %s",
		            type_name(v));
	for (size_t i = 0; i < c->ngroups; i++)
		group_free(&c->groups[i]);
	free(c->groups);
	c->groups = NULL;
	c->ngroups = 0;
	n = (size_t)json_object_object_length(v);
	if (n > 0 && (c->groups = calloc(n, sizeof(*c->groups))) == NULL)
		return fail(rd, key, "out of memory");
	json_object_object_foreach(v, name, val) {
		struct config_group *g = &c->groups[c->ngroups];
		const char *why;

		snprintf(where, sizeof(where), "%s.%.100s", key, name);
		if ((why = group_name_error(name)) != NULL)
			return fail(rd, where, "%s", why);
		if ((g->name = strdup(name)) == NULL)
			return fail(rd, where, "out of memory");
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
				if (want_int(rd, sub, kv, 1, 3600000, &g->timeout_ms) == -1)
					return -1;
			} else if (strcmp(k, "max_result_age_ms") == 0) {
				if (want_int(rd, sub, kv, 0, 86400000, &g->max_result_age_ms) == -1)
					return -1;
			} else {
				return fail(rd, sub, "unknown key (known: checks, timeout_ms, "
				            "max_result_age_ms)");
			}
		}
		if (g->checks == NULL)
			return fail(rd, where, "missing \"checks\" (the group's check names)");
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
		s = want_string(rd, where, v);
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
		return fail(rd, where, "expected a string, number or boolean, got %s",
		            type_name(v));
	}
	if (*out == NULL)
		return fail(rd, where, "out of memory");
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
		return fail(rd, where, "out of memory");
	}
	o->v = grown;
	o->v[o->n] = (struct config_option){.key = strdup(key), .value = value};
	if (o->v[o->n].key == NULL) {
		free(value);
		return fail(rd, where, "out of memory");
	}
	o->n++;
	return 0;
}

static void
options_free(struct healthd_options *o)
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
		return fail(rd, key, "expected a list of check names, got %s", type_name(v));
	n = json_object_array_length(v);
	if ((ck->depends_on = calloc(n ? n : 1, sizeof(*ck->depends_on))) == NULL)
		return fail(rd, key, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char where[600];
		const char *s;

		snprintf(where, sizeof(where), "%.500s[%zu]", key, i);
		if ((s = want_string(rd, where, json_object_array_get_idx(v, i))) == NULL)
			return -1;
		if ((ck->depends_on[ck->ndepends_on++] = strdup(s)) == NULL)
			return fail(rd, where, "out of memory");
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
		return fail(rd, where, "expected a check object {\"name\": ..., \"plugin\": ...}, "
		            "got %s", type_name(v));
	grown = realloc(c->checks, (c->nchecks + 1) * sizeof(*c->checks));
	if (grown == NULL)
		return fail(rd, where, "out of memory");
	c->checks = grown;
	ck = &c->checks[c->nchecks++];
	*ck = (struct config_check){.defaults = true, .timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS};
	if (asprintf(&ck->origin, "%s: %s", rd->file, where) == -1) {
		ck->origin = NULL;
		return fail(rd, where, "out of memory");
	}
	json_object_object_foreach(v, k, val) {
		snprintf(key, sizeof(key), "%s.%.200s", where, k);
		if (strcmp(k, "name") == 0 || strcmp(k, "plugin") == 0) {
			const char *s = want_string(rd, key, val);
			if (s == NULL)
				return -1;
			if (replace_string(k[0] == 'n' ? &ck->name : &ck->plugin, s) == -1)
				return fail(rd, key, "out of memory");
		} else if (strcmp(k, "defaults") == 0) {
			if (!json_object_is_type(val, json_type_boolean))
				return fail(rd, key, "expected true or false, got %s", type_name(val));
			ck->defaults = json_object_get_boolean(val);
		} else if (strcmp(k, "timeout_ms") == 0) {
			if (want_int(rd, key, val, 1, 3600000, &ck->timeout_ms) == -1)
				return -1;
		} else if (strcmp(k, "cache_ms") == 0) {
			if (want_int(rd, key, val, 0, 86400000, &ck->cache_ms) == -1)
				return -1;
		} else if (strcmp(k, "interval_ms") == 0) {
			if (want_int(rd, key, val, CONFIG_MIN_INTERVAL_MS, 86400000,
			             &ck->interval_ms) == -1)
				return -1;
		} else if (strcmp(k, "failures_before_critical") == 0) {
			if (want_int(rd, key, val, 0, 1000, &ck->failures_before_critical) == -1)
				return -1;
		} else if (strcmp(k, "successes_before_passing") == 0) {
			if (want_int(rd, key, val, 0, 1000, &ck->successes_before_passing) == -1)
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
		return fail(rd, where, "missing \"name\"");
	if (ck->plugin == NULL)
		return fail(rd, where, "missing \"plugin\" (the check's plugin, e.g. \"http\")");
	if (ck->interval_ms > 0 && ck->cache_ms > 0) {
		snprintf(key, sizeof(key), "%s.cache_ms", where);
		return fail(rd, key, "a background check (interval_ms) always answers from its "
		            "last run; drop cache_ms");
	}
	return 0;
}

static int
read_check_list(struct reader *rd, const char *key, struct json_object *v)
{
	char where[256];
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return fail(rd, key[0] ? key : NULL, "expected a list of checks, got %s",
		            type_name(v));
	n = json_object_array_length(v);
	for (size_t i = 0; i < n; i++) {
		snprintf(where, sizeof(where), "%s[%zu]", key, i);
		if (read_check(rd, where, json_object_array_get_idx(v, i)) == -1)
			return -1;
	}
	return 0;
}

static int
key_checks(struct reader *rd, const char *key, struct json_object *v)
{
	return read_check_list(rd, key, v);
}

/* Parses text strictly as one JSON value, with line:column on errors. */
static struct json_object *
parse_text(const char *buf, size_t len, const char *shown, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *root;
	enum json_tokener_error jerr;
	size_t end;

	if (len > CONFIG_MAX_BYTES) {
		snprintf(err, errlen, "%s: larger than %d MiB", shown, CONFIG_MAX_BYTES >> 20);
		return NULL;
	}
	tok = json_tokener_new_ex(64);
	if (tok == NULL) {
		snprintf(err, errlen, "%s: out of memory", shown);
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_success) {
		/* only white space may follow; a NUL byte is not white space */
		while (end < len && buf[end] != '\0' && strchr(" \t\r\n", buf[end]) != NULL)
			end++;
		if (end < len)
			jerr = json_tokener_error_parse_unexpected;
	} else if (jerr == json_tokener_continue) {
		end = len;
	}
	if (jerr != json_tokener_success) {
		size_t line = 1, col = 1;
		for (size_t i = 0; i < end && i < len; i++) {
			if (buf[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		snprintf(err, errlen, "%s:%zu:%zu: invalid JSON: %s", shown, line, col,
		         jerr == json_tokener_continue ? "unexpected end of file"
		                                       : json_tokener_error_desc(jerr));
		json_object_put(root);
		root = NULL;
	} else if (root == NULL) {
		/* json-c parses the JSON value null as a NULL object */
		snprintf(err, errlen, "%s: expected a JSON object at the top, got null", shown);
	}
	json_tokener_free(tok);
	return root;
}

/* A whole file, up to one byte past the size limit (so that parse_text can
 * say it is too large). Returns malloc'd bytes and their count, or NULL. */
static char *
read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	FILE *f;

	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: cannot read: is a directory", path);
		fclose(f);
		return NULL;
	}
	buf = malloc(CONFIG_MAX_BYTES + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static struct json_object *
parse_file(const char *path, char *err, size_t errlen)
{
	struct json_object *root;
	size_t len = 0;
	char *buf;

	buf = read_file(path, &len, err, errlen);
	if (buf == NULL)
		return NULL;
	root = parse_text(buf, len, path, err, errlen);
	free(buf);
	return root;
}

/* checks_dir: every *.json in file-name order holds an array of checks. */
static int
read_checks_dir(struct reader *rd)
{
	struct dirlist files;
	int rc = 0;

	if (dirlist_read(&files, rd->c->checks_dir, ".json") == -1)
		return fail(rd, "checks_dir", "cannot open %s: %s", rd->c->checks_dir,
		            strerror(errno));
	for (size_t i = 0; i < files.n && rc == 0; i++) {
		struct reader sub = *rd;
		struct json_object *root = parse_file(files.paths[i], rd->err, rd->errlen);

		sub.file = files.paths[i];
		if (root == NULL || read_check_list(&sub, "", root) == -1)
			rc = -1;
		json_object_put(root);
	}
	dirlist_free(&files);
	return rc;
}

int
config_init(struct config *c)
{
	static const char *const listen[] = {CONFIG_DEFAULT_LISTEN};
	char err[256];

	*c = (struct config){
		.workers = CONFIG_DEFAULT_WORKERS,
		.limits = {
			.max_connections = 1024,
			.idle_timeout_s = 15,
			/* libmicrohttpd 0.9.75 clears a connection's whole buffer on
			 * every request: at 4000 connections 36864 cost 34-95 µs of CPU
			 * per ping, 16384 17 µs (README, Performance). Below 32 KiB
			 * the buffers come from malloc; http.c trims the heap after a
			 * burst of connections, so RSS still comes back. */
			.max_request_bytes = 16384,
			.max_names = 1000,
			.max_connections_per_ip = 0,
			.max_body_bytes = 16384,
			/* nginx's order of magnitude (60 s each there) */
			.header_timeout_s = 30,
			.body_timeout_s = 30,
			.send_timeout_s = 30,
		},
		.isolation = {
			.kill_after_ms = 1000,
			.max_rss_mb = 256,
			.restart_min_ms = 100,
			.restart_max_ms = 30000,
			.crash_reset_ms = 60000,
			.max_threads = 64,
			/* the run threads and as many again for what plugin code starts */
			.max_tasks = 128,
			/* as long as startup waited before it served: no plugin that
			 * loaded then is cut off now (a slow one no longer delays serving) */
			.load_timeout_ms = 30000,
		},
		.history = {
			.max_file_bytes = 4 << 20, /* HISTORY_STORE_MAX_DEFAULT */
			.flap_low = 20.0,          /* HISTORY_FLAP_LOW_DEFAULT: Nagios Core's */
			.flap_high = 30.0,
		},
	};
	c->metrics_path = strdup(CONFIG_DEFAULT_METRICS);
	/* dummy's true/false are trivial inline checks: not worth a process */
	c->in_process = calloc(1, sizeof(*c->in_process));
	if (c->in_process != NULL && (c->in_process[0] = strdup("dummy")) != NULL)
		c->nin_process = 1;
	if (c->metrics_path == NULL || c->nin_process != 1 ||
	    config_set_listen(c, listen, 1, "listen", err, sizeof(err)) == -1 ||
	    config_set_prefix(c, CONFIG_DEFAULT_PREFIX, "url_prefix", err, sizeof(err)) == -1)
		return -1;
	return 0;
}

/* Errors quote what the file says; whatever it says, they stay one line. */
static void
one_line(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	char *buf;
	int rc;

	buf = read_file(path, &len, err, errlen);
	if (buf == NULL) {
		one_line(err);
		return -1;
	}
	rc = config_load_text(c, path, buf, len, err, errlen);
	free(buf);
	return rc;
}

int
config_load_text(struct config *c, const char *path, const char *text, size_t len, char *err,
                 size_t errlen)
{
	struct reader rd = {.c = c, .file = path, .err = err, .errlen = errlen};
	struct json_object *root;
	const char *slash;
	int rc = -1;

	root = parse_text(text, len, path, err, errlen);
	if (root == NULL) {
		one_line(err);
		return -1;
	}
	if (replace_string(&c->path, path) == -1) {
		fail(&rd, NULL, "out of memory");
		goto out;
	}
	slash = strrchr(path, '/');
	rd.dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
	if (!json_object_is_type(root, json_type_object)) {
		fail(&rd, NULL, "expected a JSON object at the top, got %s", type_name(root));
		goto out;
	}
	json_object_object_foreach(root, key, v) {
		size_t i;
		for (i = 0; i < sizeof(top_keys) / sizeof(top_keys[0]); i++)
			if (strcmp(top_keys[i].key, key) == 0)
				break;
		if (i == sizeof(top_keys) / sizeof(top_keys[0])) {
			fail(&rd, NULL, "%.100s: unknown key (known: listen, url_prefix, url_secret, "
			     "url_secret_file, plugin_dir, workers, http_threads, checks_dir, "
			     "checks, groups, metrics_path, metrics_auth, limits, isolation, "
			     "in_process, service, state_dir, history, status_public)",
			     key);
			goto out;
		}
		if (top_keys[i].fn(&rd, key, v) == -1)
			goto out;
	}
	if (rd.saw_secret && rd.saw_secret_file) {
		fail(&rd, "url_secret_file", "give either url_secret or url_secret_file, not both");
		goto out;
	}
	if (c->checks_dir != NULL && read_checks_dir(&rd) == -1)
		goto out;
	if (rd.saw_secret && c->secret != NULL)
		warn_readable(path, "holds url_secret");
	rc = 0;
out:
	if (rc == -1)
		one_line(err);
	free(rd.dir);
	json_object_put(root);
	return rc;
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
				one_line(err);
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
		one_line(err);
		rc = -1;
	}
	free(mark);
	free(path);
	return rc;
}

void
config_free(struct config *c)
{
	for (size_t i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->listen);
	for (size_t i = 0; i < c->nchecks; i++) {
		free(c->checks[i].origin);
		free(c->checks[i].name);
		free(c->checks[i].plugin);
		options_free(&c->checks[i].options);
		for (size_t k = 0; k < c->checks[i].ndepends_on; k++)
			free(c->checks[i].depends_on[k]);
		free(c->checks[i].depends_on);
	}
	free(c->checks);
	for (size_t i = 0; i < c->ngroups; i++)
		group_free(&c->groups[i]);
	free(c->groups);
	for (size_t i = 0; i < c->nin_process; i++)
		free(c->in_process[i]);
	free(c->in_process);
	for (size_t i = 0; i < c->nsandbox_off; i++)
		free(c->sandbox_off[i].plugin);
	free(c->sandbox_off);
	free(c->secret_file);
	free(c->path);
	free(c->url_prefix);
	if (c->secret != NULL)
		explicit_bzero(c->secret, strlen(c->secret));
	free(c->secret);
	free(c->plugin_dir);
	free(c->checks_dir);
	free(c->metrics_path);
	free(c->state_dir);
	free(c->service.id);
	free(c->service.version);
	free(c->service.release_id);
	free(c->service.description);
	*c = (struct config){0};
}
