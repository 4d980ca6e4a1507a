/*
 * executor_main.c - the executor process's own main (not the server's
 * struct exec_proc): one plugin's code, away from the server.
 *
 * healthd starts it from its own binary as `healthd --executor PPID THREADS`
 * with its socket on fd 3. It loads the plugin with the same loader the
 * server uses in process (so the ABI checks and the host table are the same
 * code), answers LOAD / INSTANTIATE / SEAL on its main thread, and runs checks
 * on threads started on demand, up to THREADS. It exits when the socket
 * closes (healthd stopped or retired it) or healthd dies (PR_SET_PDEATHSIG).
 */
#include "executor.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "crash.h"
#include "exec_proto.h"
#include "log.h"
#include "plugin_loader.h"
#include "registry.h"
#include "report.h"
#include "sandbox.h"
#include "sizes.h"

#define EXEC_FD 3
#define IDLE_THREAD_MS 30000 /* a run thread with nothing to do this long leaves */

struct xrun {
	uint64_t token;
	uint32_t index;
	struct healthd_report report;
	bool started;
	struct xrun *next;  /* queue, or the list of runs in plugin code */
};

struct xproc {
	struct registry *reg;
	struct plugin_loader *loader;
	pthread_mutex_t lock;
	pthread_cond_t work_cv;
	pthread_cond_t idle_cv; /* a run thread left: for the exit */
	struct xrun *queue, *queue_tail;
	struct xrun *running; /* inside run() now */
	int threads, idle, max_threads;
	int executing;
	bool stopping;
};

static void
send_buf(struct exec_buf *b)
{
	if (!exec_buf_finish(b))
		return; /* cannot happen: every field is cut to fit */
	/* One datagram, atomic on SOCK_SEQPACKET: run threads send concurrently. */
	while (send(EXEC_FD, b->data, b->len, MSG_NOSIGNAL) == -1 && errno == EINTR)
		;
}

static void
send_result(uint64_t token, enum healthd_status st, bool timed_out, int64_t us,
            const char *msg, const struct healthd_report *rep)
{
	struct exec_buf b;

	exec_buf_start(&b, EXEC_RESULT, token);
	exec_buf_u32(&b, (unsigned)st > HEALTHD_UNKNOWN ? HEALTHD_UNKNOWN : st);
	exec_buf_u32(&b, timed_out);
	exec_buf_i64(&b, us);
	exec_buf_str(&b, msg, EXEC_TEXT_MAX);
	exec_buf_values(&b, rep ? rep->values : NULL, rep ? rep->nvalues : 0);
	send_buf(&b);
}

