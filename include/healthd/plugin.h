/*
 * healthd/plugin.h - the healthd check plugin ABI, version 1.
 *
 * This is the only header a plugin author includes. It depends on nothing but
 * the C standard library, so a plugin never links against json-c,
 * libmicrohttpd or any other part of the host.
 *
 * A plugin is a shared object that exports exactly one data symbol,
 * HEALTHD_PLUGIN_SYMBOL ("healthd_plugin_v1"), of type struct healthd_plugin.
 * The easiest way to define it is HEALTHD_PLUGIN(...) below:
 *
 *     #include <healthd/plugin.h>
 *
 *     static enum healthd_status
 *     always_ok(void *state, struct healthd_report *report)
 *     {
 *         (void)state; (void)report;
 *         return HEALTHD_OK;
 *     }
 *
 *     static int
 *     load(struct healthd_host *host, const struct healthd_host_api *api,
 *          char *err, size_t errlen)
 *     {
 *         struct healthd_check check = HEALTHD_CHECK_INIT;
 *         check.name = "always";
 *         check.run = always_ok;
 *         return api->register_check(host, &check, err, errlen);
 *     }
 *
 *     HEALTHD_PLUGIN(.name = "example", .version = "1.0",
 *                    .description = "an example", .load = load);
 *
 * Lifecycle, all on the host's main thread unless said otherwise:
 *
 *   1. dlopen(RTLD_NOW | RTLD_LOCAL); the host reads abi_major, abi_minor and
 *      size from the descriptor and refuses the plugin before running any of
 *      its code if abi_major differs from the host's or abi_minor is newer.
 *   2. load(): once per process. Register fixed checks here.
 *   3. instantiate(): once per check declared in the configuration with
 *      "plugin": "<name>". Read the options, then register exactly one check
 *      under the given name. A reload (SIGHUP) may call it again later, for
 *      a new check or new options, while the plugin's other checks run.
 *   4. run(): from the host's worker threads, any number of times; see
 *      struct healthd_check for the threading contract.
 *   5. destroy(state): at most once per registered check, after its last run;
 *      for a check a reload removed, while the plugin's other checks run.
 *   6. unload(): at most once, after every destroy; then the host dlcloses the
 *      object.
 *
 * At most: destroy() and unload() run only while no run is inside the
 * plugin's code. If one is still stuck there at shutdown (after a grace of
 * about a second), or an isolated plugin's executor is killed (a run past its
 * deadline plus kill_after_ms) or crashes, its process ends without calling
 * either, so nothing that must happen belongs only there (healthd-plugin(7)).
 *
 * Versioning promise. HEALTHD_ABI_MAJOR changes only when something existing
 * changes: a member moves, is removed, changes type or meaning, or a function
 * changes its contract. HEALTHD_ABI_MINOR changes when something is only
 * added: members at the END of struct healthd_host_api, struct healthd_check
 * or struct healthd_plugin, or a new HEALTHD_CHECK_* flag (a host ignores
 * flags it does not know). Each of these structs carries its size as built,
 * so neither side touches a member the other side's build lacks: a plugin
 * tests the host table with HEALTHD_API_HAS, the host tests the sizes of the
 * plugin's structs. A host accepts every plugin with the same major and a
 * minor no newer than its own, so a plugin built today keeps loading in later
 * 1.x hosts unchanged. The major is part of the exported symbol's name, so a
 * later host can still find a version-1 plugin and adapt to it. healthd's
 * source tree keeps a frozen copy of every released minor's header and
 * asserts at build time that its layout still holds (tests/abi/).
 *
 * Languages: C99 or later, or C++11 or later. In C++ (before C++20 there are
 * no designated initializers) define the descriptor with
 * HEALTHD_PLUGIN_DEFINE(name, version, description, load, instantiate, unload)
 * instead of HEALTHD_PLUGIN(...); HEALTHD_CHECK_INIT works in both. Both
 * compile without warnings under -Wall -Wextra -Wpedantic. Build C++ plugins
 * with -fvisibility=hidden -fvisibility-inlines-hidden, so that only
 * healthd_plugin_v1 is exported and not the standard library's inline code.
 *
 * Test a plugin with `healthd --test-plugin FILE.so [--option KEY=VALUE]...`:
 * the contract suite, as TAP (see healthd-plugin(7)).
 *
 * What each minor added:
 *   1.0  the descriptor, struct healthd_check, the host table up to log
 *   1.1  host_api.timeout_ms, cancelled, timed_out
 *   1.2  host_api.value (numbers beside the message), time_left_ms and wait_fd
 *        (deadline helpers; the host now waits HEALTHD_DEADLINE_GRACE_MS past
 *        the deadline for the run's own answer); options given as a JSON
 *        array arrive as "key:0", "key:1", ...
 */
