/* http.c - routes and responses of the health API (libmicrohttpd). */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <linux/sockios.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "accept.h"
#include "auth.h"
#include "clock.h"
#include "format.h"
#include "generation.h"
#include "log.h"
#include "metrics.h"

#define MAX_LISTEN 64
#define MAX_WORKERS 16
#define ACCEPT_BATCH 32       /* accepts per wake-up, so one thread cannot starve its connections */
#define SWEEP_MS 100          /* how often a worker checks its connections' phase deadlines */
#define STALLED_MS 1000       /* at the limit, a header or body this old may be reclaimed */
#define ACCEPT_PAUSE_MS 100   /* out of descriptors: stop accepting for this long */
#define PARK_MAX 64           /* per worker: new connections waiting for a slot at the limit */
#define PARK_MS 500           /* ...for at most this long, then closed */
#define PARK_RETRY_MS 5       /* ...trying again this often */
#define TRIM_DROP 256         /* connections gone since the peak that make a burst's end */
#define TRIM_QUIET_MS 10000   /* ...once the count has stayed that low this long */

/* The status codes healthd answers with; the counters' second index. */
static const unsigned codes[] = {200, 204, 308, 400, 401, 404, 405, 413, 500, 503};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* Canned responses, made once and shared by every connection. */
enum canned {
	CANNED_PONG,
	CANNED_UNAUTHORIZED,
	CANNED_NOT_FOUND,
	CANNED_NOT_ALLOWED,
	CANNED_TOO_LARGE,
	CANNED_OPTIONS,
	CANNED_TOO_MANY_NAMES,
	CANNED_CHECKS_ON_GROUP,
	CANNED_NO_MEMORY,
	CANNED_COUNT
};

/*
 * Where a connection is; each phase but RUN has a total-time limit (see
 * phase_limit_us), counted from `since`, that trickling bytes never extends.
 */
enum phase {
	PHASE_WAIT,   /* no request line yet: new, or idle between keep-alive requests */
	PHASE_HEADER, /* request line read, header not complete */
	PHASE_BODY,   /* reading a body we accepted */
	PHASE_RUN,    /* suspended while its checks run (the runner bounds it) */
	PHASE_SEND,   /* response queued, not all taken by the client */
	PHASE_DRAIN,  /* answered, but the kernel still holds some of it for the client */
};

/*
 * One open connection, from libmicrohttpd's STARTED to its CLOSED notice.
 * Owned by its worker's thread, which alone changes the links (under
 * w->lock, so that a reclaiming worker can walk the list) and the phase
 * (atomics, read by reclaimers without the lock).
 */
struct hconn {
	struct hconn *prev, *next;
	struct worker *w;
	int fd;
	struct sockaddr_storage addr;   /* the client, for max_connections_per_ip */
	atomic_int phase;
	atomic_int_fast64_t since;      /* now_us() when the phase's time began */
	atomic_bool closing;            /* shut down: by the sweeper or a reclaim */
	atomic_bool served;             /* has had an answer: a keep-alive connection */
};

/* A new connection waiting for a slot at max_connections (a bounded backlog). */
struct parked {
	int fd;
	socklen_t addrlen;
	struct sockaddr_storage addr;
	int64_t until;                  /* clock_ms(): closed if still waiting then */
};

/*
 * One HTTP thread: its own libmicrohttpd daemon (external epoll, no listen
 * socket) and the event loop around it, which accepts from its own listen
 * sockets and hands each connection to its daemon with MHD_add_connection.
 */
struct worker {
	struct http *h;
	struct MHD_Daemon *d;
	pthread_t thread;
	bool running;
	int epfd;
	int wake_fd;                    /* eventfd: a request resumed by a runner thread */
	pthread_mutex_t lock;           /* the list's links, against reclaimers */
	struct hconn *head;
	int64_t next_sweep;
	int64_t accept_paused_until;    /* 0: accepting */
	struct parked parked[PARK_MAX];
	size_t nparked;
};

struct http {
	const struct config *cfg;
	struct gen_table *gens;
	struct runner *runner;
	struct executor_set *execs; /* isolated plugins, for /metrics */
	const struct plugin_loader *loader; /* in-process ones */
	struct worker workers[MAX_WORKERS];
	size_t nworkers;
	/* per address, one socket per worker (SO_REUSEPORT): the kernel spreads
	 * new connections evenly over the workers */
	int listen_fds[MAX_LISTEN][MAX_WORKERS];
	size_t nlisten;
	int stop_fd;                    /* eventfd: written once, wakes every worker to exit */
	atomic_bool quiesced;
	atomic_int nconns;              /* open connections, all workers */
	atomic_int conn_peak;           /* most open at once since the last trim */
	int64_t trim_at;                /* worker 0 only: when to trim if it stays quiet; 0: not due */
	pthread_mutex_t admit_lock;     /* per-address check + add, when that limit is on */
	int keep_alive_s;
	size_t prefix_len;
	size_t secret_len;
	/* [k][1] carries Keep-Alive: timeout=N, for a connection that stays open */
	struct MHD_Response *canned[CANNED_COUNT][2];
	atomic_uint_fast64_t counters[ROUTE_COUNT][NCODES];
	atomic_uint_fast64_t refused, reclaimed, timed_out;
};

/* The query arguments healthd reads: the first of each counts. */
struct query {
	const char *checks, *auth, *verbose, *exclude;
	size_t checks_len, auth_len, verbose_len, exclude_len;
	bool has_checks, has_auth, has_verbose, has_exclude;
};

/* One request's state, from the URI callback to the completion callback. */
struct request {
	struct http *h;
	struct MHD_Connection *conn;
	bool seen;              /* the first access call only announces the request */
	char *redirect_query;   /* raw query string, kept only when the path is P */
	const struct generation *gen; /* held from the first use to the end */
	struct runner_job *job; /* checks started for GET P/ */
	uint32_t *ids;          /* the selected checks, sorted by name */
	const struct config_group *group; /* ROUTE_GROUP: which */
	struct query qa;        /* parsed for routes that need auth (they read it) */
	bool authorized;        /* auth passed once: a resumed request is not asked again */
	struct hconn *hc;       /* the connection's tracking, NULL if it has none */
	struct worker *w;       /* the thread whose daemon has the connection */
	size_t body_bytes;
	enum route route;
	bool verbose;           /* ?verbose=1: add details */
	bool nul_in_path;       /* the raw path holds %00 */
	bool keep_alive;        /* the connection stays open after this answer */
	bool large;             /* a body made for it: may outlast the send buffer */
};

