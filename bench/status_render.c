/*
 * status_render.c - CPU and bytes of GET P/status for 200 checks with full
 * histories, and of their P/history bodies; run by hand, not by meson test:
 *
 *     meson compile -C build status_render && build/tests/unit/status_render [checks] [rounds]
 *
 * Prints CPU µs per render (CLOCK_PROCESS_CPUTIME_ID, median of rounds),
 * the page's bytes, and the history's memory per check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "history.h"
#include "status_page.h"

static int64_t cpu_us(void);
static int cmp_i64(const void *a, const void *b);

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
	int64_t *page_us, *json_us;
	size_t page_bytes = 0, json_bytes = 0;

	if (n == 0 || rounds <= 0) {
		fprintf(stderr, "usage: status_render [checks] [rounds]\n");
		return 2;
	}
	names = calloc(n, sizeof(*names));
	snaps = calloc(n, sizeof(*snaps));
	checks = calloc(n, sizeof(*checks));
	page_us = calloc((size_t)rounds, sizeof(*page_us));
	json_us = calloc((size_t)rounds, sizeof(*json_us));
	for (size_t i = 0; i < n; i++) {
		names[i] = malloc(32);
		snprintf(names[i], 32, "check-%03zu", i);
	}
	h = history_new((const char *const *)names, n);
	if (h == NULL || snaps == NULL || checks == NULL || page_us == NULL || json_us == NULL)
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
	}
	qsort(page_us, (size_t)rounds, sizeof(*page_us), cmp_i64);
	qsort(json_us, (size_t)rounds, sizeof(*json_us), cmp_i64);
	printf("checks %zu, rounds %d\n", n, rounds);
	printf("P/status render: %lld us CPU (median; min %lld), %zu bytes\n",
	       (long long)page_us[rounds / 2], (long long)page_us[0], page_bytes);
	printf("P/history x %zu checks: %lld us CPU (median), %zu bytes\n", n,
	       (long long)json_us[rounds / 2], json_bytes);
	printf("history memory: %zu bytes per check (budget HISTORY_CHECK_BYTES), %zu in all\n",
	       (size_t)HISTORY_CHECK_BYTES, (size_t)HISTORY_CHECK_BYTES * n);
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
