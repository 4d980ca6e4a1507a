/* config.c - the JSON configuration file (json-c): reading it and checks_dir,
 * the top-level keys, the embedded default; checks and groups are in
 * config_checks.c, isolation in config_isolation.c, tls in config_tls.c. */
#include "config_impl.h"
#include "dirlist.h"
#include "log.h"

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


static int key_listen(struct reader *, const char *, struct json_object *);
static int key_prefix(struct reader *, const char *, struct json_object *);
static int key_secret(struct reader *, const char *, struct json_object *);
static int key_secret_file(struct reader *, const char *, struct json_object *);
static int key_path(struct reader *, const char *, struct json_object *);
static int key_int(struct reader *, const char *, struct json_object *);
static int key_metrics_path(struct reader *, const char *, struct json_object *);
static int key_bool(struct reader *, const char *, struct json_object *);
static int key_limits(struct reader *, const char *, struct json_object *);
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
	{"isolation",        config_key_isolation,     0,                                     0, 0},
	{"in_process",       config_key_in_process,    0,                                     0, 0},
	{"checks",           config_key_checks,        0,                                     0, 0},
	{"groups",           config_key_groups,        0,                                     0, 0},
	{"state_dir",        key_path,          offsetof(struct config, state_dir),    0, 0},
	{"history",          key_history,       0,                                     0, 0},
	{"status_public",    key_bool,          offsetof(struct config, status_public), 0, 0},
	{"service",          key_service,       0,                                     0, 0},
	{"tls",              config_key_tls,    0,                                     0, 0},
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

int
config_fail(struct reader *rd, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int
config_fail(struct reader *rd, const char *key, const char *fmt, ...)
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

const char *
config_type_name(struct json_object *v)
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
const char *
config_want_string(struct reader *rd, const char *key, struct json_object *v)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string)) {
		config_fail(rd, key, "expected a string, got %s", config_type_name(v));
		return NULL;
	}
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v)) {
		config_fail(rd, key, "must not contain NUL characters");
		return NULL;
	}
	return s;
}

int
config_want_int(struct reader *rd, const char *key, struct json_object *v, long long min,
         long long max, int *out)
{
	int64_t n;

	if (!json_object_is_type(v, json_type_int)) {
		config_fail(rd, key, "expected an integer from %lld to %lld, got %s", min, max, config_type_name(v));
		return -1;
	}
	errno = 0;
	n = json_object_get_int64(v);
	if (errno != 0 || n < min || n > max) {
		config_fail(rd, key, "expected an integer from %lld to %lld, got %s", min, max,
		     json_object_to_json_string(v));
		return -1;
	}
	*out = (int)n;
	return 0;
}

int
config_replace_string(char **field, const char *value)
{
	char *copy = value ? strdup(value) : NULL;

	if (value != NULL && copy == NULL)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

/* path, made relative to the config file's directory when it is relative. */
char *
config_resolve_path(const struct reader *rd, const char *path)
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
			return config_fail(rd, key, "at most 64 addresses");
		for (size_t i = 0; i < n; i++) {
			snprintf(where, sizeof(where), "%s[%zu]", key, i);
			addrs[i] = config_want_string(rd, where, json_object_array_get_idx(v, i));
			if (addrs[i] == NULL)
				return -1;
		}
	} else if (json_object_is_type(v, json_type_string)) {
		addrs[n++] = config_want_string(rd, key, v);
		if (addrs[0] == NULL)
			return -1;
	} else {
		return config_fail(rd, key, "expected \"ADDRESS:PORT\" or a list of them, got %s",
		            config_type_name(v));
	}
	snprintf(where, sizeof(where), "%s: %s", rd->file, key);
	return config_set_listen(rd->c, addrs, n, where, rd->err, rd->errlen);
}

