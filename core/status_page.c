/* status_page.c - the HTML of GET P/status (see status_page.h). */
#include "status_page.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMELINE_UNITS 1440 /* viewBox width: one unit per minute of 24 h */
#define SPARK_W 100
#define SPARK_H 20

/* state                 word        css class */
static const struct {
	const char *word, *css;
} states[] = {
	{"OK", "ok"},
	{"WARNING", "warn"},
	{"CRITICAL", "fail"},
	{"UNKNOWN", "unk"},
};

static const char style[] =
	":root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--mute:#59636e;--line:#d1d9e0;"
	"--ok:#1a7f37;--warn:#9a6700;--fail:#cf222e;--unk:#6e7781;--none:#e6eaef}"
	"@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mute:#9198a1;"
	"--line:#3d444d;--ok:#3fb950;--warn:#d29922;--fail:#f85149;--unk:#9198a1;--none:#262c36}}"
	"body{font:14px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--fg);"
	"max-width:80rem;margin:1rem auto;padding:0 1rem}"
	"h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}"
	"table{border-collapse:collapse;width:100%}"
	"th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);"
	"vertical-align:middle}thead th{color:var(--mute);font-weight:600;font-size:12px}"
	".st{font-weight:600;white-space:nowrap}.st::before{content:'\\25CF\\00A0'}"
	".c-ok{color:var(--ok)}.c-warn{color:var(--warn)}.c-fail{color:var(--fail)}"
	".c-unk,.c-none{color:var(--unk)}"
	".f-ok{fill:var(--ok)}.f-warn{fill:var(--warn)}.f-fail{fill:var(--fail)}"
	".f-unk{fill:var(--unk)}.f-none{fill:var(--none)}"
	".badge{display:inline-block;border:1px solid currentColor;border-radius:.7rem;"
	"padding:0 .45rem;margin-left:.3rem;font-size:12px;color:var(--mute)}"
	".msg{color:var(--mute);word-break:break-word;font-size:13px;max-width:24rem}"
	"svg.tl{width:100%;min-width:10rem;height:14px;display:block}"
	"svg.sp{width:7rem;height:20px;display:block;color:var(--fg)}"
	".num{font-variant-numeric:tabular-nums;white-space:nowrap}";

static int buf_add(struct status_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void buf_put(struct status_buf *b, const char *s, size_t n);
static void wall_time(int64_t ms, char *out, size_t len, bool iso);
static void render_group(struct status_buf *b, const char *group, const struct status_check *c,
                         size_t n, const struct status_page_opts *o);
static void render_check(struct status_buf *b, const struct status_check *c,
                         const struct status_page_opts *o);
static void render_timeline(struct status_buf *b, const struct status_check *c, int64_t now_ms);
static void render_sparkline(struct status_buf *b, const struct status_check *c);
static void render_availability(struct status_buf *b, const struct status_check *c,
                                int64_t now_ms);
static bool in_group(const struct status_check *c, const char *group);
static const char *state_word(int st);
static const char *state_css(int st);

void
status_buf_free(struct status_buf *b)
{
	free(b->data);
	*b = (struct status_buf){0};
}

int
status_page_render(const struct status_check *checks, size_t n,
                   const struct status_page_opts *o, struct status_buf *b)
{
	const char *title = o->title != NULL ? o->title : "healthd status";
	size_t failing = 0, ungrouped = 0;
	char now[40];

	for (size_t i = 0; i < n; i++) {
		failing += checks[i].state < 0 || checks[i].state > 1;
		ungrouped += checks[i].ngroups == 0;
	}
	wall_time(o->now_ms, now, sizeof(now), false);
	buf_add(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	           "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
	if (o->refresh_s > 0)
		buf_add(b, "<meta http-equiv=\"refresh\" content=\"%u\">", o->refresh_s);
	buf_add(b, "<title>");
	status_html_escape(b, title);
	buf_add(b, "</title><style>%s</style></head>\n<body><header><h1>", style);
	status_html_escape(b, title);
	buf_add(b, "</h1><p>%zu checks: %zu passing, %zu not. As of <time datetime=\"", n,
	        n - failing, failing);
	wall_time(o->now_ms, now, sizeof(now), true);
	buf_add(b, "%s\">", now);
	wall_time(o->now_ms, now, sizeof(now), false);
	buf_add(b, "%s</time>.</p></header>\n<main>\n", now);

	/* each group once, in the order the checks first name it */
	for (size_t i = 0; i < n; i++) {
		for (size_t g = 0; g < checks[i].ngroups; g++) {
			const char *name = checks[i].groups[g];
			bool seen = false;

			for (size_t j = 0; j < i && !seen; j++)
				seen = in_group(&checks[j], name);
			for (size_t h = 0; h < g && !seen; h++)
				seen = strcmp(checks[i].groups[h], name) == 0;
			if (!seen)
				render_group(b, name, checks + i, n - i, o);
		}
	}
	if (ungrouped > 0)
		render_group(b, NULL, checks, n, o);
	buf_add(b, "</main></body></html>\n");
	return b->oom ? -1 : 0;
}

void
status_html_escape(struct status_buf *b, const char *s)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *ent;

		switch (*s) {
		case '&': ent = "&amp;"; break;
		case '<': ent = "&lt;"; break;
		case '>': ent = "&gt;"; break;
		case '"': ent = "&quot;"; break;
		case '\'': ent = "&#39;"; break;
		default: continue;
		}
		buf_put(b, run, (size_t)(s - run));
		buf_put(b, ent, strlen(ent));
		run = s + 1;
	}
	buf_put(b, run, (size_t)(s - run));
}

