/*
 * metrics.c - GET /metrics: Prometheus text from the runner's per-check
 * counters, the executors' state and what the HTTP layer counts; and the one
 * counter kept here, healthd_reloads_total.
 */
#include "metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <healthd/plugin.h>

#include "executor.h"
#include "format.h"
#include "plugin_loader.h"
#include "tls.h"

#ifndef HEALTHD_VERSION
#define HEALTHD_VERSION "unknown"
#endif

/* A growing text buffer for the metrics page. */
struct text {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add_label(struct text *t, const char *s);
static const char *base_unit(const char *uom, double *scale);
static const struct report_value *value_of(const struct runner_stats *s, const char *name,
                                           size_t stem);
static void add_value_samples(struct text *t, const char *family, const char *check,
                              const struct runner_stats *s, enum format_part part, bool counters);
static void plugin_metrics(struct text *t, const struct plugin_loader *loader,
                           struct executor_set *execs);
static void process_metrics(struct text *t);
static int proc_stat_fields(unsigned long long *f);
static void sandbox_metrics(struct text *t, const struct executor_info *xi, size_t n);
static void tls_metrics(struct text *t);

static void
text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap + (size_t)n + 1) * 2;
		char *grown = realloc(t->buf, cap);
		if (grown == NULL) {
			t->oom = true;
			return;
		}
		t->buf = grown;
		t->cap = cap;
	}
}

/* s as a Prometheus label value: backslash, double quote and newline escaped. */
static void
text_add_label(struct text *t, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			text_add(t, "\\%c", *s);
		else if (*s == '\n')
			text_add(t, "\\n");
		else
			text_add(t, "%c", *s);
	}
}

/*
 * Perfdata units to Prometheus base units: seconds, bytes, ratios. Byte
 * multiples are binary, as monitoring-plugins' check_disk and check_swap
 * compute their "MB". "c" is a Nagios counter: no unit, its own family.
 */
static const struct {
	const char *uom;
	double scale;
	const char *unit;      /* the unit label; "" for none */
} base_units[] = {
	/* uom    scale                  unit */
	{"s",     1,                     "seconds"},
	{"ms",    1e-3,                  "seconds"},
	{"us",    1e-6,                  "seconds"},
	{"ns",    1e-9,                  "seconds"},
	{"%",     0.01,                  "ratio"},
	{"B",     1,                     "bytes"},
	{"KB",    1024.0,                "bytes"},
	{"KiB",   1024.0,                "bytes"},
	{"MB",    1048576.0,             "bytes"},
	{"MiB",   1048576.0,             "bytes"},
	{"GB",    1073741824.0,          "bytes"},
	{"GiB",   1073741824.0,          "bytes"},
	{"TB",    1099511627776.0,       "bytes"},
	{"TiB",   1099511627776.0,       "bytes"},
	{"c",     1,                     ""},
};

/* The unit label for uom and the factor to base units; a UOM without a base
 * unit is kept as the plugin gave it, unscaled. */
static const char *
base_unit(const char *uom, double *scale)
{
	for (size_t i = 0; i < sizeof(base_units) / sizeof(base_units[0]); i++)
		if (strcmp(base_units[i].uom, uom) == 0) {
			*scale = base_units[i].scale;
			return base_units[i].unit;
		}
	*scale = 1;
	return uom;
}

/* The value a threshold ("<name>;warn") belongs to, in the same result; NULL
 * if that value was not reported. */
static const struct report_value *
value_of(const struct runner_stats *s, const char *name, size_t stem)
{
	for (size_t i = 0; i < s->last_nvalues; i++) {
		const char *n = s->last_values[i].name;
		if (strlen(n) == stem && strncmp(n, name, stem) == 0)
			return &s->last_values[i];
	}
	return NULL;
}

/*
 * family{check="c",name="n"[,unit="u"]} v for the values of the last result
 * that belong to it: part FORMAT_VALUE the values themselves (counters only
 * when counters, the rest otherwise), else that threshold of each value,
 * under the labels of its value so that the two compare without on().
 */
