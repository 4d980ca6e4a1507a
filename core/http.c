/* http.c - routes and responses of the health API (libmicrohttpd). */
#include "http.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "auth.h"
#include "format.h"
#include "log.h"

#define MAX_DAEMONS 64

/* route           label in /metrics */
static const char *const route_names[ROUTE_COUNT] = {
	[ROUTE_PING] = "ping",
	[ROUTE_HEALTH] = "health",
	[ROUTE_REDIRECT] = "redirect",
	[ROUTE_METRICS] = "metrics",
	[ROUTE_OTHER] = "other",
};

/* The status codes healthd answers with; the counters' second index. */
static const unsigned codes[] = {200, 204, 308, 400, 401, 404, 405, 500, 503};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* Canned responses, made once and shared by every connection. */
enum canned {
	CANNED_PONG,
	CANNED_UNAUTHORIZED,
	CANNED_NOT_FOUND,
	CANNED_NOT_ALLOWED,
	CANNED_OPTIONS,
	CANNED_TOO_MANY_NAMES,
	CANNED_NO_MEMORY,
	CANNED_COUNT
};

struct http {
	const struct config *cfg;
	const struct registry *reg;
	struct runner *runner;
	struct executor_set *execs; /* isolated plugins, for /metrics */
	const struct plugin_loader *loader; /* in-process ones */
	struct MHD_Daemon *daemons[MAX_DAEMONS];
	MHD_socket quiesced[MAX_DAEMONS]; /* listen sockets, closed after the stop */
	size_t ndaemons;
	size_t prefix_len;
	size_t secret_len;
	struct MHD_Response *canned[CANNED_COUNT];
	atomic_uint_fast64_t counters[ROUTE_COUNT][NCODES];
};

/* One request's state, from the URI callback to the completion callback. */
struct request {
	struct http *h;
	struct MHD_Connection *conn;
	bool seen;              /* the first access call only announces the request */
	char *redirect_query;   /* raw query string, kept only when the path is P */
	struct runner_job *job; /* checks started for GET P/ */
	uint32_t *ids;          /* the selected checks, sorted by name */
	size_t body_bytes;
	enum route route;
	bool verbose;           /* ?verbose=1: add details */
	bool nul_in_path;       /* the raw path holds %00 */
};

/* The query arguments healthd reads: the first of each counts. */
struct query {
	const char *checks, *auth, *verbose;
	size_t checks_len, auth_len, verbose_len;
	bool has_checks, has_auth, has_verbose;
};

static void
count(struct http *h, enum route route, unsigned code)
{
	if ((unsigned)route >= ROUTE_COUNT)
		return;
	for (size_t i = 0; i < NCODES; i++) {
		if (codes[i] == code) {
			atomic_fetch_add_explicit(&h->counters[route][i], 1, memory_order_relaxed);
			return;
		}
	}
}

static enum MHD_Result
reply(struct request *q, unsigned code, struct MHD_Response *resp)
{
	count(q->h, q->route, code);
	return MHD_queue_response(q->conn, code, resp);
}

/* Sends a body made for this request, and lets go of it. */
static enum MHD_Result
reply_owned(struct request *q, unsigned code, char *body, size_t len, const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	if (body == NULL)
		return reply(q, 500, q->h->canned[CANNED_NO_MEMORY]);
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return reply(q, 500, q->h->canned[CANNED_NO_MEMORY]);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	rc = reply(q, code, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result
query_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
          const char *value, size_t value_size)
{
	struct query *qa = cls;

	(void)kind;
	/* A key without '=' has a NULL value: present, and empty. */
	if (value == NULL) {
		value = "";
		value_size = 0;
	}
	if (key_size == 6 && memcmp(key, "checks", 6) == 0 && !qa->has_checks) {
		qa->has_checks = true;
		qa->checks = value;
		qa->checks_len = value_size;
	} else if (key_size == 4 && memcmp(key, "auth", 4) == 0 && !qa->has_auth) {
		qa->has_auth = true;
		qa->auth = value;
		qa->auth_len = value_size;
	} else if (key_size == 7 && memcmp(key, "verbose", 7) == 0 && !qa->has_verbose) {
		qa->has_verbose = true;
		qa->verbose = value;
		qa->verbose_len = value_size;
	}
	return MHD_YES;
}

static bool
authorized(const struct http *h, struct MHD_Connection *conn, const struct query *qa)
{
	const char *token;
	size_t len;

	bool ok = false;

	if (h->cfg->secret_mode != SECRET_SET)
		return true;
	/* either way in; the first ?auth= is the one that counts */
	if (qa->has_auth)
		ok = auth_equal(qa->auth, qa->auth_len, h->cfg->secret, h->secret_len);
	token = auth_bearer(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                MHD_HTTP_HEADER_AUTHORIZATION), &len);
	if (token != NULL)
		ok |= auth_equal(token, len, h->cfg->secret, h->secret_len);
	return ok;
}

