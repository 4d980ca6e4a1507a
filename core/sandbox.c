/*
 * sandbox.c - the layers around plugin code in an executor.
 *
 * Each layer is set up in the executor before the plugin's .so is opened, is
 * detected rather than assumed, and is reported to the server in the LOAD
 * reply (struct sandbox_report), which logs one line per plugin. A
 * layer that isolation.require names and that cannot be had refuses the
 * plugin: no executor serves runs half sandboxed. In order:
 *
 *   not dumpable   PR_SET_DUMPABLE 0 in the server (at start, before the
 *                  secret is read) and in every executor: no /proc/PID/mem,
 *                  environ, ptrace or pidfd_getfd between same-uid processes.
 *   namespaces     unshare(user + mount [+ PID]); uid/gid mapped to
 *                  themselves; / made private; the credential directory,
 *                  config files and secret file overmounted (tmpfs, /dev/null).
 *                  The network namespace stays the host's: checks need it.
 *   pid_namespace  a PID namespace for everything plugin code starts, with a
 *                  /proc of its own, so neither the server nor the sibling
 *                  executors can be found there.
 *   tasks          RLIMIT_NPROC, soft and hard, set to isolation.max_tasks in
 *                  the executor's user namespace. Since Linux 5.14 the kernel
 *                  counts it per uid and user namespace (ucounts), so it
 *                  bounds this executor's processes and threads alone: a fork
 *                  bomb gets EAGAIN and leaves the others room. It never binds
 *                  the host's uid 0: a server run as root has no task limit
 *                  (reported as off, not missing: how healthd was started).
 *   capabilities   every capability dropped, bounding set too: the overmounts
 *                  cannot be undone, and root's executor holds no CAP_SYS_PTRACE.
 *   landlock       (the ABI the kernel offers) everything but those files, and
 *                  from ABI 6 no signal to a process outside the executor.
 *   seccomp        no_new_privs and a filter (libseccomp): ptrace, process_vm_*,
 *                  pidfd_getfd, kcmp, mount and namespace calls, keyctl, bpf,
 *                  perf_event_open, and signals to the server, return EPERM.
 *
 * The PID namespace, and why three processes: unshare(CLONE_NEWPID) never
 * moves its caller, only its later children, and a process whose children go
 * to another PID namespace cannot start threads (EINVAL). So the process the
 * server spawned (the "holder", host PID namespace) unshares and forks PID 1
 * of the new namespace, a reaper; the reaper mounts the namespace's /proc and
 * forks the executor proper, PID 2, which returns from sandbox_enter() with
 * fd 3 and loads the plugin. The executor is not PID 1 because PID 1 cannot
 * be killed by its own signals (raise(SIGSEGV), abort() after a crash
 * handler), which the crash reports rely on. The reaper reaps every orphan of
 * plugin code and, when the executor ends, exits as it did (a signal as 128
 * + its number): the kernel then kills whatever is left in the namespace,
 * setsid() or not. The holder keeps fd 3 open and exits as the reaper
 * reported (re-raising a signal), so the server's supervision is unchanged:
 * its pidfd and waitpid see the holder, its SIGKILL to the process group
 * reaches all three (the reaper dies, and the namespace with it), and if the
 * holder dies the reaper gets SIGKILL (PR_SET_PDEATHSIG). Only the memory cap
 * reads another pid: the holder names itself "healthd-sandbox" and
 * sandbox_memory_pid() finds its executor. An exit status above 128 from
 * plugin code reads as a signal: a price of PID 1's exit code.
 *
 * Denied calls are trapped (SECCOMP_RET_TRAP) rather than given RET_ERRNO: a
 * SIGSYS handler makes the call return -EPERM and writes one line per system
 * call, so an operator learns what a plugin tried without a probe. Plugin code
 * that replaces the handler only loses the line: the call never ran.
 */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "file_modes.h"

#define SANDBOX_ENV "HEALTHD_SANDBOX"
#define MAX_HIDE    16
#define HOLDER_NAME "healthd-sandbox" /* /proc/PID/comm of the server's child */

/* Landlock rights newer than the headers this may be built with. */
#define LL_FS_REFER      (1ULL << 13) /* ABI 2 */
#define LL_FS_TRUNCATE   (1ULL << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV  (1ULL << 15) /* ABI 5 */
#define LL_SCOPE_SIGNAL  (1ULL << 1)  /* ABI 6 */
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

/* The kernel's struct landlock_ruleset_attr as of ABI 6; older kernels get
 * the prefix they know. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

/* What the server handed down, parsed. */
struct spec {
	unsigned require;
	unsigned off;      /* for this executor's plugin */
	unsigned withheld; /* by the server, for every plugin (the wrapper, root) */
	int max_tasks;
	char *hide[MAX_HIDE];
	size_t nhide;
};

