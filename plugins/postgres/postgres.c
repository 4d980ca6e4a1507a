/*
 * postgres - checks that a PostgreSQL server answers SELECT 1 (libpq).
 *
 * Configured instances only:
 *
 *     {"name": "db", "plugin": "postgres",
 *      "conninfo": "host=/run/postgresql dbname=app application_name=healthd",
 *      "timeout_ms": 2000}
 *
 * conninfo: required; a libpq keyword/value string or a postgresql:// URI.
 *           The PG* environment variables and ~/.pgpass fill in what it leaves
 *           out, as in psql. application_name defaults to "healthd".
 *
 * A run passes when SELECT 1 returns 1. Everything is non-blocking and bounded
 * by the report's deadline: PQconnectStartParams + PQconnectPoll, then
 * PQsendQuery + PQconsumeInput, waiting in poll() (libpq ignores
 * connect_timeout in this mode). Two exceptions libpq leaves us, each inside
 * one PQconnectPoll call: resolving a host *name* (getaddrinfo) blocks, so
 * name the server by address (hostaddr, an IP literal) or by unix socket
 * directory where that matters; and SCRAM's key derivation costs what the
 * server's iteration count says (2,000,000 iterations took 2.3 s past a 300 ms
 * timeout in review). The request is answered at the deadline all the same,
 * and in an executor a run still inside such a call kill_after_ms later gets
 * the executor replaced.
 *
 * Each instance keeps one connection for its lifetime, so a probe every second
 * costs one backend, not one per second. It is made lazily by the first run,
 * re-made when libpq finds it broken, and dropped after any failed run; when a
 * kept connection turns out to be dead (the server restarted), the same run
 * connects again once.
 *
 * Past the deadline the running query is cancelled (PQcancel, on a short-lived
 * thread, since PQcancel blocks until the server answers, and a frozen server
 * never does), the connection is dropped and the run fails with
 * "timeout after N ms". Messages never carry the password: libpq's text is
 * scrubbed of it, and conninfo itself is never echoed.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <healthd/plugin.h>

#define PG_QUERY             "SELECT 1"
#define PG_APPLICATION_NAME  "healthd"
#define PG_MESSAGE_SIZE      768
#define PG_SCRUBBED          "***"
/* Waits end at the deadline (api->wait_fd): the host waits
 * HEALTHD_DEADLINE_GRACE_MS longer for the run's own answer, so its own
 * message reports a timeout. */
#define PG_SCRUB_MIN         6   /* shorter passwords: libpq's text is withheld */
/* Cancel threads alive at once, process-wide; past this a timed-out query is only dropped. */
#define PG_CANCELS_MAX       4

/*
 * One configured check. Created by instantiate() on the main thread; after
 * that only run() (never twice at once for the same check) and destroy() touch
 * it, so it needs no lock. Nothing in it is shared between instances.
 */
struct pg_check {
	const struct healthd_host_api *api;
	struct healthd_host *host;    /* for api->log; valid until unload() */
	char *name;                   /* the check's name, for the log */
	char **keys, **values;        /* NULL-terminated, for PQconnectStartParams */
	const char *password;         /* points into values, or NULL; scrubbed from all text */
	PGconn *conn;                 /* the kept connection, or NULL */
};

/* What went wrong in one step of a run. */
enum pg_outcome {
	PG_DONE,     /* the step succeeded */
	PG_FAILED,   /* failed; the message says why */
	PG_LOST,     /* the connection broke under us; a kept one may be re-made */
	PG_TIMEOUT,  /* the deadline came first */
};

/* needle in libpq's text (C locale)   what the message calls it */
static const struct {
	const char *needle;
	const char *what;
} pg_connect_errors[] = {
	{"password authentication failed", "authentication failed"},
	{"authentication failed",          "authentication failed"},
	{"no password supplied",           "authentication failed"},
	{"pg_hba.conf",                    "authentication failed"},
	{"Connection refused",             "connection refused"},
	{"No such file or directory",      "connection refused"}, /* no socket in that directory */
};

