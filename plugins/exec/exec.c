/*
 * exec - runs a command as a check, the monitoring-plugins way.
 *
 * Configured instances only:
 *
 *     {"name": "load", "plugin": "exec",
 *      "command": ["/usr/lib/nagios/plugins/check_load", "-w", "4,3,2", "-c", "8,6,4"],
 *      "env": {"LANG": "C.UTF-8"}, "cwd": "/", "kill_grace_ms": 200}
 *
 * command:       required; an argv array, no shell. command[0] is an absolute
 *                path to an executable regular file, checked at startup.
 * env:           extra environment variables for the command. The command
 *                never sees healthd's own environment (so never the URL
 *                secret): it gets PATH (the usual system directories) and
 *                LC_ALL=C (numbers with a decimal point), then these.
 * cwd:           absolute directory to run in (default "/").
 * kill_grace_ms: time between SIGTERM and SIGKILL, 0..10000 (default 200).
 *
 * Exit status 0, 1, 2, 3 is OK, WARNING, CRITICAL, UNKNOWN; any other exit
 * status or a signal is UNKNOWN with the reason. The message is the first
 * line of standard output before its '|'; the perfdata after '|' becomes the
 * run's values (perfdata.h). Standard output is kept up to 64 KiB, standard
 * error up to 4 KiB (shown only when standard output is empty); the rest is
 * read and dropped, so a flood never blocks the command nor fills memory.
 *
 * Process handling, every run:
 *   - posix_spawn, so it is safe in a multi-threaded process: stdin is
 *     /dev/null, stdout and stderr are pipes, every other descriptor is
 *     closed (closefrom), no signal is blocked or ignored, and the command
 *     leads a session (and process group) of its own (POSIX_SPAWN_SETSID).
 *   - the pipes are read without blocking, in poll() slices that also watch
 *     a pidfd for the exit and the host's cancelled().
 *   - the command must finish a little before the deadline: kill_grace_ms
 *     (at most a quarter of the time) plus a small margin, so that the run
 *     itself can report "timeout after N ms" at the deadline.
 *   - at that point, or when the command exited while something it started
 *     still holds its output open, the whole process group gets SIGTERM, then
 *     SIGKILL after kill_grace_ms. After the command exits the group gets a
 *     SIGKILL in any case, so no background child outlives the run. The
 *     command is reaped while still a zombie only after that, so the group's
 *     id cannot have been reused by then.
 *   - the command is always reaped (waitpid), never by a SIGCHLD handler:
 *     runs of different checks are concurrent. One that even SIGKILL does not
 *     end within a second (stuck in the kernel) is reaped by a later run.
 * What escapes: a descendant that leaves the process group (setsid, setpgid,
 * a daemon that double-forks into a session of its own) is not killed; its
 * grandchildren are reaped by init, or by a subreaper if healthd is one. And
 * if the process running this plugin is itself SIGKILLed mid-run, nobody
 * signals the command (posix_spawn cannot set PR_SET_PDEATHSIG): it runs to
 * its own end, unless a cgroup (systemd's KillMode=control-group) ends it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <healthd/plugin.h>

#include "perfdata.h"

#define EXEC_STDOUT_CAP     (64 * 1024)
#define EXEC_STDERR_CAP     (4 * 1024)
#define EXEC_ARGS_MAX       256
#define EXEC_ENV_MAX        128
#define EXEC_SLICE_MS       50    /* how often a wait looks at cancelled() */
#define EXEC_GRACE_MS       200   /* default kill_grace_ms */
#define EXEC_GRACE_MAX_MS   10000
#define EXEC_MARGIN_DIVISOR 20    /* as the http and postgres plugins */
#define EXEC_MARGIN_MAX_MS  25
#define EXEC_REAP_WAIT_MS   1000  /* after SIGKILL, before leaving it to a later run */
#define EXEC_UNREAPED_MAX   8
#define EXEC_PATH           "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define EXEC_LOCALE         "C"   /* LC_ALL: numbers with a decimal point */
#define EXEC_SECRET_VAR     "HEALTH_URL_SECRET"

