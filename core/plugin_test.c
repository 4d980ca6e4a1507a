/*
 * plugin_test.c - the plugin contract suite of `healthd --test-plugin`.
 *
 * Steps, each in a child of its own (see plugin_test.h):
 *   load        load(), instantiate() of two configured checks, destroy() of
 *               every check, unload(): in the server's order, by its code
 *   run         every check runs once and returns a status 0-3 by its deadline
 *   cancel      a run given a long deadline stops soon after cancelled() turns
 *               true (ABI 1.1 and later)
 *   concurrent  two checks of the plugin (two instances, or two fixed checks)
 *               run at the same time, several rounds
 *   memory      repeated runs do not grow the heap
 *
 * Threads a plugin starts in run() may still be at work when run() returned;
 * a step waits (bounded) for them to end before it reads the heap or counts
 * calls made outside run(), so what they do is judged, not their being alive.
 *
 * The child writes one line per finding on stdout: "PASS text", "FAIL text",
 * "SKIP text", and "BUDGET ms" (the next line comes within ms, or the child
 * is stuck) and "RUNNING check" (for the crash report). The parent turns them
 * into TAP and passes the child's stderr on as TAP comments.
 */
#include "plugin_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "crash.h"
#include "plugin_loader.h"
#include "registry.h"
#include "report.h"

extern char **environ;

/* load() and instantiate() of one child, together. A sixth of the server's
 * isolation.load_timeout_ms default: a plugin slower than this here is one
 * that times out on a busy host, and serves nothing meanwhile. */
#define LOAD_BUDGET_MS 5000
#define RETURN_GRACE_MS 1000    /* past a deadline before a run counts as stuck */
#define CANCEL_AFTER_MS 100     /* the cancel step turns cancelled() true then */
#define CANCEL_BOUND_MS 1000    /* ... and the run must have returned this later */
#define CONCURRENT_ROUNDS 3
#define MEMORY_WARMUP 3
#define MEMORY_RUNS 200         /* at most, within MEMORY_TIME_MS */
#define MEMORY_TIME_MS 3000
#define MEMORY_TIMEOUT_MS 250   /* per run: a leak shows in short runs too */
#define MEMORY_SLACK 16384      /* growth below this is noise (caches, arenas) */
#define MEMORY_PER_RUN 64       /* a leak is at least this per run on average */
#define INSTANCES 2
#define SETTLE_MS 1000          /* for the threads a step's runs left behind to end */
/* Past the host's grace by at most this is a scheduling delay of a loaded
 * machine (the harness's own threads, a sanitizer), noted but not failed. */
#define LATE_SLACK_MS 50

static const char *const instance_names[INSTANCES] = {"test-a", "test-b"};

/* ======================================================================
 * The child
 * ====================================================================== */

/* Under ASan the heap is the sanitizer's; mallinfo2() would say nothing. */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

struct env {
	struct registry *reg;
	struct plugin_loader *loader;
	struct plugin_info pi;
	struct config_check ck[INSTANCES];
	struct config_option *opts[INSTANCES];
	const struct check *sel[64]; /* the checks the steps run */
	size_t nsel;
};

