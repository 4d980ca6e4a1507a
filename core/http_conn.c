/* http_conn.c - the HTTP connection layer: listen, accept, admission, reclaim,
 * backpressure, time limits and one epoll loop per HTTP thread (libmicrohttpd). */
#include "http_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <linux/sockios.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "lock.h"
#include "log.h"
#include "tls.h"

#define MAX_LISTEN 64
#define MAX_THREADS 64 /* http_threads' upper bound in config.c */
#define ACCEPT_BATCH 32       /* accepts per wake-up, so one thread cannot starve its connections */
#define SWEEP_MS 100          /* how often a thread checks its connections' phase deadlines */
#define MHD_SLEEP_MAX 100     /* below this many connections a thread sleeps in libmicrohttpd */
#define CONTROL_MS 1          /* ...and, busy, looks at its listen sockets and events this often */
#define STALLED_MS 1000       /* at the limit, a header or body this old may be reclaimed */
#define ACCEPT_PAUSE_MS 100   /* out of descriptors: stop accepting for this long */
#define FULL_RETRY_MS 5       /* at max_connections: look at the backlog again this often */
#define DRAIN_MAX 64          /* connections reclaimed at once, as nginx drains its reusable ones */
#define DRAIN_GAP_MS 5        /* ...at most this often per thread */
#define DRAIN_TARGET_MS 400   /* ...enough for a connection in the backlog to wait about this long */
#define FD_RESERVE 256        /* descriptors beside the connections: executors, logs, plugins */
#define LISTEN_BACKLOG 65535  /* the waiting room at the limit; the kernel caps it at somaxconn */
#define TRIM_DROP 256         /* connections gone since the peak that make a burst's end */
#define TRIM_QUIET_MS 10000   /* ...once the count has stayed that low this long */
#define TRIM_THRESHOLD (256 << 20) /* main()'s M_TRIM_THRESHOLD, put back after a trim */
#define TRIM_PROBE 65536      /* a free() this large into an arena tries to shrink its top */
#define LINGER_MS 2000        /* a refused TLS client's socket is read and discarded this long at most */
#define LINGER_MAX 64         /* ...and so many at once, all threads (inside FD_RESERVE); past it, closed */
#define LINGER_READS 4        /* reads per wake-up, so that one flooding client cannot hold a thread */


/*
 * One open connection, from libmicrohttpd's STARTED to its CLOSED notice.
 * Owned by its HTTP thread, which alone changes the links (under t->lock,
 * so that a reclaiming thread can walk the list) and the phase
 * (atomics, read by reclaimers without the lock).
 */
struct hconn {
	struct hconn *prev, *next;
	struct http_thread *t;
	int fd;
	struct sockaddr_storage addr;   /* the client, for max_connections_per_ip */
	atomic_int phase;
	atomic_int_fast64_t since;      /* now_us() when the phase's time began */
	atomic_bool closing;            /* shut down: by the sweeper or a reclaim */
	atomic_bool served;             /* has had an answer: a keep-alive connection */
	struct tls_material *tls;       /* HTTPS: the set its session started with */
	bool linger;                    /* HTTPS: refused with an alert: a lingering close */
};

/* A socket closed by libmicrohttpd that this thread keeps open (a dup) for
 * a while, reading and discarding, so that its client can read the alert. */
struct lingering {
	int fd;
	int64_t until;                  /* clock_ms() at which it is closed; 0: a free slot */
};

/*
 * One HTTP thread: its own libmicrohttpd daemon (external epoll, no listen
 * socket) and the event loop around it, which accepts from its own listen
 * sockets and hands each connection to its daemon with MHD_add_connection.
 */
struct http_thread {
	struct http_conns *c;
	struct MHD_Daemon *d;
	pthread_t thread;
	bool running;
	int epfd;                       /* its listen sockets, wake_fd and stop_fd; itself in mhd_fd */
	int mhd_fd;                     /* libmicrohttpd's epoll set: the connections */
	int wake_fd;                    /* eventfd: a request resumed by a runner thread */
	atomic_bool woken;              /* wake_fd written since the thread last looked */
	unsigned nlive;                 /* its daemon's connections */
	unsigned activity;              /* request lines seen: did a wake-up serve anything */
	unsigned trim_gen;              /* the last of c->trim_gen it trimmed its arena for */
	int64_t control_at;             /* clock_ms() when epfd was last looked at */
	pthread_mutex_t lock;           /* the list's links, against reclaimers */
	struct hconn *head;
	int64_t next_sweep;
	bool listening;                 /* its listen sockets are in epfd */
	bool full;                      /* paused at max_connections: resumes once below it */
	int64_t last_drain;             /* clock_ms() of its last drain_for_backlog */
	int64_t accept_paused_until;    /* 0: accepting */
	struct lingering lingering[LINGER_MAX]; /* in epfd; its own thread only (or after it) */
	unsigned nlinger;               /* slots in use */
};

/* The layer: set up whole by http_conn_open before any thread runs; the
 * counters and the peak are shared by every thread. */