static enum MHD_Result serve_ping(struct request *q);
static enum MHD_Result serve_health(struct request *q);
static enum MHD_Result serve_redirect(struct request *q);
static enum MHD_Result serve_metrics(struct request *q);
static enum MHD_Result serve_not_found(struct request *q);

/* Who may use a route. */
enum route_auth {
	AUTH_NONE,    /* anyone */
	AUTH_SECRET,  /* the URL secret, when one is set */
	AUTH_METRICS, /* the URL secret, when one is set and metrics_auth is on */
};

/* How a route's path is matched against the decoded request path. */
enum route_match {
	MATCH_PATH,    /* exactly `path` (after the prefix if prefixed; "" only
	                * with a non-empty prefix) */
	MATCH_METRICS, /* exactly the configured metrics_path, when it is on */
	MATCH_GROUP,   /* `path` then the name of a configured group */
	MATCH_ANY,     /* anything: the last row */
};

/*
 * The routes, matched in this order (the enum's); a new route is one row.
 * Every route answers GET and HEAD (and OPTIONS with 204); label names the
 * route in healthd_http_requests_total, all groups under one label so that
 * the series stay the same whatever the groups are called.
 */
static const struct route_row {
	enum route_match match;
	const char *path;
	bool prefixed;
	enum route_auth auth;
	enum MHD_Result (*serve)(struct request *);
	const char *label;
} routes[ROUTE_COUNT] = {
	/* route          match          path     prefixed  auth          handler          label */
	[ROUTE_METRICS]  = {MATCH_METRICS, NULL,    false,    AUTH_METRICS, serve_metrics,   "metrics"},
	[ROUTE_PING]     = {MATCH_PATH,    "/ping", true,     AUTH_NONE,    serve_ping,      "ping"},
	[ROUTE_HEALTH]   = {MATCH_PATH,    "/",     true,     AUTH_SECRET,  serve_health,    "health"},
	[ROUTE_REDIRECT] = {MATCH_PATH,    "",      true,     AUTH_NONE,    serve_redirect,  "redirect"},
	[ROUTE_GROUP]    = {MATCH_GROUP,   "/",     true,     AUTH_SECRET,  serve_health,    "group"},
	[ROUTE_OTHER]    = {MATCH_ANY,     NULL,    false,    AUTH_NONE,    serve_not_found, "other"},
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

/* Microseconds: fine enough to order connections answered in the same ms. */
static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
set_phase(struct hconn *hc, enum phase phase)
{
	if (hc == NULL)
		return;
	atomic_store_explicit(&hc->since, now_us(), memory_order_relaxed);
	atomic_store_explicit(&hc->phase, phase, memory_order_relaxed);
}

static void
add_keep_alive(const struct request *q, struct MHD_Response *resp)
{
	char v[32];

	if (!q->keep_alive)
		return;
	snprintf(v, sizeof(v), "timeout=%d", q->h->keep_alive_s);
	MHD_add_response_header(resp, "Keep-Alive", v);
}

static enum MHD_Result
queue(struct request *q, unsigned code, struct MHD_Response *resp)
{
	set_phase(q->hc, PHASE_SEND);
	return MHD_queue_response(q->conn, code, resp);
}

static enum MHD_Result
reply(struct request *q, unsigned code, struct MHD_Response *resp)
{
	count(q->h, q->route, code);
	return queue(q, code, resp);
}

/* A canned response, in its keep-alive or closing variant. */
static enum MHD_Result
reply_canned(struct request *q, unsigned code, enum canned k)
{
	return reply(q, code, q->h->canned[k][q->keep_alive]);
}

/* Sends a body made for this request, and lets go of it. vary: the request
 * header the body was chosen by, or NULL. */
static enum MHD_Result
reply_owned(struct request *q, unsigned code, char *body, size_t len, const char *type,
            const char *vary)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	if (body == NULL)
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (vary != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, vary);
	add_keep_alive(q, resp);
	q->large = true;
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
	} else if (key_size == 7 && memcmp(key, "exclude", 7) == 0 && !qa->has_exclude) {
		qa->has_exclude = true;
		qa->exclude = value;
		qa->exclude_len = value_size;
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

/*
 * health+json when the client names it (a wildcard keeps the seed's body)
 * with a weight above 0 and no lower than what application/json gets. A
 * client that accepts neither still gets application/json: a 406 would only
 * fail a probe.
 */
static bool
wants_health_json(struct MHD_Connection *conn)
{
	const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                 MHD_HTTP_HEADER_ACCEPT);
	enum accept_match m;
	int hj = accept_weight(accept, "application", "health+json", &m);

	return m == ACCEPT_EXACT && hj > 0 && hj >= accept_weight(accept, "application", "json", NULL);
}

static void
suspend_request(void *arg)
{
	MHD_suspend_connection(((struct request *)arg)->conn);
}

/* Wakes an HTTP thread from its epoll_wait. */
static void
wake(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->wake_fd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("http: cannot wake an HTTP thread: %s", strerror(errno));
}

/*
 * From a runner thread. Without its own thread libmicrohttpd has no wake-up
 * channel (it drops MHD_USE_ITC), so the worker is woken here; it runs the
 * daemon, which picks the resumed connection up.
 */
static void
resume_request(void *arg)
{
	struct request *q = arg;
	struct worker *w = q->w; /* q may be gone once resumed */

	MHD_resume_connection(q->conn);
	wake(w);
}

/* GET P/ once its job is finished. */
static enum MHD_Result
reply_health(struct request *q)
{
	struct MHD_Connection *conn = q->conn;
	unsigned code = format_job_passed(q->job) ? 200 : 503;
	size_t len = 0;
	char *body;

	/* either body may come from the same URL: caches must key on Accept */
	if (wants_health_json(conn)) {
		body = format_health_json(q->gen->reg, q->ids, q->job, &len);
		return reply_owned(q, code, body, len, "application/health+json",
		                   MHD_HTTP_HEADER_ACCEPT);
	}
	body = format_seed(q->gen->reg, q->ids, q->job, q->verbose, &len);
	return reply_owned(q, code, body, len, "application/json", MHD_HTTP_HEADER_ACCEPT);
}

