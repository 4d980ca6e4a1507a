/*
 * http.h - the health API on libmicrohttpd: routes, auth, responses.
 *
 * It asks the runner for results and the formatters for bodies; it never
 * runs a check itself and never blocks its threads waiting for one (a
 * request that waits is suspended and resumed by the runner).
 */
#ifndef HEALTHD_HTTP_H
#define HEALTHD_HTTP_H

#include <stddef.h>

#include "config.h"
#include "registry.h"
#include "runner.h"

struct http;
struct executor_set;
struct plugin_loader;

/* What the server serves; all of it must outlive the server. */
struct gen_table;

struct http_env {
	const struct config *cfg;   /* listen, prefix, secret, limits: fixed at start */
	struct gen_table *gens;     /* the checks: a request holds one generation */
	struct runner *runner;
	const struct plugin_loader *loader; /* in-process plugins, for /metrics */
	struct executor_set *execs;         /* isolated plugins, for /metrics */
};

enum route { ROUTE_PING, ROUTE_HEALTH, ROUTE_REDIRECT, ROUTE_METRICS, ROUTE_OTHER, ROUTE_COUNT };

/* Which route the decoded path url is, for the (normalised) prefix and the
 * metrics path (NULL: off). Pure; the fuzz target drives it directly. */
enum route http_route(const char *url, const char *prefix, const char *metrics_path);

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