static bool
truthy(const char *v, size_t len)
{
	return (len == 1 && v[0] == '1') || (len == 4 && strncasecmp(v, "true", 4) == 0) ||
	       (len == 3 && strncasecmp(v, "yes", 3) == 0) || (len == 2 && strncasecmp(v, "on", 2) == 0);
}

static bool
wants_health_json(struct MHD_Connection *conn)
{
	const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                 MHD_HTTP_HEADER_ACCEPT);

	return accept != NULL && strstr(accept, "application/health+json") != NULL;
}

static void
suspend_request(void *arg)
{
	MHD_suspend_connection(((struct request *)arg)->conn);
}

static void
resume_request(void *arg)
{
	MHD_resume_connection(((struct request *)arg)->conn);
}

/* GET P/ once its job is finished. */
static enum MHD_Result
reply_health(struct request *q)
{
	struct http *h = q->h;
	struct MHD_Connection *conn = q->conn;
	unsigned code = format_job_passed(q->job) ? 200 : 503;
	size_t len = 0;
	char *body;

	if (wants_health_json(conn)) {
		body = format_health_json(h->reg, q->ids, q->job, &len);
		return reply_owned(q, code, body, len, "application/health+json");
	}
	body = format_seed(h->reg, q->ids, q->job, q->verbose, &len);
	return reply_owned(q, code, body, len, "application/json");
}

static enum MHD_Result
serve_health(struct request *q)
{
	struct http *h = q->h;
	size_t count = registry_count(h->reg), n;
	struct query qa = {0};
	uint8_t *mark;
	bool truncated;

	if (q->job != NULL) /* resumed: every result is in */
		return reply_health(q);
	MHD_get_connection_values_n(q->conn, MHD_GET_ARGUMENT_KIND, query_arg, &qa);
	if (!authorized(h, q->conn, &qa))
		return reply(q, 401, h->canned[CANNED_UNAUTHORIZED]);
	q->verbose = qa.has_verbose && truthy(qa.verbose, qa.verbose_len);
	q->ids = malloc((count ? count : 1) * sizeof(*q->ids));
	mark = malloc(count ? count : 1);
	if (q->ids == NULL || mark == NULL) {
		free(mark);
		return reply(q, 500, h->canned[CANNED_NO_MEMORY]);
	}
	n = registry_select(h->reg, qa.has_checks, qa.checks, qa.checks_len,
	                    (size_t)h->cfg->limits.max_names, mark, q->ids, &truncated);
	free(mark);
	if (truncated)
		return reply(q, 400, h->canned[CANNED_TOO_MANY_NAMES]);
	q->job = runner_submit(h->runner, q->ids, n);
	if (q->job == NULL)
		return reply(q, 500, h->canned[CANNED_NO_MEMORY]);
	if (runner_job_arm(q->job, suspend_request, resume_request, q))
		return MHD_YES; /* suspended; the runner resumes us when the results are in */
	return reply_health(q);
}

static enum MHD_Result
serve_redirect(struct request *q)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;
	char *location;
	int n;

	n = asprintf(&location, "%s/%s%s", q->h->cfg->url_prefix, q->redirect_query ? "?" : "",
	             q->redirect_query ? q->redirect_query : "");
	if (n < 0)
		return reply(q, 500, q->h->canned[CANNED_NO_MEMORY]);
	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(location);
		return reply(q, 500, q->h->canned[CANNED_NO_MEMORY]);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	free(location);
	rc = reply(q, 308, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result serve_metrics(struct request *q);

enum route
http_route(const char *url, const char *prefix, const char *metrics_path)
{
	size_t plen = strlen(prefix);

	if (metrics_path != NULL && strcmp(url, metrics_path) == 0)
		return ROUTE_METRICS;
	if (strncmp(url, prefix, plen) != 0)
		return ROUTE_OTHER;
	url += plen;
	if (strcmp(url, "/ping") == 0)
		return ROUTE_PING;
	if (strcmp(url, "/") == 0)
		return ROUTE_HEALTH;
	if (url[0] == '\0' && plen > 0)
		return ROUTE_REDIRECT;
	return ROUTE_OTHER;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
               const char *version, const char *upload_data, size_t *upload_data_size,
               void **con_cls)
{
	struct http *h = cls;
	struct request *q = *con_cls;

	(void)version;
	(void)upload_data;
	if (q == NULL) /* the URI callback could not allocate */
		return MHD_NO;
	if (!q->seen) {
		/* Answering on the first call makes libmicrohttpd 0.9.75 close the
		 * connection (it cannot know the body was read): wait for the second. */
		q->seen = true;
		q->conn = conn;
		q->route = q->nul_in_path ? ROUTE_OTHER
		                           : http_route(url, h->cfg->url_prefix, h->cfg->metrics_path);
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		/* libmicrohttpd 0.9.75 drops a response queued while a body is still
		 * arriving, so read (and discard) the body first and answer after it;
		 * a body past the limit closes the connection instead. */
		q->body_bytes += *upload_data_size;
		*upload_data_size = 0;
		return q->body_bytes > (size_t)h->cfg->limits.max_body_bytes ? MHD_NO : MHD_YES;
	}
	if (q->route == ROUTE_OTHER)
		return reply(q, 404, h->canned[CANNED_NOT_FOUND]);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_OPTIONS) != 0)
		return reply(q, 405, h->canned[CANNED_NOT_ALLOWED]);
	if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
		return reply(q, 204, h->canned[CANNED_OPTIONS]);
	switch (q->route) {
	case ROUTE_PING:
		return reply(q, 200, h->canned[CANNED_PONG]);
	case ROUTE_REDIRECT:
		return serve_redirect(q);
	case ROUTE_HEALTH:
		return serve_health(q);
	case ROUTE_METRICS:
		return serve_metrics(q);
	default:
		return reply(q, 404, h->canned[CANNED_NOT_FOUND]);
	}
}

