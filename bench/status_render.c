/*
 * status_render.c - CPU and bytes of GET P/status for 200 checks with full
 * histories, of their P/history bodies, and of the JSON P/ (plain and
 * ?verbose=1) for the same checks in the same run, with the ratio; run by
 * hand, not by meson test:
 *
 *     meson compile -C build status_render && build/tests/unit/status_render [checks] [rounds]
 *
 * Prints CPU µs per render (CLOCK_PROCESS_CPUTIME_ID, median of rounds),
 * the bodies' bytes, and the history's memory per check. P/ is formatted from
 * a finished job of inline checks (format.c, as http.c does), so the
 * comparison is of the bodies, not of running checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "format.h"
#include "history.h"
#include "registry.h"
#include "runner.h"
#include "status_page.h"

static int64_t cpu_us(void);
static int cmp_i64(const void *a, const void *b);
static enum healthd_status run_ok(void *state, struct healthd_report *report);
static struct runner_job *seed_job(char **names, size_t n, struct registry **reg,
                                   struct runner **runner, uint32_t **ids);

/* The P/ side: a check that answers at once, on the submitting thread. */
static enum healthd_status
run_ok(void *state, struct healthd_report *report)
{
	(void)state;
	(void)report;
	return HEALTHD_OK;
}

/* n inline checks, all selected, run once: a finished job to format. */
static struct runner_job *
seed_job(char **names, size_t n, struct registry **reg, struct runner **runner, uint32_t **ids)
{
	char err[256];
	uint8_t *mark;
	bool truncated;
	size_t sel;

	*reg = registry_new();
	for (size_t i = 0; *reg != NULL && i < n; i++) {
		struct check c = {.run = run_ok, .flags = HEALTHD_CHECK_INLINE, .timeout_ms = 2000,
		                  .in_defaults = true, .origin = "bench"};

		snprintf(c.name, sizeof(c.name), "%s", names[i]);
		if (registry_add(*reg, &c, err, sizeof(err)) < 0)
			return NULL;
	}
	if (*reg == NULL)
		return NULL;
	registry_seal(*reg);
	*runner = runner_new(*reg, 1);
	*ids = calloc(n, sizeof(**ids));
	mark = calloc(n, 1);
	if (*runner == NULL || *ids == NULL || mark == NULL)
		return NULL;
	sel = registry_select(*reg, false, NULL, 0, 0, mark, *ids, &truncated);
	free(mark);
	return runner_submit(*runner, *ids, sel); /* inline: finished on return */
}

