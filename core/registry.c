/* registry.c - registered checks by name and order; the ?checks= selection. */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "crash.h"

struct registry {
	struct check *checks; /* by id = registration order */
	size_t n, cap;
	int32_t *table;       /* open addressing: id or -1; size is a power of two */
	size_t table_size;
	uint32_t *sorted;     /* ids sorted by name; built by registry_seal() */
	bool released;        /* registry_release_states() ran */
};

static uint32_t hash_name(const char *s, size_t len);
static int grow_table(struct registry *r);

struct registry *
registry_new(void)
{
	return calloc(1, sizeof(struct registry));
}

void
registry_release_states(struct registry *r)
{
	if (r == NULL || r->released)
		return;
	r->released = true;
	for (size_t i = r->n; i-- > 0;) {
		struct check *c = &r->checks[i];
		if (c->holders == NULL || --*c->holders > 0)
			continue;
		free(c->holders);
		crash_enter(c->plugin, c->name);
		c->destroy(c->state);
		crash_leave();
	}
}

void
registry_free(struct registry *r)
{
	if (r == NULL)
		return;
	registry_release_states(r);
	for (size_t i = r->n; i-- > 0;)
		free(r->checks[i].origin);
	free(r->checks);
	free(r->table);
	free(r->sorted);
	free(r);
}

void
registry_apply_config(struct check *c, const struct config_check *ck)
{
	c->origin = ck->origin;
	c->in_defaults = ck->defaults;
	c->timeout_ms = ck->timeout_ms;
	c->cache_ms = ck->cache_ms;
	c->interval_ms = ck->interval_ms;
	c->failures_before_critical = ck->failures_before_critical;
	c->successes_before_passing = ck->successes_before_passing;
	c->depends_on = ck->depends_on;
	c->ndepends_on = ck->ndepends_on;
}

void
registry_set_slot(struct registry *r, uint32_t id, uint32_t slot)
{
	r->checks[id].slot = slot;
}

/* FNV-1a: names are short and few; this only has to spread them. */
static uint32_t
hash_name(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void
table_insert(int32_t *table, size_t size, const struct check *checks, int32_t id)
{
	const char *name = checks[id].name;
	size_t i = hash_name(name, strlen(name)) & (size - 1);

	while (table[i] != -1)
		i = (i + 1) & (size - 1);
	table[i] = id;
}

/* Keeps the table at most half full. */
static int
grow_table(struct registry *r)
{
	size_t size = r->table_size ? r->table_size * 2 : 16;
	int32_t *table = malloc(size * sizeof(*table));

	if (table == NULL)
		return -1;
	memset(table, 0xff, size * sizeof(*table));
	for (size_t id = 0; id < r->n; id++)
		table_insert(table, size, r->checks, (int32_t)id);
	free(r->table);
	r->table = table;
	r->table_size = size;
	return 0;
}

int
registry_find(const struct registry *r, const char *name, size_t len)
{
	size_t i;

	if (r->table_size == 0 || len == 0 || len > CHECK_NAME_MAX)
		return -1;
	i = hash_name(name, len) & (r->table_size - 1);
	while (r->table[i] != -1) {
		const struct check *c = &r->checks[r->table[i]];
		/* memcmp, not strncmp: a decoded query part may hold NUL bytes */
		if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
			return r->table[i];
		i = (i + 1) & (r->table_size - 1);
	}
	return -1;
}

int
registry_add(struct registry *r, const struct check *c, char *err, size_t errlen)
{
	const char *why = check_name_error(c->name);
	struct check *slot;
	int other;

	if (why != NULL) {
		snprintf(err, errlen, "invalid check name \"%.80s\": %s", c->name, why);
		return -1;
	}
	other = registry_find(r, c->name, strlen(c->name));
	if (other != -1) {
		snprintf(err, errlen, "check name \"%s\" is already taken (by %s)", c->name,
		         r->checks[other].origin);
		return -1;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct check *checks = realloc(r->checks, cap * sizeof(*checks));
		if (checks == NULL)
			goto oom;
		r->checks = checks;
		r->cap = cap;
	}
	if ((r->n + 1) * 2 > r->table_size && grow_table(r) == -1)
		goto oom;
	slot = &r->checks[r->n];
	*slot = *c;
	if (c->destroy == NULL || c->exec != NULL)
		slot->holders = NULL; /* nothing to destroy here */
	else if (c->holders == NULL && (slot->holders = malloc(sizeof(*slot->holders))) == NULL)
		goto oom;
	slot->origin = strdup(c->origin ? c->origin : "?");
	if (slot->origin == NULL) {
		if (c->holders == NULL)
			free(slot->holders);
		goto oom;
	}
	if (slot->holders != NULL)
		*slot->holders = c->holders == NULL ? 1 : *slot->holders + 1;
	table_insert(r->table, r->table_size, r->checks, (int32_t)r->n);
	return (int)r->n++;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static const struct registry *sort_registry; /* qsort has no context argument */

static int
by_name(const void *a, const void *b)
{
	return strcmp(sort_registry->checks[*(const uint32_t *)a].name,
	              sort_registry->checks[*(const uint32_t *)b].name);
}

void
registry_seal(struct registry *r)
{
	free(r->sorted);
	r->sorted = malloc((r->n ? r->n : 1) * sizeof(*r->sorted));
	if (r->sorted == NULL)
		abort();
	for (uint32_t i = 0; i < r->n; i++)
		r->sorted[i] = i;
	/* strcmp order is code point order for these ASCII names: the seed's
	 * sort_keys order. */
	sort_registry = r;
	qsort(r->sorted, r->n, sizeof(*r->sorted), by_name);
	sort_registry = NULL;
}

size_t
registry_count(const struct registry *r)
{
	return r->n;
}

const struct check *
registry_at(const struct registry *r, uint32_t id)
{
	return &r->checks[id];
}

/* Python's str.strip() white space, as far as ASCII goes. */
static int
is_space(char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f);
}

static void
mark_defaults(const struct registry *r, uint8_t *mark)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->checks[i].in_defaults)
			mark[i] = 1;
}