/*
 * One configured check. Created by instantiate() on the main thread; after
 * that only run() (never twice at once for the same check) and destroy()
 * touch it, so it needs no lock. Nothing is shared between instances.
 */
struct exec_check {
	const struct healthd_host_api *api;
	struct healthd_host *host;
	char *name;
	char **argv;                 /* NULL-terminated, owned */
	char **envp;                 /* NULL-terminated, owned */
	char *cwd;
	int64_t grace_ms;
	pid_t unreaped[EXEC_UNREAPED_MAX]; /* killed, not reaped yet */
	size_t nunreaped;
	char out[EXEC_STDOUT_CAP];   /* per run */
	char err[EXEC_STDERR_CAP];
};

/* One run's child and the two pipes it writes to. */
struct exec_child {
	pid_t pid;
	int pidfd;                   /* -1 without pidfd_open (old kernel): then polled */
	int fd[2];                   /* read ends of stdout, stderr; -1 at EOF */
	char *buf[2];
	size_t len[2], cap[2];
	size_t dropped;              /* bytes read past the caps */
	bool exited;                 /* waitid saw it end (still a zombie) */
	siginfo_t info;              /* how it ended */
	bool lost;                   /* someone else reaped it (SIGCHLD ignored?) */
};

static enum healthd_status exec_run(void *state, struct healthd_report *report);
static void exec_destroy(void *state);

/* ---- the child ------------------------------------------------------------ */

static int
exec_spawn(struct exec_check *x, struct exec_child *ch)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int out[2] = {-1, -1}, err[2] = {-1, -1}, rc;
	sigset_t none, all;

	if (pipe2(out, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1) {
		rc = errno;
		goto close_pipes;
	}
	/* Only our ends: the command's stdout must block when the pipe is full. */
	if (fcntl(out[0], F_SETFL, O_NONBLOCK) == -1 || fcntl(err[0], F_SETFL, O_NONBLOCK) == -1) {
		rc = errno;
		goto close_pipes;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	if (rc == 0) /* healthd's sockets, plugins' files, other runs' pipes */
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (rc == 0)
		rc = posix_spawn_file_actions_addchdir_np(&fa, x->cwd);
	/* healthd blocks SIGTERM, SIGINT and SIGHUP in every thread: undo that */
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (rc == 0)
		rc = posix_spawnattr_setsigdefault(&attr, &all);
	if (rc == 0)
		rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
		                                     POSIX_SPAWN_SETSIGDEF);
	if (rc == 0)
		rc = posix_spawn(&ch->pid, x->argv[0], &fa, &attr, x->argv, x->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0)
		goto close_pipes;
	close(out[1]);
	close(err[1]);
	ch->fd[0] = out[0];
	ch->fd[1] = err[0];
	ch->pidfd = pidfd_open(ch->pid, 0);
	return 0;
close_pipes:
	for (int i = 0; i < 2; i++) {
		if (out[i] != -1)
			close(out[i]);
		if (err[i] != -1)
			close(err[i]);
	}
	errno = rc;
	return -1;
}

/* Reads what pipe i holds now; past its cap the bytes are dropped. */
static void
exec_drain(struct exec_child *ch, int i)
{
	char scratch[4096];
	ssize_t n;

	while (ch->fd[i] != -1) {
		if (ch->len[i] < ch->cap[i])
			n = read(ch->fd[i], ch->buf[i] + ch->len[i], ch->cap[i] - ch->len[i]);
		else
			n = read(ch->fd[i], scratch, sizeof(scratch));
		if (n > 0 && ch->len[i] < ch->cap[i])
			ch->len[i] += (size_t)n;
		else if (n > 0)
			ch->dropped += (size_t)n;
		else if (n == -1 && errno == EINTR)
			continue;
		else if (n == -1 && errno == EAGAIN)
			return;
		else { /* EOF, or an error that will not go away */
			close(ch->fd[i]);
			ch->fd[i] = -1;
		}
	}
}

