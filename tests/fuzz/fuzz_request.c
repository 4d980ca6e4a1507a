/*
 * Fuzz target: a request target ("path?query") as a client sends it, decoded
 * the way libmicrohttpd decodes it (MHD_http_unescape, '+' as space, '&' and
 * '='), then routed, authorized and turned into a check selection, less
 * ?exclude=.
 * Invariants: the route is a route, a group route names a configured group
 * and only then; the selection holds registered checks only, each once,
 * sorted by name; exclude leaves a subsequence without the excluded name;
 * auth_equal agrees with memcmp.
 * The same bytes read as a request head ("METHOD TARGET VERSION", then
 * "Key: value" lines, CRLF apart): framing is accepted only with one Host
 * (none for HTTP/1.0), at most one length and no length beside a coding, no
 * coding but chunked; an absolute-form target routes by its path.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "auth.h"
#include "config.h"
#include "http.h"
#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "s3cret";
static struct registry *reg;
/* /health with groups, metrics on; and "/" with a group, metrics off */
static struct config cfg, root_cfg;

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
	static const char with_groups[] =
		"{\"groups\": {\"live\": [\"true\"], \"ready\": {\"checks\": [\"db\", \"api\"],"
		" \"timeout_ms\": 900}, \"x.y:z-1\": [\"a\"]}}";
	static const char at_root[] =
		"{\"url_prefix\": \"/\", \"metrics_path\": null, \"groups\": {\"ready\": [\"db\"]}}";
	if (config_init(&cfg) == -1 || config_init(&root_cfg) == -1 ||
	    config_load_text(&cfg, "fuzz.json", with_groups, sizeof(with_groups) - 1, err,
	                     sizeof(err)) == -1 ||
	    config_load_text(&root_cfg, "root.json", at_root, sizeof(at_root) - 1, err,
	                     sizeof(err)) == -1 ||
	    http_check_groups(&cfg, reg, err, sizeof(err)) == -1 ||
	    http_check_groups(&root_cfg, reg, err, sizeof(err)) == -1)
		abort();
}

/* Routes url under c; a group route must name one of c's groups. */
static void
route(const char *url, const struct config *c)
{
	const struct config_group *g;
	enum route r = http_route(url, c, &g);

	assert(r < ROUTE_COUNT);
	assert((r == ROUTE_GROUP) == (g != NULL));
	if (g != NULL)
		assert(g >= c->groups && g < c->groups + c->ngroups &&
		       strcmp(strrchr(url, '/') + 1, g->name) == 0);
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

/* buf (NUL-terminated, changed) as a request head, checked as http.c checks it. */
static void
framing(char *buf)
{
	struct http_framing f = {0};
	char *save = NULL, *line = strtok_r(buf, "\r\n", &save);
	char *target, *version, *o;
	const char *origin;

	if (line == NULL || (target = strchr(line, ' ')) == NULL)
		return;
	*target++ = '\0';
	version = strrchr(target, ' ');
	if (version == NULL)
		return;
	*version++ = '\0';
	while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
		char *v = strchr(line, ':');
		if (v == NULL)
			continue;
		*v++ = '\0';
		v += strspn(v, " \t");
		http_framing_add(&f, line, strlen(line), v);
	}
	if (http_framing_ok(&f, version, strchr(target, ' ') != NULL)) {
		assert(f.hosts == 1 || (f.hosts == 0 && strcmp(version, "HTTP/1.0") == 0));
		assert(f.lengths <= 1 && !(f.lengths == 1 && f.encodings > 0));
		assert(f.encodings == 0 || (f.encodings == 1 && strcasecmp(f.encoding, "chunked") == 0));
		assert(strchr(target, ' ') == NULL);
	}
	origin = http_origin_form(target);
	assert(strcmp(origin, "/") == 0 || (origin >= target && origin <= target + strlen(target)));
	if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0)
		assert(origin[0] == '/');
	if ((o = strdup(origin)) == NULL)
		return;
	if ((target = strchr(o, '?')) != NULL)
		*target = '\0';
	decode(o);
	route(o, &cfg);
	route(o, &root_cfg);
	free(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t count, n, checks_len = 0, auth_len = 0, exclude_len = 0;
	const char *checks = NULL, *auth = NULL, *exclude = NULL;
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
	framing(buf);
	memcpy(buf, data, size); /* framing() cut it up */
	query = strchr(buf, '?');
	if (query != NULL)
		*query++ = '\0';
	decode(buf);
	route(buf, &cfg);
	route(buf, &root_cfg);

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
		} else if (strcmp(part, "exclude") == 0 && exclude == NULL) {
			exclude = value ? value : "";
			exclude_len = vlen;
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
	if (exclude != NULL && !truncated) {
		uint32_t before[16];
		size_t m;

		memcpy(before, ids, n * sizeof(*ids));
		m = registry_exclude(reg, exclude, exclude_len, 8, mark, ids, n, &truncated);
		assert(m <= n);
		for (size_t i = 0, j = 0; i < m; i++, j++) {
			while (j < n && before[j] != ids[i]) /* a subsequence of before */
				j++;
			assert(j < n);
			/* one plain name, no comma, no padding: never kept */
			if (!truncated && memchr(exclude, ',', exclude_len) == NULL &&
			    strlen(exclude) == exclude_len && exclude_len > 0 && exclude[0] != ' ' &&
			    exclude[exclude_len - 1] != ' ')
				assert(strcmp(registry_at(reg, ids[i])->name, exclude) != 0);
		}
	}
	free(buf);
	return 0;
}
