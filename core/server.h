/*
 * server.h - the running server's parts and lifecycle: server.c loads,
 * starts, runs and stops it; reload.c switches it to a new set on SIGHUP and
 * frees the sets it retired.
 * main.c holds only the command line and its modes.
 */
#ifndef HEALTHD_SERVER_H
#define HEALTHD_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "generation.h"

struct server {
	struct config cfg;             /* startup's: process-level settings and the first checks */
	struct registry *reg;          /* startup's; owns the in-process checks' state */
	struct plugin_loader *loader;  /* in_process plugins: loaded once, never reloaded */
	struct executor_set *execs;    /* every other plugin */
	struct runner *runner;
	struct http *http;
	struct notify *notify;         /* systemd's NOTIFY_SOCKET, when set */
	char self[4096];               /* this binary, that executors run */
	struct history_store *store;   /* state_dir's history files; NULL: none */
	struct generation first;
	struct gen_table *gens;        /* NULL until the server serves */
	/* Reads the configuration file again with the command line applied
	 * over it, as at startup. */
	int (*read_config)(struct config *c, const void *arg, char *err, size_t errlen);
	const void *read_config_arg;
};

struct history;

/* A history for reg's checks (indexed like it) with cfg's flap thresholds;
 * NULL when out of memory. For startup and reloads. */
struct history *server_history_new(const struct config *cfg, const struct registry *reg);
/* config_check_depends() against reg: one line in err and -1 on a bad
 * depends_on. Call once reg is sealed. */
int server_check_depends(const struct config *cfg, const struct registry *reg, char *err,
                         size_t errlen);

/* The path executors are started from: this very binary. Returns 0 or -1
 * (errno set). */
int server_self_path(char *buf, size_t len);

/*
 * Config, plugins, checks: everything --check-config validates. sv->cfg was
 * config_init()ed; read_config(c, arg, ...) reads the configuration (kept for
 * SIGHUP, which reads it again the same way). Seals the registry. Main thread;
 * returns 0, or -1 with one line in err. server_stop() cleans up either way.
 */
int server_load(struct server *sv,
                int (*read_config)(struct config *c, const void *arg, char *err, size_t errlen),
                const void *arg, char *err, size_t errlen);
/* After server_load: the runner, executors, background checks and HTTP, then
 * the "ready" line and READY=1. Returns 0, or -1 with one line in err. */
int server_start(struct server *sv, char *err, size_t errlen);
/*
 * The main thread's loop once started: waits for SIGTERM or SIGINT,
 * reloading on SIGHUP; set holds the three, blocked in every thread.
 * Meanwhile it frees what reloads replaced once nothing uses it.
 */
void server_run(struct server *sv, const sigset_t *set);
/* Stop taking connections, answer what waits, stop the executors, then close
 * everything; also after a failed or partial load or start. */
void server_stop(struct server *sv);

/*
 * SIGHUP, on the main thread: reads the configuration, checks_dir and the
 * plugin directory again, validates the whole new set, and switches to it
 * atomically; on any error nothing changes. Logs one summary line (or the
 * one error line) and counts healthd_reloads_total. Returns 0 or -1.
 */
int server_reload(struct server *sv);
/* Frees retired generations that nothing uses any more (main thread, often).
 * Returns how many are still waiting. */
size_t server_collect(struct server *sv);
/* Shutdown: frees every generation (all requests and runs are over). */
void server_free_generations(struct server *sv);

#endif
