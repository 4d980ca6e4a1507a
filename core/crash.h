/*
 * crash.h - one line naming the plugin whose code was running when a fatal
 * signal hit, for plugins that run in the server process (in_process) and
 * in executors alike. The plugin's crash is still a crash: the handler writes
 * its line and re-raises the signal with the default action.
 */
#ifndef HEALTHD_CRASH_H
#define HEALTHD_CRASH_H

#include <stdbool.h>

/* Installs the handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT. In the
 * server not in sanitizer builds, whose own reports say more; in executors
 * always (`always`), since there the server reports the crash. Also, always,
 * an atexit handler: exit() from plugin code logs one line naming plugin and
 * check (unless a reporter is set: then the server says it). */
void crash_install(bool always);

/* Marks this thread as inside plugin code (plugin and check may be NULL: the
 * host's own code). The strings must outlive the call they mark. */
void crash_enter(const char *plugin, const char *check);
void crash_leave(void);

/* The check this thread is running, or NULL. */
const char *crash_current_check(void);

/* In an executor: before re-raising, the handler also calls fn(check) (which
 * must be async-signal-safe), so the server learns which check crashed. */
void crash_set_reporter(void (*fn)(const char *check));

#endif
