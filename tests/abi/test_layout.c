/*
 * test_layout.c - the current plugin.h against the frozen 1.0 header, entry
 * by entry: every 1.0 member keeps its offset and size, every constant its
 * value, the symbol its name; struct sizes and the minor may only grow.
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
current(const char *name)
{
	for (size_t i = 0; i < abi_current_count; i++)
		if (strcmp(abi_current[i].name, name) == 0)
			return &abi_current[i];
	return NULL;
}

DEF_TEST(every_1_0_entry_holds)
{
	for (size_t i = 0; i < abi_frozen_1_0_count; i++) {
		const struct abi_entry *f = &abi_frozen_1_0[i], *c = current(f->name);

		check_count__++;
		if (c == NULL)
			FAIL__("%s: in 1.0, missing now", f->name);
		else if (may_grow(f->name) ? c->value < f->value : c->value != f->value)
			FAIL__("%s: %lld in 1.0, %lld now", f->name, f->value, c->value);
		else
			printf("# %-45s %lld\n", f->name, c->value);
	}
	return 0;
}

DEF_TEST(same_symbol)
{
	EXPECT_EQ_STR(abi_frozen_1_0_symbol, abi_current_symbol);
	EXPECT_EQ_STR("healthd_plugin_v1", abi_current_symbol);
	return 0;
}

DEF_TEST(tables_list_the_same_entries)
{
	EXPECT_EQ_INT(abi_frozen_1_0_count, abi_current_count);
	return 0;
}

int
main(void)
{
	RUN_TEST(every_1_0_entry_holds);
	RUN_TEST(same_symbol);
	RUN_TEST(tables_list_the_same_entries);
	END_TEST;
}
