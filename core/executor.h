/*
 * executor.h - plugin code in supervised executor processes.
 *
 * Every plugin not named in the configuration's "in_process" is loaded by an
 * executor: a child started from healthd's own binary (posix_spawn + exec,
 * never a fork of the threaded server), one per plugin, talking over a
 * socketpair (exec_proto.h). The server never maps such a plugin. Its checks
 * are in the server's registry with `exec` set instead of `run`: the runner
 * hands their runs to executor_run() and learns every outcome through one
 * door, the executor_done_fn it gave executor_start(), whether the run
 * returned, its executor crashed, or it was killed. Nothing here knows the
 * runner.
 *
 * The supervisor (one thread) reads results, reaps children, restarts a
 * crashed executor with exponential backoff, retires one whose run is still
 * in plugin code kill_after_ms after its deadline or whose RSS is above
 * max_rss_mb (a fresh executor takes the new runs; the old one is killed
 * with SIGKILL and reaped once its other runs are over), and leaves no
 * process behind at shutdown.
 */
#ifndef HEALTHD_EXECUTOR_H
#define HEALTHD_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <healthd/plugin.h>

#include <sys/stat.h>

#include "config.h"
#include "registry.h"
#include "sandbox.h"
#include "sizes.h"

struct executor_set;
struct exec_plugin;
struct healthd_report;

enum exec_reason { EXEC_REASON_CRASH, EXEC_REASON_DEADLINE, EXEC_REASON_MEMORY,
                   EXEC_REASON_PROTOCOL, EXEC_REASON_COUNT };

/* The metric label of a reason: "crash", "deadline", "memory", "protocol". */
const char *executor_reason_name(enum exec_reason r);

/* self: the binary to start executors from (/proc/self/exe). */
struct executor_set *executor_set_new(const struct config *cfg, const char *self);

/*
 * Startup, main thread. Starts an executor for the plugin file at path, loads
 * it there and registers its fixed checks in reg. Returns 0, or -1 with one
 * line naming the file and the reason (a refusal, or the executor's crash).
 */
int executor_load(struct executor_set *s, const char *path, struct registry *reg, char *err,
                  size_t errlen);

/*
 * Serving while loading (server.c), main thread, before executor_start().
 * executor_load_later(): the plugin file at path (name stem[0..len) until its
 * load() says) is loaded once the supervisor runs, concurrently with the other
 * plugins and with serving, as a restart is: within isolation.load_timeout_ms,
 * else killed and tried again with the restart backoff. executor_want(): a
 * configured check of no in-process plugin (ck borrowed; it must outlive the
 * set): the first plugin loaded later whose load() gives ck->plugin as its
 * name instantiates it. loaded(arg) hears of the end of every such first load,
 * good or refused (supervisor thread, lock held: it may only wake someone).
 */
int executor_load_later(struct executor_set *s, const char *path, const char *stem, size_t len,
                        char *err, size_t errlen);
int executor_want(struct executor_set *s, const struct config_check *ck);
void executor_set_loaded_fn(struct executor_set *s, void (*fn)(void *arg), void *arg);
/* The plugins whose first load is still to finish, at most max into out.
 * Returns true, with its one line in fatal, if one was refused (a refusal,
 * crash or bad answer of load() or instantiate(): the start fails). */
bool executor_loading(struct executor_set *s, struct exec_plugin **out, size_t max, size_t *nout,
                      char *fatal, size_t fatallen);
/* Whether pl's first load went through, and its name (its file's before). */
bool executor_loaded_name(struct exec_plugin *pl, char *name, size_t len);
/* A loaded plugin's fixed checks into reg; and the configured check ck if pl
 * took it (returns 1; 0 if not its). -1 with one line on a refusal. */
int executor_register_fixed(struct exec_plugin *pl, struct registry *reg, char *err,
                            size_t errlen);
int executor_register_instance(struct exec_plugin *pl, const struct config_check *ck,
                               struct registry *reg, char *err, size_t errlen);

/* As plugin_loader_set_taken(): names loaded in process. */
void executor_set_taken(struct executor_set *s, const char *(*fn)(void *arg, const char *name),
                        void *arg);
/* The file of the isolated plugin called name, or NULL. */
const char *executor_file_of(const struct executor_set *s, const char *name);

/* Whether an isolated plugin of that name was loaded. */
bool executor_has_plugin(const struct executor_set *s, const char *name);

/* Creates the configured check ck in its plugin's executor and registers it
 * in reg. Returns 0, or -1 with one line (as plugin_instantiate does). */
int executor_instantiate(struct executor_set *s, const struct config_check *ck,
                         struct registry *reg, char *err, size_t errlen);

/*
 * The one door back, as relayd's hce_notify_done(): the run with this token
 * of check id ended with st and rep (message, timed_out, values) after
 * dur_ms. Called once for every run executor_run() took, on any thread, never
 * with the executors' lock held. Returns false if that run was no longer
 * awaited (late, or not what the executor claims).
 */