/* Notes the exit without reaping: the zombie keeps the process group's id taken. */
static void
exec_poll_exit(struct exec_child *ch)
{
	if (ch->exited)
		return;
	memset(&ch->info, 0, sizeof(ch->info));
	if (waitid(P_PID, (id_t)ch->pid, &ch->info, WEXITED | WNOHANG | WNOWAIT) == 0) {
		ch->exited = ch->info.si_pid == ch->pid;
	} else if (errno == ECHILD) {
		ch->exited = true; /* reaped behind our back: SIGCHLD is ignored */
		ch->lost = true;
	}
}

static bool
exec_done(const struct exec_child *ch)
{
	return ch->exited && ch->fd[0] == -1 && ch->fd[1] == -1;
}

/*
 * Waits in slices for output, the exit, until, or cancelled(); whichever
 * comes first. Returns true if it stopped at until or on cancellation.
 */
static bool
exec_wait(const struct healthd_host_api *api, const struct healthd_report *report,
          struct exec_child *ch, int64_t until, bool stop_at_exit)
{
	struct pollfd pfd[3];
	int64_t now;
	int n, slice;

	for (;;) {
		exec_poll_exit(ch);
		if (exec_done(ch) || (stop_at_exit && ch->exited))
			return false;
		now = api->now_ms();
		if (now >= until || (report != NULL && api->cancelled(report)))
			return true;
		n = 0;
		for (int i = 0; i < 2; i++)
			if (ch->fd[i] != -1)
				pfd[n++] = (struct pollfd){.fd = ch->fd[i], .events = POLLIN};
		if (ch->pidfd != -1 && !ch->exited)
			pfd[n++] = (struct pollfd){.fd = ch->pidfd, .events = POLLIN};
		/* without a pidfd the exit is only seen by looking: look often */
		slice = ch->pidfd != -1 || ch->exited ? EXEC_SLICE_MS : 10;
		if (until - now < slice)
			slice = (int)(until - now);
		if (poll(pfd, (nfds_t)n, slice) == -1 && errno != EINTR)
			return true; /* cannot wait: treated as the deadline */
		exec_drain(ch, 0);
		exec_drain(ch, 1);
	}
}

/* Reaps pid if it has ended; true once it is gone. */
static bool
exec_reap(pid_t pid)
{
	int status;
	pid_t r;

	do
		r = waitpid(pid, &status, WNOHANG);
	while (r == -1 && errno == EINTR);
	return r == pid || (r == -1 && errno == ECHILD);
}

/* Children a bounded wait could not reap (stuck in the kernel): tried again each run. */
static void
exec_reap_leftovers(struct exec_check *x)
{
	size_t kept = 0;

	for (size_t i = 0; i < x->nunreaped; i++)
		if (!exec_reap(x->unreaped[i]))
			x->unreaped[kept++] = x->unreaped[i];
	x->nunreaped = kept;
}

/*
 * Ends the run's process group and reaps the command. The group id is the
 * command's pid (it leads its own session) and stays reserved while the
 * command is not reaped, so killing -pid can only hit its own group.
 */
static void
exec_stop(struct exec_check *x, struct exec_child *ch, int64_t grace_ms)
{
	const struct healthd_host_api *api = x->api;

	/* reaped behind our back: the id may be anyone's now, so no signal */
	if (!exec_done(ch) && !ch->lost) {
		/* still running, or something it started holds the pipes */
		kill(-ch->pid, SIGTERM);
		exec_wait(api, NULL, ch, api->now_ms() + grace_ms, false);
	}
	if (!ch->lost)
		kill(-ch->pid, SIGKILL); /* leftovers; a lone zombie ignores it */
	for (int i = 0; i < 2; i++) {
		if (ch->fd[i] != -1) {
			exec_drain(ch, i);
			if (ch->fd[i] != -1)
				close(ch->fd[i]);
			ch->fd[i] = -1;
		}
	}
	if (!ch->exited) /* bounded: SIGKILL ends it unless it is stuck in the kernel */
		exec_wait(api, NULL, ch, api->now_ms() + EXEC_REAP_WAIT_MS, true);
	if (!ch->lost && !exec_reap(ch->pid)) {
		if (x->nunreaped < EXEC_UNREAPED_MAX)
			x->unreaped[x->nunreaped++] = ch->pid;
		api->log(x->host, HEALTHD_LOG_WARNING, "check %s: command pid %d did not end "
		         "after SIGKILL; it will be reaped later", x->name, (int)ch->pid);
	}
	if (ch->pidfd != -1)
		close(ch->pidfd);
	ch->pidfd = -1;
}

