/*
 * plugin_loader.h - dlopen of check plugins, the ABI checks that come before
 * any plugin code runs, and the host function table plugins call.
 *
 * Main thread only: at startup and shutdown, and a reload's instantiate.
 */
#ifndef HEALTHD_PLUGIN_LOADER_H
#define HEALTHD_PLUGIN_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "registry.h"

struct stat;

struct plugin_loader;

struct plugin_info {
	const char *file;        /* path as loaded */
	const struct stat *file_stat; /* that file when it was loaded */
	const char *name, *version, *description;
	unsigned abi_major, abi_minor;
	size_t nchecks;          /* checks it registered at startup, fixed and configured */
	bool instantiable;       /* it has instantiate(): configured checks */
};

struct plugin_loader *plugin_loader_new(struct registry *r);

/* The caller checked the files' modes itself (file_modes.h): an executor's
 * sandbox does, before a user namespace makes root's files look like nobody's. */
void plugin_loader_modes_checked(struct plugin_loader *l);

/* Plugin names are unique across the server and its executors: fn says which
 * file already has `name` elsewhere, or NULL. */
void plugin_loader_set_taken(struct plugin_loader *l,
                             const char *(*fn)(void *arg, const char *name), void *arg);
/* The file of the loaded plugin called name, or NULL. */
const char *plugin_loader_file_of(const struct plugin_loader *l, const char *name);

/* Loads one file (server.c walks plugin_dir with dirlist_plugins()). Returns
 * 0, or -1 with one line naming the refused file and the reason. */
int plugin_load_file(struct plugin_loader *l, const char *path, char *err, size_t errlen);
/* The one line for a check whose plugin is not installed: every plugin found,
 * in process (l's) and isolated[0..nisolated), with a "did you mean" for a
 * name within an edit distance of 2. */
void plugin_unknown_error(const struct plugin_loader *l, const char *const *isolated,
                          size_t nisolated, const char *origin, const char *name, char *err,
                          size_t errlen);
/* Creates a configured check through its plugin's instantiate(). */
int plugin_instantiate(struct plugin_loader *l, const struct config_check *ck, char *err,
                       size_t errlen);

/* The same into a reload's registry, sealed or not: a new check of a plugin
 * loaded already. instantiate() then runs while the plugin's other checks run
 * (the threading contract in plugin.h says so). */
int plugin_instantiate_into(struct plugin_loader *l, struct registry *into,
                            const struct config_check *ck, char *err, size_t errlen);

/* No registrations after this, but plugin_instantiate_into()'s. */
void plugin_loader_seal(struct plugin_loader *l);

size_t plugin_count(const struct plugin_loader *l);
void plugin_info(const struct plugin_loader *l, size_t i, struct plugin_info *info);

/* Calls unload() of every loaded plugin and dlcloses them all, then frees l.
 * Only after registry_free(): the checks' destroy() lives in the plugins. */
void plugin_loader_free(struct plugin_loader *l);

/*
 * Calls c->run(c->state, report) on this thread, marked for crash.h; only this
 * call may write the report through message() and timed_out() (a late or
 * foreign-thread call is a no-op with one warning). A status outside 0-3 is
 * returned as UNKNOWN, with one warning per check; *raw (if not NULL) gets
 * what run() returned. Any thread.
 */
enum healthd_status plugin_run(const struct check *c, struct healthd_report *report, int *raw);

/* How many message()/timed_out() calls were ignored as outside run(). */
unsigned long plugin_stale_calls(void);

/* The host table as plugins see it (tests call through it). */
const struct healthd_host_api *plugin_host_api(void);

#endif