struct http_conns {
	const struct config *cfg;
	struct tls *tls;                /* NULL: plain HTTP */
	struct http_conn_callbacks cb;
	struct http_thread threads[MAX_THREADS];
	size_t nthreads;
	/* per address, one socket per thread (SO_REUSEPORT): the kernel spreads
	 * new connections evenly over the threads */
	int listen_fds[MAX_LISTEN][MAX_THREADS];
	size_t nlisten;
	int stop_fd;                    /* eventfd: written once, wakes every thread to exit */
	atomic_bool quiesced;
	atomic_int nconns;              /* open connections, all threads */
	atomic_int nending;             /* ...of which ended and about to close */
	atomic_int conn_peak;           /* most open at once since the last trim */
	int64_t trim_at;                /* thread 0 only: when to trim if it stays quiet; 0: not due */
	atomic_uint trim_gen;           /* bumped by thread 0 at a trim: each thread trims its arena */
	pthread_mutex_t admit_lock;     /* per-address check + add, when that limit is on */
	atomic_uint_fast64_t refused, reclaimed, timed_out;
	atomic_int nlinger;             /* lingering sockets, all threads: at most LINGER_MAX */
};

static void tls_refused(void *session_ptr);
static void linger_start(struct http_thread *t, int fd);
static bool linger_is(struct http_thread *t, void *ptr);
static void linger_read(struct http_thread *t, struct lingering *l);
static void linger_end(struct http_thread *t, struct lingering *l);
static void linger_sweep(struct http_thread *t, int64_t now);
static int watch(int epfd, int fd, uint32_t events, void *ptr);

/* Microseconds: fine enough to order connections answered in the same ms. */
static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
http_conn_set_phase(struct hconn *hc, enum conn_phase phase)
{
	if (hc == NULL)
		return;
	atomic_store_explicit(&hc->since, now_us(), memory_order_relaxed);
	atomic_store_explicit(&hc->phase, phase, memory_order_relaxed);
}

/* Wakes an HTTP thread from its epoll_wait: one write until the thread has
 * looked (a finished run resumes many of its requests at once). */
static void
wake(struct http_thread *t)
{
	uint64_t one = 1;

	if (atomic_exchange(&t->woken, true))
		return;
	if (write(t->wake_fd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("http: cannot wake an HTTP thread: %s", strerror(errno));
}

/*
 * Without its own thread libmicrohttpd has no wake-up channel (it drops
 * MHD_USE_ITC), so the thread is woken here; it runs the daemon, which picks
 * the resumed connection up.
 */
void
http_conn_resume(struct http_thread *t, struct MHD_Connection *conn)
{
	MHD_resume_connection(conn);
	wake(t);
}

struct http_thread *
http_conn_thread(struct http_conns *c, struct MHD_Connection *conn)
{
	struct MHD_Daemon *d = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON)->daemon;

	for (size_t i = 0; i < c->nthreads; i++)
		if (c->threads[i].d == d)
			return &c->threads[i];
	return &c->threads[0]; /* not reached: every daemon is a thread's */
}

size_t
http_conn_nthreads(const struct http_conns *c)
{
	return c->nthreads;
}

size_t
http_conn_thread_index(const struct http_thread *t)
{
	return (size_t)(t - t->c->threads);
}

struct hconn *
http_conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

void
http_conn_request_begins(struct hconn *hc)
{
	if (hc == NULL)
		return;
	hc->t->activity++; /* on hc's own thread, as every callback */
	/* the header's time keeps running from the connection's start or its
	 * previous answer: a request line does not restart it */
	if (atomic_load_explicit(&hc->phase, memory_order_relaxed) == PHASE_DRAIN)
		http_conn_set_phase(hc, PHASE_HEADER); /* the previous answer ends about now */
	else
		atomic_store_explicit(&hc->phase, PHASE_HEADER, memory_order_relaxed);
}

void
http_conn_request_ends(struct hconn *hc, bool large, bool sent)
{
	if (hc == NULL)
		return;
	atomic_store_explicit(&hc->served, true, memory_order_relaxed);
	/* a large answer may sit in the kernel's send buffer: its send time
	 * runs on until the client has taken it. The sweeper looks (SIOCOUTQ),
	 * not every answer: keep-alive clients usually ask again before that */
	if (large && sent)
		atomic_store_explicit(&hc->phase, PHASE_DRAIN, memory_order_relaxed);
	else if (large) /* idle: the next header's time starts now */
		http_conn_set_phase(hc, PHASE_WAIT);
	else /* a canned answer went out whole when queued (libmicrohttpd may
	      * call this later): idle since then, which orders the reclaim */
		atomic_store_explicit(&hc->phase, PHASE_WAIT, memory_order_relaxed);
}

void
http_conn_stats(struct http_conns *c, struct http_conn_stats *st)
{
	int open = atomic_load_explicit(&c->nconns, memory_order_relaxed);

	st->open = open > 0 ? (unsigned)open : 0;
	st->refused = atomic_load_explicit(&c->refused, memory_order_relaxed);
	st->reclaimed = atomic_load_explicit(&c->reclaimed, memory_order_relaxed);
	st->timed_out = atomic_load_explicit(&c->timed_out, memory_order_relaxed);
}

/* libmicrohttpd's own messages can quote a request: debug only. */
static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (log_enabled(LOG_DEBUG))
		log_vmsg(LOG_DEBUG, "libmicrohttpd: ", fmt, ap);
}

/*
 * By default half the CPUs this process may run on (its affinity, which
 * taskset and cpusets narrow), at least one: a probe server shares its
 * machine with what it watches. On two CPUs, a second thread beside a busy
 * client cost each ping 1.2 µs more in context switches (issue #22).
 */
static unsigned
thread_count(const struct config *cfg)
{
	cpu_set_t cpus;
	long n = cfg->http_threads;

	if (n <= 0) {
		n = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus)
		                                                   : sysconf(_SC_NPROCESSORS_ONLN);
		n /= 2;
	}
	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