typedef bool executor_done_fn(void *arg, uint32_t check_id, uint64_t token,
                              enum healthd_status st, const struct healthd_report *rep,
                              int64_t dur_ms);

/* Seals every executor and starts the supervisor thread. Every run's end
 * goes to done(arg, ...). */
int executor_start(struct executor_set *s, executor_done_fn *done, void *arg, char *err,
                   size_t errlen);

/*
 * Runner side, called under the runner's lock (lock order: runner, then
 * executors; see runner.h). Hands one run to the check's executor, or queues
 * it while a fresh executor starts. Returns 0, or -1 with why it cannot run now (the
 * plugin is down after a crash) in msg: fail the run with it at once.
 */
int executor_run(const struct check *c, uint32_t check_id, uint64_t token, int64_t deadline_ms,
                 char *msg, size_t msglen);

/* The runner stopped waiting for a run (deadline, shutdown): tells the plugin
 * through cancelled(). Returns true if the run had not reached an executor
 * yet and was dropped: no result will come for it. */
bool executor_cancel(struct exec_plugin *p, uint64_t token);

/* For --check-config, the startup line and /metrics: copies, as a reload may
 * free the plugin meanwhile. */
struct executor_info {
	char name[PLUGIN_NAME_SIZE];
	char version[PLUGIN_VERSION_SIZE];
	char description[PLUGIN_DESCRIPTION_SIZE];
	char file[512];
	unsigned abi_major, abi_minor;
	size_t nchecks;
	bool up;
	uint64_t restarts[EXEC_REASON_COUNT];
	uint64_t rss_bytes;
	uint64_t log_dropped_bytes; /* its output the log did not take (exec_output.c) */
	bool retired;  /* replaced or removed by a reload (not the current
	                * configuration's); gone after its runs */
	struct sandbox_report sandbox; /* the layers its executor set up */
};
size_t executor_count(struct executor_set *s);
/* False if there is no plugin i (any more). */
bool executor_info(struct executor_set *s, size_t i, struct executor_info *out);
/* Every plugin the current configuration uses (none retired), in one look:
 * at most max into out; returns how many. */
size_t executor_serving_info(struct executor_set *s, struct executor_info *out, size_t max);

/*
 * Reload (reload.c). A reload loads new and replaced plugins into a staging
 * set from the main thread, as at startup, and reuses the live plugins it
 * can: the same file (device, inode, size and mtime) with the same ordered
 * list of configured checks and options.
 *
 * executor_reusable(): that live plugin for the file at path with status st,
 * given the checks of the new configuration cfg, or NULL.
 * executor_register(): registers a reused plugin's checks in reg (their
 * timeouts, cache and defaults from cfg), each keeping the runner slot it has
 * in old. executor_seal(): ends loading in a staging set. executor_merge():
 * moves the staging set's plugins into the live set (their supervisor is
 * then the live one) and leaves staging empty, or returns -1 (out of memory)
 * having moved none; executor_serve() makes serving (the new configuration's
 * plugins) those executor_info() does not call retired. executor_hold() and
 * executor_release() count the configurations using a plugin; at zero it
 * retires: it takes no new runs, its executors are closed once their runs
 * are over, and it is freed after they are reaped.
 */
struct exec_plugin *executor_reusable(struct executor_set *s, const char *path,
                                      const struct stat *st, const struct config *cfg);
const char *executor_plugin_name(const struct exec_plugin *pl);
const char *executor_plugin_version(const struct exec_plugin *pl);
const char *executor_plugin_path(const struct exec_plugin *pl);
/* Whether a and b were loaded from the same, unchanged file. */
bool executor_same_file(const struct exec_plugin *a, const struct exec_plugin *b);
int executor_register(struct exec_plugin *pl, struct registry *reg, const struct registry *old,
                      const struct config *cfg, char *err, size_t errlen);
int executor_seal(struct executor_set *staging, char *err, size_t errlen);
int executor_merge(struct executor_set *live, struct executor_set *staging);
void executor_serve(struct executor_set *live, struct exec_plugin *const *serving, size_t nserving);
/* The plugins of a set (a staging set before executor_merge()). */
size_t executor_plugins(struct executor_set *s, struct exec_plugin **out, size_t max);
void executor_hold(struct exec_plugin *pl);
void executor_release(struct exec_plugin *pl);

/*
 * Stops every executor: closes their sockets (they destroy their checks and
 * unload when no run is in plugin code), waits up to grace_ms, then SIGKILLs
 * and reaps what is left. Runs still in flight are ended through the runner
 * ("healthd is shutting down"). Call after runner_shutdown().
 */
void executor_shutdown(struct executor_set *s, int grace_ms);
void executor_set_free(struct executor_set *s);

/* The executor process's main, for `healthd --executor PPID THREADS`. */
int executor_process_main(int argc, char **argv);

#endif
