/* history.c - per-check rings of results and transitions, availability,
 * flap detection. Locks: one leaf mutex per check (see history.h). */
#include "history.h"

#include <stdlib.h>
#include <string.h>

#include "lock.h"

/* One check: the snapshot is the state itself, so a snapshot is one memcpy. */
struct history_check {
	pthread_mutex_t lock;
	uint32_t result_head;     /* next slot to write in s.results */
	uint32_t transition_head; /* next slot to write in s.transitions */
	struct history_snapshot s; /* rings here are in slot order, not oldest first */
};

struct history {
	size_t n;
	double flap_low, flap_high;
	struct history_check checks[];
};

_Static_assert(sizeof(struct history_check) <= HISTORY_CHECK_BYTES,
               "history.h states the per-check budget; keep it true");

static void copy_msg(char *dst, size_t size, const char *src);
static void push_result(struct history_check *c, const struct history_result *r);
static void push_transition(struct history_check *c, const struct history_transition *t);
static const struct history_result *last_result(const struct history_check *c);
static const struct history_transition *last_transition(const struct history_check *c);
static double flap_percent(const struct history_check *c);
static bool seen_at_same_time(const struct history_check *c,
                              const struct history_transition *t);
static void ordered(const struct history_check *c, struct history_snapshot *out);

static const char *const status_words[] = {"pass", "warn", "fail", "unknown"};

struct history *
history_new(const char *const *names, size_t n)
{
	struct history *h = calloc(1, sizeof(*h) + n * sizeof(h->checks[0]));

	if (h == NULL)
		return NULL;
	h->n = n;
	h->flap_low = HISTORY_FLAP_LOW_DEFAULT;
	h->flap_high = HISTORY_FLAP_HIGH_DEFAULT;
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_init(&h->checks[i].lock, NULL);
		copy_msg(h->checks[i].s.name, sizeof(h->checks[i].s.name), names[i]);
	}
	return h;
}

void
history_free(struct history *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++)
		pthread_mutex_destroy(&h->checks[i].lock);
	free(h);
}

size_t
history_count(const struct history *h)
{
	return h->n;
}

const char *
history_name(const struct history *h, size_t i)
{
	return i < h->n ? h->checks[i].s.name : NULL;
}

long
history_find(const struct history *h, const char *name)
{
	/* names are immutable after history_new(): no lock */
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->checks[i].s.name, name) == 0)
			return (long)i;
	return -1;
}

size_t
history_carry(struct history *to, struct history *from)
{
	size_t kept = 0;

	for (size_t i = 0; i < to->n; i++) {
		long j = history_find(from, to->checks[i].s.name);
		struct history_check *src, *dst = &to->checks[i];

		if (j < 0)
			continue;
		src = &from->checks[j];
		pthread_mutex_lock(&src->lock);
		pthread_mutex_lock(&dst->lock);
		dst->result_head = src->result_head;
		dst->transition_head = src->transition_head;
		dst->s = src->s;
		pthread_mutex_unlock(&dst->lock);
		pthread_mutex_unlock(&src->lock);
		kept++;
	}
	return kept;
}

int
history_set_flap_thresholds(struct history *h, double low, double high)
{
	if (!(low >= 0 && low <= high && high <= 100))
		return -1;
	h->flap_low = low;
	h->flap_high = high;
	return 0;
}

int
history_record(struct history *h, size_t i, int64_t now_wall_ms, int status,
               uint32_t duration_ms, const char *msg, struct history_transition *t)
{
	struct history_result r = {.time_ms = now_wall_ms, .duration_ms = duration_ms};
	struct history_check *c;
	const struct history_result *prev;
	int changed = 0;

	if (i >= h->n || status < 0 || status > 3)
		return -1;
	c = &h->checks[i];
	r.status = (uint8_t)status;
	copy_msg(r.message, sizeof(r.message), msg);

	pthread_mutex_lock(&c->lock);
	prev = last_result(c);
	if (prev == NULL || prev->status != r.status) {
		struct history_transition tr = {.time_ms = now_wall_ms, .to = r.status};

		tr.from = prev != NULL ? prev->status : HISTORY_NONE;
		copy_msg(tr.message, sizeof(tr.message), msg);
		push_transition(c, &tr);
		if (t != NULL)
			*t = tr;
		changed = 1;
	}
	if (c->s.known_since_ms == 0)
		c->s.known_since_ms = now_wall_ms;
	push_result(c, &r);
	c->s.flap_percent = flap_percent(c);
	/* hysteresis: start at >= high, stop below low */
	if (c->s.flapping ? c->s.flap_percent < h->flap_low : c->s.flap_percent >= h->flap_high)
		c->s.flapping = !c->s.flapping;
	pthread_mutex_unlock(&c->lock);
	return changed;
}