/* Process-wide: cancel threads still waiting for a server. */
static pthread_mutex_t pg_cancel_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned pg_cancels_running; /* guarded by pg_cancel_lock */
static const char pg_pin_anchor = 0;  /* any address inside this object, for dladdr() */
static bool pg_pinned;              /* written once under pthread_once */
static pthread_once_t pg_pin_once = PTHREAD_ONCE_INIT;

struct pg_sigpipe {
	sigset_t old;
	bool was_pending;
};

static void pg_sigpipe_block(struct pg_sigpipe *sp);
static void pg_sigpipe_restore(const struct pg_sigpipe *sp);
static void pg_one_line(const char *text, char *buf, size_t len);
static void pg_scrub(const char *password, char *buf, size_t len);
static bool pg_can_scrub(const struct pg_check *pg);
static const char *pg_uri_userinfo_error(const char *conninfo);
static void pg_redact_quoted(const char *text, char *buf, size_t len);
static void pg_say(struct pg_check *pg, struct healthd_report *report, const char *what,
                   const char *detail);
static const char *pg_classify(const char *text);
static void pg_notice(void *arg, const char *message);
static int pg_wait(const struct healthd_host_api *api, struct healthd_report *report, int fd,
                   short events);
static void pg_pin_self(void);
static void *pg_cancel_main(void *arg);
static void pg_cancel_in_background(struct pg_check *pg);
static void pg_drop(struct pg_check *pg, bool cancel);
static bool pg_still_alive(struct pg_check *pg);
static enum pg_outcome pg_connect(struct pg_check *pg, struct healthd_report *report);
static enum pg_outcome pg_query(struct pg_check *pg, struct healthd_report *report);
static enum healthd_status pg_run(void *state, struct healthd_report *report);
static void pg_destroy(void *state);
static int pg_instantiate(struct healthd_host *host, const struct healthd_host_api *api,
                          const char *check_name, const struct healthd_options *options,
                          char *err, size_t errlen);

/* ---- SIGPIPE --------------------------------------------------------------- */

/*
 * libpq sends with MSG_NOSIGNAL on Linux and the host ignores SIGPIPE, but a
 * write to a closed socket must not kill the process whatever the host does:
 * block SIGPIPE on this thread around libpq calls and swallow one we caused,
 * as libpq itself does where MSG_NOSIGNAL is missing.
 */
static void
pg_sigpipe_block(struct pg_sigpipe *sp)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &sp->old);
	sp->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

static void
pg_sigpipe_restore(const struct pg_sigpipe *sp)
{
	static const struct timespec zero = {0, 0};
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (!sp->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1)
		while (sigtimedwait(&set, NULL, &zero) == -1 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &sp->old, NULL);
}

/* ---- messages -------------------------------------------------------------- */

/*
 * libpq's multi-line text as one line: lines joined with "; ", runs of blanks
 * made one space, indented hint lines ("\tIs the server running...?") left out.
 */