/* ---- the result ----------------------------------------------------------- */

/* The first line of text[0..len), without trailing blanks, as "%.*s" arguments. */
static int
exec_first_line(const char *text, size_t len, const char **line)
{
	const char *nl = memchr(text, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - text) : len;

	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\r'))
		n--;
	*line = text;
	return n > INT_MAX ? INT_MAX : (int)n;
}

/* "what: first line" with the first line of stdout, else of stderr, else "no output". */
static void
exec_say(const struct healthd_host_api *api, struct healthd_report *report,
         const struct exec_child *ch, const struct perfdata_output *po, const char *what)
{
	const char *line;
	int n;

	if (po->message_len > 0) {
		n = po->message_len > INT_MAX ? INT_MAX : (int)po->message_len;
		api->message(report, "%s%s%.*s", what, what[0] ? ": " : "", n, po->message);
		return;
	}
	n = exec_first_line(ch->buf[1], ch->len[1], &line);
	if (n > 0)
		api->message(report, "%s%sno output; stderr: %.*s", what, what[0] ? ": " : "", n,
		             line);
	else
		api->message(report, "%s%sno output", what, what[0] ? ": " : "");
}

/*
 * The perfdata as values: each item's value under its label, then (while
 * room is left) its numeric warn, crit, min and max as "label;warn",
 * "label;crit", "label;min", "label;max" in the same unit: the host shows
 * them as thresholds of the value (healthd_check_value_warning, ...).
 */
static void
exec_values(const struct healthd_host_api *api, struct healthd_report *report,
            const struct perfdata_output *po)
{
	static const char *const suffix[PERFDATA_FIELDS] = {";warn", ";crit", ";min", ";max"};
	char name[PERFDATA_LABEL_MAX + 8];

	for (size_t i = 0; i < po->nvalues; i++)
		api->value(report, po->values[i].label, po->values[i].value, po->values[i].uom);
	for (size_t i = 0; i < po->nvalues; i++) {
		const struct perfdata_value *v = &po->values[i];
		for (int f = 0; f < PERFDATA_FIELDS; f++) {
			if (!v->has[f])
				continue;
			snprintf(name, sizeof(name), "%s%s", v->label, suffix[f]);
			api->value(report, name, v->field[f], v->uom);
		}
	}
}

static enum healthd_status
exec_result(struct exec_check *x, struct healthd_report *report, const struct exec_child *ch)
{
	const struct healthd_host_api *api = x->api;
	struct perfdata_output po;
	char what[96];
	const char *sig;

	perfdata_parse_output(ch->buf[0], ch->len[0], &po);
	if (ch->lost) {
		exec_say(api, report, ch, &po, "exit status lost (is SIGCHLD ignored?)");
		return HEALTHD_UNKNOWN;
	}
	if (ch->info.si_code == CLD_EXITED && ch->info.si_status >= 0 && ch->info.si_status <= 3) {
		exec_say(api, report, ch, &po, "");
		exec_values(api, report, &po);
		return (enum healthd_status)ch->info.si_status;
	}
	if (ch->info.si_code == CLD_EXITED) {
		snprintf(what, sizeof(what), "exit status %d", ch->info.si_status);
	} else {
		sig = sigabbrev_np(ch->info.si_status);
		snprintf(what, sizeof(what), "killed by signal %d (SIG%s)", ch->info.si_status,
		         sig != NULL ? sig : "?");
	}
	exec_say(api, report, ch, &po, what);
	return HEALTHD_UNKNOWN;
}