static void
add_value_samples(struct text *t, const char *family, const char *check,
                  const struct runner_stats *s, enum format_part part, bool counters)
{
	char num[32];

	for (size_t i = 0; s->has_last && i < s->last_nvalues; i++) {
		const struct report_value *v = &s->last_values[i], *of = v;
		size_t stem;
		double scale;
		const char *unit;

		if (format_value_part(v->name, &stem) != part)
			continue;
		if (part != FORMAT_VALUE && (of = value_of(s, v->name, stem)) == NULL)
			continue;
		if (part == FORMAT_VALUE && (strcmp(v->unit, "c") == 0) != counters)
			continue;
		unit = base_unit(of->unit, &scale);
		text_add(t, "%s{check=\"%s\",name=\"", family, check);
		text_add_label(t, of->name);
		if (unit[0] != '\0') {
			text_add(t, "\",unit=\"");
			text_add_label(t, unit);
		}
		format_number(v->value * scale, num, sizeof(num));
		text_add(t, "\"} %s\n", num);
	}
}

/* The families of perfdata values: name, type, help, which part. */
static const struct {
	const char *name, *type, *help;
	enum format_part part;
	bool counters;
} value_metrics[] = {
	{"healthd_check_value", "gauge", "Numbers the check's last run reported (perfdata), by "
	 "name, in base units: seconds, bytes, ratio (0-1) for %; unit names the base unit, or "
	 "the plugin's own unit when it has none", FORMAT_VALUE, false},
	{"healthd_check_perfdata_total", "counter", "Counters the check's last run reported "
	 "(perfdata with unit c), by name", FORMAT_VALUE, true},
	{"healthd_check_value_warning", "gauge", "The warning threshold the check reported with "
	 "a value (perfdata warn, when one number), in the value's base unit", FORMAT_WARN, false},
	{"healthd_check_value_critical", "gauge", "The critical threshold the check reported "
	 "with a value (perfdata crit, when one number), in the value's base unit", FORMAT_CRIT,
	 false},
	{"healthd_check_value_min", "gauge", "The least the value can be, as the check reported "
	 "it (perfdata min), in the value's base unit", FORMAT_MIN, false},
	{"healthd_check_value_max", "gauge", "The most the value can be, as the check reported "
	 "it (perfdata max), in the value's base unit", FORMAT_MAX, false},
};

/* metric                          type     help */
static const struct {
	const char *name, *type, *help;
} check_metrics[] = {
	{"healthd_check_up",                   "gauge",   "1 if the check answers passing now (its last result OK or WARNING, after thresholds; a stale background result is 0); no sample before its first result"},
	{"healthd_check_status",               "gauge",   "Last status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"},
	{"healthd_check_duration_seconds",     "gauge",   "Duration of the check's last run"},
	{"healthd_check_runs_total",           "counter", "Runs started (requests that joined a run or hit the cache do not count)"},
	{"healthd_check_failures_total",       "counter", "Runs that ended CRITICAL or UNKNOWN, timeouts included"},
	{"healthd_check_timeouts_total",       "counter", "Runs that passed their timeout_ms"},
	{"healthd_check_last_run_timestamp_seconds", "gauge", "When the check's last result came in (Unix time); no sample before its first"},
	{"healthd_check_flapping",             "gauge",   "1 while the check flaps (Nagios' weighted percent state change over its last 21 results, with the history's thresholds)"},
	{"healthd_check_suppressed",           "gauge",   "1 while the check does not pass and a check it depends on (depends_on) fails: alert on the dependency instead"},
};

/* [0] failed, [1] ok */
static atomic_uint_fast64_t reloads[2];

void
metrics_count_reload(bool ok)
{
	atomic_fetch_add(&reloads[ok], 1);
}

/* HTTPS: the serving certificate's end, as blackbox_exporter's
 * probe_ssl_earliest_cert_expiry, and its reloads. Nothing without TLS. */
static void
tls_metrics(struct text *t)
{
	struct tls_stats st;

	if (!tls_stats(&st))
		return;
	text_add(t, "# HELP healthd_tls_certificate_expiry_timestamp_seconds When the serving "
	         "certificate (tls.cert_file) expires, its notAfter (Unix time)\n"
	         "# TYPE healthd_tls_certificate_expiry_timestamp_seconds gauge\n"
	         "healthd_tls_certificate_expiry_timestamp_seconds %lld\n"
	         "# HELP healthd_tls_reloads_total Certificate reloads (SIGHUP, or the files "
	         "changed), by result: ok, or failed and the certificate before kept serving\n"
	         "# TYPE healthd_tls_reloads_total counter\n"
	         "healthd_tls_reloads_total{result=\"ok\"} %llu\n"
	         "healthd_tls_reloads_total{result=\"failed\"} %llu\n",
	         (long long)st.not_after, (unsigned long long)st.reloads_ok,
	         (unsigned long long)st.reloads_failed);
}

