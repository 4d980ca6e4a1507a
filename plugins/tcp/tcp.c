/*
 * tcp - checks that a TCP port accepts connections and, optionally, that it
 * answers a request with the expected bytes, as check_tcp does.
 *
 * Configured instances only:
 *
 *     {"name": "redis", "plugin": "tcp", "host": "127.0.0.1", "port": 6379,
 *      "send": "PING\r\n", "expect": "+PONG"}
 *
 * host:   required; an IP address, or a name (see below)
 * port:   required; 1..65535
 * send:   bytes to send once connected (JSON escapes such as \r\n give the
 *         control characters a protocol needs)
 * expect: must occur in the first bytes received: up to 4 KiB, or until the
 *         server closes the connection
 *
 * Connect, send and receive are non-blocking and bounded by the deadline,
 * waiting with the host's wait_fd() (ABI 1.2: poll() slices that look at
 * cancelled(); the host's grace past the deadline lets the run's own timeout
 * message be heard). Every address a name resolves to is tried
 * in turn until one connects. An IP address is used as it is; a name is
 * looked up (getaddrinfo) on a thread of its own, which the run waits for
 * only until its deadline: a lookup that takes longer is left to finish and
 * its answer is used by the check's next run, so a dead DNS server costs one
 * thread per check, not one per run.
 *
 * Values: connect_time (seconds), and response_time (seconds, connect to the
 * expected answer) when send or expect is set.
 */
#include <dlfcn.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <healthd/plugin.h>

#define TCP_RECV_MAX        4096 /* bytes searched for `expect` */
#define TCP_SHOW_MAX        48   /* bytes of an answer quoted in a message */
#define TCP_SLICE_MS        50   /* how often a wait looks at cancelled() */
#define TCP_HOST_MAX        253

/*
 * One name lookup on a thread of its own. Two owners: the thread, and the
 * check that waits for it (or keeps it for its next run); whichever lets go
 * last frees it. Everything below `lock` is guarded by it.
 */
struct tcp_lookup {
	pthread_mutex_t lock;
	pthread_cond_t done_cv;
	int refs;
	bool done;
	int rc, err;              /* getaddrinfo's result, errno for EAI_SYSTEM */
	struct addrinfo *res;     /* owned until taken */
	char host[TCP_HOST_MAX + 1];
	char port[8];
};

static const char tcp_pin_anchor; /* an address inside this object, for dladdr() */
static bool tcp_pinned;           /* written once under pthread_once */
static pthread_once_t tcp_pin_once = PTHREAD_ONCE_INIT;

/*
 * One configured check. Created by instantiate() on the main thread; after
 * that only run() (never twice at once for the same check) and destroy()
 * touch it, so it needs no lock.
 */
struct tcp_check {
	const struct healthd_host_api *api;
	struct tcp_lookup *lookup; /* a lookup still running, from an earlier run */
	char *host;
	char port[8];
	char *send;       /* NULL: nothing sent */
	size_t send_len;
	char *expect;     /* NULL: no answer awaited */
	size_t expect_len;
	char buf[TCP_RECV_MAX]; /* per run */
};

/* ---- name lookups ------------------------------------------------------------ */

/* A lookup thread runs code of this object after the host may have dlclosed
 * it: keep the object mapped for the life of the process. */
static void
tcp_pin_self(void)
{
	Dl_info info;

	if (dladdr(&tcp_pin_anchor, &info) != 0 && info.dli_fname != NULL &&
	    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL)
		tcp_pinned = true; /* the handle is kept on purpose, never closed */
}

static void
tcp_lookup_release(struct tcp_lookup *l)
{
	bool last;

	pthread_mutex_lock(&l->lock);
	last = --l->refs == 0;
	pthread_mutex_unlock(&l->lock);
	if (!last)
		return;
	if (l->res != NULL)
		freeaddrinfo(l->res);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->done_cv);
	free(l);
}

