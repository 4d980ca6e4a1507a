/*
 * server.c - the running server's lifecycle: load the configuration, plugins
 * and checks; start the runner, executors and HTTP; the main thread's signal
 * loop (SIGHUP reloads, SIGTERM and SIGINT stop); and the orderly stop.
 */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "dirlist.h"
#include "executor.h"
#include "history.h"
#include "history_store.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "plugin_loader.h"
#include "registry.h"
#include "runner.h"
#include "sandbox.h"
#include "tls.h"

static int load_plugin(void *arg, const char *path, const char *base, size_t stem,
                       const struct stat *st, char *err, size_t errlen);
static int load_plugins(struct server *sv, char *err, size_t errlen);
static const char *taken_isolated(void *arg, const char *name);
static const char *taken_in_process(void *arg, const char *name);
static int instantiate_checks(struct server *sv, char *err, size_t errlen);
static void pid1_reap(pid_t server) __attribute__((noreturn));
static void wake_main(void *arg);

/* How long shutdown waits for runs still inside plugin code: answered already,
 * they are only waited for so that their checks can be destroyed cleanly. */
#define SHUTDOWN_GRACE_MS 1000

/* What a stuck plugin call still uses when main returns (see server_stop).
 * volatile: written and never read, the stores would otherwise be dropped. */
static struct {
	struct runner *volatile runner;
	struct registry *volatile registry;
	struct plugin_loader *volatile loader;
	struct http *volatile http;
	struct gen_table *volatile gens; /* its check may be a reload's copy */
	struct history *volatile history; /* a stuck run still records into it */
	struct tls *volatile tls;         /* the kept HTTP threads' connections hold it */
} kept;

struct history *
server_history_new(const struct config *cfg, const struct registry *reg)
{
	size_t n = registry_count(reg), k = n;
	const char **names = calloc(n + cfg->nchecks + 1, sizeof(*names));
	struct history *h = NULL;

	if (names == NULL)
		return NULL;
	for (uint32_t id = 0; id < n; id++)
		names[id] = registry_at(reg, id)->name;
	/* configured checks not registered yet (isolated plugins that load once
	 * serving, loading.c) get a history too, after reg's: state_dir loads
	 * theirs at startup, and the generations that follow carry it by name */
	for (size_t i = 0; i < cfg->nchecks; i++)
		if (registry_find(reg, cfg->checks[i].name, strlen(cfg->checks[i].name)) < 0)
			names[k++] = cfg->checks[i].name;
	h = history_new(names, k);
	free(names);
	/* config.c keeps 0 <= low <= high <= 100 */
	if (h != NULL)
		history_set_flap_thresholds(h, cfg->history.flap_low, cfg->history.flap_high);
	return h;
}

static bool
registered(const void *arg, const char *name)
{
	return registry_find(arg, name, strlen(name)) >= 0;
}

int
server_check_depends(const struct config *cfg, const struct registry *reg, char *err,
                     size_t errlen)
{
	return config_check_depends(cfg, registered, reg, err, errlen);
}

/* state_dir: the history as saved before; without it (or when it cannot be
 * used: logged) the history starts empty and is kept in memory only. */
static struct history_store *
open_store(const struct config *cfg, struct history *h)
{
	struct history_store_stats stats;
	struct history_store *st;
	char err[512];

	if (cfg->state_dir == NULL)
		return NULL;
	st = history_store_open(cfg->state_dir, (size_t)cfg->history.max_file_bytes, h, &stats,
	                        err, sizeof(err));
	if (st == NULL)
		log_warn("history: %s; the history is kept in memory only", err);
	else
		log_info("history: %s: %u records loaded", cfg->state_dir, stats.loaded);
	return st;
}

/* One plugin file: into the server if its name (the file's, before the
 * plugin's code can say another) is in "in_process", else into an executor
 * of its own. */
static int
load_plugin(void *arg, const char *path, const char *base, size_t stem, const struct stat *st,
            char *err, size_t errlen)
{
	struct server *sv = arg;

	(void)st;
	if (config_in_process(&sv->cfg, base, stem))
		return plugin_load_file(sv->loader, path, err, errlen);
	if (sv->load_later)
		return executor_load_later(sv->execs, path, base, stem, err, errlen);
	return executor_load(sv->execs, path, sv->reg, err, errlen);
}

/* Loads every *.so of the plugin directory in file-name order. One line on a
 * refusal. */
