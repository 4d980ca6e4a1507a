/*
 * metrics.c - GET /metrics: Prometheus text from the runner's per-check
 * counters, the executors' state and what the HTTP layer counts; and the one
 * counter kept here, healthd_reloads_total.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "format.h"
#include "plugin_loader.h"

/* A growing text buffer for the metrics page. */
struct text {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add_label(struct text *t, const char *s);
static void add_value_samples(struct text *t, const char *check, const struct runner_stats *s);
static void plugin_metrics(struct text *t, const struct plugin_loader *loader,
                           struct executor_set *execs);

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

/* healthd_check_value{check="c",name="n"[,unit="u"]} v, per value of the last result. */
static void
add_value_samples(struct text *t, const char *check, const struct runner_stats *s)
{
	char num[32];

	for (size_t i = 0; s->has_last && i < s->last_nvalues; i++) {
		const struct report_value *v = &s->last_values[i];

		text_add(t, "healthd_check_value{check=\"%s\",name=\"", check);
		text_add_label(t, v->name);
		if (v->unit[0] != '\0') {
			text_add(t, "\",unit=\"");
			text_add_label(t, v->unit);
		}
		format_number(v->value, num, sizeof(num));
		text_add(t, "\"} %s\n", num);
	}
}

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
	free(xi);
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
	text_add(&t, "# HELP healthd_check_value Numbers the check's last run reported (perfdata), "
	         "by name; unit as the plugin gave it\n# TYPE healthd_check_value gauge\n");
	for (uint32_t id = 0; id < count; id++)
		add_value_samples(&t, registry_at(reg, id)->name, &stats[id]);
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
	free(stats);
	if (t.oom) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}
