/*
 * history.h - what each check did lately: a bounded ring of its last results,
 * a bounded ring of its state changes (transitions), availability over 1 h,
 * 24 h and 7 d computed from the transitions, and Nagios' flap detection.
 *
 * Memory: a fixed budget per check, allocated once by history_new():
 * HISTORY_CHECK_BYTES (9,584 bytes on x86-64), so 200 checks cost 1.9 MB, all of
 * it zero pages until results arrive. Nothing grows after history_new().
 *
 * Threads and locks: every check has its own mutex, a leaf lock: no history_*
 * function calls out or takes another lock while holding it. history_record()
 * and history_snapshot() may be called from any thread, with or without the
 * runner's locks held (history never takes those). history_store.c takes its
 * own lock before a check's history lock (store -> history), never the reverse.
 */
#ifndef HEALTHD_HISTORY_H
#define HEALTHD_HISTORY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

#define HISTORY_RESULTS     60  /* last results kept: the duration sparkline */
#define HISTORY_TRANSITIONS 32  /* last state changes kept: timeline, availability */
#define HISTORY_RESULT_MSG  64  /* a result's message as kept, NUL included */
#define HISTORY_MSG_SIZE    128 /* a transition's message as kept, NUL included */
#define HISTORY_FLAP_WINDOW 21  /* results the flap detection weighs (Nagios) */

/* from of a check's first transition: there was no state before it. */
#define HISTORY_NONE 0xff

/* Windows for history_availability(), in ms. */
#define HISTORY_1H  (3600 * 1000LL)
#define HISTORY_24H (24 * HISTORY_1H)
#define HISTORY_7D  (7 * HISTORY_24H)

struct history_result {
	int64_t time_ms;      /* wall clock (ms since the epoch) the result arrived */
	uint32_t duration_ms;
	uint8_t status;       /* enum healthd_status, 0-3 */
	char message[HISTORY_RESULT_MSG];
};

struct history_transition {
	int64_t time_ms;      /* wall clock of the first result in the new state */
	uint8_t from, to;     /* enum healthd_status; from is HISTORY_NONE at first */
	char message[HISTORY_MSG_SIZE]; /* the message of that first result */
};

/* One check's history, copied out under its lock for renderers; oldest first.
 * Large (HISTORY_CHECK_BYTES): heap or static, not a small thread stack. */
struct history_snapshot {
	char name[CHECK_NAME_MAX + 1];
	uint32_t nresults, ntransitions;
	struct history_result results[HISTORY_RESULTS];
	struct history_transition transitions[HISTORY_TRANSITIONS];
	/* Since when the state is known: the first result, or the time of the
	 * last transition the ring evicted (its state lasted until the oldest
	 * kept transition). 0: no result yet. */
	int64_t known_since_ms;
	double flap_percent;  /* Nagios' weighted percent state change, 0-100 */
	bool flapping;
};

#define HISTORY_CHECK_BYTES (sizeof(struct history_snapshot) + sizeof(pthread_mutex_t) + 32)

/* Flap detection thresholds, in percent (see history_flap_percent()).
 * A check starts flapping when its percent is >= high and stops when it
 * falls < low. Defaults 20 and 30: Nagios Core's compiled-in defaults
 * (DEFAULT_LOW/HIGH_SERVICE_FLAP_THRESHOLD in nagios.h); the sample
 * nagios.cfg sets 5 and 20, which would call two blips in 21 results a flap. */
#define HISTORY_FLAP_LOW_DEFAULT  20.0
#define HISTORY_FLAP_HIGH_DEFAULT 30.0

struct history;

/* A history for n checks named names[0..n) (copied), thresholds at their
 * defaults; NULL when out of memory. Free with history_free(). */
struct history *history_new(const char *const *names, size_t n);
void history_free(struct history *h);
size_t history_count(const struct history *h);
/* Check i's name (fixed at history_new(): no lock), or NULL. */
const char *history_name(const struct history *h, size_t i);
/* Index of the check named name, or -1. */
long history_find(const struct history *h, const char *name);

