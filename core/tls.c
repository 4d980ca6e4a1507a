/* tls.c - HTTPS material (GnuTLS): read and checked from the "tls" files,
 * put on each new connection's session, swapped on SIGHUP or file change. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "clock.h"
#include "log.h"

#define PEM_MAX_BYTES (1 << 20) /* a certificate chain or CA bundle is far smaller */
#define NFILES 3                /* cert, key, client CA */

static int read_pem(const char *key, const char *path, gnutls_datum_t *out, char *err,
                    size_t errlen);
static void free_pem(gnutls_datum_t *d);
static int check_cert(const struct config_tls *cfg, const gnutls_datum_t *pem,
                      int64_t *not_after, char *err, size_t errlen);
static int load(const struct config_tls *cfg, struct tls_material **out, gnutls_datum_t *cert,
                gnutls_datum_t *key, char *err, size_t errlen);
static void material_free(struct tls_material *m);
static int verify_client(gnutls_session_t session, bool required);
static int verify_required(gnutls_session_t session);
static int verify_if_given(gnutls_session_t session);
static int require_any(gnutls_session_t session);

/* One loaded set. refs: the struct tls while it is current, and each
 * connection that started with it. */
struct tls_material {
	atomic_int refs;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	enum config_client_auth auth;
	int64_t not_after;
};