static enum healthd_status
exec_run(void *state, struct healthd_report *report)
{
	struct exec_check *x = state;
	const struct healthd_host_api *api = x->api;
	struct exec_child ch = {
		.pidfd = -1,
		.fd = {-1, -1},
		.buf = {x->out, x->err},
		.cap = {sizeof(x->out), sizeof(x->err)},
	};
	int64_t now, deadline, remaining, grace, margin;
	bool timed_out;

	exec_reap_leftovers(x);
	now = api->now_ms();
	deadline = api->deadline_ms(report);
	remaining = deadline - now;
	if (remaining <= 0) {
		api->message(report, "timeout: the deadline passed before the command started");
		return HEALTHD_CRITICAL;
	}
	/* SIGTERM early enough that SIGKILL and the reap still come by the deadline */
	grace = x->grace_ms < remaining / 4 ? x->grace_ms : remaining / 4;
	margin = remaining / EXEC_MARGIN_DIVISOR;
	if (margin > EXEC_MARGIN_MAX_MS)
		margin = EXEC_MARGIN_MAX_MS;
	if (exec_spawn(x, &ch) == -1) {
		api->message(report, "cannot run %s: %s", x->argv[0], strerror(errno));
		return HEALTHD_UNKNOWN;
	}
	timed_out = exec_wait(api, report, &ch, deadline - margin - grace, true);
	exec_stop(x, &ch, grace);
	if (timed_out) {
		api->message(report, "timeout after %lld ms", (long long)api->timeout_ms(report));
		api->timed_out(report);
		return HEALTHD_CRITICAL;
	}
	return exec_result(x, report, &ch);
}

/* ---- instantiate ------------------------------------------------------------ */

static void
exec_free_list(char **list)
{
	if (list == NULL)
		return;
	for (char **p = list; *p != NULL; p++)
		free(*p);
	free(list);
}

static void
exec_destroy(void *state)
{
	struct exec_check *x = state;

	if (x == NULL)
		return;
	/* at shutdown, the last chance to reap them (killed already): bounded,
	 * never a blocking wait */
	if (x->nunreaped > 0) {
		int64_t until = x->api->now_ms() + EXEC_REAP_WAIT_MS;
		while (x->nunreaped > 0 && x->api->now_ms() < until) {
			exec_reap_leftovers(x);
			if (x->nunreaped > 0)
				poll(NULL, 0, 10);
		}
		if (x->nunreaped > 0)
			x->api->log(x->host, HEALTHD_LOG_WARNING, "check %s: %zu command(s) stuck "
			            "in the kernel even after SIGKILL; left to init", x->name,
			            x->nunreaped);
	}
	exec_free_list(x->argv);
	exec_free_list(x->envp);
	free(x->cwd);
	free(x->name);
	free(x);
}