static int64_t
clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *
run_thread(void *arg)
{
	struct xproc *x = arg;

	pthread_mutex_lock(&x->lock);
	for (;;) {
		struct xrun *run;
		const struct check *c;
		enum healthd_status st;
		int64_t t0, t1;

		while (x->queue == NULL && !x->stopping) {
			struct timespec ts;
			int64_t until = clock_ms() + IDLE_THREAD_MS;
			ts.tv_sec = until / 1000;
			ts.tv_nsec = (until % 1000) * 1000000L;
			x->idle++;
			int rc = pthread_cond_timedwait(&x->work_cv, &x->lock, &ts);
			x->idle--;
			if (rc == ETIMEDOUT && x->queue == NULL)
				goto leave;
		}
		if (x->stopping)
			goto leave;
		run = x->queue;
		x->queue = run->next;
		if (x->queue == NULL)
			x->queue_tail = NULL;
		if (atomic_load(&run->report.cancelled)) {
			/* its deadline passed while it waited for a thread */
			pthread_mutex_unlock(&x->lock);
			send_result(run->token, HEALTHD_CRITICAL, true, 0, "cancelled before it started", NULL);
			free(run);
			pthread_mutex_lock(&x->lock);
			continue;
		}
		run->started = true;
		run->next = x->running;
		x->running = run;
		x->executing++;
		c = registry_at(x->reg, run->index);
		pthread_mutex_unlock(&x->lock);

		t0 = clock_us();
		st = plugin_run(c, &run->report, NULL);
		t1 = clock_us();

		pthread_mutex_lock(&x->lock);
		for (struct xrun **p = &x->running; *p != NULL; p = &(*p)->next) {
			if (*p == run) {
				*p = run->next;
				break;
			}
		}
		x->executing--;
		pthread_mutex_unlock(&x->lock);
		send_result(run->token, st, run->report.timed_out, t1 - t0, run->report.message,
		            &run->report);
		free(run);
		pthread_mutex_lock(&x->lock);
	}
leave:
	x->threads--;
	pthread_cond_broadcast(&x->idle_cv);
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

static void
start_run(struct xproc *x, uint64_t token, struct exec_reader *r)
{
	uint32_t index = exec_read_u32(r);
	int64_t deadline = exec_read_i64(r), timeout = exec_read_i64(r);
	struct xrun *run;

	if (!exec_reader_done(r) || index >= registry_count(x->reg)) {
		send_result(token, HEALTHD_UNKNOWN, false, 0, "executor: malformed run request", NULL);
		return;
	}
	run = calloc(1, sizeof(*run));
	if (run == NULL) {
		send_result(token, HEALTHD_UNKNOWN, false, 0, "executor: out of memory", NULL);
		return;
	}
	run->token = token;
	run->index = index;
	run->report.deadline_ms = deadline;
	run->report.timeout_ms = timeout;
	pthread_mutex_lock(&x->lock);
	if (x->queue_tail != NULL)
		x->queue_tail->next = run;
	else
		x->queue = run;
	x->queue_tail = run;
	if (x->idle > 0) {
		pthread_cond_signal(&x->work_cv);
	} else if (x->threads < x->max_threads) {
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, run_thread, x) == 0)
			x->threads++;
		pthread_attr_destroy(&attr);
	}
	/* else it waits for a thread; the server's deadline bounds the wait */
	pthread_mutex_unlock(&x->lock);
}

static void
cancel_run(struct xproc *x, uint64_t token)
{
	pthread_mutex_lock(&x->lock);
	for (struct xrun *run = x->running; run != NULL; run = run->next)
		if (run->token == token)
			atomic_store(&run->report.cancelled, true);
	for (struct xrun *run = x->queue; run != NULL; run = run->next)
		if (run->token == token)
			atomic_store(&run->report.cancelled, true);
	pthread_mutex_unlock(&x->lock);
}

static void
do_load(struct xproc *x, struct exec_reader *r)
{
	const char *path = exec_read_str(r);
	char err[1024];
	struct exec_buf b;
	struct plugin_info pi;
	struct sandbox_report sb;

	exec_buf_start(&b, EXEC_LOADED, 0);
	if (!exec_reader_done(r) || plugin_count(x->loader) != 0) {
		exec_buf_u32(&b, 0);
		exec_buf_str(&b, "executor: malformed load request", EXEC_TEXT_MAX);
	} else if (sandbox_enter(path, getppid(), &sb, err, sizeof(err)) == -1) {
		exec_buf_u32(&b, 0); /* a required layer is missing: no plugin code here */
		exec_buf_str(&b, err, EXEC_TEXT_MAX);
		send_buf(&b);
		_exit(1);
	} else if (plugin_load_file(x->loader, path, err, sizeof(err)) == -1) {
		exec_buf_u32(&b, 0);
		exec_buf_str(&b, err, EXEC_TEXT_MAX);
	} else {
		plugin_info(x->loader, 0, &pi);
		exec_buf_u32(&b, 1);
		exec_buf_u32(&b, pi.abi_major);
		exec_buf_u32(&b, pi.abi_minor);
		exec_buf_str(&b, pi.name, PLUGIN_NAME_SIZE);
		exec_buf_str(&b, pi.version, PLUGIN_VERSION_SIZE);
		exec_buf_str(&b, pi.description, PLUGIN_DESCRIPTION_SIZE);
		exec_buf_u32(&b, (uint32_t)registry_count(x->reg));
		for (uint32_t i = 0; i < registry_count(x->reg); i++) {
			const struct check *c = registry_at(x->reg, i);
			exec_buf_u32(&b, c->flags);
			exec_buf_u32(&b, c->in_defaults);
			exec_buf_str(&b, c->name, EXEC_NAME_MAX);
		}
		/* what sandbox_enter() set up, for the server's line and metrics */
		exec_buf_u32(&b, sb.layers);
		exec_buf_u32(&b, sb.off);
		exec_buf_u32(&b, sb.landlock_abi);
		exec_buf_str(&b, sb.why, sizeof(sb.why));
	}
	send_buf(&b);
}

