/* Unit tests: the Accept header parser (RFC 9110 media ranges and q-values). */
#include "accept_header.h"
#include "testing.h"

static int
hj(const char *header, enum accept_match *m)
{
	return accept_weight(header, "application", "health+json", m);
}

DEF_TEST(absent_or_unmatched)
{
	enum accept_match m;

	EXPECT_EQ_INT(-1, hj(NULL, &m));
	EXPECT_EQ_INT(ACCEPT_NONE, m);
	EXPECT_EQ_INT(-1, hj("", &m));
	EXPECT_EQ_INT(-1, hj("text/html, application/json", &m));
	EXPECT_EQ_INT(ACCEPT_NONE, m);
	/* a substring is not a match */
	EXPECT_EQ_INT(-1, hj("application/health+jsonx", NULL));
	EXPECT_EQ_INT(-1, hj("xapplication/health+json", NULL));
	return 0;
}

DEF_TEST(case_insensitive)
{
	enum accept_match m;

	EXPECT_EQ_INT(1000, hj("APPLICATION/HEALTH+JSON", &m));
	EXPECT_EQ_INT(ACCEPT_EXACT, m);
	EXPECT_EQ_INT(500, hj("Application/Health+Json; Q=0.5", &m));
	return 0;
}

DEF_TEST(q_values)
{
	EXPECT_EQ_INT(0, hj("application/health+json;q=0", NULL));
	EXPECT_EQ_INT(0, hj("application/health+json ; q=0.000", NULL));
	EXPECT_EQ_INT(0, hj("application/health+json;q=0.", NULL));
	EXPECT_EQ_INT(1000, hj("application/health+json;q=1.000", NULL));
	EXPECT_EQ_INT(123, hj("application/health+json;q=0.123", NULL));
	EXPECT_EQ_INT(800, hj("application/health+json;charset=utf-8;q=0.8", NULL));
	EXPECT_EQ_INT(800, hj("application/health+json;x=\"a,b;q=0\";q=0.8", NULL));
	/* malformed weights make the element unparseable: skipped */
	EXPECT_EQ_INT(-1, hj("application/health+json;q=1.5", NULL));
	EXPECT_EQ_INT(-1, hj("application/health+json;q=0.1234", NULL));
	EXPECT_EQ_INT(-1, hj("application/health+json;q=", NULL));
	EXPECT_EQ_INT(-1, hj("application/health+json;q=-1", NULL));
	EXPECT_EQ_INT(-1, hj("application/health+json;q=2", NULL));
	EXPECT_EQ_INT(-1, hj("application/health+json;x=\"open", NULL));
	EXPECT_EQ_INT(-1, hj("application/health+json garbage", NULL));
	/* ... and the next element still counts */
	EXPECT_EQ_INT(300, hj("application/health+json;q=9, */*;q=0.3", NULL));
	return 0;
}

DEF_TEST(most_specific_wins)
{
	enum accept_match m;

	EXPECT_EQ_INT(0, hj("*/*, application/health+json;q=0", &m));
	EXPECT_EQ_INT(ACCEPT_EXACT, m);
	EXPECT_EQ_INT(700, hj("application/*;q=0.7, */*;q=0.1", &m));
	EXPECT_EQ_INT(ACCEPT_TYPE, m);
	EXPECT_EQ_INT(100, hj("text/*, */*;q=0.1", &m));
	EXPECT_EQ_INT(ACCEPT_ANY, m);
	/* equally specific: the first */
	EXPECT_EQ_INT(200, hj("application/health+json;q=0.2,application/health+json", NULL));
	EXPECT_EQ_INT(1000, hj(" ,, application/health+json ,", NULL));
	EXPECT_EQ_INT(1000, accept_weight("application/json, application/health+json;q=0",
	                                  "application", "json", NULL));
	return 0;
}

int
main(void)
{
	RUN_TEST(absent_or_unmatched);
	RUN_TEST(case_insensitive);
	RUN_TEST(q_values);
	RUN_TEST(most_specific_wins);
	END_TEST;
}