/* Reads command:0, command:1, ... into x->argv and checks command[0]. */
static int
exec_read_command(struct exec_check *x, const struct healthd_host_api *api,
                  const struct healthd_options *options, char *err, size_t errlen)
{
	char key[32];
	const char *arg;
	struct stat st;
	size_t n;

	if (api->option(options, "command") != NULL) {
		snprintf(err, errlen, "command: expected an argv array such as "
		         "[\"/usr/lib/nagios/plugins/check_load\", \"-w\", \"4,3,2\"]; no shell runs it");
		return -1;
	}
	x->argv = calloc(EXEC_ARGS_MAX + 1, sizeof(*x->argv));
	if (x->argv == NULL)
		goto oom;
	for (n = 0;; n++) {
		snprintf(key, sizeof(key), "command:%zu", n);
		arg = api->option(options, key);
		if (arg == NULL)
			break;
		if (n == EXEC_ARGS_MAX) {
			snprintf(err, errlen, "command: more than %d arguments", EXEC_ARGS_MAX);
			return -1;
		}
		x->argv[n] = strdup(arg);
		if (x->argv[n] == NULL)
			goto oom;
	}
	if (n == 0) {
		snprintf(err, errlen, "command: missing; an argv array such as "
		         "[\"/usr/lib/nagios/plugins/check_load\"]");
		return -1;
	}
	if (x->argv[0][0] != '/') {
		snprintf(err, errlen, "command[0]: \"%.200s\" is not an absolute path", x->argv[0]);
		return -1;
	}
	if (stat(x->argv[0], &st) == -1) {
		snprintf(err, errlen, "command[0]: %.200s: %s", x->argv[0], strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "command[0]: %.200s: not a regular file", x->argv[0]);
		return -1;
	}
	if (access(x->argv[0], X_OK) == -1) {
		snprintf(err, errlen, "command[0]: %.200s: not executable: %s", x->argv[0],
		         strerror(errno));
		return -1;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static bool
exec_env_name_ok(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

/* Appends "NAME=value" to envp[*n], replacing an earlier NAME. */
static int
exec_env_set(char **envp, size_t *n, const char *name, const char *value)
{
	size_t nlen = strlen(name);
	char *entry;

	if (asprintf(&entry, "%s=%s", name, value) == -1)
		return -1;
	for (size_t i = 0; i < *n; i++) {
		if (strncmp(envp[i], name, nlen) == 0 && envp[i][nlen] == '=') {
			free(envp[i]);
			envp[i] = entry;
			return 0;
		}
	}
	envp[(*n)++] = entry;
	return 0;
}

/* The command's whole environment: PATH, LC_ALL, then "env": {...}. */
static int
exec_read_env(struct exec_check *x, const struct healthd_host_api *api,
              const struct healthd_options *options, char *err, size_t errlen)
{
	const char *key, *value, *name;
	size_t n = 0;

	if (api->option(options, "env") != NULL) {
		snprintf(err, errlen, "env: expected an object such as {\"LANG\": \"C.UTF-8\"}");
		return -1;
	}
	x->envp = calloc(EXEC_ENV_MAX + 3, sizeof(*x->envp));
	if (x->envp == NULL)
		goto oom;
	if (exec_env_set(x->envp, &n, "PATH", EXEC_PATH) == -1 ||
	    exec_env_set(x->envp, &n, "LC_ALL", EXEC_LOCALE) == -1)
		goto oom;
	for (size_t i = 0; api->option_at(options, i, &key, &value); i++) {
		if (strncmp(key, "env:", 4) != 0)
			continue;
		name = key + 4;
		if (!exec_env_name_ok(name)) {
			snprintf(err, errlen, "env.%.80s: not a valid variable name", name);
			return -1;
		}
		if (strcmp(name, EXEC_SECRET_VAR) == 0) {
			snprintf(err, errlen, "env.%s: healthd's URL secret is never given to a "
			         "command", name);
			return -1;
		}
		if (n >= EXEC_ENV_MAX) {
			snprintf(err, errlen, "env: more than %d variables", EXEC_ENV_MAX);
			return -1;
		}
		if (exec_env_set(x->envp, &n, name, value) == -1)
			goto oom;
		(void)api->option(options, key); /* claim it */
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int
exec_instantiate(struct healthd_host *host, const struct healthd_host_api *api,
                 const char *check_name, const struct healthd_options *options, char *err,
                 size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;
	struct exec_check *x;
	const char *cwd;
	struct stat st;

	x = calloc(1, sizeof(*x));
	if (x == NULL || (x->name = strdup(check_name)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	x->api = api;
	x->host = host;
	if (exec_read_command(x, api, options, err, errlen) == -1 ||
	    exec_read_env(x, api, options, err, errlen) == -1)
		goto fail;
	cwd = api->option(options, "cwd");
	if (cwd == NULL)
		cwd = "/";
	if (cwd[0] != '/') {
		snprintf(err, errlen, "cwd: \"%.200s\" is not an absolute path", cwd);
		goto fail;
	}
	if (stat(cwd, &st) == -1) {
		snprintf(err, errlen, "cwd: %.200s: %s", cwd, strerror(errno));
		goto fail;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cwd: %.200s: not a directory", cwd);
		goto fail;
	}
	x->cwd = strdup(cwd);
	if (x->cwd == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (api->option_int(options, "kill_grace_ms", EXEC_GRACE_MS, 0, EXEC_GRACE_MAX_MS,
	                    &x->grace_ms) == -1)
		goto fail; /* the host names the key and the range */

	check.name = check_name;
	check.run = exec_run;
	check.destroy = exec_destroy;
	check.state = x;
	if (api->register_check(host, &check, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	exec_destroy(x);
	return -1;
}

HEALTHD_PLUGIN(.name = "exec",
               .version = "1.0",
               .description = "runs a command the monitoring-plugins way (exit 0-3, perfdata)",
               .instantiate = exec_instantiate);
