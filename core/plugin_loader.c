/* plugin_loader.c - loading plugins, ABI checks, the host API table. */
#include "plugin_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_name.h"
#include "clock.h"
#include "crash.h"
#include "file_modes.h"
#include "log.h"
#include "report.h"
#include "sizes.h"

/* The 1.0 sizes: what every version-1 plugin provides at least. */
#define CHECK_SIZE_1_0 (offsetof(struct healthd_check, in_defaults) + sizeof(bool))
#define PLUGIN_SIZE_1_0 (offsetof(struct healthd_plugin, unload) + sizeof(void (*)(void)))
#define KNOWN_CHECK_FLAGS HEALTHD_CHECK_INLINE
/* No real struct of ABI 1 comes near this: a bigger size is stack garbage. */
#define ABI_STRUCT_SIZE_MAX 1024u
/* load() or instantiate() slower than this is logged: they must not block. */
#define SLOW_CALL_MS 1000

/* The check flags a plugin declaring ABI 1.minor can know of. */
static uint32_t
check_flags_of_minor(unsigned minor)
{
	(void)minor; /* 1.0 and 1.1 define HEALTHD_CHECK_INLINE only */
	return HEALTHD_CHECK_INLINE;
}

/* The report this thread is running run() with (plugin_run); message() and
 * timed_out() write only into that one, so that a call from a plugin's own
 * thread, or after run() returned, never touches a report that is gone. */
static _Thread_local struct healthd_report *current_report;

/* What a plugin's host pointer points to: one per plugin, so the host always
 * knows whose registration or log line it is handling. */
struct healthd_host {
	struct plugin_loader *loader;
	struct plugin *plugin;
};

struct plugin {
	struct healthd_host host;
	char *path;
	struct stat file; /* when it was loaded: a reload tells a new file */
	void *handle;
	const struct healthd_plugin *desc;
	bool loaded;     /* load() succeeded: unload() is owed */
	size_t nchecks;
};

struct plugin_loader {
	struct registry *registry;
	struct plugin **plugins;
	size_t n;
	bool sealed;
	/* during load() and instantiate(): */
	struct plugin *current;
	bool register_failed;
	const struct config_check *instance; /* NULL during load() */
	int instance_id;
	struct registry *into; /* a reload's registry (plugin_instantiate_into) */
	const char *(*taken)(void *arg, const char *name);
	void *taken_arg;
	bool modes_checked; /* the caller ran file_modes_plugin() already */
};

static const struct healthd_host_api host_api;

struct plugin_loader *
plugin_loader_new(struct registry *r)
{
	struct plugin_loader *l = calloc(1, sizeof(*l));

	if (l != NULL)
		l->registry = r;
	return l;
}

void
plugin_loader_modes_checked(struct plugin_loader *l)
{
	l->modes_checked = true;
}

/* ---- the host API table ------------------------------------------------ */