/* Isolated plugins: whether their executor is up, why it was restarted, RSS. */
static void
plugin_metrics(struct text *t, const struct plugin_loader *loader, struct executor_set *execs)
{
	size_t n = executor_count(execs), nin = loader ? plugin_count(loader) : 0;
	struct executor_info *xi;

	if (n + nin == 0)
		return;
	/* room for plugins a reload adds meanwhile */
	xi = calloc(n + 16, sizeof(*xi));
	if (xi == NULL) {
		t->oom = true;
		return;
	}
	/* a plugin a reload replaced or removed is left out: one series per name */
	n = execs != NULL ? executor_serving_info(execs, xi, n + 16) : 0;
	text_add(t, "# HELP healthd_plugin_up Whether the plugin's executor process is up\n"
	         "# TYPE healthd_plugin_up gauge\n");
	for (size_t i = 0; i < nin; i++) {
		struct plugin_info pi;
		plugin_info(loader, i, &pi);
		if (pi.name != NULL) /* in process: up while healthd is */
			text_add(t, "healthd_plugin_up{plugin=\"%s\"} 1\n", pi.name);
	}
	for (size_t i = 0; i < n; i++)
		text_add(t, "healthd_plugin_up{plugin=\"%s\"} %d\n", xi[i].name, xi[i].up);
	text_add(t, "# HELP healthd_plugin_restarts_total Executor restarts, by reason\n"
	         "# TYPE healthd_plugin_restarts_total counter\n");
	for (size_t i = 0; i < n; i++)
		for (int r = 0; r < EXEC_REASON_COUNT; r++)
			text_add(t, "healthd_plugin_restarts_total{plugin=\"%s\",reason=\"%s\"} %llu\n",
			         xi[i].name, executor_reason_name((enum exec_reason)r),
			         (unsigned long long)xi[i].restarts[r]);
	text_add(t, "# HELP healthd_plugin_rss_bytes Resident memory of the plugin's executor\n"
	         "# TYPE healthd_plugin_rss_bytes gauge\n");
	for (size_t i = 0; i < n; i++)
		text_add(t, "healthd_plugin_rss_bytes{plugin=\"%s\"} %llu\n", xi[i].name,
		         (unsigned long long)xi[i].rss_bytes);
	text_add(t, "# HELP healthd_plugin_log_dropped_bytes_total Output of the plugin's code "
	         "over the log's budget, dropped\n"
	         "# TYPE healthd_plugin_log_dropped_bytes_total counter\n");
	for (size_t i = 0; i < n; i++)
		text_add(t, "healthd_plugin_log_dropped_bytes_total{plugin=\"%s\"} %llu\n",
		         xi[i].name, (unsigned long long)xi[i].log_dropped_bytes);
	sandbox_metrics(t, xi, n);
	free(xi);
}

/* Fields of /proc/self/stat after "(comm)", from field 3 (state) on, the
 * numbers from field 4: f[k] is field k + 3 of proc(5). Returns 0 or -1. */
