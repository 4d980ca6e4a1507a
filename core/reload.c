/*
 * reload.c - SIGHUP: the configuration, checks_dir and the plugin directory
 * read again, the whole new set validated, then served at once; and the
 * generations a reload retired, freed once nothing uses them.
 *
 * A reload builds a new generation (generation.h) beside the running one and
 * changes nothing until all of it loaded: new and replaced plugins are
 * loaded into executors of a staging set, from this (the main) thread as at
 * startup; an isolated plugin whose file (device, inode, size, mtime) and
 * configured checks are unchanged is reused with its executor, its warm
 * connections and its checks' runner state (flight, cache, counters). Any
 * error drops the staging set and the running set serves on untouched.
 *
 * In-process plugins are loaded once, at startup. Swapping code inside the
 * server would mean dlclose() with no bound on how long a run stays in it and
 * no way to stop threads or atexit handlers the plugin left: that is what
 * executors are for. So a reload keeps their code as it is, and says in one
 * line what it did not apply: a new in-process plugin file (new, or replaced
 * on disk). Their configured checks do follow the configuration: one with the
 * same name and options keeps its state, a new one (or one with new options)
 * is instantiated here, on the main thread, and a removed one is destroyed
 * with the last generation holding it, after its last run (registry.h).
 */
#include "server.h"

#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dirlist.h"
#include "executor.h"
#include "history.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "plugin_loader.h"
#include "registry.h"
#include "runner.h"

struct build {
	struct server *sv;
	const struct generation *cur;
	struct config *cfg;
	struct registry *reg;
	struct executor_set *staging;
	struct exec_plugin **reused;
	size_t nreused;
};

/* A plugin name the staging set may not take: in process, or reused. */
static const char *
taken_by(void *arg, const char *name)
{
	const struct build *b = arg;
	const char *file = plugin_loader_file_of(b->sv->loader, name);

	for (size_t i = 0; file == NULL && i < b->nreused; i++)
		if (strcmp(executor_plugin_name(b->reused[i]), name) == 0)
			file = executor_plugin_path(b->reused[i]);
	return file;
}

static const struct config_check *
find_config_check(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nchecks; i++)
		if (strcmp(c->checks[i].name, name) == 0)
			return &c->checks[i];
	return NULL;
}

static bool
same_options(const struct config_check *a, const struct config_check *b)
{
	if (strcmp(a->plugin, b->plugin) != 0 || a->options.n != b->options.n)
		return false;
	for (size_t i = 0; i < a->options.n; i++)
		if (strcmp(a->options.v[i].key, b->options.v[i].key) != 0 ||
		    strcmp(a->options.v[i].value, b->options.v[i].value) != 0)
			return false;
	return true;
}

