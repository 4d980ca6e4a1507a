/*
 * accept_header.h - the Accept request header (RFC 9110, 12.5.1), read the
 * way content negotiation needs it: media ranges compared case-insensitively,
 * the most specific range that matches decides, q-values honoured.
 * Pure functions of their arguments; the fuzz target drives them directly.
 */
#ifndef HEALTHD_ACCEPT_HEADER_H
#define HEALTHD_ACCEPT_HEADER_H

#include <stdbool.h>

/* How a media range matched a type: a higher one overrides a lower one. */
enum accept_match {
	ACCEPT_NONE = -1, /* no range matches */
	ACCEPT_ANY,       /* star/star */
	ACCEPT_TYPE,      /* type/star */
	ACCEPT_EXACT,     /* type/subtype itself */
};

/*
 * The weight, in thousandths (0 "not acceptable" to 1000), that the Accept
 * value `header` gives the media type type/subtype, taken from the most
 * specific range that matches it (the first such range if several are
 * equally specific); a range without q= weighs 1000. Parameters other than
 * q are not compared. Elements that do not parse are skipped, as RFC 9110
 * lets a recipient do. Returns -1 (and *match = ACCEPT_NONE) when no range
 * matches or header is NULL. match may be NULL.
 */
int accept_weight(const char *header, const char *type, const char *subtype,
                  enum accept_match *match);

#endif
