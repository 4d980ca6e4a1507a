/*
 * tls.h - HTTPS material: the certificate, key, client CA, client_auth_type
 * and versions of the configuration's "tls", read and checked from their
 * files (GnuTLS), and swapped for a new set on SIGHUP or when the files
 * change, without restarting the HTTP threads' daemons.
 *
 * A set in use is refcounted: each TLS connection holds the set it started
 * with until it closes, so a swap never pulls credentials from under a
 * handshake. Holds state: the one struct tls of the process and its counters.
 */
#ifndef HEALTHD_TLS_H
#define HEALTHD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#include "config.h"

struct tls;          /* the server's TLS: the current set and the files it came from */
struct tls_material; /* one loaded set, shared by the connections that started with it */

/*
 * Reads and checks cfg's files (a key that does not match, an expired or
 * not yet valid certificate, an unreadable file, an empty CA file). Main
 * thread, before serving. Returns NULL with one line naming the key, the
 * file and the problem in err.
 */
struct tls *tls_open(const struct config_tls *cfg, char *err, size_t errlen);
/* After the HTTP threads stopped (no connection holds a set). t may be NULL. */
void tls_free(struct tls *t);

/* The certificate and key (PEM, NUL-terminated) as tls_open read them:
 * libmicrohttpd's daemons start with them. Valid until tls_free. */
const char *tls_boot_cert(const struct tls *t);
const char *tls_boot_key(const struct tls *t);

/*
 * An HTTP thread, at a connection's start (before its handshake): puts the
 * current set on session (credentials, versions, whether and how a client
 * certificate is asked for and verified). Returns the set, to hand to
 * tls_release once the connection is closed.
 */
struct tls_material *tls_session_start(struct tls *t, gnutls_session_t session);
void tls_release(struct tls_material *m);

/*
 * fn is called on the HTTP thread of a handshake that refused the client's
 * certificate with an alert, with the session's pointer (libmicrohttpd sets
 * it to the MHD_Connection), so that the socket is closed only once the
 * client had time to read the alert. Once, before serving; NULL: none.
 */
typedef void (*tls_refused_fn)(void *session_ptr);
void tls_on_refused(tls_refused_fn fn);

/*
 * SIGHUP, main thread: reads the files again (cfg's, if not NULL: the
 * reloaded configuration's "tls"). A set that fails its checks is not used:
 * the one before keeps serving, and one line says why. Returns 0 or -1.
 */
int tls_reload(struct tls *t, const struct config_tls *cfg);

/*
 * Main thread, at least every TLS_POLL_MS: looks at the files (stat: device,
 * inode, size, times; through symlinks, so that a Kubernetes secret's
 * ..data swap counts) and reads them again once they changed and then stayed
 * the same for one poll, so that a pair caught half-written is not taken.
 * A changed set that fails is logged once and retried at the next change.
 */
#define TLS_POLL_MS 1000
void tls_poll(struct tls *t);

/* For /metrics: whether TLS is on, the serving certificate's notAfter (Unix
 * time), reloads by result. Any thread. Returns false when TLS is off. */
struct tls_stats {
	int64_t not_after;
	uint64_t reloads_ok, reloads_failed;
};
bool tls_stats(struct tls_stats *st);

#endif
