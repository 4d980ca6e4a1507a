/* auth.h - the shared secret: ?auth=SECRET or Authorization: Bearer SECRET. */
#ifndef HEALTHD_AUTH_H
#define HEALTHD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* Compares in time that depends only on the secret's length, never on how
 * much of the guess matches. */
bool auth_equal(const char *given, size_t given_len, const char *secret, size_t secret_len);

/* The token of an "Authorization: Bearer TOKEN" header value, or NULL. */
const char *auth_bearer(const char *header, size_t *len);

#endif
