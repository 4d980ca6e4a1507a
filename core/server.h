/*
 * server.h - the running server's parts and lifecycle: server.c loads,
 * starts, runs and stops it; reload.c switches it to a new set on SIGHUP and
 * frees the sets it retired.
 * main.c holds only the command line and its modes.
 */
#ifndef HEALTHD_SERVER_H
#define HEALTHD_SERVER_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
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
	struct tls *tls;               /* HTTPS: the certificate set; NULL: plain HTTP */
	struct notify *notify;         /* systemd's NOTIFY_SOCKET, when set */
	char self[4096];               /* this binary, that executors run */
	struct history_store *store;   /* state_dir's history files; NULL: none */
	struct generation first;
	struct gen_table *gens;        /* NULL until the server serves */
	/* Reads the configuration file again with the command line applied
	 * over it, as at startup. */
	int (*read_config)(struct config *c, const void *arg, char *err, size_t errlen);
	const void *read_config_arg;
	/* Serving while loading (loading.c): set before server_load() to load
	 * isolated plugins once serving, not before. */
	bool load_later;
	bool loading;                  /* some isolated plugin has not loaded yet */
	bool reload_waits;             /* a SIGHUP came meanwhile: reload once loaded */
	pthread_t main_thread;         /* woken (SIGUSR1) as each first load ends */
};

struct history;

/* A history for reg's checks (indexed like it; then cfg's checks reg does
 * not have yet) with cfg's flap thresholds; NULL when out of memory. For
 * startup, reloads and the generations of loading.c. */
struct history *server_history_new(const struct config *cfg, const struct registry *reg);
/* config_check_depends() against reg: one line in err and -1 on a bad
 * depends_on. Call once reg is sealed. */
int server_check_depends(const struct config *cfg, const struct registry *reg, char *err,
                         size_t errlen);
/*
 * When this process is PID 1 (a container's init): forks, and only the child
 * returns, to be the server. PID 1 stays behind as init does: it reaps every
 * orphan that reaches it and forwards the signals it gets to the server, then
 * exits as the server did. So no zombie piles up, and the server's own
 * children (executors, an in-process plugin's commands) keep their exit
 * statuses for whoever waits for them. Before any thread or child exists.
 */
void server_pid1_split(void);

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
 * READY=1 and (once nothing loads) the "ready" line. Returns 0, or -1 with
 * one line in err. */
int server_start(struct server *sv, char *err, size_t errlen);
/*
 * The main thread's loop once started: waits for SIGTERM or SIGINT,
 * reloading on SIGHUP and taking in loaded plugins on SIGUSR1; set holds the
 * four, blocked in every thread. Meanwhile it frees what reloads replaced
 * once nothing uses it, and with HTTPS watches the certificate's files. Returns 0, or 1 if a plugin's first load was refused
 * (the start failed, logged).
 */
int server_run(struct server *sv, const sigset_t *set);
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

/* The "ready: N checks ..." line, of reg's checks. */
void server_log_ready(struct server *sv, const struct registry *reg);

/*
 * Serving while loading (loading.c), main thread. server_loading_start():
 * with load_later, switches from the first generation to the one of what has
 * loaded so far (before HTTP starts); -1 with one line in err if the
 * configuration cannot be served (an unknown plugin when none loads).
 * server_loading_step(): on SIGUSR1, takes in what has loaded since; -1 (the
 * line logged) if a first load was refused: the start fails.
 * server_loading_status(): "http, postgres", what still loads.
 */
int server_loading_start(struct server *sv, char *err, size_t errlen);
int server_loading_step(struct server *sv);
void server_loading_status(struct server *sv, char *buf, size_t len);

#endif