static void drop_capabilities(void);
static int parse_spec(const char *text, const char *plugin, size_t len, struct spec *sp);
static int enter_namespaces(bool pidns, char *why, size_t whylen);
static int hide_paths(const struct spec *sp, char *why, size_t whylen);
static int start_pid_namespace(char *why, size_t whylen);
static void reaper(void);
static bool host_root(void);
static int limit_tasks(int max, char *why, size_t whylen);
static void holder(pid_t reaper) __attribute__((noreturn));
static void on_child(int sig);
static int enter_landlock(const struct spec *sp, int *abi, char *why, size_t whylen);
static int landlock_allow_except(int ruleset, const char *dir, const struct spec *sp,
                                 uint64_t dir_rights, uint64_t file_rights);
static int enter_seccomp(pid_t server, char *why, size_t whylen);
static void on_sigsys(int sig, siginfo_t *si, void *ctx);
static void add_word(char *buf, size_t size, const char *word);
static void add_missing(struct sandbox_report *r, const char *before, const char *why,
                        const char *after);

static char *spec_text;              /* taken from the environment at start */
static char plugin_name[64];         /* for the SIGSYS handler's line */
static enum log_style log_style;     /* and its prefix, read before any signal */
static bool entered;
static char proc_error[160];         /* the reaper's, inherited by its executor */
static unsigned withheld;            /* server: layers no executor gets (wrapper, root) */
static int max_tasks;                /* server: isolation.max_tasks, for the report's text */

bool
sandbox_entered(void)
{
	return entered;
}

void
sandbox_server_start(void)
{
	prctl(PR_SET_DUMPABLE, 0);
}

/* ---- server: the description executors get ----------------------------- */

