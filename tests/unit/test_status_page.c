/* Unit tests: the P/status page: escaping of plugin text, the timeline's
 * rects, groups, and the states-only mode. */
#include "status_page.h"
#include "testing.h"

#define T0  1700000000000LL
#define MIN (60 * 1000LL)

static const char hostile[] = "<script>alert(1)</script> & \"quoted\" 'single'";
static struct history_snapshot snap; /* large: not on the stack */

/* How often needle occurs in hay. */
static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* db: OK from T0, CRITICAL from T0+60m, OK from T0+90m; now T0+120m. */
static struct history *
make_history(void)
{
	static const char *const names[] = {"db"};
	struct history *h = history_new(names, 1);

	history_record(h, 0, T0, 0, 10, "fine", NULL);
	history_record(h, 0, T0 + 60 * MIN, 2, 2000, hostile, NULL);
	history_record(h, 0, T0 + 90 * MIN, 0, 30, "fine again", NULL);
	history_snapshot(h, 0, &snap);
	return h;
}

static int
render(const struct status_check *c, size_t n, bool messages, struct status_buf *b)
{
	struct status_page_opts o = {.now_ms = T0 + 120 * MIN, .messages = messages,
	                             .refresh_s = 30};

	return status_page_render(c, n, &o, b);
}

DEF_TEST(hostile_message_is_escaped)
{
	struct status_check c = {.name = "x<b>", .state = 2, .since_ms = T0, .message = hostile,
	                         .suppressed_by = "gw\"><script>"};
	struct status_buf b = {0};

	EXPECT_EQ_INT(0, render(&c, 1, true, &b));
	EXPECT_TRUE(strstr(b.data, "<script") == NULL);
	EXPECT_TRUE(strstr(b.data, "x<b>") == NULL);
	EXPECT_CONTAINS("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; "
	                "&#39;single&#39;", b.data);
	EXPECT_CONTAINS("data-check=\"x&lt;b&gt;\"", b.data);
	EXPECT_CONTAINS("suppressed by gw&quot;&gt;&lt;script&gt;", b.data);
	EXPECT_EQ_INT(b.len, strlen(b.data));
	status_buf_free(&b);
	EXPECT_TRUE(b.data == NULL);
	return 0;
}

DEF_TEST(a_rect_per_state_span)
{
	struct history *h = make_history();
	struct status_check c = {.name = "db", .state = 0, .since_ms = T0 + 90 * MIN,
	                         .message = "fine again", .history = &snap};
	struct status_buf b = {0};

	EXPECT_EQ_INT(0, render(&c, 1, true, &b));
	/* the window is [T0-22h, T0+2h]: OK starts at minute 1320; now is on the next day */
	EXPECT_EQ_INT(2, count(b.data, "<rect class=ok "));
	EXPECT_EQ_INT(1, count(b.data, "<rect class=fail "));
	EXPECT_CONTAINS("<rect class=ok x=1320 width=60><title>OK 2023-11-14 22:13:20\u201323:13:20, "
	                "1 result</title></rect>", b.data);
	EXPECT_CONTAINS("<rect class=fail x=1380 width=30><title>CRITICAL 2023-11-14 "
	                "23:13:20\u201323:43:20, 1 result</title></rect>", b.data);
	EXPECT_CONTAINS("<rect class=ok x=1410 width=30><title>OK 2023-11-14 23:43:20\u2013"
	                "2023-11-15 00:13:20, 1 result</title></rect>", b.data);
	EXPECT_EQ_INT(3, count(b.data, "<rect ")); /* the unknown before: the svg's background */
	EXPECT_CONTAINS("db, last 24 hours (UTC): 3 spans of state (grey: no data)</title>", b.data);
	/* sparkline: 3 points, max 2000 ms at the top, whole pixels, relative steps */
	EXPECT_CONTAINS("viewBox=\"0 0 2 20\" preserveAspectRatio=none role=img><title>duration of "
	                "the last 3 runs: 10 to 2000 ms, last 30 ms</title><path d=\"M0 19l1-18 1 "
	                "18\"/></svg>", b.data);
	/* availability: 1 h = 30 of 60 min; 24 h and 7 d know 120 min, 90 passing */
	EXPECT_CONTAINS("50.00\u2009% / 75.00\u2009% / 75.00\u2009%", b.data);
	EXPECT_CONTAINS("<span class=\"st c-ok\">OK</span>", b.data);
	EXPECT_CONTAINS("<time datetime=\"2023-11-14T23:43:20Z\">", b.data);
	EXPECT_CONTAINS("<meta http-equiv=\"refresh\" content=\"30\">", b.data);
	EXPECT_CONTAINS("prefers-color-scheme:dark", b.data);
	EXPECT_TRUE(strstr(b.data, "<script") == NULL && strstr(b.data, "http://") == NULL &&
	            strstr(b.data, "https://") == NULL); /* self-contained */
	status_buf_free(&b);
	history_free(h);
	return 0;
}

