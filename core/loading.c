/*
 * loading.c - serving while isolated plugins load. The server listens before
 * any isolated plugin's load() has finished; each loads in its executor,
 * concurrently, as the supervisor restarts one (executor.h). Meanwhile the
 * generation served holds what is known: the in-process checks, the checks
 * of the plugins loaded so far, and stand-ins for the rest (the configured
 * checks of a plugin still loading, under their names, and one
 * "loading:<plugin>" per such plugin), which fail with "plugin X is loading".
 * Each time a first load ends, the main thread builds the next generation
 * and switches to it as a reload does. A refusal ends the start as it did
 * before serving; a load() past isolation.load_timeout_ms backs off and is
 * tried again.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "history.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "plugin_loader.h"
#include "registry.h"
#include "report.h"
#include "runner.h"

/* An isolated plugin as build() found it: one look under the executors' lock,
 * as a first load may end meanwhile. */
struct seen {
	bool loaded;
	char name[PLUGIN_NAME_SIZE];
};

static enum healthd_status stand_in_run(void *state, struct healthd_report *rep);
static void add_stand_in(struct generation *g, struct registry *reg, const char *name,
                         const char *plugin, const char *origin, const struct config_check *ck);
static int add_in_process_fixed(struct server *sv, struct registry *reg, const char *plugin,
                                char *err, size_t errlen);
static int add_fixed(struct server *sv, struct generation *g, struct registry *reg,
                     const struct seen *seen, char *err, size_t errlen);
static void unknown_plugin(struct server *sv, const struct generation *g, const struct seen *seen,
                           const struct config_check *ck, char *err, size_t errlen);
static int add_configured(struct server *sv, struct generation *g, struct registry *reg,
                          const struct seen *seen, char *err, size_t errlen);
static int names_unique(struct server *sv, const struct generation *g, const struct seen *seen,
                        char *err, size_t errlen);
static void keep_slots(const struct registry *old, struct registry *reg);
static struct generation *build(struct server *sv, char *err, size_t errlen);
static void free_built(struct generation *g);
static int switch_to(struct server *sv, struct generation *g, char *err, size_t errlen);
static void loading_names(const struct generation *g, char *buf, size_t len);

/* What a stand-in answers; state is the plugin's name, held by the
 * configuration or by the generation. */
static enum healthd_status
stand_in_run(void *state, struct healthd_report *rep)
{
	snprintf(rep->message, sizeof(rep->message), "plugin %s is loading: its checks are not "
	         "known yet", (const char *)state);
	return HEALTHD_CRITICAL;
}

/* A stand-in: inline (it answers at once), no schedule, no thresholds. A
 * name a real check took is left out (the plugin's answers stay 503 through
 * its other stand-ins or the name's check). */
static void
add_stand_in(struct generation *g, struct registry *reg, const char *name, const char *plugin,
             const char *origin, const struct config_check *ck)
{
	struct check c = {0};
	char why[ERR_SIZE];
	int id;

	snprintf(c.name, sizeof(c.name), "%s", name);
	if (ck != NULL)
		registry_apply_config(&c, ck);
	c.plugin = plugin;
	c.origin = (char *)origin;
	c.run = stand_in_run;
	c.state = (void *)plugin;
	c.flags = HEALTHD_CHECK_INLINE;
	c.in_defaults = ck != NULL ? c.in_defaults : true;
	c.timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS;
	c.cache_ms = 0;
	c.interval_ms = 0;
	c.failures_before_critical = 0;
	c.successes_before_passing = 0;
	id = registry_add(reg, &c, why, sizeof(why));
	if (id >= 0 && ck == NULL)
		g->stand_ins[g->nstand_ins++] = (uint32_t)id;
}

/* An in-process plugin's own checks, as startup registered them (same state
 * and runner slot). */