static void *
tcp_lookup_main(void *arg)
{
	struct tcp_lookup *l = arg;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int rc, err;

	rc = getaddrinfo(l->host, l->port, &hints, &res);
	err = errno;
	pthread_mutex_lock(&l->lock);
	l->rc = rc;
	l->err = err;
	l->res = res;
	l->done = true;
	pthread_cond_signal(&l->done_cv);
	pthread_mutex_unlock(&l->lock);
	tcp_lookup_release(l);
	return NULL;
}

/* Starts looking up t's host on a detached thread; NULL if it cannot. */
static struct tcp_lookup *
tcp_lookup_start(const struct tcp_check *t)
{
	pthread_condattr_t ca;
	pthread_attr_t attr;
	struct tcp_lookup *l;
	pthread_t thread;
	int rc;

	pthread_once(&tcp_pin_once, tcp_pin_self);
	if (!tcp_pinned || (l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	snprintf(l->host, sizeof(l->host), "%s", t->host);
	snprintf(l->port, sizeof(l->port), "%s", t->port);
	l->refs = 2; /* the check and the thread */
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the clock of now_ms() */
	pthread_cond_init(&l->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&thread, &attr, tcp_lookup_main, l);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		l->refs = 1;
		tcp_lookup_release(l);
		return NULL;
	}
	return l;
}

/*
 * Resolves t's host by `until`. Returns 0 with *res set, a getaddrinfo error
 * (errno set for EAI_SYSTEM), or EAI_AGAIN with errno ETIMEDOUT when the
 * deadline or a cancellation came first; the lookup then goes on for the next run.
 */
static int
tcp_resolve(struct tcp_check *t, const struct healthd_report *report, int64_t until,
            struct addrinfo **res)
{
	const struct healthd_host_api *api = t->api;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	struct in6_addr addr;
	struct tcp_lookup *l;
	int64_t left, wake;
	int rc, err;

	/* an address needs no lookup: AI_NUMERICHOST never blocks */
	if (inet_pton(AF_INET, t->host, &addr) == 1 || inet_pton(AF_INET6, t->host, &addr) == 1)
		return getaddrinfo(t->host, t->port, &hints, res);
	if (t->lookup == NULL && (t->lookup = tcp_lookup_start(t)) == NULL) {
		errno = EAGAIN;
		return EAI_SYSTEM;
	}
	l = t->lookup;
	pthread_mutex_lock(&l->lock);
	while (!l->done) {
		left = until - api->now_ms();
		if (left <= 0 || api->cancelled(report))
			break;
		wake = api->now_ms() + (left < TCP_SLICE_MS ? left : TCP_SLICE_MS);
		struct timespec ts = {.tv_sec = wake / 1000, .tv_nsec = (wake % 1000) * 1000000L};
		pthread_cond_timedwait(&l->done_cv, &l->lock, &ts);
	}
	if (!l->done) {
		pthread_mutex_unlock(&l->lock);
		errno = ETIMEDOUT;
		return EAI_AGAIN;
	}
	rc = l->rc;
	err = l->err;
	*res = l->res;
	l->res = NULL; /* taken */
	pthread_mutex_unlock(&l->lock);
	tcp_lookup_release(l);
	t->lookup = NULL;
	errno = err;
	return rc;
}

/* ---- connect, send, receive ------------------------------------------------ */

/* Waits for events on fd. Returns 0 when ready, or -1 with errno (ETIMEDOUT
 * when the deadline passed or the host cancelled the run). */
static int
tcp_wait(const struct healthd_host_api *api, struct healthd_report *report, int fd,
         short events)
{
	int rc = api->wait_fd(report, fd, events);

	if (rc == 0)
		errno = ETIMEDOUT;
	return rc > 0 ? 0 : -1;
}

/*
 * Connects to one address. Returns the socket, or -1 with errno set
 * (ETIMEDOUT when the deadline came first).
 */
static int
tcp_connect(const struct healthd_host_api *api, struct healthd_report *report,
            const struct addrinfo *ai)
{
	socklen_t len = sizeof(int);
	int fd, soerr = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            ai->ai_protocol);
	if (fd == -1)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	if (tcp_wait(api, report, fd, POLLOUT) == -1)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		goto fail;
	if (soerr != 0) {
		errno = soerr;
		goto fail;
	}
	return fd;
fail:
	soerr = errno;
	close(fd);
	errno = soerr;
	return -1;
}