bool
history_flapping(struct history *h, size_t i)
{
	bool f;

	if (i >= h->n)
		return false;
	pthread_mutex_lock(&h->checks[i].lock);
	f = h->checks[i].s.flapping;
	pthread_mutex_unlock(&h->checks[i].lock);
	return f;
}

double
history_flap_state(struct history *h, size_t i, double *low, double *high)
{
	double pct = 0;

	if (low != NULL)
		*low = h->flap_low;
	if (high != NULL)
		*high = h->flap_high;
	if (i >= h->n)
		return 0;
	pthread_mutex_lock(&h->checks[i].lock);
	pct = h->checks[i].s.flap_percent;
	pthread_mutex_unlock(&h->checks[i].lock);
	return pct;
}

int
history_snapshot(struct history *h, size_t i, struct history_snapshot *out)
{
	if (i >= h->n)
		return -1;
	pthread_mutex_lock(&h->checks[i].lock);
	ordered(&h->checks[i], out);
	pthread_mutex_unlock(&h->checks[i].lock);
	return 0;
}

int
history_restore_result(struct history *h, size_t i, const struct history_result *r)
{
	struct history_check *c;
	const struct history_result *prev;
	int ok = 0;

	if (i >= h->n || r->status > 3)
		return 0;
	c = &h->checks[i];
	pthread_mutex_lock(&c->lock);
	prev = last_result(c);
	/* results a millisecond apart share a stamp: the same stamp is another
	 * result unless it is the last one again */
	if (prev == NULL || r->time_ms > prev->time_ms ||
	    (r->time_ms == prev->time_ms && (r->status != prev->status ||
	                                     r->duration_ms != prev->duration_ms ||
	                                     strncmp(r->message, prev->message,
	                                             HISTORY_RESULT_MSG - 1) != 0))) {
		push_result(c, r);
		c->s.results[(c->result_head + HISTORY_RESULTS - 1) % HISTORY_RESULTS]
			.message[HISTORY_RESULT_MSG - 1] = '\0';
		if (c->s.known_since_ms == 0)
			c->s.known_since_ms = r->time_ms;
		c->s.flap_percent = flap_percent(c);
		c->s.flapping = c->s.flap_percent >= h->flap_high;
		ok = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

int
history_restore_transition(struct history *h, size_t i, const struct history_transition *t)
{
	struct history_check *c;
	const struct history_transition *prev;
	int ok = 0;

	if (i >= h->n || t->to > 3 || (t->from > 3 && t->from != HISTORY_NONE))
		return 0;
	c = &h->checks[i];
	pthread_mutex_lock(&c->lock);
	prev = last_transition(c);
	if (prev == NULL || t->time_ms > prev->time_ms ||
	    (t->time_ms == prev->time_ms && !seen_at_same_time(c, t))) {
		push_transition(c, t);
		c->s.transitions[(c->transition_head + HISTORY_TRANSITIONS - 1) %
		                 HISTORY_TRANSITIONS].message[HISTORY_MSG_SIZE - 1] = '\0';
		if (c->s.known_since_ms == 0)
			c->s.known_since_ms = t->time_ms;
		ok = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/*
 * Walks the segments of known state: [known_since, t0) in t0.from (when
 * there was one), [t_k, t_k+1) in t_k.to, and [t_last, forever) in t_last.to.
 */
size_t
history_spans(const struct history_snapshot *s, int64_t from_ms, int64_t to_ms,
              struct history_span *out, size_t max)
{
	size_t n = 0;

	if (s->ntransitions == 0)
		return 0;
	for (long k = -1; k < (long)s->ntransitions && n < max; k++) {
		const struct history_transition *next =
			(size_t)(k + 1) < s->ntransitions ? &s->transitions[k + 1] : NULL;
		int64_t a, b;
		uint8_t st;

		if (k < 0) {
			st = s->transitions[0].from;
			a = s->known_since_ms;
		} else {
			st = s->transitions[k].to;
			a = s->transitions[k].time_ms;
		}
		b = next != NULL ? next->time_ms : INT64_MAX;
		if (st > 3)
			continue;
		if (a < from_ms)
			a = from_ms;
		if (b > to_ms)
			b = to_ms;
		if (a >= b)
			continue;
		out[n++] = (struct history_span){.from_ms = a, .to_ms = b, .status = st};
	}
	return n;
}

double
history_availability(const struct history_snapshot *s, int64_t now_ms, int64_t window_ms)
{
	struct history_span spans[HISTORY_TRANSITIONS + 1];
	size_t n = history_spans(s, now_ms - window_ms, now_ms, spans, HISTORY_TRANSITIONS + 1);
	int64_t known = 0, passing = 0;

	for (size_t k = 0; k < n; k++) {
		int64_t d = spans[k].to_ms - spans[k].from_ms;

		known += d;
		if (spans[k].status <= 1) /* OK, WARNING */
			passing += d;
	}
	return known > 0 ? (double)passing / (double)known : -1;
}

double
history_flap_percent(const uint8_t *st, size_t n)
{
	const double low = 0.75, high = 1.25;
	const size_t pairs = HISTORY_FLAP_WINDOW - 1;
	double changes = 0;

	if (n > HISTORY_FLAP_WINDOW) {
		st += n - HISTORY_FLAP_WINDOW;
		n = HISTORY_FLAP_WINDOW;
	}
	/* pair x (1 oldest .. 20 newest) compares st[x-1] and st[x] of a full
	 * window; with n < 21 the window's first 21 - n entries are padding */
	for (size_t j = 1; j < n; j++) {
		size_t x = j + (HISTORY_FLAP_WINDOW - n);

		if (st[j] != st[j - 1])
			changes += (double)(x - 1) * (high - low) / (double)(pairs - 1) + low;
	}
	return changes * 100.0 / (double)pairs;
}

const char *
history_status_word(int status)
{
	return status >= 0 && status <= 3 ? status_words[status] : "none";
}

/* Cuts src to size (NUL included); NULL is the empty string. */
static void
copy_msg(char *dst, size_t size, const char *src)
{
	size_t n = src != NULL ? strnlen(src, size - 1) : 0;

	memcpy(dst, src != NULL ? src : "", n);
	dst[n] = '\0';
}

static void
push_result(struct history_check *c, const struct history_result *r)
{
	LOCK_HELD(&c->lock);
	c->s.results[c->result_head] = *r;
	c->result_head = (c->result_head + 1) % HISTORY_RESULTS;
	if (c->s.nresults < HISTORY_RESULTS)
		c->s.nresults++;
}

/* When the ring is full, the evicted transition's time becomes known_since:
 * its state (the next one's from) is known from then on. */
static void
push_transition(struct history_check *c, const struct history_transition *t)
{
	LOCK_HELD(&c->lock);
	if (c->s.ntransitions == HISTORY_TRANSITIONS)
		c->s.known_since_ms = c->s.transitions[c->transition_head].time_ms;
	c->s.transitions[c->transition_head] = *t;
	c->transition_head = (c->transition_head + 1) % HISTORY_TRANSITIONS;
	if (c->s.ntransitions < HISTORY_TRANSITIONS)
		c->s.ntransitions++;
}

static const struct history_result *
last_result(const struct history_check *c)
{
	if (c->s.nresults == 0)
		return NULL;
	return &c->s.results[(c->result_head + HISTORY_RESULTS - 1) % HISTORY_RESULTS];
}

static const struct history_transition *
last_transition(const struct history_check *c)
{
	if (c->s.ntransitions == 0)
		return NULL;
	return &c->s.transitions[(c->transition_head + HISTORY_TRANSITIONS - 1) %
	                         HISTORY_TRANSITIONS];
}

/* Whether the kept transitions stamped t's time hold t already (a rotation's
 * checkpoint repeats them); changes a millisecond apart share a stamp. */
static bool
seen_at_same_time(const struct history_check *c, const struct history_transition *t)
{
	for (uint32_t k = 1; k <= c->s.ntransitions; k++) {
		const struct history_transition *p =
			&c->s.transitions[(c->transition_head + HISTORY_TRANSITIONS - k) %
			                  HISTORY_TRANSITIONS];
		if (p->time_ms != t->time_ms)
			break;
		if (p->from == t->from && p->to == t->to)
			return true;
	}
	return false;
}

static double
flap_percent(const struct history_check *c)
{
	uint8_t st[HISTORY_FLAP_WINDOW];
	size_t n = c->s.nresults < HISTORY_FLAP_WINDOW ? c->s.nresults : HISTORY_FLAP_WINDOW;

	LOCK_HELD(&c->lock);
	for (size_t k = 0; k < n; k++)
		st[k] = c->s.results[(c->result_head + HISTORY_RESULTS - n + k) % HISTORY_RESULTS]
		                .status;
	return history_flap_percent(st, n);
}

/* The rings unrolled oldest first. */
static void
ordered(const struct history_check *c, struct history_snapshot *out)
{
	uint32_t nr = c->s.nresults, nt = c->s.ntransitions;

	LOCK_HELD(&c->lock);
	memcpy(out->name, c->s.name, sizeof(out->name));
	out->nresults = nr;
	out->ntransitions = nt;
	out->known_since_ms = c->s.known_since_ms;
	out->flap_percent = c->s.flap_percent;
	out->flapping = c->s.flapping;
	for (uint32_t k = 0; k < nr; k++)
		out->results[k] = c->s.results[(c->result_head + HISTORY_RESULTS - nr + k) %
		                                HISTORY_RESULTS];
	for (uint32_t k = 0; k < nt; k++)
		out->transitions[k] = c->s.transitions[(c->transition_head + HISTORY_TRANSITIONS -
		                                        nt + k) % HISTORY_TRANSITIONS];
}
