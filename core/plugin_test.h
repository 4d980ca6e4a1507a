/*
 * plugin_test.h - `healthd --test-plugin FILE.so`: the contract suite a plugin
 * author runs (from the plugin's own `meson test`), printing TAP.
 *
 * The plugin is untrusted: every step runs in a child started from healthd's
 * own binary (posix_spawn, `healthd --test-plugin-step ...`), which loads the
 * plugin as the server does and reports line by line on a pipe. The parent
 * bounds every wait, kills a child that stops answering, and names the signal
 * of one that crashed, so the harness itself never crashes or hangs.
 */
#ifndef HEALTHD_PLUGIN_TEST_H
#define HEALTHD_PLUGIN_TEST_H

#include <stddef.h>

/* The parent: runs every step of the suite on `file`. opts are "KEY=VALUE"
 * options for the plugin's configured checks; check (or NULL) limits the
 * runs to that check. Returns the exit status: 0 all held, 1 not. */
int plugin_test_main(const char *self, const char *file, const char *const *opts,
                     size_t nopts, const char *check);

/* The child: `healthd --test-plugin-step STEP FILE CHECK [KEY=VALUE]...`. */
int plugin_test_step_main(int argc, char **argv);

#endif
