/* thresholds.c - a check's effective status from its runs' streaks
 * (failures_before_critical, successes_before_passing); no state of its own. */
#include "thresholds.h"

#include <stdio.h>

/*
 * Consul's semantics: the effective status turns failing only after
 * failures_before_critical failed runs in a row, and back to passing only
 * after successes_before_passing passing runs in a row. Within the same side
 * (OK and WARNING, or CRITICAL and UNKNOWN) it follows the run at once. The
 * first run ever sets it: there is nothing to damp yet.
 */
void
thresholds_count(struct thresholds *t, const struct check *k, bool first,
                 enum healthd_status st)
{
	bool passed = thresholds_passes(st);
	uint32_t need;

	if (passed) {
		t->pass_streak++;
		t->fail_streak = 0;
		need = (uint32_t)k->successes_before_passing;
	} else {
		t->fail_streak++;
		t->pass_streak = 0;
		need = (uint32_t)k->failures_before_critical;
	}
	if (first || passed == thresholds_passes(t->effective) ||
	    (passed ? t->pass_streak : t->fail_streak) >= need)
		t->effective = st;
}

void
thresholds_recheck(struct thresholds *t, const struct check *k, enum healthd_status last)
{
	bool passed = thresholds_passes(last);
	uint32_t streak = passed ? t->pass_streak : t->fail_streak;
	int need = passed ? k->successes_before_passing : k->failures_before_critical;

	if (passed != thresholds_passes(t->effective) && streak >= (uint32_t)need)
		t->effective = last;
}

void
thresholds_message(const struct thresholds *t, const struct check *k,
                   enum healthd_status last, const char *msg, char *buf, size_t len)
{
	bool held = thresholds_passes(t->effective) != thresholds_passes(last);

	if (!held)
		snprintf(buf, len, "%s", msg);
	else if (thresholds_passes(t->effective))
		snprintf(buf, len, "%s (failure %u of %d before critical)", msg, t->fail_streak,
		         k->failures_before_critical);
	else
		snprintf(buf, len, "%s (success %u of %d before passing)", msg, t->pass_streak,
		         k->successes_before_passing);
}
