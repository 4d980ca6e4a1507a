/*
 * executor.c - the server's side of executor processes: spawning, the
 * socket protocol, results, crashes, restarts with backoff, retirement,
 * reaping. One lock guards everything here; no plugin code ever runs in this
 * process for an isolated plugin.
 *
 * A plugin (struct exec_plugin) has at most one current executor, which takes
 * its new runs, and any number of retired ones finishing theirs. Its runs are
 * in flight on one executor (struct exec_proc), or pending while a fresh one
 * starts. The supervisor thread polls every executor's socket and pidfd and
 * acts on four timers: a run's deadline + kill_after_ms, a retired executor's
 * kill time, a restart's backoff, and the RSS poll. Every run ends through
 * runner_remote_done(), called without this lock (lock order: runner, then
 * executors).
 */
#include "executor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "exec_proto.h"
#include "log.h"
#include "runner.h"
#include "sandbox.h"

#define BOOT_TIMEOUT_MS 30000   /* load() + instantiate() of one plugin, at most */
#define REAP_GRACE_MS 1000      /* a closed executor gets this long to exit */
#define LOST_GRACE_MS 500       /* socket gone, process not yet: then SIGKILL */
#define RSS_POLL_MS 250
#define CRASH_RESET_MS 60000    /* a minute without a crash resets the backoff */
#define MAX_POLL 1024

extern char **environ;

struct exec_run {
	uint64_t token;
	uint32_t check_id;
	uint32_t index;
	int64_t deadline;
	const char *check_name; /* the registry's; lives as long as the server */
};

enum proc_state { PROC_READY, PROC_RETIRING };

struct exec_proc {
	struct exec_plugin *pl;
	pid_t pid;
	int fd;        /* -1 once closed */
	int pidfd;     /* -1 if the kernel has none */
	enum proc_state state;
	struct exec_run *runs;
	size_t nruns, cap;
	int64_t kill_at;   /* INT64_MAX: not yet */
	bool lost;         /* socket gone: dead or dying */
	atomic_bool killed; /* we sent SIGKILL (a starter thread reads it in proc_reap) */
	bool stuck;        /* retired with a run stuck in plugin code */
	bool exited;       /* its pidfd said so: reap it */
	bool unresponsive; /* its socket was full: it stopped reading */
	enum exec_reason reason; /* why it ended, when we ended it (crash otherwise) */
	int64_t ready_at;
	char lost_why[256]; /* when we ended it on purpose: why */
	char culprit[EXEC_NAME_MAX]; /* the check it said it was dying in */
	struct exec_proc *next;
};

struct exec_instance {
	char *name, *origin;
	char **keys, **values;
	size_t n;
	uint32_t index;
};

struct exec_plugin {
	struct executor_set *set;
	char *path;
	struct stat file;          /* the file when it was loaded: a reload reuses
	                            * the plugin only if it is unchanged */
	int refs;                  /* configurations using it (reload) */
	bool retired;              /* none does any more: close it after its runs */
	bool serving;              /* the current configuration's: /metrics shows it */
	char name[33], version[64], description[256];
	unsigned abi_major, abi_minor;
	struct exec_fixed *fixed;
	size_t nfixed;
	struct exec_instance *inst;
	size_t ninst;
	size_t nchecks;
	struct exec_proc *procs;   /* alive: the current one and retired ones */
	struct exec_proc *cur;     /* takes new runs; NULL while down or starting */
	struct exec_run *pending;  /* runs waiting for a fresh executor */
	size_t npending, pcap;
	bool starting;             /* a starter thread is at work */
	struct exec_proc *booting; /* the executor it loads, spawned by the supervisor */
	bool boot_done;            /* the starter is through: boot_rc, boot_err */
	int boot_rc;
	char boot_err[512];
	bool starter_joinable;
	pthread_t starter;
	bool down;                 /* crashed; restarts at restart_at */
	int64_t restart_at, last_crash;
	int backoff_ms;
	char down_why[160];
	uint64_t restarts[EXEC_REASON_COUNT];
	uint64_t rss_bytes;
};

struct executor_set {
	struct config_isolation iso;
	char *self;
	char **wrapper;       /* words put before self (HEALTHD_EXECUTOR_WRAPPER) */
	char **envp;          /* the environment without HEALTH_URL_SECRET */
	struct exec_plugin **plugins;
	size_t n;
	struct runner *runner;
	pthread_mutex_t lock;
	int wake[2];
	pthread_t thread;
	bool started, stopping;
	int64_t wake_at;      /* when the supervisor looks next */
	int grace_ms;         /* shutdown: how long executors get to unload */
	int64_t next_rss;
	unsigned dropped;     /* results for runs not in flight, for the log */
	const char *(*taken)(void *arg, const char *name);
	void *taken_arg;
};

/* A run's end, delivered to the runner once the lock is released. */
struct done {
	uint32_t check_id;
	uint64_t token;
	enum healthd_status status;
	int64_t dur_ms;
	struct healthd_report rep; /* message, timed_out and values */
};

struct done_list {
	struct done *v;
	size_t n, cap;
};

static void *supervisor_main(void *arg);
static void read_proc(struct exec_proc *p, unsigned char *buf, struct done_list *d, int64_t now);
static void start_replacement(struct exec_plugin *pl);

static const char *const reason_names[EXEC_REASON_COUNT] = {
	[EXEC_REASON_CRASH] = "crash",
	[EXEC_REASON_DEADLINE] = "deadline",
	[EXEC_REASON_MEMORY] = "memory",
	[EXEC_REASON_PROTOCOL] = "protocol",
};

const char *
executor_reason_name(enum exec_reason r)
{
	return (unsigned)r < EXEC_REASON_COUNT ? reason_names[r] : "unknown";
}

/* ---- small helpers ------------------------------------------------------ */

static void
describe_status(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));
		if (abbrev != NULL)
			snprintf(buf, len, "crashed (SIG%s)", abbrev);
		else
			snprintf(buf, len, "crashed (signal %d)", WTERMSIG(status));
	} else if (WIFEXITED(status)) {
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	} else {
		snprintf(buf, len, "ended (wait status %#x)", (unsigned)status);
	}
}

static void
done_add(struct done_list *d, const struct exec_run *run, enum healthd_status st,
         bool timed_out, int64_t dur_ms, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void
done_add(struct done_list *d, const struct exec_run *run, enum healthd_status st,
         bool timed_out, int64_t dur_ms, const char *fmt, ...)
{
	struct done *x;
	va_list ap;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct done *grown = realloc(d->v, cap * sizeof(*grown));
		if (grown == NULL) {
			log_err("executor: out of memory: a run's end is lost");
			return;
		}
		d->v = grown;
		d->cap = cap;
	}
	x = &d->v[d->n++];
	memset(x, 0, sizeof(*x));
	x->check_id = run->check_id;
	x->token = run->token;
	x->status = st;
	x->dur_ms = dur_ms;
	x->rep.timed_out = timed_out;
	va_start(ap, fmt);
	vsnprintf(x->rep.message, sizeof(x->rep.message), fmt, ap);
	va_end(ap);
}

/* Without the lock: every end reaches the runner through its one door. */
static void
done_deliver(struct executor_set *s, struct done_list *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct done *x = &d->v[i];
		runner_remote_done(s->runner, x->check_id, x->token, x->status, &x->rep, x->dur_ms);
	}
	free(d->v);
	*d = (struct done_list){0};
}

static int
runs_push(struct exec_run **v, size_t *n, size_t *cap, const struct exec_run *run)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		struct exec_run *grown = realloc(*v, c * sizeof(*grown));
		if (grown == NULL)
			return -1;
		*v = grown;
		*cap = c;
	}
	(*v)[(*n)++] = *run;
	return 0;
}

static void
wake(struct executor_set *s)
{
	char c = 1;

	if (s->started && write(s->wake[1], &c, 1) == -1 && errno != EAGAIN)
		log_warn("executor: cannot wake the supervisor: %s", strerror(errno));
}