/*
 * GET P/ and P/<group>: the selection (?checks= or the group's checks), less
 * ?exclude=, run within the group's timeout_ms if it has one. ?checks= on a
 * group is refused rather than ignored: a probe that sends it would check
 * something else than its URL says.
 */
static enum MHD_Result
serve_health(struct request *q)
{
	struct http *h = q->h;
	const struct query *qa = &q->qa;
	const struct config_group *g = q->group;
	const struct registry *reg;
	size_t count, n, max = (size_t)h->cfg->limits.max_names;
	uint8_t *mark;
	bool truncated, excess = false;

	if (q->job != NULL) /* resumed: every result is in */
		return reply_health(q);
	if (g != NULL && qa->has_checks)
		return reply_canned(q, 400, CANNED_CHECKS_ON_GROUP);
	if (q->gen == NULL) /* a group's request holds it since its routing */
		q->gen = gen_acquire(h->gens);
	reg = q->gen->reg;
	count = registry_count(reg);
	q->verbose = qa->has_verbose && truthy(qa->verbose, qa->verbose_len);
	q->ids = malloc((count ? count : 1) * sizeof(*q->ids));
	mark = malloc(count ? count : 1);
	if (q->ids == NULL || mark == NULL) {
		free(mark);
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	}
	if (g != NULL) /* all registered: http_check_groups saw to it at (re)load */
		n = registry_select(reg, true, g->selection, strlen(g->selection), 0, mark,
		                    q->ids, &truncated);
	else
		n = registry_select(reg, qa->has_checks, qa->checks, qa->checks_len, max, mark,
		                    q->ids, &excess);
	if (qa->has_exclude && !excess) {
		n = registry_exclude(reg, qa->exclude, qa->exclude_len, max, mark, q->ids, n,
		                     &truncated);
		excess = truncated;
	}
	free(mark);
	if (excess)
		return reply_canned(q, 400, CANNED_TOO_MANY_NAMES);
	q->job = runner_submit_in(h->runner, reg, q->ids, n, g != NULL ? g->timeout_ms : 0);
	if (q->job == NULL)
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	set_phase(q->hc, PHASE_RUN);
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
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(location);
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	add_keep_alive(q, resp);
	free(location);
	rc = reply(q, 308, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result
serve_ping(struct request *q)
{
	return reply_canned(q, 200, CANNED_PONG);
}

static enum MHD_Result
serve_not_found(struct request *q)
{
	return reply_canned(q, 404, CANNED_NOT_FOUND);
}

/* Whether url is row's path; for a group, *group is the one it names. */
static bool
route_matches(const struct route_row *row, const char *url, const struct config *cfg,
              const struct config_group **group)
{
	size_t plen = strlen(cfg->url_prefix), len;

	if (row->match == MATCH_ANY)
		return true;
	if (row->match == MATCH_METRICS)
		return cfg->metrics_path != NULL && strcmp(url, cfg->metrics_path) == 0;
	if (row->prefixed) {
		if (strncmp(url, cfg->url_prefix, plen) != 0)
			return false;
		url += plen;
	}
	len = strlen(row->path);
	if (row->match == MATCH_GROUP)
		return strncmp(url, row->path, len) == 0 &&
		       (*group = config_group(cfg, url + len, strlen(url + len))) != NULL;
	return strcmp(url, row->path) == 0 && (len > 0 || !row->prefixed || plen > 0);
}

enum route
http_route(const char *url, const struct config *cfg, const struct config_group **group)
{
	enum route r = 0;

	*group = NULL;
	while (r < ROUTE_OTHER && !route_matches(&routes[r], url, cfg, group))
		r++;
	return r;
}

int
http_check_groups(const struct config *cfg, const struct registry *reg, char *err,
                  size_t errlen)
{
	const char *file = cfg->path != NULL ? cfg->path : "(configuration)";
	const struct config_group *named;
	char path[512];

	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct config_group *g = &cfg->groups[i];
		enum route r;

		for (size_t k = 0; k < g->nchecks; k++) {
			if (registry_find(reg, g->checks[k], strlen(g->checks[k])) == -1) {
				snprintf(err, errlen, "%s: groups.%s: unknown check \"%s\" (neither "
				         "declared in checks nor registered by a plugin)", file, g->name,
				         g->checks[k]);
				return -1;
			}
		}
		/* P/<group> must reach this group, not a route matched before it */
		snprintf(path, sizeof(path), "%s/%s", cfg->url_prefix, g->name);
		r = http_route(path, cfg, &named);
		if (r != ROUTE_GROUP || named != g) {
			snprintf(err, errlen, "%s: groups.%s: %s is %s", file, g->name, path,
			         r == ROUTE_METRICS ? "the metrics_path: rename the group or move "
			                              "metrics_path" : "another route");
			return -1;
		}
	}
	return 0;
}

static bool
method_allowed(const char *method)
{
	return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0 ||
	       strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0;
}

/* Whether the connection stays open after the answer (libmicrohttpd's own
 * rule for HTTP/1.1; an HTTP/1.0 client is not told a timeout). */
static bool
wants_keep_alive(struct MHD_Connection *conn, const char *version)
{
	const char *c = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                            MHD_HTTP_HEADER_CONNECTION);

	return strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && (c == NULL || strcasestr(c, "close") == NULL);
}

/* Whether a body follows the header; *len is its size, UINT64_MAX when
 * chunked (libmicrohttpd has already refused a malformed length). */
static bool
has_body(struct MHD_Connection *conn, uint64_t *len)
{
	const char *v;

	*len = UINT64_MAX;
	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
		return true;
	v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (v == NULL)
		return false;
	*len = strtoull(v, NULL, 10);
	return *len > 0;
}

/*
 * The header is complete. A body that no answer needs (404, 405, or one
 * over max_body_bytes: 413) is not read: answering now makes libmicrohttpd
 * skip it and close the connection after the answer. Returns 0 when the
 * request goes on (its body, if any, is read and dropped).
 */