/* ---- connections: admission, reclaim, total-time limits ------------------ */

/* The total time a phase may take, in µs; 0: no limit. */
static int64_t
phase_limit_us(const struct config_limits *l, enum conn_phase phase)
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
 * Ends a connection from any thread: shutdown(2) wakes its thread, where
 * libmicrohttpd sees the end and closes it (the descriptor stays valid until
 * then: its CLOSED notice needs the thread's lock, which the caller holds or,
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
	atomic_fetch_add_explicit(&hc->t->c->nending, 1, memory_order_relaxed);
	if (abort)
		setsockopt(hc->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	shutdown(hc->fd, SHUT_RDWR);
	return true;
}

/* Closes this thread's connections that are over their phase's total time. */
static void
conn_sweep(struct http_thread *t)
{
	int64_t now = now_us();

	const struct config_limits *l = &t->c->cfg->limits;

	for (struct hconn *hc = t->head; hc != NULL; hc = hc->next) {
		enum conn_phase ph = atomic_load_explicit(&hc->phase, memory_order_relaxed);
		int64_t limit = phase_limit_us(l, ph);
		int64_t since = atomic_load_explicit(&hc->since, memory_order_relaxed);
		int unsent = 0;

		if (ph == PHASE_DRAIN && (ioctl(hc->fd, SIOCOUTQ, &unsent) == -1 || unsent == 0)) {
			http_conn_set_phase(hc, PHASE_WAIT); /* taken: idle from now on */
			continue;
		}
		if (limit > 0 && now - since >= limit && end_connection(hc, true)) {
			atomic_fetch_add_explicit(&t->c->timed_out, 1, memory_order_relaxed);
			log_debug("http: closed a connection over its %s time limit",
			          ph == PHASE_SEND ? "send" : ph == PHASE_BODY ? "body" : "header");
		}
	}
}

/*
 * Near the limit: ends `want` (at most DRAIN_MAX) of the connections best
 * given up, as nginx drains its reusable connections. First idle keep-alive
 * ones (answered, no request line since), least recently active first; then
 * those opened without a request line, or in their header or body, for
 * STALLED_MS already, oldest first. A connection younger than that (a fresh
 * probe), a request being answered and one running its checks are never
 * taken. Returns how many were ended (their slots come free as soon as
 * their threads close them).
 */
static int
drain(struct http_conns *c, int want)
{
	int64_t now = now_us();
	struct hconn *best[DRAIN_MAX];
	int rank[DRAIN_MAX];
	int64_t since[DRAIN_MAX];
	int nbest = 0, ended = 0;

	/* every list held at once, always in the same order */
	for (size_t i = 0; i < c->nthreads; i++)
		pthread_mutex_lock(&c->threads[i].lock);
	for (size_t i = 0; i < c->nthreads; i++) {
		for (struct hconn *hc = c->threads[i].head; hc != NULL; hc = hc->next) {
			enum conn_phase ph = atomic_load_explicit(&hc->phase, memory_order_relaxed);
			int64_t s = atomic_load_explicit(&hc->since, memory_order_relaxed);
			int r, k;

			if (hc->fd == -1 || atomic_load_explicit(&hc->closing, memory_order_relaxed))
				continue;
			if (ph == PHASE_WAIT && atomic_load_explicit(&hc->served, memory_order_relaxed))
				r = 0;
			else if ((ph == PHASE_WAIT || ph == PHASE_HEADER || ph == PHASE_BODY) &&
			         now - s >= (int64_t)STALLED_MS * 1000)
				r = 1;
			else
				continue;
			/* insertion into the best `want`, sorted by (rank, since) */
			for (k = nbest; k > 0 && (r < rank[k - 1] || (r == rank[k - 1] && s < since[k - 1]));
			     k--) {
				if (k < want) {
					best[k] = best[k - 1];
					rank[k] = rank[k - 1];
					since[k] = since[k - 1];
				}
			}
			if (k < want) {
				best[k] = hc;
				rank[k] = r;
				since[k] = s;
				if (nbest < want)
					nbest++;
			}
		}
	}
	for (int k = 0; k < nbest; k++)
		ended += end_connection(best[k], false);
	for (size_t i = c->nthreads; i-- > 0;)
		pthread_mutex_unlock(&c->threads[i].lock);
	if (ended > 0)
		atomic_fetch_add_explicit(&c->reclaimed, (uint64_t)ended, memory_order_relaxed);
	return ended;
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

/* Connections open from the address of `addr`, all threads. Under
 * admit_lock, which makes the count and the admission one step (admit). */
static int
count_from(struct http_conns *c, const struct sockaddr_storage *addr)
{
	int n = 0;

	LOCK_HELD(&c->admit_lock);
	for (size_t i = 0; i < c->nthreads; i++) {
		pthread_mutex_lock(&c->threads[i].lock);
		for (struct hconn *hc = c->threads[i].head; hc != NULL; hc = hc->next)
			n += same_host(&hc->addr, addr);
		pthread_mutex_unlock(&c->threads[i].lock);
	}
	return n;
}

static void
refuse(struct http_conns *c, int fd)
{
	atomic_fetch_add_explicit(&c->refused, 1, memory_order_relaxed);
	close(fd);
}

/*
 * Hands a new connection to this thread's daemon, or closes it (over
 * max_connections_per_ip).
 */
static void
admit(struct http_thread *t, int fd, struct sockaddr_storage *addr, socklen_t addrlen)
{
	struct http_conns *c = t->c;
	const struct config_limits *l = &c->cfg->limits;
	bool per_ip = l->max_connections_per_ip > 0;

	if (per_ip) {
		/* the count and the add under one lock, so that two threads cannot
		 * both admit the address's last allowed connection */
		pthread_mutex_lock(&c->admit_lock);
		if (count_from(c, addr) >= l->max_connections_per_ip) {
			pthread_mutex_unlock(&c->admit_lock);
			refuse(c, fd);
			return;
		}
	}
	/* on failure libmicrohttpd closes fd itself */
	if (MHD_add_connection(t->d, fd, (struct sockaddr *)addr, addrlen) != MHD_YES)
		log_debug("http: could not add a connection: %s", strerror(errno));
	if (per_ip)
		pthread_mutex_unlock(&c->admit_lock);
}

/*
 * n connections are open: the peak since the last trim, seen here rather
 * than at a sweep, which a burst shorter than SWEEP_MS would slip between.
 * Thread 0, which trims, may be asleep with no connection of its own: the
 * peak's rise through TRIM_DROP wakes it, so that it watches for the end.
 */
static void
note_connections(struct http_conns *c, int n)
{
	int peak = atomic_load_explicit(&c->conn_peak, memory_order_relaxed);

	while (n > peak) {
		if (atomic_compare_exchange_weak_explicit(&c->conn_peak, &peak, n,
		                                          memory_order_relaxed,
		                                          memory_order_relaxed)) {
			if (peak < TRIM_DROP && n >= TRIM_DROP)
				wake(&c->threads[0]);
			break;
		}
	}
}

/*
 * HTTPS: the session exists (libmicrohttpd made it with the connection) and
 * has not begun its handshake: it takes the current TLS set. Without one (no
 * tracking to hold it) the connection is ended, never served with the
 * startup's credentials, which ask for no client certificate.
 */
static void
start_tls(struct http_conns *c, struct MHD_Connection *conn, struct hconn *hc)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);

	if (hc != NULL && ci != NULL && ci->tls_session != NULL) {
		hc->tls = tls_session_start(c->tls, ci->tls_session);
		return;
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		shutdown(ci->connect_fd, SHUT_RDWR);
}

static void
notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
	struct http_thread *t = cls;
	struct hconn *hc;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		t->nlive++;
		note_connections(t->c, atomic_fetch_add_explicit(&t->c->nconns, 1,
		                                                 memory_order_relaxed) + 1);
		hc = calloc(1, sizeof(*hc));
		*socket_context = hc;
		if (t->c->tls != NULL)
			start_tls(t->c, conn, hc);
		if (hc == NULL) /* untracked: still counted, bounded by the idle timeout */
			return;
		hc->t = t;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		hc->fd = ci != NULL ? ci->connect_fd : -1;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci != NULL && ci->client_addr != NULL)
			memcpy(&hc->addr, ci->client_addr,
			       ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
			                                              : sizeof(struct sockaddr_in));
		http_conn_set_phase(hc, PHASE_WAIT);
		if (hc->fd == -1)
			atomic_store(&hc->closing, true); /* cannot be shut down: never chosen */
		pthread_mutex_lock(&t->lock);
		hc->next = t->head;
		if (t->head != NULL)
			t->head->prev = hc;
		t->head = hc;
		pthread_mutex_unlock(&t->lock);
		return;
	}
	/* CLOSED comes before libmicrohttpd closes the descriptor */
	t->nlive--;
	hc = *socket_context;
	if (hc != NULL) {
		if (hc->fd != -1 && atomic_load(&hc->closing))
			atomic_fetch_sub_explicit(&t->c->nending, 1, memory_order_relaxed);
		pthread_mutex_lock(&t->lock);
		if (hc->prev != NULL)
			hc->prev->next = hc->next;
		else
			t->head = hc->next;
		if (hc->next != NULL)
			hc->next->prev = hc->prev;
		pthread_mutex_unlock(&t->lock);
		tls_release(hc->tls); /* the session is done with it (or about to be deinited) */
		if (hc->linger && hc->fd != -1)
			linger_start(t, hc->fd);
		free(hc);
		*socket_context = NULL;
	}
	atomic_fetch_sub_explicit(&t->c->nconns, 1, memory_order_relaxed);
}

