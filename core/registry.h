/*
 * registry.h - the registered checks: by name, in registration order, with
 * their defaults flag; and the ?checks= selection rules of the seed.
 *
 * Filled on the main thread (at startup, or by a reload), then sealed:
 * registry_seal() builds the name order and freezes the set of checks and
 * their settings. One field is still written after it: each check's slot, by
 * runner_attach() on the main thread, before the registry reaches any other
 * thread (runner_new() at startup, a reload before it switches). From then on
 * it is read-only and may be read from any thread without locking.
 */
#ifndef HEALTHD_REGISTRY_H
#define HEALTHD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <healthd/plugin.h>

#include "check_name.h"

struct exec_plugin;
struct config_check;

struct check {
	char name[CHECK_NAME_MAX + 1];
	const char *plugin;    /* owning plugin's name; lives until plugins unload */
	char *origin;          /* where it was declared: "dummy.so", "f.json: checks[2]" */
	/* In process: run, destroy and state are the plugin's. In an executor:
	 * run and destroy are NULL, and exec/exec_index say where it lives. */
	enum healthd_status (*run)(void *state, struct healthd_report *report);
	void (*destroy)(void *state);
	void *state;
	struct exec_plugin *exec;
	uint32_t exec_index;
	uint32_t flags;        /* HEALTHD_CHECK_* */
	bool in_defaults;
	int timeout_ms;
	int cache_ms;
	int interval_ms;              /* > 0: a background check (runner_start) */
	int failures_before_critical; /* thresholds; 0 and 1 both mean "at once" */
	int successes_before_passing;
	/* Checks whose failure suppresses this one's (names, in the config the
	 * registry was built from: borrowed, as origin's source is). */
	char *const *depends_on;
	size_t ndepends_on;
	/* The runner's state for it (runner_attach); 0: none yet. A check kept
	 * across a reload keeps its slot, and so its flight, cache and counters. */
	uint32_t slot;
	/* In process with a destroy(): how many registries hold this state (main
	 * thread only). Set by registry_add(); a copy shares it. */
	unsigned *holders;
};

struct registry;

/*
 * Who destroys an in-process check's state: the last registry that holds it.
 * registry_add() of a check fresh from its plugin (holders NULL) makes r its
 * only holder; of a copy of a registered check (a reload keeping it), one
 * more. Generations free their registry only once no run is in it (reload.c),
 * so destroy() comes after the state's last run, whichever set served it.
 */
struct registry *registry_new(void);
/* Lets go of every check's state (registry_release_states), calling destroy()
 * of those no other registry holds, in reverse registration order; frees. */
void registry_free(struct registry *r);
/* Lets go of the states now, the registry itself stays (the startup registry,
 * whose generation a reload retired: the server frees it last). Its checks
 * may not be copied after this. Idempotent. */
void registry_release_states(struct registry *r);


/* What a configured check says of itself, over c: origin, defaults,
 * timeout_ms, cache_ms, interval_ms and the thresholds (ck's, borrowed). */
void registry_apply_config(struct check *c, const struct config_check *ck);

/* Copies *c (origin is duplicated) and returns its id, or -1 with err set
 * (invalid or duplicate name). */
int registry_add(struct registry *r, const struct check *c, char *err, size_t errlen);
void registry_seal(struct registry *r);
/* The runner's slot of check id: runner_attach(), and before sealing a reload
 * that keeps a restarted plugin's check state (see above for the threads). */
void registry_set_slot(struct registry *r, uint32_t id, uint32_t slot);

size_t registry_count(const struct registry *r);
const struct check *registry_at(const struct registry *r, uint32_t id);
/* Id of the check named name[0..len), or -1. */
int registry_find(const struct registry *r, const char *name, size_t len);

/*
 * The seed's selection rules. `present` false: the default checks. Otherwise
 * `value` (already percent-decoded, `len` bytes, may hold NULs) is split on
 * ',', each part trimmed of white space; "_defaults" adds the defaults;
 * unknown names are ignored; duplicates collapse; an empty value selects
 * nothing. Writes the selected ids sorted by name into ids (room for
 * registry_count() entries) and returns how many. `mark` is scratch space of
 * registry_count() bytes. Stops reading after max_names parts (0: no limit)
 * and sets *truncated.
 */
size_t registry_select(const struct registry *r, bool present, const char *value, size_t len,
                       size_t max_names, uint8_t *mark, uint32_t *ids, bool *truncated);

/*
 * ?exclude=: takes the checks that `value` names, by the same rules as
 * registry_select (split, trimmed, "_defaults", unknown names ignored), out
 * of ids[0..n), keeping their order. Returns how many are left; `mark` and
 * max_names as above.
 */
size_t registry_exclude(const struct registry *r, const char *value, size_t len,
                        size_t max_names, uint8_t *mark, uint32_t *ids, size_t n,
                        bool *truncated);

#endif