static unsigned
early_answer(const struct request *q, const char *method, enum canned *k)
{
	uint64_t len;

	if (!has_body(q->conn, &len))
		return 0;
	if (q->route == ROUTE_OTHER)
		return *k = CANNED_NOT_FOUND, 404;
	if (!method_allowed(method))
		return *k = CANNED_NOT_ALLOWED, 405;
	if (len != UINT64_MAX && len > (uint64_t)q->h->cfg->limits.max_body_bytes)
		return *k = CANNED_TOO_LARGE, 413;
	return 0;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
               const char *version, const char *upload_data, size_t *upload_data_size,
               void **con_cls)
{
	struct http *h = cls;
	struct request *q = *con_cls;
	const struct route_row *row;
	enum canned k;
	unsigned code;

	(void)upload_data;
	if (q == NULL) /* the URI callback could not allocate */
		return MHD_NO;
	if (!q->seen) {
		/* Answering on the first call makes libmicrohttpd 0.9.75 close the
		 * connection (it cannot know the body was read): only for a body we
		 * refuse; otherwise wait for the second call. */
		q->seen = true;
		q->conn = conn;
		q->route = q->nul_in_path ? ROUTE_OTHER : http_route(url, h->cfg, &q->group);
		if (q->route == ROUTE_GROUP || (q->route == ROUTE_OTHER && !q->nul_in_path)) {
			/* groups come with the checks: a reload may add, change or
			 * remove them, so route with the generation the request holds */
			q->gen = gen_acquire(h->gens);
			q->route = http_route(url, q->gen->cfg, &q->group);
		}
		q->keep_alive = wants_keep_alive(conn, version);
		code = early_answer(q, method, &k);
		if (code != 0) {
			q->keep_alive = false;
			return reply_canned(q, code, k);
		}
		set_phase(q->hc, PHASE_BODY); /* ends at the answer: a body is bounded too */
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		/* libmicrohttpd 0.9.75 drops a response queued while a body is still
		 * arriving, so read (and discard) the body first and answer after it;
		 * a chunked body past the limit closes the connection instead. */
		q->body_bytes += *upload_data_size;
		*upload_data_size = 0;
		return q->body_bytes > (size_t)h->cfg->limits.max_body_bytes ? MHD_NO : MHD_YES;
	}
	if (q->route == ROUTE_OTHER)
		return reply_canned(q, 404, CANNED_NOT_FOUND);
	if (!method_allowed(method))
		return reply_canned(q, 405, CANNED_NOT_ALLOWED);
	if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
		return reply_canned(q, 204, CANNED_OPTIONS);
	row = &routes[q->route];
	if (row->auth != AUTH_NONE && !q->authorized) {
		MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, query_arg, &q->qa);
		if ((row->auth == AUTH_SECRET || h->cfg->metrics_auth) &&
		    !authorized(h, conn, &q->qa))
			return reply_canned(q, 401, CANNED_UNAUTHORIZED);
		q->authorized = true;
	}
	return row->serve(q);
}

static enum MHD_Result
serve_metrics(struct request *q)
{
	struct http *h = q->h;
	struct metrics_counter rows[ROUTE_COUNT * NCODES];
	size_t nrows = 0, len = 0;

	/* counted first, so this very request shows up in its own answer */
	count(h, q->route, 200);
	for (size_t r = 0; r < ROUTE_COUNT; r++) {
		for (size_t c = 0; c < NCODES; c++) {
			uint64_t v = atomic_load_explicit(&h->counters[r][c], memory_order_relaxed);
			if (v != 0)
				rows[nrows++] = (struct metrics_counter){routes[r].label, codes[c], v};
		}
	}
	int open = atomic_load_explicit(&h->nconns, memory_order_relaxed);
	struct metrics_http counts = {
		.counters = rows,
		.ncounters = nrows,
		.open = open > 0 ? (unsigned)open : 0,
		.max = h->cfg->limits.max_connections,
		.refused = atomic_load_explicit(&h->refused, memory_order_relaxed),
		.reclaimed = atomic_load_explicit(&h->reclaimed, memory_order_relaxed),
		.timed_out = atomic_load_explicit(&h->timed_out, memory_order_relaxed),
	};
	q->gen = gen_acquire(h->gens);
	char *body = metrics_render(q->gen->reg, h->runner, h->loader, h->execs, &counts, &len);
	struct MHD_Response *resp;
	enum MHD_Result rc;

	if (body == NULL)
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	add_keep_alive(q, resp);
	q->large = true;
	rc = queue(q, 200, resp);
	MHD_destroy_response(resp);
	return rc;
}

static struct worker *
worker_of(struct http *h, struct MHD_Daemon *d)
{
	for (size_t i = 0; i < h->nworkers; i++)
		if (h->workers[i].d == d)
			return &h->workers[i];
	return &h->workers[0]; /* not reached: every daemon is a worker's */
}