#if !defined(__cplusplus) && (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 199901L)
#error "healthd/plugin.h needs C99 or later (or C++11 or later)"
#endif
#if defined(__cplusplus) && __cplusplus < 201103L
#error "healthd/plugin.h needs C++11 or later"
#endif
#ifndef HEALTHD_PLUGIN_H
#define HEALTHD_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HEALTHD_ABI_MAJOR 1
#define HEALTHD_ABI_MINOR 2

/*
 * The minor a plugin's descriptor declares: this header's, unless the plugin
 * defines an older one before including it, to load in older hosts too:
 *     #define HEALTHD_PLUGIN_MINOR 0
 *     #include <healthd/plugin.h>
 * It must then test HEALTHD_API_HAS() before calling anything added later.
 */
#ifndef HEALTHD_PLUGIN_MINOR
#define HEALTHD_PLUGIN_MINOR HEALTHD_ABI_MINOR
#endif

/* Name of the one symbol a plugin exports; the major is part of it. */
#define HEALTHD_PLUGIN_SYMBOL "healthd_plugin_v1"

#if defined(__GNUC__) || defined(__clang__)
#define HEALTHD_EXPORT __attribute__((visibility("default")))
#define HEALTHD_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define HEALTHD_EXPORT
#define HEALTHD_PRINTF(fmt, args)
#endif

/*
 * The result of one run, with the monitoring-plugins meaning. OK and WARNING
 * count as healthy ("true" in the seed-compatible body); CRITICAL and UNKNOWN
 * as unhealthy. Any other value a plugin returns is treated as UNKNOWN (logged
 * once per check).
 */
enum healthd_status {
	HEALTHD_OK = 0,
	HEALTHD_WARNING = 1,
	HEALTHD_CRITICAL = 2,
	HEALTHD_UNKNOWN = 3,
};

/* Levels for healthd_host_api.log; the values are syslog's. */
enum healthd_log_level {
	HEALTHD_LOG_ERR = 3,
	HEALTHD_LOG_WARNING = 4,
	HEALTHD_LOG_INFO = 6,
	HEALTHD_LOG_DEBUG = 7,
};

/* Opaque host objects. A plugin only ever holds pointers to them. */
struct healthd_host;    /* the registry; valid from load() until unload() */
struct healthd_options; /* one configured check's options, as strings */
struct healthd_report;  /* one run: deadline in, message out */

/*
 * A check, described to the host by register_check(). The host copies what it
 * needs during the call (including the name), so the struct may live on the
 * plugin's stack. Start from HEALTHD_CHECK_INIT so that `size` is right and
 * members added in later minors are zero.
 */
struct healthd_check {
	/* sizeof(struct healthd_check) as the plugin was built; set by HEALTHD_CHECK_INIT.
	 * A size or flags impossible for the plugin's minor are refused. */
	uint32_t size;
	/* HEALTHD_CHECK_* flags. */
	uint32_t flags;
	/*
	 * The check's name: 1 to 64 characters from [A-Za-z0-9_.:-], not starting
	 * with '_' (names starting with '_' are reserved, like "_defaults"). From
	 * instantiate() it must be the check_name the host passed in.
	 */
	const char *name;
	/*
	 * Runs the check once and returns its status. Called from a host worker
	 * thread. The host never calls run() twice at once for the same check, but
	 * does call run() of different checks (also of the same plugin)
	 * concurrently, so state shared between checks needs the plugin's own lock.
	 * instantiate() and destroy() (main thread) may likewise overlap run() of
	 * the plugin's other checks (a reload), never run() of their own check.
	 * Should return by healthd_host_api.deadline_ms(report); a run that does
	 * not is reported as a timeout, and its late result is discarded.
	 */
	enum healthd_status (*run)(void *state, struct healthd_report *report);
	/* Frees `state`; called at most once (see the lifecycle at the top), after
	 * the last run(). May be NULL. */
	void (*destroy)(void *state);
	/* Passed to run() and destroy(); owned by the plugin. */
	void *state;
	/*
	 * Whether the check runs when a request selects no checks explicitly
	 * (or "_defaults"). Used for checks registered from load(); for
	 * instances, the configuration's "defaults" key decides instead.
	 */
	bool in_defaults;
};