static void
pg_one_line(const char *text, char *buf, size_t len)
{
	size_t n = 0;
	bool line_start = true, blank = false;

	if (len == 0)
		return;
	for (const char *p = text; *p != '\0' && n + 1 < len; p++) {
		if (*p == '\n') {
			line_start = true;
			blank = false;
			continue;
		}
		if (line_start) {
			if (*p == '\t') { /* a hint: skip the whole line */
				while (p[1] != '\0' && p[1] != '\n')
					p++;
				continue;
			}
			if (*p == ' ' || *p == '\r')
				continue;
			if (n > 0) {
				if (n + 2 >= len)
					break;
				buf[n++] = ';';
				buf[n++] = ' ';
			}
			line_start = false;
		}
		if (*p == ' ' || *p == '\t' || *p == '\r') {
			blank = true;
			continue;
		}
		if (blank) {
			if (n + 2 >= len)
				break;
			buf[n++] = ' ';
			blank = false;
		}
		buf[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
	}
	buf[n] = '\0';
}

/*
 * Whether libpq's text can be shown with the password masked. Masking a short
 * password tells it (every "o" of "connection" turned to *** spells "o"), so
 * below PG_SCRUB_MIN characters the text is withheld instead.
 */
static bool
pg_can_scrub(const struct pg_check *pg)
{
	return pg->password == NULL || strlen(pg->password) >= PG_SCRUB_MIN;
}

/* Replaces every occurrence of the password in buf by PG_SCRUBBED. */
static void
pg_scrub(const char *password, char *buf, size_t len)
{
	size_t plen, slen = strlen(PG_SCRUBBED);
	char *p;

	if (password == NULL || (plen = strlen(password)) == 0)
		return;
	p = buf;
	while ((p = strstr(p, password)) != NULL) {
		size_t tail = strlen(p + plen);

		if (slen > plen && (size_t)(p - buf) + slen + tail + 1 > len) {
			*p = '\0'; /* no room to put the marker in: cut the text here */
			return;
		}
		memmove(p + slen, p + plen, tail + 1);
		memcpy(p, PG_SCRUBBED, slen);
		p += slen;
	}
}

/*
 * libpq's conninfo parse errors quote the text they stumbled on, which may be
 * (part of) the password: missing "=" after "secretpart". Copies text to buf
 * with every quoted part shown as "...".
 */
static void
pg_redact_quoted(const char *text, char *buf, size_t len)
{
	size_t n = 0;

	if (len == 0)
		return;
	/* Everything from the first quote on: a quoted token can itself hold a
	 * quote, so toggling in and out of quotes could show the password. */
	while (text[n] != '\0' && text[n] != '"' && n + 6 < len) {
		buf[n] = text[n];
		n++;
	}
	if (text[n] == '"' && n + 6 <= len) { /* room for the marker and the NUL */
		memcpy(buf + n, "\"...\"", 5);
		n += 5;
	}
	buf[n] = '\0';
}

/* Sets the run's message: "what: detail", the detail made one line and scrubbed. */
static void
pg_say(struct pg_check *pg, struct healthd_report *report, const char *what, const char *detail)
{
	char line[PG_MESSAGE_SIZE];

	if (!pg_can_scrub(pg)) {
		pg->api->message(report, "%s (details withheld: the password is too short to "
		                 "mask in them)", what);
		return;
	}
	pg_one_line(detail != NULL ? detail : "", line, sizeof(line));
	pg_scrub(pg->password, line, sizeof(line));
	if (line[0] == '\0')
		pg->api->message(report, "%s", what);
	else
		pg->api->message(report, "%s: %s", what, line);
}

/* Names a failed connection attempt from libpq's error text. */
static const char *
pg_classify(const char *text)
{
	for (size_t i = 0; i < sizeof(pg_connect_errors) / sizeof(pg_connect_errors[0]); i++)
		if (strstr(text, pg_connect_errors[i].needle) != NULL)
			return pg_connect_errors[i].what;
	return "connection failed";
}

/*
 * Server notices (for instance the FATAL a server sends an idle connection
 * when it shuts down) go to the host's log instead of libpq's stderr.
 */
static void
pg_notice(void *arg, const char *message)
{
	struct pg_check *pg = arg;
	char line[PG_MESSAGE_SIZE];

	if (!pg_can_scrub(pg)) {
		pg->api->log(pg->host, HEALTHD_LOG_INFO, "check %s: the server sent a notice "
		             "(withheld: the password is too short to mask in it)", pg->name);
		return;
	}
	pg_one_line(message, line, sizeof(line));
	pg_scrub(pg->password, line, sizeof(line));
	pg->api->log(pg->host, HEALTHD_LOG_INFO, "check %s: server says: %s", pg->name, line);
}

/*
 * A URI whose password holds a raw '@' or '/' is split by libpq in the wrong
 * place: the rest of the password becomes the host (or the port), which
 * then appears in error messages where no scrub can know it. Refused, with
 * what to do.
 */
static const char *
pg_uri_userinfo_error(const char *conninfo)
{
	const char *s, *end, *at = NULL;

	if (strncmp(conninfo, "postgresql://", 13) == 0)
		s = conninfo + 13;
	else if (strncmp(conninfo, "postgres://", 11) == 0)
		s = conninfo + 11;
	else
		return NULL;
	end = s + strcspn(s, "?#");
	for (const char *p = s; p < end; p++) {
		if (*p != '@')
			continue;
		if (at != NULL)
			return "the URI holds more than one '@' before its query: write an '@' in the "
			       "user name or password as %40";
		at = p;
	}
	if (at != NULL && memchr(s, '/', (size_t)(at - s)) != NULL)
		return "the URI's user name or password holds a '/': write it as %2F";
	return NULL;
}

/* ---- waiting and cancelling ------------------------------------------------ */

/*
 * Waits until fd is ready for `events`, the deadline passes or the host
 * cancels the run: the host's wait_fd (ABI 1.2), which polls in slices.
 * Returns the poll() revents (> 0), 0 when time is up, -1 on error.
 */
static int
pg_wait(const struct healthd_host_api *api, struct healthd_report *report, int fd, short events)
{
	/* POLLERR, POLLHUP included in what it returns: libpq tells what happened */
	return api->wait_fd(report, fd, events);
}

/*
 * A cancel thread may outlive every check and unload(): keep this object (and
 * so libpq) mapped after the host's dlclose() rather than pull code out from
 * under it.
 */
static void
pg_pin_self(void)
{
	Dl_info info;

	if (dladdr(&pg_pin_anchor, &info) != 0 && info.dli_fname != NULL &&
	    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL)
		pg_pinned = true; /* the handle is kept on purpose, never closed */
}

/* Owns the PGcancel; PQcancel blocks until the server has read the request. */
static void *
pg_cancel_main(void *arg)
{
	PGcancel *cancel = arg;
	char errbuf[256];

	(void)PQcancel(cancel, errbuf, (int)sizeof(errbuf)); /* best effort */
	PQfreeCancel(cancel);
	pthread_mutex_lock(&pg_cancel_lock);
	pg_cancels_running--;
	pthread_mutex_unlock(&pg_cancel_lock);
	return NULL;
}

/* Asks the server to cancel pg->conn's running query without waiting for it. */
static void
pg_cancel_in_background(struct pg_check *pg)
{
	PGcancel *cancel = NULL;
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all, old;
	int rc;

	pthread_mutex_lock(&pg_cancel_lock);
	if (pg_cancels_running >= PG_CANCELS_MAX) {
		pthread_mutex_unlock(&pg_cancel_lock);
		pg->api->log(pg->host, HEALTHD_LOG_DEBUG, "check %s: %d cancel requests still "
		             "waiting for a server; dropping the query without one", pg->name,
		             PG_CANCELS_MAX);
		return;
	}
	pg_cancels_running++;
	pthread_mutex_unlock(&pg_cancel_lock);

	pthread_once(&pg_pin_once, pg_pin_self);
	if (!pg_pinned || (cancel = PQgetCancel(pg->conn)) == NULL)
		goto undo;
	if (pthread_attr_init(&attr) != 0)
		goto undo;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* The thread takes no signal meant for the host (and no SIGPIPE of its own). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&thread, &attr, pg_cancel_main, cancel);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		return;
undo:
	if (cancel != NULL)
		PQfreeCancel(cancel);
	pthread_mutex_lock(&pg_cancel_lock);
	pg_cancels_running--;
	pthread_mutex_unlock(&pg_cancel_lock);
}