/* Results merge into one rect per span, its tooltip counting them: exactly
 * while the kept results reach back to its start, as a lower bound after. */
DEF_TEST(a_span_counts_its_results)
{
	static const char *const names[] = {"a", "b", "c"};
	struct history *h = history_new(names, 3);
	struct status_check c = {.name = "a", .state = 2, .history = &snap};
	struct status_buf b = {0};
	struct status_page_opts o = {.now_ms = T0 + 80 * MIN, .messages = true};

	for (int k = 0; k < 13; k++) /* a: 10 OK, then 3 CRITICAL, a minute apart */
		history_record(h, 0, T0 + k * MIN, k < 10 ? 0 : 2, 10, NULL, NULL);
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(0, status_page_render(&c, 1, &o, &b));
	EXPECT_EQ_INT(2, count(b.data, "<rect "));
	EXPECT_CONTAINS("<rect class=ok x=1360 width=10><title>OK 22:13:20\u201322:23:20, "
	                "10 results</title></rect><rect class=fail x=1370 width=70><title>"
	                "CRITICAL 22:23:20\u201323:33:20, 3 results</title></rect></svg>", b.data);
	status_buf_free(&b);

	for (int k = 0; k < 73; k++) /* b: 70 OK, 3 CRITICAL; 60 kept, from the 14th on */
		history_record(h, 1, T0 + k * MIN, k < 70 ? 0 : 2, 10, NULL, NULL);
	history_snapshot(h, 1, &snap);
	c.name = "b";
	EXPECT_EQ_INT(0, status_page_render(&c, 1, &o, &b));
	EXPECT_EQ_INT(2, count(b.data, "<rect "));
	EXPECT_CONTAINS("<title>OK 22:13:20\u201323:23:20, 57+ results</title>", b.data);
	EXPECT_CONTAINS("<title>CRITICAL 23:23:20\u201323:33:20, 3 results</title>", b.data);
	status_buf_free(&b);

	/* c: 10 OK then 3 CRITICAL, the 10th OK in the millisecond of the change */
	for (int k = 0; k < 13; k++)
		history_record(h, 2, T0 + (k < 10 ? k : k - 1) * MIN, k < 10 ? 0 : 2, 10, NULL, NULL);
	history_snapshot(h, 2, &snap);
	c.name = "c";
	EXPECT_EQ_INT(0, status_page_render(&c, 1, &o, &b));
	EXPECT_EQ_INT(2, count(b.data, "<rect "));
	EXPECT_CONTAINS(", 10 results</title>", b.data);
	EXPECT_CONTAINS(", 3 results</title>", b.data);
	status_buf_free(&b);
	history_free(h);

	/* the same all in one millisecond: the OK span is too short to draw,
	 * and its results are not the CRITICAL span's */
	h = history_new(names, 3);
	for (int k = 0; k < 13; k++)
		history_record(h, 2, T0 + 5 * MIN, k < 10 ? 0 : 2, 10, NULL, NULL);
	history_snapshot(h, 2, &snap);
	EXPECT_EQ_INT(0, status_page_render(&c, 1, &o, &b));
	EXPECT_EQ_INT(1, count(b.data, "<rect "));
	EXPECT_CONTAINS(", 3 results</title>", b.data);
	status_buf_free(&b);
	history_free(h);
	return 0;
}

