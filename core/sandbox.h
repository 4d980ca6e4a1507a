/* sandbox.h - the executor's sandbox: what plugin code runs inside (sandbox.c). */
#ifndef HEALTHD_SANDBOX_H
#define HEALTHD_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config;

/* What an executor set up, as its LOAD reply carries it to the server (the
 * executor reports on itself: plugin code could misreport its own executor,
 * never another's). Bits are enum config_sandbox_layer's. */
struct sandbox_report {
	unsigned layers;       /* set up */
	unsigned off;          /* turned off for this plugin by the configuration */
	unsigned landlock_abi; /* in force; 0 without landlock */
	char why[512];         /* why the others are missing, e.g. "no namespaces
	                        * (unshare: ...)"; "" when none is */
};
#define SANDBOX_LANDLOCK_ABI_MAX 255

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
 * layer the configuration asks for and the kernel offers, and fills report
 * (the server logs it). Returns 0, or -1 with err naming the plugin and the
 * missing layer when isolation.require names it: the executor must then exit
 * without loading plugin code. */
int sandbox_enter(const char *path, pid_t server, struct sandbox_report *report, char *err,
                  size_t errlen);

/* Layers neither set up nor turned off: the kernel or the service manager
 * withheld them (a warning, or a refusal under isolation.require). */
unsigned sandbox_missing(const struct sandbox_report *r);

/* Server: the report as one line's text, for the startup line, --check-config
 * and warnings: "user+pid+mount namespaces, landlock v6, seccomp, ...". */
void sandbox_describe(const struct sandbox_report *r, char *buf, size_t len);

/* Whether this process went through sandbox_enter(). */
bool sandbox_entered(void);

/* Server: the pid whose memory counts for the executor spawned as pid (its
 * PID namespace's executor, when it has one). */
pid_t sandbox_memory_pid(pid_t pid);

#endif
