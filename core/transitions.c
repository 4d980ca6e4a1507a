/* transitions.c - the state-change lines of a check and their rate limit;
 * no state of its own, no clock read: the caller passes now. */
#include "transitions.h"

#include <stdio.h>

#include "log.h"
#include "registry.h"
#include "timer.h"

/* " (suppressed by NAME)" */
#define CHECK_NOTE_MAX (CHECK_NAME_MAX + 32)

static const char *status_word(enum healthd_status st);
static void window_reset(struct transitions *t, int64_t now);

/* the monitoring-plugins words, as --run-check prints them */
static const char *
status_word(enum healthd_status st)
{
	static const char *const words[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

	return (unsigned)st <= HEALTHD_UNKNOWN ? words[st] : "UNKNOWN";
}

static void
window_reset(struct transitions *t, int64_t now)
{
	t->window_start = now;
	t->changes = 0;
	t->hidden = 0;
}

/*
 * The rule: a window opens at a check's first change after a quiet spell and
 * lasts TRANSITIONS_WINDOW_MS. Its first TRANSITIONS_MAX_LINES changes are
 * logged, the last of them noting that the check flaps; later ones are only
 * counted until the window ends (transitions_tick()).
 */
int
transitions_note(struct transitions *t, const char *name, enum healthd_status st,
                 const char *msg, int64_t now, bool flapping, const char *suppressed_by,
                 char *buf, size_t len)
{
	char span[32], note[CHECK_NOTE_MAX];
	enum healthd_status old = t->state;
	int64_t held = now - t->since;
	int level = st == HEALTHD_OK ? LOG_INFO : LOG_WARNING;

	if (msg == NULL || msg[0] == '\0')
		msg = "no message";
	note[0] = '\0';
	if (suppressed_by != NULL && st != HEALTHD_OK) {
		/* the dependency's own line is the news */
		snprintf(note, sizeof(note), " (suppressed by %s)", suppressed_by);
		level = LOG_INFO;
	}
	if (!t->known) {
		t->known = true;
		t->state = st;
		t->since = now;
		if (st == HEALTHD_OK)
			return 0; /* a check that starts well is not news */
		snprintf(buf, len, "check %s: %s at its first result: %s%s", name, status_word(st),
		         msg, note);
		return level;
	}
	if (st == old)
		return 0;
	t->state = st;
	t->since = now;
	if (!t->quiet && (t->changes == 0 || now - t->window_start >= TRANSITIONS_WINDOW_MS))
		window_reset(t, now);
	t->changes++;
	if (t->quiet) {
		t->hidden++;
		return 0;
	}
	transitions_span(held, span, sizeof(span));
	if (t->changes < TRANSITIONS_MAX_LINES && !flapping) {
		snprintf(buf, len, "check %s: %s -> %s after %s in %s: %s%s", name, status_word(old),
		         status_word(st), span, status_word(old), msg, note);
	} else if (flapping) {
		t->quiet = true;
		snprintf(buf, len, "check %s: %s -> %s after %s in %s: %s%s (flapping; further "
		         "ones are summarised)", name, status_word(old), status_word(st), span,
		         status_word(old), msg, note);
	} else {
		t->quiet = true;
		snprintf(buf, len, "check %s: %s -> %s after %s in %s: %s%s (flapping: %u state "
		         "changes within %d s; further ones are summarised)", name, status_word(old),
		         status_word(st), span, status_word(old), msg, note, t->changes,
		         TRANSITIONS_WINDOW_MS / 1000);
	}
	return level;
}

int64_t
transitions_due(const struct transitions *t)
{
	return t->quiet ? t->window_start + TRANSITIONS_WINDOW_MS : TIMER_NONE;
}

/* A quiet window ended: its hidden changes in one line, and a new quiet
 * window; a window without changes ends the quiet spell, silently (the last
 * line logged named the state it kept since). */
int
transitions_tick(struct transitions *t, const char *name, int64_t now, char *buf, size_t len)
{
	char span[32];
	uint32_t changes = t->changes;

	if (!t->quiet || now < transitions_due(t))
		return 0;
	if (t->hidden == 0) {
		t->quiet = false;
		window_reset(t, now);
		return 0;
	}
	window_reset(t, now);
	transitions_span(now - t->since, span, sizeof(span));
	snprintf(buf, len, "check %s: %u state changes in the last %d s, now %s for %s", name,
	         changes, TRANSITIONS_WINDOW_MS / 1000, status_word(t->state), span);
	return LOG_WARNING;
}

void
transitions_span(int64_t ms, char *buf, size_t len)
{
	long long s;

	if (ms < 0)
		ms = 0;
	s = (long long)(ms / 1000);
	if (ms < 1000)
		snprintf(buf, len, "%lldms", (long long)ms);
	else if (ms < 10000)
		snprintf(buf, len, "%lld.%llds", s, (long long)(ms % 1000) / 100);
	else if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}