/*
 * run() never blocks and returns within microseconds (no I/O, no locks held
 * by other threads), so the host may call it on the thread that serves the
 * request instead of handing it to a worker. Only for trivial checks.
 */
#define HEALTHD_CHECK_INLINE (1u << 0)

#ifdef __cplusplus
/* C++: value-initialised (all zero), then the size; HEALTHD_CHECK_INIT calls it. */
static inline struct healthd_check
healthd_check_init_(void)
{
	struct healthd_check check = {};
	check.size = (uint32_t)sizeof(struct healthd_check);
	return check;
}
#define HEALTHD_CHECK_INIT healthd_check_init_()
#else
#define HEALTHD_CHECK_INIT { .size = (uint32_t)sizeof(struct healthd_check) }
#endif

/*
 * The host's functions, handed to load() and instantiate(). The table only
 * ever grows at its end; `size` is the table's size in the running host.
 * Before calling a member added after 1.0, check it is inside the table:
 *     if (HEALTHD_API_HAS(api, member)) api->member(...);
 * The table and every pointer it hands out stay valid until unload() returns.
 * All members may be called from any thread unless said otherwise.
 */
struct healthd_host_api {
	uint32_t size;

	/*
	 * Registers a check. Main thread only: from load() or instantiate().
	 * Returns 0, or -1 with a reason in err (NUL-terminated, at most errlen
	 * bytes, host-owned): invalid or duplicate name, run missing, or, from
	 * instantiate(), a name other than check_name or a second registration.
	 * On failure the host does not take the check: the plugin frees its state.
	 */
	int (*register_check)(struct healthd_host *host, const struct healthd_check *check,
	                      char *err, size_t errlen);

	/*
	 * The option `key` of a configured check as a NUL-terminated string, or NULL
	 * if the configuration does not set it. JSON numbers and booleans arrive as
	 * their JSON text ("200", "true"); an object {"a": "b"} under key "k"
	 * arrives as key "k:a". The string lives as long as the options, i.e.
	 * until instantiate() returns: copy what you keep. Every option a plugin
	 * does not read (through option, option_int, option_bool or option_at) is
	 * reported to the operator as an unknown key, and the check is refused.
	 */
	const char *(*option)(const struct healthd_options *options, const char *key);

	/*
	 * Reads option `key` as a decimal integer in [min, max], or `dflt` if unset.
	 * Returns 0, or -1 if the value is not such an integer; the host then
	 * refuses the check with a message naming the key, the range and the value.
	 */
	int (*option_int)(const struct healthd_options *options, const char *key, int64_t dflt,
	                  int64_t min, int64_t max, int64_t *out);

	/*
	 * Reads option `key` as a boolean (true/false, yes/no, on/off, 1/0), or
	 * `dflt` if unset. Returns 0, or -1 (reported like option_int).
	 */
	int (*option_bool)(const struct healthd_options *options, const char *key, bool dflt,
	                   bool *out);

	/*
	 * Iterates the options in configuration order: sets *key and *value for the
	 * index-th option and returns true, or returns false past the last. Does
	 * not mark options as read: for keys a plugin handles by pattern (such as
	 * "header:NAME"), call option() on the key it accepts, and the host keeps
	 * refusing the rest as unknown.
	 */
	bool (*option_at)(const struct healthd_options *options, size_t index, const char **key,
	                  const char **value);