static enum MHD_Result
serve_metrics(struct request *q)
{
	struct http *h = q->h;
	struct format_counter rows[ROUTE_COUNT * NCODES];
	struct query qa = {0};
	size_t nrows = 0, len = 0;

	if (h->cfg->metrics_auth) {
		MHD_get_connection_values_n(q->conn, MHD_GET_ARGUMENT_KIND, query_arg, &qa);
		if (!authorized(h, q->conn, &qa))
			return reply(q, 401, h->canned[CANNED_UNAUTHORIZED]);
	}
	/* counted first, so this very request shows up in its own answer */
	count(h, q->route, 200);
	for (size_t r = 0; r < ROUTE_COUNT; r++) {
		for (size_t c = 0; c < NCODES; c++) {
			uint64_t v = atomic_load_explicit(&h->counters[r][c], memory_order_relaxed);
			if (v != 0)
				rows[nrows++] = (struct format_counter){route_names[r], codes[c], v};
		}
	}
	char *body = format_metrics(h->reg, h->runner, h->loader, h->execs, rows, nrows, &len);
	struct MHD_Response *resp;
	enum MHD_Result rc;

	if (body == NULL)
		return reply(q, 500, h->canned[CANNED_NO_MEMORY]);
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return reply(q, 500, h->canned[CANNED_NO_MEMORY]);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	rc = MHD_queue_response(q->conn, 200, resp);
	MHD_destroy_response(resp);
	return rc;
}

/*
 * Called with the raw request target before libmicrohttpd decodes it; what it
 * returns becomes the request's context. The raw query is kept only for the
 * 308 from P to P/, which must pass it on unchanged. Never logged: it may
 * carry the secret.
 */
static void *
uri_callback(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http *h = cls;
	struct request *q = calloc(1, sizeof(*q));
	const char *qmark;

	if (q == NULL)
		return NULL;
	q->h = h;
	q->conn = conn;
	qmark = strchr(uri, '?');
	/* A decoded %00 would cut the path short ("/health/ping%00x" would read
	 * as "/health/ping"): such a path names nothing. */
	for (const char *p = uri; *p != '\0' && p != qmark; p++)
		if (p[0] == '%' && p[1] == '0' && p[2] == '0')
			q->nul_in_path = true;
	if (qmark != NULL && h->prefix_len > 0 && (size_t)(qmark - uri) == h->prefix_len &&
	    memcmp(uri, h->cfg->url_prefix, h->prefix_len) == 0) {
		q->redirect_query = strdup(qmark + 1); /* NULL on failure: redirect without it */
	}
	return q;
}

static void
completed_callback(void *cls, struct MHD_Connection *conn, void **con_cls,
                   enum MHD_RequestTerminationCode toe)
{
	struct request *q = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (q == NULL)
		return;
	runner_job_free(q->job);
	free(q->ids);
	free(q->redirect_query);
	free(q);
	*con_cls = NULL;
}

/* libmicrohttpd's own messages can quote a request: debug only. */
static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (log_enabled(LOG_DEBUG))
		log_vmsg(LOG_DEBUG, "libmicrohttpd: ", fmt, ap);
}

static struct MHD_Response *
canned(const char *body, const char *type, const char *allow)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return NULL;
	if (type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	return resp;
}