int
main(int argc, char **argv)
{
	size_t n = argc > 1 ? (size_t)atol(argv[1]) : 200;
	int rounds = argc > 2 ? atoi(argv[2]) : 200;
	const char *const groups[] = {"web", "db", "queue", "cache"};
	const int64_t now = clock_wall_ms();
	struct status_page_opts o = {.now_ms = now, .messages = true, .refresh_s = 30};
	struct history_snapshot *snaps;
	struct status_check *checks;
	struct history *h;
	char **names;
	int64_t *page_us, *json_us, *seed_us, *verbose_us;
	size_t page_bytes = 0, json_bytes = 0, seed_bytes = 0, verbose_bytes = 0;
	struct registry *reg = NULL;
	struct runner *runner = NULL;
	struct runner_job *job;
	uint32_t *ids = NULL;

	if (n == 0 || rounds <= 0) {
		fprintf(stderr, "usage: status_render [checks] [rounds]\n");
		return 2;
	}
	names = calloc(n, sizeof(*names));
	snaps = calloc(n, sizeof(*snaps));
	checks = calloc(n, sizeof(*checks));
	page_us = calloc((size_t)rounds, sizeof(*page_us));
	json_us = calloc((size_t)rounds, sizeof(*json_us));
	seed_us = calloc((size_t)rounds, sizeof(*seed_us));
	verbose_us = calloc((size_t)rounds, sizeof(*verbose_us));
	for (size_t i = 0; i < n; i++) {
		names[i] = malloc(32);
		snprintf(names[i], 32, "check-%03zu", i);
	}
	h = history_new((const char *const *)names, n);
	if (h == NULL || snaps == NULL || checks == NULL || page_us == NULL || json_us == NULL ||
	    seed_us == NULL || verbose_us == NULL)
		return 1;
	if ((job = seed_job(names, n, &reg, &runner, &ids)) == NULL)
		return 1;
	/* a result every 10 s for 24 h, a state change every ~45 min: full rings */
	for (size_t i = 0; i < n; i++) {
		for (int64_t t = now - HISTORY_24H; t < now; t += 10000) {
			int st = (t / 1000 / 2700 + (int64_t)i) % 5 == 0 ? 2 : 0;

			history_record(h, i, t, st, (uint32_t)(5 + (t / 10000 + (int64_t)i) % 40),
			               st ? "connection refused <after 3 tries>" : "ok", NULL);
		}
		history_snapshot(h, i, &snaps[i]);
		checks[i] = (struct status_check){
			.name = names[i], .groups = &groups[i % 4], .ngroups = 1,
			.state = snaps[i].results[snaps[i].nresults - 1].status,
			.since_ms = snaps[i].transitions[snaps[i].ntransitions - 1].time_ms,
			.message = snaps[i].results[snaps[i].nresults - 1].message,
			.flapping = snaps[i].flapping,
			.suppressed_by = i % 17 == 0 ? "check-000" : NULL,
			.history = &snaps[i],
		};
	}
	for (int r = 0; r < rounds; r++) {
		struct status_buf b = {0};
		int64_t t0 = cpu_us();

		if (status_page_render(checks, n, &o, &b) < 0)
			return 1;
		page_us[r] = cpu_us() - t0;
		page_bytes = b.len;
		status_buf_free(&b);

		t0 = cpu_us();
		json_bytes = 0;
		for (size_t i = 0; i < n; i++) {
			size_t len;
			char *body = history_json(&snaps[i], now, true, &len);

			if (body == NULL)
				return 1;
			json_bytes += len;
			free(body);
		}
		json_us[r] = cpu_us() - t0;

		for (int verbose = 0; verbose < 2; verbose++) {
			size_t len = 0;
			char *body;

			t0 = cpu_us();
			if ((body = format_seed(reg, ids, job, verbose, &len)) == NULL)
				return 1;
			(verbose ? verbose_us : seed_us)[r] = cpu_us() - t0;
			*(verbose ? &verbose_bytes : &seed_bytes) = len;
			free(body);
		}
	}
	qsort(page_us, (size_t)rounds, sizeof(*page_us), cmp_i64);
	qsort(json_us, (size_t)rounds, sizeof(*json_us), cmp_i64);
	qsort(seed_us, (size_t)rounds, sizeof(*seed_us), cmp_i64);
	qsort(verbose_us, (size_t)rounds, sizeof(*verbose_us), cmp_i64);
	printf("checks %zu, rounds %d\n", n, rounds);
	printf("P/status render: %lld us CPU (median; min %lld), %zu bytes\n",
	       (long long)page_us[rounds / 2], (long long)page_us[0], page_bytes);
	printf("P/history x %zu checks: %lld us CPU (median), %zu bytes\n", n,
	       (long long)json_us[rounds / 2], json_bytes);
	printf("P/ JSON body: %lld us CPU (median), %zu bytes; ?verbose=1: %lld us, %zu bytes\n",
	       (long long)seed_us[rounds / 2], seed_bytes, (long long)verbose_us[rounds / 2],
	       verbose_bytes);
	double page = (double)page_us[rounds / 2];
	printf("P/status / P/ (same checks, same run): CPU x%.1f (x%.1f against ?verbose=1), "
	       "bytes x%.1f\n", page / (double)(seed_us[rounds / 2] + 1),
	       page / (double)(verbose_us[rounds / 2] + 1), (double)page_bytes / (double)seed_bytes);
	printf("history memory: %zu bytes per check (budget HISTORY_CHECK_BYTES), %zu in all\n",
	       (size_t)HISTORY_CHECK_BYTES, (size_t)HISTORY_CHECK_BYTES * n);
	runner_job_free(job);
	if (runner_shutdown(runner, 1000, NULL) == 0)
		runner_free(runner);
	registry_free(reg);
	free(ids);
	free(seed_us);
	free(verbose_us);
	history_free(h);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(snaps);
	free(checks);
	free(page_us);
	free(json_us);
	return 0;
}

static int64_t
cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}