static bool
send_msg(int fd, struct exec_buf *b, int flags)
{
	ssize_t n;

	if (fd < 0 || !exec_buf_finish(b)) {
		errno = EPIPE;
		return false;
	}
	do
		n = send(fd, b->data, b->len, MSG_NOSIGNAL | flags);
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)b->len;
}

/* ---- spawning and reaping ---------------------------------------------- */

/* A pidfd polls for the child's exit; without one (old kernels, valgrind
 * 3.19), the supervisor looks with waitpid(WNOHANG) every few ms instead. */
static atomic_bool no_pidfd;

static int
pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
	static atomic_bool missing;
	int fd;

	if (atomic_load(&missing) || atomic_load(&no_pidfd))
		return -1;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		return fd;
	}
	if (errno == ENOSYS)
		atomic_store(&missing, true);
#endif
	(void)pid;
	return -1;
}

/* SIGKILL to the executor and everything in its process group (what plugin
 * code started and left there). Only while the executor is not reaped yet,
 * so its id cannot name another group. */
static void
proc_kill(struct exec_proc *p)
{
	if (kill(-p->pid, SIGKILL) == -1)
		kill(p->pid, SIGKILL);
	p->killed = true;
}

/* Reaps p if it has exited: first the rest of its group is killed, while the
 * unreaped executor still holds the group's id. */
static bool
proc_try_reap(struct exec_proc *p, int *status)
{
	siginfo_t si = {0};
	pid_t r;

	if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1) {
		*status = 0;
		return errno == ECHILD; /* gone already: nothing left to reap */
	}
	if (si.si_pid != p->pid)
		return false;
	kill(-p->pid, SIGKILL);
	do
		r = waitpid(p->pid, status, 0);
	while (r == -1 && errno == EINTR);
	return true;
}

static struct exec_proc *
proc_spawn(struct exec_plugin *pl, char *err, size_t errlen)
{
	struct executor_set *s = pl->set;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct exec_proc *p;
	char ppid[32], threads[32];
	char *argv[32];
	sigset_t none, deflt;
	size_t argc = 0;
	int sv[2], rc;
	pid_t pid;

	p = calloc(1, sizeof(*p));
	if (p == NULL || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		snprintf(err, errlen, "plugin %s: cannot start an executor: %s", pl->path,
		         strerror(errno));
		free(p);
		return NULL;
	}
	if (sv[1] == 3) { /* dup2(3, 3) would keep close-on-exec */
		int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);
		close(sv[1]);
		sv[1] = moved;
	}
	snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
	snprintf(threads, sizeof(threads), "%d", s->iso.max_threads);
	for (size_t i = 0; s->wrapper != NULL && s->wrapper[i] != NULL && argc < 24; i++)
		argv[argc++] = s->wrapper[i];
	argv[argc++] = s->self;
	argv[argc++] = "--executor";
	argv[argc++] = ppid;
	argv[argc++] = threads;
	argv[argc] = NULL;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, 4); /* nothing of the server's */
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&deflt);
	sigaddset(&deflt, SIGPIPE);
	sigaddset(&deflt, SIGTERM);
	sigaddset(&deflt, SIGINT);
	sigaddset(&deflt, SIGHUP);
	sigaddset(&deflt, SIGCHLD);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &deflt);
	/* a process group of its own: what plugin code starts can be killed with it */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	                         POSIX_SPAWN_SETPGROUP);
	rc = (s->wrapper != NULL ? posix_spawnp : posix_spawn)(&pid, argv[0], &fa, &attr, argv,
	                                                       s->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(sv[1]);
	if (rc != 0) {
		snprintf(err, errlen, "plugin %s: cannot start an executor (%s): %s", pl->path,
		         argv[0], strerror(rc));
		close(sv[0]);
		free(p);
		return NULL;
	}
	*p = (struct exec_proc){.pl = pl, .pid = pid, .fd = sv[0], .pidfd = pidfd_of(pid),
	                        .state = PROC_READY, .kill_at = INT64_MAX};
	return p;
}

/* Waits up to ms for p to exit; SIGKILLs it (and its group) after that.
 * Returns its status. */
static int
proc_reap(struct exec_proc *p, int ms)
{
	int64_t until = clock_ms() + ms;
	int status = 0;

	while (!proc_try_reap(p, &status)) {
		if (clock_ms() >= until && !p->killed)
			proc_kill(p);
		if (p->pidfd >= 0) {
			struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
			int64_t left = p->killed ? 100 : until - clock_ms();
			poll(&pfd, 1, left > 0 ? (int)left : 0);
		} else {
			struct timespec ts = {0, 5 * 1000000L}; /* no pidfd: look again soon */
			nanosleep(&ts, NULL);
		}
	}
	return status;
}

static void
proc_free(struct exec_proc *p)
{
	if (p == NULL)
		return;
	if (p->fd >= 0)
		close(p->fd);
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p->runs);
	free(p);
}

/*
 * One request and its answer on a fresh executor (startup and restarts, before
 * the supervisor polls it). Returns 0 with the reply decoded, or -1 with err:
 * a timeout, the executor's death (reaped, cause named) or a malformed reply.
 */
static int
proc_call(struct exec_proc *p, struct exec_buf *b, enum exec_type want, struct exec_msg *reply,
          const char *what, char *err, size_t errlen)
{
	int64_t until = clock_ms() + BOOT_TIMEOUT_MS;
	unsigned char *buf;
	char why[256], cause[96];
	ssize_t n = -1;

	if (!send_msg(p->fd, b, 0)) {
		n = 0; /* treat like a closed socket: reap and say why */
		goto dead;
	}
	buf = malloc(EXEC_MSG_MAX);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
		int64_t left = until - clock_ms();
		int rc;

		if (left <= 0) {
			free(buf);
			proc_kill(p);
			proc_reap(p, 0);
			snprintf(err, errlen, "its executor did not finish %s within %d s", what,
			         BOOT_TIMEOUT_MS / 1000);
			return -1;
		}
		rc = poll(&pfd, 1, (int)left);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;
		n = recv(p->fd, buf, EXEC_MSG_MAX, MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		break;
	}
	if (n > 0) {
		int rc = exec_decode(buf, (size_t)n, reply, why, sizeof(why));
		if (rc == 0 && reply->type == EXEC_DYING) {
			/* plugin code crashed in load() or instantiate(): its end follows */
			n = 0;
			free(buf);
			goto dead;
		}
		free(buf);
		if (rc == 0 && reply->type == want)
			return 0;
		if (rc == 0) {
			exec_msg_free(reply);
			snprintf(why, sizeof(why), "a message of type %u instead of the answer",
			         reply->type);
		}
		proc_kill(p);
		proc_reap(p, 0);
		snprintf(err, errlen, "its executor sent a malformed message during %s: %s", what,
		         why);
		return -1;
	}
	free(buf);
dead:
	describe_status(proc_reap(p, LOST_GRACE_MS), cause, sizeof(cause));
	snprintf(err, errlen, "its executor %s during %s", cause, what);
	return -1;
}

static void
msg_load(struct exec_buf *b, const char *path)
{
	exec_buf_start(b, EXEC_LOAD, 0);
	exec_buf_str(b, path, 0);
}

static void
msg_instantiate(struct exec_buf *b, const struct exec_instance *in)
{
	exec_buf_start(b, EXEC_INSTANTIATE, 0);
	exec_buf_str(b, in->name, 0);
	exec_buf_str(b, in->origin, 0);
	exec_buf_u32(b, (uint32_t)in->n);
	for (size_t i = 0; i < in->n; i++) {
		exec_buf_str(b, in->keys[i], 0);
		exec_buf_str(b, in->values[i], 0);
	}
}

/* Loads, instantiates and seals a fresh executor the way the first one was:
 * same plugin, same fixed checks, same instances at the same indexes. */