static void
say(const char *kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(const char *kind, const char *fmt, ...)
{
	va_list ap;

	fputs(kind, stdout);
	fputc(' ', stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* A run still inside plugin code cannot be cleaned up after: say so and go. */
static _Noreturn void
give_up(void)
{
	fflush(stdout);
	fflush(stderr);
	_exit(1);
}

/* The threads of this process now (zombies excluded: the kernel drops an
 * ended thread's task at once, joined or not); -1 if /proc cannot tell. */
static int
live_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * Waits until no more than base threads run, SETTLE_MS at most; returns how
 * many more still do. Polls: a thread's end is no event this process can wait on.
 */
static int
settle(int base)
{
	int64_t until = clock_ms() + SETTLE_MS;
	int n;

	say("BUDGET", "%d", SETTLE_MS);
	while ((n = live_threads()) > base && clock_ms() < until)
		poll(NULL, 0, 5);
	return n > base && base >= 0 ? n - base : 0;
}

static size_t
heap_in_use(void)
{
	if (__sanitizer_get_current_allocated_bytes != NULL)
		return __sanitizer_get_current_allocated_bytes();
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* Loads the plugin, instantiates its configured checks and selects what runs. */
static int
setup(struct env *e, const char *file, const char *check, char **kv, size_t nkv, bool verbose)
{
	char err[1024];
	int64_t started;

	e->reg = registry_new();
	e->loader = e->reg ? plugin_loader_new(e->reg) : NULL;
	if (e->loader == NULL) {
		say("FAIL", "out of memory");
		return -1;
	}
	say("BUDGET", "%d", LOAD_BUDGET_MS);
	started = clock_ms();
	if (plugin_load_file(e->loader, file, err, sizeof(err)) == -1) {
		say("FAIL", "load: %s", err);
		return -1;
	}
	plugin_info(e->loader, 0, &e->pi);
	for (size_t k = 0; k < nkv; k++)
		*strchr(kv[k], '=') = '\0'; /* the parent checked there is one */
	if (verbose)
		say("PASS", "load: plugin %s %s (ABI %u.%u) loaded, %zu fixed check%s", e->pi.name,
		    e->pi.version, e->pi.abi_major, e->pi.abi_minor, e->pi.nchecks,
		    e->pi.nchecks == 1 ? "" : "s");
	if (!e->pi.instantiable && nkv > 0) {
		say("FAIL", "instantiate: --option given, but the plugin has no instantiate()");
		return -1;
	}
	for (int i = 0; i < INSTANCES && e->pi.instantiable; i++) {
		struct config_check *ck = &e->ck[i];
		e->opts[i] = calloc(nkv ? nkv : 1, sizeof(*e->opts[i]));
		if (e->opts[i] == NULL) {
			say("FAIL", "out of memory");
			return -1;
		}
		for (size_t k = 0; k < nkv; k++)
			e->opts[i][k] = (struct config_option){.key = kv[k],
			                                       .value = kv[k] + strlen(kv[k]) + 1};
		*ck = (struct config_check){.origin = (char *)"--test-plugin",
		                            .name = (char *)instance_names[i],
		                            .plugin = (char *)e->pi.name,
		                            .defaults = true,
		                            .timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS,
		                            .options = {.v = e->opts[i], .n = nkv}};
		if (plugin_instantiate(e->loader, ck, err, sizeof(err)) == -1) {
			say("FAIL", "instantiate %s: %s%s", instance_names[i], err,
			    nkv == 0 ? " (give its options with --option KEY=VALUE)" : "");
			return -1;
		}
		if (verbose)
			say("PASS", "instantiate: %s registered", instance_names[i]);
	}
	plugin_loader_seal(e->loader);
	registry_seal(e->reg);
	if (clock_ms() - started > LOAD_BUDGET_MS) {
		say("FAIL", "load: load() and instantiate() took %lld ms, more than the %d ms "
		    "budget (the server serves without the plugin's checks while it loads)",
		    (long long)(clock_ms() - started), LOAD_BUDGET_MS);
		return -1;
	}
	if (registry_count(e->reg) == 0) {
		say("FAIL", "load: the plugin registered no check and has no instantiate()");
		return -1;
	}
	for (uint32_t id = 0; id < registry_count(e->reg); id++) {
		const struct check *c = registry_at(e->reg, id);
		if ((check == NULL || strcmp(check, c->name) == 0) &&
		    e->nsel < sizeof(e->sel) / sizeof(e->sel[0]))
			e->sel[e->nsel++] = c;
	}
	if (e->nsel == 0) {
		say("FAIL", "--check %s: no such check (the plugin's checks are named as they "
		    "register; configured ones here are %s and %s)", check, instance_names[0],
		    instance_names[1]);
		return -1;
	}
	return 0;
}

/* destroy() of every check, then unload(): the server's order at shutdown. */
static void
teardown(struct env *e, bool verbose)
{
	say("BUDGET", "%d", LOAD_BUDGET_MS);
	registry_free(e->reg);
	plugin_loader_free(e->loader);
	for (int i = 0; i < INSTANCES; i++)
		free(e->opts[i]);
	if (verbose)
		say("PASS", "unload: destroy() of every check, then unload(), returned");
}

/* One run on a thread of its own, so that the child can bound its wait. */
struct trun {
	const struct check *c;
	struct healthd_report report;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pthread_t thread;
	bool done;
	int raw;
	int64_t started, ended, cancel_at;
};

static void *
trun_main(void *arg)
{
	struct trun *t = arg;
	int raw;

	plugin_run(t->c, &t->report, &raw);
	pthread_mutex_lock(&t->lock);
	t->raw = raw;
	t->ended = clock_ms();
	t->done = true;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static struct trun *
trun_start(const struct check *c, int64_t timeout_ms, int64_t cancel_after_ms)
{
	struct trun *t = calloc(1, sizeof(*t));
	pthread_condattr_t attr;

	if (t == NULL) {
		say("FAIL", "out of memory");
		give_up();
	}
	t->c = c;
	t->started = clock_ms();
	t->report.deadline_ms = t->started + timeout_ms;
	t->report.timeout_ms = timeout_ms;
	t->cancel_at = t->started + cancel_after_ms;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cv, &attr);
	pthread_condattr_destroy(&attr);
	say("BUDGET", "%lld", (long long)(timeout_ms + RETURN_GRACE_MS + CANCEL_BOUND_MS));
	say("RUNNING", "%s", c->name);
	if (pthread_create(&t->thread, NULL, trun_main, t) != 0) {
		say("FAIL", "cannot start a thread");
		give_up();
	}
	return t;
}

static bool
wait_until(struct trun *t, int64_t until)
{
	struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};

	while (!t->done && pthread_cond_timedwait(&t->cv, &t->lock, &ts) != ETIMEDOUT)
		;
	return t->done;
}

/* Waits for the run: cancelled() turns true at cancel_at (as the host does at
 * the deadline), and a run not back `bound` ms after that is stuck. */
static bool
trun_wait(struct trun *t, int64_t bound)
{
	bool done;

	pthread_mutex_lock(&t->lock);
	if (!wait_until(t, t->cancel_at))
		atomic_store(&t->report.cancelled, true);
	done = wait_until(t, t->cancel_at + bound);
	pthread_mutex_unlock(&t->lock);
	if (done)
		pthread_join(t->thread, NULL);
	return done;
}

static void
trun_free(struct trun *t)
{
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cv);
	free(t);
}

static const char *
status_name(int st)
{
	static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

	return st >= 0 && st <= 3 ? names[st] : "invalid";
}

/*
 * How long past the deadline the host still takes a run's own answer: a 1.2
 * host waits HEALTHD_DEADLINE_GRACE_MS, so stopping at the deadline is fine;
 * a plugin declaring an older minor may meet an older host, which does not.
 */
static int64_t
deadline_grace_ms(const struct env *e)
{
	return e->pi.abi_major == 1 && e->pi.abi_minor < 2 ? 0 : HEALTHD_DEADLINE_GRACE_MS;
}

/* A finished run is late when the host would have answered "timeout" for it. */
static bool
is_late(const struct env *e, const struct trun *t)
{
	return t->ended > t->report.deadline_ms + deadline_grace_ms(e);
}

/* The verdict on a finished run against its deadline; returns true if it held. */
static bool
judge(const struct env *e, const char *what, const struct trun *t)
{
	if (t->raw < 0 || t->raw > 3) {
		say("FAIL", "%s %s: run() returned %d, not a status (0 OK, 1 WARNING, 2 CRITICAL, "
		    "3 UNKNOWN)", what, t->c->name, t->raw);
		return false;
	}
	if (t->ended > t->report.deadline_ms + deadline_grace_ms(e) + LATE_SLACK_MS) {
		if (deadline_grace_ms(e) > 0)
			say("FAIL", "%s %s: returned after %lld ms, past its %lld ms deadline and the "
			    "host's %lld ms grace: stop by deadline_ms(), or the host's timeout wins",
			    what, t->c->name, (long long)(t->ended - t->started),
			    (long long)t->report.timeout_ms, (long long)deadline_grace_ms(e));
		else
			say("FAIL", "%s %s: returned after %lld ms, past its %lld ms deadline: stop a "
			    "little before deadline_ms() (hosts older than ABI 1.2 give no grace), or "
			    "the host's timeout wins", what, t->c->name,
			    (long long)(t->ended - t->started), (long long)t->report.timeout_ms);
		return false;
	}
	return true;
}

static int
step_run(struct env *e)
{
	int failed = 0;

	for (size_t i = 0; i < e->nsel; i++) {
		const struct check *c = e->sel[i];
		struct trun *t = trun_start(c, c->timeout_ms, c->timeout_ms);
		if (!trun_wait(t, RETURN_GRACE_MS)) {
			say("FAIL", "run %s: still running %d ms after its %d ms deadline: it heeds "
			    "neither deadline_ms() nor cancelled()", c->name, RETURN_GRACE_MS,
			    c->timeout_ms);
			give_up();
		}
		if (judge(e, "run", t))
			say("PASS", "run %s: %s in %lld ms of %d ms%s%s%s", c->name, status_name(t->raw),
			    (long long)(t->ended - t->started), c->timeout_ms,
			    t->report.message[0] ? ": " : "", t->report.message,
			    is_late(e, t)
			        ? " (late: past the host's grace, within the harness's slack; the "
			          "server would answer \"timeout\": stop earlier)" : "");
		else
			failed++;
		trun_free(t);
	}
	return failed ? 1 : 0;
}

static int
step_cancel(struct env *e)
{
	int failed = 0;

	if (e->pi.abi_minor < 1) {
		say("SKIP", "cancel: the plugin declares ABI 1.0, which has no cancelled()");
		return 0;
	}
	for (size_t i = 0; i < e->nsel; i++) {
		const struct check *c = e->sel[i];
		struct trun *t = trun_start(c, c->timeout_ms, CANCEL_AFTER_MS);
		if (!trun_wait(t, CANCEL_BOUND_MS)) {
			say("FAIL", "cancel %s: still running %d ms after cancelled() turned true "
			    "(%d ms into a %d ms deadline): wait in slices and give up when "
			    "cancelled() is true", c->name, CANCEL_BOUND_MS, CANCEL_AFTER_MS,
			    c->timeout_ms);
			give_up();
		}
		if (!judge(e, "cancel", t))
			failed++;
		else if (t->ended < t->cancel_at)
			say("PASS", "cancel %s: returned in %lld ms, before cancelled() turned true "
			    "(point it at something that does not answer to test its waiting)",
			    c->name, (long long)(t->ended - t->started));
		else
			say("PASS", "cancel %s: stopped %lld ms after cancelled() turned true", c->name,
			    (long long)(t->ended - t->cancel_at));
		trun_free(t);
	}
	return failed ? 1 : 0;
}

static int
step_concurrent(struct env *e)
{
	const struct check *pair[2] = {NULL, NULL};
	struct trun *t[2];

	if (e->pi.instantiable) {
		for (uint32_t id = 0; id < registry_count(e->reg); id++) {
			const struct check *c = registry_at(e->reg, id);
			for (int k = 0; k < INSTANCES; k++)
				if (strcmp(c->name, instance_names[k]) == 0)
					pair[k] = c;
		}
	} else if (e->nsel >= 2) {
		pair[0] = e->sel[0];
		pair[1] = e->sel[1];
	}
	if (pair[0] == NULL || pair[1] == NULL) {
		say("SKIP", "concurrent: the plugin has one fixed check and no instantiate()");
		return 0;
	}
	for (int round = 0; round < CONCURRENT_ROUNDS; round++) {
		for (int k = 0; k < 2; k++)
			t[k] = trun_start(pair[k], pair[k]->timeout_ms, pair[k]->timeout_ms);
		for (int k = 0; k < 2; k++) {
			if (!trun_wait(t[k], RETURN_GRACE_MS)) {
				say("FAIL", "concurrent: %s still running %d ms after its deadline while "
				    "%s ran at the same time", pair[k]->name, RETURN_GRACE_MS,
				    pair[1 - k]->name);
				give_up();
			}
		}
		bool ok = judge(e, "concurrent", t[0]);
		ok = judge(e, "concurrent", t[1]) && ok;
		trun_free(t[0]);
		trun_free(t[1]);
		if (!ok)
			return 1;
	}
	say("PASS", "concurrent: %s and %s ran at the same time, %d rounds", pair[0]->name,
	    pair[1]->name, CONCURRENT_ROUNDS);
	return 0;
}

static int
step_memory(struct env *e)
{
	int failed = 0;

	for (size_t i = 0; i < e->nsel; i++) {
		const struct check *c = e->sel[i];
		size_t before = 0, after;
		int64_t until = 0;
		int runs = 0, base = live_threads(), running;

		for (int n = 0; n < MEMORY_WARMUP + MEMORY_RUNS; n++) {
			if (n == MEMORY_WARMUP) {
				/* threads the warm-up left for good (a pool) are the baseline */
				settle(base);
				base = live_threads();
				before = heap_in_use();
				until = clock_ms() + MEMORY_TIME_MS;
			}
			if (n > MEMORY_WARMUP && clock_ms() > until)
				break;
			int64_t timeout = c->timeout_ms < MEMORY_TIMEOUT_MS ? c->timeout_ms
			                                                    : MEMORY_TIMEOUT_MS;
			struct trun *t = trun_start(c, timeout, timeout);
			if (!trun_wait(t, RETURN_GRACE_MS)) {
				say("FAIL", "memory %s: run %d still running %d ms after its %lld ms "
				    "deadline", c->name, n + 1, RETURN_GRACE_MS, (long long)timeout);
				give_up();
			}
			trun_free(t);
			runs += n >= MEMORY_WARMUP;
		}
		/* the heap of threads still at work is theirs, not leaked: read it after */
		running = settle(base);
		after = heap_in_use();
		if (running > 0 && after > before + MEMORY_SLACK) {
			say("SKIP", "memory %s: %d runs, heap %+lld bytes, not judged: %d thread%s the "
			    "plugin started still run%s %d ms after the last run returned", c->name,
			    runs, (long long)after - (long long)before, running, running == 1 ? "" : "s",
			    running == 1 ? "s" : "", SETTLE_MS);
		} else if (after > before + MEMORY_SLACK &&
		           (after - before) / (size_t)runs >= MEMORY_PER_RUN) {
			say("FAIL", "memory %s: the heap grew by %zu bytes over %d runs (%zu per run): "
			    "free in run() what run() allocates", c->name, after - before, runs,
			    (after - before) / (size_t)runs);
			failed++;
		} else {
			say("PASS", "memory %s: %d runs, heap %+lld bytes", c->name, runs,
			    (long long)after - (long long)before);
		}
	}
	return failed ? 1 : 0;
}

int
plugin_test_step_main(int argc, char **argv)
{
	struct env e = {0};
	const char *step, *file, *check;
	int rc, base;

	if (argc < 5)
		return 2;
	step = argv[2];
	file = argv[3];
	check = argv[4][0] ? argv[4] : NULL;
	/* one arena: mallinfo2() counts only the main one */
	mallopt(M_ARENA_MAX, 1);
	signal(SIGPIPE, SIG_IGN);
	crash_install(true);
	if (setup(&e, file, check, argv + 5, (size_t)(argc - 5), strcmp(step, "load") == 0) == -1) {
		teardown(&e, false);
		return 1;
	}
	base = live_threads(); /* with the plugin's own, from load() */
	if (strcmp(step, "load") == 0)
		rc = 0;
	else if (strcmp(step, "run") == 0)
		rc = step_run(&e);
	else if (strcmp(step, "cancel") == 0)
		rc = step_cancel(&e);
	else if (strcmp(step, "concurrent") == 0)
		rc = step_concurrent(&e);
	else if (strcmp(step, "memory") == 0)
		rc = step_memory(&e);
	else
		return 2;
	/* a thread run() left behind calls message() when it is done: wait for that */
	settle(base);
	if (plugin_stale_calls() > 0) {
		say("FAIL", "%s: the plugin called message() or timed_out() %lu time%s outside "
		    "run(), or from a thread other than run()'s: join the threads run() starts "
		    "before it returns", step, plugin_stale_calls(),
		    plugin_stale_calls() == 1 ? "" : "s");
		rc = 1;
	}
	teardown(&e, strcmp(step, "load") == 0);
	return rc;
}

/* ======================================================================
 * The parent
 * ====================================================================== */

struct tap {
	int n, failed;
};

static void
tap_line(struct tap *tap, bool ok, const char *text, const char *directive)
{
	tap->n++;
	tap->failed += !ok;
	printf("%sok %d - %s%s\n", ok ? "" : "not ", tap->n, text, directive);
	fflush(stdout);
}

/* One line of the child's stdout. */
static void
child_line(struct tap *tap, char *line, int64_t *deadline, char *running, size_t runlen,
           int *fails)
{
	if (strncmp(line, "PASS ", 5) == 0) {
		tap_line(tap, true, line + 5, "");
	} else if (strncmp(line, "FAIL ", 5) == 0) {
		tap_line(tap, false, line + 5, "");
		(*fails)++;
	} else if (strncmp(line, "SKIP ", 5) == 0) {
		tap_line(tap, true, line + 5, " # SKIP");
	} else if (strncmp(line, "BUDGET ", 7) == 0) {
		/* generous: the child bounds its own waits, this is the backstop */
		*deadline = clock_ms() + 2 * strtoll(line + 7, NULL, 10) + 5000;
	} else if (strncmp(line, "RUNNING ", 8) == 0) {
		snprintf(running, runlen, "%s", line + 8);
	} else {
		printf("# %s\n", line);
	}
}

/* Splits buf (len bytes so far) into lines for fn; keeps the rest. */
static size_t
drain_lines(char *buf, size_t len, bool eof, void (*fn)(char *line, void *arg), void *arg)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			buf[i] = '\0';
			fn(buf + start, arg);
			start = i + 1;
		}
	}
	if (eof && start < len) {
		buf[len] = '\0';
		fn(buf + start, arg);
		start = len;
	}
	memmove(buf, buf + start, len - start);
	return len - start;
}