static int
host_register_check(struct healthd_host *host, const struct healthd_check *hc, char *err,
                    size_t errlen)
{
	struct plugin_loader *l = host->loader;
	struct check c = {0};
	char local[256];
	int id;

	if (err == NULL || errlen == 0) {
		err = local;
		errlen = sizeof(local);
	}
	if ((l->sealed && l->into == NULL) || l->current != host->plugin) {
		snprintf(err, errlen, "register_check is only allowed from load() and instantiate()");
		goto fail;
	}
	if (hc == NULL || hc->size < CHECK_SIZE_1_0) {
		snprintf(err, errlen, "struct healthd_check has size %u, expected at least %zu: "
		         "start from HEALTHD_CHECK_INIT", hc ? hc->size : 0, CHECK_SIZE_1_0);
		goto fail;
	}
	if (hc->size > ABI_STRUCT_SIZE_MAX || hc->size % sizeof(void *) != 0) {
		snprintf(err, errlen, "struct healthd_check has size %u, impossible for ABI 1.%u: "
		         "start from HEALTHD_CHECK_INIT (uninitialised memory?)", hc->size,
		         host->plugin->desc->abi_minor);
		goto fail;
	}
	if ((hc->flags & ~check_flags_of_minor(host->plugin->desc->abi_minor)) != 0) {
		snprintf(err, errlen, "check \"%.64s\" has flags 0x%x, but ABI 1.%u defines only "
		         "0x%x: start from HEALTHD_CHECK_INIT (uninitialised memory?)",
		         hc->name ? hc->name : "", hc->flags, host->plugin->desc->abi_minor,
		         check_flags_of_minor(host->plugin->desc->abi_minor));
		goto fail;
	}
	if (hc->name == NULL || hc->run == NULL) {
		snprintf(err, errlen, "a check needs a name and a run function");
		goto fail;
	}
	if (strlen(hc->name) > CHECK_NAME_MAX) {
		snprintf(err, errlen, "check name \"%.64s...\" is longer than %d characters",
		         hc->name, CHECK_NAME_MAX);
		goto fail;
	}
	strcpy(c.name, hc->name);
	c.plugin = host->plugin->desc->name;
	c.run = hc->run;
	c.destroy = hc->destroy;
	c.state = hc->state;
	c.flags = hc->flags & KNOWN_CHECK_FLAGS;
	if (l->instance != NULL) {
		if (strcmp(hc->name, l->instance->name) != 0) {
			snprintf(err, errlen, "instantiate() must register the check as \"%s\", "
			         "not \"%s\"", l->instance->name, hc->name);
			goto fail;
		}
		if (l->instance_id != -1) {
			snprintf(err, errlen, "instantiate() registered \"%s\" twice", hc->name);
			goto fail;
		}
		registry_apply_config(&c, l->instance);
	} else {
		c.in_defaults = hc->in_defaults;
		c.timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS;
		c.cache_ms = 0;
		c.origin = host->plugin->path;
	}
	id = registry_add(l->into != NULL ? l->into : l->registry, &c, err, errlen);
	if (id == -1)
		goto fail;
	if (l->instance != NULL)
		l->instance_id = id;
	if (l->into == NULL)
		host->plugin->nchecks++;
	return 0;
fail:
	/* Remembered, so a plugin that ignores the error is refused all the same. */
	l->register_failed = true;
	return -1;
}

static struct config_option *
find_option(const struct healthd_options *o, const char *key)
{
	if (o == NULL || key == NULL)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->v[i].key, key) == 0)
			return &o->v[i];
	return NULL;
}

static const char *
host_option(const struct healthd_options *o, const char *key)
{
	struct config_option *opt = find_option(o, key);

	if (opt == NULL)
		return NULL;
	opt->used = true;
	return opt->value;
}

/* Keeps the first bad value for the host's message. The options object is
 * the host's own (never const in fact); the ABI hands it out read-only. */