static struct hconn *
conn_tracking(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
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
	q->hc = conn_tracking(conn);
	q->w = worker_of(h, MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON)->daemon);
	/* the header's time keeps running from the connection's start or its
	 * previous answer: a request line does not restart it */
	if (q->hc != NULL) {
		if (atomic_load_explicit(&q->hc->phase, memory_order_relaxed) == PHASE_DRAIN)
			set_phase(q->hc, PHASE_HEADER); /* the previous answer ends about now */
		else
			atomic_store_explicit(&q->hc->phase, PHASE_HEADER, memory_order_relaxed);
	}
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
	(void)toe;
	struct hconn *hc = conn_tracking(conn);
	int unsent = 0;

	if (hc != NULL) {
		atomic_store_explicit(&hc->served, true, memory_order_relaxed);
		/* a large answer may sit in the kernel's send buffer: its send time
		 * runs on until the client has taken it (the sweeper looks) */
		if (q != NULL && q->large && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK &&
		    ioctl(hc->fd, SIOCOUTQ, &unsent) == 0 && unsent > 0)
			atomic_store_explicit(&hc->phase, PHASE_DRAIN, memory_order_relaxed);
		else if (q != NULL && q->large) /* idle: the next header's time starts now */
			set_phase(hc, PHASE_WAIT);
		else /* a canned answer went out whole when queued (libmicrohttpd may
		      * call this later): idle since then, which orders the reclaim */
			atomic_store_explicit(&hc->phase, PHASE_WAIT, memory_order_relaxed);
	}
	if (q == NULL)
		return;
	runner_job_free(q->job);
	if (q->gen != NULL)
		gen_release(q->h->gens, q->gen);
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
canned(const char *body, const char *type, const char *allow, int keep_alive_s)
{
	struct MHD_Response *resp;
	char ka[32];

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return NULL;
	if (type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (keep_alive_s > 0) {
		snprintf(ka, sizeof(ka), "timeout=%d", keep_alive_s);
		MHD_add_response_header(resp, "Keep-Alive", ka);
	}
	return resp;
}

static int
make_canned(struct http *h)
{
	static const struct {
		const char *body, *type, *allow;
	} table[CANNED_COUNT] = {
		/* response                body                           type          Allow */
		[CANNED_PONG]           = {"pong",                        "text/plain", NULL},
		[CANNED_UNAUTHORIZED]   = {"Unauthorized\n",              "text/plain", NULL},
		[CANNED_NOT_FOUND]      = {"Not Found\n",                 "text/plain", NULL},
		[CANNED_NOT_ALLOWED]    = {"Method Not Allowed\n",        "text/plain", "GET, HEAD"},
		[CANNED_TOO_LARGE]      = {"Content Too Large\n",         "text/plain", NULL},
		[CANNED_OPTIONS]        = {"",                            NULL,         "GET, HEAD, OPTIONS"},
		[CANNED_TOO_MANY_NAMES] = {"Too many names in checks= or exclude=\n", "text/plain", NULL},
		[CANNED_CHECKS_ON_GROUP] = {"checks= does not apply to a group (exclude= does)\n", "text/plain", NULL},
		[CANNED_NO_MEMORY]      = {"Out of memory\n",             "text/plain", NULL},
	};

	for (size_t i = 0; i < CANNED_COUNT; i++) {
		for (int ka = 0; ka < 2; ka++) {
			h->canned[i][ka] = canned(table[i].body, table[i].type, table[i].allow,
			                          ka ? h->keep_alive_s : 0);
			if (h->canned[i][ka] == NULL)
				return -1;
			if (i == CANNED_UNAUTHORIZED && h->cfg->secret_mode == SECRET_SET)
				MHD_add_response_header(h->canned[i][ka], MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				                        "Bearer realm=\"healthd\"");
		}
	}
	return 0;
}

static unsigned
http_threads(const struct config *cfg)
{
	long n = cfg->http_threads > 0 ? cfg->http_threads : sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

/* ---- connections: admission, reclaim, total-time limits ------------------ */

/* The total time a phase may take, in µs; 0: no limit. */
static int64_t
phase_limit_us(const struct config_limits *l, enum phase phase)
{
	switch (phase) {
	case PHASE_WAIT:
	case PHASE_HEADER:
		return (int64_t)l->header_timeout_s * 1000000;
	case PHASE_BODY:
		return (int64_t)l->body_timeout_s * 1000000;
	case PHASE_SEND:
	case PHASE_DRAIN:
		return (int64_t)l->send_timeout_s * 1000000;
	case PHASE_RUN:
	default:
		return 0;
	}
}

/*
 * Ends a connection from any thread: shutdown(2) wakes its worker, where
 * libmicrohttpd sees the end and closes it (the descriptor stays valid until
 * then: its CLOSED notice needs the worker's lock, which the caller holds or,
 * for the owner itself, is not needed). `abort`: the close resets the
 * connection, dropping what the kernel still holds for a slow reader.
 * Returns false if it was ending already.
 */
static bool
end_connection(struct hconn *hc, bool abort)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (atomic_exchange(&hc->closing, true))
		return false;
	if (abort)
		setsockopt(hc->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	shutdown(hc->fd, SHUT_RDWR);
	return true;
}

/* Closes this worker's connections that are over their phase's total time. */
static void
sweep(struct worker *w)
{
	int64_t now = now_us();

	const struct config_limits *l = &w->h->cfg->limits;

	for (struct hconn *hc = w->head; hc != NULL; hc = hc->next) {
		enum phase ph = atomic_load_explicit(&hc->phase, memory_order_relaxed);
		int64_t limit = phase_limit_us(l, ph);
		int64_t since = atomic_load_explicit(&hc->since, memory_order_relaxed);
		int unsent = 0;

		if (ph == PHASE_DRAIN && (ioctl(hc->fd, SIOCOUTQ, &unsent) == -1 || unsent == 0)) {
			set_phase(hc, PHASE_WAIT); /* taken: idle from now on */
			continue;
		}
		if (limit > 0 && now - since >= limit && end_connection(hc, true)) {
			atomic_fetch_add_explicit(&w->h->timed_out, 1, memory_order_relaxed);
			log_debug("http: closed a connection over its %s time limit",
			          ph == PHASE_SEND ? "send" : ph == PHASE_BODY ? "body" : "header");
		}
	}
}

/*
 * At the limit: ends the connection that is best given up, as nginx drains
 * its reusable connections. First an idle keep-alive one (answered, no
 * request line since), least recently active first; failing that, the
 * oldest that has been opened without a request line, or in its header or
 * body, for STALLED_MS already. A connection younger than that (a fresh
 * probe), a request being answered and one running its checks are never
 * taken. Returns whether one was ended (its slot comes free as soon as its
 * worker closes it).
 */
static bool
reclaim(struct http *h)
{
	int64_t now = now_us();
	struct hconn *best = NULL;
	int best_rank = 2;
	int64_t best_since = 0;
	bool ok = false;

	/* every list held at once, always in the same order */
	for (size_t i = 0; i < h->nworkers; i++)
		pthread_mutex_lock(&h->workers[i].lock);
	for (size_t i = 0; i < h->nworkers; i++) {
		for (struct hconn *hc = h->workers[i].head; hc != NULL; hc = hc->next) {
			enum phase ph = atomic_load_explicit(&hc->phase, memory_order_relaxed);
			int64_t since = atomic_load_explicit(&hc->since, memory_order_relaxed);
			int rank;

			if (atomic_load_explicit(&hc->closing, memory_order_relaxed))
				continue;
			if (ph == PHASE_WAIT && atomic_load_explicit(&hc->served, memory_order_relaxed))
				rank = 0;
			else if ((ph == PHASE_WAIT || ph == PHASE_HEADER || ph == PHASE_BODY) &&
			         now - since >= (int64_t)STALLED_MS * 1000)
				rank = 1;
			else
				continue;
			if (rank < best_rank || (rank == best_rank && since < best_since)) {
				best = hc;
				best_rank = rank;
				best_since = since;
			}
		}
	}
	if (best != NULL && end_connection(best, false)) {
		atomic_fetch_add_explicit(&h->reclaimed, 1, memory_order_relaxed);
		ok = true;
	}
	for (size_t i = h->nworkers; i-- > 0;)
		pthread_mutex_unlock(&h->workers[i].lock);
	return ok;
}

static bool
same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		              &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
	return false;
}

/* Connections open from the address of `addr`, all workers. */
static int
count_from(struct http *h, const struct sockaddr_storage *addr)
{
	int n = 0;

	for (size_t i = 0; i < h->nworkers; i++) {
		pthread_mutex_lock(&h->workers[i].lock);
		for (struct hconn *hc = h->workers[i].head; hc != NULL; hc = hc->next)
			n += same_host(&hc->addr, addr);
		pthread_mutex_unlock(&h->workers[i].lock);
	}
	return n;
}

static void
refuse(struct http *h, int fd)
{
	atomic_fetch_add_explicit(&h->refused, 1, memory_order_relaxed);
	close(fd);
}

/*
 * Hands a new connection to this worker's daemon, or closes it (over
 * max_connections_per_ip). Returns false, keeping fd, when it is at
 * max_connections and no other connection can be reclaimed.
 */
static bool
try_admit(struct worker *w, int fd, struct sockaddr_storage *addr, socklen_t addrlen)
{
	struct http *h = w->h;
	const struct config_limits *l = &h->cfg->limits;
	bool per_ip = l->max_connections_per_ip > 0;

	if (atomic_load_explicit(&h->nconns, memory_order_relaxed) >= l->max_connections &&
	    !reclaim(h))
		return false;
	if (per_ip) {
		/* the count and the add under one lock, so that two workers cannot
		 * both admit the address's last allowed connection */
		pthread_mutex_lock(&h->admit_lock);
		if (count_from(h, addr) >= l->max_connections_per_ip) {
			pthread_mutex_unlock(&h->admit_lock);
			refuse(h, fd);
			return true;
		}
	}
	/* on failure libmicrohttpd closes fd itself */
	if (MHD_add_connection(w->d, fd, (struct sockaddr *)addr, addrlen) != MHD_YES)
		log_debug("http: could not add a connection: %s", strerror(errno));
	if (per_ip)
		pthread_mutex_unlock(&h->admit_lock);
	return true;
}

/*
 * A connection just accepted. Below max_connections it is served; at the
 * limit it is served if another connection can be reclaimed, and otherwise
 * waits up to PARK_MS for one (PARK_MAX at most per thread), then is closed:
 * the client sees the connection closed before any answer, never a hang.
 */
static void
admit(struct worker *w, int fd, struct sockaddr_storage *addr, socklen_t addrlen)
{
	struct parked *p;

	if (try_admit(w, fd, addr, addrlen))
		return;
	if (w->nparked == PARK_MAX) {
		refuse(w->h, fd);
		return;
	}
	p = &w->parked[w->nparked++];
	p->fd = fd;
	p->addrlen = addrlen;
	memcpy(&p->addr, addr, sizeof(*addr));
	p->until = clock_ms() + PARK_MS;
}

/* The waiting connections, oldest first: admitted, still waiting, or closed. */
static void
retry_parked(struct worker *w, int64_t now)
{
	size_t kept = 0;

	for (size_t i = 0; i < w->nparked; i++) {
		struct parked *p = &w->parked[i];

		if (try_admit(w, p->fd, &p->addr, p->addrlen))
			continue;
		if (now >= p->until) {
			refuse(w->h, p->fd);
			continue;
		}
		w->parked[kept++] = *p;
	}
	w->nparked = kept;
}

/*
 * n connections are open: the peak since the last trim, seen here rather
 * than at a sweep, which a burst shorter than SWEEP_MS would slip between.
 * Worker 0, which trims, may be asleep with no connection of its own: the
 * peak's rise through TRIM_DROP wakes it, so that it watches for the end.
 */
static void
note_connections(struct http *h, int n)
{
	int peak = atomic_load_explicit(&h->conn_peak, memory_order_relaxed);

	while (n > peak) {
		if (atomic_compare_exchange_weak_explicit(&h->conn_peak, &peak, n,
		                                          memory_order_relaxed,
		                                          memory_order_relaxed)) {
			if (peak < TRIM_DROP && n >= TRIM_DROP)
				wake(&h->workers[0]);
			break;
		}
	}
}

static void
notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
	struct worker *w = cls;
	struct hconn *hc;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		note_connections(w->h, atomic_fetch_add_explicit(&w->h->nconns, 1,
		                                                 memory_order_relaxed) + 1);
		hc = calloc(1, sizeof(*hc));
		*socket_context = hc;
		if (hc == NULL) /* untracked: still counted, bounded by the idle timeout */
			return;
		hc->w = w;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		hc->fd = ci != NULL ? ci->connect_fd : -1;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci != NULL && ci->client_addr != NULL)
			memcpy(&hc->addr, ci->client_addr,
			       ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
			                                              : sizeof(struct sockaddr_in));
		set_phase(hc, PHASE_WAIT);
		if (hc->fd == -1)
			atomic_store(&hc->closing, true); /* cannot be shut down: never chosen */
		pthread_mutex_lock(&w->lock);
		hc->next = w->head;
		if (w->head != NULL)
			w->head->prev = hc;
		w->head = hc;
		pthread_mutex_unlock(&w->lock);
		return;
	}
	/* CLOSED comes before libmicrohttpd closes the descriptor */
	hc = *socket_context;
	if (hc != NULL) {
		pthread_mutex_lock(&w->lock);
		if (hc->prev != NULL)
			hc->prev->next = hc->next;
		else
			w->head = hc->next;
		if (hc->next != NULL)
			hc->next->prev = hc->prev;
		pthread_mutex_unlock(&w->lock);
		free(hc);
		*socket_context = NULL;
	}
	atomic_fetch_sub_explicit(&w->h->nconns, 1, memory_order_relaxed);
}