/* Closes the kept connection, first cancelling its running query if asked. */
static void
pg_drop(struct pg_check *pg, bool cancel)
{
	if (pg->conn == NULL)
		return;
	if (cancel && PQstatus(pg->conn) == CONNECTION_OK)
		pg_cancel_in_background(pg);
	PQfinish(pg->conn); /* non-blocking by now: the Terminate message is not waited for */
	pg->conn = NULL;
}

/*
 * Whether the kept connection still looks usable: reads whatever the server
 * sent while we were idle (a FATAL at shutdown, end of file), without waiting.
 */
static bool
pg_still_alive(struct pg_check *pg)
{
	struct pollfd pfd = {.fd = PQsocket(pg->conn), .events = POLLIN};

	/* Bounded: a server that keeps talking is found out by the query instead. */
	for (int i = 0; i < 4; i++) {
		if (PQstatus(pg->conn) != CONNECTION_OK || pfd.fd < 0)
			return false;
		if (poll(&pfd, 1, 0) <= 0)
			break;
		if (PQconsumeInput(pg->conn) == 0)
			return false;
	}
	return PQstatus(pg->conn) == CONNECTION_OK;
}

/* ---- run ------------------------------------------------------------------- */

static enum pg_outcome
pg_connect(struct pg_check *pg, struct healthd_report *report)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING; /* as libpq's docs say to start */
	int ready;

	pg->conn = PQconnectStartParams((const char *const *)pg->keys,
	                                (const char *const *)pg->values, 0);
	if (pg->conn == NULL) {
		pg->api->message(report, "connection failed: out of memory");
		return PG_FAILED;
	}
	PQsetNoticeProcessor(pg->conn, pg_notice, pg);
	if (PQstatus(pg->conn) == CONNECTION_BAD)
		st = PGRES_POLLING_FAILED;
	for (;;) {
		switch (st) {
		case PGRES_POLLING_OK:
			if (PQsetnonblocking(pg->conn, 1) == -1) {
				pg_say(pg, report, "connection failed", PQerrorMessage(pg->conn));
				return PG_FAILED;
			}
			pg->api->log(pg->host, HEALTHD_LOG_INFO,
			             "check %s: connected (backend pid %d, server version %d)",
			             pg->name, PQbackendPID(pg->conn), PQserverVersion(pg->conn));
			return PG_DONE;
		case PGRES_POLLING_FAILED: {
			const char *text = PQerrorMessage(pg->conn);

			pg_say(pg, report, pg_classify(text), text);
			return PG_FAILED;
		}
		case PGRES_POLLING_READING:
		case PGRES_POLLING_WRITING:
		default:
			ready = pg_wait(pg->api, report, PQsocket(pg->conn),
			                st == PGRES_POLLING_READING ? POLLIN : POLLOUT);
			if (ready == 0)
				return PG_TIMEOUT;
			if (ready == -1) {
				pg->api->message(report, "connection failed: poll: %s", strerror(errno));
				return PG_FAILED;
			}
			break;
		}
		st = PQconnectPoll(pg->conn);
	}
}

