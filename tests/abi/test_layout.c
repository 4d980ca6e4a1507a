/*
 * test_layout.c - the current plugin.h against the frozen 1.0 and 1.1
 * headers, entry by entry: every released member keeps its offset and size,
 * every constant its value, the symbol its name; struct sizes and the minor
 * may only grow.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../unit/testing.h"
#include "layout.h"

/* May grow in a later minor (members added at the end). */
static bool
may_grow(const char *name)
{
	return strncmp(name, "sizeof(struct ", 14) == 0 || strcmp(name, "HEALTHD_ABI_MINOR") == 0;
}

static const struct abi_entry *
find(const struct abi_entry *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

/* Every entry of a frozen table against the same entry built from the current header. */
static int
entries_hold(const char *minor, const struct abi_entry *frozen, size_t nfrozen,
             const struct abi_entry *cur, size_t ncur, int *check_count, int *fail_count)
{
	for (size_t i = 0; i < nfrozen; i++) {
		const struct abi_entry *f = &frozen[i], *c = find(cur, ncur, f->name);

		(*check_count)++;
		if (c == NULL) {
			printf("# FAIL %s: in %s, missing now\n", f->name, minor);
			(*fail_count)++;
		} else if (may_grow(f->name) ? c->value < f->value : c->value != f->value) {
			printf("# FAIL %s: %lld in %s, %lld now\n", f->name, f->value, minor,
			       c->value);
			(*fail_count)++;
		} else {
			printf("# %s %-45s %lld\n", minor, f->name, c->value);
		}
	}
	return 0;
}

DEF_TEST(every_1_0_entry_holds)
{
	return entries_hold("1.0", abi_frozen_1_0, abi_frozen_1_0_count, abi_current,
	                    abi_current_count, &check_count__, &fail_count__);
}

DEF_TEST(every_1_1_entry_holds)
{
	return entries_hold("1.1", abi_frozen_1_1, abi_frozen_1_1_count, abi_current_1_1,
	                    abi_current_1_1_count, &check_count__, &fail_count__);
}

DEF_TEST(same_symbol)
{
	EXPECT_EQ_STR(abi_frozen_1_0_symbol, abi_current_symbol);
	EXPECT_EQ_STR(abi_frozen_1_1_symbol, abi_current_symbol);
	EXPECT_EQ_STR("healthd_plugin_v1", abi_current_symbol);
	return 0;
}

DEF_TEST(tables_list_the_same_entries)
{
	EXPECT_EQ_INT(abi_frozen_1_0_count, abi_current_count);
	EXPECT_EQ_INT(abi_frozen_1_1_count, abi_current_1_1_count);
	return 0;
}

int
main(void)
{
	RUN_TEST(every_1_0_entry_holds);
	RUN_TEST(every_1_1_entry_holds);
	RUN_TEST(same_symbol);
	RUN_TEST(tables_list_the_same_entries);
	END_TEST;
}
