/*
 * exec_spawn.c - executor processes: posix_spawn with their environment, fds
 * and process group, the pidfd, the synchronous load conversation of a fresh
 * executor, killing and reaping. Called with the set's lock held, or before
 * the supervisor starts; where isolation layers go when an executor starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "exec_internal.h"
#include "lock.h"
#include "log.h"
#include "sandbox.h"

extern char **environ;

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
void
exec_proc_kill(struct exec_proc *p)
{
	if (kill(-p->pid, SIGKILL) == -1)
		kill(p->pid, SIGKILL);
	p->killed = true;
}

/* Reaps p if it has exited: first the rest of its group is killed, while the
 * unreaped executor still holds the group's id. */
bool
exec_proc_try_reap(struct exec_proc *p, int *status)
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

struct exec_proc *
exec_proc_spawn(struct exec_plugin *pl, char *err, size_t errlen)
{
	struct executor_set *s = pl->set;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct exec_proc *p;
	struct exec_output out;
	char ppid[32], threads[32];
	char *argv[32];
	sigset_t none, deflt;
	size_t argc = 0;
	int sv[2], rc, outw;
	pid_t pid;

	p = calloc(1, sizeof(*p));
	if (p == NULL || exec_output_open(&out, &outw) == -1) {
		snprintf(err, errlen, "plugin %s: cannot start an executor: %s", pl->path,
		         strerror(errno));
		free(p);
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		snprintf(err, errlen, "plugin %s: cannot start an executor: %s", pl->path,
		         strerror(errno));
		close(out.fd);
		close(outw);
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
	/* stdout and stderr: the pipe the supervisor reads (exec_output.c) */
	posix_spawn_file_actions_adddup2(&fa, outw, 1);
	posix_spawn_file_actions_adddup2(&fa, outw, 2);
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
	close(outw);
	if (rc != 0) {
		snprintf(err, errlen, "plugin %s: cannot start an executor (%s): %s", pl->path,
		         argv[0], strerror(rc));
		close(sv[0]);
		close(out.fd);
		free(p);
		return NULL;
	}
	*p = (struct exec_proc){.pl = pl, .pid = pid, .fd = sv[0], .pidfd = pidfd_of(pid),
	                        .state = PROC_READY, .kill_at = TIMER_NONE, .out = out};
	return p;
}

/* Waits up to ms for p to exit; SIGKILLs it (and its group) after that.
 * Returns its status. */
int
exec_proc_reap(struct exec_proc *p, int ms)
{
	int64_t until = clock_ms() + ms;
	int status = 0;

	while (!exec_proc_try_reap(p, &status)) {
		if (clock_ms() >= until && !p->killed)
			exec_proc_kill(p);
		if (p->pidfd >= 0) {
			struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
			int64_t now = clock_ms();
			poll(&pfd, 1, timer_poll_timeout(p->killed ? now + 100 : until, now));
		} else {
			struct timespec ts = {0, 5 * 1000000L}; /* no pidfd: look again soon */
			nanosleep(&ts, NULL);
		}
	}
	return status;
}

void
exec_proc_free(struct exec_proc *p)
{
	if (p == NULL)
		return;
	exec_output_close(p, clock_ms());
	if (p->fd >= 0)
		close(p->fd);
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p->runs);
	free(p);
}
void
exec_describe_status(int status, char *buf, size_t len)
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

bool
exec_send_msg(int fd, struct exec_buf *b, int flags)
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

uint64_t
exec_rss_of(pid_t pid)
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


/*
 * One request and its answer on a fresh executor (startup and restarts, before
 * the supervisor polls it), within isolation.load_timeout_ms. Returns 0 with
 * the reply decoded, or -1 with err: a timeout (the executor killed and
 * reaped), the executor's death (reaped, cause named) or a malformed reply.
 */