struct step_state {
	struct tap *tap;
	int64_t deadline;
	char running[CHECK_NAME_MAX + 1];
	int fails;
};

static void
on_stdout(char *line, void *arg)
{
	struct step_state *s = arg;

	child_line(s->tap, line, &s->deadline, s->running, sizeof(s->running), &s->fails);
}

static void
on_stderr(char *line, void *arg)
{
	(void)arg;
	if (line[0] != '\0')
		printf("# %s\n", line);
}

/* Runs one step in a child; returns the number of failures it reported. */
static int
run_step(struct tap *tap, const char *self, const char *step, const char *file,
         const char *const *opts, size_t nopts, const char *check)
{
	struct step_state s = {.tap = tap, .deadline = clock_ms() + 2 * LOAD_BUDGET_MS};
	char bufs[2][8192];
	size_t lens[2] = {0, 0};
	int out[2], err[2], status = 0;
	posix_spawn_file_actions_t fa;
	const char **argv;
	bool open_[2] = {true, true}, killed = false;
	pid_t pid;
	int rc;

	argv = calloc(nopts + 7, sizeof(*argv));
	if (argv == NULL || pipe2(out, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1) {
		tap_line(tap, false, "cannot start a child: out of resources", "");
		free(argv);
		return 1;
	}
	argv[0] = self;
	argv[1] = "--test-plugin-step";
	argv[2] = step;
	argv[3] = file;
	argv[4] = check ? check : "";
	for (size_t i = 0; i < nopts; i++)
		argv[5 + i] = opts[i];
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	fflush(stdout); /* nothing buffered may reach a child that fails to exec */
	rc = posix_spawn(&pid, self, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	free(argv);
	close(out[1]);
	close(err[1]);
	if (rc != 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s: cannot start %s: %s", step, self, strerror(rc));
		tap_line(tap, false, msg, "");
		close(out[0]);
		close(err[0]);
		return 1;
	}
	while (open_[0] || open_[1]) {
		struct pollfd pfd[2] = {{.fd = open_[0] ? out[0] : -1, .events = POLLIN},
		                        {.fd = open_[1] ? err[0] : -1, .events = POLLIN}};
		int64_t left = s.deadline - clock_ms();
		if (left <= 0) {
			kill(pid, SIGKILL);
			killed = true;
			break;
		}
		if (poll(pfd, 2, (int)(left > 1000 ? 1000 : left)) == -1 && errno != EINTR)
			break;
		for (int k = 0; k < 2; k++) {
			if (!open_[k] || pfd[k].revents == 0)
				continue;
			ssize_t n = read(k ? err[0] : out[0], bufs[k] + lens[k],
			                 sizeof(bufs[k]) - 1 - lens[k]);
			if (n > 0)
				lens[k] += (size_t)n;
			else if (n == 0 || errno != EINTR)
				open_[k] = false;
			/* a line longer than the buffer is cut */
			if (lens[k] == sizeof(bufs[k]) - 1)
				lens[k] = drain_lines(bufs[k], lens[k], true, k ? on_stderr : on_stdout, &s);
			lens[k] = drain_lines(bufs[k], lens[k], !open_[k], k ? on_stderr : on_stdout, &s);
		}
	}
	close(out[0]);
	close(err[0]);
	/* Both pipes are closed: the child is exiting. Bounded all the same. */
	for (int64_t until = clock_ms() + 5000;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w == -1 && errno != EINTR))
			break;
		if (clock_ms() > until && !killed) {
			kill(pid, SIGKILL);
			killed = true;
		}
		poll(NULL, 0, 10);
	}
	if (killed) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s: no answer in time%s%s: the plugin hangs (killed)",
		         step, s.running[0] ? ", in check " : "", s.running);
		tap_line(tap, false, msg, "");
		return s.fails + 1;
	}
	if (WIFSIGNALED(status)) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s: the plugin crashed: killed by signal %d (%s)%s%s",
		         step, WTERMSIG(status), strsignal(WTERMSIG(status)),
		         s.running[0] ? " while running check " : " while loading or unloading",
		         s.running);
		tap_line(tap, false, msg, "");
		return s.fails + 1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && s.fails == 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s: exited with status %d (exit() from plugin code?)",
		         step, WEXITSTATUS(status));
		tap_line(tap, false, msg, "");
		return 1;
	}
	return s.fails;
}