/* ---- lingering close: a refused TLS client reads its alert --------------- */

/*
 * tls.c refused the client (an alert is queued): in TLS 1.3 the client
 * sends its request right behind its Finished, and a close with it unread
 * is a reset, which makes the client drop the alert ("broken pipe" instead
 * of "certificate required"). So the close lingers, as nginx's does.
 */
static void
tls_refused(void *session_ptr)
{
	struct hconn *hc = session_ptr != NULL ? http_conn_of(session_ptr) : NULL;

	if (hc != NULL)
		hc->linger = true;
}

/*
 * At the CLOSED notice, before libmicrohttpd closes fd: keeps the socket (a
 * dup), sends FIN behind the alert and reads until the client's EOF or
 * LINGER_MS. Past LINGER_MAX, or without a descriptor, it closes at once.
 */
static void
linger_start(struct http_thread *t, int fd)
{
	struct lingering *l = NULL;
	int dfd;

	if (atomic_fetch_add(&t->c->nlinger, 1) >= LINGER_MAX) {
		atomic_fetch_sub(&t->c->nlinger, 1);
		log_debug("http: %d refused TLS clients lingering: one more closed at once",
		          LINGER_MAX);
		return;
	}
	for (size_t i = 0; i < LINGER_MAX && l == NULL; i++)
		if (t->lingering[i].until == 0)
			l = &t->lingering[i]; /* found: the thread holds at most the total */
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (l == NULL || dfd == -1 || shutdown(dfd, SHUT_WR) == -1 ||
	    watch(t->epfd, dfd, EPOLLIN, l) == -1) {
		if (dfd != -1)
			close(dfd);
		atomic_fetch_sub(&t->c->nlinger, 1);
		return;
	}
	l->fd = dfd;
	l->until = clock_ms() + LINGER_MS;
	t->nlinger++;
}