int
exec_proc_call(struct exec_proc *p, struct exec_buf *b, enum exec_type want, struct exec_msg *reply,
          const char *what, char *err, size_t errlen)
{
	int timeout_ms = p->pl->set->iso.load_timeout_ms;
	int64_t until = clock_ms() + timeout_ms;
	unsigned char *buf;
	char why[ERR_SIZE], cause[96];
	ssize_t n = -1;

	LOCK_NOT_HELD(&p->pl->set->lock);
	if (!exec_send_msg(p->fd, b, 0)) {
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
		int64_t now = clock_ms();
		int rc;

		if (now >= until) {
			free(buf);
			p->load_timed_out = true;
			exec_proc_kill(p);
			exec_proc_reap(p, 0);
			snprintf(err, errlen, "its executor did not finish %s within %d ms "
			         "(isolation.load_timeout_ms)", what, timeout_ms);
			return -1;
		}
		rc = poll(&pfd, 1, timer_poll_timeout(until, now));
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
		exec_proc_kill(p);
		exec_proc_reap(p, 0);
		snprintf(err, errlen, "its executor sent a malformed message during %s: %s", what,
		         why);
		return -1;
	}
	free(buf);
dead:
	exec_describe_status(exec_proc_reap(p, LOST_GRACE_MS), cause, sizeof(cause));
	snprintf(err, errlen, "its executor %s during %s", cause, what);
	return -1;
}

void
exec_buf_load(struct exec_buf *b, const char *path)
{
	exec_buf_start(b, EXEC_LOAD, 0);
	exec_buf_str(b, path, 0);
}

void
exec_buf_instantiate(struct exec_buf *b, const struct exec_instance *in)
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

void
exec_first_free(struct exec_first *f)
{
	if (f == NULL)
		return;
	exec_msg_free(&f->loaded);
	for (size_t i = 0; i < f->ninst; i++)
		exec_instance_clear(&f->inst[i]);
	free(f->inst);
	free(f);
}

/*
 * A plugin's first load while the server serves (starter thread): load(),
 * then every wanted check its name claims, then seal; the findings go to
 * pl->first for boot_finished(). Anything but a timeout marks them fatal, as
 * such a refusal stopped the start when plugins loaded before serving.
 */
