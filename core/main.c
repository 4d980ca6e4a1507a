/* main.c - the command line and its modes (serve, --check-config, --run-check,
 * --test-plugin, and the executor's own entry); the server is server.c's. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <healthd/plugin.h>

#include "config.h"
#include "crash.h"
#include "executor.h"
#include "log.h"
#include "plugin_loader.h"
#include "plugin_test.h"
#include "registry.h"
#include "run_check.h"
#include "runner.h"
#include "sandbox.h"
#include "server.h"

#ifndef HEALTHD_VERSION
#define HEALTHD_VERSION "unknown"
#endif
#ifndef HEALTHD_PLUGINDIR
#define HEALTHD_PLUGINDIR "/usr/local/lib/healthd/plugins"
#endif

struct options {
	const char *config;
	const char *listen[64];
	size_t nlisten;
	const char *plugin_dir;
	const char *url_prefix;
	bool no_url_secret;
	bool check_config;
	const char *run_check;    /* --run-check NAME */
	const char *test_plugin;  /* --test-plugin FILE, with: */
	const char *plugin_opts[64];
	size_t nplugin_opts;
	const char *test_check;
};

static const struct option long_options[] = {
	/* name            has_arg            flag  val */
	{"config",         required_argument, NULL, 'c'},
	{"listen",         required_argument, NULL, 'l'},
	{"plugin-dir",     required_argument, NULL, 'p'},
	{"url-prefix",     required_argument, NULL, 'u'},
	{"no-url-secret",  no_argument,       NULL, 'n'},
	{"check-config",   no_argument,       NULL, 't'},
	{"run-check",      required_argument, NULL, 'R'},
	{"test-plugin",    required_argument, NULL, 'T'},
	{"option",         required_argument, NULL, 'O'},
	{"check",          required_argument, NULL, 'K'},
	{"version",        no_argument,       NULL, 'V'},
	{"help",           no_argument,       NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/*
 * The plugins of the build tree when this binary is the build tree's own, so
 * that `build/core/healthd` works before `meson install`; otherwise the
 * directory it was installed with.
 */
static const char *
default_plugin_dir(void)
{
#if defined(HEALTHD_BUILD_EXE) && defined(HEALTHD_BUILD_PLUGINDIR)
	char self[PATH_MAX], built[PATH_MAX];

	if (realpath("/proc/self/exe", self) != NULL && realpath(HEALTHD_BUILD_EXE, built) != NULL &&
	    strcmp(self, built) == 0)
		return HEALTHD_BUILD_PLUGINDIR;
#endif
	return HEALTHD_PLUGINDIR;
}

static void
usage(FILE *f)
{
	fprintf(f,
	        "Usage: healthd [OPTION]...\n"
	        "Serve the health API and run the checks of the plugins in a plugin directory.\n"
	        "\n"
	        "  -c, --config FILE      read the JSON configuration FILE (default: none,\n"
	        "                         the embedded default)\n"
	        "  -l, --listen ADDR:PORT listen there instead (repeat for more; [::1]:8080\n"
	        "                         for IPv6; port 0 picks a free port)\n"
	        "      --plugin-dir DIR   load plugins from DIR (default: %s)\n"
	        "      --url-prefix P     serve P/ping and P/ (default: /health)\n"
	        "      --no-url-secret    serve P/ without a secret (auth off)\n"
	        "      --check-config     load everything, print what was found, and exit\n"
	        "                         0 if the configuration is good, 1 if not\n"
	        "      --run-check NAME   run check NAME once, print one monitoring-plugins\n"
	        "                         line, exit 0/1/2/3 with its status\n"
	        "      --test-plugin FILE run the plugin contract suite on FILE (TAP), exit\n"
	        "                         0 if it holds; with --option KEY=VALUE (repeat;\n"
	        "                         VALUE may hold the escapes \\r \\n \\t \\\\ \\xHH)\n"
	        "                         and --check NAME\n"
	        "  -V, --version          print the version and exit\n"
	        "  -h, --help             print this help and exit\n"
	        "\n"
	        "The secret for P/ comes from HEALTH_URL_SECRET, or url_secret or\n"
	        "url_secret_file in the configuration. See healthd(8).\n",
	        default_plugin_dir());
}

/* Returns -1 to exit 0 (help, version), 0 to go on, 2 on a usage error. */
static int
parse_args(int argc, char **argv, struct options *o)
{
	int ch;

	while ((ch = getopt_long(argc, argv, "c:l:hV", long_options, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'l':
			if (o->nlisten == sizeof(o->listen) / sizeof(o->listen[0])) {
				fprintf(stderr, "healthd: --listen: at most 64 addresses\n");
				return 2;
			}
			o->listen[o->nlisten++] = optarg;
			break;
		case 'p':
			o->plugin_dir = optarg;
			break;
		case 'u':
			o->url_prefix = optarg;
			break;
		case 'n':
			o->no_url_secret = true;
			break;
		case 't':
			o->check_config = true;
			break;
		case 'R':
			o->run_check = optarg;
			break;
		case 'T':
			o->test_plugin = optarg;
			break;
		case 'O':
			if (o->nplugin_opts == sizeof(o->plugin_opts) / sizeof(o->plugin_opts[0])) {
				fprintf(stderr, "healthd: --option: at most 64 options\n");
				return 2;
			}
			o->plugin_opts[o->nplugin_opts++] = optarg;
			break;
		case 'K':
			o->test_check = optarg;
			break;
		case 'V':
			printf("healthd %s (plugin ABI %d.%d)\n", HEALTHD_VERSION, HEALTHD_ABI_MAJOR,
			       HEALTHD_ABI_MINOR);
			return -1;
		case 'h':
			usage(stdout);
			return -1;
		default:
			fprintf(stderr, "Try 'healthd --help' for more information.\n");
			return 2;
		}
	}
	if ((o->nplugin_opts > 0 || o->test_check != NULL) && o->test_plugin == NULL) {
		fprintf(stderr, "healthd: --option and --check go with --test-plugin\n");
		return 2;
	}
	if (o->run_check != NULL)
		o->no_url_secret = true; /* nothing is served */
	if (optind < argc) {
		fprintf(stderr, "healthd: unexpected argument \"%s\"\n"
		        "Try 'healthd --help' for more information.\n", argv[optind]);
		return 2;
	}
	return 0;
}

static char *env_secret; /* HEALTH_URL_SECRET, out of the environment (main) */

/* Command line over file, HEALTH_URL_SECRET over url_secret. */
static int
apply_overrides(struct config *cfg, const struct options *o, char *err, size_t errlen)
{
	const char *env = env_secret;

	if (o->nlisten > 0 && config_set_listen(cfg, o->listen, o->nlisten, "--listen", err,
	                                        errlen) == -1)
		return -1;
	if (o->url_prefix != NULL &&
	    config_set_prefix(cfg, o->url_prefix, "--url-prefix", err, errlen) == -1)
		return -1;
	if (o->plugin_dir != NULL) {
		free(cfg->plugin_dir);
		cfg->plugin_dir = strdup(o->plugin_dir);
	}
	if (o->no_url_secret || env != NULL)
		cfg->secret_pending = false; /* the file is not needed: not read */
	if (o->no_url_secret) {
		cfg->secret_mode = SECRET_OFF;
	} else if (env != NULL) {
		if (env[0] == '\0') {
			snprintf(err, errlen, "HEALTH_URL_SECRET is set but empty; set it to a random "
			         "string, or unset it and pass --no-url-secret to turn auth off");
			return -1;
		}
		free(cfg->secret);
		cfg->secret = strdup(env);
		cfg->secret_mode = SECRET_SET;
	}
	if (config_read_secret(cfg, err, errlen) == -1)
		return -1;
	if (cfg->secret_mode == SECRET_UNSET) {
		snprintf(err, errlen, "no URL secret is set: set HEALTH_URL_SECRET=<random string> "
		         "(or \"url_secret\" / \"url_secret_file\" in the config), or turn auth off "
		         "explicitly with --no-url-secret (or \"url_secret\": null)");
		return -1;
	}
	if (cfg->plugin_dir == NULL)
		cfg->plugin_dir = strdup(default_plugin_dir());
	if (cfg->plugin_dir == NULL || (cfg->secret_mode == SECRET_SET && cfg->secret == NULL)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void
print_summary(const struct config *cfg, const struct plugin_loader *loader,
              struct executor_set *execs, const struct registry *reg)
{
	struct executor_info xi;
	struct plugin_info pi;
	char line[1024];

	printf("configuration: %s\n", cfg->path ? cfg->path : "(embedded default)");
	printf("plugin directory: %s\n", cfg->plugin_dir);
	for (size_t i = 0; i < plugin_count(loader); i++) {
		plugin_info(loader, i, &pi);
		printf("plugin %s %s (ABI %u.%u) from %s: %zu check%s, in process\n", pi.name,
		       pi.version, pi.abi_major, pi.abi_minor, pi.file, pi.nchecks,
		       pi.nchecks == 1 ? "" : "s");
		if (pi.description != NULL && pi.description[0] != '\0')
			printf("  %s\n", pi.description);
	}
	for (size_t i = 0; i < executor_count(execs); i++) {
		executor_info(execs, i, &xi);
		printf("plugin %s %s (ABI %u.%u) from %s: %zu check%s, isolated\n", xi.name,
		       xi.version, xi.abi_major, xi.abi_minor, xi.file, xi.nchecks,
		       xi.nchecks == 1 ? "" : "s");
		if (xi.description[0] != '\0')
			printf("  %s\n", xi.description);
		sandbox_describe(&xi.sandbox, line, sizeof(line));
		printf("  sandbox: %s\n", line);
	}
	for (uint32_t id = 0; id < registry_count(reg); id++) {
		const struct check *c = registry_at(reg, id);
		printf("check %s: plugin %s, %s, timeout %d ms, cache %d ms", c->name, c->plugin,
		       c->in_defaults ? "in defaults" : "not in defaults", c->timeout_ms,
		       c->cache_ms);
		if (c->interval_ms > 0)
			printf(", every %d ms in the background", c->interval_ms);
		if (c->failures_before_critical > 1 || c->successes_before_passing > 1)
			printf(", critical after %d failure(s), passing after %d success(es)",
			       c->failures_before_critical > 1 ? c->failures_before_critical : 1,
			       c->successes_before_passing > 1 ? c->successes_before_passing : 1);
		printf(" (%s)\n", c->origin);
	}
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct config_group *g = &cfg->groups[i];
		printf("group %s: %s/%s over %s", g->name, cfg->url_prefix, g->name, g->selection);
		if (g->timeout_ms > 0)
			printf(", answers within %d ms", g->timeout_ms);
		printf("\n");
	}
	printf("auth: %s\n", cfg->secret_mode == SECRET_SET ? "on" : "off");
}

/* The configuration as at startup: the file, then the command line. */
static int
read_config(struct config *c, const void *arg, char *err, size_t errlen)
{
	const struct options *opts = arg;

	if ((opts->config != NULL && config_load(c, opts->config, err, errlen) == -1) ||
	    apply_overrides(c, opts, err, errlen) == -1)
		return -1;
	return 0;
}

/* --run-check: the runner and executors without HTTP; returns the status. */
static int
run_one_check(struct server *sv, const char *name, char *err, size_t errlen)
{
	sv->runner = runner_new(sv->reg, sv->cfg.workers);
	if (sv->runner == NULL ||
	    executor_start(sv->execs, runner_remote_done, sv->runner, err, errlen) == -1) {
		printf("UNKNOWN - %s\n", sv->runner ? err : "cannot start the runner");
		return 3;
	}
	return run_check_once(sv->reg, sv->runner, name, stdout);
}

/* How log lines start (log.h): a server's are stamped, or carry priorities for
 * the journal; the one-shot modes print bare lines for the person or script
 * that runs them. The choice goes to the executors through the environment,
 * so their lines look the same; before any thread starts (setenv). */
static void
log_style_choose(bool one_shot)
{
	static const char *const names[] = {
		[LOG_STYLE_JOURNAL] = "journal",
		[LOG_STYLE_TIMESTAMP] = "timestamp",
		[LOG_STYLE_PLAIN] = "plain",
	};
	const char *want = getenv("HEALTHD_LOG_FORMAT");

	if (log_init(want != NULL || !one_shot ? want : "plain") == -1) {
		log_init(NULL);
		log_warn("HEALTHD_LOG_FORMAT=%s: not auto, journal, timestamp or plain; using auto",
		         want);
	}
	setenv("HEALTHD_LOG_FORMAT", names[log_get_style()], 1);
}

int
main(int argc, char **argv)
{
	struct server sv = {0};
	struct options opts = {0};
	char err[1024];
	sigset_t set;
	int rc = 1;

	sandbox_server_start(); /* before any secret is read */
	/* An executor: one plugin's code, started by a healthd server, which
	 * set HEALTHD_LOG_FORMAT to the style it chose. */
	if (argc >= 2 && strcmp(argv[1], "--executor") == 0) {
		log_init(getenv("HEALTHD_LOG_FORMAT"));
		return executor_process_main(argc, argv);
	}
	/* One step of --test-plugin, started by the harness below. */
	if (argc >= 2 && strcmp(argv[1], "--test-plugin-step") == 0)
		return plugin_test_step_main(argc, argv);
	/* Out of the environment once read; /proc/PID/environ shows the bytes the
	 * process started with, so those are overwritten too. */
	if (getenv("HEALTH_URL_SECRET") != NULL) {
		char *s = getenv("HEALTH_URL_SECRET");
		env_secret = strdup(s);
		explicit_bzero(s, strlen(s));
		unsetenv("HEALTH_URL_SECRET");
	}
	/* a container's init: reaps orphans, the server keeps its children's statuses */
	server_pid1_split();
	switch (parse_args(argc, argv, &opts)) {
	case -1:
		return 0;
	case 0:
		break;
	default:
		return 2;
	}
	if (opts.test_plugin != NULL) {
		char self[PATH_MAX];
		if (server_self_path(self, sizeof(self)) == -1) {
			log_err("cannot find healthd's own binary (/proc/self/exe): %s", strerror(errno));
			return 2;
		}
		return plugin_test_main(self, opts.test_plugin, opts.plugin_opts, opts.nplugin_opts,
		                        opts.test_check);
	}
	/*
	 * Memory. The connections' buffers come and go in bursts; the HTTP
	 * layer keeps them while a burst may come back, then returns them
	 * (http_conn.c, trim_after_burst): malloc_trim(3), and each HTTP thread
	 * shrinking the top of its own arena. Hence no trimming by free()
	 * itself, which would hand pages back in the middle of a burst (a reload
	 * trims once it has freed the old set: reload.c). Setting the trim
	 * threshold also keeps the mmap threshold at 128 KiB (glibc stops
	 * raising it): a larger block, e.g. a long /metrics body, is mapped and
	 * given back at free(). glibc's default arenas: one, shared by every
	 * thread, cost ?checks=true about 10 % of its CPU in lock contention.
	 */
	mallopt(M_TRIM_THRESHOLD, 256 << 20); /* http_conn.c's TRIM_THRESHOLD */
	log_style_choose(opts.check_config || opts.run_check != NULL);
	/* Before any thread starts, so that every thread inherits the mask. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1); /* a plugin has loaded (server.c) */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	crash_install(false);

	if (config_init(&sv.cfg) == -1) {
		log_err("out of memory");
		return 1;
	}
	/* Serving listens before isolated plugins have loaded; the one-shot
	 * modes load everything first. */
	sv.load_later = !opts.check_config && opts.run_check == NULL;
	if (server_load(&sv, read_config, &opts, err, sizeof(err)) == -1) {
		log_err("%s", err);
		if (opts.run_check != NULL) {
			printf("UNKNOWN - %s\n", err);
			rc = 3;
		}
	} else if (opts.check_config) {
		print_summary(&sv.cfg, sv.loader, sv.execs, sv.reg);
		printf("configuration OK\n");
		rc = 0;
	} else if (opts.run_check != NULL) {
		rc = run_one_check(&sv, opts.run_check, err, sizeof(err));
	} else if (server_start(&sv, err, sizeof(err)) == -1) {
		log_err("%s", err);
	} else {
		rc = server_run(&sv, &set);
	}
	server_stop(&sv);
	if (rc == 0 && !opts.check_config && opts.run_check == NULL)
		log_info("stopped");
	return rc;
}