static void
option_error(const struct healthd_options *o, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
option_error(const struct healthd_options *o, const char *key, const char *fmt, ...)
{
	struct healthd_options *mo = (struct healthd_options *)o;
	va_list ap;
	int n;

	if (mo->err[0] != '\0')
		return;
	n = snprintf(mo->err, sizeof(mo->err), "%s: ", key);
	if (n < 0 || (size_t)n >= sizeof(mo->err))
		return;
	va_start(ap, fmt);
	vsnprintf(mo->err + n, sizeof(mo->err) - (size_t)n, fmt, ap);
	va_end(ap);
}

static int
host_option_int(const struct healthd_options *o, const char *key, int64_t dflt, int64_t min,
                int64_t max, int64_t *out)
{
	const char *s = host_option(o, key);
	long long v;
	char *end;

	if (s == NULL) {
		*out = dflt;
		return 0;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max ||
	    s[0] == ' ' || s[0] == '+') {
		option_error(o, key, "expected an integer from %lld to %lld, got \"%.64s\"",
		             (long long)min, (long long)max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int
host_option_bool(const struct healthd_options *o, const char *key, bool dflt, bool *out)
{
	/* spelling  value */
	static const struct {
		const char *s;
		bool v;
	} words[] = {
		{"true", true}, {"yes", true}, {"on", true}, {"1", true},
		{"false", false}, {"no", false}, {"off", false}, {"0", false},
	};
	const char *s = host_option(o, key);

	if (s == NULL) {
		*out = dflt;
		return 0;
	}
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcmp(s, words[i].s) == 0) {
			*out = words[i].v;
			return 0;
		}
	}
	option_error(o, key, "expected true or false, got \"%.64s\"", s);
	return -1;
}

static bool
host_option_at(const struct healthd_options *o, size_t index, const char **key,
               const char **value)
{
	if (o == NULL || index >= o->n)
		return false;
	*key = o->v[index].key;
	*value = o->v[index].value;
	return true;
}

static int64_t
host_deadline_ms(const struct healthd_report *report)
{
	return report->deadline_ms;
}

static int64_t
host_now_ms(void)
{
	return clock_ms();
}

static void host_message(struct healthd_report *report, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One warning per process for calls on a report that is not running here. */
static atomic_ulong stale_calls;

unsigned long
plugin_stale_calls(void)
{
	return atomic_load(&stale_calls);
}

/* Whose run each report address carried last, so that a stale call's warning
 * names plugin and check (runs on one worker share an address: the latest).
 * The 64 addresses used last, a worker's or an executor's; oldest replaced. */
#define RUN_NAMES 64
static pthread_mutex_t run_names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct run_name {
	const struct healthd_report *report;
	char plugin[PLUGIN_NAME_SIZE];
	char check[CHECK_NAME_MAX + 1];
} run_names[RUN_NAMES];
static size_t run_names_next;

/* The entry for report, or NULL; called with run_names_lock held. */
static struct run_name *
run_name_find(const struct healthd_report *report)
{
	for (size_t i = 0; i < RUN_NAMES; i++)
		if (run_names[i].report == report)
			return &run_names[i];
	return NULL;
}

static void
run_name_note(const struct healthd_report *report, const struct check *c)
{
	const char *plugin = c->plugin != NULL ? c->plugin : "?"; /* NULL: a host's own check */
	struct run_name *n;

	pthread_mutex_lock(&run_names_lock);
	n = run_name_find(report);
	if (n == NULL) {
		n = &run_names[run_names_next];
		run_names_next = (run_names_next + 1) % RUN_NAMES;
		n->report = report;
		n->check[0] = '\0';
	}
	if (strcmp(n->check, c->name) != 0 || strcmp(n->plugin, plugin) != 0) {
		snprintf(n->plugin, sizeof(n->plugin), "%s", plugin);
		snprintf(n->check, sizeof(n->check), "%s", c->name);
	}
	pthread_mutex_unlock(&run_names_lock);
}

static void
warn_stale_report(const char *fn, const struct healthd_report *report)
{
	static atomic_flag warned = ATOMIC_FLAG_INIT;
	struct run_name n = {0};

	atomic_fetch_add(&stale_calls, 1);
	if (atomic_flag_test_and_set(&warned))
		return;
	pthread_mutex_lock(&run_names_lock);
	if (report != NULL && run_name_find(report) != NULL)
		n = *run_name_find(report);
	pthread_mutex_unlock(&run_names_lock);
	if (n.report != NULL)
		log_warn("plugin %s called %s() outside run() or from a thread other than run()'s, "
		         "with the report of check %s (a thread it started?); ignored: join such "
		         "threads before run() returns. (Said once; later calls are ignored "
		         "silently.)", n.plugin, fn, n.check);
	else
		log_warn("a plugin called %s() outside run() or from a thread other than run()'s, "
		         "with a report no run of this process had (a thread it started?); "
		         "ignored: join such threads before run() returns. (Said once; later "
		         "calls are ignored silently.)", fn);
}

static void
host_message(struct healthd_report *report, const char *fmt, ...)
{
	va_list ap;

	if (report == NULL || report != current_report) {
		warn_stale_report("message", report);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(report->message, sizeof(report->message), fmt, ap);
	va_end(ap);
	/* one line: it ends up in JSON, metrics and logs */
	for (char *p = report->message; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

static void host_log(struct healthd_host *host, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
host_log(struct healthd_host *host, int level, const char *fmt, ...)
{
	char prefix[64];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s: ", host ? host->plugin->desc->name : "plugin");
	va_start(ap, fmt);
	log_vmsg(level, prefix, fmt, ap);
	va_end(ap);
}

static int64_t
host_timeout_ms(const struct healthd_report *report)
{
	return report->timeout_ms;
}

static bool
host_cancelled(const struct healthd_report *report)
{
	return atomic_load_explicit(&report->cancelled, memory_order_relaxed);
}

static void
host_timed_out(struct healthd_report *report)
{
	if (report == NULL || report != current_report) {
		warn_stale_report("timed_out", report);
		return;
	}
	report->timed_out = true;
}

/* A value's name or unit: at most max bytes, no control characters. */
static bool
value_text_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (n >= max || (unsigned char)s[n] < 0x20 || s[n] == 0x7f)
			return false;
	return true;
}

static int
host_value(struct healthd_report *report, const char *name, double value, const char *unit)
{
	struct report_value *v = NULL;

	if (report == NULL || report != current_report) {
		warn_stale_report("value", report);
		return -1;
	}
	if (unit == NULL)
		unit = "";
	if (name == NULL || name[0] == '\0' || !value_text_ok(name, HEALTHD_VALUE_NAME_MAX) ||
	    !value_text_ok(unit, HEALTHD_VALUE_UNIT_MAX) || !isfinite(value))
		return -1;
	for (size_t i = 0; i < report->nvalues && v == NULL; i++)
		if (strcmp(report->values[i].name, name) == 0)
			v = &report->values[i]; /* the same name again: replaced */
	if (v == NULL) {
		if (report->nvalues >= HEALTHD_VALUES_MAX)
			return -1;
		v = &report->values[report->nvalues++];
	}
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(v->unit, sizeof(v->unit), "%s", unit);
	v->value = value;
	return 0;
}

static int64_t
host_time_left_ms(const struct healthd_report *report)
{
	int64_t left = report->deadline_ms - clock_ms();

	return left > 0 ? left : 0;
}

/* Slices: how often cancelled() is looked at while a run waits. */
#define WAIT_SLICE_MS 50

static int
host_wait_fd(struct healthd_report *report, int fd, short events)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	for (;;) {
		int64_t left = report->deadline_ms - clock_ms();
		int n;

		if (left <= 0 || atomic_load_explicit(&report->cancelled, memory_order_relaxed))
			return 0;
		n = poll(&pfd, 1, left > WAIT_SLICE_MS ? WAIT_SLICE_MS : (int)left);
		if (n > 0)
			return pfd.revents;
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

/* Grows only at its end: see struct healthd_host_api. */
static const struct healthd_host_api host_api = {
	.size = sizeof(struct healthd_host_api),
	.register_check = host_register_check,
	.option = host_option,
	.option_int = host_option_int,
	.option_bool = host_option_bool,
	.option_at = host_option_at,
	.deadline_ms = host_deadline_ms,
	.now_ms = host_now_ms,
	.message = host_message,
	.log = host_log,
	/* 1.1 */
	.timeout_ms = host_timeout_ms,
	.cancelled = host_cancelled,
	.timed_out = host_timed_out,
	/* 1.2 */
	.value = host_value,
	.time_left_ms = host_time_left_ms,
	.wait_fd = host_wait_fd,
};

const struct healthd_host_api *
plugin_host_api(void)
{
	return &host_api;
}

/* ---- running -------------------------------------------------------------- */

/* Checks already warned about for an out-of-range status; only the error path
 * looks here. */
static pthread_mutex_t warned_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct check **warned_checks;
static size_t nwarned;

static bool
first_bad_status(const struct check *c)
{
	const struct check **grown;
	bool first = true;

	pthread_mutex_lock(&warned_lock);
	for (size_t i = 0; i < nwarned && first; i++)
		first = warned_checks[i] != c;
	if (first) {
		grown = realloc(warned_checks, (nwarned + 1) * sizeof(*warned_checks));
		if (grown != NULL) {
			warned_checks = grown;
			warned_checks[nwarned++] = c;
		}
	}
	pthread_mutex_unlock(&warned_lock);
	return first;
}

enum healthd_status
plugin_run(const struct check *c, struct healthd_report *report, int *raw)
{
	struct healthd_report *outer = current_report;
	enum healthd_status st;

	run_name_note(report, c);
	current_report = report;
	crash_enter(c->plugin, c->name);
	st = c->run(c->state, report);
	crash_leave();
	current_report = outer;
	if (raw != NULL)
		*raw = (int)st;
	if ((unsigned)st > HEALTHD_UNKNOWN) {
		if (first_bad_status(c))
			log_warn("check %s (plugin %s): run() returned %d, not a status (0 OK, "
			         "1 WARNING, 2 CRITICAL, 3 UNKNOWN); counted as UNKNOWN. (Said once "
			         "per check.)", c->name, c->plugin, (int)st);
		st = HEALTHD_UNKNOWN;
	}
	return st;
}

/* ---- loading ------------------------------------------------------------- */

static void
warn_slow(const char *plugin, const char *fn, const char *check, int64_t ms)
{
	if (ms > SLOW_CALL_MS)
		log_warn("plugin %s: %s%s%s took %lld ms: load() and instantiate() must not "
		         "block startup (connect lazily in run())", plugin, fn,
		         check ? " of " : "", check ? check : "", (long long)ms);
}

static const char *
plugin_name_error(const char *name)
{
	size_t len;

	if (name == NULL)
		return "it has no name";
	len = strlen(name);
	if (len == 0 || len > 32)
		return "its name must have 1 to 32 characters";
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '_' || name[i] == '-'))
			return "its name may only contain a-z, 0-9, _ and -";
	return NULL;
}

/* For a file without healthd_plugin_v1: is it a plugin of another major? */
static int
other_major(void *handle)
{
	char sym[32];

	for (int major = 0; major < 16; major++) {
		if (major == HEALTHD_ABI_MAJOR)
			continue;
		snprintf(sym, sizeof(sym), "healthd_plugin_v%d", major);
		if (dlsym(handle, sym) != NULL)
			return major;
	}
	return -1;
}

static struct plugin *
find_plugin(const struct plugin_loader *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->plugins[i]->loaded && strcmp(l->plugins[i]->desc->name, name) == 0)
			return l->plugins[i];
	return NULL;
}

int
plugin_load_file(struct plugin_loader *l, const char *path, char *err, size_t errlen)
{
	const struct healthd_plugin *desc;
	char why[512] = "";
	struct plugin **grown, *p;
	const char *bad;
	int major, rc;
	int64_t t0;

	grown = realloc(l->plugins, (l->n + 1) * sizeof(*l->plugins));
	if (grown == NULL)
		goto oom;
	l->plugins = grown;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		goto oom;
	p->path = strdup(path);
	if (p->path == NULL) {
		free(p);
		goto oom;
	}
	p->host = (struct healthd_host){.loader = l, .plugin = p};
	/* kept even when refused, so that it is dlclosed after its checks' destroy() */
	l->plugins[l->n++] = p;

	if (stat(path, &p->file) == -1)
		memset(&p->file, 0, sizeof(p->file));
	/* in an executor the sandbox checked them, before a user namespace made
	 * root's files look like nobody's (plugin_loader_modes_checked) */
	if (!l->modes_checked && file_modes_plugin(path, err, errlen) == -1)
		return -1;
	p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (p->handle == NULL) {
		snprintf(err, errlen, "plugin %s: refused: not a loadable shared object: %s", path,
		         dlerror());
		return -1;
	}
	desc = dlsym(p->handle, HEALTHD_PLUGIN_SYMBOL);
	if (desc == NULL) {
		major = other_major(p->handle);
		if (major != -1)
			snprintf(err, errlen, "plugin %s: refused: built for plugin ABI %d, this "
			         "healthd speaks ABI %d", path, major, HEALTHD_ABI_MAJOR);
		else
			snprintf(err, errlen, "plugin %s: refused: it does not export %s (not a "
			         "healthd plugin?)", path, HEALTHD_PLUGIN_SYMBOL);
		return -1;
	}
	/* The version fields protect the rest: nothing else is read before them. */
	if (desc->abi_major != HEALTHD_ABI_MAJOR) {
		snprintf(err, errlen, "plugin %s: refused: built for plugin ABI %u.%u, this healthd "
		         "speaks ABI %d.%d (the major must match)", path, desc->abi_major,
		         desc->abi_minor, HEALTHD_ABI_MAJOR, HEALTHD_ABI_MINOR);
		return -1;
	}
	if (desc->abi_minor > HEALTHD_ABI_MINOR) {
		snprintf(err, errlen, "plugin %s: refused: built for plugin ABI %u.%u, newer than "
		         "this healthd's %d.%d; upgrade healthd or rebuild the plugin", path,
		         desc->abi_major, desc->abi_minor, HEALTHD_ABI_MAJOR, HEALTHD_ABI_MINOR);
		return -1;
	}
	if (desc->size < PLUGIN_SIZE_1_0) {
		snprintf(err, errlen, "plugin %s: refused: its descriptor has size %u, expected at "
		         "least %zu", path, desc->size, PLUGIN_SIZE_1_0);
		return -1;
	}
	if (desc->size > ABI_STRUCT_SIZE_MAX || desc->size % sizeof(void *) != 0) {
		snprintf(err, errlen, "plugin %s: refused: its descriptor has size %u, impossible "
		         "for ABI %u.%u: define it with HEALTHD_PLUGIN()", path, desc->size,
		         desc->abi_major, desc->abi_minor);
		return -1;
	}
	bad = plugin_name_error(desc->name);
	if (bad != NULL) {
		snprintf(err, errlen, "plugin %s: refused: %s", path, bad);
		return -1;
	}
	if (find_plugin(l, desc->name) != NULL || (l->taken && l->taken(l->taken_arg, desc->name))) {
		snprintf(err, errlen, "plugin %s: refused: a plugin named \"%s\" is already loaded "
		         "from %s", path, desc->name, find_plugin(l, desc->name)
		         ? find_plugin(l, desc->name)->path : l->taken(l->taken_arg, desc->name));
		return -1;
	}
	p->desc = desc;
	l->current = p;
	l->instance = NULL;
	l->register_failed = false;
	t0 = clock_ms();
	crash_enter(desc->name, NULL);
	rc = desc->load != NULL ? desc->load(&p->host, &host_api, why, sizeof(why)) : 0;
	crash_leave();
	warn_slow(desc->name, "load()", NULL, clock_ms() - t0);
	if (rc != 0) {
		l->current = NULL;
		snprintf(err, errlen, "plugin %s: refused: its load function failed: %s", path,
		         why[0] ? why : "(no reason given)");
		return -1;
	}
	l->current = NULL;
	p->loaded = true;
	if (l->register_failed) {
		snprintf(err, errlen, "plugin %s: refused: it registered a check the host refused%s%s",
		         path, why[0] ? ": " : "", why);
		return -1;
	}
	log_debug("loaded plugin %s %s (%s, ABI %u.%u, %zu fixed check%s)", desc->name,
	         desc->version ? desc->version : "", path, desc->abi_major, desc->abi_minor,
	         p->nchecks, p->nchecks == 1 ? "" : "s");
	return 0;
oom:
	snprintf(err, errlen, "plugin %s: out of memory", path);
	return -1;
}

static void
loaded_names(const struct plugin_loader *l, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < l->n && off < len; i++) {
		if (!l->plugins[i]->loaded)
			continue;
		int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
		                 l->plugins[i]->desc->name);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
}

/* Edit distance of a and b, or 99 for names over 64 bytes. */
static unsigned
name_distance(const char *a, const char *b)
{
	unsigned row[65], diag, up;
	size_t la = strnlen(a, 65), lb = strnlen(b, 65);

	if (la > 64 || lb > 64)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			up = row[j];
			row[j] = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < row[j])
				row[j] = up + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			diag = up;
		}
	}
	return row[lb];
}