#define STAT_FIELDS 22
static int
proc_stat_fields(unsigned long long *f)
{
	char buf[1024], *p;
	size_t n;
	FILE *fp = fopen("/proc/self/stat", "re");

	if (fp == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces and ')' */
	if (p == NULL || p[1] != ' ')
		return -1;
	p += 2;
	while (*p != '\0' && *p != ' ')
		p++; /* the state letter */
	f[0] = 0;
	for (int k = 1; k < STAT_FIELDS; k++) {
		char *end;
		f[k] = strtoull(p, &end, 10);
		if (end == p)
			return -1;
		p = end;
	}
	return 0;
}

/* The process_* series every Prometheus client library exports, with their
 * names, HELP and units (client_golang, client_python); left out where /proc
 * cannot be read. */
static void
process_metrics(struct text *t)
{
	unsigned long long f[STAT_FIELDS], btime = 0;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char line[256];
	struct rlimit rl;
	struct dirent *de;
	DIR *d;
	FILE *fp;

	if (ticks > 0 && page > 0 && proc_stat_fields(f) == 0) {
		/* utime 14, stime 15, starttime 22, vsize 23, rss 24 */
		text_add(t, "# HELP process_cpu_seconds_total Total user and system CPU time spent "
		         "in seconds.\n# TYPE process_cpu_seconds_total counter\n"
		         "process_cpu_seconds_total %.2f\n",
		         (double)(f[11] + f[12]) / (double)ticks);
		text_add(t, "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
		         "# TYPE process_virtual_memory_bytes gauge\n"
		         "process_virtual_memory_bytes %llu\n", f[20]);
		text_add(t, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		         "# TYPE process_resident_memory_bytes gauge\n"
		         "process_resident_memory_bytes %llu\n", f[21] * (unsigned long long)page);
		fp = fopen("/proc/stat", "re");
		while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
			if (sscanf(line, "btime %llu", &btime) == 1)
				break;
		if (fp != NULL)
			fclose(fp);
		if (btime > 0) /* boot time plus the ticks from boot to our start */
			text_add(t, "# HELP process_start_time_seconds Start time of the process "
			         "since unix epoch in seconds.\n"
			         "# TYPE process_start_time_seconds gauge\n"
			         "process_start_time_seconds %.2f\n",
			         (double)btime + (double)f[19] / (double)ticks);
	}
	d = opendir("/proc/self/fd");
	if (d != NULL) {
		unsigned long n = 0;
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(d))
				n++; /* not the one this count holds open */
		closedir(d);
		text_add(t, "# HELP process_open_fds Number of open file descriptors.\n"
		         "# TYPE process_open_fds gauge\nprocess_open_fds %lu\n", n);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		text_add(t, "# HELP process_max_fds Maximum number of open file descriptors.\n"
		         "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
		         (unsigned long long)rl.rlim_cur);
}

/* Isolated plugins: which sandbox layers their executor set up. */
static void
sandbox_metrics(struct text *t, const struct executor_info *xi, size_t n)
{
	const char *name;
	unsigned bit;

	if (n == 0)
		return;
	text_add(t, "# HELP healthd_plugin_sandbox_layer 1 if the plugin's executor runs inside "
	         "the sandbox layer, 0 if it was turned off or could not be set up\n"
	         "# TYPE healthd_plugin_sandbox_layer gauge\n");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; (name = config_sandbox_layer_name(k, &bit)) != NULL; k++)
			text_add(t, "healthd_plugin_sandbox_layer{plugin=\"%s\",layer=\"%s\"} %d\n",
			         xi[i].name, name, (xi[i].sandbox.layers & bit) != 0);
	text_add(t, "# HELP healthd_plugin_sandbox_landlock_abi The landlock ABI the plugin's "
	         "executor runs under; 0 without landlock\n"
	         "# TYPE healthd_plugin_sandbox_landlock_abi gauge\n");
	for (size_t i = 0; i < n; i++)
		text_add(t, "healthd_plugin_sandbox_landlock_abi{plugin=\"%s\"} %u\n", xi[i].name,
		         xi[i].sandbox.landlock_abi);
}

