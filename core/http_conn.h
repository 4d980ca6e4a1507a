/*
 * http_conn.h - the HTTP connection layer: listen sockets, one thread per
 * libmicrohttpd daemon with its own epoll loop, accept, admission
 * (max_connections, per host), reclaim of idle keep-alive connections,
 * backpressure at the limit, total-time limits per phase, and the malloc trim
 * after a burst. It knows nothing of routes or requests: http.c hands it
 * libmicrohttpd's request callbacks and tells it where each request stands.
 */
#ifndef HEALTHD_HTTP_CONN_H
#define HEALTHD_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "config.h"

struct http_conns;  /* the layer: its listen sockets, threads and connections */
struct tls;
struct http_thread; /* one HTTP thread and its daemon */
struct hconn;       /* one open connection's tracking */

/*
 * Where a connection is; each phase but RUN has a total-time limit (see
 * phase_limit_us), counted from when it began, that trickling bytes never
 * extends.
 */
enum conn_phase {
	PHASE_WAIT,   /* no request line yet: new, or idle between keep-alive requests */
	PHASE_HEADER, /* request line read, header not complete */
	PHASE_BODY,   /* reading a body we accepted */
	PHASE_RUN,    /* suspended while its checks run (the runner bounds it) */
	PHASE_SEND,   /* response queued, not all taken by the client */
	PHASE_DRAIN,  /* answered, but the kernel still holds some of it for the client */
};

/* libmicrohttpd's request callbacks (its access handler, URI log and
 * request-completed callbacks), each called with cls on an HTTP thread. */
struct http_conn_callbacks {
	MHD_AccessHandlerCallback access;
	void *(*uri)(void *cls, const char *uri, struct MHD_Connection *conn);
	MHD_RequestCompletedCallback completed;
	void *cls;
};

/* The connection counters /metrics shows, since the start. */
struct http_conn_stats {
	unsigned open;       /* open now, all threads */
	uint64_t refused;    /* closed at max_connections_per_ip before any answer */
	uint64_t reclaimed;  /* ended near max_connections to make room */
	uint64_t timed_out;  /* closed over a phase's total time */
};

/*
 * Listens on every address of cfg->listen (logging "listening on
 * http://ADDR:PORT/PREFIX/" for each, https:// with tls) and makes cfg's
 * number of HTTP threads' daemons, with cb as their request callbacks; no
 * thread runs yet. tls: NULL, or HTTPS with its material (a TLS handshake
 * counts as PHASE_WAIT: the header's time limit bounds it). cfg, tls and
 * cb->cls must outlive the layer. Returns NULL with a reason in err.
 */
struct http_conns *http_conn_open(const struct config *cfg, struct tls *tls,
                                  const struct http_conn_callbacks *cb, char *err, size_t errlen);

/* Starts the HTTP threads: from here on the callbacks may be called.
 * Returns -1 with a reason in err (call http_conn_stop then). */
int http_conn_run(struct http_conns *c, char *err, size_t errlen);

/* Stops accepting new connections; connections already open are still served. */
void http_conn_quiesce(struct http_conns *c);

/* Logs the connection counters, closes every connection and the listen
 * sockets, and joins the threads. c may be NULL. */
void http_conn_stop(struct http_conns *c);

void http_conn_stats(struct http_conns *c, struct http_conn_stats *st);

/* From an HTTP thread's callbacks: the connection's tracking, or NULL when it
 * has none (its allocation failed); and the thread whose daemon has it. */
struct hconn *http_conn_of(struct MHD_Connection *conn);
struct http_thread *http_conn_thread(struct http_conns *c, struct MHD_Connection *conn);

/* How many HTTP threads there are, and t's index among them: a slot for
 * state each thread keeps for itself. */
size_t http_conn_nthreads(const struct http_conns *c);
size_t http_conn_thread_index(const struct http_thread *t);

/* The connection enters phase now. hc may be NULL. */
void http_conn_set_phase(struct hconn *hc, enum conn_phase phase);

/* A request line has come (the URI callback); hc may be NULL. */
void http_conn_request_begins(struct hconn *hc);

/* A request is over (the completed callback): `large`, its answer was a body
 * made for it, which may outlast the send buffer; `sent`, libmicrohttpd says
 * it completed. hc may be NULL. */
void http_conn_request_ends(struct hconn *hc, bool large, bool sent);

/* From any thread: resumes a suspended connection of thread t and wakes t,
 * whose daemon then serves it. */
void http_conn_resume(struct http_thread *t, struct MHD_Connection *conn);

#endif
