/*
 * notify.c - the sd_notify(3) protocol, written out rather than taken from
 * libsystemd: it is one sendto() of a few text lines to the AF_UNIX datagram
 * socket named in $NOTIFY_SOCKET (a path, or '@' for an abstract name), a
 * protocol systemd documents as stable (sd_notify(3), "Notes"). libsystemd
 * would add a shared library and its dependency tree to a daemon that needs
 * none of the rest of it.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "notify.h"

/* How often STATUS= is brought up to date (at most; only a change is sent). */
#define NOTIFY_STATUS_MS 1000

struct notify {
	int fd;
	struct sockaddr_un addr;
	socklen_t addrlen;
	struct runner *runner;
	int64_t watchdog_ms;      /* 0: no watchdog; else half of WATCHDOG_USEC */
	bool send_failed;         /* logged once */
	char status[256];         /* the last STATUS= sent */
	char loading[160];        /* under lock: isolated plugins still loading, or "" */

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* CLOCK_MONOTONIC; signalled to stop */
	bool stop;                /* under lock */
};

static int notify_send(struct notify *n, const char *msg);
static void notify_format_status(struct notify *n, char *buf, size_t len);
static void *notify_main(void *arg);
static int64_t notify_watchdog_ms(void);

/* Sends one datagram; -1 (logged once) if it could not be sent. */
static int
notify_send(struct notify *n, const char *msg)
{
	if (sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&n->addr,
	           n->addrlen) >= 0)
		return 0;
	if (!n->send_failed)
		log_warn("NOTIFY_SOCKET: cannot notify the service manager: %s", strerror(errno));
	n->send_failed = true;
	return -1;
}

/* "N checks, M failing", after what still loads: failing is a last result
 * of CRITICAL or UNKNOWN (timeouts included); a check that never ran is not. */
static void
notify_format_status(struct notify *n, char *buf, size_t len)
{
	size_t count, failing;
	char loading[sizeof(n->loading)];

	pthread_mutex_lock(&n->lock);
	memcpy(loading, n->loading, sizeof(loading));
	pthread_mutex_unlock(&n->lock);
	runner_summary(n->runner, &count, &failing); /* the newest checks, across reloads */
	/* "loading http, postgres; 2 checks, 2 failing" while they load */
	snprintf(buf, len, "%s%s%s%zu check%s, %zu failing", loading[0] ? "loading " : "", loading,
	         loading[0] ? "; " : "", count, count == 1 ? "" : "s", failing);
}

/* Half the manager's WATCHDOG_USEC (as sd_watchdog_enabled(3) advises), if
 * it is meant for this process; 0 if there is no watchdog. */
static int64_t
notify_watchdog_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (usec == NULL || usec[0] == '\0')
		return 0;
	if (pid != NULL && pid[0] != '\0') {
		errno = 0;
		v = strtoull(pid, &end, 10);
		if (errno != 0 || *end != '\0' || v != (unsigned long long)getpid())
			return 0;
	}
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0) {
		log_warn("WATCHDOG_USEC: \"%s\" is not a number of microseconds; no watchdog", usec);
		return 0;
	}
	v /= 2000; /* half, in ms */
	return v == 0 ? 1 : (int64_t)(v > 86400000ULL ? 86400000ULL : v);
}

/*
 * Keeps STATUS= current and, with a watchdog, proves liveness: WATCHDOG=1
 * goes out only after the status was read from the runner, so a runner whose
 * lock is stuck stops the pings and the manager restarts healthd.
 */
static void *
notify_main(void *arg)
{
	struct notify *n = arg;
	int64_t tick = NOTIFY_STATUS_MS, last_ping = clock_ms();
	char status[sizeof(n->status)], msg[sizeof(n->status) + 32];
	struct timespec until;

	if (n->watchdog_ms > 0 && n->watchdog_ms < tick)
		tick = n->watchdog_ms;
	pthread_mutex_lock(&n->lock);
	while (!n->stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += tick / 1000;
		until.tv_nsec += (tick % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!n->stop && pthread_cond_timedwait(&n->cond, &n->lock, &until) != ETIMEDOUT)
			;
		if (n->stop)
			break;
		pthread_mutex_unlock(&n->lock);

		notify_format_status(n, status, sizeof(status));
		msg[0] = '\0';
		if (n->watchdog_ms > 0 && clock_ms() - last_ping >= n->watchdog_ms - tick / 4) {
			strcat(msg, "WATCHDOG=1\n");
			last_ping = clock_ms();
		}
		if (strcmp(status, n->status) != 0) {
			snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "STATUS=%s\n", status);
			memcpy(n->status, status, sizeof(status));
		}
		if (msg[0] != '\0')
			notify_send(n, msg);

		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

struct notify *
notify_ready(struct runner *runner, const char *loading)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct notify *n;
	pthread_condattr_t ca;
	char msg[sizeof(n->status) + 32];
	size_t len;

	if (path == NULL || path[0] == '\0')
		return NULL;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(n->addr.sun_path)) {
		log_warn("NOTIFY_SOCKET: \"%s\" is not a socket path or @abstract name; "
		         "the service manager is not notified", path);
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL) {
		log_err("out of memory");
		return NULL;
	}
	n->runner = runner;
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = '\0'; /* abstract: the length, not a NUL, ends it */
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	n->watchdog_ms = notify_watchdog_ms();
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd == -1) {
		log_warn("NOTIFY_SOCKET: socket: %s; the service manager is not notified",
		         strerror(errno));
		free(n);
		return NULL;
	}

	pthread_mutex_init(&n->lock, NULL);
	snprintf(n->loading, sizeof(n->loading), "%s", loading != NULL ? loading : "");
	notify_format_status(n, n->status, sizeof(n->status));
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s\n", n->status);
	notify_send(n, msg);

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&n->thread, NULL, notify_main, n) != 0)
		log_warn("NOTIFY_SOCKET: cannot start the notify thread; STATUS= stays as it is "
		         "and there is no WATCHDOG=1");
	else
		n->thread_started = true;
	return n;
}

void
notify_loading(struct notify *n, const char *loading)
{
	char msg[sizeof(n->status) + 16];

	if (n == NULL)
		return;
	pthread_mutex_lock(&n->lock);
	snprintf(n->loading, sizeof(n->loading), "%s", loading != NULL ? loading : "");
	pthread_mutex_unlock(&n->lock);
	/* at once, not at the next tick: a unit waits on it */
	memcpy(msg, "STATUS=", 8);
	notify_format_status(n, msg + 7, sizeof(msg) - 8);
	strcat(msg, "\n");
	notify_send(n, msg);
}

void
notify_stopping(struct notify *n)
{
	if (n == NULL)
		return;
	if (n->thread_started) {
		pthread_mutex_lock(&n->lock);
		n->stop = true;
		pthread_cond_signal(&n->cond);
		pthread_mutex_unlock(&n->lock);
		pthread_join(n->thread, NULL);
	}
	notify_send(n, "STOPPING=1\nSTATUS=shutting down\n");
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
	close(n->fd);
	free(n);
}

void
notify_reloading(struct notify *n)
{
	struct timespec ts;
	char msg[96];

	if (n == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading\n",
	         (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	notify_send(n, msg);
}

void
notify_reloaded(struct notify *n)
{
	char status[sizeof(n->status)], msg[sizeof(n->status) + 32];

	if (n == NULL)
		return;
	/* a local copy: n->status is the notify thread's */
	notify_format_status(n, status, sizeof(status));
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s\n", status);
	notify_send(n, msg);
}