static enum pg_outcome
pg_query(struct pg_check *pg, struct healthd_report *report)
{
	enum pg_outcome outcome = PG_DONE;
	bool seen = false;
	PGresult *res;
	int fd = PQsocket(pg->conn), flushed, ready;

	if (PQsendQuery(pg->conn, PG_QUERY) == 0)
		goto lost;
	/* Send it all, reading meanwhile so that a talkative server cannot stall us. */
	while ((flushed = PQflush(pg->conn)) == 1) {
		ready = pg_wait(pg->api, report, fd, POLLIN | POLLOUT);
		if (ready == 0)
			return PG_TIMEOUT;
		if (ready == -1)
			goto poll_failed;
		if ((ready & (POLLIN | POLLERR | POLLHUP)) && PQconsumeInput(pg->conn) == 0)
			goto lost;
	}
	if (flushed == -1)
		goto lost;
	/* Every result up to the end; only the first is judged. */
	for (;;) {
		while (PQisBusy(pg->conn)) {
			ready = pg_wait(pg->api, report, fd, POLLIN);
			if (ready == 0)
				return PG_TIMEOUT;
			if (ready == -1)
				goto poll_failed;
			if (PQconsumeInput(pg->conn) == 0)
				goto lost;
		}
		res = PQgetResult(pg->conn);
		if (res == NULL)
			break;
		if (!seen) {
			seen = true;
			if (PQresultStatus(res) != PGRES_TUPLES_OK) {
				pg_say(pg, report, PQstatus(pg->conn) == CONNECTION_OK ? "query failed"
				                                                       : "connection lost",
				       PQresultErrorMessage(res));
				outcome = PQstatus(pg->conn) == CONNECTION_OK ? PG_FAILED : PG_LOST;
			} else if (PQntuples(res) != 1 || PQnfields(res) != 1) {
				pg->api->message(report, "unexpected result: %s returned %d rows of "
				                 "%d columns, expected 1 row of 1", PG_QUERY,
				                 PQntuples(res), PQnfields(res));
				outcome = PG_FAILED;
			} else if (PQgetisnull(res, 0, 0) || strcmp(PQgetvalue(res, 0, 0), "1") != 0) {
				pg->api->message(report, "unexpected result: %s returned \"%.32s\", "
				                 "expected \"1\"", PG_QUERY,
				                 PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0));
				outcome = PG_FAILED;
			}
		}
		PQclear(res);
	}
	if (!seen) {
		pg->api->message(report, "unexpected result: %s returned nothing", PG_QUERY);
		return PG_FAILED;
	}
	return outcome;