/* candidate, if nearer to name than *dist and within 2 edits; else best. */
static const char *
nearer(const char *name, const char *candidate, const char *best, unsigned *dist)
{
	unsigned d = name_distance(name, candidate);

	if (d > 2 || d >= *dist)
		return best;
	*dist = d;
	return candidate;
}

void
plugin_unknown_error(const struct plugin_loader *l, const char *const *isolated,
                     size_t nisolated, const char *origin, const char *name, char *err,
                     size_t errlen)
{
	const char *best = NULL;
	char in[256], iso[512] = "none", near[96] = "";
	unsigned dist = 3;
	size_t off = 0;

	loaded_names(l, in, sizeof(in));
	for (size_t i = 0; i < l->n; i++)
		if (l->plugins[i]->loaded)
			best = nearer(name, l->plugins[i]->desc->name, best, &dist);
	for (size_t i = 0; i < nisolated && off < sizeof(iso); i++) {
		int w = snprintf(iso + off, sizeof(iso) - off, "%s%s", i ? ", " : "", isolated[i]);
		if (w < 0)
			break;
		off += (size_t)w;
		best = nearer(name, isolated[i], best, &dist);
	}
	if (best != NULL)
		snprintf(near, sizeof(near), ": did you mean \"%.64s\"?", best);
	snprintf(err, errlen, "%s.plugin: unknown plugin \"%.64s\"%s (plugins in process: %s; "
	         "isolated: %s)", origin, name, near, in, iso);
}

