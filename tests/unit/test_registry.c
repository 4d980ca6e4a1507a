/* Unit tests: check names, registration, and the seed's ?checks= rules. */
#include "registry.h"
#include "testing.h"

static enum healthd_status
run_ok(void *state, struct healthd_report *report)
{
	(void)state;
	(void)report;
	return HEALTHD_OK;
}

/* Registers "true" (not default), "zeta" and "alpha" (defaults), "false". */
static struct registry *
make_registry(void)
{
	static const struct {
		const char *name;
		bool defaults;
	} defs[] = {{"true", false}, {"zeta", true}, {"alpha", true}, {"false", false}};
	struct registry *r = registry_new();
	char err[256];

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		struct check c = {.run = run_ok, .in_defaults = defs[i].defaults, .origin = "test"};
		strcpy(c.name, defs[i].name);
		if (registry_add(r, &c, err, sizeof(err)) != (int)i)
			abort();
	}
	registry_seal(r);
	return r;
}

/* Selects with value (NULL: parameter absent) and writes names "a,b" to out. */
static size_t
select_names(struct registry *r, const char *value, char *out, size_t outlen)
{
	uint8_t mark[16];
	uint32_t ids[16];
	bool truncated;
	size_t n;

	n = registry_select(r, value != NULL, value, value ? strlen(value) : 0, 0, mark, ids,
	                    &truncated);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strncat(out, registry_at(r, ids[i])->name, outlen - strlen(out) - 1);
		if (i + 1 < n)
			strncat(out, ",", outlen - strlen(out) - 1);
	}
	return n;
}

DEF_TEST(missing_selects_defaults_sorted)
{
	struct registry *r = make_registry();
	char out[256];

	EXPECT_EQ_INT(2, select_names(r, NULL, out, sizeof(out)));
	EXPECT_EQ_STR("alpha,zeta", out);
	registry_free(r);
	return 0;
}

DEF_TEST(defaults_keyword)
{
	struct registry *r = make_registry();
	char out[256];

	select_names(r, "_defaults", out, sizeof(out));
	EXPECT_EQ_STR("alpha,zeta", out);
	select_names(r, "true,_defaults", out, sizeof(out));
	EXPECT_EQ_STR("alpha,true,zeta", out);
	registry_free(r);
	return 0;
}

DEF_TEST(names_trimmed_unknown_ignored_duplicates_collapse)
{
	struct registry *r = make_registry();
	char out[256];

	select_names(r, " true ,\tfalse\n,nope,true,TRUE", out, sizeof(out));
	EXPECT_EQ_STR("false,true", out);
	registry_free(r);
	return 0;
}

DEF_TEST(empty_value_selects_nothing)
{
	struct registry *r = make_registry();
	char out[256];

	EXPECT_EQ_INT(0, select_names(r, "", out, sizeof(out)));
	EXPECT_EQ_INT(0, select_names(r, ",,, ,", out, sizeof(out)));
	EXPECT_EQ_INT(0, select_names(r, "_default", out, sizeof(out)));
	registry_free(r);
	return 0;
}

DEF_TEST(nul_bytes_never_match)
{
	struct registry *r = make_registry();
	uint8_t mark[16];
	uint32_t ids[16];
	bool truncated;

	EXPECT_EQ_INT(0, registry_select(r, true, "true\0", 5, 0, mark, ids, &truncated));
	EXPECT_EQ_INT(0, registry_select(r, true, "tr\0ue", 5, 0, mark, ids, &truncated));
	EXPECT_EQ_INT(-1, registry_find(r, "true\0x", 6));
	EXPECT_EQ_INT(0, registry_find(r, "true", 4));
	registry_free(r);
	return 0;
}

DEF_TEST(max_names_truncates)
{
	struct registry *r = make_registry();
	uint8_t mark[16];
	uint32_t ids[16];
	bool truncated;
	const char *v = "true,false,alpha";

	EXPECT_EQ_INT(3, registry_select(r, true, v, strlen(v), 3, mark, ids, &truncated));
	EXPECT_TRUE(!truncated);
	registry_select(r, true, v, strlen(v), 2, mark, ids, &truncated);
	EXPECT_TRUE(truncated);
	registry_free(r);
	return 0;
}