/* A table of the checks in group (NULL: those in none), from c[0] on: the
 * first one named group starts its table. */
static void
render_group(struct status_buf *b, const char *group, const struct status_check *c, size_t n,
             const struct status_page_opts *o)
{
	size_t count = 0, failing = 0;

	for (size_t i = 0; i < n; i++)
		if (group != NULL ? in_group(&c[i], group) : c[i].ngroups == 0) {
			count++;
			failing += c[i].state < 0 || c[i].state > 1;
		}
	buf_add(b, "<section><h2>");
	status_html_escape(b, group != NULL ? group : "Checks");
	buf_add(b, " <span class=\"badge\">%zu checks, %zu not passing</span></h2>\n"
	           "<table><thead><tr><th scope=\"col\">Check</th><th scope=\"col\">State</th>"
	           "<th scope=\"col\">Since</th>%s<th scope=\"col\">Last 24 h</th>"
	           "<th scope=\"col\">Duration</th><th scope=\"col\">Available 1 h / 24 h / 7 d"
	           "</th></tr></thead><tbody>\n",
	        count, failing, o->messages ? "<th scope=\"col\">Last message</th>" : "");
	for (size_t i = 0; i < n; i++)
		if (group != NULL ? in_group(&c[i], group) : c[i].ngroups == 0)
			render_check(b, &c[i], o);
	buf_add(b, "</tbody></table></section>\n");
}

static void
render_check(struct status_buf *b, const struct status_check *c, const struct status_page_opts *o)
{
	char when[40];

	buf_add(b, "<tr data-check=\"");
	status_html_escape(b, c->name);
	buf_add(b, "\" data-state=\"%s\"><th scope=\"row\">", state_css(c->state));
	status_html_escape(b, c->name);
	buf_add(b, "</th><td><span class=\"st c-%s\">%s</span>", state_css(c->state),
	        state_word(c->state));
	if (c->flapping)
		buf_add(b, "<span class=\"badge\" title=\"changing state often (Nagios' weighted "
		           "percent state change)\">flapping</span>");
	if (c->suppressed_by != NULL) {
		buf_add(b, "<span class=\"badge\" title=\"a check it depends on fails\">"
		           "suppressed by ");
		status_html_escape(b, c->suppressed_by);
		buf_add(b, "</span>");
	}
	buf_add(b, "</td><td class=\"num\">");
	if (c->since_ms > 0) {
		wall_time(c->since_ms, when, sizeof(when), true);
		buf_add(b, "<time datetime=\"%s\">", when);
		wall_time(c->since_ms, when, sizeof(when), false);
		buf_add(b, "%s</time>", when);
	} else {
		buf_add(b, "&mdash;");
	}
	buf_add(b, "</td>");
	if (o->messages) {
		buf_add(b, "<td class=\"msg\">");
		status_html_escape(b, c->message != NULL ? c->message : "");
		buf_add(b, "</td>");
	}
	buf_add(b, "<td>");
	render_timeline(b, c, o->now_ms);
	buf_add(b, "</td><td>");
	render_sparkline(b, c);
	buf_add(b, "</td><td class=\"num\">");
	render_availability(b, c, o->now_ms);
	buf_add(b, "</td></tr>\n");
}