/*
 * Sets mark[id] to `to` for each check a ?checks= style value names
 * ("_defaults": every default check). Returns false after max_names parts
 * (0: no limit).
 */
static bool
mark_names(const struct registry *r, const char *value, size_t len, size_t max_names,
           uint8_t *mark, uint8_t to)
{
	size_t pos = 0, parts = 0;

	while (pos <= len && len > 0) {
		const char *part = value + pos;
		const char *comma = memchr(part, ',', len - pos);
		size_t plen = comma ? (size_t)(comma - part) : len - pos;

		pos += plen + 1;
		if (max_names != 0 && ++parts > max_names)
			return false;
		while (plen > 0 && is_space(part[0])) {
			part++;
			plen--;
		}
		while (plen > 0 && is_space(part[plen - 1]))
			plen--;
		if (plen == 9 && memcmp(part, "_defaults", 9) == 0) {
			for (size_t i = 0; i < r->n; i++)
				if (r->checks[i].in_defaults)
					mark[i] = to;
		} else {
			int id = registry_find(r, part, plen);
			if (id != -1)
				mark[id] = to;
		}
	}
	return true;
}

size_t
registry_select(const struct registry *r, bool present, const char *value, size_t len,
                size_t max_names, uint8_t *mark, uint32_t *ids, bool *truncated)
{
	size_t n = 0;

	*truncated = false;
	memset(mark, 0, r->n);
	if (!present)
		mark_defaults(r, mark);
	else
		*truncated = !mark_names(r, value, len, max_names, mark, 1);
	for (size_t i = 0; i < r->n; i++)
		if (mark[r->sorted[i]])
			ids[n++] = r->sorted[i];
	return n;
}

size_t
registry_exclude(const struct registry *r, const char *value, size_t len, size_t max_names,
                 uint8_t *mark, uint32_t *ids, size_t n, bool *truncated)
{
	size_t kept = 0;

	memset(mark, 0, r->n);
	for (size_t i = 0; i < n; i++)
		mark[ids[i]] = 1;
	*truncated = !mark_names(r, value, len, max_names, mark, 0);
	for (size_t i = 0; i < n; i++)
		if (mark[ids[i]])
			ids[kept++] = ids[i];
	return kept;
}