static int
load_plugins(struct server *sv, char *err, size_t errlen)
{
	int rc = dirlist_plugins(sv->cfg.plugin_dir, load_plugin, sv, err, errlen);

	if (rc != 0)
		return rc;
	for (size_t i = 0; i < executor_count(sv->execs); i++) {
		struct executor_info xi;
		executor_info(sv->execs, i, &xi);
		if (config_in_process(&sv->cfg, xi.name, strlen(xi.name)))
			log_warn("plugin %s (%s) runs isolated: in_process names it, but it was "
			         "matched by file name", xi.name, xi.file);
	}
	return 0;
}

static const char *
taken_isolated(void *arg, const char *name)
{
	return executor_file_of(arg, name);
}

static const char *
taken_in_process(void *arg, const char *name)
{
	return plugin_loader_file_of(arg, name);
}

/* A check naming no plugin: the error lists the isolated plugins too. */
static void
unknown_plugin(struct server *sv, const struct config_check *ck, char *err, size_t errlen)
{
	size_t n = executor_count(sv->execs);
	struct executor_info *xi = calloc(n + 1, sizeof(*xi));
	const char **names = calloc(n + 1, sizeof(*names));

	for (size_t i = 0; xi != NULL && names != NULL && i < n; i++) {
		executor_info(sv->execs, i, &xi[i]);
		names[i] = xi[i].name;
	}
	plugin_unknown_error(sv->loader, names, xi && names ? n : 0, ck->origin, ck->plugin, err,
	                     errlen);
	free(names);
	free(xi);
}

static int
instantiate_checks(struct server *sv, char *err, size_t errlen)
{
	bool later = sv->load_later && executor_count(sv->execs) > 0;

	for (size_t i = 0; i < sv->cfg.nchecks; i++) {
		const struct config_check *ck = &sv->cfg.checks[i];
		int rc;

		if (later && plugin_loader_file_of(sv->loader, ck->plugin) == NULL) {
			/* for the isolated plugin that turns out to have that name */
			if (executor_want(sv->execs, ck) == -1) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			continue;
		}
		if (!executor_has_plugin(sv->execs, ck->plugin) &&
		    plugin_loader_file_of(sv->loader, ck->plugin) == NULL) {
			unknown_plugin(sv, ck, err, errlen);
			return -1;
		}
		rc = executor_has_plugin(sv->execs, ck->plugin)
		     ? executor_instantiate(sv->execs, ck, sv->reg, err, errlen)
		     : plugin_instantiate(sv->loader, ck, err, errlen);
		if (rc == -1)
			return -1;
	}
	return 0;
}

/* A first load ended (supervisor thread, executors' lock held): the main
 * thread takes it in (server_run). */
static void
wake_main(void *arg)
{
	struct server *sv = arg;

	pthread_kill(sv->main_thread, SIGUSR1);
}

/* One line once everything is up: a bad start says only what went wrong. */
void
server_log_ready(struct server *sv, const struct registry *reg)
{
	const struct config *cfg = &sv->cfg;
	const struct plugin_loader *loader = sv->loader;
	struct executor_set *execs = sv->execs;

	char plugins[512] = "";
	struct executor_info xi;
	struct plugin_info pi;
	size_t off = 0, ndefault = 0;

	for (size_t i = 0; i < plugin_count(loader) && off < sizeof(plugins); i++) {
		plugin_info(loader, i, &pi);
		int n = snprintf(plugins + off, sizeof(plugins) - off, "%s%s %s", off ? ", " : "",
		                 pi.name, pi.version);
		if (n > 0)
			off += (size_t)n;
	}
	for (size_t i = 0; i < executor_count(execs) && off < sizeof(plugins); i++) {
		executor_info(execs, i, &xi);
		int n = snprintf(plugins + off, sizeof(plugins) - off, "%s%s %s (isolated)",
		                 off ? ", " : "", xi.name, xi.version);
		if (n > 0)
			off += (size_t)n;
	}
	for (uint32_t id = 0; id < registry_count(reg); id++)
		ndefault += registry_at(reg, id)->in_defaults;
	/* each isolated plugin's layers; one with a layer missing was warned
	 * about when it loaded (executor_load) */
	for (size_t i = 0; i < executor_count(execs); i++) {
		char line[1024];
		executor_info(execs, i, &xi);
		if (sandbox_missing(&xi.sandbox) != 0)
			continue;
		sandbox_describe(&xi.sandbox, line, sizeof(line));
		log_info("plugin %s: sandbox: %s", xi.name, line);
	}
	log_info("ready: %zu check%s (%zu in defaults), plugins %s, %d workers, config %s",
	         registry_count(reg), registry_count(reg) == 1 ? "" : "s", ndefault,
	         off ? plugins : "none", cfg->workers, cfg->path ? cfg->path : "(embedded default)");
}