/* Whether an event of epfd is one of this thread's lingering sockets. */
static bool
linger_is(struct http_thread *t, void *ptr)
{
	return (char *)ptr >= (char *)t->lingering &&
	       (char *)ptr < (char *)(t->lingering + LINGER_MAX);
}

/* Discards what the client sent; its EOF (or an error) ends the linger. */
static void
linger_read(struct http_thread *t, struct lingering *l)
{
	char buf[4096];

	for (int i = 0; i < LINGER_READS; i++) {
		ssize_t n = read(l->fd, buf, sizeof(buf));

		if (n > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		linger_end(t, l);
		return;
	}
}

static void
linger_end(struct http_thread *t, struct lingering *l)
{
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	close(l->fd);
	l->fd = -1;
	l->until = 0;
	t->nlinger--;
	atomic_fetch_sub(&t->c->nlinger, 1);
}

/* Closes the lingering sockets past their time (now 0: every one, at stop). */
static void
linger_sweep(struct http_thread *t, int64_t now)
{
	for (size_t i = 0; i < LINGER_MAX && t->nlinger > 0; i++)
		if (t->lingering[i].until != 0 && (now == 0 || now >= t->lingering[i].until))
			linger_end(t, &t->lingering[i]);
}

/* ---- the event loop: one per HTTP thread --------------------------------- */

static int
watch(int epfd, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = {.events = events, .data.ptr = ptr};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Adds or removes this thread's listen sockets in its epoll set. */
static void
watch_listeners(struct http_thread *t, bool on)
{
	struct http_conns *c = t->c;
	size_t k = (size_t)(t - c->threads);

	if (t->listening == on)
		return;
	for (size_t i = 0; i < c->nlisten; i++) {
		if (on)
			watch(t->epfd, c->listen_fds[i][k], EPOLLIN, &c->listen_fds[i][k]);
		else
			epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->listen_fds[i][k], NULL);
	}
	t->listening = on;
}

/*
 * Near the limit, with connections waiting in listen socket lfd's backlog:
 * drains as many as move the backlog through in DRAIN_TARGET_MS, at least
 * one per DRAIN_GAP_MS. More would close keep-alive connections (which
 * their clients open again) faster than needed to serve a fresh one. At
 * most DRAIN_MAX: 64 every 5 ms move one thread's backlog of 3,000 (a
 * flood on one HTTP thread) in about 250 ms; 32 left fresh probes over 1 s.
 */
static void
drain_for_backlog(struct http_thread *t, int lfd)
{
	int64_t now = clock_ms(), since = now - t->last_drain;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int64_t want;

	if (since < DRAIN_GAP_MS)
		return;
	/* a listening socket's tcpi_unacked is its accept queue's length */
	if (getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		ti.tcpi_unacked = 1;
	if (since > DRAIN_TARGET_MS)
		since = DRAIN_TARGET_MS;
	want = (int64_t)ti.tcpi_unacked * since / DRAIN_TARGET_MS;
	t->last_drain = now;
	drain(t->c, want < 1 ? 1 : want > DRAIN_MAX ? DRAIN_MAX : (int)want);
}

/* Stops accepting for ms; `full`: at max_connections, so it resumes as soon
 * as the count is below it. Meanwhile new connections wait in the backlog. */
static void
pause_accepting(struct http_thread *t, int64_t ms, bool full)
{
	t->accept_paused_until = clock_ms() + ms;
	t->full = full;
	watch_listeners(t, false);
}

/*
 * Accepts what the listen socket holds, as nginx does at worker_connections:
 * near max_connections (its last sixteenth) it drains idle connections to
 * make room; at the limit it stops accepting, and the connection waits in
 * the kernel's backlog rather than being accepted and closed.
 */
static void
accept_from(struct http_thread *t, int lfd)
{
	struct http_conns *c = t->c;
	int max = c->cfg->limits.max_connections;
	bool drained = false;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage addr;
		socklen_t len = sizeof(addr);
		int open = atomic_load_explicit(&c->nconns, memory_order_relaxed);
		int fd;

		/* once per wake-up: the ones it ended free their slots only when
		 * their threads close them (nending counts them meanwhile) */
		if (!drained &&
		    open - atomic_load_explicit(&c->nending, memory_order_relaxed) >= max - max / 16) {
			drain_for_backlog(t, lfd);
			drained = true;
		}
		if (open >= max) {
			pause_accepting(t, FULL_RETRY_MS, true);
			return;
		}
		fd = accept4(lfd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* level-triggered: without a pause this would spin */
				log_warn("http: cannot accept a connection: %s (raise the open-files "
				         "limit, or lower limits.max_connections)", strerror(errno));
				pause_accepting(t, ACCEPT_PAUSE_MS, false);
			}
			return; /* EAGAIN: another thread took it; or the client already left */
		}
		/* libmicrohttpd sets this itself only on sockets it accepted: without
		 * it a header and body sent apart wait for the client's delayed ACK */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		admit(t, fd, &addr, len);
	}
}

