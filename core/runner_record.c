/*
 * runner_record.c - what a finished run leaves behind, under the runner's
 * lock: the check's new state (thresholds), its state-change line
 * (transitions.c), its history and the store's append, and what a failing
 * dependency suppresses. runner_record() is the one door every result goes
 * through; the lines and appends it queues are written once the lock is
 * dropped (runner_write_lines, runner_write_saves).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "history.h"
#include "history_store.h"
#include "lock.h"
#include "log.h"
#include "runner.h"
#include "runner_impl.h"
#include "thresholds.h"
#include "transitions.h"

/* A line for runner_resume_unlocked() to write; dropped if out of memory. */
void
runner_queue_line(struct runner *r, int level, const char *text)
{
	size_t len = strlen(text) + 1;
	struct runner_line *line;

	LOCK_HELD(&r->lock);
	if ((line = malloc(sizeof(*line) + len)) == NULL)
		return;
	line->next = NULL;
	line->level = level;
	memcpy(line->text, text, len);
	if (r->lines_tail != NULL)
		r->lines_tail->next = line;
	else
		r->lines = line;
	r->lines_tail = line;
}

/* Outside the lock: writes and frees the lines, in the order they came. */
void
runner_write_lines(struct runner_line *line)
{
	while (line != NULL) {
		struct runner_line *next = line->next;
		log_msg(line->level, "%s", line->text);
		free(line);
		line = next;
	}
}

/* The first of c's dependencies that fails now, when c's status st is not
 * OK: what that is put down to. NULL: none (recovery is never suppressed). */
const char *
runner_suppressor(const struct runner *r, const struct cstate *c, enum healthd_status st)
{
	const struct check *k = c->check;

	LOCK_HELD(&r->lock);
	if (st == HEALTHD_OK || k == NULL)
		return NULL;
	for (size_t i = 0; i < k->ndepends_on; i++) {
		const char *name = k->depends_on[i];
		int id = registry_find(r->reg, name, strlen(name));
		const struct cstate *d;

		if (id < 0)
			continue;
		d = r->cs[registry_at(r->reg, (uint32_t)id)->slot];
		if (d != NULL && d != c && d->has_last && d->th.effective >= HEALTHD_CRITICAL)
			return registry_at(r->reg, (uint32_t)id)->name;
	}
	return NULL;
}

/* A run's duration as the history keeps it. */
static uint32_t
duration_u32(int64_t ms)
{
	return ms < 0 ? 0 : ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* A result for runner_write_saves(); dropped if out of memory (the history has it). */
static void
queue_save(struct runner *r, const struct cstate *c, int64_t wall, int64_t dur, const char *msg,
           const struct history_transition *t)
{
	struct runner_save *sv;

	LOCK_HELD(&r->lock);
	if ((sv = malloc(sizeof(*sv))) == NULL)
		return;
	*sv = (struct runner_save){.time_ms = wall, .status = c->th.effective,
	                           .duration_ms = duration_u32(dur), .has_t = t != NULL};
	snprintf(sv->name, sizeof(sv->name), "%s", c->check->name);
	snprintf(sv->msg, sizeof(sv->msg), "%s", msg != NULL ? msg : "");
	if (t != NULL)
		sv->t = *t;
	if (r->saves_tail != NULL)
		r->saves_tail->next = sv;
	else
		r->saves = sv;
	r->saves_tail = sv;
}

/* Outside the lock: appends and frees the results, in the order they came. */
void
runner_write_saves(struct history_store *st, struct runner_save *sv)
{
	while (sv != NULL) {
		struct runner_save *next = sv->next;
		if (st != NULL)
			history_store_append(st, sv->name, sv->time_ms, sv->status, sv->duration_ms,
			                     sv->msg, sv->has_t ? &sv->t : NULL);
		free(sv);
		sv = next;
	}
}

/* The history's flap detection started or stopped saying the check flaps. */
static void
note_flapping(struct runner *r, const struct cstate *c)
{
	char line[256];
	double low, high, pct;

	LOCK_HELD(&r->lock);
	pct = history_flap_state(r->hist, (size_t)c->hidx, &low, &high);
	if (c->flapping)
		snprintf(line, sizeof(line), "check %s: flapping: %.0f%% state change over its last "
		         "%d results (flapping from %g%%, until below %g%%); its state changes are "
		         "summarised meanwhile", c->check->name, pct, HISTORY_FLAP_WINDOW, high, low);
	else
		snprintf(line, sizeof(line), "check %s: no longer flapping: %.0f%% state change over "
		         "its last %d results (below %g%%)", c->check->name, pct,
		         HISTORY_FLAP_WINDOW, low);
	runner_queue_line(r, c->flapping ? LOG_WARNING : LOG_INFO, line);
}

void
runner_record(struct runner *r, struct cstate *c, enum healthd_status st, const char *msg, int64_t dur,
       int64_t now)
{
	char line[REPORT_MESSAGE_MAX + 256];
	struct history_transition t;
	bool was_flapping = c->flapping;
	int level, changed;

	LOCK_HELD(&r->lock);
	thresholds_count(&c->th, c->check, !c->has_last, st); /* the first run is taken as it is */
	c->last_wall_ms = clock_wall_ms(); /* health+json's time, /metrics' and the history's */
	/* every run ends here, whoever asked for it: the one place to see a change */
	if (r->hist != NULL && c->hidx >= 0) {
		changed = history_record(r->hist, (size_t)c->hidx, c->last_wall_ms, c->th.effective,
		                         duration_u32(dur), msg, &t);
		c->flapping = history_flapping(r->hist, (size_t)c->hidx);
		if (r->store != NULL && changed >= 0)
			queue_save(r, c, c->last_wall_ms, dur, msg, changed == 1 ? &t : NULL);
		if (c->flapping != was_flapping)
			note_flapping(r, c);
	}
	level = transitions_note(&c->tr, c->check->name, c->th.effective, msg, now, c->flapping,
	                         runner_suppressor(r, c, c->th.effective), line, sizeof(line));
	if (level != 0)
		runner_queue_line(r, level, line);
	runner_wake_timer(r, transitions_due(&c->tr)); /* a flapping check's summary */
	c->last_timed_out = false; /* the caller sets it */
	c->has_last = true;
	c->last_status = st;
	c->last_duration = dur;
	c->last_done = now;
	snprintf(c->last_msg, sizeof(c->last_msg), "%s", msg);
	c->last_nvalues = 0; /* a run that returned sets them after this */
	if (st >= HEALTHD_CRITICAL)
		c->failures++;
}

/* Each state's index in r->hist: its check's id in the newest registry. */
void
runner_index_history(struct runner *r)
{
	LOCK_HELD(&r->lock);
	for (size_t i = 0; i < r->ncs; i++)
		if (r->cs[i] != NULL)
			r->cs[i]->hidx = -1;
	for (uint32_t id = 0; r->hist != NULL && id < registry_count(r->reg); id++) {
		struct cstate *c = r->cs[registry_at(r->reg, id)->slot];
		c->hidx = (long)id;
		c->flapping = history_flapping(r->hist, id);
	}
}

void
runner_set_history(struct runner *r, struct history *h, struct history_store *st)
{
	pthread_mutex_lock(&r->lock);
	r->hist = h;
	r->store = st;
	runner_index_history(r);
	pthread_mutex_unlock(&r->lock);
}