/* How often the main thread looks for generations a reload left behind. */
#define COLLECT_MS 250

int
server_run(struct server *sv, const sigset_t *set)
{
	const struct timespec tick = {0, COLLECT_MS * 1000000L};
	const struct timespec tls_tick = {TLS_POLL_MS / 1000, (TLS_POLL_MS % 1000) * 1000000L};
	int sig;

	for (;;) {
		/* with something to collect, look again soon; else just wait (or
		 * until the certificate's files are due a look) */
		if (server_collect(sv) > 0)
			sig = sigtimedwait(set, NULL, &tick);
		else
			sig = sv->tls != NULL ? sigtimedwait(set, NULL, &tls_tick) : sigwaitinfo(set, NULL);
		if (sv->tls != NULL)
			tls_poll(sv->tls);
		if (sig == -1)
			continue; /* EAGAIN (the tick) or EINTR */
		if (sig == SIGUSR1) {
			if (server_loading_step(sv) == -1)
				return 1;
			if (sv->loading || !sv->reload_waits)
				continue;
			sv->reload_waits = false;
			sig = SIGHUP;
		}
		if (sig == SIGHUP && sv->loading) {
			/* a reload while plugins load would load them again */
			log_info("SIGHUP: reloading once the plugins still loading have loaded");
			sv->reload_waits = true;
			continue;
		}
		if (sig == SIGHUP) {
			log_info("SIGHUP: reloading");
			server_reload(sv);
			/* the files are read again even if the rest failed; a bad
			 * new pair leaves the old one serving */
			if (sv->tls != NULL)
				tls_reload(sv->tls, &gen_current(sv->gens)->cfg->tls);
			continue;
		}
		log_info("%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		return 0;
	}
}

void
server_pid1_split(void)
{
	sigset_t all, old;
	pid_t pid;

	if (getpid() != 1)
		return;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == -1) {
		/* serve anyway, as PID 1: orphans then stay zombies */
		log_warn("PID 1: cannot fork the server off (%s): orphans will not be reaped",
		         strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		return;
	}
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return;
	}
	pid1_reap(pid);
}

/* PID 1's loop: the kernel delivers it no signal it has no handler for, so
 * it waits for them all (blocked) and hands each on, SIGCHLD aside. */
static void
pid1_reap(pid_t server)
{
	sigset_t all;
	siginfo_t si;
	int status;

	prctl(PR_SET_NAME, "healthd-init");
	sigfillset(&all);
	for (;;) {
		int sig = sigwaitinfo(&all, &si);
		pid_t pid;

		if (sig == -1)
			continue;
		if (sig != SIGCHLD) {
			kill(server, sig);
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != server)
				continue;
			/* what is left in the namespace dies with PID 1 */
			if (WIFSIGNALED(status))
				_exit(128 + WTERMSIG(status));
			_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
		}
	}
}

