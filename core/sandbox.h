/* sandbox.h - the executor's sandbox: what plugin code runs inside (sandbox.c). */
#ifndef HEALTHD_SANDBOX_H
#define HEALTHD_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config;

/* Server, at start: not dumpable, so that same-uid processes get no
 * /proc/PID/mem, environ, ptrace or pidfd_getfd on it. Before any secret is read. */
void sandbox_server_start(void);

/* Server, once the configuration is read and before the first executor
 * starts: what executors must hide and which layers each plugin runs with,
 * handed to them in their environment. Returns 0, or -1 with err. */
int sandbox_export(const struct config *cfg, char *err, size_t errlen);

/* Executor, first thing: not dumpable; takes the server's description out of
 * the environment that plugin code will see. */
void sandbox_executor_start(void);

/* Executor, before the plugin at path loads; single-threaded. Sets up every
 * layer the configuration asks for and the kernel offers, and logs one line of
 * what is active. Returns 0, or -1 with err when a layer that isolation.require
 * names is missing: the executor must then exit without loading plugin code. */
int sandbox_enter(const char *path, pid_t server, char *err, size_t errlen);

/* Whether this process went through sandbox_enter(). */
bool sandbox_entered(void);

/* Server: the pid whose memory counts for the executor spawned as pid (its
 * PID namespace's executor, when it has one). */
pid_t sandbox_memory_pid(pid_t pid);

#endif
