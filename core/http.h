/*
 * http.h - the health API on libmicrohttpd: routes, auth, responses.
 *
 * It asks the runner for results and the formatters for bodies; it never
 * runs a check itself and never blocks its threads waiting for one (a
 * request that waits is suspended and resumed by the runner).
 */
#ifndef HEALTHD_HTTP_H
#define HEALTHD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "registry.h"
#include "runner.h"

struct http;
struct executor_set;
struct plugin_loader;

/* What the server serves; all of it must outlive the server. */
struct gen_table;
struct tls;

struct http_env {
	const struct config *cfg;   /* listen, prefix, secret, limits: fixed at start */
	struct gen_table *gens;     /* the checks: a request holds one generation */
	struct runner *runner;
	const struct plugin_loader *loader; /* in-process plugins, for /metrics */
	struct executor_set *execs;         /* isolated plugins, for /metrics */
	struct tls *tls;                    /* NULL: plain HTTP; else HTTPS (tls.h) */
};

/* In the order they are matched (see the routes table in http.c). */
enum route {
	ROUTE_METRICS,
	ROUTE_PING,
	ROUTE_HEALTH,
	ROUTE_HISTORY,
	ROUTE_STATUS,
	ROUTE_REDIRECT,
	ROUTE_GROUP,
	ROUTE_OTHER,
	ROUTE_COUNT
};

/* Which route the decoded path url is, for cfg's (normalised) prefix, its
 * metrics path and its groups; *group is the group for ROUTE_GROUP, else
 * NULL. Pure; the fuzz target drives it directly. */
enum route http_route(const char *url, const struct config *cfg,
                      const struct config_group **group);

/* The request headers framing depends on, counted by http_framing_add. */
struct http_framing {
	unsigned hosts, lengths, encodings;
	const char *length, *encoding, *connection; /* the last length and coding, the first Connection */
};

/* Counts one request header (value NUL-terminated) into f. Pure, as the
 * next two; the fuzz target drives them directly. */
void http_framing_add(struct http_framing *f, const char *key, size_t key_size,
                      const char *value);

/* Whether a request with the headers f and this version (as libmicrohttpd
 * gives it) says unambiguously where it ends (RFC 9112 3.2, 6.1, 6.3);
 * bad_target: the target held a space. */
bool http_framing_ok(const struct http_framing *f, const char *version, bool bad_target);

/* The path and query of a request target: an absolute-form target ("http://
 * host/path", RFC 9112 3.2.2) without scheme and authority, "/" when it has no
 * path; any other form unchanged. A suffix of target, or the static "/". */
const char *http_origin_form(const char *target);

/*
 * Refuses groups that name a check reg does not have, or whose path
 * P/<group> another route (the metrics path) answers. Call once the
 * registry is sealed. Returns 0, or -1 with one line
 * "FILE: groups.NAME: problem" in err.
 */
int http_check_groups(const struct config *cfg, const struct registry *reg, char *err,
                      size_t errlen);

/* Listens on every address of cfg->listen; logs "listening on http://ADDR:PORT"
 * for each (the real port when the configured one is 0). Returns NULL with a
 * reason in err. */
struct http *http_start(const struct http_env *env, char *err, size_t errlen);

/* Stops accepting new connections; connections already open are still served. */
void http_quiesce(struct http *h);

/* Closes every connection and joins the server's threads. Call after
 * runner_shutdown(), so that no connection is still suspended. */
void http_stop(struct http *h);

#endif