	/* The run's deadline on CLOCK_MONOTONIC, in milliseconds. */
	int64_t (*deadline_ms)(const struct healthd_report *report);

	/* Now on CLOCK_MONOTONIC, in milliseconds: the clock of deadline_ms. */
	int64_t (*now_ms)(void);

	/*
	 * Sets the run's message, shown to operators (verbose output, logs):
	 * one line saying what was found, e.g. "expected 200, got 503". Replaces
	 * an earlier message; longer than 1023 bytes is cut. Never put secrets
	 * (passwords, tokens) in it. Only during run(), from run()'s thread: a call
	 * from another thread or after run() returned is ignored (logged once).
	 */
	void (*message)(struct healthd_report *report, const char *fmt, ...) HEALTHD_PRINTF(2, 3);

	/* Writes one line to the host's log, prefixed with the plugin's name. */
	void (*log)(struct healthd_host *host, int level, const char *fmt, ...) HEALTHD_PRINTF(3, 4);

	/* ---- added in 1.1: a plugin declaring 1.1 may call these freely; one
	 * declaring 1.0 (HEALTHD_PLUGIN_MINOR) tests HEALTHD_API_HAS first. ---- */

	/*
	 * The check's configured timeout_ms: the N of "timeout after N ms". (The
	 * deadline can be a little earlier than run start + N: it counts from
	 * when the request asked, and the run may have waited for a worker.)
	 */
	int64_t (*timeout_ms)(const struct healthd_report *report);

	/*
	 * True once the host no longer waits for this run: its deadline passed
	 * (the request was answered "timeout") or healthd is shutting down. A run
	 * that waits in slices (poll() in steps, a transfer's progress callback)
	 * should give up as soon as it turns true; its result will be discarded.
	 * Safe from any thread, cheap (one atomic load).
	 */
	bool (*cancelled)(const struct healthd_report *report);

	/*
	 * Marks the run as failed because something did not answer in time, when
	 * the plugin itself gave up at the deadline (as it should). The host then
	 * counts it as a timeout (healthd_check_timeouts_total) just as if it had
	 * expired the run itself. Only during run(), from run()'s thread (else
	 * ignored, as message() is).
	 */
	void (*timed_out)(struct healthd_report *report);

	/* ---- added in 1.2 ---- */

	/*
	 * Reports a number the run measured beside its message: a load average,
	 * free space, a latency. Operators see it in ?verbose=1 ("values"), in
	 * /metrics (healthd_check_value{check=...,name=...}) and in health+json
	 * ("<check>:<name>" with observedValue). name: 1 to 63 bytes, no control
	 * characters; unit: NULL or up to 15 bytes ("s", "%", "B", ...), as in
	 * monitoring-plugins perfdata. A second value of the same name replaces
	 * the first. Returns 0, or -1 if refused: a bad name or unit, a value that
	 * is not finite, or HEALTHD_VALUES_MAX values already reported. Only
	 * during run(), from run()'s thread; values of a run that times out are
	 * dropped with its result.
	 */
	int (*value)(struct healthd_report *report, const char *name, double value,
	             const char *unit);

	/*
	 * Milliseconds until the run's deadline, 0 once it has passed: what to
	 * give a library's own timeout (a transfer's, a query's). The host waits
	 * a little past the deadline for the run's own answer
	 * (HEALTHD_DEADLINE_GRACE_MS), so a run that stops at its deadline keeps
	 * its message: no margin of your own is needed. Any thread.
	 */
	int64_t (*time_left_ms)(const struct healthd_report *report);

	/*
	 * Waits until fd is ready for `events` (POLLIN, POLLOUT as in poll(2)),
	 * the run's deadline passes, or cancelled() turns true, polling in short
	 * slices. Returns the revents (> 0, POLLERR and POLLHUP included), 0 when
	 * the time is up or the run was cancelled (then set your message and
	 * call timed_out()), or -1 with errno set if poll() failed. The wait loop
	 * every network check needs, bounded by the deadline and the host.
	 */
	int (*wait_fd)(struct healthd_report *report, int fd, short events);
};

/* How long past a run's deadline the host still waits for its own answer
 * before it answers "timeout after N ms" itself (ABI 1.2 hosts). */
