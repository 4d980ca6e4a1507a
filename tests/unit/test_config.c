/* Unit tests: the config file, its one-line errors, and plugin options. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "testing.h"

static char dir[] = "/tmp/healthd-config-test-XXXXXX";

static const char *
write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads text as a config file; returns the rc and leaves the error in err. */
static int
load_text(struct config *c, const char *text, char *err, size_t errlen)
{
	const char *path = write_file("healthd.json", text);

	config_init(c);
	err[0] = '\0';
	if (config_load(c, path, err, errlen) == -1)
		return -1;
	return config_read_secret(c, err, errlen); /* as the server does after the overrides */
}

/* Expects text to be refused with an error containing want (and the file). */
static void
expect_refused(const char *text, const char *want)
{
	struct config c;
	char err[1024];

	EXPECT_EQ_INT(-1, load_text(&c, text, err, sizeof(err)));
	EXPECT_CONTAINS(want, err);
	EXPECT_CONTAINS("/healthd.json", err);
	EXPECT_TRUE(strchr(err, '\n') == NULL); /* one line */
	config_free(&c);
}

DEF_TEST(embedded_default)
{
	struct config c;

	EXPECT_EQ_INT(0, config_init(&c));
	EXPECT_EQ_INT(1, c.nlisten);
	EXPECT_EQ_STR("127.0.0.1:8080", c.listen[0]);
	EXPECT_EQ_STR("/health", c.url_prefix);
	EXPECT_EQ_INT(SECRET_UNSET, c.secret_mode);
	EXPECT_TRUE(c.plugin_dir == NULL);
	EXPECT_EQ_INT(0, c.nchecks);
	config_free(&c);
	return 0;
}

DEF_TEST(errors_name_file_key_problem)
{
	expect_refused("{\"listen\": \"127.0.0.1:8080\",\n \"bogus\": 1}", "healthd.json: bogus: unknown key");
	expect_refused("{\"workers\": \"8\"}", "workers: expected an integer from 1 to 1024, got a string");
	expect_refused("{\"workers\": 0}", "workers: expected an integer from 1 to 1024, got 0");
	expect_refused("{\"listen\": \"127.0.0.1:99999\"}", "listen: port must be a number");
	expect_refused("{\"listen\": \"::1:80\"}", "listen: write IPv6 addresses in brackets");
	expect_refused("{\"listen\": [\"127.0.0.1:1\", 5]}", "listen[1]: expected a string, got an integer");
	expect_refused("{\"url_prefix\": \"health\"}", "url_prefix: must start with '/'");
	expect_refused("{\"url_secret\": \"\"}", "url_secret: must not be empty; use null");
	expect_refused("{\"url_secret\": 5}", "url_secret: expected a string");
	expect_refused("{\"checks\": {}}", "checks: expected a list of checks, got an object");
	expect_refused("{\"checks\": [{\"plugin\": \"dummy\"}]}", "checks[0]: missing \"name\"");
	expect_refused("{\"checks\": [{\"name\": \"x\"}]}", "checks[0]: missing \"plugin\"");
	expect_refused("{\"checks\": [{\"name\": \"x\", \"plugin\": \"d\", \"timeout_ms\": 0}]}",
	               "checks[0].timeout_ms: expected an integer from 1 to 3600000, got 0");
	expect_refused("{\"checks\": [{\"name\": \"x\", \"plugin\": \"d\", \"defaults\": 1}]}",
	               "checks[0].defaults: expected true or false");
	expect_refused("{\"checks\": [{\"name\": \"x\", \"plugin\": \"d\", \"url\": [[1]]}]}",
	               "checks[0].url[0]: expected a string, number or boolean, got an array");
	expect_refused("{\"checks\": [{\"name\": \"x\", \"plugin\": \"d\", \"url\": {\"a\": []}}]}",
	               "checks[0].url.a: expected a string, number or boolean, got an array");
	expect_refused("{\"limits\": {\"max_names\": 0}}", "limits.max_names: expected an integer");
	expect_refused("{\"limits\": {\"max_nmes\": 5}}", "limits.max_nmes: unknown key");
	expect_refused("{\"limits\": {\"header_timeout_s\": 0}}",
	               "limits.header_timeout_s: expected an integer from 1 to 86400, got 0");
	expect_refused("{\"limits\": {\"send_timeout_s\": \"5\"}}",
	               "limits.send_timeout_s: expected an integer");
	expect_refused("{\"metrics_path\": \"metrics\"}", "metrics_path: expected a path");
	return 0;
}