int
plugin_instantiate(struct plugin_loader *l, const struct config_check *ck, char *err,
                   size_t errlen)
{
	struct healthd_options *opts = (struct healthd_options *)&ck->options;
	struct plugin *p = find_plugin(l, ck->plugin);
	char why[512] = "";
	int64_t t0;
	int rc;

	if (p == NULL) { /* the server looks among isolated plugins first */
		plugin_unknown_error(l, NULL, 0, ck->origin, ck->plugin, err, errlen);
		return -1;
	}
	if (p->desc->instantiate == NULL) {
		snprintf(err, errlen, "%s.plugin: plugin \"%s\" has no configurable checks",
		         ck->origin, ck->plugin);
		return -1;
	}
	if (check_name_error(ck->name) != NULL) {
		snprintf(err, errlen, "%s.name: invalid check name \"%.80s\": %s", ck->origin,
		         ck->name, check_name_error(ck->name));
		return -1;
	}
	for (size_t i = 0; i < opts->n; i++)
		opts->v[i].used = false;
	opts->err[0] = '\0';
	l->current = p;
	l->instance = ck;
	l->instance_id = -1;
	l->register_failed = false;
	t0 = clock_ms();
	crash_enter(p->desc->name, ck->name);
	rc = p->desc->instantiate(&p->host, &host_api, ck->name, opts, why, sizeof(why));
	crash_leave();
	warn_slow(p->desc->name, "instantiate()", ck->name, clock_ms() - t0);
	l->current = NULL;
	l->instance = NULL;
	if (rc != 0 || opts->err[0] != '\0' || l->register_failed || l->instance_id == -1) {
		const char *reason = opts->err[0] ? opts->err
		                     : why[0]     ? why
		                     : rc != 0    ? "instantiate failed (no reason given)"
		                                  : "instantiate() did not register the check";
		snprintf(err, errlen, "%s (plugin %s): %s", ck->origin, ck->plugin, reason);
		return -1;
	}
	for (size_t i = 0; i < opts->n; i++) {
		if (!opts->v[i].used) {
			snprintf(err, errlen, "%s.%s: unknown option for plugin %s", ck->origin,
			         opts->v[i].key, ck->plugin);
			return -1;
		}
	}
	return 0;
}

