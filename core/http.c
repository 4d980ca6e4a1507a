/* http.c - the health API's requests: routes, auth, request state, responses
 * (libmicrohttpd); the connections they come on are http_conn.c's. */
#include "http.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "accept_header.h"
#include "auth.h"
#include "clock.h"
#include "format.h"
#include "generation.h"
#include "history.h"
#include "http_conn.h"
#include "log.h"
#include "metrics.h"
#include "status_page.h"

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
	CANNED_BAD_REQUEST,
	CANNED_NO_CHECK,
	CANNED_COUNT
};

/* P/status: how often the page reloads itself (a meta refresh, no script);
 * ?refresh=N asks for N seconds, 1 to STATUS_REFRESH_MAX_S. */
#define STATUS_REFRESH_S 30
#define STATUS_REFRESH_MAX_S 3600

/*
 * An HTTP thread's last GET P/ answer, queued again while its bytes stay the
 * same (a probe's answer seldom changes): a response and its headers cost
 * a dozen allocations to make and free. Connections still sending the
 * previous one hold their own reference (libmicrohttpd counts them).
 */
struct reuse {
	struct MHD_Response *resp;
	const char *body;       /* resp's, which owns it */
	size_t len;
	bool health_json;
	bool keep_alive;
};

struct http {
	const struct config *cfg;
	struct gen_table *gens;
	struct runner *runner;
	struct executor_set *execs; /* isolated plugins, for /metrics */
	const struct plugin_loader *loader; /* in-process ones */
	struct http_conns *conns;   /* the connection layer the requests come from */
	int keep_alive_s;
	size_t prefix_len;
	size_t secret_len;
	/* [k][1] carries Keep-Alive: timeout=N, for a connection that stays open */
	struct MHD_Response *canned[CANNED_COUNT][2];
	atomic_uint_fast64_t counters[ROUTE_COUNT][NCODES];
	struct reuse *reuse;        /* one per HTTP thread, each touched by its own only */
	size_t nreuse;
};

/* The query arguments healthd reads: the first of each counts. */
struct query {
	const char *checks, *auth, *verbose, *exclude, *check, *refresh;
	size_t checks_len, auth_len, verbose_len, exclude_len, check_len, refresh_len;
	bool has_checks, has_auth, has_verbose, has_exclude, has_check, has_refresh;
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
	bool states_only;       /* P/status without the secret (status_public): no messages */
	struct hconn *hc;       /* the connection's tracking, NULL if it has none */
	struct http_thread *t;  /* the thread whose daemon has the connection */
	size_t body_bytes;
	enum route route;
	bool verbose;           /* ?verbose=1: add details */
	bool nul_in_path;       /* the raw path holds %00 */
	bool bad_target;        /* the raw target holds a space: not one token */
	bool keep_alive;        /* the connection stays open after this answer */
	bool large;             /* a body made for it: may outlast the send buffer */
};

static struct MHD_Response *owned_response(struct request *q, char *body, size_t len,
                                           const char *type, const char *vary);
static enum MHD_Result serve_ping(struct request *q);
static enum MHD_Result serve_health(struct request *q);
static size_t add_stand_ins(const struct generation *g, uint32_t *ids, size_t n);
static enum MHD_Result serve_redirect(struct request *q);
static enum MHD_Result serve_metrics(struct request *q);
static enum MHD_Result serve_history(struct request *q);
static enum MHD_Result serve_status(struct request *q);
static enum MHD_Result serve_not_found(struct request *q);