/* ---- the event loop: one per HTTP thread --------------------------------- */

static int
watch(int epfd, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = {.events = events, .data.ptr = ptr};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void
watch_listeners(struct worker *w, bool on)
{
	struct http *h = w->h;
	size_t k = (size_t)(w - h->workers);

	for (size_t i = 0; i < h->nlisten; i++) {
		if (on)
			watch(w->epfd, h->listen_fds[i][k], EPOLLIN, &h->listen_fds[i][k]);
		else
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, h->listen_fds[i][k], NULL);
	}
}

static void
accept_from(struct worker *w, int lfd)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage addr;
		socklen_t len = sizeof(addr);
		int fd = accept4(lfd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* level-triggered: without a pause this would spin */
				log_warn("http: cannot accept a connection: %s (raise the open-files "
				         "limit, or lower limits.max_connections)", strerror(errno));
				w->accept_paused_until = clock_ms() + ACCEPT_PAUSE_MS;
				watch_listeners(w, false);
			}
			return; /* EAGAIN: another worker took it; or the client already left */
		}
		/* libmicrohttpd sets this itself only on sockets it accepted: without
		 * it a header and body sent apart wait for the client's delayed ACK */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		admit(w, fd, &addr, len);
	}
}

/*
 * Worker 0, at each sweep: once a burst of connections is over, hand their
 * buffers back to the system. Below 32 KiB libmicrohttpd takes a connection's
 * buffer from malloc, which keeps freed memory; malloc_trim(3) returns it
 * (all of it only because main() leaves malloc one arena). Not at once: a
 * burst that comes back (clients reconnecting, the next scrape of many
 * targets) would take every page again by page faults, which at 4,000
 * connections made the slowest 1 % of first answers 2x nginx's.
 */
