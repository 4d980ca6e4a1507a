/*
 * Fuzz target: an Accept header value, as libmicrohttpd hands it over (a
 * NUL-terminated string), read for healthd's two media types.
 * Invariants: a weight is -1 exactly when nothing matched, else 0..1000; the
 * answer does not depend on the letters' case.
 */
#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "accept_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *header, const char *upper, const char *type, const char *subtype)
{
	enum accept_match m, mu;
	int w = accept_weight(header, type, subtype, &m);
	int wu = accept_weight(upper, type, subtype, &mu);

	assert((w == -1) == (m == ACCEPT_NONE));
	assert(w >= -1 && w <= 1000);
	assert(w == wu && m == mu);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *header = malloc(size + 1), *upper = malloc(size + 1);

	memcpy(header, data, size);
	header[size] = '\0';
	for (size_t i = 0; i <= size; i++)
		upper[i] = (char)toupper((unsigned char)header[i]);
	check(header, upper, "application", "health+json");
	check(header, upper, "application", "json");
	free(header);
	free(upper);
	return 0;
}