static void
do_instantiate(struct xproc *x, struct exec_reader *r)
{
	struct config_option opts[256];
	struct config_check ck = {0};
	struct exec_buf b;
	char err[1024];
	uint32_t n;

	ck.name = (char *)exec_read_str(r);
	ck.origin = (char *)exec_read_str(r);
	n = exec_read_u32(r);
	if (n > sizeof(opts) / sizeof(opts[0]))
		r->bad = true;
	for (uint32_t i = 0; i < n && !r->bad; i++) {
		opts[i] = (struct config_option){.key = (char *)exec_read_str(r),
		                                 .value = (char *)exec_read_str(r)};
	}
	exec_buf_start(&b, EXEC_INSTANTIATED, 0);
	if (!exec_reader_done(r) || plugin_count(x->loader) != 1) {
		exec_buf_u32(&b, 0);
		exec_buf_str(&b, "executor: malformed instantiate request", EXEC_TEXT_MAX);
	} else {
		struct plugin_info pi;
		plugin_info(x->loader, 0, &pi);
		ck.plugin = (char *)pi.name;
		ck.options.v = opts;
		ck.options.n = n;
		ck.defaults = true;
		ck.timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS;
		if (plugin_instantiate(x->loader, &ck, err, sizeof(err)) == -1) {
			exec_buf_u32(&b, 0);
			exec_buf_str(&b, err, EXEC_TEXT_MAX);
		} else {
			exec_buf_u32(&b, 1);
			exec_buf_u32(&b, (uint32_t)registry_count(x->reg) - 1);
		}
	}
	send_buf(&b);
}

/* From the fatal-signal handler, or exit() called by plugin code: tell the
 * server which check it was. Async-signal-safe: one send(2) of a datagram
 * built on the stack. */
static void
report_dying(const char *check)
{
	unsigned char buf[sizeof(struct exec_header) + EXEC_NAME_MAX];
	struct exec_header h = {.type = EXEC_DYING};
	size_t n = 0;

	while (check[n] != '\0' && n < EXEC_NAME_MAX - 1)
		n++;
	h.len = (uint32_t)(sizeof(h) + n + 1);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), check, n);
	buf[sizeof(h) + n] = '\0';
	(void)!send(EXEC_FD, buf, h.len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void
exit_from_plugin(void)
{
	const char *check = crash_current_check();

	if (check != NULL)
		report_dying(check);
}

/* healthd is gone: take along whatever plugin code started in our group. */
static void
on_parent_death(int sig)
{
	(void)sig;
	kill(0, SIGKILL);
}

/* Gone with healthd even if it is SIGKILLed, and so is our process group
 * (what plugin code started); false if it is gone already (the race with its
 * exit). */
static bool
follow_parent(long ppid)
{
	struct sigaction sa = {.sa_handler = on_parent_death};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGUSR2);
	return getppid() == (pid_t)ppid;
}

/* Stopping is healthd's decision, told by closing the socket: a terminal's
 * ^C or systemd's SIGTERM to the whole group must not kill runs first. A
 * crash or exit() in plugin code is reported to healthd on its way out. */