/* The total-time limits of issue #10: defaults, and each key read. */
DEF_TEST(time_limits)
{
	struct config c;
	char err[512];

	EXPECT_EQ_INT(0, config_init(&c));
	EXPECT_EQ_INT(30, c.limits.header_timeout_s);
	EXPECT_EQ_INT(30, c.limits.body_timeout_s);
	EXPECT_EQ_INT(30, c.limits.send_timeout_s);
	EXPECT_EQ_INT(16384, c.limits.max_request_bytes);
	config_free(&c);
	EXPECT_EQ_INT(0, load_text(&c, "{\"limits\": {\"header_timeout_s\": 7, \"body_timeout_s\": 8, "
	                               "\"send_timeout_s\": 9}}", err, sizeof(err)));
	EXPECT_EQ_INT(7, c.limits.header_timeout_s);
	EXPECT_EQ_INT(8, c.limits.body_timeout_s);
	EXPECT_EQ_INT(9, c.limits.send_timeout_s);
	config_free(&c);
	return 0;
}

DEF_TEST(invalid_json_has_line_and_column)
{
	expect_refused("{\"workers\": 8,\n  \"listen\" \"x\"}", "healthd.json:2:");
	expect_refused("{\"workers\": 8,", "invalid JSON: unexpected end of file");
	expect_refused("{\"workers\": 8} trailing", "invalid JSON");
	expect_refused("{/* no comments */ \"workers\": 8}", "invalid JSON");
	expect_refused("[1, 2]", "expected a JSON object at the top, got an array");
	{
		/* a NUL byte after the object is not white space */
		struct config c;
		char err[256];
		config_init(&c);
		EXPECT_EQ_INT(-1, config_load_text(&c, "/x/h.json", "{}\0{\"workers\": 0}", 17,
		                                   err, sizeof(err)));
		EXPECT_CONTAINS("/x/h.json:1:3: invalid JSON", err);
		config_free(&c);
	}
	return 0;
}

DEF_TEST(missing_file)
{
	struct config c;
	char err[512];

	config_init(&c);
	EXPECT_EQ_INT(-1, config_load(&c, "/nonexistent/healthd.json", err, sizeof(err)));
	EXPECT_EQ_STR("/nonexistent/healthd.json: cannot read: No such file or directory", err);
	config_free(&c);
	return 0;
}

DEF_TEST(secret_sources)
{
	struct config c;
	char err[1024], text[1024];
	const char *path;

	EXPECT_EQ_INT(0, load_text(&c, "{\"url_secret\": null}", err, sizeof(err)));
	EXPECT_EQ_INT(SECRET_OFF, c.secret_mode);
	config_free(&c);
	EXPECT_EQ_INT(0, load_text(&c, "{\"url_secret\": \"abc\"}", err, sizeof(err)));
	EXPECT_EQ_INT(SECRET_SET, c.secret_mode);
	EXPECT_EQ_STR("abc", c.secret);
	config_free(&c);

	path = write_file("secret", "from-file\n");
	snprintf(text, sizeof(text), "{\"url_secret_file\": \"%s\"}", path);
	EXPECT_EQ_INT(0, load_text(&c, text, err, sizeof(err)));
	EXPECT_EQ_STR("from-file", c.secret);
	config_free(&c);
	/* relative to the config file's directory */
	EXPECT_EQ_INT(0, load_text(&c, "{\"url_secret_file\": \"secret\"}", err, sizeof(err)));
	EXPECT_EQ_STR("from-file", c.secret);
	config_free(&c);

	write_file("empty", "\n");
	expect_refused("{\"url_secret_file\": \"empty\"}", "url_secret_file: ");
	expect_refused("{\"url_secret_file\": \"missing\"}", "url_secret_file: cannot read");
	expect_refused("{\"url_secret\": \"a\", \"url_secret_file\": \"secret\"}",
	               "give either url_secret or url_secret_file");

	/* overridden (HEALTH_URL_SECRET, --no-url-secret): a missing file is not read */
	config_init(&c);
	EXPECT_EQ_INT(0, config_load(&c, write_file("healthd.json",
	                                            "{\"url_secret_file\": \"missing\"}"),
	                             err, sizeof(err)));
	EXPECT_TRUE(c.secret_pending);
	c.secret_pending = false;
	EXPECT_EQ_INT(0, config_read_secret(&c, err, sizeof(err)));
	EXPECT_TRUE(c.secret == NULL);
	EXPECT_CONTAINS("/missing", c.secret_file); /* kept for the sandbox to hide */
	config_free(&c);
	return 0;
}