int
server_self_path(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

int
server_load(struct server *sv,
            int (*read_config)(struct config *c, const void *arg, char *err, size_t errlen),
            const void *arg, char *err, size_t errlen)
{
	sv->read_config = read_config;
	sv->read_config_arg = arg;
	if (read_config(&sv->cfg, arg, err, errlen) == -1 ||
	    sandbox_export(&sv->cfg, err, errlen) == -1)
		return -1;
	/* the certificate's files are part of what --check-config validates */
	if (sv->cfg.tls.on && (sv->tls = tls_open(&sv->cfg.tls, err, errlen)) == NULL)
		return -1;
	if (server_self_path(sv->self, sizeof(sv->self)) == -1) {
		snprintf(err, errlen, "cannot find healthd's own binary (/proc/self/exe): %s",
		         strerror(errno));
		return -1;
	}
	sv->reg = registry_new();
	sv->loader = sv->reg ? plugin_loader_new(sv->reg) : NULL;
	sv->execs = executor_set_new(&sv->cfg, sv->self);
	if (sv->loader == NULL || sv->execs == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	plugin_loader_set_taken(sv->loader, taken_isolated, sv->execs);
	executor_set_taken(sv->execs, taken_in_process, sv->loader);
	if (load_plugins(sv, err, errlen) == -1 || instantiate_checks(sv, err, errlen) == -1)
		return -1;
	plugin_loader_seal(sv->loader);
	registry_seal(sv->reg);
	if (sv->load_later && executor_count(sv->execs) > 0)
		return 0; /* groups and depends_on are checked once every plugin has loaded
		           * (loading.c) */
	/* a group's checks and dependencies exist only now that every plugin
	 * registered its own */
	if (server_check_depends(&sv->cfg, sv->reg, err, errlen) == -1)
		return -1;
	return http_check_groups(&sv->cfg, sv->reg, err, errlen);
}

int
server_start(struct server *sv, char *err, size_t errlen)
{
	char names[512];
	size_t nloading;

	if (sv->cfg.secret_mode == SECRET_OFF)
		log_warn("auth is off: anyone who can reach healthd can run its checks");
	sv->runner = runner_new(sv->reg, sv->cfg.workers);
	if (sv->runner == NULL) {
		snprintf(err, errlen, "cannot start the runner");
		return -1;
	}
	sv->first.history = server_history_new(&sv->cfg, sv->reg);
	if (sv->first.history == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sv->store = open_store(&sv->cfg, sv->first.history);
	runner_set_history(sv->runner, sv->first.history, sv->store);
	sv->main_thread = pthread_self();
	executor_set_loaded_fn(sv->execs, wake_main, sv);
	/* isolated plugins loaded later start loading now */
	if (executor_start(sv->execs, runner_remote_done, sv->runner, err, errlen) == -1)
		return -1;
	/* background checks start now, so that most have a result when the
	 * first probe comes */
	if (runner_start(sv->runner) == -1) {
		snprintf(err, errlen, "cannot start the background scheduler");
		return -1;
	}
	/* the first generation of checks; a reload replaces it (reload.c) */
	size_t n = executor_count(sv->execs);
	sv->first = (struct generation){.cfg = &sv->cfg, .reg = sv->reg, .first = true,
	                                .history = sv->first.history};
	sv->first.plugins = calloc(n + 1, sizeof(*sv->first.plugins));
	sv->gens = sv->first.plugins ? gen_table_new(&sv->first) : NULL;
	if (sv->gens == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sv->first.nplugins = executor_plugins(sv->execs, sv->first.plugins, n);
	for (size_t i = 0; i < sv->first.nplugins; i++)
		executor_hold(sv->first.plugins[i]);
	if (server_loading_start(sv, err, errlen) == -1)
		return -1;
	sv->http = http_start(&(struct http_env){.cfg = &sv->cfg, .gens = sv->gens,
	                                         .runner = sv->runner, .loader = sv->loader,
	                                         .execs = sv->execs, .tls = sv->tls}, err, errlen);
	if (sv->http == NULL)
		return -1;
	server_loading_status(sv, names, sizeof(names));
	nloading = gen_current(sv->gens)->nloading;
	if (nloading > 0) /* the plugins' names come with their "loaded" lines */
		log_info("serving while %zu isolated plugin%s load%s", nloading,
		         nloading == 1 ? "" : "s", nloading == 1 ? "s" : "");
	else
		server_log_ready(sv, gen_current(sv->gens)->reg);
	/* READY=1 for a Type=notify unit: serving, whatever still loads */
	sv->notify = notify_ready(sv->runner, names);
	return 0;
}

void
server_stop(struct server *sv)
{
	int stuck = 0, stuck_inline = 0;

	notify_stopping(sv->notify);
	if (sv->http != NULL)
		http_quiesce(sv->http);
	if (sv->runner != NULL)
		stuck = runner_shutdown(sv->runner, SHUTDOWN_GRACE_MS, &stuck_inline);
	/* after the runner: what executors still end goes to a stopping runner */
	executor_shutdown(sv->execs, SHUTDOWN_GRACE_MS);
	history_store_close(sv->store); /* the runner stopped writing to it */
	sv->store = NULL;
	if (stuck_inline == 0) {
		http_stop(sv->http);
		tls_free(sv->tls);
	} else { /* an HTTP thread is inside plugin code: the server cannot be joined */
		kept.http = sv->http;
		kept.tls = sv->tls;
	}
	sv->tls = NULL;
	if (stuck == 0) {
		struct history *first = sv->first.history;

		server_free_generations(sv); /* before the plugins' unload() */
		runner_free(sv->runner);
		history_free(first);
		registry_free(sv->reg);
		plugin_loader_free(sv->loader);
	} else {
		/* A plugin call still runs on a thread that uses all three: they stay
		 * in memory until the process ends, on purpose and reachable. */
		kept.runner = sv->runner;
		kept.registry = sv->reg;
		kept.loader = sv->loader;
		kept.gens = sv->gens;
		kept.history = sv->first.history;
	}
	executor_set_free(sv->execs);
	free(sv->first.plugins); /* NULL once its generation was freed */
	config_free(&sv->cfg);
}