char *
metrics_render(const struct registry *reg, struct runner *runner,
               const struct plugin_loader *loader, struct executor_set *execs,
               const struct metrics_http *http, size_t *len)
{
	size_t count = registry_count(reg);
	struct runner_stats *stats;
	struct text t = {0};

	stats = calloc(count ? count : 1, sizeof(*stats));
	if (stats == NULL)
		return NULL;
	for (uint32_t id = 0; id < count; id++)
		runner_stats_of(runner, registry_at(reg, id), &stats[id]);
	for (size_t m = 0; m < sizeof(check_metrics) / sizeof(check_metrics[0]); m++) {
		text_add(&t, "# HELP %s %s\n# TYPE %s %s\n", check_metrics[m].name,
		         check_metrics[m].help, check_metrics[m].name, check_metrics[m].type);
		for (uint32_t id = 0; id < count; id++) {
			const struct runner_stats *s = &stats[id];
			const char *name = registry_at(reg, id)->name;
			const char *metric = check_metrics[m].name;

			switch (m) {
			case 0:
			case 1:
			case 2:
				if (!s->has_last)
					break; /* never ran: no sample rather than a made-up one */
				if (m == 0)
					text_add(&t, "%s{check=\"%s\"} %d\n", metric, name,
					         format_passed(s->effective_status));
				else if (m == 1)
					text_add(&t, "%s{check=\"%s\"} %d\n", metric, name, s->last_status);
				else
					text_add(&t, "%s{check=\"%s\"} %.3f\n", metric, name,
					         (double)s->last_duration_ms / 1000.0);
				break;
			case 3:
				text_add(&t, "%s{check=\"%s\"} %llu\n", metric, name,
				         (unsigned long long)s->runs);
				break;
			case 4:
				text_add(&t, "%s{check=\"%s\"} %llu\n", metric, name,
				         (unsigned long long)s->failures);
				break;
			case 5:
				text_add(&t, "%s{check=\"%s\"} %llu\n", metric, name,
				         (unsigned long long)s->timeouts);
				break;
			case 6:
				if (s->has_last)
					text_add(&t, "%s{check=\"%s\"} %lld.%03lld\n", metric, name,
					         (long long)(s->last_wall_ms / 1000),
					         (long long)(s->last_wall_ms % 1000));
				break;
			case 7:
				text_add(&t, "%s{check=\"%s\"} %d\n", metric, name, s->flapping);
				break;
			default:
				text_add(&t, "%s{check=\"%s\"} %d\n", metric, name,
				         s->suppressed_by[0] != '\0');
				break;
			}
		}
	}
	for (size_t m = 0; m < sizeof(value_metrics) / sizeof(value_metrics[0]); m++) {
		text_add(&t, "# HELP %s %s\n# TYPE %s %s\n", value_metrics[m].name,
		         value_metrics[m].help, value_metrics[m].name, value_metrics[m].type);
		for (uint32_t id = 0; id < count; id++)
			add_value_samples(&t, value_metrics[m].name, registry_at(reg, id)->name,
			                  &stats[id], value_metrics[m].part, value_metrics[m].counters);
	}
	plugin_metrics(&t, loader, execs);
	text_add(&t, "# HELP healthd_http_requests_total HTTP requests answered, by route and "
	         "status code\n# TYPE healthd_http_requests_total counter\n");
	for (size_t i = 0; http != NULL && i < http->ncounters; i++)
		text_add(&t, "healthd_http_requests_total{route=\"%s\",code=\"%u\"} %llu\n",
		         http->counters[i].route, http->counters[i].code,
		         (unsigned long long)http->counters[i].count);
	if (http != NULL)
		text_add(&t, "# HELP healthd_http_connections Open HTTP connections\n"
		         "# TYPE healthd_http_connections gauge\nhealthd_http_connections %u\n"
		         "# HELP healthd_http_connections_limit limits.max_connections: at it, a new "
		         "connection reclaims an idle one or is refused\n"
		         "# TYPE healthd_http_connections_limit gauge\n"
		         "healthd_http_connections_limit %u\n"
		         "# HELP healthd_http_connections_closed_total Connections healthd ended to "
		         "protect itself, by reason: refused (at max_connections with nothing to "
		         "reclaim, or at max_connections_per_ip), "
		         "reclaimed (idle, ended at max_connections for a new one), timed_out (over "
		         "a header, body or send time limit)\n"
		         "# TYPE healthd_http_connections_closed_total counter\n"
		         "healthd_http_connections_closed_total{reason=\"refused\"} %llu\n"
		         "healthd_http_connections_closed_total{reason=\"reclaimed\"} %llu\n"
		         "healthd_http_connections_closed_total{reason=\"timed_out\"} %llu\n",
		         http->open, http->max, (unsigned long long)http->refused,
		         (unsigned long long)http->reclaimed, (unsigned long long)http->timed_out);
	text_add(&t, "# HELP healthd_reloads_total Reloads (SIGHUP), by result: ok, or failed "
	         "and nothing changed\n# TYPE healthd_reloads_total counter\n"
	         "healthd_reloads_total{result=\"ok\"} %llu\n"
	         "healthd_reloads_total{result=\"failed\"} %llu\n",
	         (unsigned long long)atomic_load(&reloads[1]),
	         (unsigned long long)atomic_load(&reloads[0]));
	tls_metrics(&t);
	/* the exporter convention: a constant 1 labelled with what was built */
	text_add(&t, "# HELP healthd_build_info A metric with a constant '1' value labeled by "
	         "the version of healthd and the plugin ABI it was built with\n"
	         "# TYPE healthd_build_info gauge\n"
	         "healthd_build_info{version=\"%s\",abi=\"%d.%d\"} 1\n",
	         HEALTHD_VERSION, HEALTHD_ABI_MAJOR, HEALTHD_ABI_MINOR);
	process_metrics(&t);
	free(stats);
	if (t.oom) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}