DEF_TEST(check_options_as_strings)
{
	struct config c;
	char err[1024];
	const struct healthd_options *o;

	EXPECT_EQ_INT(0, load_text(&c,
	    "{\"checks\": [{\"name\": \"api\", \"plugin\": \"http\", \"url\": \"http://x/\","
	    " \"expect_status\": 204, \"tls_verify\": false, \"ratio\": 0.5,"
	    " \"header\": {\"X-A\": \"b\"}, \"defaults\": false, \"timeout_ms\": 300,"
	    " \"cache_ms\": 1000, \"command\": [\"/bin/x\", 7]}]}", err, sizeof(err)));
	EXPECT_EQ_INT(1, c.nchecks);
	EXPECT_EQ_STR("api", c.checks[0].name);
	EXPECT_EQ_STR("http", c.checks[0].plugin);
	EXPECT_TRUE(!c.checks[0].defaults);
	EXPECT_EQ_INT(300, c.checks[0].timeout_ms);
	EXPECT_EQ_INT(1000, c.checks[0].cache_ms);
	o = &c.checks[0].options;
	EXPECT_EQ_INT(7, o->n);
	EXPECT_EQ_STR("url", o->v[0].key);
	EXPECT_EQ_STR("http://x/", o->v[0].value);
	EXPECT_EQ_STR("204", o->v[1].value);
	EXPECT_EQ_STR("false", o->v[2].value);
	EXPECT_EQ_STR("0.5", o->v[3].value);
	EXPECT_EQ_STR("header:X-A", o->v[4].key);
	EXPECT_EQ_STR("b", o->v[4].value);
	/* an array arrives element by element (ABI 1.2) */
	EXPECT_EQ_STR("command:0", o->v[5].key);
	EXPECT_EQ_STR("/bin/x", o->v[5].value);
	EXPECT_EQ_STR("command:1", o->v[6].key);
	EXPECT_EQ_STR("7", o->v[6].value);
	config_free(&c);
	return 0;
}

DEF_TEST(checks_dir_in_file_name_order)
{
	struct config c;
	char err[1024];

	mkdir(strcat(strcpy(err, dir), "/checks.d"), 0700);
	write_file("checks.d/20-b.json", "[{\"name\": \"b\", \"plugin\": \"dummy\"}]");
	write_file("checks.d/10-a.json", "[{\"name\": \"a1\", \"plugin\": \"dummy\"},"
	                                 " {\"name\": \"a2\", \"plugin\": \"dummy\"}]");
	write_file("checks.d/ignored.txt", "not json");
	EXPECT_EQ_INT(0, load_text(&c, "{\"checks_dir\": \"checks.d\", \"checks\": "
	                               "[{\"name\": \"main\", \"plugin\": \"dummy\"}]}",
	                           err, sizeof(err)));
	EXPECT_EQ_INT(4, c.nchecks);
	EXPECT_EQ_STR("main", c.checks[0].name);
	EXPECT_EQ_STR("a1", c.checks[1].name);
	EXPECT_EQ_STR("a2", c.checks[2].name);
	EXPECT_EQ_STR("b", c.checks[3].name);
	EXPECT_CONTAINS("checks.d/10-a.json: [1]", c.checks[2].origin);
	config_free(&c);

	write_file("checks.d/30-bad.json", "[{\"name\": \"c\", \"plugin\": \"dummy\", \"cache_ms\": -1}]");
	EXPECT_EQ_INT(-1, load_text(&c, "{\"checks_dir\": \"checks.d\"}", err, sizeof(err)));
	EXPECT_CONTAINS("checks.d/30-bad.json: [0].cache_ms: expected an integer", err);
	config_free(&c);
	return 0;
}

DEF_TEST(prefix_and_listen_normalised)
{
	struct config c;
	char err[512];
	const char *addrs[] = {"[::1]:0", "*:8080", "localhost:80"};

	config_init(&c);
	EXPECT_EQ_INT(0, config_set_prefix(&c, "/status/", "t", err, sizeof(err)));
	EXPECT_EQ_STR("/status", c.url_prefix);
	EXPECT_EQ_INT(0, config_set_prefix(&c, "/", "t", err, sizeof(err)));
	EXPECT_EQ_STR("", c.url_prefix);
	EXPECT_EQ_INT(-1, config_set_prefix(&c, "/a b", "--url-prefix", err, sizeof(err)));
	EXPECT_CONTAINS("--url-prefix: may not contain", err);
	EXPECT_EQ_INT(0, config_set_listen(&c, addrs, 3, "t", err, sizeof(err)));
	EXPECT_EQ_INT(3, c.nlisten);
	config_free(&c);
	return 0;
}

static bool
known_check(const void *arg, const char *name)
{
	(void)arg;
	return strcmp(name, "nope") != 0; /* a plugin registers the rest */
}

/* Expects text to load and its depends_on to be refused with want. */
static void
expect_depends_refused(const char *text, const char *want)
{
	struct config c;
	char err[1024];

	EXPECT_EQ_INT(0, load_text(&c, text, err, sizeof(err)));
	err[0] = '\0';
	EXPECT_EQ_INT(-1, config_check_depends(&c, known_check, NULL, err, sizeof(err)));
	EXPECT_CONTAINS(want, err);
	EXPECT_CONTAINS("/healthd.json: ", err);
	config_free(&c);
}

