/*
 * server.h - the running server's parts, shared by main.c (startup and
 * shutdown) and reload.c (SIGHUP).
 */
#ifndef HEALTHD_SERVER_H
#define HEALTHD_SERVER_H

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
	struct generation first;
	struct gen_table *gens;        /* NULL until the server serves */
	/* Reads the configuration file again with the command line applied
	 * over it, as at startup. */
	int (*read_config)(struct config *c, const void *arg, char *err, size_t errlen);
	const void *read_config_arg;
};

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