/*
 * Thread 0, at each sweep: once a burst of connections is over, hand their
 * buffers back to the system. Below 32 KiB libmicrohttpd takes a connection's
 * buffer from malloc, in the arena of the HTTP thread that added it, which
 * keeps freed memory: malloc_trim(3) returns the free pages of every arena
 * but the top of a thread's own, which each thread then shrinks itself
 * (trim_own_arena). Not at once: a burst that comes back (clients
 * reconnecting, the next scrape of many targets) would take every page
 * again by page faults, which at 4,000 connections made the slowest 1 % of
 * first answers 2x nginx's.
 */
static void
trim_after_burst(struct http_conns *c, int64_t now)
{
	int n = atomic_load_explicit(&c->nconns, memory_order_relaxed);
	int peak = atomic_load_explicit(&c->conn_peak, memory_order_relaxed);

	if (peak - n < TRIM_DROP || n >= peak / 2) {
		c->trim_at = 0; /* no burst, or it goes on */
	} else if (c->trim_at == 0) {
		c->trim_at = now + TRIM_QUIET_MS;
	} else if (now >= c->trim_at) {
		malloc_trim(0); /* may take a while: connections come and go meanwhile */
		atomic_fetch_add(&c->trim_gen, 1);
		for (size_t i = 1; i < c->nthreads; i++)
			wake(&c->threads[i]); /* an idle one sleeps without a timeout */
		c->trim_at = 0;
		/* the next burst is measured from here (unless one already began) */
		n = atomic_load_explicit(&c->nconns, memory_order_relaxed);
		atomic_compare_exchange_strong_explicit(&c->conn_peak, &peak, n,
		                                        memory_order_relaxed, memory_order_relaxed);
	}
}

/*
 * After malloc_trim(): the top of this thread's arena, where its
 * connections' buffers went back, shrinks only at a free() of TRIM_PROBE or
 * more into it past M_TRIM_THRESHOLD, which main() sets high so that no
 * free() hands pages back in the middle of a burst: lowered for that free.
 */
static void
trim_own_arena(void)
{
	volatile char *p;

	mallopt(M_TRIM_THRESHOLD, 0);
	p = malloc(TRIM_PROBE);
	if (p != NULL) {
		p[0] = 0; /* not optimised away */
		free((void *)p);
	}
	mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
}

/* How long epoll_wait may sleep: libmicrohttpd's next timeout, our next sweep. */
static int
wait_ms(struct http_thread *t, int64_t now)
{
	MHD_UNSIGNED_LONG_LONG mhd;
	int64_t ms = -1;

	if (MHD_get_timeout(t->d, &mhd) == MHD_YES)
		ms = mhd > INT32_MAX ? INT32_MAX : (int64_t)mhd;
	if ((t->head != NULL || t->nlinger > 0 ||
	     (t == t->c->threads &&
	      atomic_load_explicit(&t->c->conn_peak, memory_order_relaxed) >= TRIM_DROP)) &&
	    (ms < 0 || ms > t->next_sweep - now))
		ms = t->next_sweep > now ? t->next_sweep - now : 0;
	if (t->accept_paused_until != 0 && (ms < 0 || ms > t->accept_paused_until - now))
		ms = t->accept_paused_until > now ? t->accept_paused_until - now : 0;
	return (int)ms;
}

/* Handles this thread's own events: stop, wake-ups, new connections. */
static bool
control(struct http_thread *t, int64_t now)
{
	struct http_conns *c = t->c;
	struct epoll_event ev[16];
	int n = epoll_wait(t->epfd, ev, (int)(sizeof(ev) / sizeof(ev[0])), 0);
	bool stop = false;

	if (n == -1 && errno != EINTR) {
		log_warn("http: epoll_wait: %s", strerror(errno));
		return true;
	}
	t->control_at = now;
	for (int i = 0; i < n; i++) {
		uint64_t v;

		if (ev[i].data.ptr == &c->stop_fd)
			stop = true;
		else if (ev[i].data.ptr == &t->wake_fd)
			(void)!read(t->wake_fd, &v, sizeof(v)); /* the daemon's next run resumes */
		else if (linger_is(t, ev[i].data.ptr))
			linger_read(t, ev[i].data.ptr);
		else if (!atomic_load(&c->quiesced))
			accept_from(t, *(int *)ev[i].data.ptr);
	}
	return stop;
}

/*
 * Below MHD_SLEEP_MAX connections the thread sleeps in libmicrohttpd's own
 * epoll_wait (MHD_run_wait), whose set holds the thread's (as a NULL event,
 * which it skips): one system call per wake-up. Its own set is looked at
 * when a wake-up served no request, or every CONTROL_MS while busy. With
 * more, 0.9.75's loop could sleep in a second epoll_wait after a full batch
 * of 128 events while connections it already read wait: then the thread
 * sleeps in poll(2) on both sets and runs the daemon with a zero timeout.
 */