/* ?exclude= after a selection: same splitting, unknown ignored, order kept. */
DEF_TEST(exclude_after_select)
{
	struct registry *r = make_registry();
	const char *all = "true,false,zeta,alpha";
	uint8_t mark[16];
	uint32_t ids[16];
	bool truncated;
	size_t n;

	n = registry_select(r, true, all, strlen(all), 0, mark, ids, &truncated);
	EXPECT_EQ_INT(4, n);
	n = registry_exclude(r, " zeta ,nope,,true", 17, 0, mark, ids, n, &truncated);
	EXPECT_TRUE(!truncated);
	EXPECT_EQ_INT(2, n);
	EXPECT_EQ_STR("alpha", registry_at(r, ids[0])->name);
	EXPECT_EQ_STR("false", registry_at(r, ids[1])->name);
	/* _defaults takes the default checks out; an empty value takes nothing */
	n = registry_select(r, true, all, strlen(all), 0, mark, ids, &truncated);
	n = registry_exclude(r, "_defaults", 9, 0, mark, ids, n, &truncated);
	EXPECT_EQ_INT(2, n);
	EXPECT_EQ_STR("false", registry_at(r, ids[0])->name);
	EXPECT_EQ_STR("true", registry_at(r, ids[1])->name);
	EXPECT_EQ_INT(2, registry_exclude(r, "", 0, 0, mark, ids, n, &truncated));
	/* a name not selected stays out */
	EXPECT_EQ_INT(2, registry_exclude(r, "alpha", 5, 0, mark, ids, n, &truncated));
	EXPECT_EQ_INT(2, registry_exclude(r, "a,b,c", 5, 2, mark, ids, n, &truncated));
	EXPECT_TRUE(truncated);
	registry_free(r);
	return 0;
}

DEF_TEST(names_validated)
{
	EXPECT_TRUE(check_name_error("db") == NULL);
	EXPECT_TRUE(check_name_error("api.v2:primary-1") == NULL);
	EXPECT_TRUE(check_name_error("") != NULL);
	EXPECT_TRUE(check_name_error("_defaults") != NULL);
	EXPECT_TRUE(check_name_error("a,b") != NULL);
	EXPECT_TRUE(check_name_error("a b") != NULL);
	EXPECT_TRUE(check_name_error("caf\xc3\xa9") != NULL);
	EXPECT_TRUE(check_name_error("12345678901234567890123456789012345678901234567890123456789012345") != NULL);
	return 0;
}

DEF_TEST(duplicate_refused_with_origin)
{
	struct registry *r = make_registry();
	struct check c = {.run = run_ok, .origin = "other.so"};
	char err[256];

	strcpy(c.name, "zeta");
	EXPECT_EQ_INT(-1, registry_add(r, &c, err, sizeof(err)));
	EXPECT_CONTAINS("\"zeta\" is already taken (by test)", err);
	EXPECT_EQ_INT(4, registry_count(r));
	registry_free(r);
	return 0;
}

DEF_TEST(many_checks_hash_lookup)
{
	struct registry *r = registry_new();
	char err[256];

	for (int i = 0; i < 500; i++) {
		struct check c = {.run = run_ok, .origin = "t"};
		snprintf(c.name, sizeof(c.name), "check-%d", i);
		EXPECT_EQ_INT(i, registry_add(r, &c, err, sizeof(err)));
	}
	registry_seal(r);
	EXPECT_EQ_INT(499, registry_find(r, "check-499", 9));
	EXPECT_EQ_INT(0, registry_find(r, "check-0", 7));
	EXPECT_EQ_INT(-1, registry_find(r, "check-500", 9));
	registry_free(r);
	return 0;
}

int
main(void)
{
	RUN_TEST(missing_selects_defaults_sorted);
	RUN_TEST(defaults_keyword);
	RUN_TEST(names_trimmed_unknown_ignored_duplicates_collapse);
	RUN_TEST(empty_value_selects_nothing);
	RUN_TEST(nul_bytes_never_match);
	RUN_TEST(max_names_truncates);
	RUN_TEST(exclude_after_select);
	RUN_TEST(names_validated);
	RUN_TEST(duplicate_refused_with_origin);
	RUN_TEST(many_checks_hash_lookup);
	END_TEST;
}
