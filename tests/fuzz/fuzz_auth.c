/*
 * Fuzz target: the secret comparison and the Bearer scheme. The first byte
 * splits the rest into a secret and a guess.
 * Invariants: auth_equal() is exactly equality; a Bearer token lies inside
 * the header, is not empty and has no white space at its ends.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t split, slen, glen, tlen = 0;
	const char *secret, *guess, *token;
	char *header;

	if (size == 0)
		return 0;
	split = data[0];
	slen = split < size - 1 ? split : size - 1;
	secret = (const char *)data + 1;
	guess = secret + slen;
	glen = size - 1 - slen;
	assert(auth_equal(guess, glen, secret, slen) ==
	       (glen == slen && memcmp(guess, secret, slen) == 0));
	assert(auth_equal(secret, slen, secret, slen));

	header = malloc(size + 1);
	memcpy(header, data, size);
	header[size] = '\0';
	token = auth_bearer(header, &tlen);
	if (token != NULL) {
		assert(token > header && token + tlen <= header + strlen(header));
		assert(tlen > 0);
		assert(token[0] != ' ' && token[0] != '\t');
		assert(token[tlen - 1] != ' ' && token[tlen - 1] != '\t');
		assert(strcasestr(header, "bearer") != NULL);
	}
	free(header);
	return 0;
}