static int
key_prefix(struct reader *rd, const char *key, struct json_object *v)
{
	const char *s = config_want_string(rd, key, v);
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
		return config_replace_string(&rd->c->secret, NULL);
	}
	s = config_want_string(rd, key, v);
	if (s == NULL)
		return -1;
	if (s[0] == '\0')
		return config_fail(rd, key, "must not be empty; use null to turn auth off");
	rd->c->secret_mode = SECRET_SET;
	if (config_replace_string(&rd->c->secret, s) == -1)
		return config_fail(rd, key, "out of memory");
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
	const char *s = config_want_string(rd, key, v);
	char *path;

	rd->saw_secret_file = true;
	if (s == NULL)
		return -1;
	path = config_resolve_path(rd, s);
	if (path == NULL)
		return config_fail(rd, key, "out of memory");
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
		return config_fail(&rd, key, "cannot read %s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > SECRET_MAX_BYTES)
		return config_fail(&rd, key, "%s is longer than %d bytes", path, SECRET_MAX_BYTES);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
	                 buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	if (n == 0 || strlen(buf) != n)
		return config_fail(&rd, key, "%s is empty or holds a NUL byte", path);
	if (config_replace_string(&c->secret, buf) == -1)
		return config_fail(&rd, key, "out of memory");
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
	const char *s = config_want_string(rd, key, v);
	char **field = (char **)((char *)rd->c + top_keys[field_of(key)].field);
	char *path;

	if (s == NULL)
		return -1;
	if (s[0] == '\0')
		return config_fail(rd, key, "must not be empty");
	path = config_resolve_path(rd, s);
	if (path == NULL)
		return config_fail(rd, key, "out of memory");
	free(*field);
	*field = path;
	return 0;
}

static int
key_int(struct reader *rd, const char *key, struct json_object *v)
{
	size_t i = field_of(key);

	return config_want_int(rd, key, v, top_keys[i].min, top_keys[i].max,
	                (int *)((char *)rd->c + top_keys[i].field));
}

static int
key_bool(struct reader *rd, const char *key, struct json_object *v)
{
	if (!json_object_is_type(v, json_type_boolean))
		return config_fail(rd, key, "expected true or false, got %s", config_type_name(v));
	*(bool *)((char *)rd->c + top_keys[field_of(key)].field) = json_object_get_boolean(v);
	return 0;
}

static int
key_metrics_path(struct reader *rd, const char *key, struct json_object *v)
{
	const char *s;

	if (json_object_is_type(v, json_type_null))
		return config_replace_string(&rd->c->metrics_path, NULL);
	s = config_want_string(rd, key, v);
	if (s == NULL)
		return -1;
	if (s[0] != '/' || strpbrk(s, "?# %") != NULL)
		return config_fail(rd, key, "expected a path starting with '/' (or null to turn "
		            "metrics off), got \"%.100s\"", s);
	if (config_replace_string(&rd->c->metrics_path, s) == -1)
		return config_fail(rd, key, "out of memory");
	return 0;
}

static int
key_limits(struct reader *rd, const char *key, struct json_object *v)
{
	char where[256];

	if (!json_object_is_type(v, json_type_object))
		return config_fail(rd, key, "expected an object, got %s", config_type_name(v));
	json_object_object_foreach(v, k, val) {
		size_t i;
		for (i = 0; i < sizeof(limit_keys) / sizeof(limit_keys[0]); i++)
			if (strcmp(limit_keys[i].key, k) == 0)
				break;
		snprintf(where, sizeof(where), "%s.%.100s", key, k);
		if (i == sizeof(limit_keys) / sizeof(limit_keys[0]))
			return config_fail(rd, where, "unknown key (known: max_connections, "
			            "idle_timeout_s, max_request_bytes, max_names, "
			            "max_connections_per_ip, max_body_bytes, "
			            "header_timeout_s, body_timeout_s, send_timeout_s)");
		if (config_want_int(rd, where, val, limit_keys[i].min, limit_keys[i].max,
		             (int *)((char *)&rd->c->limits + limit_keys[i].field)) == -1)
			return -1;
	}
	return 0;
}