static bool
same_strings(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static bool
same_string(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * The settings of the process itself stay as they were: the new
 * configuration takes the running values of those a request reads from it
 * (its groups are routed under the running prefix and metrics path), and a
 * line for each that differed is logged once the reload went through.
 */
static const char *const process_keys[] = {
	"listen", "url_prefix", "url_secret", "metrics_path", "metrics_auth", "http_threads",
	"workers", "limits", "isolation", "in_process", "state_dir", "history.max_file_bytes",
	"status_public", "tls",
};

static unsigned
keep_process_settings(const struct config *run, struct config *next)
{
	unsigned changed = 0;
	struct { const char *key; bool same; } keys[] = {
		/* in the order of process_keys */
		{"listen", same_strings(run->listen, run->nlisten, next->listen, next->nlisten)},
		{"url_prefix", same_string(run->url_prefix, next->url_prefix)},
		{"url_secret", run->secret_mode == next->secret_mode &&
		               same_string(run->secret, next->secret)},
		{"metrics_path", same_string(run->metrics_path, next->metrics_path)},
		{"metrics_auth", run->metrics_auth == next->metrics_auth},
		{"http_threads", run->http_threads == next->http_threads},
		{"workers", run->workers == next->workers},
		{"limits", memcmp(&run->limits, &next->limits, sizeof(run->limits)) == 0},
		{"isolation", memcmp(&run->isolation, &next->isolation, sizeof(run->isolation)) == 0},
		{"in_process", same_strings(run->in_process, run->nin_process, next->in_process,
		                            next->nin_process)},
		/* the store is opened once; flap thresholds do apply (a new history) */
		{"state_dir", same_string(run->state_dir, next->state_dir)},
		{"history.max_file_bytes", run->history.max_file_bytes == next->history.max_file_bytes},
		{"status_public", run->status_public == next->status_public},
		/* HTTPS on or off; its files and settings do follow (tls_reload) */
		{"tls", run->tls.on == next->tls.on},
	};

	char *prefix = strdup(run->url_prefix);
	char *metrics = run->metrics_path != NULL ? strdup(run->metrics_path) : NULL;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!keys[i].same)
			changed |= 1u << i;
	if (prefix == NULL || (run->metrics_path != NULL && metrics == NULL)) {
		free(prefix);
		free(metrics);
		return UINT_MAX; /* out of memory */
	}
	free(next->url_prefix);
	free(next->metrics_path);
	next->url_prefix = prefix;
	next->metrics_path = metrics;
	next->metrics_auth = run->metrics_auth;
	return changed;
}

static void
report_process_settings(unsigned changed)
{
	for (size_t i = 0; i < sizeof(process_keys) / sizeof(process_keys[0]); i++)
		if (changed & (1u << i))
			log_warn("reload: %s changed: it needs a restart; the running value stays",
			         process_keys[i]);
}

/* The same file, unchanged: device, inode, size, mtime (as executor_same_file) */
static bool
same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int
keep_reused(struct build *b, struct exec_plugin *pl)
{
	struct exec_plugin **grown = realloc(b->reused, (b->nreused + 1) * sizeof(*grown));

	if (grown == NULL)
		return -1;
	b->reused = grown;
	b->reused[b->nreused++] = pl;
	return 0;
}

/* One *.so of the directory (dirlist_plugins): reused, loaded into the
 * staging set, or (in process) kept as it is. */
static int
build_plugin(void *arg, const char *path, const char *base, size_t stem, const struct stat *st,
             char *err, size_t errlen)
{
	struct build *b = arg;
	struct exec_plugin *pl;
	bool loaded = false;

	if (config_in_process(&b->sv->cfg, base, stem)) {
		const struct stat *was = NULL;
		for (size_t k = 0; k < plugin_count(b->sv->loader) && !loaded; k++) {
			struct plugin_info pi;
			plugin_info(b->sv->loader, k, &pi);
			loaded = pi.file != NULL && strcmp(pi.file, path) == 0;
			was = loaded ? pi.file_stat : NULL;
		}
		if (!loaded)
			log_warn("reload: plugin %s runs in process: loading it needs a restart", path);
		else if (!same_stat(was, st))
			log_warn("reload: plugin %s runs in process: its new file needs a restart; "
			         "the one loaded runs on", path);
		return 0;
	}
	if ((pl = executor_reusable(b->sv->execs, path, st, b->cfg)) != NULL) {
		if (keep_reused(b, pl) == -1) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return executor_register(pl, b->reg, b->cur->reg, b->cfg, err, errlen);
	}
	return executor_load(b->staging, path, b->reg, err, errlen);
}

/* An in-process check of the running set, copied: same state, same slot. */
static int
keep_check(struct build *b, const struct check *old, const struct config_check *ck, char *err,
           size_t errlen)
{
	struct check c = *old;
	char why[256];

	if (ck != NULL)
		registry_apply_config(&c, ck);
	if (registry_add(b->reg, &c, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", c.origin, why);
		return -1;
	}
	return 0;
}

/* A check naming no plugin: the error lists the isolated plugins, the
 * staging set's and the reused ones. */
static void
unknown_plugin(const struct build *b, const struct config_check *ck, char *err, size_t errlen)
{
	size_t n = executor_count(b->staging), k = 0;
	struct executor_info *xi = calloc(n + 1, sizeof(*xi));
	const char **names = calloc(n + b->nreused + 1, sizeof(*names));

	for (size_t i = 0; xi != NULL && names != NULL && i < n; i++) {
		executor_info(b->staging, i, &xi[i]);
		names[k++] = xi[i].name;
	}
	for (size_t i = 0; names != NULL && i < b->nreused; i++)
		names[k++] = executor_plugin_name(b->reused[i]);
	plugin_unknown_error(b->sv->loader, names, k, ck->origin, ck->plugin, err, errlen);
	free(names);
	free(xi);
}

static int
build_checks(struct build *b, char *err, size_t errlen)
{
	const struct registry *old = b->cur->reg;
	const struct config *oldcfg = b->cur->cfg;

	/* in-process plugins' own checks: they stay loaded */
	for (uint32_t id = 0; id < registry_count(old); id++) {
		const struct check *c = registry_at(old, id);
		if (c->exec == NULL && find_config_check(oldcfg, c->name) == NULL &&
		    keep_check(b, c, NULL, err, errlen) == -1)
			return -1;
	}
	for (size_t i = 0; i < b->cfg->nchecks; i++) {
		const struct config_check *ck = &b->cfg->checks[i], *was;
		bool reused = false;
		int id;

		for (size_t k = 0; k < b->nreused && !reused; k++)
			reused = strcmp(executor_plugin_name(b->reused[k]), ck->plugin) == 0;
		if (reused)
			continue; /* executor_register() did it */
		if (executor_has_plugin(b->staging, ck->plugin)) {
			if (executor_instantiate(b->staging, ck, b->reg, err, errlen) == -1)
				return -1;
			continue;
		}
		if (plugin_loader_file_of(b->sv->loader, ck->plugin) == NULL) {
			unknown_plugin(b, ck, err, errlen);
			return -1;
		}
		was = find_config_check(oldcfg, ck->name);
		id = registry_find(old, ck->name, strlen(ck->name));
		if (id >= 0 && registry_at(old, id)->exec != NULL)
			id = -1; /* was isolated under that name: not this plugin's */
		if (id >= 0 && was != NULL && same_options(was, ck)) {
			if (keep_check(b, registry_at(old, (uint32_t)id), ck, err, errlen) == -1)
				return -1;
		} else if (plugin_instantiate_into(b->sv->loader, b->reg, ck, err, errlen) == -1) {
			return -1; /* new, or new options: a new state, the old one retires */
		}
	}
	return 0;
}

/*
 * A plugin restarted because its list of checks changed (same file): each of
 * its checks that is the same as before (name and options) keeps its runner
 * state, so its counters go on. A replaced file's checks start afresh.
 */
static void
keep_restarted_state(struct build *b)
{
	const struct registry *old = b->cur->reg;

	for (uint32_t id = 0; id < registry_count(b->reg); id++) {
		const struct check *c = registry_at(b->reg, id);
		const struct config_check *now, *was;
		const struct check *o;
		int oid;

		if (c->exec == NULL || c->slot != 0)
			continue; /* in process, or reused: kept already */
		oid = registry_find(old, c->name, strlen(c->name));
		if (oid < 0)
			continue;
		o = registry_at(old, (uint32_t)oid);
		if (o->exec == NULL || !executor_same_file(o->exec, c->exec) ||
		    strcmp(o->plugin, c->plugin) != 0)
			continue;
		now = find_config_check(b->cfg, c->name);
		was = find_config_check(b->cur->cfg, c->name);
		if ((now == NULL) != (was == NULL) ||
		    (now != NULL && !same_options(now, was)))
			continue;
		registry_set_slot(b->reg, id, o->slot);
	}
}

static bool
has_name(const struct registry *reg, const char *name)
{
	return registry_find(reg, name, strlen(name)) >= 0;
}

static void
add_word(char *buf, size_t len, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
add_word(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= len)
		return;
	if (*off > 0) {
		n = snprintf(buf + *off, len - *off, ", ");
		*off += n > 0 ? (size_t)n : 0;
		if (*off >= len)
			return;
	}
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	*off += n > 0 ? (size_t)n : 0;
}

/* "reload: 2 checks added, 1 removed, 5 kept; plugin ver replaced (1.0 -> 1.1)" */
static void
log_summary(const struct generation *was, const struct generation *now,
            struct exec_plugin **loaded, size_t nloaded)
{
	size_t added = 0, removed = 0, kept = 0, off = 0;
	char plugins[768] = "";

	for (uint32_t id = 0; id < registry_count(now->reg); id++)
		has_name(was->reg, registry_at(now->reg, id)->name) ? kept++ : added++;
	for (uint32_t id = 0; id < registry_count(was->reg); id++)
		removed += !has_name(now->reg, registry_at(was->reg, id)->name);
	for (size_t i = 0; i < nloaded; i++) {
		const char *name = executor_plugin_name(loaded[i]), *old = NULL;
		const struct exec_plugin *oldpl = NULL;
		for (size_t k = 0; k < was->nplugins && old == NULL; k++)
			if (strcmp(executor_plugin_name(was->plugins[k]), name) == 0) {
				oldpl = was->plugins[k];
				old = executor_plugin_version(oldpl);
			}
		if (old != NULL && executor_same_file(oldpl, loaded[i]))
			add_word(plugins, sizeof(plugins), &off, "plugin %s restarted (%s, its checks "
			         "changed)", name, old);
		else if (old != NULL)
			add_word(plugins, sizeof(plugins), &off, "plugin %s replaced (%s -> %s)", name,
			         old, executor_plugin_version(loaded[i]));
		else
			add_word(plugins, sizeof(plugins), &off, "plugin %s %s added", name,
			         executor_plugin_version(loaded[i]));
	}
	for (size_t k = 0; k < was->nplugins; k++) {
		bool still = false;
		for (size_t i = 0; i < now->nplugins && !still; i++)
			still = strcmp(executor_plugin_name(now->plugins[i]),
			               executor_plugin_name(was->plugins[k])) == 0;
		if (!still)
			add_word(plugins, sizeof(plugins), &off, "plugin %s removed",
			         executor_plugin_name(was->plugins[k]));
	}
	log_info("reload: %zu check%s added, %zu removed, %zu kept%s%s", added,
	         added == 1 ? "" : "s", removed, kept, off > 0 ? "; " : "", plugins);
}

static void
build_free(struct build *b)
{
	if (b->staging != NULL) {
		executor_shutdown(b->staging, 1000); /* not started: stops what it spawned */
		executor_set_free(b->staging);
	}
	registry_free(b->reg); /* destroys the checks it instantiated, keeps the rest */
	if (b->cfg != NULL) {
		config_free(b->cfg);
		free(b->cfg);
	}
	free(b->reused);
}

int
server_reload(struct server *sv)
{
	struct build b = {.sv = sv};
	struct exec_plugin **loaded = NULL;
	struct generation *g = NULL;
	size_t nloaded = 0;
	unsigned changed = 0;
	char err[1024];

	notify_reloading(sv->notify);
	b.cur = gen_current(sv->gens);
	b.cfg = calloc(1, sizeof(*b.cfg));
	if (b.cfg == NULL || config_init(b.cfg) == -1) {
		free(b.cfg);
		b.cfg = NULL;
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (sv->read_config(b.cfg, sv->read_config_arg, err, sizeof(err)) == -1)
		goto fail;
	changed = keep_process_settings(&sv->cfg, b.cfg);
	if (changed == UINT_MAX) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	b.reg = registry_new();
	b.staging = executor_set_new(&sv->cfg, sv->self);
	if (b.reg == NULL || b.staging == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	executor_set_taken(b.staging, taken_by, &b);
	if (dirlist_plugins(b.cfg->plugin_dir, build_plugin, &b, err, sizeof(err)) == -1 || build_checks(&b, err, sizeof(err)) == -1 ||
	    server_check_depends(b.cfg, b.reg, err, sizeof(err)) == -1 ||
	    http_check_groups(b.cfg, b.reg, err, sizeof(err)) == -1 ||
	    executor_seal(b.staging, err, sizeof(err)) == -1)
		goto fail;
	keep_restarted_state(&b);
	registry_seal(b.reg);

	nloaded = executor_count(b.staging);
	g = calloc(1, sizeof(*g));
	loaded = calloc(nloaded + 1, sizeof(*loaded));
	if (g != NULL) {
		g->plugins = calloc(nloaded + b.nreused + 1, sizeof(*g->plugins));
		g->history = server_history_new(b.cfg, b.reg);
	}
	if (g == NULL || loaded == NULL || g->plugins == NULL || g->history == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	nloaded = executor_plugins(b.staging, loaded, nloaded);
	for (size_t i = 0; i < b.nreused; i++)
		g->plugins[g->nplugins++] = b.reused[i];
	for (size_t i = 0; i < nloaded; i++)
		g->plugins[g->nplugins++] = loaded[i];
	/* The new plugins join the live set before runner_attach() points kept
	 * checks at their new entries: from then on a request may run one, and
	 * it must find it in the set that supervises it. */
	if (executor_merge(sv->execs, b.staging) == -1) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < g->nplugins; i++)
		executor_hold(g->plugins[i]);
	/* checks that stay keep their history, by name */
	if (runner_attach(sv->runner, b.reg, g->history) == -1) {
		for (size_t i = 0; i < g->nplugins; i++)
			executor_release(g->plugins[i]); /* the new ones retire */
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	/* nothing fails from here on */
	report_process_settings(changed);
	executor_serve(sv->execs, g->plugins, g->nplugins);
	g->cfg = b.cfg;
	g->reg = b.reg;
	gen_switch(sv->gens, g);
	log_summary(b.cur, g, loaded, nloaded);
	b.cfg = NULL;
	b.reg = NULL;
	build_free(&b); /* the staging set is empty now */
	free(loaded);
	metrics_count_reload(true);
	notify_reloaded(sv->notify);
	server_collect(sv);
	return 0;
fail:
	if (g != NULL) {
		free(g->plugins);
		history_free(g->history);
	}
	free(g);
	free(loaded);
	build_free(&b);
	log_err("reload failed: %s; still serving the configuration loaded before", err);
	metrics_count_reload(false);
	notify_reloaded(sv->notify);
	return -1;
}

/* No runner state or flight points into reg's checks any more. */
static bool
quiet(void *arg, const struct registry *reg)
{
	return !runner_uses(arg, reg, true);
}

static void
free_generation(struct generation *g, bool release)
{
	for (size_t i = 0; release && i < g->nplugins; i++)
		executor_release(g->plugins[i]);
	free(g->plugins);
	g->plugins = NULL;
	g->nplugins = 0;
	if (g->first) {
		/* the server's registry, freed last: its removed checks go now */
		registry_release_states(g->reg);
		return;
	}
	history_free(g->history);
	registry_free(g->reg);
	if (!g->shares_cfg) {
		config_free(g->cfg);
		free(g->cfg);
	}
	free(g->loading);
	free(g->stand_ins);
	free(g);
}

size_t
server_collect(struct server *sv)
{
	struct generation *g;

	const struct registry *live[64];
	size_t nlive;

	if (sv->gens == NULL || gen_retired(sv->gens) == 0)
		return 0;
	/* Checks no request can reach any more are retired in the runner (a
	 * retired generation nobody holds is never held again)... */
	nlive = gen_live_registries(sv->gens, live, sizeof(live) / sizeof(live[0]));
	if (nlive < sizeof(live) / sizeof(live[0]))
		runner_retire_except(sv->runner, live, nlive);
	/* ... and a generation is freed once no state or run points into it;
	 * its memory goes back to the system here, as free() does not trim
	 * (main.c) */
	size_t freed = 0;
	while ((g = gen_collect(sv->gens, quiet, sv->runner)) != NULL) {
		free_generation(g, true);
		freed++;
	}
	if (freed > 0)
		malloc_trim(0);
	/* A run stuck in in-process code keeps its generation's checks, not its
	 * plugins: replaced executors still close. */
	for (g = gen_retired_idle(sv->gens, NULL); g != NULL; g = gen_retired_idle(sv->gens, g)) {
		if (g->nplugins == 0 || runner_uses(sv->runner, g->reg, false))
			continue;
		for (size_t i = 0; i < g->nplugins; i++)
			executor_release(g->plugins[i]);
		g->nplugins = 0;
	}
	return gen_retired(sv->gens);
}

void
server_free_generations(struct server *sv)
{
	struct generation *g;

	if (sv->gens == NULL)
		return;
	while ((g = gen_collect(sv->gens, NULL, NULL)) != NULL)
		free_generation(g, false);
	free_generation(gen_current(sv->gens), false);
	gen_table_free(sv->gens);
	sv->gens = NULL;
}