/*
 * A reload: each check of to takes the history of the check of the same
 * name in from (results, transitions, flap state); the others start empty.
 * Locks one check of each at a time (from, then to); nothing else takes two.
 * Returns how many were carried.
 */
size_t history_carry(struct history *to, struct history *from);

/* Sets the flap thresholds (0 <= low <= high <= 100); -1 if they are not.
 * Call before results arrive (not synchronised with history_record()). */
int history_set_flap_thresholds(struct history *h, double low, double high);

/*
 * The one door for results: called once per finished run of check i (the
 * runner's single result path), from any thread. msg may be NULL; it is cut
 * to fit. Returns 1 when the status differs from the previous result (a
 * transition was recorded; *t, if not NULL, gets a copy of it), 0 when not,
 * -1 when i is out of range.
 */
int history_record(struct history *h, size_t i, int64_t now_wall_ms, int status,
                   uint32_t duration_ms, const char *msg, struct history_transition *t);

/* Whether check i is flapping now; cheap (for verbose output and metrics). */
bool history_flapping(struct history *h, size_t i);
/* Check i's flap percent now (0 if out of range), and the thresholds in
 * *low and *high if not NULL: for the log line when flapping starts or stops. */
double history_flap_state(struct history *h, size_t i, double *low, double *high);

/* Copies check i's history into *out under its lock; -1 if i is out of range. */
int history_snapshot(struct history *h, size_t i, struct history_snapshot *out);

/* Loading from a store (history_store.c): puts a saved result or transition
 * back without deriving anything from it. Records must come oldest first;
 * one not newer than the last of its kind is ignored (returns 0, else 1).
 * Recomputes the flap percent; flapping is then percent >= high. */
int history_restore_result(struct history *h, size_t i, const struct history_result *r);
int history_restore_transition(struct history *h, size_t i, const struct history_transition *t);

/*
 * Share of the known time in [now - window, now] that the check spent OK or
 * WARNING, 0..1; time before the first result (or before known_since_ms) is
 * left out. -1 when none of the window is known. Pure: works on a snapshot.
 */
double history_availability(const struct history_snapshot *s, int64_t now_ms, int64_t window_ms);

/* A span of one state, clipped to a window: the timeline's bars. */
struct history_span {
	int64_t from_ms, to_ms;
	uint8_t status;
};
/* Spans of known state within [from_ms, to_ms), oldest first, at most max
 * (HISTORY_TRANSITIONS + 1 always suffice); returns how many. */
size_t history_spans(const struct history_snapshot *s, int64_t from_ms, int64_t to_ms,
                     struct history_span *out, size_t max);

/*
 * Nagios Core's weighted percent state change (base/flapping.c) over the
 * last HISTORY_FLAP_WINDOW statuses st[0..n), oldest first: each of the 20
 * consecutive pairs that differ adds a weight rising linearly from 0.75
 * (oldest pair) to 1.25 (newest); the sum is a percent of 20. With fewer
 * than 21 statuses the missing older ones count as unchanged, as Nagios
 * fills its history with the first state.
 */
double history_flap_percent(const uint8_t *st, size_t n);

/* "pass", "warn", "fail", "unknown" for statuses 0-3; "none" otherwise. */
const char *history_status_word(int status);

/*
 * GET P/history?check=NAME: {"availability": {"1h": x|null, "24h": ..,
 * "7d": ..}, "check": NAME, "flapping": bool, "flap_percent": x, "results":
 * [{"duration_ms", "message", "status", "time"}], "transitions": [{"from",
 * "message", "time", "to"}]}, keys sorted, times RFC 3339 UTC, oldest first.
 * messages false leaves the message fields out. Returns a malloc'd body
 * ending in a newline (the caller frees) and its length, or NULL (no memory).
 */
char *history_json(const struct history_snapshot *s, int64_t now_ms, bool messages, size_t *len);

#endif
