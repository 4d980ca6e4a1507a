/* thresholds.h - failures_before_critical and successes_before_passing: a
 * check's effective status from its runs, as pure functions on its streaks
 * (the runner keeps one struct thresholds per check, under its lock). */
#ifndef HEALTHD_THRESHOLDS_H
#define HEALTHD_THRESHOLDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <healthd/plugin.h>

#include "registry.h"

struct thresholds {
	enum healthd_status effective;     /* what requests answer, once a run is counted */
	uint32_t fail_streak, pass_streak; /* consecutive failed / passing runs */
};

/* The side of the thresholds st is on: OK and WARNING pass, as the seed's
 * true (format_passed(), without the view). */
static inline bool
thresholds_passes(enum healthd_status st)
{
	return st == HEALTHD_OK || st == HEALTHD_WARNING;
}

/* Counts a run that answered st under k's thresholds; first: the check's
 * first run ever, which sets the effective status as it is. */
void thresholds_count(struct thresholds *t, const struct check *k, bool first,
                      enum healthd_status st);

/* k's thresholds may have changed (a reload): a status the runs held back
 * that already meets them takes effect. last: the last run's status. */
void thresholds_recheck(struct thresholds *t, const struct check *k, enum healthd_status last);

/* The message requests read with the effective status: the last run's msg,
 * noting a run that the thresholds hold back ("failure 1 of 3 ..."). */
void thresholds_message(const struct thresholds *t, const struct check *k,
                        enum healthd_status last, const char *msg, char *buf, size_t len);

#endif