static int
add_hidden(char *buf, size_t size, size_t *len, const char *path)
{
	char real[PATH_MAX];
	int n;

	if (path == NULL || realpath(path, real) == NULL)
		return 0; /* not there: nothing to hide */
	if (strchr(real, '\n') != NULL)
		return -1;
	n = snprintf(buf + *len, size - *len, "hide %s\n", real);
	if (n < 0 || (size_t)n >= size - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}

/*
 * The TLS key, also after a renewal: a key file that is a symbolic link into
 * its own directory (a Kubernetes secret volume: tls.key -> ..data/tls.key,
 * ..data -> ..2026_12_06_...) gets a new target on each renewal, which the
 * executors' view, made once, would not hide: the directory is hidden instead.
 */
static int
add_hidden_key(char *buf, size_t size, size_t *len, const char *path)
{
	char dir[PATH_MAX], real[PATH_MAX], realdir[PATH_MAX], *slash;
	struct stat st;
	size_t n;

	if (path == NULL || lstat(path, &st) == -1 || !S_ISLNK(st.st_mode) ||
	    strlen(path) >= sizeof(dir))
		return add_hidden(buf, size, len, path);
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (realpath(dir, realdir) == NULL || realpath(path, real) == NULL)
		return add_hidden(buf, size, len, path);
	n = strlen(realdir);
	if (n > 1 && strncmp(real, realdir, n) == 0 && real[n] == '/')
		return add_hidden(buf, size, len, realdir);
	return add_hidden(buf, size, len, path);
}

int
sandbox_export(const struct config *cfg, char *err, size_t errlen)
{
	static char buf[16384];
	const char *wrap;
	size_t len = 0;
	int n;

	/* Valgrind implements neither landlock nor seccomp (ENOSYS and a warning
	 * on stderr): under a test setup's wrapper, executors go without them.
	 * RLIMIT_NPROC never binds the host's root: its executors have no task
	 * limit, which is how healthd was started, not what the kernel withholds. */
	wrap = getenv("HEALTHD_EXECUTOR_WRAPPER");
	withheld = wrap != NULL && wrap[0] != '\0' ? SANDBOX_LANDLOCK | SANDBOX_SECCOMP : 0;
	if (host_root())
		withheld |= SANDBOX_TASKS;
	max_tasks = cfg->isolation.max_tasks;
	n = snprintf(buf, sizeof(buf), "require %x\nwithheld %x\ntasks %d\n", cfg->sandbox_require,
	             withheld, max_tasks);
	len = (size_t)n;
	for (size_t i = 0; i < cfg->nsandbox_off; i++) {
		n = snprintf(buf + len, sizeof(buf) - len, "off %x %s\n",
		             cfg->sandbox_off[i].layers, cfg->sandbox_off[i].plugin);
		if (n < 0 || (size_t)n >= sizeof(buf) - len)
			goto toolong;
		len += (size_t)n;
	}
	if (add_hidden(buf, sizeof(buf), &len, cfg->path) == -1 ||
	    add_hidden(buf, sizeof(buf), &len, cfg->checks_dir) == -1 ||
	    add_hidden(buf, sizeof(buf), &len, cfg->secret_file) == -1 ||
	    add_hidden_key(buf, sizeof(buf), &len, cfg->tls.key_file) == -1 ||
	    add_hidden(buf, sizeof(buf), &len, getenv("CREDENTIALS_DIRECTORY")) == -1 ||
	    add_hidden(buf, sizeof(buf), &len, "/run/credentials") == -1)
		goto toolong;
	if (setenv(SANDBOX_ENV, buf, 1) == -1) {
		snprintf(err, errlen, "sandbox: %s", strerror(errno));
		return -1;
	}
	return 0;
toolong:
	snprintf(err, errlen, "sandbox: the paths executors must not see are too long, or "
	         "hold a newline");
	return -1;
}

/* ---- executor ----------------------------------------------------------- */

void
sandbox_executor_start(void)
{
	const char *s = getenv(SANDBOX_ENV);

	prctl(PR_SET_DUMPABLE, 0);
	spec_text = s != NULL ? strdup(s) : NULL;
	unsetenv(SANDBOX_ENV);
}

/* "require HEX", "withheld HEX", "tasks N", "off HEX NAME", "hide PATH", one a line. */
static int
parse_spec(const char *text, const char *plugin, size_t len, struct spec *sp)
{
	const char *p = text;

	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char line[PATH_MAX + 16];
		unsigned bits;
		int used = 0;

		if (n >= sizeof(line))
			return -1;
		memcpy(line, p, n);
		line[n] = '\0';
		if (sscanf(line, "require %x", &bits) == 1) {
			sp->require = bits;
		} else if (sscanf(line, "withheld %x", &bits) == 1) {
			sp->withheld = bits & SANDBOX_ALL;
			sp->off |= sp->withheld;
		} else if (sscanf(line, "tasks %d", &sp->max_tasks) == 1) {
			/* read into sp */
		} else if (sscanf(line, "off %x %n", &bits, &used) == 1 && used > 0) {
			if (strlen(line + used) == len && memcmp(line + used, plugin, len) == 0)
				sp->off |= bits;
		} else if (strncmp(line, "hide /", 6) == 0 && sp->nhide < MAX_HIDE) {
			if ((sp->hide[sp->nhide] = strdup(line + 5)) == NULL)
				return -1;
			sp->nhide++;
		}
		p = nl ? nl + 1 : NULL;
	}
	return 0;
}

static int
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd == -1)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* A user namespace (uid and gid mapped to themselves) owning a mount
 * namespace, and a PID namespace for what is forked from here on. Returns 0;
 * -1 when the kernel refuses the namespaces; -2 when it failed after them,
 * which leaves the executor unfit to serve (no thread can start). */
static int
enter_namespaces(bool pidns, char *why, size_t whylen)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	char map[64];

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | (pidns ? CLONE_NEWPID : 0)) == -1) {
		snprintf(why, whylen, "unshare: %s", strerror(errno));
		return -1;
	}
	/* /proc/self of an undumpable process is root's: ours for a moment */
	prctl(PR_SET_DUMPABLE, 1);
	snprintf(map, sizeof(map), "%lu %lu 1\n", (unsigned long)uid, (unsigned long)uid);
	if (write_file("/proc/self/setgroups", "deny") == -1 ||
	    write_file("/proc/self/uid_map", map) == -1) {
		snprintf(why, whylen, "uid_map: %s", strerror(errno));
		goto fatal;
	}
	snprintf(map, sizeof(map), "%lu %lu 1\n", (unsigned long)gid, (unsigned long)gid);
	if (write_file("/proc/self/gid_map", map) == -1) {
		snprintf(why, whylen, "gid_map: %s", strerror(errno));
		goto fatal;
	}
	prctl(PR_SET_DUMPABLE, 0);
	/* "none": the kernel ignores both here, valgrind checks them */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == -1) {
		snprintf(why, whylen, "making / private: %s", strerror(errno));
		return -2;
	}
	return 0;
fatal:
	prctl(PR_SET_DUMPABLE, 0);
	return -2;
}

