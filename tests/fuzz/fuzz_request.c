/*
 * Fuzz target: a request target ("path?query") as a client sends it, decoded
 * the way libmicrohttpd decodes it (MHD_http_unescape, '+' as space, '&' and
 * '='), then routed, authorized and turned into a check selection.
 * Invariants: the route is a route; the selection holds registered checks
 * only, each once, sorted by name; auth_equal agrees with memcmp.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "auth.h"
#include "http.h"
#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "s3cret";
static struct registry *reg;

static enum healthd_status
run_ok(void *state, struct healthd_report *report)
{
	(void)state;
	(void)report;
	return HEALTHD_OK;
}

static void
setup(void)
{
	static const char *const names[] = {"true", "false", "db", "api", "a", "b", "x.y:z-1",
	                                    "cache", "Z", "db2"};
	char err[256];

	reg = registry_new();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct check c = {.run = run_ok, .in_defaults = i % 3 == 0, .origin = "fuzz"};
		strcpy(c.name, names[i]);
		if (registry_add(reg, &c, err, sizeof(err)) == -1)
			abort();
	}
	registry_seal(reg);
}

/* What libmicrohttpd does to one key or value of a query string. */
static size_t
decode(char *s)
{
	for (char *p = s; *p != '\0'; p++)
		if (*p == '+')
			*p = ' ';
	return MHD_http_unescape(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t count, n, checks_len = 0, auth_len = 0;
	const char *checks = NULL, *auth = NULL;
	char *buf, *query, *part, *save = NULL;
	uint32_t ids[16];
	uint8_t mark[16];
	bool truncated;

	if (reg == NULL)
		setup();
	count = registry_count(reg);
	buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	query = strchr(buf, '?');
	if (query != NULL)
		*query++ = '\0';
	decode(buf);
	assert(http_route(buf, "/health", "/metrics") < ROUTE_COUNT);
	assert(http_route(buf, "", NULL) < ROUTE_COUNT);

	for (part = query ? strtok_r(query, "&", &save) : NULL; part != NULL;
	     part = strtok_r(NULL, "&", &save)) {
		char *value = strchr(part, '=');
		size_t vlen = 0;
		if (value != NULL) {
			*value++ = '\0';
			vlen = decode(value);
		}
		decode(part);
		if (strcmp(part, "checks") == 0 && checks == NULL) {
			checks = value ? value : "";
			checks_len = vlen;
		} else if (strcmp(part, "auth") == 0 && auth == NULL) {
			auth = value ? value : "";
			auth_len = vlen;
		}
	}
	if (auth != NULL)
		assert(auth_equal(auth, auth_len, secret, 6) ==
		       (auth_len == 6 && memcmp(auth, secret, 6) == 0));

	n = registry_select(reg, checks != NULL, checks, checks_len, 8, mark, ids, &truncated);
	assert(n <= count);
	for (size_t i = 0; i < n; i++) {
		assert(ids[i] < count);
		if (i > 0)
			assert(strcmp(registry_at(reg, ids[i - 1])->name,
			              registry_at(reg, ids[i])->name) < 0);
	}
	free(buf);
	return 0;
}