static void
trim_after_burst(struct http *h, int64_t now)
{
	int n = atomic_load_explicit(&h->nconns, memory_order_relaxed);
	int peak = atomic_load_explicit(&h->conn_peak, memory_order_relaxed);

	if (peak - n < TRIM_DROP || n >= peak / 2) {
		h->trim_at = 0; /* no burst, or it goes on */
	} else if (h->trim_at == 0) {
		h->trim_at = now + TRIM_QUIET_MS;
	} else if (now >= h->trim_at) {
		malloc_trim(0); /* may take a while: connections come and go meanwhile */
		h->trim_at = 0;
		/* the next burst is measured from here (unless one already began) */
		n = atomic_load_explicit(&h->nconns, memory_order_relaxed);
		atomic_compare_exchange_strong_explicit(&h->conn_peak, &peak, n,
		                                        memory_order_relaxed, memory_order_relaxed);
	}
}

/* How long epoll_wait may sleep: libmicrohttpd's next timeout, our next sweep. */
static int
wait_ms(struct worker *w, int64_t now)
{
	MHD_UNSIGNED_LONG_LONG mhd;
	int64_t ms = -1;

	if (MHD_get_timeout(w->d, &mhd) == MHD_YES)
		ms = mhd > INT32_MAX ? INT32_MAX : (int64_t)mhd;
	if ((w->head != NULL ||
	     (w == w->h->workers &&
	      atomic_load_explicit(&w->h->conn_peak, memory_order_relaxed) >= TRIM_DROP)) &&
	    (ms < 0 || ms > w->next_sweep - now))
		ms = w->next_sweep > now ? w->next_sweep - now : 0;
	if (w->accept_paused_until != 0 && (ms < 0 || ms > w->accept_paused_until - now))
		ms = w->accept_paused_until > now ? w->accept_paused_until - now : 0;
	if (w->nparked > 0 && (ms < 0 || ms > PARK_RETRY_MS))
		ms = PARK_RETRY_MS;
	return (int)ms;
}

/*
 * libmicrohttpd runs here with a zero timeout (MHD_run): its own epoll loop
 * in 0.9.75 may sleep in a second epoll_wait after a full batch of 128
 * events while connections it already read wait, which stalled the server
 * with many busy connections. Here only this loop sleeps, on libmicrohttpd's
 * epoll descriptor, the listen sockets and the stop event.
 */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct http *h = w->h;
	struct epoll_event ev[16];
	bool stop = false;

	while (!stop) {
		int64_t now = clock_ms();
		int n = epoll_wait(w->epfd, ev, (int)(sizeof(ev) / sizeof(ev[0])), wait_ms(w, now));

		if (n == -1 && errno != EINTR) {
			log_warn("http: epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t v;

			if (ev[i].data.ptr == &h->stop_fd)
				stop = true;
			else if (ev[i].data.ptr == &w->wake_fd)
				(void)!read(w->wake_fd, &v, sizeof(v)); /* MHD_run below resumes */
			else if (ev[i].data.ptr != NULL && !atomic_load(&h->quiesced))
				accept_from(w, *(int *)ev[i].data.ptr);
		}
		MHD_run(w->d);
		now = clock_ms();
		if (w->nparked > 0)
			retry_parked(w, now);
		if (now >= w->next_sweep) {
			sweep(w);
			if (w == h->workers)
				trim_after_burst(h, now);
			w->next_sweep = now + SWEEP_MS;
		}
		if (w->accept_paused_until != 0 && now >= w->accept_paused_until) {
			w->accept_paused_until = 0;
			if (!atomic_load(&h->quiesced))
				watch_listeners(w, true);
		}
	}
	return NULL;
}

/*
 * A socket bound to ss; `shared`: SO_REUSEPORT, so that each worker has its
 * own, and listening. Unshared, it only proves that no other process holds
 * the address (which SO_REUSEPORT alone would let another healthd share).
 */
static int
bound_socket(struct sockaddr_storage *ss, socklen_t *sslen, bool shared)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (shared)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, *sslen) == -1 ||
	    (shared && listen(fd, 1024) == -1)) {
		close(fd);
		return -1;
	}
	*sslen = sizeof(*ss);
	getsockname(fd, (struct sockaddr *)ss, sslen); /* port 0: the one picked */
	return fd;
}

static int
listen_on(struct http *h, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char host[INET6_ADDRSTRLEN];
	int *fds = h->listen_fds[h->nlisten];
	uint16_t port;

	int probe;

	if (config_parse_addr(addr, &ss, &sslen, err, errlen) == -1)
		return -1;
	h->nlisten++; /* its sockets are closed by http_stop, even if some fail */
	probe = bound_socket(&ss, &sslen, false);
	if (probe != -1)
		close(probe);
	for (size_t k = 0; k < h->nworkers && probe != -1; k++) {
		fds[k] = bound_socket(&ss, &sslen, true); /* the port the probe got */
		if (fds[k] == -1)
			probe = -1;
	}
	if (probe == -1) {
		snprintf(err, errlen, "listen %s: cannot listen there (address in use, or not "
		         "an address of this machine?)", addr);
		return -1;
	}
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	log_info("listening on http://%s%s%s:%u%s/", ss.ss_family == AF_INET6 ? "[" : "", host,
	         ss.ss_family == AF_INET6 ? "]" : "", port, h->cfg->url_prefix);
	return 0;
}