static void *
http_thread_main(void *arg)
{
	struct http_thread *t = arg;
	struct http_conns *c = t->c;
	bool stop = false;

	while (!stop) {
		int64_t now;
		int ms;
		bool look;

		/* before sleeping: thread 0 bumps it at a sweep, then may sleep long */
		if (t->trim_gen != atomic_load_explicit(&c->trim_gen, memory_order_relaxed)) {
			t->trim_gen = atomic_load_explicit(&c->trim_gen, memory_order_relaxed);
			trim_own_arena();
		}
		now = clock_ms();
		ms = wait_ms(t, now);
		/* woken: what the wakers did before this is served by a round that
		 * does not sleep; a wake after it writes again */
		if (atomic_load_explicit(&t->woken, memory_order_relaxed)) {
			uint64_t v;

			atomic_store(&t->woken, false);
			(void)!read(t->wake_fd, &v, sizeof(v));
			ms = 0;
		}

		if (t->nlive < MHD_SLEEP_MAX) {
			unsigned seen = t->activity;

			MHD_run_wait(t->d, ms);
			now = clock_ms();
			look = t->activity == seen || now - t->control_at >= CONTROL_MS;
		} else {
			struct pollfd p[2] = {{.fd = t->mhd_fd, .events = POLLIN},
			                      {.fd = t->epfd, .events = POLLIN}};

			if (poll(p, 2, ms) == -1 && errno != EINTR) {
				log_warn("http: poll: %s", strerror(errno));
				break;
			}
			MHD_run(t->d);
			now = clock_ms();
			look = p[1].revents != 0 || now - t->control_at >= CONTROL_MS;
		}
		if (look)
			stop = control(t, now);
		if (now >= t->next_sweep) {
			conn_sweep(t);
			linger_sweep(t, now);
			if (t == c->threads)
				trim_after_burst(c, now);
			t->next_sweep = now + SWEEP_MS;
		}
		if (t->accept_paused_until != 0 &&
		    (now >= t->accept_paused_until ||
		     (t->full && atomic_load_explicit(&c->nconns, memory_order_relaxed) <
		                     c->cfg->limits.max_connections))) {
			t->accept_paused_until = 0;
			if (!atomic_load(&c->quiesced))
				watch_listeners(t, true);
		}
	}
	return NULL;
}

/*
 * A socket bound to ss; `shared`: SO_REUSEPORT, so that each thread has its
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
	    (shared && listen(fd, LISTEN_BACKLOG) == -1)) {
		close(fd);
		return -1;
	}
	*sslen = sizeof(*ss);
	getsockname(fd, (struct sockaddr *)ss, sslen); /* port 0: the one picked */
	return fd;
}

static int
listen_on(struct http_conns *c, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char host[INET6_ADDRSTRLEN];
	int *fds = c->listen_fds[c->nlisten];
	uint16_t port;

	int probe;

	if (config_parse_addr(addr, &ss, &sslen, err, errlen) == -1)
		return -1;
	c->nlisten++; /* its sockets are closed by http_stop, even if some fail */
	probe = bound_socket(&ss, &sslen, false);
	if (probe != -1)
		close(probe);
	for (size_t k = 0; k < c->nthreads && probe != -1; k++) {
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
	log_info("listening on %s://%s%s%s:%u%s/", c->tls != NULL ? "https" : "http",
	         ss.ss_family == AF_INET6 ? "[" : "", host,
	         ss.ss_family == AF_INET6 ? "]" : "", port, c->cfg->url_prefix);
	return 0;
}

/* Thread t's daemon and epoll set, watching its listen sockets; not running yet. */
static int
open_thread(struct http_conns *c, struct http_thread *t, char *err, size_t errlen)
{
	const struct config *cfg = c->cfg;
	/* HTTPS: the daemon starts with the startup's pair, but each connection
	 * takes the current set at its start (start_tls), which a reload swaps */
	struct MHD_OptionItem tls_opts[] = {
		{MHD_OPTION_HTTPS_MEM_CERT, 0, c->tls != NULL ? (void *)tls_boot_cert(c->tls) : NULL},
		{MHD_OPTION_HTTPS_MEM_KEY, 0, c->tls != NULL ? (void *)tls_boot_key(c->tls) : NULL},
		{MHD_OPTION_END, 0, NULL},
	};

	/* libmicrohttpd's own limit stays out of the way (the reclaim may go over
	 * by the connections being closed); healthd decides in admit() */
	t->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME |
	                        MHD_USE_ERROR_LOG | (c->tls != NULL ? MHD_USE_TLS : 0),
	                        0, NULL, NULL, c->cb.access, c->cb.cls,
	                        MHD_OPTION_CONNECTION_LIMIT,
	                        (unsigned)cfg->limits.max_connections * 2u + 64u,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->limits.idle_timeout_s,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	                        (size_t)cfg->limits.max_request_bytes,
	                        /* 0: http.c refuses what RFC 9112 forbids (no Host, a space in
	                         * the target) with one 400; 0.9.75's strict mode sends its 400
	                         * header block twice, or closes without an answer */
	                        MHD_OPTION_STRICT_FOR_CLIENT, 0,
	                        MHD_OPTION_URI_LOG_CALLBACK, c->cb.uri, c->cb.cls,
	                        MHD_OPTION_NOTIFY_COMPLETED, c->cb.completed, c->cb.cls,
	                        MHD_OPTION_NOTIFY_CONNECTION, notify_connection, t,
	                        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, c,
	                        MHD_OPTION_ARRAY, c->tls != NULL ? tls_opts : tls_opts + 2,
	                        MHD_OPTION_END);
	if (t->d == NULL) {
		snprintf(err, errlen, c->tls != NULL && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES
		         ? "http: this libmicrohttpd was built without TLS: HTTPS cannot be served"
		         : "http: cannot start libmicrohttpd");
		return -1;
	}
	t->mhd_fd = MHD_get_daemon_info(t->d, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->epfd == -1 || t->wake_fd == -1 || watch(t->mhd_fd, t->epfd, EPOLLIN, NULL) == -1 ||
	    watch(t->epfd, c->stop_fd, EPOLLIN, &c->stop_fd) == -1 ||
	    watch(t->epfd, t->wake_fd, EPOLLIN, &t->wake_fd) == -1) {
		snprintf(err, errlen, "http: epoll: %s", strerror(errno));
		return -1;
	}
	watch_listeners(t, true);
	return 0;
}

