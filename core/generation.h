/*
 * generation.h - the set of checks being served, and its replacement by a
 * reload without a mix: every request holds the generation it started with
 * until its answer is sent (gen_acquire/gen_release), and a generation a
 * reload replaced is freed only once no request holds it and nothing in the
 * runner points into its checks: no check state, no run (gen_collect).
 */
#ifndef HEALTHD_GENERATION_H
#define HEALTHD_GENERATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "registry.h"
#include "sizes.h"

struct exec_plugin;
struct history;

struct generation {
	struct config *cfg;          /* its checks; owned unless `first` */
	struct registry *reg;        /* sealed and attached to the runner */
	struct exec_plugin **plugins; /* isolated plugins it holds (executor_hold) */
	size_t nplugins;
	struct history *history;     /* reg's checks' history (history.h); owned
	                              * unless `first`; the runner records into
	                              * the current one only */
	bool first;                  /* startup's: cfg and reg belong to the server */
	bool shares_cfg;             /* cfg is the server's (loading.c): reg and the
	                              * generation are freed with it, cfg is not */
	/* Isolated plugins whose first load() has not finished (loading.c), and
	 * the ids of the stand-in checks every request of this generation runs
	 * for them: until they have loaded, every answer is 503. Owned. */
	char (*loading)[PLUGIN_NAME_SIZE];
	size_t nloading;
	uint32_t *stand_ins;
	size_t nstand_ins;
	/* under the table's lock */
	unsigned long refs;
	struct generation *next;     /* retired list */
};

struct gen_table;

struct gen_table *gen_table_new(struct generation *first);
/* Any thread: the current generation, held until gen_release(). */
const struct generation *gen_acquire(struct gen_table *t);
void gen_release(struct gen_table *t, const struct generation *g);
/* Main thread: the current generation (not held). */
struct generation *gen_current(struct gen_table *t);
/* Main thread: g becomes current; the old one is retired. */
void gen_switch(struct gen_table *t, struct generation *g);
/* Main thread: a retired generation no request holds and for which
 * quiet(arg, its registry) is true, taken off the table; NULL if none. At
 * shutdown (all requests ended) pass quiet NULL to take every one. */
struct generation *gen_collect(struct gen_table *t,
                               bool (*quiet)(void *arg, const struct registry *reg), void *arg);
/* Main thread: the retired generation after `after` (NULL: the first) that
 * no request holds any more (and none will), still on the table; NULL if
 * none. Its plugins are the main thread's to release. */
struct generation *gen_retired_idle(struct gen_table *t, const struct generation *after);
/* Main thread: the registries requests may still use (the current one and
 * retired ones still held), at most max; returns how many. */
size_t gen_live_registries(struct gen_table *t, const struct registry **out, size_t max);
/* How many retired generations wait for their requests or runs. */
size_t gen_retired(struct gen_table *t);
void gen_table_free(struct gen_table *t);

#endif
