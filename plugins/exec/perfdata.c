/* perfdata.c - a command's output split into message and perfdata; see perfdata.h. */
#include "perfdata.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PERFDATA_NUMBER_MAX 63 /* longer numbers are refused, not cut */

static bool
perfdata_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
	       c == '\0';
}

static bool
perfdata_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A UOM byte: a letter, '%', '/', or part of a UTF-8 sequence ("°C"). Digits,
 * commas and the like mean the number was not one ("1,5", "0x10"). */
static bool
perfdata_uom_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '%' || c == '/' ||
	       (unsigned char)c >= 0x80;
}

/*
 * Parses "[-+]digits[.digits][e[-+]digits]" at the start of [p, end) into *v
 * and returns the first byte after it, or NULL if there is no finite number.
 * strtod reads the copied text in the C locale's format: healthd never sets
 * another LC_NUMERIC.
 */
static const char *
perfdata_number(const char *p, const char *end, double *v)
{
	char text[PERFDATA_NUMBER_MAX + 1];
	const char *q = p, *r;
	size_t digits = 0;

	if (q < end && (*q == '-' || *q == '+'))
		q++;
	for (; q < end && perfdata_digit(*q); q++)
		digits++;
	if (q < end && *q == '.')
		for (q++; q < end && perfdata_digit(*q); q++)
			digits++;
	if (digits == 0)
		return NULL;
	if (q < end && (*q == 'e' || *q == 'E')) {
		r = q + 1;
		if (r < end && (*r == '-' || *r == '+'))
			r++;
		if (r < end && perfdata_digit(*r)) {
			while (r < end && perfdata_digit(*r))
				r++;
			q = r;
		}
	}
	if ((size_t)(q - p) > PERFDATA_NUMBER_MAX)
		return NULL;
	memcpy(text, p, (size_t)(q - p));
	text[q - p] = '\0';
	*v = strtod(text, NULL);
	return isfinite(*v) ? q : NULL;
}

/*
 * Parses one item at *pp (not white space) into *v and moves *pp past it,
 * whether it was good or not. Returns 0, or -1 for an item to skip.
 */
static int
perfdata_item(const char **pp, const char *end, struct perfdata_value *v)
{
	const char *p = *pp, *vs, *ve, *q, *fs[PERFDATA_FIELDS], *fe[PERFDATA_FIELDS];
	size_t ln = 0;
	int nf;
	bool ok = true;

	if (*p == '\'') {
		for (p++;; p++) {
			if (p == end) { /* the quote never closed: skip this word only */
				for (p = *pp; p < end && !perfdata_space(*p); p++)
					;
				*pp = p;
				return -1;
			}
			if (*p == '\'') {
				if (p + 1 < end && p[1] == '\'') {
					p++; /* '' is one quote */
				} else {
					p++;
					break;
				}
			}
			if (ln < PERFDATA_LABEL_MAX && (unsigned char)*p >= 0x20 && *p != 0x7f)
				v->label[ln++] = *p;
			else
				ok = false;
		}
	} else {
		for (; p < end && *p != '=' && !perfdata_space(*p); p++) {
			if (ln < PERFDATA_LABEL_MAX && (unsigned char)*p > 0x20 && *p != 0x7f)
				v->label[ln++] = *p;
			else
				ok = false;
		}
	}
	v->label[ln] = '\0';
	if (p == end || *p != '=') {
		while (p < end && !perfdata_space(*p))
			p++;
		*pp = p;
		return -1;
	}
	vs = ++p;
	while (p < end && *p != ';' && !perfdata_space(*p))
		p++;
	ve = p;
	/* warn;crit;min;max: spans read here, numbers once the UOM is known */
	for (nf = 0; nf < PERFDATA_FIELDS && p < end && *p == ';'; nf++) {
		fs[nf] = ++p;
		while (p < end && *p != ';' && !perfdata_space(*p))
			p++;
		fe[nf] = p;
	}
	while (p < end && !perfdata_space(*p)) /* more fields than max: ignored */
		p++;
	*pp = p;
	if (!ok || ln == 0)
		return -1;
	q = perfdata_number(vs, ve, &v->value);
	if (q == NULL || (size_t)(ve - q) > PERFDATA_UOM_MAX)
		return -1; /* "U" (no value), garbage, or a unit too long to be one */
	for (const char *u = q; u < ve; u++)
		if (!perfdata_uom_char(*u))
			return -1;
	memcpy(v->uom, q, (size_t)(ve - q));
	v->uom[ve - q] = '\0';
	/* a field is kept when it is one number, bare or in the value's UOM
	 * ("10", "10ms"): a range ("10:20", "@5") is not one threshold */
	for (int f = 0; f < PERFDATA_FIELDS; f++) {
		v->has[f] = false;
		if (f >= nf || (q = perfdata_number(fs[f], fe[f], &v->field[f])) == NULL)
			continue;
		v->has[f] = q == fe[f] || ((size_t)(fe[f] - q) == strlen(v->uom) &&
		                          memcmp(q, v->uom, (size_t)(fe[f] - q)) == 0);
	}
	return 0;
}

size_t
perfdata_parse(const char *text, size_t len, struct perfdata_value *out, size_t max,
               size_t *skipped)
{
	const char *p = text, *end = text + len;
	struct perfdata_value v;
	size_t n = 0;

	for (;;) {
		while (p < end && perfdata_space(*p))
			p++;
		if (p == end)
			break;
		if (perfdata_item(&p, end, &v) == 0 && n < max)
			out[n++] = v;
		else
			(*skipped)++;
	}
	return n;
}

static bool
perfdata_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

void
perfdata_parse_output(const char *buf, size_t len, struct perfdata_output *out)
{
	const char *end = buf + len, *line_end, *bar, *m, *me, *rest;

	out->nvalues = 0;
	out->skipped = 0;
	line_end = memchr(buf, '\n', len);
	if (line_end == NULL)
		line_end = end;
	bar = memchr(buf, '|', (size_t)(line_end - buf));
	m = buf;
	me = bar != NULL ? bar : line_end;
	while (m < me && perfdata_blank(*m))
		m++;
	while (me > m && perfdata_blank(me[-1]))
		me--;
	out->message = m;
	out->message_len = (size_t)(me - m);
	if (bar != NULL)
		out->nvalues += perfdata_parse(bar + 1, (size_t)(line_end - bar - 1), out->values,
		                               PERFDATA_VALUES_MAX, &out->skipped);
	if (line_end == end)
		return;
	rest = line_end + 1;
	bar = memchr(rest, '|', (size_t)(end - rest));
	if (bar != NULL)
		out->nvalues += perfdata_parse(bar + 1, (size_t)(end - bar - 1),
		                               out->values + out->nvalues,
		                               PERFDATA_VALUES_MAX - out->nvalues, &out->skipped);
}