int
plugin_test_main(const char *self, const char *file, const char *const *opts, size_t nopts,
                 const char *check)
{
	static const char *const steps[] = {"load", "run", "cancel", "concurrent", "memory"};
	struct tap tap = {0};
	char path[PATH_MAX];

	for (size_t i = 0; i < nopts; i++) {
		if (strchr(opts[i], '=') == NULL || opts[i][0] == '=') {
			fprintf(stderr, "healthd: --option %s: expected KEY=VALUE\n", opts[i]);
			return 2;
		}
	}
	/* a name without '/' would make dlopen() search the library path */
	if (access(file, R_OK) == -1 || realpath(file, path) == NULL) {
		fprintf(stderr, "healthd: --test-plugin %s: %s\n", file, strerror(errno));
		return 2;
	}
	printf("TAP version 13\n# healthd --test-plugin %s\n", file);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (run_step(&tap, self, steps[i], path, opts, nopts, check) > 0 && i == 0) {
			/* nothing more can be learnt from a plugin that does not load */
			for (size_t k = 1; k < sizeof(steps) / sizeof(steps[0]); k++) {
				char msg[64];
				snprintf(msg, sizeof(msg), "%s: not run, the plugin did not load", steps[k]);
				tap_line(&tap, true, msg, " # SKIP");
			}
			break;
		}
	}
	printf("1..%d\n", tap.n);
	if (tap.failed > 0)
		printf("# %d of %d failed: the plugin does not keep the contract\n", tap.failed, tap.n);
	return tap.failed > 0 ? 1 : 0;
}