/*
 * Every connection holds a descriptor: raises the soft RLIMIT_NOFILE (often
 * 1024, beside a hard limit far above) to fit max_connections, or says why
 * accepting will pause at EMFILE. The limit is not derived from it: a large
 * hard limit would then mean unbounded buffers (one max_request_bytes each).
 */
static void
fit_nofile(const struct config_limits *l)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)l->max_connections + FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		log_warn("http: the open-files limit (%llu) is below limits.max_connections + %d: "
		         "raise it (ulimit -n, LimitNOFILE=) or lower max_connections",
		         (unsigned long long)rl.rlim_max, FD_RESERVE);
		rl.rlim_cur = rl.rlim_max;
	} else {
		rl.rlim_cur = need;
	}
	setrlimit(RLIMIT_NOFILE, &rl);
}

struct http_conns *
http_conn_open(const struct config *cfg, struct tls *tls, const struct http_conn_callbacks *cb,
               char *err, size_t errlen)
{
	struct http_conns *c;

	if (cfg->nlisten > MAX_LISTEN) {
		snprintf(err, errlen, "listen: at most %d addresses", MAX_LISTEN);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->cfg = cfg;
	c->tls = tls;
	c->cb = *cb;
	fit_nofile(&cfg->limits);
	if (tls != NULL)
		tls_on_refused(tls_refused);
	pthread_mutex_init(&c->admit_lock, NULL);
	/* every thread set up before any runs: a reclaim walks them all */
	memset(c->listen_fds, -1, sizeof(c->listen_fds));
	c->nthreads = thread_count(cfg);
	for (size_t i = 0; i < c->nthreads; i++) {
		c->threads[i].c = c;
		c->threads[i].epfd = -1;
		c->threads[i].wake_fd = -1;
		pthread_mutex_init(&c->threads[i].lock, NULL);
	}
	c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->stop_fd == -1) {
		snprintf(err, errlen, "http: eventfd: %s", strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (listen_on(c, cfg->listen[i], err, errlen) == -1)
			goto fail;
	for (size_t i = 0; i < c->nthreads; i++)
		if (open_thread(c, &c->threads[i], err, errlen) == -1)
			goto fail;
	return c;
fail:
	http_conn_stop(c);
	return NULL;
}

int
http_conn_run(struct http_conns *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->nthreads; i++) {
		struct http_thread *t = &c->threads[i];

		t->next_sweep = clock_ms() + SWEEP_MS;
		if (pthread_create(&t->thread, NULL, http_thread_main, t) != 0) {
			snprintf(err, errlen, "http: cannot start a thread");
			return -1;
		}
		t->running = true;
	}
	return 0;
}

void
http_conn_quiesce(struct http_conns *c)
{
	/* Not closed here: a thread may be accepting from it right now. */
	atomic_store(&c->quiesced, true);
	/* the sockets leave each epoll set here, under the threads (which check
	 * quiesced before adding them back); their `listening` stays theirs */
	for (size_t i = 0; i < c->nthreads; i++)
		for (size_t k = 0; k < c->nlisten && c->threads[i].epfd != -1; k++)
			epoll_ctl(c->threads[i].epfd, EPOLL_CTL_DEL, c->listen_fds[k][i], NULL);
}

void
http_conn_stop(struct http_conns *c)
{
	uint64_t one = 1;

	if (c == NULL)
		return;
	log_info("http: connections: %llu refused at a limit, %llu reclaimed at max_connections, "
	         "%llu closed over a time limit",
	         (unsigned long long)atomic_load(&c->refused),
	         (unsigned long long)atomic_load(&c->reclaimed),
	         (unsigned long long)atomic_load(&c->timed_out));
	if (c->stop_fd != -1 && write(c->stop_fd, &one, sizeof(one)) == -1)
		log_warn("http: cannot stop the HTTP threads: %s", strerror(errno));
	/* every thread first: a running one may still admit a connection,
	 * which reaches into the others (reclaim, thread 0's wake) */
	for (size_t i = 0; i < c->nthreads; i++)
		if (c->threads[i].running)
			pthread_join(c->threads[i].thread, NULL);
	for (size_t i = 0; i < c->nthreads; i++) {
		struct http_thread *t = &c->threads[i];

		if (t->d != NULL)
			MHD_stop_daemon(t->d); /* a refused client's close may linger here */
		linger_sweep(t, 0);
		if (t->epfd != -1)
			close(t->epfd);
		if (t->wake_fd != -1)
			close(t->wake_fd);
		pthread_mutex_destroy(&t->lock);
	}
	for (size_t i = 0; i < c->nlisten; i++)
		for (size_t k = 0; k < c->nthreads; k++)
			if (c->listen_fds[i][k] != -1)
				close(c->listen_fds[i][k]);
	if (c->stop_fd != -1)
		close(c->stop_fd);
	pthread_mutex_destroy(&c->admit_lock);
	free(c);
}
