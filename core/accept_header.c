/* accept_header.c - an Accept header's media ranges and q-values (RFC 9110). */
#include "accept_header.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: what a type, subtype or parameter name is made of. */
static bool
is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static const char *
skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static size_t
token_len(const char *p)
{
	size_t n = 0;

	while (is_tchar(p[n]))
		n++;
	return n;
}

/* A quoted-string starting at p (at the '"'): its length with both quotes,
 * or 0 if it does not end. */
static size_t
quoted_len(const char *p)
{
	size_t n = 1;

	while (p[n] != '\0' && p[n] != '"') {
		if (p[n] == '\\' && p[n + 1] != '\0')
			n++;
		n++;
	}
	return p[n] == '"' ? n + 1 : 0;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), exactly
 * len bytes; in thousandths, or -1. */
static int
parse_qvalue(const char *p, size_t len)
{
	int q, scale = 100;

	if (len == 0 || (p[0] != '0' && p[0] != '1') || len > 5 || (len > 1 && p[1] != '.'))
		return -1;
	q = (p[0] - '0') * 1000;
	for (size_t i = 2; i < len; i++, scale /= 10) {
		if (p[i] < '0' || p[i] > '9' || (q == 1000 && p[i] != '0'))
			return -1;
		q += (p[i] - '0') * scale;
	}
	return q;
}

/* Past the current element: to the next ',' outside a quoted string. */
static const char *
next_element(const char *p)
{
	while (*p != '\0' && *p != ',') {
		if (*p == '"') {
			size_t n = quoted_len(p);
			if (n == 0)
				return p + strlen(p);
			p += n;
		} else {
			p++;
		}
	}
	return p;
}

/*
 * One element "type/subtype *( OWS ; OWS name=value )" at p. Sets the range
 * and its weight; returns false if it does not parse.
 */
static bool
parse_range(const char *p, const char *end, const char **type, size_t *tlen,
            const char **sub, size_t *slen, int *q)
{
	*q = 1000;
	*type = p;
	*tlen = token_len(p);
	p += *tlen;
	if (*tlen == 0 || *p != '/')
		return false;
	*sub = ++p;
	*slen = token_len(p);
	p += *slen;
	if (*slen == 0)
		return false;
	for (;;) {
		const char *name, *value;
		size_t nlen, vlen;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end)
			return true;
		if (*p != ';')
			return false;
		p = skip_ows(p + 1);
		name = p;
		nlen = token_len(p);
		p += nlen;
		if (nlen == 0 || *p != '=')
			return false;
		value = ++p;
		vlen = *p == '"' ? quoted_len(p) : token_len(p);
		p += vlen;
		if (vlen == 0 || p > end)
			return false;
		if (nlen == 1 && (name[0] == 'q' || name[0] == 'Q') &&
		    (*q = parse_qvalue(value, vlen)) == -1)
			return false;
	}
}

static bool
same(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

int
accept_weight(const char *header, const char *type, const char *subtype,
              enum accept_match *match)
{
	enum accept_match best = ACCEPT_NONE;
	int weight = -1;

	for (const char *p = header; p != NULL && *p != '\0';) {
		const char *end = next_element(p), *t, *s;
		size_t tlen, slen;
		int q;

		p = skip_ows(p);
		/* OWS before the ',' belongs to no range */
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > p && parse_range(p, end, &t, &tlen, &s, &slen, &q)) {
			enum accept_match m = ACCEPT_NONE;

			if (same(t, tlen, "*") && same(s, slen, "*"))
				m = ACCEPT_ANY;
			else if (same(t, tlen, type) && same(s, slen, "*"))
				m = ACCEPT_TYPE;
			else if (same(t, tlen, type) && same(s, slen, subtype))
				m = ACCEPT_EXACT;
			if (m > best) {
				best = m;
				weight = q;
			}
		}
		p = next_element(p);
		if (*p == ',')
			p++;
	}
	if (match != NULL)
		*match = best;
	return weight;
}
