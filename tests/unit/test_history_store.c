/* Unit tests: the history's files in a state_dir: reload, torn tail, damaged
 * records, checks no longer configured, rotation bound. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "history_store.h"
#include "testing.h"

#define T0  1700000000000LL
#define REC HISTORY_STORE_RECORD

static struct history_snapshot snap; /* large: not on the stack */
static char dir[64], path[128], old[128];
static char err[256];

static void
fresh_dir(void)
{
	strcpy(dir, "/tmp/healthd-store-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/%s", dir, HISTORY_STORE_FILE);
	snprintf(old, sizeof(old), "%s/%s", dir, HISTORY_STORE_OLD);
}

static void
remove_dir(void)
{
	unlink(path);
	unlink(old);
	rmdir(dir);
}

static long
file_size(const char *p)
{
	struct stat sb;

	return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

/* The runner's result path: history first, then the store. */
static void
record(struct history *h, struct history_store *st, size_t i, int64_t t, int status,
       const char *msg)
{
	struct history_transition tr;
	int changed = history_record(h, i, t, status, 7, msg, &tr);

	if (history_store_record(st, i, t, status, 7, msg, changed ? &tr : NULL) != 0)
		abort();
}

/* Writes one result of "api", then n results of check "db", statuses 0,0,2,2,0,0,... (a change every 2). */
static void
write_db(size_t max, int n)
{
	static const char *const names[] = {"db", "api"};
	struct history *h = history_new(names, 2);
	struct history_store *st = history_store_open(dir, max, h, NULL, err, sizeof(err));

	if (st == NULL)
		abort();
	record(h, st, 1, T0, 1, "api slow");
	for (int k = 0; k < n; k++)
		record(h, st, 0, T0 + k * 1000, (k / 2) % 2 ? 2 : 0, k % 2 ? "odd" : "even");
	history_store_close(st);
	history_free(h);
}

DEF_TEST(write_and_reload)
{
	/* another order, "db" kept, "api" gone, "new" added */
	static const char *const names[] = {"new", "db"};
	struct history_store_stats stats;
	struct history *h;
	struct history_store *st;

	fresh_dir();
	write_db(1 << 20, 6); /* 6 results, 3 transitions, plus api's 2 records */
	EXPECT_EQ_INT(11 * REC, file_size(path));
	h = history_new(names, 2);
	st = history_store_open(dir, 1 << 20, h, &stats, err, sizeof(err));
	EXPECT_TRUE(st != NULL);
	EXPECT_EQ_INT(9, stats.loaded);
	EXPECT_EQ_INT(2, stats.unknown);
	EXPECT_EQ_INT(0, stats.bad);
	EXPECT_EQ_INT(0, stats.torn_bytes);
	history_snapshot(h, 1, &snap);
	EXPECT_EQ_INT(6, snap.nresults);
	EXPECT_EQ_INT(3, snap.ntransitions);
	EXPECT_EQ_INT(T0 + 5000, snap.results[5].time_ms);
	EXPECT_EQ_INT(7, snap.results[5].duration_ms);
	EXPECT_EQ_STR("odd", snap.results[5].message);
	EXPECT_EQ_INT(HISTORY_NONE, snap.transitions[0].from);
	EXPECT_EQ_INT(0, snap.transitions[1].from);
	EXPECT_EQ_INT(2, snap.transitions[1].to);
	EXPECT_EQ_INT(T0 + 2000, snap.transitions[1].time_ms);
	EXPECT_EQ_STR("even", snap.transitions[1].message);
	EXPECT_EQ_INT(T0, snap.known_since_ms);
	/* the live history carries on: same state, no new transition */
	EXPECT_EQ_INT(0, history_record(h, 1, T0 + 6000, 0, 1, NULL, NULL));
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(0, snap.nresults);
	history_store_close(st);
	history_free(h);
	remove_dir();
	return 0;
}

DEF_TEST(torn_tail_is_cut_and_appends_stay_aligned)
{
	static const char *const names[] = {"db", "api"};
	struct history_store_stats stats;
	struct history *h;
	struct history_store *st;
	char garbage[100];
	int fd;

	memset(garbage, 'x', sizeof(garbage));
	fresh_dir();
	write_db(1 << 20, 3); /* 3 results + 2 transitions + api's 2 = 7 records */
	fd = open(path, O_WRONLY | O_APPEND);
	EXPECT_TRUE(fd >= 0 && write(fd, garbage, 100) == 100); /* crash mid-write */
	close(fd);
	h = history_new(names, 2);
	st = history_store_open(dir, 1 << 20, h, &stats, err, sizeof(err));
	EXPECT_TRUE(st != NULL);
	EXPECT_EQ_INT(100, stats.torn_bytes);
	EXPECT_EQ_INT(7, stats.loaded);
	EXPECT_EQ_INT(7 * REC, file_size(path));
	record(h, st, 0, T0 + 10000, 0, "after"); /* a transition and a result */
	history_store_close(st);
	history_free(h);

	h = history_new(names, 2);
	st = history_store_open(dir, 1 << 20, h, &stats, err, sizeof(err));
	EXPECT_EQ_INT(9, stats.loaded);
	EXPECT_EQ_INT(0, stats.bad);
	EXPECT_EQ_INT(0, stats.torn_bytes);
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(4, snap.nresults);
	EXPECT_EQ_STR("after", snap.results[3].message);
	history_store_close(st);
	history_free(h);
	remove_dir();
	return 0;
}

DEF_TEST(damaged_record_mid_file_is_skipped)
{
	static const char *const names[] = {"db", "api"};
	struct history_store_stats stats;
	struct history *h;
	struct history_store *st;
	char byte;
	int fd;

	fresh_dir();
	write_db(1 << 20, 4); /* api: T R; db: T(0) R0 R1 T(2) R2 R3 */
	fd = open(path, O_RDWR);
	/* flip a byte in the 5th record's message field (db's result at T0+1000) */
	EXPECT_TRUE(pread(fd, &byte, 1, 4 * REC + 90) == 1);
	byte ^= 0x20;
	EXPECT_TRUE(pwrite(fd, &byte, 1, 4 * REC + 90) == 1);
	close(fd);
	h = history_new(names, 2);
	st = history_store_open(dir, 1 << 20, h, &stats, err, sizeof(err));
	EXPECT_EQ_INT(1, stats.bad);
	EXPECT_EQ_INT(7, stats.loaded);
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(3, snap.nresults);
	EXPECT_EQ_INT(T0, snap.results[0].time_ms);
	EXPECT_EQ_INT(T0 + 2000, snap.results[1].time_ms); /* T0+1000 was lost */
	EXPECT_EQ_INT(2, snap.ntransitions);
	history_store_close(st);
	history_free(h);
	remove_dir();
	return 0;
}

/*
 * max 16 records per file (after its checkpoint). 200 results of db with a
 * transition every 2 make far more than that: both files stay within max +
 * a checkpoint of at most 2 x HISTORY_TRANSITIONS records, and a reload still
 * knows the transitions that the rotated-away files held.
 */
DEF_TEST(rotation_keeps_two_bounded_files)
{
	static const char *const names[] = {"db", "api"};
	const size_t max = 16 * REC;
	const long bound = (long)max + 2 * HISTORY_TRANSITIONS * REC;
	struct history_store_stats stats;
	struct history *h;
	struct history_store *st;

	fresh_dir();
	write_db(max, 200);
	EXPECT_TRUE(file_size(path) > 0 && file_size(path) <= bound);
	EXPECT_TRUE(file_size(old) > 0 && file_size(old) <= bound);
	EXPECT_EQ_INT(0, file_size(path) % REC);
	h = history_new(names, 2);
	st = history_store_open(dir, max, h, &stats, err, sizeof(err));
	EXPECT_EQ_INT(0, stats.bad);
	history_snapshot(h, 0, &snap);
	EXPECT_EQ_INT(HISTORY_TRANSITIONS, snap.ntransitions); /* a full ring: 100 changes */
	EXPECT_EQ_INT(T0 + 198000, snap.transitions[HISTORY_TRANSITIONS - 1].time_ms);
	EXPECT_EQ_INT(T0 + 199000, snap.results[snap.nresults - 1].time_ms);
	history_snapshot(h, 1, &snap);
	EXPECT_EQ_INT(1, snap.ntransitions); /* api's one transition, kept by checkpoints */
	EXPECT_EQ_STR("api slow", snap.transitions[0].message);
	history_store_close(st);
	history_free(h);
	remove_dir();
	return 0;
}

DEF_TEST(open_refuses_what_cannot_work)
{
	static const char *const names[] = {"db"};
	struct history *h = history_new(names, 1);

	EXPECT_TRUE(history_store_open("/nonexistent/dir", 1 << 20, h, NULL, err,
	                               sizeof(err)) == NULL);
	EXPECT_CONTAINS("/nonexistent/dir", err);
	EXPECT_TRUE(history_store_open("/tmp", 100, h, NULL, err, sizeof(err)) == NULL);
	history_free(h);
	return 0;
}

int
main(void)
{
	RUN_TEST(write_and_reload);
	RUN_TEST(torn_tail_is_cut_and_appends_stay_aligned);
	RUN_TEST(damaged_record_mid_file_is_skipped);
	RUN_TEST(rotation_keeps_two_bounded_files);
	RUN_TEST(open_refuses_what_cannot_work);
	END_TEST;
}