int
plugin_instantiate_into(struct plugin_loader *l, struct registry *into,
                        const struct config_check *ck, char *err, size_t errlen)
{
	int rc;

	l->into = into;
	rc = plugin_instantiate(l, ck, err, errlen);
	l->into = NULL;
	return rc;
}

void
plugin_loader_set_taken(struct plugin_loader *l, const char *(*fn)(void *arg, const char *name),
                        void *arg)
{
	l->taken = fn;
	l->taken_arg = arg;
}

const char *
plugin_loader_file_of(const struct plugin_loader *l, const char *name)
{
	const struct plugin *p = find_plugin(l, name);

	return p != NULL ? p->path : NULL;
}

void
plugin_loader_seal(struct plugin_loader *l)
{
	l->sealed = true;
}

size_t
plugin_count(const struct plugin_loader *l)
{
	return l->n;
}

void
plugin_info(const struct plugin_loader *l, size_t i, struct plugin_info *info)
{
	const struct plugin *p = l->plugins[i];

	*info = (struct plugin_info){.file = p->path, .file_stat = &p->file, .nchecks = p->nchecks};
	if (p->desc != NULL) {
		info->instantiable = p->desc->instantiate != NULL;
		info->name = p->desc->name;
		info->version = p->desc->version ? p->desc->version : "";
		info->description = p->desc->description ? p->desc->description : "";
		info->abi_major = p->desc->abi_major;
		info->abi_minor = p->desc->abi_minor;
	}
}

void
plugin_loader_free(struct plugin_loader *l)
{
	if (l == NULL)
		return;
	for (size_t i = l->n; i-- > 0;) {
		struct plugin *p = l->plugins[i];
		if (p->loaded && p->desc->unload != NULL) {
			crash_enter(p->desc->name, NULL);
			p->desc->unload();
			crash_leave();
		}
		if (p->handle != NULL)
			dlclose(p->handle);
		free(p->path);
		free(p);
	}
	free(l->plugins);
	free(l);
}
