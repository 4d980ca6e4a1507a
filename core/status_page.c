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
	".tl .ok{fill:var(--ok)}.tl .warn{fill:var(--warn)}.tl .fail{fill:var(--fail)}"
	".tl .unk{fill:var(--unk)}"
	".badge{display:inline-block;border:1px solid currentColor;border-radius:.7rem;"
	"padding:0 .45rem;margin-left:.3rem;font-size:12px;color:var(--mute)}"
	".msg{color:var(--mute);word-break:break-word;font-size:13px;max-width:24rem}"
	"svg.tl{width:100%;min-width:10rem;height:14px;display:block;background:var(--none)}"
	".tl rect{height:10px}"
	"svg.sp{width:7rem;height:20px;display:block;color:var(--fg)}"
	".sp path{fill:none;stroke:currentColor;stroke-width:1.5;vector-effect:non-scaling-stroke}"
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
static void render_span_title(struct status_buf *b, const struct history_snapshot *s,
                              const struct history_span *sp, bool last, int64_t now_ms,
                              uint32_t *next);
static void render_sparkline(struct status_buf *b, const struct status_check *c);
static void render_availability(struct status_buf *b, const struct status_check *c,
                                int64_t now_ms);
static bool in_group(const struct status_check *c, const char *group);
static const char *state_word(int st);
static const char *state_css(int st);
static bool same_day(int64_t a_ms, int64_t b_ms);

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
	buf_add(b, "\" data-state=%s><th scope=row>", state_css(c->state));
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
	buf_add(b, "</td><td class=num>");
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
		buf_add(b, "<td class=msg>");
		status_html_escape(b, c->message != NULL ? c->message : "");
		buf_add(b, "</td>");
	}
	buf_add(b, "<td>");
	render_timeline(b, c, o->now_ms);
	buf_add(b, "</td><td>");
	render_sparkline(b, c);
	buf_add(b, "</td><td class=num>");
	render_availability(b, c, o->now_ms);
	buf_add(b, "</td></tr>\n");
}

/* The svg's background is the unknown; a rect per span of one state on top,
 * in whole minutes (x0 and x1 rounded alike, so neighbours tile). */
static void
render_timeline(struct status_buf *b, const struct status_check *c, int64_t now_ms)
{
	struct history_span spans[HISTORY_TRANSITIONS + 1];
	const int64_t from = now_ms - HISTORY_24H;
	size_t n = 0;
	uint32_t next = 0; /* the first kept result not yet counted in a span */

	if (c->history != NULL)
		n = history_spans(c->history, from, now_ms, spans, HISTORY_TRANSITIONS + 1);
	buf_add(b, "<svg class=tl viewBox=\"0 0 %d 10\" preserveAspectRatio=none role=img><title>",
	        TIMELINE_UNITS);
	status_html_escape(b, c->name);
	buf_add(b, ", last 24 hours (UTC): %zu spans of state (grey: no data)</title>", n);
	for (size_t k = 0; k < n; k++) {
		int64_t x0 = (spans[k].from_ms - from + 30000) / 60000;
		int64_t x1 = (spans[k].to_ms - from + 30000) / 60000;

		buf_add(b, "<rect class=%s x=%lld width=%lld><title>", state_css(spans[k].status),
		        (long long)x0, (long long)(x1 > x0 ? x1 - x0 : 1));
		render_span_title(b, c->history, &spans[k], k + 1 == n, now_ms, &next);
		buf_add(b, "</title></rect>");
	}
	buf_add(b, "</svg>");
}

/* "OK 2026-12-05 23:31:58–00:10:00, 13 results", UTC as the svg's title says:
 * a time's date only when it differs from the one before (now's before the
 * first); the count from the kept results, "N+" when they start later. The
 * results are walked once, in order, from *next: a span's are the run of its
 * state from its start on; one of the state before in the same millisecond as
 * the change stays with its own span (or with none, if that span was too
 * short to draw). */
static void
render_span_title(struct status_buf *b, const struct history_snapshot *s,
                  const struct history_span *sp, bool last, int64_t now_ms, uint32_t *next)
{
	bool date0 = !same_day(sp->from_ms, now_ms), date1 = !same_day(sp->to_ms, sp->from_ms);
	uint32_t count = 0;
	char t0[40], t1[40];
	bool exact;

	wall_time(sp->from_ms, t0, sizeof(t0), false);
	wall_time(sp->to_ms, t1, sizeof(t1), false);
	t0[19] = t1[19] = '\0'; /* "YYYY-MM-DD HH:MM:SS" */
	buf_add(b, "%s %s\u2013%s", state_word(sp->status), t0 + (date0 ? 0 : 11),
	        t1 + (date1 ? 0 : 11));
	while (*next < s->nresults &&
	       (s->results[*next].time_ms < sp->from_ms ||
	        (s->results[*next].time_ms == sp->from_ms && s->results[*next].status != sp->status)))
		(*next)++;
	for (; *next < s->nresults && s->results[*next].status == sp->status &&
	       (last || s->results[*next].time_ms <= sp->to_ms);
	     (*next)++)
		count++;
	exact = s->nresults > 0 && s->results[0].time_ms <= sp->from_ms;
	if (exact || count > 0)
		buf_add(b, ", %u%s result%s", count, exact ? "" : "+", count == 1 ? "" : "s");
}

/* The durations of the kept results as a path scaled to their maximum: one
 * unit per result, whole pixels, each step relative to the one before (a run
 * of level steps as one "hN"). */
static void
render_sparkline(struct status_buf *b, const struct status_check *c)
{
	const struct history_snapshot *s = c->history;
	uint32_t max = 1, min = UINT32_MAX;
	int y, prev = 0, flat = 0; /* flat: level steps not yet written */

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
	buf_add(b, "<svg class=sp viewBox=\"0 0 %u %d\" preserveAspectRatio=none role=img>"
	           "<title>duration of the last %u runs: %u to %u ms, last %u ms</title><path d=\"",
	        s->nresults - 1, SPARK_H, s->nresults, min, max,
	        s->results[s->nresults - 1].duration_ms);
	for (uint32_t k = 0; k < s->nresults; k++) {
		y = SPARK_H - 1 -
		    (int)(((uint64_t)s->results[k].duration_ms * (SPARK_H - 2) + max / 2) / max);
		if (k == 0) {
			buf_add(b, "M0 %d", y);
		} else if (y == prev) {
			flat++;
		} else {
			if (flat > 0)
				buf_add(b, "h%d", flat);
			buf_add(b, "%s1%s%d", flat > 0 || k == 1 ? "l" : " ",
			        y < prev ? "" : " ", y - prev);
			flat = 0;
		}
		prev = y;
	}
	if (flat > 0)
		buf_add(b, "h%d", flat);
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
			buf_add(b, "%.2f\u2009%%", a * 100); /* thin space */
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

/* Whether two wall clock times fall on the same UTC date. */
static bool
same_day(int64_t a_ms, int64_t b_ms)
{
	return a_ms / 86400000 == b_ms / 86400000;
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
