/* generation.c - the current generation of checks, held per request. */
#include "generation.h"

#include <pthread.h>
#include <stdlib.h>

struct gen_table {
	pthread_mutex_t lock;
	struct generation *cur;
	struct generation *retired;
};

struct gen_table *
gen_table_new(struct generation *first)
{
	struct gen_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->cur = first;
	return t;
}

const struct generation *
gen_acquire(struct gen_table *t)
{
	struct generation *g;

	pthread_mutex_lock(&t->lock);
	g = t->cur;
	g->refs++;
	pthread_mutex_unlock(&t->lock);
	return g;
}

void
gen_release(struct gen_table *t, const struct generation *g)
{
	pthread_mutex_lock(&t->lock);
	((struct generation *)g)->refs--; /* the table's: only the count changes */
	pthread_mutex_unlock(&t->lock);
}

struct generation *
gen_current(struct gen_table *t)
{
	struct generation *g;

	pthread_mutex_lock(&t->lock);
	g = t->cur;
	pthread_mutex_unlock(&t->lock);
	return g;
}

void
gen_switch(struct gen_table *t, struct generation *g)
{
	pthread_mutex_lock(&t->lock);
	t->cur->next = t->retired;
	t->retired = t->cur;
	t->cur = g;
	pthread_mutex_unlock(&t->lock);
}

struct generation *
gen_collect(struct gen_table *t, bool (*quiet)(void *arg, const struct registry *reg),
            void *arg)
{
	struct generation **pp, *g = NULL;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->retired; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->refs == 0 && (quiet == NULL || quiet(arg, (*pp)->reg))) {
			g = *pp;
			*pp = g->next;
			g->next = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return g;
}

struct generation *
gen_retired_idle(struct gen_table *t, const struct generation *after)
{
	struct generation *g;

	pthread_mutex_lock(&t->lock);
	g = after != NULL ? after->next : t->retired;
	while (g != NULL && g->refs > 0)
		g = g->next;
	pthread_mutex_unlock(&t->lock);
	return g;
}

size_t
gen_live_registries(struct gen_table *t, const struct registry **out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	out[n++] = t->cur->reg;
	for (struct generation *g = t->retired; g != NULL; g = g->next)
		if (g->refs > 0 && n < max)
			out[n++] = g->reg;
	pthread_mutex_unlock(&t->lock);
	return n;
}

size_t
gen_retired(struct gen_table *t)
{
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	for (struct generation *g = t->retired; g != NULL; g = g->next)
		n++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void
gen_table_free(struct gen_table *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}