/* What stat(2) says of one file: a change in any field is a change. */
struct file_sig {
	int err;                   /* errno of stat, or 0 */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct tls {
	pthread_mutex_t lock;          /* cur, against HTTP threads starting sessions */
	struct tls_material *cur;
	/* main thread only */
	struct config_tls cfg;         /* the files cur came from */
	char *boot_cert, *boot_key;    /* PEM as read at startup, for the daemons */
	struct file_sig loaded[NFILES];  /* the files when cur was read */
	struct file_sig pending[NFILES]; /* changed at the last poll: read if it stays */
	struct file_sig failed[NFILES];  /* read and refused: not again until it changes */
	bool has_pending, has_failed;
	int64_t next_poll;
};

/* Process-wide, for /metrics. */
static atomic_bool tls_on;
static atomic_int_fast64_t tls_not_after;
static atomic_uint_fast64_t tls_reloads[2]; /* [0] failed, [1] ok */
/* Told of each refusal (tls_on_refused): set before serving, then only read. */
static tls_refused_fn tls_refused_hook;

/* "2027-01-31T12:00:00Z" */
static void
utc(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

static int
read_pem(const char *key, const char *path, gnutls_datum_t *out, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n;
	size_t len = 0;

	*out = (gnutls_datum_t){0};
	if (fd == -1) {
		snprintf(err, errlen, "%s %s: cannot read: %s", key, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > PEM_MAX_BYTES) {
		snprintf(err, errlen, "%s %s: not a regular file of at most %d bytes", key, path,
		         PEM_MAX_BYTES);
		close(fd);
		return -1;
	}
	out->data = gnutls_malloc((size_t)st.st_size + 1);
	if (out->data == NULL) {
		snprintf(err, errlen, "%s %s: out of memory", key, path);
		close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size &&
	       (n = read(fd, out->data + len, (size_t)st.st_size - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s %s: cannot read: %s", key, path, strerror(errno));
			close(fd);
			free_pem(out);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	out->data[len] = '\0'; /* libmicrohttpd takes the startup's PEM as a string */
	out->size = (unsigned)len;
	return 0;
}

/* Wiped: it may be a private key. */
static void
free_pem(gnutls_datum_t *d)
{
	if (d->data != NULL) {
		explicit_bzero(d->data, d->size);
		gnutls_free(d->data);
	}
	*d = (gnutls_datum_t){0};
}

/* The leaf (the file's first certificate) parses and is valid now. */
static int
check_cert(const struct config_tls *cfg, const gnutls_datum_t *pem, int64_t *not_after,
           char *err, size_t errlen)
{
	gnutls_x509_crt_t *crts = NULL;
	unsigned n = 0;
	int64_t now = time(NULL), from, until;
	char when[64];
	int rc;

	rc = gnutls_x509_crt_list_import2(&crts, &n, pem, GNUTLS_X509_FMT_PEM, 0);
	if (rc < 0 || n == 0) {
		snprintf(err, errlen, "tls.cert_file %s: no PEM certificate in it (%s)",
		         cfg->cert_file, rc < 0 ? gnutls_strerror(rc) : "empty");
		return -1;
	}
	from = gnutls_x509_crt_get_activation_time(crts[0]);
	until = gnutls_x509_crt_get_expiration_time(crts[0]);
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (from != -1 && from > now) {
		utc(from, when, sizeof(when));
		snprintf(err, errlen, "tls.cert_file %s: not valid before %s (check the clock, or "
		         "the certificate's dates)", cfg->cert_file, when);
		return -1;
	}
	if (until != -1 && until < now) {
		utc(until, when, sizeof(when));
		snprintf(err, errlen, "tls.cert_file %s: expired at %s: renew it", cfg->cert_file,
		         when);
		return -1;
	}
	*not_after = until;
	return 0;
}

/* The GnuTLS priority string for cfg's versions: NORMAL with only those. */
static void
priorities(const struct config_tls *cfg, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "NORMAL:-VERS-ALL");

	for (int v = cfg->max_version; v >= cfg->min_version && off < len; v--)
		off += (size_t)snprintf(buf + off, len - off, ":+VERS-TLS1.%d", v - 10);
}

/*
 * Reads cfg's files into a new set (one reference, the caller's). cert and
 * key: if not NULL, the PEM read, for the caller to keep (free_pem).
 */
static int
load(const struct config_tls *cfg, struct tls_material **out, gnutls_datum_t *cert,
     gnutls_datum_t *key, char *err, size_t errlen)
{
	gnutls_datum_t c = {0}, k = {0}, ca = {0};
	gnutls_x509_privkey_t pk = NULL;
	struct tls_material *m = calloc(1, sizeof(*m));
	char prio[128];
	const char *pos = NULL;
	int rc = -1, r;

	if (m == NULL) {
		snprintf(err, errlen, "tls: out of memory");
		return -1;
	}
	atomic_init(&m->refs, 1);
	m->auth = cfg->client_auth;
	if (read_pem("tls.cert_file", cfg->cert_file, &c, err, errlen) == -1 ||
	    check_cert(cfg, &c, &m->not_after, err, errlen) == -1 ||
	    read_pem("tls.key_file", cfg->key_file, &k, err, errlen) == -1)
		goto out;
	if (gnutls_x509_privkey_init(&pk) < 0 ||
	    (r = gnutls_x509_privkey_import2(pk, &k, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(err, errlen, "tls.key_file %s: no unencrypted PEM private key in it",
		         cfg->key_file);
		goto out;
	}
	if (gnutls_certificate_allocate_credentials(&m->cred) < 0) {
		snprintf(err, errlen, "tls: out of memory");
		goto out;
	}
	r = gnutls_certificate_set_x509_key_mem(m->cred, &c, &k, GNUTLS_X509_FMT_PEM);
	if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
		snprintf(err, errlen, "tls.key_file %s: not the key of tls.cert_file %s (a pair "
		         "half renewed?)", cfg->key_file, cfg->cert_file);
		goto out;
	}
	if (r < 0) {
		snprintf(err, errlen, "tls.cert_file %s: cannot use it with tls.key_file %s: %s",
		         cfg->cert_file, cfg->key_file, gnutls_strerror(r));
		goto out;
	}
	if (cfg->client_ca_file != NULL) {
		if (read_pem("tls.client_ca_file", cfg->client_ca_file, &ca, err, errlen) == -1)
			goto out;
		r = gnutls_certificate_set_x509_trust_mem(m->cred, &ca, GNUTLS_X509_FMT_PEM);
		if (r <= 0) {
			snprintf(err, errlen, "tls.client_ca_file %s: no PEM certificate in it (%s)",
			         cfg->client_ca_file, r < 0 ? gnutls_strerror(r) : "empty");
			goto out;
		}
	}
	priorities(cfg, prio, sizeof(prio));
	r = gnutls_priority_init(&m->prio, prio, &pos);
	if (r < 0) {
		m->prio = NULL;
		snprintf(err, errlen, "tls.min_version: this GnuTLS refuses \"%s\": %s", prio,
		         gnutls_strerror(r));
		goto out;
	}
	*out = m;
	m = NULL;
	if (cert != NULL) {
		*cert = c;
		c = (gnutls_datum_t){0};
	}
	if (key != NULL) {
		*key = k;
		k = (gnutls_datum_t){0};
	}
	rc = 0;
out:
	if (pk != NULL)
		gnutls_x509_privkey_deinit(pk);
	free_pem(&c);
	free_pem(&k);
	free_pem(&ca);
	if (m != NULL)
		material_free(m);
	return rc;
}

static void
material_free(struct tls_material *m)
{
	if (m->cred != NULL)
		gnutls_certificate_free_credentials(m->cred);
	if (m->prio != NULL)
		gnutls_priority_deinit(m->prio);
	free(m);
}

void
tls_release(struct tls_material *m)
{
	if (m != NULL && atomic_fetch_sub(&m->refs, 1) == 1)
		material_free(m);
}

static void
sign(const struct config_tls *cfg, struct file_sig sig[NFILES])
{
	const char *paths[NFILES] = {cfg->cert_file, cfg->key_file, cfg->client_ca_file};

	for (size_t i = 0; i < NFILES; i++) {
		struct stat st;

		sig[i] = (struct file_sig){0};
		if (paths[i] == NULL)
			continue;
		if (stat(paths[i], &st) == -1) {
			sig[i].err = errno;
			continue;
		}
		sig[i].dev = st.st_dev;
		sig[i].ino = st.st_ino;
		sig[i].size = st.st_size;
		sig[i].mtime = st.st_mtim;
		sig[i].ctime = st.st_ctim;
	}
}

static bool
same_sig(const struct file_sig *a, const struct file_sig *b)
{
	for (size_t i = 0; i < NFILES; i++)
		if (a[i].err != b[i].err || a[i].dev != b[i].dev || a[i].ino != b[i].ino ||
		    a[i].size != b[i].size || a[i].mtime.tv_sec != b[i].mtime.tv_sec ||
		    a[i].mtime.tv_nsec != b[i].mtime.tv_nsec || a[i].ctime.tv_sec != b[i].ctime.tv_sec ||
		    a[i].ctime.tv_nsec != b[i].ctime.tv_nsec)
			return false;
	return true;
}

static int
copy_cfg(struct config_tls *to, const struct config_tls *from)
{
	struct config_tls c = *from;

	c.cert_file = strdup(from->cert_file);
	c.key_file = strdup(from->key_file);
	c.client_ca_file = from->client_ca_file ? strdup(from->client_ca_file) : NULL;
	if (c.cert_file == NULL || c.key_file == NULL ||
	    (from->client_ca_file != NULL && c.client_ca_file == NULL)) {
		free(c.cert_file);
		free(c.key_file);
		free(c.client_ca_file);
		return -1;
	}
	free(to->cert_file);
	free(to->key_file);
	free(to->client_ca_file);
	*to = c;
	return 0;
}

static void
publish(const struct tls_material *m)
{
	atomic_store(&tls_not_after, m->not_after);
	atomic_store(&tls_on, true);
}

struct tls *
tls_open(const struct config_tls *cfg, char *err, size_t errlen)
{
	struct tls *t = calloc(1, sizeof(*t));
	gnutls_datum_t cert = {0}, key = {0};
	char until[64];

	if (t == NULL || copy_cfg(&t->cfg, cfg) == -1) {
		free(t);
		snprintf(err, errlen, "tls: out of memory");
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	sign(&t->cfg, t->loaded); /* before reading: a change meanwhile is seen later */
	if (load(&t->cfg, &t->cur, &cert, &key, err, errlen) == -1) {
		tls_free(t);
		return NULL;
	}
	t->boot_cert = (char *)cert.data;
	t->boot_key = (char *)key.data;
	t->next_poll = clock_ms() + TLS_POLL_MS;
	publish(t->cur);
	utc(t->cur->not_after, until, sizeof(until));
	log_info("tls: certificate %s, valid until %s; client certificates: %s", t->cfg.cert_file,
	         until, config_client_auth_name(t->cfg.client_auth));
	return t;
}

void
tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	tls_release(t->cur);
	if (t->boot_key != NULL)
		explicit_bzero(t->boot_key, strlen(t->boot_key));
	gnutls_free(t->boot_cert);
	gnutls_free(t->boot_key);
	free(t->cfg.cert_file);
	free(t->cfg.key_file);
	free(t->cfg.client_ca_file);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

const char *
tls_boot_cert(const struct tls *t)
{
	return t->boot_cert;
}

const char *
tls_boot_key(const struct tls *t)
{
	return t->boot_key;
}

void
tls_on_refused(tls_refused_fn fn)
{
	tls_refused_hook = fn;
}

/*
 * Refuses the client's certificate with the alert Go's crypto/tls sends, so
 * that the client says why (libmicrohttpd closes a failed handshake without
 * one: "EOF" instead of "certificate required"). The hook keeps the socket
 * open a while, or a request sent behind the client's Finished makes the
 * close a reset that loses the alert.
 */
static int
refuse(gnutls_session_t session, gnutls_alert_description_t alert, int err)
{
	(void)gnutls_alert_send(session, GNUTLS_AL_FATAL, alert); /* best effort */
	if (tls_refused_hook != NULL)
		tls_refused_hook(gnutls_session_get_ptr(session));
	return err;
}

/* No certificate where one is required: TLS 1.3 has an alert for it. */
static int
refuse_missing(gnutls_session_t session)
{
	return refuse(session,
	              gnutls_protocol_get_version(session) == GNUTLS_TLS1_3
	                  ? GNUTLS_A_CERTIFICATE_REQUIRED
	                  : GNUTLS_A_BAD_CERTIFICATE,
	              GNUTLS_E_NO_CERTIFICATE_FOUND);
}

/*
 * Verified as Go's crypto/tls does for a client: the chain against the
 * client CA, each certificate in its validity, the leaf's purpose (if it
 * names one) TLS client. Failing here fails the handshake, with an alert.
 */
static int
verify_client(gnutls_session_t session, bool required)
{
	gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
	                                 .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
	unsigned n = 0, status = 0;

	if (gnutls_certificate_get_peers(session, &n) == NULL || n == 0)
		return required ? refuse_missing(session) : 0;
	if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0 || status != 0)
		return refuse(session,
		              (status & GNUTLS_CERT_EXPIRED) ? GNUTLS_A_CERTIFICATE_EXPIRED
		              : (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
		                  ? GNUTLS_A_UNKNOWN_CA
		                  : GNUTLS_A_BAD_CERTIFICATE,
		              GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR);
	return 0;
}

static int
verify_required(gnutls_session_t session)
{
	return verify_client(session, true);
}

static int
verify_if_given(gnutls_session_t session)
{
	return verify_client(session, false);
}

/* RequireAnyClientCert: a certificate (whose key the client proved it
 * holds), not verified. */
static int
require_any(gnutls_session_t session)
{
	unsigned n = 0;

	if (gnutls_certificate_get_peers(session, &n) == NULL || n == 0)
		return refuse_missing(session);
	return 0;
}

struct tls_material *
tls_session_start(struct tls *t, gnutls_session_t session)
{
	struct tls_material *m;

	pthread_mutex_lock(&t->lock);
	m = t->cur;
	atomic_fetch_add(&m->refs, 1);
	pthread_mutex_unlock(&t->lock);
	/* replaces what libmicrohttpd set from the startup's files */
	gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, m->cred);
	gnutls_priority_set(session, m->prio);
	switch (m->auth) {
	case CLIENT_AUTH_NONE:
		gnutls_certificate_server_set_request(session, GNUTLS_CERT_IGNORE);
		break;
	case CLIENT_AUTH_REQUEST:
		gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
		break;
	/* REQUEST where a certificate is required: with REQUIRE, GnuTLS ends a
	 * handshake without one before the verify function can send the alert */
	case CLIENT_AUTH_REQUIRE_ANY:
		gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
		gnutls_session_set_verify_function(session, require_any);
		break;
	case CLIENT_AUTH_VERIFY_IF_GIVEN:
		gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
		gnutls_session_set_verify_function(session, verify_if_given);
		break;
	case CLIENT_AUTH_REQUIRE_VERIFY:
		gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
		gnutls_session_set_verify_function(session, verify_required);
		break;
	}
	return m;
}

/* Reads cfg's files; on success they serve every new connection. */
static int
swap_in(struct tls *t, const struct config_tls *cfg, const char *why)
{
	struct tls_material *m = NULL, *old;
	struct file_sig sig[NFILES];
	char err[1024], until[64];

	sign(cfg, sig);
	if (load(cfg, &m, NULL, NULL, err, sizeof(err)) == -1 ||
	    (cfg != &t->cfg && copy_cfg(&t->cfg, cfg) == -1)) {
		if (m != NULL) {
			tls_release(m);
			snprintf(err, sizeof(err), "tls: out of memory");
		}
		/* the same files are not tried again until they change */
		if (cfg == &t->cfg)
			memcpy(t->failed, sig, sizeof(sig));
		else
			sign(&t->cfg, t->failed);
		t->has_failed = true;
		atomic_fetch_add(&tls_reloads[0], 1);
		log_err("tls: %s: %s; still serving the certificate loaded before", why, err);
		return -1;
	}
	memcpy(t->loaded, sig, sizeof(sig));
	t->has_pending = false;
	t->has_failed = false;
	pthread_mutex_lock(&t->lock);
	old = t->cur;
	t->cur = m;
	pthread_mutex_unlock(&t->lock);
	tls_release(old); /* freed once its last connection closes */
	publish(m);
	atomic_fetch_add(&tls_reloads[1], 1);
	utc(m->not_after, until, sizeof(until));
	log_info("tls: %s: certificate %s reloaded, valid until %s", why, t->cfg.cert_file, until);
	return 0;
}

int
tls_reload(struct tls *t, const struct config_tls *cfg)
{
	if (cfg == NULL || !cfg->on)
		cfg = &t->cfg;
	return swap_in(t, cfg, "SIGHUP");
}

void
tls_poll(struct tls *t)
{
	struct file_sig now[NFILES];
	int64_t ms = clock_ms();

	if (ms < t->next_poll)
		return;
	t->next_poll = ms + TLS_POLL_MS;
	sign(&t->cfg, now);
	if (same_sig(now, t->loaded) || (t->has_failed && same_sig(now, t->failed))) {
		t->has_pending = false;
		return;
	}
	if (!t->has_pending || !same_sig(now, t->pending)) {
		/* changed since the last look: maybe still being written */
		memcpy(t->pending, now, sizeof(now));
		t->has_pending = true;
		return;
	}
	swap_in(t, &t->cfg, "files changed");
}

bool
tls_stats(struct tls_stats *st)
{
	if (!atomic_load(&tls_on))
		return false;
	st->not_after = atomic_load(&tls_not_after);
	st->reloads_ok = atomic_load(&tls_reloads[1]);
	st->reloads_failed = atomic_load(&tls_reloads[0]);
	return true;
}