static void
own_signals(void)
{
	struct sigaction ign = {.sa_handler = SIG_IGN};

	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGTERM, &ign, NULL);
	sigaction(SIGHUP, &ign, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	crash_install(true);
	crash_set_reporter(report_dying);
	atexit(exit_from_plugin);
}

static int
xproc_init(struct xproc *x)
{
	pthread_condattr_t attr;

	x->reg = registry_new();
	x->loader = x->reg ? plugin_loader_new(x->reg) : NULL;
	if (x->loader != NULL) /* sandbox_enter() checks them, before the user namespace */
		plugin_loader_modes_checked(x->loader);
	if (x->loader == NULL)
		return -1;
	pthread_mutex_init(&x->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* run threads' idle waits */
	pthread_cond_init(&x->work_cv, &attr);
	pthread_cond_init(&x->idle_cv, &attr);
	pthread_condattr_destroy(&attr);
	return 0;
}

static void
do_seal(struct xproc *x)
{
	struct exec_buf b;

	plugin_loader_seal(x->loader);
	registry_seal(x->reg);
	exec_buf_start(&b, EXEC_SEALED, 0);
	send_buf(&b);
}

/* healthd's requests, one datagram each, until it closes the socket. */
static void
serve(struct xproc *x)
{
	static unsigned char buf[EXEC_MSG_MAX];

	for (;;) {
		struct exec_header h;
		struct exec_reader r;
		ssize_t n = recv(EXEC_FD, buf, sizeof(buf), 0);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* healthd closed the socket or is gone */
		if ((size_t)n < sizeof(h))
			continue;
		memcpy(&h, buf, sizeof(h));
		exec_reader_init(&r, buf + sizeof(h), (size_t)n - sizeof(h));
		switch (h.type) {
		case EXEC_LOAD:
			do_load(x, &r);
			break;
		case EXEC_INSTANTIATE:
			do_instantiate(x, &r);
			break;
		case EXEC_SEAL:
			do_seal(x);
			break;
		case EXEC_RUN:
			start_run(x, h.token, &r);
			break;
		case EXEC_CANCEL:
			cancel_run(x, h.token);
			break;
		default:
			break;
		}
	}
}

/* Destroy and unload only when no run is inside plugin code; else _exit()
 * here, leaving the stuck run's state as it is. */
static void
xproc_stop(struct xproc *x)
{
	pthread_mutex_lock(&x->lock);
	x->stopping = true;
	pthread_cond_broadcast(&x->work_cv);
	for (struct xrun *run = x->running; run != NULL; run = run->next)
		atomic_store(&run->report.cancelled, true);
	{
		/* runs that heed cancelled() return now; wait a little for them */
		int64_t until = clock_ms() + 500;
		struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};
		while (x->threads > 0 && pthread_cond_timedwait(&x->idle_cv, &x->lock, &ts) == 0)
			;
	}
	if (x->executing > 0 || x->threads > 0) {
		/* a run is stuck in plugin code: its state cannot be destroyed */
		pthread_mutex_unlock(&x->lock);
		fflush(stderr);
		_exit(0);
	}
	pthread_mutex_unlock(&x->lock);
	while (x->queue != NULL) {
		struct xrun *next = x->queue->next;
		free(x->queue);
		x->queue = next;
	}
	registry_free(x->reg);
	plugin_loader_free(x->loader);
}

int
executor_process_main(int argc, char **argv)
{
	struct xproc x = {0};
	long ppid;

	if (argc < 4)
		return 2;
	sandbox_executor_start();
	ppid = strtol(argv[2], NULL, 10);
	x.max_threads = (int)strtol(argv[3], NULL, 10);
	if (x.max_threads < 1)
		x.max_threads = 1;
	if (!follow_parent(ppid))
		return 0;
	own_signals();
	if (xproc_init(&x) < 0)
		return 1;
	serve(&x);
	xproc_stop(&x);
	return 0;
}