/* Who may use a route. */
enum route_auth {
	AUTH_NONE,    /* anyone */
	AUTH_SECRET,  /* the URL secret, when one is set */
	AUTH_METRICS, /* the URL secret, when one is set and metrics_auth is on */
	AUTH_STATUS,  /* the URL secret, or none for a states-only page (status_public) */
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
	[ROUTE_HISTORY]  = {MATCH_PATH,    "/history", true,  AUTH_SECRET,  serve_history,   "history"},
	[ROUTE_STATUS]   = {MATCH_PATH,    "/status", true,   AUTH_STATUS,  serve_status,    "status"},
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
	http_conn_set_phase(q->hc, PHASE_SEND);
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

/*
 * A response that owns body, a body made for this request; NULL when out of
 * memory (body is freed). vary: the request header the body was chosen by,
 * or NULL.
 */
static struct MHD_Response *
owned_response(struct request *q, char *body, size_t len, const char *type, const char *vary)
{
	struct MHD_Response *resp;

	if (body == NULL)
		return NULL;
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	/* a page is self-contained: nothing it holds may load or run anything */
	if (strncmp(type, "text/html", 9) == 0)
		MHD_add_response_header(resp, "Content-Security-Policy",
		                        "default-src 'none'; style-src 'unsafe-inline'");
	if (vary != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, vary);
	add_keep_alive(q, resp);
	return resp;
}

/*
 * Queues a body made for this request, and lets go of it; `counted`: the
 * answer is in the counters already, else it is counted here.
 */
static enum MHD_Result
send_owned(struct request *q, unsigned code, bool counted, char *body, size_t len,
           const char *type, const char *vary)
{
	struct MHD_Response *resp = owned_response(q, body, len, type, vary);
	enum MHD_Result rc;

	if (resp == NULL)
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	q->large = true;
	rc = counted ? queue(q, code, resp) : reply(q, code, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* GET P/'s body: queued as this thread's last answer when the bytes are the
 * same, else as a new one that takes its place (struct reuse). */
static enum MHD_Result
reply_health_body(struct request *q, unsigned code, char *body, size_t len, bool health_json)
{
	struct reuse *r = &q->h->reuse[http_conn_thread_index(q->t)];
	struct MHD_Response *resp;

	if (body == NULL)
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	if (r->resp != NULL && r->health_json == health_json && r->keep_alive == q->keep_alive &&
	    r->len == len && memcmp(r->body, body, len) == 0) {
		free(body);
	} else {
		/* either body may come from the same URL: caches must key on Accept */
		resp = owned_response(q, body, len,
		                      health_json ? "application/health+json" : "application/json",
		                      MHD_HTTP_HEADER_ACCEPT);
		if (resp == NULL)
			return reply_canned(q, 500, CANNED_NO_MEMORY);
		if (r->resp != NULL)
			MHD_destroy_response(r->resp);
		*r = (struct reuse){resp, body, len, health_json, q->keep_alive};
	}
	q->large = true;
	return reply(q, code, r->resp);
}

/* Sends a body made for this request, and lets go of it. */
static enum MHD_Result
reply_owned(struct request *q, unsigned code, char *body, size_t len, const char *type,
            const char *vary)
{
	return send_owned(q, code, false, body, len, type, vary);
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
	} else if (key_size == 5 && memcmp(key, "check", 5) == 0 && !qa->has_check) {
		qa->has_check = true;
		qa->check = value;
		qa->check_len = value_size;
	} else if (key_size == 7 && memcmp(key, "refresh", 7) == 0 && !qa->has_refresh) {
		qa->has_refresh = true;
		qa->refresh = value;
		qa->refresh_len = value_size;
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

/* From a runner thread. */
static void
resume_request(void *arg)
{
	struct request *q = arg;

	http_conn_resume(q->t, q->conn); /* q may be gone once resumed */
}

/* GET P/ once its job is finished. */
static enum MHD_Result
reply_health(struct request *q)
{
	struct MHD_Connection *conn = q->conn;
	unsigned code = format_job_passed(q->job) ? 200 : 503;
	size_t len = 0;
	char *body;

	if (wants_health_json(conn)) {
		body = format_health_json(q->gen->reg, &q->gen->cfg->service, q->ids, q->job,
		                          &len);
		return reply_health_body(q, code, body, len, true);
	}
	body = format_seed(q->gen->reg, q->ids, q->job, q->verbose, &len);
	return reply_health_body(q, code, body, len, false);
}

/* While plugins load, every selection (groups too) takes their stand-ins
 * (generation.h): whatever it names, the answer is 503 and says what loads.
 * ids has room for every check and stays sorted by name. Returns the count. */
static size_t
add_stand_ins(const struct generation *g, uint32_t *ids, size_t n)
{
	for (size_t i = 0; i < g->nstand_ins; i++) {
		const char *name = registry_at(g->reg, g->stand_ins[i])->name;
		size_t at = 0;
		while (at < n && ids[at] != g->stand_ins[i] &&
		       strcmp(registry_at(g->reg, ids[at])->name, name) < 0)
			at++;
		if (at < n && ids[at] == g->stand_ins[i])
			continue;
		memmove(&ids[at + 1], &ids[at], (n - at) * sizeof(*ids));
		ids[at] = g->stand_ins[i];
		n++;
	}
	return n;
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
	n = add_stand_ins(q->gen, q->ids, n);
	q->job = runner_submit_in(h->runner, reg, q->ids, n, g != NULL ? g->timeout_ms : 0,
	                          g != NULL ? g->max_result_age_ms : 0);
	if (q->job == NULL)
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	http_conn_set_phase(q->hc, PHASE_RUN);
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

void
http_framing_add(struct http_framing *f, const char *key, size_t key_size, const char *value)
{
	if (key_size == 4 && strncasecmp(key, MHD_HTTP_HEADER_HOST, 4) == 0) {
		f->hosts++;
	} else if (key_size == 10 && strncasecmp(key, MHD_HTTP_HEADER_CONNECTION, 10) == 0) {
		if (f->connection == NULL)
			f->connection = value;
	} else if (key_size == 14 && strncasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH, 14) == 0) {
		f->lengths++;
		f->length = value;
	} else if (key_size == 17 &&
	           strncasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING, 17) == 0) {
		f->encodings++;
		f->encoding = value;
	}
}

static enum MHD_Result
framing_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
               const char *value, size_t value_size)
{
	(void)kind;
	(void)value_size;
	http_framing_add(cls, key, key_size, value != NULL ? value : "");
	return MHD_YES;
}

/*
 * Whether the request is framed so that where it ends is not in doubt (RFC
 * 9112). libmicrohttpd 0.9.75 takes the first of two Content-Length headers
 * and serves the rest as the next request (a desync shape behind a proxy),
 * and keeps the connection after Content-Length beside Transfer-Encoding.
 */
bool
http_framing_ok(const struct http_framing *f, const char *version, bool bad_target)
{
	/* 3.2: exactly one Host, which HTTP/1.0 may leave out */
	if (f->hosts > 1 || (f->hosts == 0 && strcmp(version, MHD_HTTP_VERSION_1_0) != 0))
		return false;
	/* 6.3: more than one length, or a length beside a transfer coding */
	if (f->lengths > 1 || (f->lengths == 1 && f->encodings > 0))
		return false;
	/* 6.1: a coding other than chunked leaves the body without an end */
	if (f->encodings > 1 || (f->encodings == 1 && strcasecmp(f->encoding, "chunked") != 0))
		return false;
	return !bad_target;
}

/* Whether the connection stays open after the answer (libmicrohttpd's own
 * rule for HTTP/1.1; an HTTP/1.0 client is not told a timeout). */
static bool
wants_keep_alive(const struct http_framing *f, const char *version)
{
	return strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
	       (f->connection == NULL || strcasestr(f->connection, "close") == NULL);
}

/* Whether a body follows the header; *len is its size, UINT64_MAX when
 * chunked (libmicrohttpd has already refused a malformed length). */
static bool
has_body(const struct http_framing *f, uint64_t *len)
{
	*len = UINT64_MAX;
	if (f->encodings > 0)
		return true;
	if (f->length == NULL)
		return false;
	*len = strtoull(f->length, NULL, 10);
	return *len > 0;
}

/* A server must accept an absolute-form target (RFC 9112 3.2.2); it routes
 * by the path whatever the authority says. */
const char *
http_origin_form(const char *target)
{
	const char *p;

	if (strncasecmp(target, "http://", 7) == 0)
		p = target + 7;
	else if (strncasecmp(target, "https://", 8) == 0)
		p = target + 8;
	else
		return target;
	p += strcspn(p, "/?");
	return *p == '/' ? p : "/"; /* "http://host" and "http://host?q" name "/" */
}

/*
 * The header is complete. A body that no answer needs (404, 405, or one
 * over max_body_bytes: 413) is not read: answering now makes libmicrohttpd
 * skip it and close the connection after the answer. Returns 0 when the
 * request goes on (its body, if any, is read and dropped).
 */
static unsigned
early_answer(const struct request *q, const struct http_framing *f, const char *method,
             enum canned *k)
{
	uint64_t len;

	if (!has_body(f, &len))
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
	struct http_framing f = {0};
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
		url = http_origin_form(url);
		q->route = q->nul_in_path ? ROUTE_OTHER : http_route(url, h->cfg, &q->group);
		if (q->route == ROUTE_GROUP || (q->route == ROUTE_OTHER && !q->nul_in_path)) {
			/* groups come with the checks: a reload may add, change or
			 * remove them, so route with the generation the request holds */
			q->gen = gen_acquire(h->gens);
			q->route = http_route(url, q->gen->cfg, &q->group);
		}
		MHD_get_connection_values_n(conn, MHD_HEADER_KIND, framing_header, &f);
		if (!http_framing_ok(&f, version, q->bad_target)) {
			/* answered on the first call: libmicrohttpd reads nothing more */
			q->keep_alive = false;
			return reply_canned(q, 400, CANNED_BAD_REQUEST);
		}
		q->keep_alive = wants_keep_alive(&f, version);
		code = early_answer(q, &f, method, &k);
		if (code != 0) {
			q->keep_alive = false;
			return reply_canned(q, code, k);
		}
		http_conn_set_phase(q->hc, PHASE_BODY); /* ends at the answer: a body is bounded too */
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
		if ((row->auth != AUTH_METRICS || h->cfg->metrics_auth) &&
		    !authorized(h, conn, &q->qa)) {
			if (row->auth != AUTH_STATUS || !h->cfg->status_public)
				return reply_canned(q, 401, CANNED_UNAUTHORIZED);
			q->states_only = true; /* no plugin text without the secret */
		}
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
	struct http_conn_stats conns;
	http_conn_stats(h->conns, &conns);
	struct metrics_http counts = {
		.counters = rows,
		.ncounters = nrows,
		.open = conns.open,
		.max = h->cfg->limits.max_connections,
		.refused = conns.refused,
		.reclaimed = conns.reclaimed,
		.timed_out = conns.timed_out,
	};
	q->gen = gen_acquire(h->gens);
	char *body = metrics_render(q->gen->reg, h->runner, h->loader, h->execs, &counts, &len);

	return send_owned(q, 200, true, body, len, "text/plain; version=0.0.4; charset=utf-8",
	                  NULL);
}

/* GET P/history?check=NAME: the check's history as JSON (history.h). */
static enum MHD_Result
serve_history(struct request *q)
{
	const struct query *qa = &q->qa;
	struct history_snapshot *snap;
	size_t len = 0;
	char *body;
	int id;

	if (!qa->has_check)
		return reply_canned(q, 400, CANNED_NO_CHECK);
	if (q->gen == NULL)
		q->gen = gen_acquire(q->h->gens);
	id = registry_find(q->gen->reg, qa->check, qa->check_len);
	if (id < 0)
		return reply_canned(q, 404, CANNED_NOT_FOUND);
	/* ~9.6 KB: not on an HTTP thread's stack */
	if ((snap = malloc(sizeof(*snap))) == NULL)
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	history_snapshot(q->gen->history, (size_t)id, snap); /* indexed like the registry */
	body = history_json(snap, clock_wall_ms(), true, &len);
	free(snap);
	return reply_owned(q, 200, body, len, "application/json", NULL);
}

/* ?refresh=N when it is a whole number in range, else the default. */
static unsigned
status_refresh(const struct query *qa)
{
	unsigned long v = 0;

	if (!qa->has_refresh || qa->refresh_len == 0 || qa->refresh_len > 4)
		return STATUS_REFRESH_S;
	for (size_t i = 0; i < qa->refresh_len; i++) {
		if (qa->refresh[i] < '0' || qa->refresh[i] > '9')
			return STATUS_REFRESH_S;
		v = v * 10 + (unsigned long)(qa->refresh[i] - '0');
	}
	return v >= 1 && v <= STATUS_REFRESH_MAX_S ? (unsigned)v : STATUS_REFRESH_S;
}

/* P/status's per-check state, from the runner and the history. */
struct status_row {
	struct history_snapshot snap;
	char suppressed_by[CHECK_NAME_MAX + 1];
};

/* GET P/status: the page (status_page.h), states only for an unauthenticated
 * caller of a status_public server. */
static enum MHD_Result
serve_status(struct request *q)
{
	const struct config *cfg;
	const struct registry *reg;
	struct status_buf page = {0};
	struct status_check *checks;
	struct status_row *rows;
	struct runner_stats *st;
	const char **groups;
	size_t n, ng;
	int rc;

	if (q->gen == NULL)
		q->gen = gen_acquire(q->h->gens);
	cfg = q->gen->cfg;
	reg = q->gen->reg;
	n = registry_count(reg);
	ng = cfg->ngroups;
	checks = calloc(n ? n : 1, sizeof(*checks));
	rows = calloc(n ? n : 1, sizeof(*rows));
	groups = calloc(n * ng + 1, sizeof(*groups));
	st = malloc(sizeof(*st));
	if (checks == NULL || rows == NULL || groups == NULL || st == NULL) {
		rc = -1;
		goto out;
	}
	for (uint32_t id = 0; id < n; id++) {
		const struct check *k = registry_at(reg, id);
		struct status_check *c = &checks[id];
		const struct history_snapshot *s = &rows[id].snap;

		runner_stats_of(q->h->runner, k, st);
		history_snapshot(q->gen->history, id, &rows[id].snap);
		snprintf(rows[id].suppressed_by, sizeof(rows[id].suppressed_by), "%s",
		         st->suppressed_by);
		c->name = k->name;
		c->groups = &groups[id * ng];
		for (size_t g = 0; g < ng; g++)
			for (size_t j = 0; j < cfg->groups[g].nchecks; j++)
				if (strcmp(cfg->groups[g].checks[j], k->name) == 0)
					groups[id * ng + c->ngroups++] = cfg->groups[g].name;
		c->state = st->has_last ? (int)st->effective_status : -1;
		c->since_ms = s->ntransitions > 0 ? s->transitions[s->ntransitions - 1].time_ms
		                                  : s->known_since_ms;
		c->message = s->nresults > 0 ? s->results[s->nresults - 1].message : NULL;
		c->flapping = st->flapping;
		c->suppressed_by = rows[id].suppressed_by[0] ? rows[id].suppressed_by : NULL;
		c->history = s;
	}
	rc = status_page_render(checks, n, &(struct status_page_opts){
		.now_ms = clock_wall_ms(),
		.messages = !q->states_only,
		.refresh_s = status_refresh(&q->qa),
	}, &page);
out:
	free(checks);
	free(rows);
	free(groups);
	free(st);
	if (rc == -1) {
		status_buf_free(&page);
		return reply_canned(q, 500, CANNED_NO_MEMORY);
	}
	return reply_owned(q, 200, page.data, page.len, "text/html; charset=utf-8", NULL);
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
	q->hc = http_conn_of(conn);
	q->t = http_conn_thread(h->conns, conn);
	http_conn_request_begins(q->hc);
	/* not refused by libmicrohttpd, whose strict mode would close without an answer */
	q->bad_target = strchr(uri, ' ') != NULL;
	uri = http_origin_form(uri);
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
	http_conn_request_ends(http_conn_of(conn), q != NULL && q->large,
	                       toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
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
		[CANNED_NOT_ALLOWED]    = {"Method Not Allowed\n",        "text/plain", "GET, HEAD, OPTIONS"},
		[CANNED_TOO_LARGE]      = {"Content Too Large\n",         "text/plain", NULL},
		[CANNED_OPTIONS]        = {"",                            NULL,         "GET, HEAD, OPTIONS"},
		[CANNED_TOO_MANY_NAMES] = {"Too many names in checks= or exclude=\n", "text/plain", NULL},
		[CANNED_CHECKS_ON_GROUP] = {"checks= does not apply to a group (exclude= does)\n", "text/plain", NULL},
		[CANNED_NO_MEMORY]      = {"Out of memory\n",             "text/plain", NULL},
		[CANNED_BAD_REQUEST]    = {"Bad Request\n",               "text/plain", NULL},
		[CANNED_NO_CHECK]       = {"history needs ?check=NAME\n", "text/plain", NULL},
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
			/* where a request ends is in doubt: so is where the next begins */
			if (i == CANNED_BAD_REQUEST)
				MHD_add_response_header(h->canned[i][ka], MHD_HTTP_HEADER_CONNECTION,
				                        "close");
		}
	}
	return 0;
}

struct http *
http_start(const struct http_env *env, char *err, size_t errlen)
{
	const struct config *cfg = env->cfg;
	const struct config_limits *l = &cfg->limits;
	struct http *h;

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
	h->conns = http_conn_open(cfg, env->tls, &(struct http_conn_callbacks){
		.access = access_handler,
		.uri = uri_callback,
		.completed = completed_callback,
		.cls = h,
	}, err, errlen);
	if (h->conns == NULL)
		goto fail;
	h->nreuse = http_conn_nthreads(h->conns);
	h->reuse = calloc(h->nreuse, sizeof(*h->reuse));
	if (h->reuse == NULL || make_canned(h) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* h->conns is set: the callbacks may run from here on */
	if (http_conn_run(h->conns, err, errlen) == -1)
		goto fail;
	return h;
fail:
	http_stop(h);
	return NULL;
}

void
http_quiesce(struct http *h)
{
	http_conn_quiesce(h->conns);
}

void
http_stop(struct http *h)
{
	if (h == NULL)
		return;
	/* the daemons first: a connection may still hold a canned or reused response */
	http_conn_stop(h->conns);
	for (size_t i = 0; i < CANNED_COUNT; i++)
		for (int ka = 0; ka < 2; ka++)
			if (h->canned[i][ka] != NULL)
				MHD_destroy_response(h->canned[i][ka]);
	for (size_t i = 0; h->reuse != NULL && i < h->nreuse; i++)
		if (h->reuse[i].resp != NULL)
			MHD_destroy_response(h->reuse[i].resp);
	free(h->reuse);
	free(h);
}