DEF_TEST(no_messages_mode_omits_messages)
{
	struct history *h = make_history();
	struct status_check c = {.name = "db", .state = 2, .since_ms = T0 + 60 * MIN,
	                         .message = "secret-ish detail", .history = &snap};
	struct status_buf b = {0};

	EXPECT_EQ_INT(0, render(&c, 1, false, &b));
	EXPECT_TRUE(strstr(b.data, "secret-ish") == NULL);
	EXPECT_TRUE(strstr(b.data, "alert") == NULL);       /* nor the history's messages */
	EXPECT_TRUE(strstr(b.data, "fine again") == NULL);
	EXPECT_TRUE(strstr(b.data, "Last message") == NULL);
	EXPECT_CONTAINS("data-state=fail", b.data);         /* the state stays */
	EXPECT_CONTAINS("CRITICAL", b.data);
	status_buf_free(&b);
	EXPECT_EQ_INT(0, render(&c, 1, true, &b));
	EXPECT_CONTAINS("<td class=msg>secret-ish detail</td>", b.data);
	status_buf_free(&b);
	history_free(h);
	return 0;
}

DEF_TEST(groups_and_badges)
{
	static const char *const web[] = {"web"}, *const both[] = {"web", "db"};
	struct status_check c[] = {
		{.name = "alone", .state = -1},
		{.name = "api", .groups = web, .ngroups = 1, .state = 1, .flapping = true},
		{.name = "pg", .groups = both, .ngroups = 2, .state = 3, .suppressed_by = "gw"},
	};
	struct status_buf b = {0};
	const char *web_at, *db_at, *other_at;

	EXPECT_EQ_INT(0, render(c, 3, true, &b));
	web_at = strstr(b.data, "<h2>web ");
	db_at = strstr(b.data, "<h2>db ");
	other_at = strstr(b.data, "<h2>Checks ");
	EXPECT_TRUE(web_at != NULL && db_at != NULL && other_at != NULL);
	EXPECT_TRUE(web_at < db_at && db_at < other_at);
	EXPECT_EQ_INT(1, count(b.data, "<h2>web "));
	EXPECT_EQ_INT(2, count(b.data, "data-check=\"pg\"")); /* in both groups */
	EXPECT_EQ_INT(1, count(b.data, "data-check=\"alone\""));
	EXPECT_CONTAINS("<span class=\"st c-none\">PENDING</span>", b.data);
	EXPECT_CONTAINS("<span class=\"st c-warn\">WARNING</span><span class=\"badge\"", b.data);
	EXPECT_EQ_INT(1, count(b.data, ">flapping</span>"));
	EXPECT_EQ_INT(2, count(b.data, "suppressed by gw</span>"));
	EXPECT_CONTAINS("3 checks: 1 passing, 2 not.", b.data);
	EXPECT_CONTAINS("web <span class=\"badge\">2 checks, 1 not passing</span>", b.data);
	status_buf_free(&b);
	return 0;
}

DEF_TEST(escape_helper)
{
	struct status_buf b = {0};

	status_html_escape(&b, "a&b<c>d\"e'f");
	EXPECT_EQ_STR("a&amp;b&lt;c&gt;d&quot;e&#39;f", b.data);
	status_html_escape(&b, "");
	EXPECT_EQ_INT(strlen("a&amp;b&lt;c&gt;d&quot;e&#39;f"), b.len);
	status_buf_free(&b);
	return 0;
}

int
main(void)
{
	RUN_TEST(hostile_message_is_escaped);
	RUN_TEST(a_rect_per_state_span);
	RUN_TEST(a_span_counts_its_results);
	RUN_TEST(no_messages_mode_omits_messages);
	RUN_TEST(groups_and_badges);
	RUN_TEST(escape_helper);
	END_TEST;
}