/* Directories get an empty read-only tmpfs, files /dev/null. */
static int
hide_paths(const struct spec *sp, char *why, size_t whylen)
{
	for (size_t i = 0; i < sp->nhide; i++) {
		struct stat st;
		int rc;

		if (stat(sp->hide[i], &st) == -1)
			continue; /* gone, or not ours to see anyway */
		if (S_ISDIR(st.st_mode))
			rc = mount("tmpfs", sp->hide[i], "tmpfs",
			           MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0");
		else
			rc = mount("/dev/null", sp->hide[i], "none", MS_BIND, NULL);
		if (rc == -1) {
			snprintf(why, whylen, "hiding %s: %s", sp->hide[i], strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Whether this is the host's uid 0, which RLIMIT_NPROC never binds: root
 * in the initial user namespace. Read by the server, before any unshare(). */
static bool
host_root(void)
{
	char map[64] = "";
	int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
	unsigned long inside = 1, outside = 1, count = 0;

	if (getuid() != 0)
		return false;
	if (fd >= 0) {
		ssize_t n = read(fd, map, sizeof(map) - 1);
		map[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	if (sscanf(map, "%lu %lu %lu", &inside, &outside, &count) != 3)
		return true; /* cannot tell: assume the worst */
	return inside == 0 && outside == 0;
}

/* The task limit, in the executor's fresh user namespace (see the top). */
static int
limit_tasks(int max, char *why, size_t whylen)
{
	struct rlimit rl = {.rlim_cur = (rlim_t)max, .rlim_max = (rlim_t)max};
	struct utsname u;
	int major = 0, minor = 0;

	/* before ucounts, the count was the uid's across all namespaces */
	if (uname(&u) == -1 || sscanf(u.release, "%d.%d", &major, &minor) != 2 ||
	    major * 1000 + minor < 5014) {
		snprintf(why, whylen, "RLIMIT_NPROC is counted per user namespace from Linux 5.14 on");
		return -1;
	}
	if (max <= 0 || setrlimit(RLIMIT_NPROC, &rl) == -1) {
		snprintf(why, whylen, "RLIMIT_NPROC: %s", strerror(max <= 0 ? EINVAL : errno));
		return -1;
	}
	return 0;
}

/* Makes this process the holder of a PID namespace whose PID 2 returns as
 * the executor. In the holder and the reaper it never returns. No pipe: the
 * server expects an executor's fds to be 0, 1, 2 and its socket. */
static int
start_pid_namespace(char *why, size_t whylen)
{
	pid_t pid = fork();

	if (pid == -1) {
		snprintf(why, whylen, "PID namespace: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* Gone with the holder; if the holder died before this, it was by
		 * a kill of the process group, which took this process too. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		reaper();
		return 0; /* the executor */
	}
	holder(pid);
}

/* PID 1 of the namespace: mounts its /proc, forks the executor (and returns
 * in it), then reaps until the executor ends and exits as it did, a signal
 * as 128 + its number (PID 1 cannot raise one on itself). */
static void
reaper(void)
{
	struct sigaction sa = {.sa_handler = on_child};
	sigset_t chld, none;
	pid_t executor;
	int status;

	prctl(PR_SET_NAME, "healthd-reaper");
	/* The kernel refuses a user namespace a /proc of its own while parts of
	 * the one it sees are masked (a container's /proc/acpi, /proc/kcore):
	 * the namespace still keeps signals in and reaps orphans, but /proc is
	 * the outer one, so the executor reports the layer missing. */
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == -1)
		snprintf(proc_error, sizeof(proc_error), "its /proc cannot be mounted: %s%s",
		         strerror(errno),
		         errno == EPERM ? " (parts of /proc are masked, as in a container)" : "");
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	executor = fork();
	if (executor == 0) {
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		return;
	}
	if (executor == -1)
		_exit(1);
	drop_capabilities();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGCHLD && sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_IGN);
	close_range(3, ~0U, 0); /* the socket is the executor's */
	sigemptyset(&none);
	for (;;) {
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG | __WALL)) > 0) {
			if (pid != executor)
				continue;
			/* and the kernel kills what is left in here */
			if (WIFSIGNALED(status))
				_exit(128 + WTERMSIG(status));
			_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
		}
		sigsuspend(&none);
	}
}

/* The server's child: keeps the executor's socket open (the server sees it
 * close when both are gone), waits for the namespace and ends as its
 * executor did. */
static void
holder(pid_t reaper_pid)
{
	int status, sig = 0;
	sigset_t all;

	prctl(PR_SET_NAME, HOLDER_NAME);
	while (waitpid(reaper_pid, &status, 0) == -1 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		sig = WTERMSIG(status); /* the reaper itself, killed from outside */
	else if (WIFEXITED(status) && WEXITSTATUS(status) > 128 && WEXITSTATUS(status) < 128 + NSIG)
		sig = WEXITSTATUS(status) - 128; /* the executor's signal */
	if (sig != 0) {
		signal(sig, SIG_DFL);
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		raise(sig);
		_exit(128 + sig);
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

pid_t
sandbox_memory_pid(pid_t pid)
{
	char path[64], buf[64];
	int fd;
	ssize_t n;

	for (int step = 0; step < 2; step++) {
		if (step == 0) {
			snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
			if (fd >= 0)
				close(fd);
			if (n <= 0 || strncmp(buf, HOLDER_NAME "\n", (size_t)n) != 0)
				return pid;
		}
		/* its first child: the reaper, then the reaper's: the executor */
		snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)pid, (long)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			return pid;
		buf[n] = '\0';
		pid = (pid_t)strtol(buf, NULL, 10);
	}
	return pid;
}

static void
on_child(int sig)
{
	(void)sig;
}

/* Every capability, the bounding set and the ambient set too. */
static void
drop_capabilities(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];

	for (int cap = 0; cap < 64; cap++)
		prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	memset(d, 0, sizeof(d));
	syscall(SYS_capset, &h, d);
}

/* ---- landlock ----------------------------------------------------------- */

/* Whether path is an entry on the way to (or is) a hidden path. */
static bool
leads_to_hidden(const struct spec *sp, const char *path, bool *is_hidden)
{
	size_t n = strlen(path);

	*is_hidden = false;
	for (size_t i = 0; i < sp->nhide; i++) {
		if (strcmp(sp->hide[i], path) == 0) {
			*is_hidden = true;
			return true;
		}
		if (strncmp(sp->hide[i], path, n) == 0 && (sp->hide[i][n] == '/' || n == 1))
			return true;
	}
	return false;
}

/*
 * Landlock only allows: "everything but these paths" is every entry of each
 * hidden path's ancestors except the one leading on to it, allowed beneath.
 * The ancestors themselves get no right (a right on one would cover the
 * hidden path below it), so nothing can be created directly in them.
 */
static int
landlock_allow_except(int ruleset, const char *dir, const struct spec *sp, uint64_t dir_rights,
                      uint64_t file_rights)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return 0; /* cannot look inside: nothing there is allowed */
	while ((e = readdir(d)) != NULL) {
		char child[PATH_MAX], real[PATH_MAX];
		struct ll_path_beneath pb;
		struct stat st;
		bool hidden, rhidden;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", strcmp(dir, "/") == 0 ? "" : dir,
		             e->d_name) >= (int)sizeof(child))
			continue;
		if (leads_to_hidden(sp, child, &hidden)) {
			if (!hidden && landlock_allow_except(ruleset, child, sp, dir_rights,
			                                     file_rights) == -1) {
				closedir(d);
				return -1;
			}
			continue;
		}
		/* a symbolic link that leads to a hidden path or above one (/var/run ->
		 * /run): its target is walked where it really is */
		if (realpath(child, real) == NULL || leads_to_hidden(sp, real, &rhidden))
			continue;
		pb.parent_fd = open(child, O_PATH | O_CLOEXEC);
		if (pb.parent_fd == -1)
			continue;
		if (fstat(pb.parent_fd, &st) == -1) {
			close(pb.parent_fd);
			continue;
		}
		pb.allowed_access = S_ISDIR(st.st_mode) ? dir_rights : file_rights;
		if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) == -1) {
			close(pb.parent_fd);
			closedir(d);
			return -1;
		}
		close(pb.parent_fd);
	}
	closedir(d);
	return 0;
}