lost:
	pg_say(pg, report, "connection lost", PQerrorMessage(pg->conn));
	return PG_LOST;
poll_failed:
	pg->api->message(report, "query failed: poll: %s", strerror(errno));
	return PG_FAILED;
}

static enum healthd_status
pg_run(void *state, struct healthd_report *report)
{
	struct pg_check *pg = state;
	const struct healthd_host_api *api = pg->api;
	int64_t started = api->now_ms();
	enum pg_outcome outcome = PG_FAILED;
	struct pg_sigpipe sp;
	bool fresh = false;

	pg_sigpipe_block(&sp);
	if (pg->conn != NULL && !pg_still_alive(pg)) {
		api->log(pg->host, HEALTHD_LOG_INFO, "check %s: kept connection is gone; "
		         "connecting again", pg->name);
		pg_drop(pg, false);
	}
	/* At most two tries: a second only when a kept connection died under the first. */
	for (int attempt = 0; attempt < 2; attempt++) {
		fresh = pg->conn == NULL;
		if (fresh && (outcome = pg_connect(pg, report)) != PG_DONE)
			break;
		outcome = pg_query(pg, report);
		if (outcome != PG_LOST || fresh)
			break;
		api->log(pg->host, HEALTHD_LOG_INFO, "check %s: kept connection broke; "
		         "connecting again", pg->name);
		pg_drop(pg, false);
	}
	if (outcome == PG_TIMEOUT) {
		api->message(report, "timeout after %lld ms", (long long)api->timeout_ms(report));
		api->timed_out(report);
	}
	else if (outcome == PG_DONE)
		api->message(report, "%s returned 1 in %lld ms (%s connection)", PG_QUERY,
		             (long long)(api->now_ms() - started), fresh ? "new" : "kept");
	if (outcome != PG_DONE)
		pg_drop(pg, outcome == PG_TIMEOUT);
	pg_sigpipe_restore(&sp);
	return outcome == PG_DONE ? HEALTHD_OK : HEALTHD_CRITICAL;
}

/* ---- lifecycle ------------------------------------------------------------- */