#define HEALTHD_DEADLINE_GRACE_MS 50

/* At most this many values per run; see healthd_host_api.value. */
#define HEALTHD_VALUES_MAX 16
#define HEALTHD_VALUE_NAME_MAX 63 /* bytes, without the NUL */
#define HEALTHD_VALUE_UNIT_MAX 15

#define HEALTHD_API_HAS(api, member)                                                          \
	((api)->size >= offsetof(struct healthd_host_api, member) + sizeof((api)->member))

/*
 * The descriptor a plugin exports as HEALTHD_PLUGIN_SYMBOL. Its first three
 * members are read before any plugin code runs and never move.
 */
struct healthd_plugin {
	uint16_t abi_major; /* HEALTHD_ABI_MAJOR the plugin was built with */
	uint16_t abi_minor; /* HEALTHD_ABI_MINOR the plugin was built with */
	uint32_t size;      /* sizeof(struct healthd_plugin) as built */

	/*
	 * The name configurations use in "plugin": [a-z0-9_-], 1 to 32 characters,
	 * unique among loaded plugins. Conventionally the file's name without ".so".
	 */
	const char *name;
	const char *version;     /* the plugin's own version, free-form */
	const char *description; /* one line, for --check-config */

	/*
	 * Called once after the ABI check; registers fixed checks. Returns 0, or -1
	 * with a reason in err; the host then refuses the plugin and does not call
	 * unload(), so load() cleans up after itself. May be NULL.
	 */
	int (*load)(struct healthd_host *host, const struct healthd_host_api *api, char *err,
	            size_t errlen);

	/*
	 * Creates the configured check `check_name` from `options` and registers it
	 * with register_check() under that name. Returns 0, or -1 with a reason in
	 * err naming the option at fault ("url: missing"). Must not block on the
	 * network: connect lazily in run(). May be NULL if the plugin has no
	 * instances; the host then refuses configurations that ask for one.
	 */
	int (*instantiate)(struct healthd_host *host, const struct healthd_host_api *api,
	                   const char *check_name, const struct healthd_options *options, char *err,
	                   size_t errlen);

	/* Called at most once (see the lifecycle at the top), at shutdown after
	 * every check's destroy(). May be NULL. */
	void (*unload)(void);
};

#ifdef __cplusplus
#define HEALTHD_PLUGIN_DECL_ extern "C" HEALTHD_EXPORT const struct healthd_plugin healthd_plugin_v1;
#else
#define HEALTHD_PLUGIN_DECL_ HEALTHD_EXPORT extern const struct healthd_plugin healthd_plugin_v1;
#endif

/*
 * Defines the exported descriptor with the version fields filled in (C; in
 * C++20 only with the members in declaration order):
 *     HEALTHD_PLUGIN(.name = "x", .version = "1.0", .load = load);
 */
#define HEALTHD_PLUGIN(...)                                                                   \
	HEALTHD_PLUGIN_DECL_                                                                  \
	const struct healthd_plugin healthd_plugin_v1 = {                                     \
		.abi_major = HEALTHD_ABI_MAJOR,                                               \
		.abi_minor = HEALTHD_PLUGIN_MINOR,                                            \
		.size = (uint32_t)sizeof(struct healthd_plugin),                              \
		__VA_ARGS__}

/*
 * The same without designated initializers, for C++11 and later (and C): every
 * member in order, NULL for what the plugin does not have:
 *     HEALTHD_PLUGIN_DEFINE("x", "1.0", "one line", load, NULL, NULL);
 */
#define HEALTHD_PLUGIN_DEFINE(name, version, description, load, instantiate, unload)          \
	HEALTHD_PLUGIN_DECL_                                                                  \
	const struct healthd_plugin healthd_plugin_v1 = {                                     \
		HEALTHD_ABI_MAJOR, HEALTHD_PLUGIN_MINOR,                                      \
		(uint32_t)sizeof(struct healthd_plugin),                                      \
		name, version, description, load, instantiate, unload}

#ifdef __cplusplus
}
#endif

#endif /* HEALTHD_PLUGIN_H */