static int
add_in_process_fixed(struct server *sv, struct registry *reg, const char *plugin, char *err,
                     size_t errlen)
{
	char why[ERR_SIZE];

	for (uint32_t id = 0; id < registry_count(sv->reg); id++) {
		const struct check *c = registry_at(sv->reg, id);
		bool configured = false;
		if (c->exec != NULL || strcmp(c->plugin, plugin) != 0)
			continue;
		for (size_t i = 0; i < sv->cfg.nchecks && !configured; i++)
			configured = strcmp(sv->cfg.checks[i].name, c->name) == 0;
		if (!configured && registry_add(reg, c, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s: %s", c->origin, why);
			return -1;
		}
	}
	return 0;
}

/* Every plugin's own checks, the plugins in file-name order (paths in one
 * directory compare as their names); a plugin still loading has a stand-in. */
static int
add_fixed(struct server *sv, struct generation *g, struct registry *reg, const struct seen *seen,
          char *err, size_t errlen)
{
	size_t nin = plugin_count(sv->loader), i = 0, k = 0;
	struct plugin_info pi;

	while (i < nin || k < g->nplugins) {
		if (i < nin)
			plugin_info(sv->loader, i, &pi);
		if (i < nin && (k == g->nplugins ||
		                strcmp(pi.file, executor_plugin_path(g->plugins[k])) < 0)) {
			if (add_in_process_fixed(sv, reg, pi.name, err, errlen) == -1)
				return -1;
			i++;
			continue;
		}
		if (seen[k].loaded) {
			if (executor_register_fixed(g->plugins[k], reg, err, errlen) == -1)
				return -1;
		} else {
			char name[CHECK_NAME_MAX + 1], *p = g->loading[g->nloading++];
			snprintf(p, PLUGIN_NAME_SIZE, "%s", seen[k].name);
			snprintf(name, sizeof(name), "loading:%s", p);
			add_stand_in(g, reg, name, p, executor_plugin_path(g->plugins[k]), NULL);
		}
		k++;
	}
	return 0;
}

/* A check naming no plugin, once all have loaded: the line names them all. */
static void
unknown_plugin(struct server *sv, const struct generation *g, const struct seen *seen,
               const struct config_check *ck, char *err, size_t errlen)
{
	const char **names = calloc(g->nplugins + 1, sizeof(*names));

	for (size_t k = 0; names != NULL && k < g->nplugins; k++)
		names[k] = seen[k].name;
	plugin_unknown_error(sv->loader, names, names != NULL ? g->nplugins : 0, ck->origin,
	                     ck->plugin, err, errlen);
	free(names);
}

/* The configured checks in file order: in process as startup made them; an
 * isolated plugin's once it took them in its load; else a stand-in while
 * some plugin loads, or an unknown plugin once none does. */
static int
add_configured(struct server *sv, struct generation *g, struct registry *reg,
               const struct seen *seen, char *err, size_t errlen)
{
	char why[ERR_SIZE];

	for (size_t i = 0; i < sv->cfg.nchecks; i++) {
		const struct config_check *ck = &sv->cfg.checks[i];
		int taken = 0, id;

		if (plugin_loader_file_of(sv->loader, ck->plugin) != NULL) {
			id = registry_find(sv->reg, ck->name, strlen(ck->name));
			if (id >= 0 && registry_add(reg, registry_at(sv->reg, (uint32_t)id), why,
			                            sizeof(why)) == -1) {
				snprintf(err, errlen, "%s.name: %s", ck->origin, why);
				return -1;
			}
			continue;
		}
		for (size_t k = 0; k < g->nplugins && taken == 0; k++)
			if (seen[k].loaded)
				taken = executor_register_instance(g->plugins[k], ck, reg, err,
				                                   errlen);
		if (taken == -1)
			return -1;
		if (taken == 1)
			continue;
		if (g->nloading == 0) {
			unknown_plugin(sv, g, seen, ck, err, errlen);
			return -1;
		}
		add_stand_in(g, reg, ck->name, ck->plugin, ck->origin, ck);
	}
	return 0;
}

/* Plugin names are unique across the server and its executors: checked as
 * each loads, since its name is known only then. */
static int
names_unique(struct server *sv, const struct generation *g, const struct seen *seen,
             char *err, size_t errlen)
{
	for (size_t k = 0; k < g->nplugins; k++) {
		const char *name = seen[k].name, *other;
		if (!seen[k].loaded)
			continue;
		other = plugin_loader_file_of(sv->loader, name);
		for (size_t j = 0; j < k && other == NULL; j++)
			if (seen[j].loaded && strcmp(seen[j].name, name) == 0)
				other = executor_plugin_path(g->plugins[j]);
		if (other != NULL) {
			snprintf(err, errlen, "plugin %s: refused: a plugin named \"%s\" is "
			         "already loaded from %s", executor_plugin_path(g->plugins[k]),
			         name, other);
			return -1;
		}
	}
	return 0;
}

/* An isolated check served before keeps its runner state (counters, cache). */
static void
keep_slots(const struct registry *old, struct registry *reg)
{
	for (uint32_t id = 0; id < registry_count(reg); id++) {
		const struct check *c = registry_at(reg, id);
		int oid;
		if (c->exec == NULL || c->slot != 0)
			continue;
		oid = registry_find(old, c->name, strlen(c->name));
		if (oid >= 0 && registry_at(old, (uint32_t)oid)->exec == c->exec &&
		    registry_at(old, (uint32_t)oid)->exec_index == c->exec_index)
			registry_set_slot(reg, id, registry_at(old, (uint32_t)oid)->slot);
	}
}

static void
free_built(struct generation *g)
{
	if (g == NULL)
		return;
	history_free(g->history);
	registry_free(g->reg); /* lets go of the server's in-process states it held */
	free(g->plugins);
	free(g->loading);
	free(g->stand_ins);
	free(g);
}

/* The generation of what has loaded now; NULL with one line in err. */
static struct generation *
build(struct server *sv, char *err, size_t errlen)
{
	size_t n = executor_count(sv->execs);
	struct generation *g = calloc(1, sizeof(*g));
	struct seen *seen = calloc(n + 1, sizeof(*seen));

	if (g == NULL || seen == NULL)
		goto oom;
	*g = (struct generation){.cfg = &sv->cfg, .shares_cfg = true, .reg = registry_new()};
	g->plugins = calloc(n + 1, sizeof(*g->plugins));
	g->loading = calloc(n + 1, sizeof(*g->loading));
	g->stand_ins = calloc(n + 1, sizeof(*g->stand_ins));
	if (g->reg == NULL || g->plugins == NULL || g->loading == NULL || g->stand_ins == NULL)
		goto oom;
	g->nplugins = executor_plugins(sv->execs, g->plugins, n);
	for (size_t k = 0; k < g->nplugins; k++)
		seen[k].loaded = executor_loaded_name(g->plugins[k], seen[k].name,
		                                      sizeof(seen[k].name));
	if (names_unique(sv, g, seen, err, errlen) == -1 ||
	    add_fixed(sv, g, g->reg, seen, err, errlen) == -1 ||
	    add_configured(sv, g, g->reg, seen, err, errlen) == -1)
		goto fail;
	/* a group or a depends_on may name a plugin's own check: known once all
	 * have loaded */
	if (g->nloading == 0 && (server_check_depends(&sv->cfg, g->reg, err, errlen) == -1 ||
	                         http_check_groups(&sv->cfg, g->reg, err, errlen) == -1))
		goto fail;
	if (sv->gens != NULL)
		keep_slots(gen_current(sv->gens)->reg, g->reg);
	registry_seal(g->reg);
	if ((g->history = server_history_new(&sv->cfg, g->reg)) == NULL)
		goto oom;
	free(seen);
	return g;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	free(seen);
	free_built(g);
	return NULL;
}

/* Serves g from now on (its plugins held, its checks in the runner). */
static int
switch_to(struct server *sv, struct generation *g, char *err, size_t errlen)
{
	/* the checks that stay (stand-ins included, by name) keep their history */
	if (runner_attach(sv->runner, g->reg, g->history) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < g->nplugins; i++)
		executor_hold(g->plugins[i]);
	gen_switch(sv->gens, g);
	return 0;
}

/* "http, postgres" */
static void
loading_names(const struct generation *g, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < g->nloading && off < len; i++) {
		int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", g->loading[i]);
		off += w > 0 ? (size_t)w : 0;
	}
}