/* Issue 24: history settings, state_dir, status_public, depends_on. */
DEF_TEST(history_and_depends_on)
{
	struct config c;
	char err[1024];

	EXPECT_EQ_INT(0, config_init(&c));
	EXPECT_TRUE(c.state_dir == NULL);
	EXPECT_TRUE(!c.status_public);
	EXPECT_TRUE(c.history.flap_low == 20.0 && c.history.flap_high == 30.0);
	EXPECT_EQ_INT(4 << 20, c.history.max_file_bytes);
	config_free(&c);
	EXPECT_EQ_INT(0, load_text(&c, "{\"state_dir\": \"state\", \"status_public\": true, "
	              "\"history\": {\"max_file_bytes\": 65536, \"flap_low_percent\": 5, "
	              "\"flap_high_percent\": 20.5}, \"checks\": [{\"name\": \"gw\", \"plugin\": "
	              "\"d\"}, {\"name\": \"orders\", \"plugin\": \"d\", \"depends_on\": "
	              "[\"gw\", \"true\"]}]}", err, sizeof(err)));
	EXPECT_EQ_STR("", err);
	EXPECT_CONTAINS("/state", c.state_dir); /* relative to the file */
	EXPECT_TRUE(c.status_public);
	EXPECT_EQ_INT(65536, c.history.max_file_bytes);
	EXPECT_TRUE(c.history.flap_low == 5.0 && c.history.flap_high == 20.5);
	EXPECT_EQ_INT(2, c.checks[1].ndepends_on);
	EXPECT_EQ_STR("true", c.checks[1].depends_on[1]);
	EXPECT_EQ_INT(0, c.checks[1].options.n); /* the host's key, not the plugin's */
	EXPECT_EQ_INT(0, config_check_depends(&c, known_check, NULL, err, sizeof(err)));
	config_free(&c);

	expect_refused("{\"history\": {\"flap_low_percent\": 40}}",
	               "history: flap_low_percent (40) is above flap_high_percent (30)");
	expect_refused("{\"history\": {\"flap_high_percent\": 101}}",
	               "history.flap_high_percent: expected a number from 0 to 100, got 101");
	expect_refused("{\"history\": {\"max_file_bytes\": 10}}",
	               "history.max_file_bytes: expected an integer from 3584");
	expect_refused("{\"history\": {\"size\": 10}}", "history.size: unknown key");
	expect_refused("{\"status_public\": 1}", "status_public: expected true or false");
	expect_refused("{\"checks\": [{\"name\": \"a\", \"plugin\": \"d\", \"depends_on\": "
	               "\"b\"}]}", "checks[0].depends_on: expected a list of check names");
	expect_refused("{\"checks\": [{\"name\": \"a\", \"plugin\": \"d\", \"depends_on\": "
	               "[1]}]}", "checks[0].depends_on[0]: expected a string");
	expect_depends_refused("{\"checks\": [{\"name\": \"a\", \"plugin\": \"d\", "
	                       "\"depends_on\": [\"nope\"]}]}",
	                       "checks[0].depends_on: unknown check \"nope\"");
	/* the example: reported where the cycle closes, in one line */
	expect_depends_refused("{\"checks\": [{\"name\": \"gateway\", \"plugin\": \"d\", "
	                       "\"depends_on\": [\"orders\"]}, {\"name\": \"orders\", "
	                       "\"plugin\": \"d\", \"depends_on\": [\"gateway\"]}]}",
	                       "healthd.json: checks[1].depends_on: cycle orders -> gateway -> orders");
	expect_depends_refused("{\"checks\": [{\"name\": \"a\", \"plugin\": \"d\", "
	                       "\"depends_on\": [\"a\"]}]}", "checks[0].depends_on: cycle a -> a");
	expect_depends_refused("{\"checks\": [{\"name\": \"x\", \"plugin\": \"d\"}, "
	                       "{\"name\": \"a\", \"plugin\": \"d\", \"depends_on\": [\"x\", \"b\"]}, "
	                       "{\"name\": \"b\", \"plugin\": \"d\", \"depends_on\": [\"c\"]}, "
	                       "{\"name\": \"c\", \"plugin\": \"d\", \"depends_on\": [\"a\"]}]}",
	                       "checks[3].depends_on: cycle c -> a -> b -> c");
	return 0;
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN_TEST(embedded_default);
	RUN_TEST(errors_name_file_key_problem);
	RUN_TEST(time_limits);
	RUN_TEST(invalid_json_has_line_and_column);
	RUN_TEST(missing_file);
	RUN_TEST(secret_sources);
	RUN_TEST(check_options_as_strings);
	RUN_TEST(checks_dir_in_file_name_order);
	RUN_TEST(prefix_and_listen_normalised);
	RUN_TEST(history_and_depends_on);
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	END_TEST;
}