static void
pg_destroy(void *state)
{
	struct pg_check *pg = state;
	struct pg_sigpipe sp;

	if (pg == NULL)
		return;
	pg_sigpipe_block(&sp);
	pg_drop(pg, false);
	pg_sigpipe_restore(&sp);
	for (size_t i = 0; pg->keys != NULL && pg->keys[i] != NULL; i++) {
		free(pg->keys[i]);
		free(pg->values[i]);
	}
	free(pg->keys);
	free(pg->values);
	free(pg->name);
	free(pg);
}

static int
pg_instantiate(struct healthd_host *host, const struct healthd_host_api *api,
               const char *check_name, const struct healthd_options *options, char *err,
               size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;
	PQconninfoOption *parsed, *o;
	struct pg_check *pg;
	const char *conninfo;
	char *perr = NULL;
	bool has_app_name = false;
	size_t n = 0;

	conninfo = api->option(options, "conninfo");
	if (conninfo == NULL) {
		snprintf(err, errlen, "conninfo: missing; a libpq connection string or URI, "
		         "e.g. \"host=/run/postgresql dbname=app\"");
		return -1;
	}
	if (pg_uri_userinfo_error(conninfo) != NULL) {
		snprintf(err, errlen, "conninfo: %s", pg_uri_userinfo_error(conninfo));
		return -1;
	}
	parsed = PQconninfoParse(conninfo, &perr);
	if (parsed == NULL) {
		char line[PG_MESSAGE_SIZE], safe[PG_MESSAGE_SIZE];

		if (perr == NULL) {
			snprintf(err, errlen, "conninfo: out of memory");
			return -1;
		}
		pg_one_line(perr, line, sizeof(line));
		PQfreemem(perr);
		/* Its quotes may hold the password, and no password is known to scrub. */
		pg_redact_quoted(line, safe, sizeof(safe));
		snprintf(err, errlen, "conninfo: not a valid libpq connection string or URI: %s",
		         safe);
		return -1;
	}

	pg = calloc(1, sizeof(*pg));
	if (pg == NULL)
		goto oom;
	pg->api = api;
	pg->host = host;
	for (o = parsed; o->keyword != NULL; o++)
		n++;
	/* Every keyword, plus our fallback_application_name, plus the terminator. */
	pg->keys = calloc(n + 2, sizeof(*pg->keys));
	pg->values = calloc(n + 2, sizeof(*pg->values));
	pg->name = strdup(check_name);
	if (pg->keys == NULL || pg->values == NULL || pg->name == NULL)
		goto oom;
	n = 0;
	for (o = parsed; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "fallback_application_name") == 0 ||
		    strcmp(o->keyword, "application_name") == 0)
			has_app_name = true;
		pg->keys[n] = strdup(o->keyword);
		pg->values[n] = strdup(o->val);
		if (pg->keys[n] == NULL || pg->values[n] == NULL) {
			free(pg->keys[n]);
			free(pg->values[n]);
			pg->keys[n] = NULL;
			goto oom;
		}
		if (strcmp(o->keyword, "password") == 0)
			pg->password = pg->values[n];
		n++;
	}
	if (!has_app_name) {
		pg->keys[n] = strdup("fallback_application_name");
		pg->values[n] = strdup(PG_APPLICATION_NAME);
		if (pg->keys[n] == NULL || pg->values[n] == NULL) {
			free(pg->keys[n]);
			free(pg->values[n]);
			pg->keys[n] = NULL;
			goto oom;
		}
	}
	PQconninfoFree(parsed);
	parsed = NULL;

	check.name = check_name;
	check.run = pg_run;
	check.destroy = pg_destroy;
	check.state = pg;
	if (api->register_check(host, &check, err, errlen) == -1) {
		pg_destroy(pg);
		return -1;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	pg_destroy(pg);
	PQconninfoFree(parsed);
	return -1;
}

HEALTHD_PLUGIN(.name = "postgres",
               .version = "1.0",
               .description = "PostgreSQL answers SELECT 1 (libpq, one kept connection)",
               .instantiate = pg_instantiate);