/* A grey bar for the unknown, a rect per span of one state on top of it. */
static void
render_timeline(struct status_buf *b, const struct status_check *c, int64_t now_ms)
{
	struct history_span spans[HISTORY_TRANSITIONS + 1];
	const int64_t from = now_ms - HISTORY_24H;
	size_t n = 0;
	char t0[40], t1[40];

	if (c->history != NULL)
		n = history_spans(c->history, from, now_ms, spans, HISTORY_TRANSITIONS + 1);
	buf_add(b, "<svg class=\"tl\" viewBox=\"0 0 %d 10\" preserveAspectRatio=\"none\" "
	           "role=\"img\" aria-label=\"", TIMELINE_UNITS);
	status_html_escape(b, c->name);
	buf_add(b, ", last 24 hours: %zu spans of state\"><title>", n);
	status_html_escape(b, c->name);
	buf_add(b, ", last 24 hours</title><rect class=\"f-none\" width=\"%d\" height=\"10\">"
	           "<title>no data</title></rect>", TIMELINE_UNITS);
	for (size_t k = 0; k < n; k++) {
		double x = (double)(spans[k].from_ms - from) / 60000.0;
		double w = (double)(spans[k].to_ms - spans[k].from_ms) / 60000.0;

		wall_time(spans[k].from_ms, t0, sizeof(t0), false);
		wall_time(spans[k].to_ms, t1, sizeof(t1), false);
		buf_add(b, "<rect class=\"f-%s\" x=\"%.1f\" width=\"%.1f\" height=\"10\">"
		           "<title>%s from %s to %s</title></rect>",
		        state_css(spans[k].status), x, w < 0.5 ? 0.5 : w,
		        state_word(spans[k].status), t0, t1);
	}
	buf_add(b, "</svg>");
}

/* The durations of the kept results as a polyline scaled to their maximum. */
static void
render_sparkline(struct status_buf *b, const struct status_check *c)
{
	const struct history_snapshot *s = c->history;
	uint32_t max = 1, min = UINT32_MAX;

	if (s == NULL || s->nresults < 2) {
		buf_add(b, "&mdash;");
		return;
	}
	for (uint32_t k = 0; k < s->nresults; k++) {
		if (s->results[k].duration_ms > max)
			max = s->results[k].duration_ms;
		if (s->results[k].duration_ms < min)
			min = s->results[k].duration_ms;
	}
	buf_add(b, "<svg class=\"sp\" viewBox=\"0 0 %d %d\" preserveAspectRatio=\"none\" "
	           "role=\"img\" aria-label=\"duration of the last %u runs: %u to %u ms, last %u ms\">"
	           "<title>duration of the last %u runs: %u to %u ms, last %u ms</title>"
	           "<polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" "
	           "vector-effect=\"non-scaling-stroke\" points=\"",
	        SPARK_W, SPARK_H, s->nresults, min, max, s->results[s->nresults - 1].duration_ms,
	        s->nresults, min, max, s->results[s->nresults - 1].duration_ms);
	for (uint32_t k = 0; k < s->nresults; k++)
		buf_add(b, "%s%.1f,%.1f", k ? " " : "",
		        (double)k * SPARK_W / (double)(s->nresults - 1),
		        SPARK_H - 1 - (double)s->results[k].duration_ms * (SPARK_H - 2) / max);
	buf_add(b, "\"/></svg>");
}

static void
render_availability(struct status_buf *b, const struct status_check *c, int64_t now_ms)
{
	static const int64_t windows[] = {HISTORY_1H, HISTORY_24H, HISTORY_7D};

	for (size_t k = 0; k < 3; k++) {
		double a = c->history != NULL ? history_availability(c->history, now_ms, windows[k])
		                              : -1;

		if (k > 0)
			buf_add(b, " / ");
		if (a < 0)
			buf_add(b, "<span title=\"not known\">&ndash;</span>");
		else
			buf_add(b, "%.2f&#8201;%%", a * 100);
	}
}

static bool
in_group(const struct status_check *c, const char *group)
{
	for (size_t g = 0; g < c->ngroups; g++)
		if (strcmp(c->groups[g], group) == 0)
			return true;
	return false;
}

static const char *
state_word(int st)
{
	return st >= 0 && st <= 3 ? states[st].word : "PENDING";
}

static const char *
state_css(int st)
{
	return st >= 0 && st <= 3 ? states[st].css : "none";
}

/* "2026-12-06 20:00:00 UTC" for people, or RFC 3339 for datetime="". */
static void
wall_time(int64_t ms, char *out, size_t len, bool iso)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(out, len, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static int
buf_add(struct status_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return -1;
	if (b->cap == 0)
		buf_put(b, NULL, 0); /* never vsnprintf into a NULL buffer */
	for (;;) {
		if (b->oom)
			return -1;
		va_start(ap, fmt);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return -1;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return 0;
		}
		buf_put(b, NULL, (size_t)n); /* grow only */
	}
}

/* Appends s[0..n) and keeps a NUL after it; s NULL only makes room for n. */
static void
buf_put(struct status_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->len <= n) {
		size_t cap = b->cap ? b->cap : 16384;
		char *grown;

		while (cap - b->len <= n)
			cap *= 2;
		if ((grown = realloc(b->data, cap)) == NULL) {
			b->oom = true;
			return;
		}
		b->data = grown;
		b->cap = cap;
	}
	if (s != NULL) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
		b->data[b->len] = '\0';
	}
}