static int
proc_boot(struct exec_plugin *pl, struct exec_proc *p, char *err, size_t errlen)
{
	struct exec_buf *b = malloc(sizeof(*b));
	struct exec_msg m;
	int rc = -1;

	if (b == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	msg_load(b, pl->path);
	if (proc_call(p, b, EXEC_LOADED, &m, "load()", err, errlen) == -1)
		goto out;
	if (!m.ok || strcmp(m.name, pl->name) != 0 || m.nfixed != pl->nfixed) {
		snprintf(err, errlen, "it no longer loads as before: %.400s",
		         m.ok ? "other name or checks" : m.text);
		exec_msg_free(&m);
		goto killit;
	}
	for (size_t i = 0; i < pl->nfixed; i++) {
		if (strcmp(m.fixed[i].name, pl->fixed[i].name) != 0) {
			snprintf(err, errlen, "it registered \"%s\" where it had \"%s\"",
			         m.fixed[i].name, pl->fixed[i].name);
			exec_msg_free(&m);
			goto killit;
		}
	}
	exec_msg_free(&m);
	for (size_t i = 0; i < pl->ninst; i++) {
		msg_instantiate(b, &pl->inst[i]);
		if (!exec_buf_finish(b)) {
			snprintf(err, errlen, "%s: options too large", pl->inst[i].origin);
			goto killit;
		}
		if (proc_call(p, b, EXEC_INSTANTIATED, &m, "instantiate()", err, errlen) == -1)
			goto out;
		if (!m.ok || m.index != pl->inst[i].index) {
			snprintf(err, errlen, "check %s: %.400s", pl->inst[i].name,
			         m.ok ? "registered at another index" : m.text);
			goto killit;
		}
	}
	exec_buf_start(b, EXEC_SEAL, 0);
	if (proc_call(p, b, EXEC_SEALED, &m, "seal", err, errlen) == -1)
		goto out;
	rc = 0;
	goto out;
killit:
	proc_kill(p);
	proc_reap(p, 0);
out:
	free(b);
	return rc;
}

/* ---- startup ------------------------------------------------------------ */

struct executor_set *
executor_set_new(const struct config *cfg, const char *self)
{
	struct executor_set *s = calloc(1, sizeof(*s));
	const char *wrap = getenv("HEALTHD_EXECUTOR_WRAPPER");
	size_t n = 0, k = 0;

	if (s == NULL)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->iso = cfg->isolation;
	s->self = strdup(self);
	s->wake[0] = s->wake[1] = -1;
	s->wake_at = INT64_MAX;
	while (environ[n] != NULL)
		n++;
	s->envp = calloc(n + 1, sizeof(*s->envp));
	if (s->self == NULL || s->envp == NULL)
		goto oom;
	/* never the secret; nor systemd's notify and watchdog: those are the server's */
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "HEALTH_URL_SECRET=", 18) != 0 &&
		    strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0 &&
		    strncmp(environ[i], "WATCHDOG_USEC=", 14) != 0 &&
		    strncmp(environ[i], "WATCHDOG_PID=", 13) != 0)
			s->envp[k++] = environ[i];
	if (wrap != NULL && wrap[0] != '\0') {
		/* A test setup's wrapper (valgrind), whose words are split on spaces.
		 * Such a server runs under it too, and valgrind 3.19 answers
		 * pidfd_open with a warning on stderr: do without pidfds there. */
		atomic_store(&no_pidfd, true);
		char *copy = strdup(wrap), *save = NULL;
		size_t w = 0;
		s->wrapper = calloc(24, sizeof(*s->wrapper));
		if (copy == NULL || s->wrapper == NULL) {
			free(copy);
			goto oom;
		}
		for (char *t = strtok_r(copy, " ", &save); t != NULL && w < 23;
		     t = strtok_r(NULL, " ", &save))
			s->wrapper[w++] = t;
		if (w == 0)
			free(copy);
	}
	return s;
oom:
	executor_set_free(s);
	return NULL;
}

static struct exec_plugin *
find_plugin(const struct executor_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->plugins[i]->name, name) == 0)
			return s->plugins[i];
	return NULL;
}

void
executor_set_taken(struct executor_set *s, const char *(*fn)(void *arg, const char *name),
                   void *arg)
{
	s->taken = fn;
	s->taken_arg = arg;
}

const char *
executor_file_of(const struct executor_set *s, const char *name)
{
	const struct exec_plugin *pl = find_plugin(s, name);

	return pl != NULL ? pl->path : NULL;
}

bool
executor_has_plugin(const struct executor_set *s, const char *name)
{
	return s != NULL && find_plugin(s, name) != NULL;
}

static void
plugin_free(struct exec_plugin *pl)
{
	if (pl == NULL)
		return;
	for (struct exec_proc *p = pl->procs, *next; p != NULL; p = next) {
		next = p->next;
		proc_free(p);
	}
	for (size_t i = 0; i < pl->ninst; i++) {
		struct exec_instance *in = &pl->inst[i];
		for (size_t j = 0; j < in->n; j++) {
			free(in->keys[j]);
			free(in->values[j]);
		}
		free(in->keys);
		free(in->values);
		free(in->name);
		free(in->origin);
	}
	free(pl->inst);
	free(pl->fixed);
	free(pl->pending);
	free(pl->path);
	free(pl);
}

/* The registry entry of pl's fixed check number i (registered by load()). */
static struct check
fixed_check(struct exec_plugin *pl, size_t i)
{
	struct check c = {0};

	snprintf(c.name, sizeof(c.name), "%s", pl->fixed[i].name);
	c.plugin = pl->name;
	c.origin = pl->path;
	c.exec = pl;
	c.exec_index = (uint32_t)i;
	c.in_defaults = pl->fixed[i].in_defaults;
	c.timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS;
	/* HEALTHD_CHECK_INLINE means nothing across a process boundary */
	return c;
}