static int
make_canned(struct http *h)
{
	/* response               body                                   type          Allow */
	h->canned[CANNED_PONG] = canned("pong", "text/plain", NULL);
	h->canned[CANNED_UNAUTHORIZED] = canned("Unauthorized\n", "text/plain", NULL);
	h->canned[CANNED_NOT_FOUND] = canned("Not Found\n", "text/plain", NULL);
	h->canned[CANNED_NOT_ALLOWED] = canned("Method Not Allowed\n", "text/plain", "GET, HEAD");
	h->canned[CANNED_OPTIONS] = canned("", NULL, "GET, HEAD, OPTIONS");
	h->canned[CANNED_TOO_MANY_NAMES] = canned("Too many names in checks=\n", "text/plain", NULL);
	h->canned[CANNED_NO_MEMORY] = canned("Out of memory\n", "text/plain", NULL);
	for (size_t i = 0; i < CANNED_COUNT; i++)
		if (h->canned[i] == NULL)
			return -1;
	if (h->cfg->secret_mode == SECRET_SET)
		MHD_add_response_header(h->canned[CANNED_UNAUTHORIZED],
		                        MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"healthd\"");
	return 0;
}

static unsigned
http_threads(const struct config *cfg)
{
	long n = cfg->http_threads > 0 ? cfg->http_threads : sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
}

static struct MHD_Daemon *
start_daemon(struct http *h, const char *addr, char *err, size_t errlen)
{
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	const struct config *cfg = h->cfg;
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	struct MHD_Daemon *d;
	char host[INET6_ADDRSTRLEN];
	socklen_t sslen;
	uint16_t port;

	if (config_parse_addr(addr, &ss, &sslen, err, errlen) == -1)
		return NULL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                      : ((struct sockaddr_in *)&ss)->sin_port);
	d = MHD_start_daemon(flags, port, NULL, NULL, access_handler, h,
	                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	                     MHD_OPTION_THREAD_POOL_SIZE, http_threads(cfg),
	                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->limits.max_connections,
	                     MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	                     (unsigned)cfg->limits.max_connections_per_ip,
	                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->limits.idle_timeout_s,
	                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->limits.max_request_bytes,
	                     MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
	                     /* 1: refuse what RFC 7230 forbids, e.g. HTTP/1.1 without Host */
	                     MHD_OPTION_STRICT_FOR_CLIENT, 1,
	                     MHD_OPTION_URI_LOG_CALLBACK, uri_callback, h,
	                     MHD_OPTION_NOTIFY_COMPLETED, completed_callback, h,
	                     MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h,
	                     MHD_OPTION_END);
	if (d == NULL) {
		snprintf(err, errlen, "listen %s: cannot listen there (address in use, or not "
		         "an address of this machine?)", addr);
		return NULL;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (info != NULL && info->port != 0)
		port = info->port;
	if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
	log_info("listening on http://%s%s%s:%u%s/", ss.ss_family == AF_INET6 ? "[" : "", host,
	         ss.ss_family == AF_INET6 ? "]" : "", port, cfg->url_prefix);
	return d;
}

struct http *
http_start(const struct http_env *env, char *err, size_t errlen)
{
	const struct config *cfg = env->cfg;
	struct http *h;

	if (cfg->nlisten > MAX_DAEMONS) {
		snprintf(err, errlen, "listen: at most %d addresses", MAX_DAEMONS);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->cfg = cfg;
	h->reg = env->reg;
	h->runner = env->runner;
	h->loader = env->loader;
	h->execs = env->execs;
	for (size_t i = 0; i < MAX_DAEMONS; i++)
		h->quiesced[i] = MHD_INVALID_SOCKET;
	h->prefix_len = strlen(cfg->url_prefix);
	h->secret_len = cfg->secret ? strlen(cfg->secret) : 0;
	if (make_canned(h) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->nlisten; i++) {
		h->daemons[i] = start_daemon(h, cfg->listen[i], err, errlen);
		if (h->daemons[i] == NULL)
			goto fail;
		h->ndaemons++;
	}
	return h;
fail:
	http_stop(h);
	return NULL;
}

void
http_quiesce(struct http *h)
{
	/* Not closed here: a pool thread may still be using it (microhttpd.h). */
	for (size_t i = 0; i < h->ndaemons; i++)
		h->quiesced[i] = MHD_quiesce_daemon(h->daemons[i]);
}

void
http_stop(struct http *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->ndaemons; i++) {
		MHD_stop_daemon(h->daemons[i]);
		if (h->quiesced[i] != MHD_INVALID_SOCKET)
			close(h->quiesced[i]);
	}
	for (size_t i = 0; i < CANNED_COUNT; i++)
		if (h->canned[i] != NULL)
			MHD_destroy_response(h->canned[i]);
	free(h);
}