static int
enter_landlock(const struct spec *sp, int *abi, char *why, size_t whylen)
{
	struct ll_ruleset_attr attr = {0};
	uint64_t file_rights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
	                       LANDLOCK_ACCESS_FS_READ_FILE;
	size_t size = 8;
	int fd, rc = -1;

	*abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (*abi < 1) {
		snprintf(why, whylen, "landlock: %s", strerror(errno));
		return -1;
	}
	attr.handled_access_fs = (1ULL << 13) - 1; /* ABI 1: EXECUTE .. MAKE_SYM */
	if (*abi >= 2)
		attr.handled_access_fs |= LL_FS_REFER;
	if (*abi >= 3) {
		attr.handled_access_fs |= LL_FS_TRUNCATE;
		file_rights |= LL_FS_TRUNCATE;
	}
	if (*abi >= 4)
		size = 16; /* handled_access_net: left 0, the network stays the host's */
	if (*abi >= 5) {
		attr.handled_access_fs |= LL_FS_IOCTL_DEV;
		file_rights |= LL_FS_IOCTL_DEV;
	}
	if (*abi >= 6) {
		attr.scoped = LL_SCOPE_SIGNAL; /* no signal out of this executor */
		size = 24;
	}
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (fd == -1) {
		snprintf(why, whylen, "landlock: %s", strerror(errno));
		return -1;
	}
	if (landlock_allow_except(fd, "/", sp, attr.handled_access_fs, file_rights) == -1) {
		snprintf(why, whylen, "landlock rule: %s", strerror(errno));
		goto out;
	}
	if (syscall(SYS_landlock_restrict_self, fd, 0) == -1) {
		snprintf(why, whylen, "landlock: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* ---- seccomp ------------------------------------------------------------ */

/* The calls denied outright: reading or changing another process, undoing
 * the mounts, the kernel's keyrings, BPF, perf. */
static const char *const denied[] = {
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
	"mount", "umount2", "unshare", "setns", "pivot_root", "move_mount", "open_tree",
	"fsopen", "fsmount", "fspick", "mount_setattr", "keyctl", "add_key", "request_key",
	"bpf", "perf_event_open",
};
/* Denied for some arguments (enter_seccomp): named here for the log line. */
static const char *const denied_when[] = {
	"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "clone",
};

#define MAX_NR 1024
static const char *denied_name[MAX_NR]; /* by syscall number, for the handler */
static atomic_bool denied_logged[MAX_NR];

static int
enter_seccomp(pid_t server, char *why, size_t whylen)
{
	static const uint64_t ns_flags[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID,
	                                    CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
	                                    CLONE_NEWCGROUP};
	const uint32_t act = SCMP_ACT_TRAP;
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	pid_t pgid = getpgid(server);
	int rc = 0;

	if (ctx == NULL) {
		snprintf(why, whylen, "seccomp: out of memory");
		return -1;
	}
	for (size_t i = 0; i < sizeof(denied_when) / sizeof(denied_when[0]); i++) {
		int nr = seccomp_syscall_resolve_name(denied_when[i]);
		if (nr >= 0 && nr < MAX_NR)
			denied_name[nr] = denied_when[i];
	}
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]) && rc == 0; i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr >= 0 && nr < MAX_NR)
			denied_name[nr] = denied[i];
		if (nr != __NR_SCMP_ERROR)
			rc = seccomp_rule_add(ctx, act, nr, 0);
	}
	/* Signals: not to the server, its process group, or everyone (-1). */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, act, SCMP_SYS(kill), 1,
		                      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)server));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, act, SCMP_SYS(kill), 1,
		                      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)-1));
	if (rc == 0 && pgid > 1 && pgid != getpgrp())
		rc = seccomp_rule_add(ctx, act, SCMP_SYS(kill), 1,
		                      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)-pgid));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, act, SCMP_SYS(tkill), 1,
		                      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)server));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, act, SCMP_SYS(tgkill), 1,
		                      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)server));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, act, SCMP_SYS(rt_sigqueueinfo), 1,
		                      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)server));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, act, SCMP_SYS(rt_tgsigqueueinfo), 1,
		                      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)server));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, act, SCMP_SYS(pidfd_open), 1,
		                      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)server));
	/* New namespaces through clone(); clone3's flags are out of the filter's
	 * reach, so it answers ENOSYS and the C library falls back to clone(). */
	for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]) && rc == 0; i++)
		rc = seccomp_rule_add(ctx, act, SCMP_SYS(clone), 1,
		                      SCMP_A0_64(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (rc != 0) {
		snprintf(why, whylen, "seccomp rule: %s", strerror(-rc));
		seccomp_release(ctx);
		return -1;
	}
	log_style = log_get_style();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);
	rc = seccomp_load(ctx); /* sets no_new_privs first */
	seccomp_release(ctx);
	if (rc != 0) {
		snprintf(why, whylen, "seccomp: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

static size_t
append(char *buf, size_t n, size_t size, const char *s)
{
	while (*s != '\0' && n < size - 1)
		buf[n++] = *s++;
	return n;
}

static size_t
append_num(char *buf, size_t n, size_t size, long v, int width)
{
	char digits[24];
	int k = 0;

	do {
		digits[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && k < (int)sizeof(digits));
	while (k < width && k < (int)sizeof(digits))
		digits[k++] = '0';
	while (k > 0 && n < size - 1)
		buf[n++] = digits[--k];
	return n;
}

/* log.c's prefix, by hand: "<4>" for the journal, else an RFC 3339 UTC time
 * stamp (days to a civil date as in Howard Hinnant's days_from_civil). */
static size_t
log_prefix(char *buf, size_t size)
{
	struct timespec ts;
	long days, secs, era, doe, yoe, y, doy, mp, d, m;
	size_t n = 0;

	if (log_style == LOG_STYLE_JOURNAL)
		return append(buf, 0, size, "<4>");
	if (log_style != LOG_STYLE_TIMESTAMP || clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return 0;
	days = (long)(ts.tv_sec / 86400) + 719468;
	secs = (long)(ts.tv_sec % 86400);
	era = days / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2);
	n = append_num(buf, n, size, y, 4);
	n = append(buf, n, size, "-");
	n = append_num(buf, n, size, m, 2);
	n = append(buf, n, size, "-");
	n = append_num(buf, n, size, d, 2);
	n = append(buf, n, size, "T");
	n = append_num(buf, n, size, secs / 3600, 2);
	n = append(buf, n, size, ":");
	n = append_num(buf, n, size, secs / 60 % 60, 2);
	n = append(buf, n, size, ":");
	n = append_num(buf, n, size, secs % 60, 2);
	n = append(buf, n, size, ".");
	n = append_num(buf, n, size, ts.tv_nsec / 1000000, 3);
	return append(buf, n, size, "Z ");
}

/* A denied call returns -EPERM, and the first of each kind is logged. Only
 * async-signal-safe calls: the line is put together by hand. */
static void
on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	int nr = si->si_syscall;
	char line[256];
	size_t n = 0;

	(void)sig;
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (uint64_t)-EPERM;
#else
#error "sandbox.c: set the return register of a trapped system call for this architecture"
#endif
	if (nr < 0 || nr >= MAX_NR || atomic_exchange(&denied_logged[nr], true))
		return;
	n = log_prefix(line, sizeof(line));
	n = append(line, n, sizeof(line), "healthd: warning: plugin ");
	n = append(line, n, sizeof(line), plugin_name);
	n = append(line, n, sizeof(line), ": sandbox: denied ");
	n = append(line, n, sizeof(line), denied_name[nr] ? denied_name[nr] : "a system call");
	n = append(line, n, sizeof(line), "() (seccomp), it returned EPERM\n");
	(void)!write(STDERR_FILENO, line, n);
}

/* ---- all layers --------------------------------------------------------- */

static void
add_word(char *buf, size_t size, const char *word)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, "%s%s", n > 0 ? ", " : "", word);
}

/* One missing layer's reason, for the report: before, why, after (cut to fit). */
static void
add_missing(struct sandbox_report *r, const char *before, const char *why, const char *after)
{
	size_t n = strlen(r->why);

	n = append(r->why, n, sizeof(r->why), n > 0 ? ", " : "");
	n = append(r->why, n, sizeof(r->why), before);
	n = append(r->why, n, sizeof(r->why), why);
	n = append(r->why, n, sizeof(r->why), after);
	r->why[n] = '\0';
}

unsigned
sandbox_missing(const struct sandbox_report *r)
{
	return SANDBOX_ALL & ~r->layers & ~r->off;
}

void
sandbox_describe(const struct sandbox_report *r, char *buf, size_t len)
{
	char on[256] = "", off[768] = "", w[32];

	if (r->layers & SANDBOX_NAMESPACES)
		add_word(on, sizeof(on), r->layers & SANDBOX_PID_NAMESPACE ?
		         "user+pid+mount namespaces" : "user+mount namespaces");
	if (r->layers & SANDBOX_LANDLOCK) {
		snprintf(w, sizeof(w), "landlock v%u", r->landlock_abi);
		add_word(on, sizeof(on), w);
	}
	if (r->layers & SANDBOX_SECCOMP)
		add_word(on, sizeof(on), "seccomp");
	add_word(on, sizeof(on), "no_new_privs, not dumpable, no capabilities");
	if (r->layers & SANDBOX_TASKS) {
		snprintf(w, sizeof(w), "tasks %d", max_tasks);
		add_word(on, sizeof(on), w);
	}
	if (r->off & SANDBOX_NAMESPACES)
		add_word(off, sizeof(off), "namespaces off by configuration");
	else if (r->off & SANDBOX_PID_NAMESPACE)
		add_word(off, sizeof(off), "PID namespace off by configuration");
	if (r->off & SANDBOX_LANDLOCK)
		add_word(off, sizeof(off), withheld & SANDBOX_LANDLOCK ?
		         "landlock off under the executor wrapper" : "landlock off by configuration");
	if (r->off & SANDBOX_SECCOMP)
		add_word(off, sizeof(off), withheld & SANDBOX_SECCOMP ?
		         "seccomp off under the executor wrapper" : "seccomp off by configuration");
	if ((r->off & SANDBOX_TASKS) && !(r->off & SANDBOX_NAMESPACES))
		add_word(off, sizeof(off), withheld & SANDBOX_TASKS ?
		         "no task limit as root (RLIMIT_NPROC does not bind uid 0)" :
		         "task limit off by configuration");
	if (r->why[0] != '\0')
		add_word(off, sizeof(off), r->why);
	snprintf(buf, len, "%s%s%s", on, off[0] != '\0' ? "; " : "", off);
}

int
sandbox_enter(const char *path, pid_t server, struct sandbox_report *report, char *err,
              size_t errlen)
{
	struct spec sp = {0};
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t len = strlen(base);
	char why[512];
	int abi = 0, rc = -1;

	memset(report, 0, sizeof(*report));
	if (len > 3 && strcmp(base + len - 3, ".so") == 0)
		len -= 3;
	snprintf(plugin_name, sizeof(plugin_name), "%.*s", (int)len, base);
	entered = true;
	if (file_modes_plugin(path, err, errlen) == -1)
		goto out;
	if (parse_spec(spec_text ? spec_text : "", base, len, &sp) == -1) {
		snprintf(err, errlen, "plugin %s: sandbox: cannot read the server's description",
		         plugin_name);
		goto out;
	}
	if (sp.require & sp.withheld & SANDBOX_TASKS) {
		snprintf(err, errlen, "plugin %s: refused: isolation.require names tasks, which no "
		         "executor of root's can have (RLIMIT_NPROC does not bind uid 0)", plugin_name);
		goto out;
	}
	if (sp.off & SANDBOX_NAMESPACES) /* both are counted in the user namespace */
		sp.off |= SANDBOX_PID_NAMESPACE | SANDBOX_TASKS;
	report->off = sp.off & SANDBOX_ALL;

	if (!(sp.off & SANDBOX_NAMESPACES)) {
		bool pidns = !(sp.off & SANDBOX_PID_NAMESPACE);
		int ns = enter_namespaces(pidns, why, sizeof(why));
		if (ns == -1) {
			add_missing(report, "no namespaces (", why, ")");
			if (!(sp.off & SANDBOX_TASKS))
				add_missing(report, "no task limit (", "no user namespace to count in", ")");
		} else if (ns == -2 || hide_paths(&sp, why, sizeof(why)) == -1) {
			goto halfway;
		} else {
			/* before the PID namespace's forks, which it counts */
			if (!(sp.off & SANDBOX_TASKS)) {
				char twhy[128];
				if (limit_tasks(sp.max_tasks, twhy, sizeof(twhy)) == 0)
					report->layers |= SANDBOX_TASKS;
				else
					add_missing(report, "no task limit (", twhy, ")");
			}
			if (pidns && start_pid_namespace(why, sizeof(why)) == -1)
				goto halfway;
			report->layers |= SANDBOX_NAMESPACES;
			if (pidns && proc_error[0] != '\0')
				add_missing(report, "no PID namespace (", proc_error, ")");
			else if (pidns)
				report->layers |= SANDBOX_PID_NAMESPACE;
		}
	}
	drop_capabilities();
	/* landlock needs it, or CAP_SYS_ADMIN; seccomp sets it too */
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

	if (!(sp.off & SANDBOX_LANDLOCK)) {
		if (enter_landlock(&sp, &abi, why, sizeof(why)) == -1) {
			add_missing(report, "no ", why, "");
		} else {
			report->layers |= SANDBOX_LANDLOCK;
			report->landlock_abi = abi > SANDBOX_LANDLOCK_ABI_MAX ? SANDBOX_LANDLOCK_ABI_MAX
			                                                      : (unsigned)abi;
		}
	}
	if (!(sp.off & SANDBOX_SECCOMP)) {
		if (enter_seccomp(server, why, sizeof(why)) == -1) {
			add_missing(report, "no ", why, "");
		} else {
			report->layers |= SANDBOX_SECCOMP;
		}
	}
	if (sandbox_missing(report) & sp.require) {
		snprintf(err, errlen, "plugin %s: refused: isolation.require names a sandbox layer "
		         "this executor could not set up: %s", plugin_name, report->why);
		goto out;
	}
	rc = 0;
	goto out;
halfway:
	/* inside the namespaces already: there is no going back */
	snprintf(err, errlen, "plugin %s: refused: sandbox: namespaces half set up: %s", plugin_name,
	         why);
out:
	for (size_t i = 0; i < sp.nhide; i++)
		free(sp.hide[i]);
	return rc;
}