/* Sends all of data. Returns 0, or -1 with errno (ETIMEDOUT when the deadline
 * came first). */
static int
tcp_send_all(const struct healthd_host_api *api, struct healthd_report *report, int fd,
             const char *data, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN)
			return -1;
		if (tcp_wait(api, report, fd, POLLOUT) == -1)
			return -1;
	}
	return 0;
}

/*
 * Receives into t->buf until it holds t->expect, is full, or the server
 * closes. Returns the bytes received, or -1 with errno (ETIMEDOUT when the
 * deadline came first; what arrived so far is still in t->buf, its length in *got).
 */
static ssize_t
tcp_receive(struct tcp_check *t, struct healthd_report *report, int fd, size_t *got)
{
	ssize_t n;

	*got = 0;
	while (*got < sizeof(t->buf)) {
		if (memmem(t->buf, *got, t->expect, t->expect_len) != NULL)
			break;
		n = recv(fd, t->buf + *got, sizeof(t->buf) - *got, 0);
		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		if (n == 0)
			break; /* closed */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -1;
		if (tcp_wait(t->api, report, fd, POLLIN) == -1)
			return -1;
	}
	return (ssize_t)*got;
}

/* Bytes as a quoted, printable snippet: "-NOAUTH Auth…", escapes for the rest. */
static void
tcp_quote(const char *data, size_t len, char *out, size_t outlen)
{
	size_t o = 0, i;

	out[o++] = '"';
	for (i = 0; i < len && i < TCP_SHOW_MAX && o + 8 < outlen; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c == '\r' || c == '\n' || c == '\t')
			o += (size_t)snprintf(out + o, outlen - o, "\\%c",
			                      c == '\r' ? 'r' : c == '\n' ? 'n' : 't');
		else if (c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, outlen - o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (i < len)
		o += (size_t)snprintf(out + o, outlen - o, "\xe2\x80\xa6"); /* … */
	snprintf(out + o, outlen - o, "\"");
}

static void
tcp_failed(const struct healthd_host_api *api, struct healthd_report *report, int err,
           const char *doing)
{
	if (err == ETIMEDOUT) {
		api->message(report, "timeout after %lld ms", (long long)api->timeout_ms(report));
		api->timed_out(report);
	} else if (err == ECONNREFUSED) {
		api->message(report, "connection refused");
	} else {
		api->message(report, "%s: %s", doing, strerror(err));
	}
}

static enum healthd_status
tcp_run(void *state, struct healthd_report *report)
{
	struct tcp_check *t = state;
	const struct healthd_host_api *api = t->api;
	struct addrinfo *res = NULL, *ai;
	char shown[TCP_SHOW_MAX * 4 + 16], want[TCP_SHOW_MAX * 4 + 16];
	int64_t start, until, connected;
	int fd = -1, rc, err = 0;
	size_t got = 0;

	start = api->now_ms();
	until = api->deadline_ms(report); /* the lookup's bound; waits use wait_fd */
	rc = tcp_resolve(t, report, until, &res);
	if (rc == EAI_AGAIN && errno == ETIMEDOUT) {
		tcp_failed(api, report, ETIMEDOUT, "cannot resolve");
		return HEALTHD_CRITICAL;
	}
	if (rc != 0) {
		api->message(report, "cannot resolve %s: %s", t->host,
		             rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return HEALTHD_CRITICAL;
	}
	for (ai = res; ai != NULL && fd == -1; ai = ai->ai_next) {
		fd = tcp_connect(api, report, ai);
		if (fd == -1)
			err = errno;
		if (err == ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		tcp_failed(api, report, err, "cannot connect");
		return HEALTHD_CRITICAL;
	}
	connected = api->now_ms();
	api->value(report, "connect_time", (double)(connected - start) / 1000.0, "s");
	if (t->send != NULL && tcp_send_all(api, report, fd, t->send, t->send_len) == -1) {
		err = errno;
		close(fd);
		tcp_failed(api, report, err, "cannot send");
		return HEALTHD_CRITICAL;
	}
	if (t->expect == NULL) {
		close(fd);
		if (t->send != NULL)
			api->value(report, "response_time", (double)(api->now_ms() - start) / 1000.0,
			           "s");
		api->message(report, "connected to %s port %s in %lld ms", t->host, t->port,
		             (long long)(connected - start));
		return HEALTHD_OK;
	}
	if (tcp_receive(t, report, fd, &got) == -1) {
		err = errno;
		close(fd);
		tcp_failed(api, report, err, "cannot receive");
		return HEALTHD_CRITICAL;
	}
	close(fd);
	api->value(report, "response_time", (double)(api->now_ms() - start) / 1000.0, "s");
	tcp_quote(t->expect, t->expect_len, want, sizeof(want));
	if (memmem(t->buf, got, t->expect, t->expect_len) == NULL) {
		if (got == 0) {
			api->message(report, "expected %s, got nothing (connection closed)", want);
		} else {
			tcp_quote(t->buf, got, shown, sizeof(shown));
			api->message(report, "expected %s, got %s", want, shown);
		}
		return HEALTHD_CRITICAL;
	}
	api->message(report, "connected to %s port %s in %lld ms, got %s", t->host, t->port,
	             (long long)(connected - start), want);
	return HEALTHD_OK;
}

/* ---- instantiate ------------------------------------------------------------ */

static void
tcp_destroy(void *state)
{
	struct tcp_check *t = state;

	if (t == NULL)
		return;
	if (t->lookup != NULL) /* still running: its thread frees it */
		tcp_lookup_release(t->lookup);
	free(t->host);
	free(t->send);
	free(t->expect);
	free(t);
}

static int
tcp_instantiate(struct healthd_host *host, const struct healthd_host_api *api,
                const char *check_name, const struct healthd_options *options, char *err,
                size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;
	const char *h, *send, *expect;
	struct tcp_check *t;
	int64_t port;

	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t->api = api;
	h = api->option(options, "host");
	if (h == NULL || h[0] == '\0') {
		snprintf(err, errlen, "host: missing; an IP address or a name");
		goto fail;
	}
	if (strlen(h) > TCP_HOST_MAX || strpbrk(h, " \t\r\n/") != NULL) {
		snprintf(err, errlen, "host: \"%.80s\" is not an address or a host name", h);
		goto fail;
	}
	if (api->option(options, "port") == NULL) {
		snprintf(err, errlen, "port: missing; 1 to 65535");
		goto fail;
	}
	if (api->option_int(options, "port", 0, 1, 65535, &port) == -1)
		goto fail; /* the host names the key and the range */
	snprintf(t->port, sizeof(t->port), "%d", (int)port);
	send = api->option(options, "send");
	expect = api->option(options, "expect");
	if (expect != NULL && expect[0] == '\0') {
		snprintf(err, errlen, "expect: must not be empty");
		goto fail;
	}
	if (expect != NULL && strlen(expect) > TCP_RECV_MAX) {
		snprintf(err, errlen, "expect: longer than %d bytes", TCP_RECV_MAX);
		goto fail;
	}
	t->host = strdup(h);
	if (send != NULL && send[0] != '\0') {
		t->send = strdup(send);
		t->send_len = strlen(send);
	}
	if (expect != NULL) {
		t->expect = strdup(expect);
		t->expect_len = strlen(expect);
	}
	if (t->host == NULL || (send != NULL && send[0] != '\0' && t->send == NULL) ||
	    (expect != NULL && t->expect == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	check.name = check_name;
	check.run = tcp_run;
	check.destroy = tcp_destroy;
	check.state = t;
	if (api->register_check(host, &check, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	tcp_destroy(t);
	return -1;
}

HEALTHD_PLUGIN(.name = "tcp",
               .version = "1.0",
               .description = "TCP port accepts connections (and answers as expected)",
               .instantiate = tcp_instantiate);
