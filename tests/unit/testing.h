/*
 * testing.h - a small TAP test harness (after collectd's testing.h).
 *
 *     DEF_TEST(selection_trims) { ...; EXPECT_EQ_INT(2, n); return 0; }
 *     int main(void) { RUN_TEST(selection_trims); END_TEST; }
 *
 * Every EXPECT_* that fails prints a diagnostic and fails the current test;
 * the process exits non-zero if any test failed.
 */
#ifndef HEALTHD_TESTING_H
#define HEALTHD_TESTING_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail_count__;
static int check_count__;
static int test_count__;

#define DEF_TEST(func) static int test_##func(void)

#define RUN_TEST(func)                                                                     \
	do {                                                                               \
		int before__ = fail_count__;                                               \
		int status__ = test_##func();                                              \
		test_count__++;                                                            \
		printf("%s %d - %s\n", (status__ == 0 && fail_count__ == before__) ? "ok" : "not ok", \
		       test_count__, #func);                                               \
		if (status__ != 0 && fail_count__ == before__)                             \
			fail_count__++;                                                    \
	} while (0)

#define END_TEST                                                                           \
	do {                                                                               \
		printf("1..%d\n", test_count__);                                           \
		printf("# %d checks, %d failed\n", check_count__, fail_count__);           \
		return fail_count__ ? 1 : 0;                                               \
	} while (0)

#define FAIL__(...)                                                                        \
	do {                                                                               \
		printf("# %s:%d: ", __FILE__, __LINE__);                                   \
		printf(__VA_ARGS__);                                                       \
		printf("\n");                                                              \
		fail_count__++;                                                            \
	} while (0)

#define EXPECT_TRUE(actual)                                                                \
	do {                                                                               \
		check_count__++;                                                           \
		if (!(actual))                                                             \
			FAIL__("expected true: %s", #actual);                              \
	} while (0)

#define EXPECT_EQ_INT(expect, actual)                                                      \
	do {                                                                               \
		long long e__ = (long long)(expect), a__ = (long long)(actual);            \
		check_count__++;                                                           \
		if (e__ != a__)                                                            \
			FAIL__("%s: expected %lld, got %lld", #actual, e__, a__);          \
	} while (0)

#define EXPECT_EQ_STR(expect, actual)                                                      \
	do {                                                                               \
		const char *e__ = (expect), *a__ = (actual);                               \
		check_count__++;                                                           \
		if (a__ == NULL || strcmp(e__, a__) != 0)                                  \
			FAIL__("%s: expected \"%s\", got \"%s\"", #actual, e__,            \
			       a__ ? a__ : "(null)");                                      \
	} while (0)

#define EXPECT_CONTAINS(needle, haystack)                                                  \
	do {                                                                               \
		const char *n__ = (needle), *h__ = (haystack);                             \
		check_count__++;                                                           \
		if (h__ == NULL || strstr(h__, n__) == NULL)                               \
			FAIL__("%s: expected to contain \"%s\", got \"%s\"", #haystack,    \
			       n__, h__ ? h__ : "(null)");                                 \
	} while (0)

#endif
