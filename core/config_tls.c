/* config_tls.c - the configuration's "tls": the Prometheus exporter-toolkit's
 * tls_server_config names and meanings. The files themselves are read and
 * checked by tls.c (at startup and --check-config, and on each reload). */
#include "config_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* client_auth_type's values, as Go's crypto/tls spells them. */
static const struct {
	const char *name;
	enum config_client_auth auth;
} client_auths[] = {
	{"NoClientCert",               CLIENT_AUTH_NONE},
	{"RequestClientCert",          CLIENT_AUTH_REQUEST},
	{"RequireAnyClientCert",       CLIENT_AUTH_REQUIRE_ANY},
	{"VerifyClientCertIfGiven",    CLIENT_AUTH_VERIFY_IF_GIVEN},
	{"RequireAndVerifyClientCert", CLIENT_AUTH_REQUIRE_VERIFY},
	{"RequireClientCert",          CLIENT_AUTH_REQUIRE_ANY}, /* the toolkit's old name */
};

/* min_version and max_version's values. */
static const struct {
	const char *name;
	int version;
} versions[] = {
	{"TLS10", 10},
	{"TLS11", 11},
	{"TLS12", 12},
	{"TLS13", 13},
};

const char *
config_client_auth_name(enum config_client_auth a)
{
	for (size_t i = 0; i < sizeof(client_auths) / sizeof(client_auths[0]); i++)
		if (client_auths[i].auth == a)
			return client_auths[i].name;
	return "?";
}

static int
tls_path(struct reader *rd, const char *where, struct json_object *v, char **field)
{
	const char *s = config_want_string(rd, where, v);

	if (s == NULL)
		return -1;
	if (*s == '\0')
		return config_fail(rd, where, "expected a file name, got \"\"");
	free(*field);
	*field = config_resolve_path(rd, s);
	if (*field == NULL)
		return config_fail(rd, where, "out of memory");
	return 0;
}

static int
tls_version(struct reader *rd, const char *where, struct json_object *v, int *out)
{
	const char *s = config_want_string(rd, where, v);

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (strcmp(versions[i].name, s) == 0) {
			*out = versions[i].version;
			return 0;
		}
	}
	return config_fail(rd, where, "unknown version \"%.100s\" (known: TLS10, TLS11, TLS12, "
	                   "TLS13)", s);
}

static int
tls_client_auth(struct reader *rd, const char *where, struct json_object *v)
{
	const char *s = config_want_string(rd, where, v);

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(client_auths) / sizeof(client_auths[0]); i++) {
		if (strcmp(client_auths[i].name, s) == 0) {
			rd->c->tls.client_auth = client_auths[i].auth;
			return 0;
		}
	}
	return config_fail(rd, where, "unknown value \"%.100s\" (known: NoClientCert, "
	                   "RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, "
	                   "RequireAndVerifyClientCert)", s);
}

/* "tls": {"cert_file": ..., "key_file": ..., "client_ca_file": ...,
 * "client_auth_type": ..., "min_version": ..., "max_version": ...}. */
int
config_key_tls(struct reader *rd, const char *key, struct json_object *v)
{
	struct config_tls *t = &rd->c->tls;
	char where[256];
	int rc = 0;

	if (!json_object_is_type(v, json_type_object))
		return config_fail(rd, key, "expected an object, got %s", config_type_name(v));
	config_tls_free(t);
	*t = (struct config_tls){.on = true, .min_version = 12, .max_version = 13};
	json_object_object_foreach(v, k, val) {
		snprintf(where, sizeof(where), "%s.%.100s", key, k);
		if (strcmp(k, "cert_file") == 0)
			rc = tls_path(rd, where, val, &t->cert_file);
		else if (strcmp(k, "key_file") == 0)
			rc = tls_path(rd, where, val, &t->key_file);
		else if (strcmp(k, "client_ca_file") == 0)
			rc = tls_path(rd, where, val, &t->client_ca_file);
		else if (strcmp(k, "client_auth_type") == 0)
			rc = tls_client_auth(rd, where, val);
		else if (strcmp(k, "min_version") == 0)
			rc = tls_version(rd, where, val, &t->min_version);
		else if (strcmp(k, "max_version") == 0)
			rc = tls_version(rd, where, val, &t->max_version);
		else
			rc = config_fail(rd, where, "unknown key (known: cert_file, key_file, "
			                 "client_ca_file, client_auth_type, min_version, max_version)");
		if (rc == -1)
			return -1;
	}
	snprintf(where, sizeof(where), "%s.cert_file", key);
	if (t->cert_file == NULL)
		return config_fail(rd, where, "missing: HTTPS needs a certificate (PEM)");
	snprintf(where, sizeof(where), "%s.key_file", key);
	if (t->key_file == NULL)
		return config_fail(rd, where, "missing: HTTPS needs the certificate's private key (PEM)");
	/* as the exporter-toolkit: a CA without a policy, or a policy without a CA */
	snprintf(where, sizeof(where), "%s.client_ca_file", key);
	if ((t->client_auth == CLIENT_AUTH_VERIFY_IF_GIVEN ||
	     t->client_auth == CLIENT_AUTH_REQUIRE_VERIFY) && t->client_ca_file == NULL)
		return config_fail(rd, where, "missing: client_auth_type %s verifies client "
		                   "certificates against it", config_client_auth_name(t->client_auth));
	if (t->client_auth == CLIENT_AUTH_NONE && t->client_ca_file != NULL)
		return config_fail(rd, where, "given, but client_auth_type is NoClientCert: set "
		                   "client_auth_type (e.g. RequireAndVerifyClientCert)");
	snprintf(where, sizeof(where), "%s.max_version", key);
	if (t->max_version < t->min_version)
		return config_fail(rd, where, "below min_version");
	return 0;
}

void
config_tls_free(struct config_tls *t)
{
	free(t->cert_file);
	free(t->key_file);
	free(t->client_ca_file);
	*t = (struct config_tls){0};
}
