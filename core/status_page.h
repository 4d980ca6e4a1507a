/*
 * status_page.h - GET P/status: one self-contained HTML page (no external
 * assets, no JavaScript; inline CSS and SVG), rendered from plain structs so
 * the caller feeds it from whatever holds the state (registry, runner,
 * history snapshots). Per group and per check: state word and colour, since
 * when, last message, a 24 h timeline, a duration sparkline, availability,
 * flapping and suppressed badges. Light and dark by prefers-color-scheme;
 * every colour has a word beside it, every SVG a <title> (its accessible name
 * and tooltip); a timeline span is one rect titled with its state, from-to
 * and count of results.
 *
 * Pure: no locks, no state; safe from any thread on inputs it alone reads.
 */
#ifndef HEALTHD_STATUS_PAGE_H
#define HEALTHD_STATUS_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"

/* A growing buffer owned by the caller: start it zeroed, free data with
 * status_buf_free() (or free()) whatever the render returned. */
struct status_buf {
	char *data; /* NUL-terminated when the render succeeded */
	size_t len, cap;
	bool oom;
};
void status_buf_free(struct status_buf *b);

/* One check as the page shows it. Strings are read during the call only. */
struct status_check {
	const char *name;
	const char *const *groups; /* the groups it belongs to; none: "Checks" */
	size_t ngroups;
	int state;                 /* enum healthd_status 0-3; -1: no result yet */
	int64_t since_ms;          /* wall clock the state began; 0: unknown */
	const char *message;       /* last message: plugin text, untrusted; NULL: none */
	bool flapping;
	const char *suppressed_by; /* the failing dependency's name; NULL: none */
	const struct history_snapshot *history; /* NULL: no timeline or sparkline */
};

struct status_page_opts {
	const char *title;   /* NULL: "healthd status" */
	int64_t now_ms;      /* wall clock: the end of the 24 h timeline */
	bool messages;       /* false: states only, no plugin text (unauthenticated) */
	unsigned refresh_s;  /* > 0: <meta http-equiv="refresh">, no script needed */
};

/* Appends the page for checks[0..n) to out. 0, or -1 when out of memory
 * (out->data is then partial; the caller still frees it). */
int status_page_render(const struct status_check *checks, size_t n,
                       const struct status_page_opts *opts, struct status_buf *out);

/* s with & < > " ' as entities (also for tests and other HTML bits). */
void status_html_escape(struct status_buf *b, const char *s);

#endif
