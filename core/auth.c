/* auth.c - constant-time secret comparison and the Bearer scheme. */
#include "auth.h"

#include <strings.h>

bool
auth_equal(const char *given, size_t given_len, const char *secret, size_t secret_len)
{
	volatile unsigned char diff = given_len != secret_len;

	/* Walk the whole secret whatever the guess is; a short guess is padded with
	 * NULs, which differ from every secret byte position it misses because
	 * the lengths already differ. */
	for (size_t i = 0; i < secret_len; i++) {
		unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
		diff |= g ^ (unsigned char)secret[i];
	}
	return diff == 0;
}

const char *
auth_bearer(const char *header, size_t *len)
{
	const char *token, *end;

	if (header == NULL)
		return NULL;
	while (*header == ' ' || *header == '\t')
		header++;
	if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
		return NULL;
	token = header + 6;
	while (*token == ' ' || *token == '\t')
		token++;
	end = token;
	while (*end != '\0')
		end++;
	while (end > token && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end == token)
		return NULL;
	*len = (size_t)(end - token);
	return token;
}