static int
start_worker(struct http *h, struct worker *w, char *err, size_t errlen)
{
	const struct config *cfg = h->cfg;
	int mhd_fd;

	/* libmicrohttpd's own limit stays out of the way (the reclaim may go over
	 * by the connections being closed); healthd decides in admit() */
	w->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME |
	                        MHD_USE_ERROR_LOG, 0, NULL, NULL, access_handler, h,
	                        MHD_OPTION_CONNECTION_LIMIT,
	                        (unsigned)cfg->limits.max_connections * 2u + 64u,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->limits.idle_timeout_s,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	                        (size_t)cfg->limits.max_request_bytes,
	                        /* 1: refuse what RFC 7230 forbids, e.g. HTTP/1.1 without Host */
	                        MHD_OPTION_STRICT_FOR_CLIENT, 1,
	                        MHD_OPTION_URI_LOG_CALLBACK, uri_callback, h,
	                        MHD_OPTION_NOTIFY_COMPLETED, completed_callback, h,
	                        MHD_OPTION_NOTIFY_CONNECTION, notify_connection, w,
	                        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h,
	                        MHD_OPTION_END);
	if (w->d == NULL) {
		snprintf(err, errlen, "http: cannot start libmicrohttpd");
		return -1;
	}
	mhd_fd = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->epfd == -1 || w->wake_fd == -1 || watch(w->epfd, mhd_fd, EPOLLIN, NULL) == -1 ||
	    watch(w->epfd, h->stop_fd, EPOLLIN, &h->stop_fd) == -1 ||
	    watch(w->epfd, w->wake_fd, EPOLLIN, &w->wake_fd) == -1) {
		snprintf(err, errlen, "http: epoll: %s", strerror(errno));
		return -1;
	}
	watch_listeners(w, true);
	w->next_sweep = clock_ms() + SWEEP_MS;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		snprintf(err, errlen, "http: cannot start a thread");
		return -1;
	}
	w->running = true;
	return 0;
}

struct http *
http_start(const struct http_env *env, char *err, size_t errlen)
{
	const struct config *cfg = env->cfg;
	const struct config_limits *l = &cfg->limits;
	struct http *h;

	if (cfg->nlisten > MAX_LISTEN) {
		snprintf(err, errlen, "listen: at most %d addresses", MAX_LISTEN);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->cfg = cfg;
	h->gens = env->gens;
	h->runner = env->runner;
	h->loader = env->loader;
	h->execs = env->execs;
	h->prefix_len = strlen(cfg->url_prefix);
	h->secret_len = cfg->secret ? strlen(cfg->secret) : 0;
	/* an idle connection ends at whichever comes first */
	h->keep_alive_s = l->idle_timeout_s < l->header_timeout_s ? l->idle_timeout_s
	                                                          : l->header_timeout_s;
	pthread_mutex_init(&h->admit_lock, NULL);
	/* every worker set up before any runs: a reclaim walks them all */
	memset(h->listen_fds, -1, sizeof(h->listen_fds));
	h->nworkers = http_threads(cfg);
	for (size_t i = 0; i < h->nworkers; i++) {
		h->workers[i].h = h;
		h->workers[i].epfd = -1;
		h->workers[i].wake_fd = -1;
		pthread_mutex_init(&h->workers[i].lock, NULL);
	}
	h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->stop_fd == -1) {
		snprintf(err, errlen, "http: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (make_canned(h) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (listen_on(h, cfg->listen[i], err, errlen) == -1)
			goto fail;
	for (size_t i = 0; i < h->nworkers; i++)
		if (start_worker(h, &h->workers[i], err, errlen) == -1)
			goto fail;
	return h;
fail:
	http_stop(h);
	return NULL;
}

void
http_quiesce(struct http *h)
{
	/* Not closed here: a worker may be accepting from it right now. */
	atomic_store(&h->quiesced, true);
	for (size_t i = 0; i < h->nworkers; i++)
		if (h->workers[i].epfd != -1)
			watch_listeners(&h->workers[i], false);
}

void
http_stop(struct http *h)
{
	uint64_t one = 1;

	if (h == NULL)
		return;
	log_info("http: connections: %llu refused at a limit, %llu reclaimed at max_connections, "
	         "%llu closed over a time limit",
	         (unsigned long long)atomic_load(&h->refused),
	         (unsigned long long)atomic_load(&h->reclaimed),
	         (unsigned long long)atomic_load(&h->timed_out));
	if (h->stop_fd != -1 && write(h->stop_fd, &one, sizeof(one)) == -1)
		log_warn("http: cannot stop the HTTP threads: %s", strerror(errno));
	/* every thread first: a running one may still admit a connection,
	 * which reaches into the others (reclaim, worker 0's wake) */
	for (size_t i = 0; i < h->nworkers; i++)
		if (h->workers[i].running)
			pthread_join(h->workers[i].thread, NULL);
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = &h->workers[i];

		for (size_t k = 0; k < w->nparked; k++)
			close(w->parked[k].fd);
		if (w->d != NULL)
			MHD_stop_daemon(w->d);
		if (w->epfd != -1)
			close(w->epfd);
		if (w->wake_fd != -1)
			close(w->wake_fd);
		pthread_mutex_destroy(&w->lock);
	}
	for (size_t i = 0; i < h->nlisten; i++)
		for (size_t k = 0; k < h->nworkers; k++)
			if (h->listen_fds[i][k] != -1)
				close(h->listen_fds[i][k]);
	if (h->stop_fd != -1)
		close(h->stop_fd);
	pthread_mutex_destroy(&h->admit_lock);
	for (size_t i = 0; i < CANNED_COUNT; i++)
		for (int ka = 0; ka < 2; ka++)
			if (h->canned[i][ka] != NULL)
				MHD_destroy_response(h->canned[i][ka]);
	free(h);
}