static int
first_boot(struct exec_plugin *pl, struct exec_proc *p, struct exec_buf *b, char *err,
           size_t errlen)
{
	const struct executor_set *s = pl->set;
	struct exec_first *f = calloc(1, sizeof(*f));
	struct exec_msg m;
	char why[768];

	pl->first = f;
	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	f->fatal = true;
	exec_buf_load(b, pl->path);
	if (exec_proc_call(p, b, EXEC_LOADED, &f->loaded, "load()", why, sizeof(why)) == -1) {
		f->fatal = !p->load_timed_out;
		if (f->fatal) /* the line a refused start has always had */
			snprintf(err, errlen, "plugin %s: refused: %s", pl->path, why);
		else
			snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (!f->loaded.ok) {
		snprintf(err, errlen, "%s", f->loaded.text); /* the loader's own line */
		goto killit;
	}
	if (f->loaded.name[0] == '\0' || strspn(f->loaded.name,
	    "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(f->loaded.name)) {
		snprintf(err, errlen, "plugin %s: refused: its executor reported a bad name",
		         pl->path);
		goto killit;
	}
	for (size_t i = 0; i < s->nwanted; i++) {
		const struct config_check *ck = s->wanted[i];
		struct exec_instance *grown;
		if (strcmp(ck->plugin, f->loaded.name) != 0)
			continue;
		grown = realloc(f->inst, (f->ninst + 1) * sizeof(*grown));
		if (grown == NULL || exec_instance_copy(&grown[f->ninst], ck, 0) == -1) {
			if (grown != NULL)
				f->inst = grown;
			snprintf(err, errlen, "%s: out of memory", ck->origin);
			goto killit;
		}
		f->inst = grown;
		exec_buf_instantiate(b, &f->inst[f->ninst++]);
		if (!exec_buf_finish(b)) {
			snprintf(err, errlen, "%s: the check's options are larger than %d bytes",
			         ck->origin, EXEC_MSG_MAX);
			goto killit;
		}
		if (exec_proc_call(p, b, EXEC_INSTANTIATED, &m, "instantiate()", why,
		                   sizeof(why)) == -1) {
			snprintf(err, errlen, "%s (plugin %s): %s", ck->origin, ck->plugin, why);
			f->fatal = !p->load_timed_out;
			return -1;
		}
		if (!m.ok) {
			snprintf(err, errlen, "%s", m.text);
			goto killit;
		}
		f->inst[f->ninst - 1].index = m.index;
	}
	exec_buf_start(b, EXEC_SEAL, 0);
	if (exec_proc_call(p, b, EXEC_SEALED, &m, "seal", why, sizeof(why)) == -1) {
		snprintf(err, errlen, "plugin %s: %s", pl->path, why);
		f->fatal = !p->load_timed_out;
		return -1;
	}
	f->fatal = false;
	return 0;
killit:
	exec_proc_kill(p);
	exec_proc_reap(p, 0);
	return -1;
}

/* A restarted executor's layers: the kernel may withhold one it gave the
 * first (a user namespace limit reached), which is said once as it happens. */
static void
update_sandbox(struct exec_plugin *pl, const struct sandbox_report *sb)
{
	unsigned lost;
	char line[1024];

	pthread_mutex_lock(&pl->set->lock);
	lost = sandbox_missing(sb) & ~sandbox_missing(&pl->sandbox);
	pl->sandbox = *sb;
	pthread_mutex_unlock(&pl->set->lock);
	if (lost != 0) {
		sandbox_describe(sb, line, sizeof(line));
		log_warn("plugin %s: sandbox: its restarted executor has less: %s", pl->name, line);
	}
}

/* Loads, instantiates and seals a fresh executor the way the first one was:
 * same plugin, same fixed checks, same instances at the same indexes. */
int
exec_proc_boot(struct exec_plugin *pl, struct exec_proc *p, char *err, size_t errlen)
{
	struct exec_buf *b = malloc(sizeof(*b));
	struct exec_msg m;
	int rc = -1;

	if (b == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!pl->loaded) {
		rc = first_boot(pl, p, b, err, errlen);
		free(b);
		return rc;
	}
	exec_buf_load(b, pl->path);
	if (exec_proc_call(p, b, EXEC_LOADED, &m, "load()", err, errlen) == -1)
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
	update_sandbox(pl, &m.sandbox);
	exec_msg_free(&m);
	for (size_t i = 0; i < pl->ninst; i++) {
		exec_buf_instantiate(b, &pl->inst[i]);
		if (!exec_buf_finish(b)) {
			snprintf(err, errlen, "%s: options too large", pl->inst[i].origin);
			goto killit;
		}
		if (exec_proc_call(p, b, EXEC_INSTANTIATED, &m, "instantiate()", err, errlen) == -1)
			goto out;
		if (!m.ok || m.index != pl->inst[i].index) {
			snprintf(err, errlen, "check %s: %.400s", pl->inst[i].name,
			         m.ok ? "registered at another index" : m.text);
			goto killit;
		}
	}
	exec_buf_start(b, EXEC_SEAL, 0);
	if (exec_proc_call(p, b, EXEC_SEALED, &m, "seal", err, errlen) == -1)
		goto out;
	rc = 0;
	goto out;
killit:
	exec_proc_kill(p);
	exec_proc_reap(p, 0);
out:
	free(b);
	return rc;
}

/* What executors are started with: the environment without the server's own
 * secrets, and a test setup's wrapper words. Returns 0, or -1 out of memory. */
int
exec_spawn_env(struct executor_set *s)
{
	const char *wrap = getenv("HEALTHD_EXECUTOR_WRAPPER");
	size_t n = 0, k = 0;

	while (environ[n] != NULL)
		n++;
	s->envp = calloc(n + 2, sizeof(*s->envp));
	if (s->envp == NULL)
		return -1;
	/* never the secret; nor systemd's notify and watchdog: those are the server's */
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "HEALTH_URL_SECRET=", 18) != 0 &&
		    strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0 &&
		    strncmp(environ[i], "WATCHDOG_USEC=", 14) != 0 &&
		    strncmp(environ[i], "WATCHDOG_PID=", 13) != 0 &&
		    strncmp(environ[i], "HEALTHD_LOG_FORMAT=", 19) != 0)
			s->envp[k++] = environ[i];
	/* bare lines: the server relays them in its own style (exec_output.c) */
	s->envp[k++] = "HEALTHD_LOG_FORMAT=plain";
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
			return -1;
		}
		for (char *t = strtok_r(copy, " ", &save); t != NULL && w < 23;
		     t = strtok_r(NULL, " ", &save))
			s->wrapper[w++] = t;
		if (w == 0)
			free(copy);
	}
	return 0;
}
