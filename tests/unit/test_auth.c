/* Unit tests: secret comparison and the Bearer scheme. */
#include "auth.h"
#include "testing.h"

DEF_TEST(equal_only_when_identical)
{
	EXPECT_TRUE(auth_equal("s3cret", 6, "s3cret", 6));
	EXPECT_TRUE(!auth_equal("s3creT", 6, "s3cret", 6));
	EXPECT_TRUE(!auth_equal("s3cre", 5, "s3cret", 6));
	EXPECT_TRUE(!auth_equal("s3crett", 7, "s3cret", 6));
	EXPECT_TRUE(!auth_equal("", 0, "s3cret", 6));
	/* a guess padded with NULs must not match a shorter prefix */
	EXPECT_TRUE(!auth_equal("s3cret\0", 7, "s3cret", 6));
	EXPECT_TRUE(!auth_equal("s3c\0et", 6, "s3cret", 6));
	return 0;
}

DEF_TEST(bearer_parsed)
{
	size_t len = 0;
	const char *t;

	t = auth_bearer("Bearer abc", &len);
	EXPECT_TRUE(t != NULL && len == 3 && memcmp(t, "abc", 3) == 0);
	t = auth_bearer("bearer   abc  ", &len);
	EXPECT_TRUE(t != NULL && len == 3 && memcmp(t, "abc", 3) == 0);
	EXPECT_TRUE(auth_bearer("Basic abc", &len) == NULL);
	EXPECT_TRUE(auth_bearer("Bearer", &len) == NULL);
	EXPECT_TRUE(auth_bearer("Bearer   ", &len) == NULL);
	EXPECT_TRUE(auth_bearer("Bearerabc", &len) == NULL);
	EXPECT_TRUE(auth_bearer(NULL, &len) == NULL);
	return 0;
}

int
main(void)
{
	RUN_TEST(equal_only_when_identical);
	RUN_TEST(bearer_parsed);
	END_TEST;
}