int
server_loading_start(struct server *sv, char *err, size_t errlen)
{
	struct generation *g;

	if (!sv->load_later)
		return 0;
	g = build(sv, err, errlen);
	if (g == NULL)
		return -1;
	if (switch_to(sv, g, err, errlen) == -1) {
		free_built(g);
		return -1;
	}
	sv->loading = g->nloading > 0;
	return 0;
}

int
server_loading_step(struct server *sv)
{
	const struct generation *cur = gen_current(sv->gens);
	struct exec_plugin *still[1];
	struct generation *g;
	char err[1024], names[512];
	size_t n;

	if (executor_loading(sv->execs, still, 1, &n, err, sizeof(err))) {
		log_err("%s", err);
		return -1;
	}
	if (!sv->loading)
		return 0;
	g = build(sv, err, sizeof(err));
	if (g == NULL) {
		log_err("%s", err);
		return -1;
	}
	if (g->nloading == cur->nloading) {
		free_built(g); /* nothing new has loaded */
		return 0;
	}
	if (switch_to(sv, g, err, sizeof(err)) == -1) {
		free_built(g);
		log_err("%s", err);
		return -1;
	}
	loading_names(g, names, sizeof(names));
	notify_loading(sv->notify, names);
	if (g->nloading == 0) {
		sv->loading = false;
		server_log_ready(sv, g->reg);
	}
	server_collect(sv);
	return 0;
}

void
server_loading_status(struct server *sv, char *buf, size_t len)
{
	loading_names(gen_current(sv->gens), buf, len);
}
