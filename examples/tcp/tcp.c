/* tcp - passes when a TCP service at `host`:`port` accepts a connection and,
 * if `expect` is set, answers (after `send`, if set) with a line starting with
 * `expect`: {"name": "redis", "plugin": "tcp", "host": "127.0.0.1",
 * "port": 6379, "send": "PING\r\n", "expect": "+PONG"}.
 *
 * The pattern every network check needs: a non-blocking socket, and a wait
 * for it that ends at the deadline or as soon as cancelled() turns true:
 * api->wait_fd() (ABI 1.2) is that wait. The host still listens
 * HEALTHD_DEADLINE_GRACE_MS past the deadline, so a run that stops there
 * keeps its own message. `host` is an address, never a name: getaddrinfo()
 * cannot be bounded by a deadline (an isolated plugin's stuck lookup is ended
 * with its executor; see healthd-plugin(7)). Built against the installed SDK
 * alone, see healthd-plugin(7). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h> /* POLLIN, POLLOUT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <healthd/plugin.h>

struct tcp {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char where[80];   /* "127.0.0.1:6379", for messages */
	char send[256];
	char expect[256];
};

static const struct healthd_host_api *api; /* valid until unload */

/*
 * Waits until fd is ready for `events`. Returns 1 when it is, 0 when the run
 * must stop (the deadline passed, or the host cancelled it), -1 on error.
 */
static int
wait_for(int fd, short events, struct healthd_report *report)
{
	int revents = api->wait_fd(report, fd, events);

	return revents > 0 ? 1 : revents;
}

static enum healthd_status
gave_up(struct healthd_report *report, const struct tcp *t, const char *what)
{
	api->message(report, "%s: no %s within %lld ms", t->where, what,
	             (long long)api->timeout_ms(report));
	api->timed_out(report); /* counted as a timeout, with this message kept */
	return HEALTHD_CRITICAL;
}

static enum healthd_status
tcp_run(void *state, struct healthd_report *report)
{
	const struct tcp *t = state;
	enum healthd_status st = HEALTHD_CRITICAL;
	int64_t started = api->now_ms();
	char buf[256];
	int fd, err = 0, w;
	socklen_t len = sizeof(err);
	ssize_t n;

	fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		api->message(report, "socket: %s", strerror(errno));
		return HEALTHD_UNKNOWN;
	}
	if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) == -1 &&
	    errno != EINPROGRESS) {
		api->message(report, "%s: %s", t->where, strerror(errno));
		goto out;
	}
	if ((w = wait_for(fd, POLLOUT, report)) <= 0) {
		st = w == 0 ? gave_up(report, t, "connection") : HEALTHD_CRITICAL;
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
		api->message(report, "%s: %s", t->where, strerror(err ? err : errno));
		goto out;
	}
	if (t->send[0] != '\0' && send(fd, t->send, strlen(t->send), MSG_NOSIGNAL) == -1) {
		api->message(report, "%s: send: %s", t->where, strerror(errno));
		goto out;
	}
	if (t->expect[0] != '\0') {
		if ((w = wait_for(fd, POLLIN, report)) <= 0) {
			st = w == 0 ? gave_up(report, t, "answer") : HEALTHD_CRITICAL;
			goto out;
		}
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		if (strncmp(buf, t->expect, strlen(t->expect)) != 0) {
			api->message(report, "%s: expected \"%s\", got \"%.64s\"", t->where, t->expect,
			             buf);
			goto out;
		}
	}
	api->message(report, "%s answered in %lld ms", t->where,
	             (long long)(api->now_ms() - started));
	st = HEALTHD_OK;
out:
	close(fd);
	return st;
}

static int
tcp_instantiate(struct healthd_host *host, const struct healthd_host_api *a, const char *name,
                const struct healthd_options *opts, char *err, size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST |
	                                                                  AI_NUMERICSERV};
	const char *ip = a->option(opts, "host");
	const char *snd = a->option(opts, "send"), *expect = a->option(opts, "expect");
	struct addrinfo *res;
	struct tcp *t;
	int64_t port;
	char service[8];
	int rc;

	api = a;
	if (a->option_int(opts, "port", 0, 1, 65535, &port) == -1)
		return -1; /* the host names the option and the range */
	if (port == 0)
		return snprintf(err, errlen, "port: missing"), -1;
	if (ip == NULL)
		ip = "127.0.0.1";
	snprintf(service, sizeof(service), "%d", (int)port);
	/* AI_NUMERICHOST: an address only, resolved here without any lookup */
	if ((rc = getaddrinfo(ip, service, &hints, &res)) != 0)
		return snprintf(err, errlen, "host: \"%s\" is not an IP address (%s)", ip,
		                gai_strerror(rc)), -1;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		freeaddrinfo(res);
		return snprintf(err, errlen, "out of memory"), -1;
	}
	memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
	t->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(t->where, sizeof(t->where), strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, (int)port);
	snprintf(t->send, sizeof(t->send), "%s", snd ? snd : "");
	snprintf(t->expect, sizeof(t->expect), "%s", expect ? expect : "");
	check.name = name;
	check.run = tcp_run;
	check.destroy = free;
	check.state = t;
	if (a->register_check(host, &check, err, errlen) == 0)
		return 0;
	free(t); /* not registered: the state is still ours */
	return -1;
}

HEALTHD_PLUGIN(.name = "tcp", .version = "1.0",
               .description = "a TCP service accepts a connection (and answers)",
               .instantiate = tcp_instantiate);