int
executor_load(struct executor_set *s, const char *path, struct registry *reg, char *err,
              size_t errlen)
{
	struct exec_plugin *pl, **grown;
	struct exec_proc *p;
	struct exec_buf *b;
	struct exec_msg m;
	char why[768];

	grown = realloc(s->plugins, (s->n + 1) * sizeof(*s->plugins));
	pl = calloc(1, sizeof(*pl));
	b = malloc(sizeof(*b));
	if (grown != NULL)
		s->plugins = grown;
	if (grown == NULL || pl == NULL || b == NULL || (pl->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "plugin %s: out of memory", path);
		free(b);
		plugin_free(pl);
		return -1;
	}
	pl->set = s;
	pl->serving = true; /* a reload's merge says otherwise */
	if (stat(path, &pl->file) == -1)
		memset(&pl->file, 0, sizeof(pl->file));
	p = proc_spawn(pl, err, errlen);
	if (p == NULL) {
		free(b);
		plugin_free(pl);
		return -1;
	}
	msg_load(b, path);
	if (proc_call(p, b, EXEC_LOADED, &m, "load()", why, sizeof(why)) == -1) {
		snprintf(err, errlen, "plugin %s: refused: %s", path, why);
		goto fail;
	}
	if (!m.ok) {
		/* the loader's own one line, as in process */
		snprintf(err, errlen, "%s", m.text);
		exec_msg_free(&m);
		goto fail;
	}
	if (strlen(m.name) == 0 || strspn(m.name, "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
	    strlen(m.name)) {
		/* the loader checked it in the executor, but plugin code ran there */
		snprintf(err, errlen, "plugin %s: refused: its executor reported a bad name", path);
		exec_msg_free(&m);
		goto fail;
	}
	if (find_plugin(s, m.name) != NULL || (s->taken && s->taken(s->taken_arg, m.name))) {
		snprintf(err, errlen, "plugin %s: refused: a plugin named \"%s\" is already loaded "
		         "from %s", path, m.name, find_plugin(s, m.name) ? find_plugin(s, m.name)->path
		         : s->taken(s->taken_arg, m.name));
		exec_msg_free(&m);
		goto fail;
	}
	snprintf(pl->name, sizeof(pl->name), "%s", m.name);
	snprintf(pl->version, sizeof(pl->version), "%s", m.version);
	snprintf(pl->description, sizeof(pl->description), "%s", m.description);
	pl->abi_major = m.abi_major;
	pl->abi_minor = m.abi_minor;
	pl->fixed = m.fixed;
	pl->nfixed = m.nfixed;
	m.fixed = NULL;
	for (size_t i = 0; i < pl->nfixed; i++) {
		struct check c = fixed_check(pl, i);
		if (registry_add(reg, &c, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "plugin %s: refused: it registered a check the host "
			         "refused: %s", path, why);
			goto fail;
		}
		pl->nchecks++;
	}
	p->next = pl->procs;
	pl->procs = p;
	pl->cur = p;
	s->plugins[s->n++] = pl;
	free(b);
	log_debug("plugin %s %s runs isolated in executor pid %ld", pl->name, pl->version,
	          (long)p->pid);
	return 0;
fail:
	if (p->fd >= 0) {
		close(p->fd); /* the executor exits on its own */
		p->fd = -1;
		proc_reap(p, REAP_GRACE_MS);
	}
	proc_free(p);
	free(b);
	plugin_free(pl);
	return -1;
}

static int
keep_instance(struct exec_plugin *pl, const struct config_check *ck, uint32_t index)
{
	struct exec_instance *grown = realloc(pl->inst, (pl->ninst + 1) * sizeof(*grown)), *in;

	if (grown == NULL)
		return -1;
	pl->inst = grown;
	in = &pl->inst[pl->ninst];
	*in = (struct exec_instance){.name = strdup(ck->name), .origin = strdup(ck->origin),
	                             .index = index};
	pl->ninst++;
	if (in->name == NULL || in->origin == NULL)
		return -1;
	if (ck->options.n > 0) {
		in->keys = calloc(ck->options.n, sizeof(char *));
		in->values = calloc(ck->options.n, sizeof(char *));
		if (in->keys == NULL || in->values == NULL)
			return -1;
	}
	for (size_t i = 0; i < ck->options.n; i++) {
		in->keys[i] = strdup(ck->options.v[i].key);
		in->values[i] = strdup(ck->options.v[i].value);
		in->n++;
		if (in->keys[i] == NULL || in->values[i] == NULL)
			return -1;
	}
	return 0;
}

int
executor_instantiate(struct executor_set *s, const struct config_check *ck,
                     struct registry *reg, char *err, size_t errlen)
{
	struct exec_plugin *pl = find_plugin(s, ck->plugin);
	struct exec_instance tmp;
	struct exec_buf *b;
	struct exec_msg m;
	struct check c = {0};
	char why[768];
	int rc = -1;

	if (pl == NULL || pl->cur == NULL) {
		snprintf(err, errlen, "%s.plugin: unknown plugin \"%.64s\"", ck->origin, ck->plugin);
		return -1;
	}
	if (registry_name_error(ck->name) != NULL) {
		snprintf(err, errlen, "%s.name: invalid check name \"%.80s\": %s", ck->origin,
		         ck->name, registry_name_error(ck->name));
		return -1;
	}
	b = malloc(sizeof(*b));
	tmp = (struct exec_instance){.name = ck->name, .origin = ck->origin, .n = ck->options.n};
	tmp.keys = calloc(ck->options.n + 1, sizeof(char *));
	tmp.values = calloc(ck->options.n + 1, sizeof(char *));
	if (b == NULL || tmp.keys == NULL || tmp.values == NULL) {
		snprintf(err, errlen, "%s: out of memory", ck->origin);
		goto out;
	}
	for (size_t i = 0; i < ck->options.n; i++) {
		tmp.keys[i] = ck->options.v[i].key;
		tmp.values[i] = ck->options.v[i].value;
	}
	msg_instantiate(b, &tmp);
	if (!exec_buf_finish(b)) {
		snprintf(err, errlen, "%s: the check's options are larger than %d bytes", ck->origin,
		         EXEC_MSG_MAX);
		goto out;
	}
	if (proc_call(pl->cur, b, EXEC_INSTANTIATED, &m, "instantiate()", why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s (plugin %s): %s", ck->origin, ck->plugin, why);
		pl->cur->lost = true;
		goto out;
	}
	if (!m.ok) {
		snprintf(err, errlen, "%s", m.text);
		goto out;
	}
	snprintf(c.name, sizeof(c.name), "%s", ck->name);
	c.plugin = pl->name;
	c.exec = pl;
	c.exec_index = m.index;
	registry_apply_config(&c, ck);
	if (registry_add(reg, &c, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s.name: %s", ck->origin, why);
		goto out;
	}
	if (keep_instance(pl, ck, m.index) == -1) {
		snprintf(err, errlen, "%s: out of memory", ck->origin);
		goto out;
	}
	pl->nchecks++;
	rc = 0;
out:
	free(tmp.keys);
	free(tmp.values);
	free(b);
	return rc;
}

int
executor_seal(struct executor_set *s, char *err, size_t errlen)
{
	struct exec_buf *b = malloc(sizeof(*b));
	struct exec_msg m;

	if (b == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct exec_plugin *pl = s->plugins[i];
		char why[512];
		exec_buf_start(b, EXEC_SEAL, 0);
		if (proc_call(pl->cur, b, EXEC_SEALED, &m, "seal", why, sizeof(why)) == -1) {
			snprintf(err, errlen, "plugin %s: %s", pl->path, why);
			pl->cur->lost = true;
			free(b);
			return -1;
		}
	}
	free(b);
	return 0;
}

int
executor_start(struct executor_set *s, struct runner *runner, char *err, size_t errlen)
{
	int rc;

	s->runner = runner;
	if (executor_seal(s, err, errlen) == -1)
		return -1;
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "executor: pipe: %s", strerror(errno));
		return -1;
	}
	s->started = true;
	s->next_rss = clock_ms() + RSS_POLL_MS;
	rc = pthread_create(&s->thread, NULL, supervisor_main, s);
	if (rc != 0) {
		s->started = false;
		snprintf(err, errlen, "executor: cannot start the supervisor thread: %s",
		         strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- runs --------------------------------------------------------------- */

static bool
send_run(struct exec_proc *p, const struct exec_run *run, int64_t timeout_ms)
{
	struct exec_buf b;

	exec_buf_start(&b, EXEC_RUN, run->token);
	exec_buf_u32(&b, run->index);
	exec_buf_i64(&b, run->deadline);
	exec_buf_i64(&b, timeout_ms);
	return send_msg(p->fd, &b, MSG_DONTWAIT);
}

int
executor_run(const struct check *c, uint32_t check_id, uint64_t token, int64_t deadline_ms,
             char *msg, size_t msglen)
{
	struct exec_plugin *pl = c->exec;
	struct executor_set *s = pl->set;
	struct exec_run run = {.token = token, .check_id = check_id, .index = c->exec_index,
	                       .deadline = deadline_ms, .check_name = c->name};
	int64_t timeout_ms = c->timeout_ms;
	int64_t kill_time = deadline_ms + s->iso.kill_after_ms;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		snprintf(msg, msglen, "healthd is shutting down");
		rc = -1;
	} else if (pl->retired) {
		/* a request begun before a reload that removed it, not run after */
		snprintf(msg, msglen, "plugin %s was removed by a reload", pl->name);
		rc = -1;
	} else if (pl->cur != NULL) {
		struct exec_proc *p = pl->cur;
		/* A full socket means an executor that stopped reading: its runs
		 * fail now, and the deadline check retires it. */
		if (runs_push(&p->runs, &p->nruns, &p->cap, &run) == -1) {
			snprintf(msg, msglen, "out of memory");
			rc = -1;
		} else if (!send_run(p, &run, timeout_ms) && errno == EAGAIN) {
			p->nruns--;
			snprintf(msg, msglen, "plugin %s: its executor is not taking runs", pl->name);
			rc = -1;
			/* the supervisor replaces it (spawning is its job, see
			 * start_replacement) */
			if (!p->unresponsive) {
				p->unresponsive = true;
				s->wake_at = 0;
				wake(s);
			}
		}
		/* any other send error: the executor is dying; the supervisor fails
		 * the run with the cause once it is reaped */
	} else if (pl->starting) {
		if (runs_push(&pl->pending, &pl->npending, &pl->pcap, &run) == -1) {
			snprintf(msg, msglen, "out of memory");
			rc = -1;
		}
	} else {
		int64_t left = pl->restart_at - clock_ms();
		snprintf(msg, msglen, "plugin %s is down: %s; restart in %lld ms", pl->name,
		         pl->down_why, (long long)(left > 0 ? left : 0));
		rc = -1;
	}
	if (rc == 0 && kill_time < s->wake_at) {
		s->wake_at = kill_time;
		wake(s);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

bool
executor_cancel(struct exec_plugin *pl, uint64_t token)
{
	struct executor_set *s = pl->set;
	bool dropped = false;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < pl->npending; i++) {
		if (pl->pending[i].token == token) {
			pl->pending[i] = pl->pending[--pl->npending];
			dropped = true;
			break;
		}
	}
	for (struct exec_proc *p = pl->procs; p != NULL && !dropped; p = p->next) {
		for (size_t i = 0; i < p->nruns; i++) {
			if (p->runs[i].token == token) {
				struct exec_buf b;
				exec_buf_start(&b, EXEC_CANCEL, token);
				send_msg(p->fd, &b, MSG_DONTWAIT);
				break;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	return dropped;
}

/* ---- the supervisor ----------------------------------------------------- */

static const char *
check_name_of(const struct exec_run *run)
{
	return run->check_name != NULL ? run->check_name : "?";
}

static void
unlink_proc(struct exec_plugin *pl, struct exec_proc *p)
{
	for (struct exec_proc **pp = &pl->procs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	if (pl->cur == p)
		pl->cur = NULL;
}

/* A crash (or a failed start) of pl's current executor: back off, then restart. */
static void
plugin_down(struct exec_plugin *pl, enum exec_reason reason, const char *why, int64_t now)
{
	struct executor_set *s = pl->set;

	if (pl->backoff_ms == 0 || now - pl->last_crash >= CRASH_RESET_MS)
		pl->backoff_ms = s->iso.restart_min_ms;
	else
		pl->backoff_ms = pl->backoff_ms * 2 > s->iso.restart_max_ms ? s->iso.restart_max_ms
		                                                            : pl->backoff_ms * 2;
	pl->last_crash = now;
	pl->restarts[reason]++;
	pl->down = true;
	pl->restart_at = now + pl->backoff_ms;
	snprintf(pl->down_why, sizeof(pl->down_why), "%.150s", why);
}

/* The executor is gone (status from waitpid): end its runs, and if it was the
 * current one, schedule a restart with backoff. */
static void
proc_dead(struct exec_proc *p, int status, struct done_list *d, int64_t now)
{
	struct exec_plugin *pl = p->pl;
	struct executor_set *s = pl->set;
	bool was_current = pl->cur == p;
	char cause[320], why[400];

	/* What it sent before it died counts: results, and which check's code
	 * ended it (without a pidfd we can reap before we read). */
	if (p->fd >= 0) {
		unsigned char *buf = malloc(EXEC_MSG_MAX + 1);
		if (buf != NULL)
			read_proc(p, buf, d, now);
		free(buf);
	}
	if (p->lost_why[0] != '\0')
		snprintf(cause, sizeof(cause), "%s", p->lost_why);
	else
		describe_status(status, cause, sizeof(cause));
	/* every run in flight there fails, naming the check whose code did it
	 * when the executor could tell (a fatal signal, or exit() in run()) */
	for (size_t i = 0; i < p->nruns; i++)
		done_add(d, &p->runs[i], HEALTHD_CRITICAL, false, 0, "plugin %s %s during check \"%s\"",
		         pl->name, cause, p->culprit[0] ? p->culprit : check_name_of(&p->runs[i]));
	unlink_proc(pl, p);
	if (p->culprit[0] != '\0')
		snprintf(why, sizeof(why), "%s during check \"%s\"", cause, p->culprit);
	else if (p->nruns > 0) /* which of them did it, it could not say */
		snprintf(why, sizeof(why), "%s with %zu run%s in flight (check \"%s\"%s)", cause,
		         p->nruns, p->nruns == 1 ? "" : "s", check_name_of(&p->runs[0]),
		         p->nruns > 1 ? " and others" : "");
	else
		snprintf(why, sizeof(why), "%s", cause);
	if (s->stopping || pl->retired) {
		/* expected */
	} else if (was_current) {
		snprintf(cause, sizeof(cause), "its executor %.200s", why);
		plugin_down(pl, p->reason, cause, now);
		log_err("plugin %s (%s): executor pid %ld %s; restarting in %d ms", pl->name,
		        pl->path, (long)p->pid, why, pl->backoff_ms);
	} else if (!p->killed && (p->nruns > 0 || p->culprit[0] != '\0')) {
		log_err("plugin %s (%s): retired executor pid %ld %s", pl->name, pl->path,
		        (long)p->pid, why);
	}
	proc_free(p);
}

/* Socket closed or broken: the executor is dead or dying. */
static void
proc_lost(struct exec_proc *p, int64_t now)
{
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	if (!p->lost) {
		p->lost = true;
		if (p->kill_at > now + LOST_GRACE_MS)
			p->kill_at = now + LOST_GRACE_MS;
	}
}

/* Ends p now on purpose (protocol, memory): reason and why go to its runs. */
static void
proc_end(struct exec_proc *p, enum exec_reason reason, const char *why, int64_t now)
{
	p->reason = reason;
	snprintf(p->lost_why, sizeof(p->lost_why), "%.255s", why);
	proc_kill(p);
	proc_lost(p, now);
}

/* Stops giving p new runs; a fresh executor takes them (no backoff). */
static void
proc_retire(struct exec_proc *p, enum exec_reason reason)
{
	struct exec_plugin *pl = p->pl;

	if (p->state == PROC_RETIRING)
		return;
	p->state = PROC_RETIRING;
	pl->restarts[reason]++;
	if (pl->cur == p)
		pl->cur = NULL;
	start_replacement(pl);
}

static void
handle_message(struct exec_proc *p, const unsigned char *buf, size_t n, struct done_list *d,
               int64_t now)
{
	struct executor_set *s = p->pl->set;
	struct exec_msg m;
	char why[256], what[320];

	if (exec_decode(buf, n, &m, why, sizeof(why)) == -1 ||
	    (m.type != EXEC_RESULT && m.type != EXEC_DYING)) {
		if (m.type != 0) {
			snprintf(why, sizeof(why), "unexpected message type %u", m.type);
			exec_msg_free(&m);
		}
		log_err("plugin %s: executor pid %ld sent a malformed message (%s); killing it",
		        p->pl->name, (long)p->pid, why);
		snprintf(what, sizeof(what), "sent a malformed message (%.200s)", why);
		proc_end(p, EXEC_REASON_PROTOCOL, what, now);
		return;
	}
	if (m.type == EXEC_DYING) {
		snprintf(p->culprit, sizeof(p->culprit), "%s", m.name2);
		return;
	}
	for (size_t i = 0; i < p->nruns; i++) {
		if (p->runs[i].token == m.token) {
			done_add(d, &p->runs[i], (enum healthd_status)m.status, m.timed_out,
			         m.duration_us / 1000, "%s", m.text);
			if (d->n > 0 && d->v[d->n - 1].token == m.token) {
				d->v[d->n - 1].rep.nvalues = m.nvalues;
				memcpy(d->v[d->n - 1].rep.values, m.values,
				       m.nvalues * sizeof(m.values[0]));
			}
			p->runs[i] = p->runs[--p->nruns];
			return;
		}
	}
	/* A result for a run that is not in flight here: late, or forged. */
	if (s->dropped++ % 1000 == 0)
		log_warn("plugin %s: executor pid %ld sent a result for no run in flight; dropped "
		         "(%u so far)", p->pl->name, (long)p->pid, s->dropped);
}

static void
read_proc(struct exec_proc *p, unsigned char *buf, struct done_list *d, int64_t now)
{
	/* bounded, so one chatty executor cannot starve the others */
	for (int i = 0; i < 256 && p->fd >= 0; i++) {
		ssize_t n = recv(p->fd, buf, EXEC_MSG_MAX + 1, MSG_DONTWAIT | MSG_TRUNC);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			proc_lost(p, now);
			return;
		}
		handle_message(p, buf, (size_t)n > EXEC_MSG_MAX + 1 ? EXEC_MSG_MAX + 1 : (size_t)n,
		               d, now);
	}
}

static uint64_t
rss_of(pid_t pid)
{
	char path[64];
	unsigned long long size = 0, resident = 0;
	FILE *f;

	/* a sandboxed executor is in its PID namespace, below the pid spawned */
	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)sandbox_memory_pid(pid));
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void
check_rss(struct exec_proc *p)
{
	struct exec_plugin *pl = p->pl;
	int cap = pl->set->iso.max_rss_mb;
	unsigned long long mb;

	pl->rss_bytes = rss_of(p->pid);
	if (pl->rss_bytes <= (uint64_t)cap << 20)
		return;
	mb = (pl->rss_bytes + (1u << 20) - 1) >> 20;
	log_warn("plugin %s: executor pid %ld uses %llu MB, above isolation.max_rss_mb %d; "
	         "replacing it", pl->name, (long)p->pid, mb, cap);
	proc_retire(p, EXEC_REASON_MEMORY);
}

/* A starter thread is through: install its executor, or back off. */
static void
boot_finished(struct exec_plugin *pl, struct done_list *d, int64_t now)
{
	struct exec_proc *p = pl->booting;

	pthread_join(pl->starter, NULL); /* it returned, or is about to: nothing after */
	pl->starter_joinable = false;
	pl->boot_done = false;
	pl->booting = NULL;
	pl->starting = false;
	if (pl->boot_rc != 0) {
		char why[600];
		if (p != NULL)
			proc_free(p); /* proc_boot reaped it */
		snprintf(why, sizeof(why), "restart failed: %.500s", pl->boot_err);
		plugin_down(pl, EXEC_REASON_CRASH, why, now);
		log_err("plugin %s (%s): restart failed: %s; next try in %d ms", pl->name, pl->path,
		        pl->boot_err, pl->backoff_ms);
		for (size_t i = 0; i < pl->npending; i++)
			done_add(d, &pl->pending[i], HEALTHD_CRITICAL, false, 0,
			         "plugin %s is down: %s", pl->name, pl->down_why);
		pl->npending = 0;
		return;
	}
	p->next = pl->procs;
	pl->procs = p;
	pl->cur = p;
	pl->down = false;
	p->ready_at = now;
	pl->rss_bytes = rss_of(p->pid);
	if (pl->rss_bytes > (uint64_t)pl->set->iso.max_rss_mb << 20) {
		/* above the cap before any run: replacing it would loop; back off */
		char why[200];
		snprintf(why, sizeof(why), "used %llu MB after load(), above isolation.max_rss_mb %d",
		         (unsigned long long)((pl->rss_bytes + (1u << 20) - 1) >> 20),
		         pl->set->iso.max_rss_mb);
		log_warn("plugin %s: executor pid %ld %s", pl->name, (long)p->pid, why);
		proc_end(p, EXEC_REASON_MEMORY, why, now);
		return; /* pending runs wait for the next try, or fail if it is late */
	}
	log_info("plugin %s: executor pid %ld ready", pl->name, (long)p->pid);
	for (size_t i = 0; i < pl->npending; i++) {
		struct exec_run *run = &pl->pending[i];
		if (runs_push(&p->runs, &p->nruns, &p->cap, run) == -1 ||
		    (!send_run(p, run, run->deadline - now) && errno == EAGAIN)) {
			if (p->nruns > 0 && p->runs[p->nruns - 1].token == run->token)
				p->nruns--;
			done_add(d, run, HEALTHD_CRITICAL, false, 0,
			         "plugin %s: its executor is not taking runs", pl->name);
		}
	}
	pl->npending = 0;
}

/*
 * A plugin no configuration uses (reload): its executors take no new runs
 * and close once their runs are over (timers() then reaps them) ...
 */
static void
retire_mark(struct exec_plugin *pl, struct done_list *d)
{
	for (size_t k = 0; k < pl->npending; k++)
		done_add(d, &pl->pending[k], HEALTHD_CRITICAL, false, 0,
		         "plugin %s was removed by a reload", pl->name);
	pl->npending = 0;
	pl->down = false;
	for (struct exec_proc *p = pl->procs; p != NULL; p = p->next)
		p->state = PROC_RETIRING; /* not a restart: no reason counted */
	pl->cur = NULL;
}

/* ... and when none is left it is freed. Returns true if it was, and
 * s->plugins[i] is now another plugin. */
static bool
retired_gone(struct executor_set *s, size_t i)
{
	struct exec_plugin *pl = s->plugins[i];

	if (pl->procs != NULL || pl->starting)
		return false; /* a restart in load(): boot_finished() installs it first */
	log_info("plugin %s %s (%s): retired", pl->name, pl->version, pl->path);
	plugin_free(pl);
	s->plugins[i] = s->plugins[--s->n];
	return true;
}

/* Runs past deadline + kill_after_ms, kill times, reaps, restarts, RSS. */
static int64_t
timers(struct executor_set *s, struct done_list *d, int64_t now)
{
	int64_t next = INT64_MAX;
	bool rss_due = now >= s->next_rss;

	if (rss_due)
		s->next_rss = now + RSS_POLL_MS;
	for (size_t i = 0; i < s->n; i++) {
		struct exec_plugin *pl = s->plugins[i];
		if (pl->boot_done)
			boot_finished(pl, d, now);
		if (pl->retired)
			retire_mark(pl, d);
		for (struct exec_proc *p = pl->procs, *next_p; p != NULL; p = next_p) {
			next_p = p->next;
			for (size_t k = 0; k < p->nruns && !p->lost;) {
				struct exec_run *run = &p->runs[k];
				int64_t limit = run->deadline + s->iso.kill_after_ms;
				if (now < limit) {
					if (limit < next)
						next = limit;
					k++;
					continue;
				}
				if (p->state == PROC_READY) {
					log_warn("plugin %s: check \"%s\" still running %lld ms after its "
					         "deadline; replacing executor pid %ld", pl->name,
					         check_name_of(run), (long long)(now - run->deadline),
					         (long)p->pid);
					proc_retire(p, EXEC_REASON_DEADLINE);
				}
				/* already answered at its deadline; this frees the check */
				done_add(d, run, HEALTHD_CRITICAL, true, now - run->deadline,
				         "killed: still running %lld ms after its deadline",
				         (long long)(now - run->deadline));
				p->runs[k] = p->runs[--p->nruns];
				p->stuck = true;
			}
			if (p->state == PROC_RETIRING && p->nruns == 0 && !p->lost) {
				/* its last run is over: close it; it unloads, or is killed
				 * (at once if a thread is stuck: nothing graceful is left) */
				if (p->kill_at == INT64_MAX)
					p->kill_at = p->stuck ? now : now + REAP_GRACE_MS;
				if (p->fd >= 0) {
					close(p->fd);
					p->fd = -1;
				}
			}
			if (p->kill_at <= now && !p->killed)
				proc_kill(p);
			if (p->unresponsive && p->state == PROC_READY && !p->lost) {
				log_warn("plugin %s: executor pid %ld does not read its socket; replacing "
				         "it", pl->name, (long)p->pid);
				proc_retire(p, EXEC_REASON_PROTOCOL);
			}
			if (rss_due && p->state == PROC_READY && !p->lost)
				check_rss(p);
			/* reap what has exited: its pidfd said so, or without a pidfd
			 * whatever we expect to end */
			if (p->exited || p->lost || p->killed || p->fd < 0 || p->pidfd < 0) {
				int status;
				if (proc_try_reap(p, &status)) {
					proc_dead(p, status, d, now);
					continue;
				}
			}
			if (p->kill_at != INT64_MAX && !p->killed && p->kill_at < next)
				next = p->kill_at;
			if ((p->lost || p->killed || p->fd < 0) && p->pidfd < 0 && now + 10 < next)
				next = now + 10; /* no pidfd: look for its exit soon */
		}
		if (pl->retired) {
			if (retired_gone(s, i))
				i--; /* freed: the next one moved here */
			continue;
		}
		if (pl->down && !pl->starting && !s->stopping) {
			if (now >= pl->restart_at)
				start_replacement(pl);
			else if (pl->restart_at < next)
				next = pl->restart_at;
		}
	}
	if (s->next_rss < next)
		next = s->next_rss;
	return next;
}

/*
 * Shutdown, on the thread that spawned the executors (PR_SET_PDEATHSIG fires
 * when that thread ends): close every socket, so that executors destroy their
 * checks and unload, wait up to grace_ms, then kill and reap what is left.
 * Called with the lock held; returns with it held.
 */
static void
stop_all(struct executor_set *s, struct done_list *d)
{
	int64_t until = clock_ms() + s->grace_ms;
	bool any;

	/* a restart still in load() is not waited for: its end unblocks the starter */
	for (size_t i = 0; i < s->n; i++) {
		struct exec_plugin *pl = s->plugins[i];
		if (pl->booting != NULL && !pl->booting->killed)
			proc_kill(pl->booting);
	}
	for (size_t i = 0; i < s->n; i++) {
		struct exec_plugin *pl = s->plugins[i];
		if (pl->starter_joinable) {
			pthread_mutex_unlock(&s->lock);
			pthread_join(pl->starter, NULL);
			pthread_mutex_lock(&s->lock);
			pl->starter_joinable = false;
		}
		if (pl->booting != NULL) {
			struct exec_proc *p = pl->booting;
			pl->booting = NULL;
			pl->boot_done = false;
			pl->starting = false;
			if (pl->boot_rc == 0) { /* booted after all: stop it with the rest */
				p->next = pl->procs;
				pl->procs = p;
			} else {
				proc_free(p);
			}
		}
		for (size_t k = 0; k < pl->npending; k++)
			done_add(d, &pl->pending[k], HEALTHD_UNKNOWN, false, 0,
			         "healthd is shutting down");
		pl->npending = 0;
		for (struct exec_proc *p = pl->procs; p != NULL; p = p->next) {
			if (p->fd >= 0) {
				close(p->fd);
				p->fd = -1;
			}
		}
	}
	do {
		any = false;
		for (size_t i = 0; i < s->n; i++) {
			struct exec_plugin *pl = s->plugins[i];
			for (struct exec_proc *p = pl->procs, *next; p != NULL; p = next) {
				int status = 0;
				next = p->next;
				if (clock_ms() >= until && !p->killed)
					proc_kill(p);
				if (proc_try_reap(p, &status))
					proc_dead(p, status, d, clock_ms());
				else
					any = true;
			}
		}
		if (any) {
			struct timespec ts = {0, 5 * 1000000L};
			pthread_mutex_unlock(&s->lock);
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&s->lock);
		}
	} while (any);
}

static void *
supervisor_main(void *arg)
{
	struct executor_set *s = arg;
	struct pollfd *pfd = calloc(MAX_POLL, sizeof(*pfd));
	struct exec_proc **who = calloc(MAX_POLL, sizeof(*who));
	unsigned char *buf = malloc(EXEC_MSG_MAX + 1);
	struct done_list d = {0};

	if (pfd == NULL || who == NULL || buf == NULL) {
		log_err("executor: out of memory: no supervisor");
		free(pfd);
		free(who);
		free(buf);
		return NULL;
	}
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		int64_t now = clock_ms(), next;
		size_t n = 1;
		int timeout, rc;

		next = timers(s, &d, now);
		s->wake_at = next;
		pfd[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
		for (size_t i = 0; i < s->n; i++) {
			for (struct exec_proc *p = s->plugins[i]->procs; p != NULL; p = p->next) {
				if (n + 2 > MAX_POLL)
					break;
				if (p->fd >= 0) {
					who[n] = p;
					pfd[n++] = (struct pollfd){.fd = p->fd, .events = POLLIN};
				}
				if (p->pidfd >= 0) {
					who[n] = p;
					pfd[n++] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
				}
			}
		}
		pthread_mutex_unlock(&s->lock);
		done_deliver(s, &d);

		timeout = next == INT64_MAX ? -1 : next <= now ? 0 :
		          next - now > INT_MAX ? INT_MAX : (int)(next - now);
		rc = poll(pfd, n, timeout);

		pthread_mutex_lock(&s->lock);
		if (rc <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			char drain[64];
			while (read(s->wake[0], drain, sizeof(drain)) > 0)
				;
		}
		now = clock_ms();
		for (size_t i = 1; i < n; i++) {
			struct exec_proc *p = who[i];
			if (pfd[i].revents == 0)
				continue;
			if (pfd[i].fd != p->fd) {
				p->exited = true; /* its pidfd: timers() reaps it */
				continue;
			}
			read_proc(p, buf, &d, now);
		}
		pthread_mutex_unlock(&s->lock);
		done_deliver(s, &d);
		pthread_mutex_lock(&s->lock);
	}
	stop_all(s, &d);
	pthread_mutex_unlock(&s->lock);
	done_deliver(s, &d);
	free(pfd);
	free(who);
	free(buf);
	return NULL;
}

/* ---- restarts ----------------------------------------------------------- */

/* Loads the executor the supervisor spawned; never touches the runner (its
 * end is the supervisor's to handle: boot_finished()). */
static void *
starter_main(void *arg)
{
	struct exec_plugin *pl = arg;
	struct executor_set *s = pl->set;
	char err[512];
	int rc;

	rc = proc_boot(pl, pl->booting, err, sizeof(err));
	pthread_mutex_lock(&s->lock);
	pl->boot_rc = rc;
	if (rc != 0)
		snprintf(pl->boot_err, sizeof(pl->boot_err), "%s", err);
	pl->boot_done = true;
	wake(s);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Under the lock, on the supervisor thread. Spawns a fresh executor for pl and
 * loads it on a thread of its own, as loading may take long; runs wait in
 * pending meanwhile. */
static void
start_replacement(struct exec_plugin *pl)
{
	struct executor_set *s = pl->set;
	char err[512];
	int rc;

	if (pl->starting || s->stopping)
		return;
	/* Spawned here, on the supervisor thread, which lives as long as the
	 * executors: PR_SET_PDEATHSIG fires when the thread that forked exits. */
	pl->booting = proc_spawn(pl, err, sizeof(err));
	if (pl->booting == NULL) {
		plugin_down(pl, EXEC_REASON_CRASH, err, clock_ms());
		log_err("plugin %s: cannot restart its executor: %s; next try in %d ms", pl->name,
		        err, pl->backoff_ms);
		return;
	}
	pl->starting = true;
	pl->down = false;
	pl->boot_done = false;
	rc = pthread_create(&pl->starter, NULL, starter_main, pl);
	if (rc != 0) {
		proc_kill(pl->booting);
		proc_reap(pl->booting, 0);
		proc_free(pl->booting);
		pl->booting = NULL;
		pl->starting = false;
		snprintf(err, sizeof(err), "cannot start a thread: %s", strerror(rc));
		plugin_down(pl, EXEC_REASON_CRASH, err, clock_ms());
		log_err("plugin %s: cannot restart its executor: %s", pl->name, err);
		return;
	}
	pl->starter_joinable = true;
}

/* ---- info and shutdown -------------------------------------------------- */

size_t
executor_count(struct executor_set *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Under the lock. */
static void
info_locked(const struct exec_plugin *pl, struct executor_info *out)
{
	*out = (struct executor_info){
		.abi_major = pl->abi_major, .abi_minor = pl->abi_minor,
		.nchecks = pl->nchecks, .up = pl->cur != NULL,
		.retired = pl->retired || !pl->serving,
		.rss_bytes = pl->cur != NULL ? rss_of(pl->cur->pid) : 0,
	};
	snprintf(out->name, sizeof(out->name), "%s", pl->name);
	snprintf(out->version, sizeof(out->version), "%s", pl->version);
	snprintf(out->description, sizeof(out->description), "%s", pl->description);
	snprintf(out->file, sizeof(out->file), "%s", pl->path);
	memcpy(out->restarts, pl->restarts, sizeof(out->restarts));
}

bool
executor_info(struct executor_set *s, size_t i, struct executor_info *out)
{
	pthread_mutex_lock(&s->lock);
	if (i >= s->n) {
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	info_locked(s->plugins[i], out);
	pthread_mutex_unlock(&s->lock);
	return true;
}

size_t
executor_serving_info(struct executor_set *s, struct executor_info *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock); /* one look: a plugin freed meanwhile cannot hide another */
	for (size_t i = 0; i < s->n && n < max; i++)
		if (!s->plugins[i]->retired && s->plugins[i]->serving)
			info_locked(s->plugins[i], &out[n++]);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- reload ------------------------------------------------------------- */

/* Whether pl's instances are exactly the checks cfg gives a plugin of its
 * name, in order, with the same options. */
static bool
same_instances(const struct exec_plugin *pl, const struct config *cfg)
{
	size_t k = 0;

	for (size_t i = 0; i < cfg->nchecks; i++) {
		const struct config_check *ck = &cfg->checks[i];
		const struct exec_instance *in;
		if (strcmp(ck->plugin, pl->name) != 0)
			continue;
		if (k == pl->ninst)
			return false;
		in = &pl->inst[k++];
		if (strcmp(in->name, ck->name) != 0 || in->n != ck->options.n)
			return false;
		for (size_t j = 0; j < in->n; j++)
			if (strcmp(in->keys[j], ck->options.v[j].key) != 0 ||
			    strcmp(in->values[j], ck->options.v[j].value) != 0)
				return false;
	}
	return k == pl->ninst;
}

struct exec_plugin *
executor_reusable(struct executor_set *s, const char *path, const struct stat *st,
                  const struct config *cfg)
{
	struct exec_plugin *found = NULL;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n && found == NULL; i++) {
		struct exec_plugin *pl = s->plugins[i];
		struct exec_plugin probe = {.path = (char *)path, .file = *st};
		if (!pl->retired && executor_same_file(pl, &probe) && same_instances(pl, cfg))
			found = pl;
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

const char *
executor_plugin_name(const struct exec_plugin *pl)
{
	return pl->name;
}

const char *
executor_plugin_version(const struct exec_plugin *pl)
{
	return pl->version;
}

const char *
executor_plugin_path(const struct exec_plugin *pl)
{
	return pl->path;
}

bool
executor_same_file(const struct exec_plugin *a, const struct exec_plugin *b)
{
	return strcmp(a->path, b->path) == 0 && a->file.st_dev == b->file.st_dev &&
	       a->file.st_ino == b->file.st_ino && a->file.st_size == b->file.st_size &&
	       a->file.st_mtim.tv_sec == b->file.st_mtim.tv_sec &&
	       a->file.st_mtim.tv_nsec == b->file.st_mtim.tv_nsec;
}

/* The slot old gives pl's check number index, or 0. */
static uint32_t
old_slot(const struct registry *old, const struct exec_plugin *pl, uint32_t index)
{
	for (uint32_t id = 0; old != NULL && id < registry_count(old); id++) {
		const struct check *c = registry_at(old, id);
		if (c->exec == pl && c->exec_index == index)
			return c->slot;
	}
	return 0;
}

int
executor_register(struct exec_plugin *pl, struct registry *reg, const struct registry *old,
                  const struct config *cfg, char *err, size_t errlen)
{
	char why[256];
	size_t k = 0;

	for (size_t i = 0; i < pl->nfixed; i++) {
		struct check c = fixed_check(pl, i);
		c.slot = old_slot(old, pl, c.exec_index);
		if (registry_add(reg, &c, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "plugin %s: %s", pl->path, why);
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->nchecks; i++) {
		const struct config_check *ck = &cfg->checks[i];
		struct check c = {0};
		if (strcmp(ck->plugin, pl->name) != 0)
			continue;
		snprintf(c.name, sizeof(c.name), "%s", ck->name);
		c.plugin = pl->name;
		c.exec = pl;
		c.exec_index = pl->inst[k++].index;
		registry_apply_config(&c, ck);
		c.slot = old_slot(old, pl, c.exec_index);
		if (registry_add(reg, &c, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s.name: %s", ck->origin, why);
			return -1;
		}
	}
	return 0;
}

int
executor_merge(struct executor_set *live, struct executor_set *staging)
{
	struct exec_plugin **grown;

	pthread_mutex_lock(&live->lock);
	grown = realloc(live->plugins, (live->n + staging->n + 1) * sizeof(*grown));
	if (grown == NULL) {
		pthread_mutex_unlock(&live->lock);
		return -1;
	}
	live->plugins = grown;
	for (size_t i = 0; i < staging->n; i++) {
		staging->plugins[i]->set = live;
		staging->plugins[i]->serving = false; /* until executor_serve() */
		live->plugins[live->n++] = staging->plugins[i];
	}
	staging->n = 0;
	live->wake_at = 0;
	wake(live);
	pthread_mutex_unlock(&live->lock);
	return 0;
}

void
executor_serve(struct executor_set *live, struct exec_plugin *const *serving, size_t nserving)
{
	pthread_mutex_lock(&live->lock);
	/* at once: a plugin replaced under its name and its replacement never
	 * show up side by side (one series per name) */
	for (size_t i = 0; i < live->n; i++) {
		struct exec_plugin *pl = live->plugins[i];
		pl->serving = false;
		for (size_t k = 0; k < nserving && !pl->serving; k++)
			pl->serving = serving[k] == pl;
	}
	pthread_mutex_unlock(&live->lock);
}

size_t
executor_plugins(struct executor_set *s, struct exec_plugin **out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n && n < max; i++)
		if (!s->plugins[i]->retired)
			out[n++] = s->plugins[i];
	pthread_mutex_unlock(&s->lock);
	return n;
}

void
executor_hold(struct exec_plugin *pl)
{
	pthread_mutex_lock(&pl->set->lock);
	pl->refs++;
	pthread_mutex_unlock(&pl->set->lock);
}

void
executor_release(struct exec_plugin *pl)
{
	struct executor_set *s = pl->set;

	pthread_mutex_lock(&s->lock);
	if (--pl->refs == 0) {
		pl->retired = true;
		s->wake_at = 0;
		wake(s);
	}
	pthread_mutex_unlock(&s->lock);
}

void
executor_shutdown(struct executor_set *s, int grace_ms)
{
	struct done_list d = {0};

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->grace_ms = grace_ms;
	s->stopping = true;
	wake(s);
	pthread_mutex_unlock(&s->lock);
	if (s->started) {
		/* the supervisor stops what it spawned, then returns */
		pthread_join(s->thread, NULL);
		s->started = false;
	}
	/* Not started (startup failed, --check-config): this thread spawned them.
	 * After the supervisor: nothing is left, and this does nothing. */
	pthread_mutex_lock(&s->lock);
	stop_all(s, &d);
	pthread_mutex_unlock(&s->lock);
	done_deliver(s, &d);
}

void
executor_set_free(struct executor_set *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		plugin_free(s->plugins[i]);
	free(s->plugins);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	if (s->wrapper != NULL)
		free(s->wrapper[0]);
	free(s->wrapper);
	free(s->envp);
	free(s->self);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