/* A number from min to max, integer or not. */
int
config_want_number(struct reader *rd, const char *key, struct json_object *v, double min, double max,
            double *out)
{
	double d;

	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return config_fail(rd, key, "expected a number from %g to %g, got %s", min, max,
		            config_type_name(v));
	d = json_object_get_double(v);
	if (!(d >= min && d <= max))
		return config_fail(rd, key, "expected a number from %g to %g, got %s", min, max,
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
		return config_fail(rd, key, "expected an object, got %s", config_type_name(v));
	json_object_object_foreach(v, k, val) {
		snprintf(where, sizeof(where), "%s.%.100s", key, k);
		if (strcmp(k, "max_file_bytes") == 0) {
			/* at least 16 records of history_store.h's 224 bytes */
			if (config_want_int(rd, where, val, 16 * 224, 1 << 30, &hi->max_file_bytes) == -1)
				return -1;
		} else if (strcmp(k, "flap_low_percent") == 0) {
			if (config_want_number(rd, where, val, 0, 100, &hi->flap_low) == -1)
				return -1;
		} else if (strcmp(k, "flap_high_percent") == 0) {
			if (config_want_number(rd, where, val, 0, 100, &hi->flap_high) == -1)
				return -1;
		} else {
			return config_fail(rd, where, "unknown key (known: max_file_bytes, flap_low_percent, "
			            "flap_high_percent)");
		}
	}
	if (hi->flap_low > hi->flap_high)
		return config_fail(rd, key, "flap_low_percent (%g) is above flap_high_percent (%g): a "
		            "check stops flapping below the low one and starts at the high one",
		            hi->flap_low, hi->flap_high);
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
		return config_fail(rd, key, "expected an object, got %s", config_type_name(v));
	json_object_object_foreach(v, k, val) {
		size_t i;
		for (i = 0; i < sizeof(service_keys) / sizeof(service_keys[0]); i++)
			if (strcmp(service_keys[i].key, k) == 0)
				break;
		snprintf(where, sizeof(where), "%s.%.100s", key, k);
		if (i == sizeof(service_keys) / sizeof(service_keys[0]))
			return config_fail(rd, where, "unknown key (known: id, version, release_id, "
			            "description)");
		if ((s = config_want_string(rd, where, val)) == NULL)
			return -1;
		if (strlen(s) > SERVICE_TEXT_MAX)
			return config_fail(rd, where, "longer than %d bytes", SERVICE_TEXT_MAX);
		if (config_replace_string((char **)((char *)&rd->c->service + service_keys[i].field), s)
		    == -1)
			return config_fail(rd, where, "out of memory");
	}
	return 0;
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
		return config_fail(rd, "checks_dir", "cannot open %s: %s", rd->c->checks_dir,
		            strerror(errno));
	for (size_t i = 0; i < files.n && rc == 0; i++) {
		struct reader sub = *rd;
		struct json_object *root = parse_file(files.paths[i], rd->err, rd->errlen);

		sub.file = files.paths[i];
		if (root == NULL || config_read_check_list(&sub, "", root) == -1)
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
void
config_one_line(char *s)
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
		config_one_line(err);
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
		config_one_line(err);
		return -1;
	}
	if (config_replace_string(&c->path, path) == -1) {
		config_fail(&rd, NULL, "out of memory");
		goto out;
	}
	slash = strrchr(path, '/');
	rd.dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
	if (!json_object_is_type(root, json_type_object)) {
		config_fail(&rd, NULL, "expected a JSON object at the top, got %s", config_type_name(root));
		goto out;
	}
	json_object_object_foreach(root, key, v) {
		size_t i;
		for (i = 0; i < sizeof(top_keys) / sizeof(top_keys[0]); i++)
			if (strcmp(top_keys[i].key, key) == 0)
				break;
		if (i == sizeof(top_keys) / sizeof(top_keys[0])) {
			config_fail(&rd, NULL, "%.100s: unknown key (known: listen, url_prefix, url_secret, "
			     "url_secret_file, plugin_dir, workers, http_threads, checks_dir, "
			     "checks, groups, metrics_path, metrics_auth, limits, isolation, "
			     "in_process, service, state_dir, history, status_public, tls)",
			     key);
			goto out;
		}
		if (top_keys[i].fn(&rd, key, v) == -1)
			goto out;
	}
	if (rd.saw_secret && rd.saw_secret_file) {
		config_fail(&rd, "url_secret_file", "give either url_secret or url_secret_file, not both");
		goto out;
	}
	if (c->checks_dir != NULL && read_checks_dir(&rd) == -1)
		goto out;
	if (rd.saw_secret && c->secret != NULL)
		warn_readable(path, "holds url_secret");
	rc = 0;
out:
	if (rc == -1)
		config_one_line(err);
	free(rd.dir);
	json_object_put(root);
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
		config_options_free(&c->checks[i].options);
		for (size_t k = 0; k < c->checks[i].ndepends_on; k++)
			free(c->checks[i].depends_on[k]);
		free(c->checks[i].depends_on);
	}
	free(c->checks);
	for (size_t i = 0; i < c->ngroups; i++)
		config_group_free(&c->groups[i]);
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
	config_tls_free(&c->tls);
	*c = (struct config){0};
}
