/* transitions.h - one log line per check state change, summarised while a
 * check flaps: pure functions on one check's struct transitions (the runner
 * keeps one per check under its lock and writes the lines outside it). */
#ifndef HEALTHD_TRANSITIONS_H
#define HEALTHD_TRANSITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <healthd/plugin.h>

/* At most this many state-change lines per check in a window; the last of
 * them says the check flaps, and its further changes are summarised in one
 * line at the end of each window that had some (README "Logs"). */
#define TRANSITIONS_MAX_LINES 5
#define TRANSITIONS_WINDOW_MS 60000

struct transitions {
	bool known;                /* a first result was seen */
	enum healthd_status state; /* the effective status last seen */
	int64_t since;             /* CLOCK_MONOTONIC ms when it took that status */
	int64_t window_start;      /* the window the changes are counted in */
	uint32_t changes;          /* state changes in that window */
	uint32_t hidden;           /* of which not logged (quiet) */
	bool quiet;                /* over the limit: changes wait for the summary */
};

/*
 * The check name's effective status is st after a run that said msg, at now
 * (monotonic ms). Writes the line to log, if any, into buf and returns its
 * level (LOG_INFO for a change to OK, LOG_WARNING otherwise), or 0 for none.
 * A first result logs only if it is not OK. flapping: the history's flap
 * detection says the check flaps, so changes are summarised from this one on.
 * suppressed_by: the failing dependency a change to not OK is put down to
 * (the line says so, at LOG_INFO); NULL if none. Recovery is never suppressed.
 */
int transitions_note(struct transitions *t, const char *name, enum healthd_status st,
                     const char *msg, int64_t now, bool flapping, const char *suppressed_by,
                     char *buf, size_t len);

/* When transitions_tick() has work: the end of a quiet window, else TIMER_NONE. */
int64_t transitions_due(const struct transitions *t);

/* At or after transitions_due(): the summary of a quiet window's hidden
 * changes into buf, returning its level, or 0 (and the check leaves quiet
 * mode: a window without a change means it settled). */
int transitions_tick(struct transitions *t, const char *name, int64_t now, char *buf,
                     size_t len);

/* ms as a person reads a span: "850ms", "4.2s", "45s", "2m05s", "3h12m", "2d04h". */
void transitions_span(int64_t ms, char *buf, size_t len);

#endif
