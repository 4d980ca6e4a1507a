/* history_store.c - the history's append-only files in a state_dir (see
 * history_store.h for the format, the bounds and the fsync policy). */
#include "history_store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock.h"
#include "log.h"

/* Record layout, byte offsets:
 * 0 magic | 4 kind | 5 status (to) | 6 from | 7 zero | 8 time_ms | 16 duration_ms
 * 20 check name (65) | 85 message (128) | 213 zero | 220 CRC-32 of bytes 0..219 */
#define REC_MAGIC   0x31484448u /* "HDH1" */
#define OFF_KIND    4
#define OFF_STATUS  5
#define OFF_FROM    6
#define OFF_TIME    8
#define OFF_DUR     16
#define OFF_NAME    20
#define OFF_MSG     (OFF_NAME + CHECK_NAME_MAX + 1)
#define OFF_CRC     (HISTORY_STORE_RECORD - 4)
#define KIND_RESULT     1
#define KIND_TRANSITION 2

_Static_assert(OFF_MSG + HISTORY_MSG_SIZE <= OFF_CRC, "a record holds name and message");

struct history_store {
	pthread_mutex_t lock;
	struct history *h;
	int fd;
	size_t size, max_bytes;
	size_t base;                   /* the checkpoint's bytes: not counted to max_bytes */
	bool failing;                  /* an append failed; warned once */
	char path[4096], old[4096];
	struct history_snapshot snap;  /* rotation's checkpoint buffer */
};

static uint32_t crc32(const unsigned char *p, size_t n);
static void encode(unsigned char *rec, const char *name, int kind, int status, int from,
                   int64_t time_ms, uint32_t duration_ms, const char *msg);
static void load_file(struct history_store *st, const char *path, bool cut_torn,
                      struct history_store_stats *stats);
static void load_record(struct history_store *st, const unsigned char *rec,
                        struct history_store_stats *stats);
static int append(struct history_store *st, const unsigned char *recs, size_t len);
static int rotate(struct history_store *st);

struct history_store *
history_store_open(const char *dir, size_t max_bytes, struct history *h,
                   struct history_store_stats *stats, char *err, size_t errlen)
{
	struct history_store_stats local = {0};
	struct history_store *st;
	struct stat sb;

	if (stats == NULL)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	if (max_bytes < 16 * HISTORY_STORE_RECORD) {
		snprintf(err, errlen, "state_dir: max size %zu is below %d bytes", max_bytes,
		         16 * HISTORY_STORE_RECORD);
		return NULL;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "state_dir: out of memory");
		return NULL;
	}
	st->h = h;
	st->max_bytes = max_bytes;
	if (snprintf(st->path, sizeof(st->path), "%s/%s", dir, HISTORY_STORE_FILE) >=
	            (int)sizeof(st->path) ||
	    snprintf(st->old, sizeof(st->old), "%s/%s", dir, HISTORY_STORE_OLD) >=
	            (int)sizeof(st->old)) {
		snprintf(err, errlen, "state_dir: %s: path too long", dir);
		goto fail;
	}
	load_file(st, st->old, false, stats);
	load_file(st, st->path, true, stats);
	if (stats->bad > 0 || stats->torn_bytes > 0)
		log_warn("history: %s: %u damaged records skipped, a torn tail of %u bytes cut; "
		         "%u records loaded", dir, stats->bad, stats->torn_bytes, stats->loaded);
	st->fd = open(st->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (st->fd < 0 || fstat(st->fd, &sb) < 0) {
		snprintf(err, errlen, "state_dir: %s: %s", st->path, strerror(errno));
		if (st->fd >= 0)
			close(st->fd);
		goto fail;
	}
	st->size = (size_t)sb.st_size;
	pthread_mutex_init(&st->lock, NULL);
	return st;
fail:
	free(st);
	return NULL;
}

void
history_store_close(struct history_store *st)
{
	if (st == NULL)
		return;
	if (st->fd >= 0) {
		fdatasync(st->fd);
		close(st->fd);
	}
	pthread_mutex_destroy(&st->lock);
	free(st);
}

int
history_store_record(struct history_store *st, size_t i, int64_t time_ms, int status,
                     uint32_t duration_ms, const char *msg, const struct history_transition *t)
{
	const char *name = history_name(st->h, i);

	if (name == NULL)
		return -1;
	return history_store_append(st, name, time_ms, status, duration_ms, msg, t);
}

void
history_store_rebind(struct history_store *st, struct history *h)
{
	LOCK_NOT_HELD(&st->lock);
	pthread_mutex_lock(&st->lock);
	st->h = h;
	pthread_mutex_unlock(&st->lock);
}

int
history_store_append(struct history_store *st, const char *name, int64_t time_ms, int status,
                     uint32_t duration_ms, const char *msg, const struct history_transition *t)
{
	unsigned char recs[2 * HISTORY_STORE_RECORD];
	size_t len = 0;
	int rc;

	if (t != NULL) {
		encode(recs, name, KIND_TRANSITION, t->to, t->from, t->time_ms, 0, t->message);
		len += HISTORY_STORE_RECORD;
	}
	encode(recs + len, name, KIND_RESULT, status, HISTORY_NONE, time_ms, duration_ms, msg);
	len += HISTORY_STORE_RECORD;

	LOCK_NOT_HELD(&st->lock);
	pthread_mutex_lock(&st->lock);
	rc = 0;
	if (st->size - st->base + len > st->max_bytes)
		rc = rotate(st);
	if (rc == 0)
		rc = append(st, recs, len);
	if (rc < 0 && !st->failing)
		log_warn("history: %s: %s; history is not saved until it works again", st->path,
		         strerror(errno));
	else if (rc == 0 && st->failing)
		log_info("history: %s: saving again", st->path);
	st->failing = rc < 0;
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Writes all of recs at the end of the file; a short write is undone so that
 * the file stays a whole number of records. */
static int
append(struct history_store *st, const unsigned char *recs, size_t len)
{
	ssize_t n;

	LOCK_HELD(&st->lock);
	do
		n = write(st->fd, recs, len);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len) {
		st->size += len;
		return 0;
	}
	if (n >= 0) {
		if (ftruncate(st->fd, (off_t)st->size) < 0) {
			/* keep counting what is there; the loader cuts the tail */
			st->size += (size_t)n;
		}
		errno = ENOSPC;
	}
	return -1;
}

/* history.log becomes history.log.1; the new file opens with every check's
 * transitions, so availability survives the rotation. */
static int
rotate(struct history_store *st)
{
	unsigned char rec[HISTORY_STORE_RECORD];
	int fd;

	LOCK_HELD(&st->lock);
	if (rename(st->path, st->old) < 0)
		return -1;
	fd = open(st->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	close(st->fd);
	st->fd = fd;
	st->size = st->base = 0;
	for (size_t i = 0; i < history_count(st->h); i++) {
		history_snapshot(st->h, i, &st->snap); /* lock order: store -> history */
		for (uint32_t k = 0; k < st->snap.ntransitions; k++) {
			const struct history_transition *t = &st->snap.transitions[k];

			encode(rec, st->snap.name, KIND_TRANSITION, t->to, t->from, t->time_ms, 0,
			       t->message);
			if (append(st, rec, sizeof(rec)) < 0)
				return -1;
		}
	}
	st->base = st->size;
	fdatasync(st->fd);
	return 0;
}

/* Reads path record by record; a partial record at the end is a torn write,
 * cut off (cut_torn) so that appends stay aligned. */
static void
load_file(struct history_store *st, const char *path, bool cut_torn,
          struct history_store_stats *stats)
{
	unsigned char rec[HISTORY_STORE_RECORD];
	size_t n, whole = 0;
	FILE *f = fopen(path, "rbe");

	if (f == NULL)
		return; /* none yet */
	while ((n = fread(rec, 1, sizeof(rec), f)) == sizeof(rec)) {
		load_record(st, rec, stats);
		whole += n;
	}
	fclose(f);
	if (n > 0) {
		stats->torn_bytes += (uint32_t)n;
		if (cut_torn && truncate(path, (off_t)whole) < 0)
			log_warn("history: %s: cannot cut the torn tail: %s", path, strerror(errno));
	}
}

static void
load_record(struct history_store *st, const unsigned char *rec, struct history_store_stats *stats)
{
	char name[CHECK_NAME_MAX + 1];
	uint32_t magic, crc, dur;
	int64_t time_ms;
	long i;
	int ok;

	memcpy(&magic, rec, 4);
	memcpy(&crc, rec + OFF_CRC, 4);
	if (magic != REC_MAGIC || crc != crc32(rec, OFF_CRC) ||
	    (rec[OFF_KIND] != KIND_RESULT && rec[OFF_KIND] != KIND_TRANSITION)) {
		stats->bad++;
		return;
	}
	memcpy(name, rec + OFF_NAME, sizeof(name));
	name[CHECK_NAME_MAX] = '\0';
	if ((i = history_find(st->h, name)) < 0) {
		stats->unknown++;
		return;
	}
	memcpy(&time_ms, rec + OFF_TIME, 8);
	memcpy(&dur, rec + OFF_DUR, 4);
	if (rec[OFF_KIND] == KIND_RESULT) {
		struct history_result r = {.time_ms = time_ms, .duration_ms = dur,
		                           .status = rec[OFF_STATUS]};

		memcpy(r.message, rec + OFF_MSG, sizeof(r.message) - 1);
		ok = history_restore_result(st->h, (size_t)i, &r);
	} else {
		struct history_transition t = {.time_ms = time_ms, .to = rec[OFF_STATUS],
		                               .from = rec[OFF_FROM]};

		memcpy(t.message, rec + OFF_MSG, sizeof(t.message) - 1);
		ok = history_restore_transition(st->h, (size_t)i, &t);
	}
	stats->loaded += (uint32_t)ok;
}

static void
encode(unsigned char *rec, const char *name, int kind, int status, int from, int64_t time_ms,
       uint32_t duration_ms, const char *msg)
{
	uint32_t magic = REC_MAGIC, crc;

	memset(rec, 0, HISTORY_STORE_RECORD);
	memcpy(rec, &magic, 4);
	rec[OFF_KIND] = (unsigned char)kind;
	rec[OFF_STATUS] = (unsigned char)status;
	rec[OFF_FROM] = (unsigned char)from;
	memcpy(rec + OFF_TIME, &time_ms, 8);
	memcpy(rec + OFF_DUR, &duration_ms, 4);
	memcpy(rec + OFF_NAME, name, strnlen(name, CHECK_NAME_MAX));
	if (msg != NULL)
		memcpy(rec + OFF_MSG, msg, strnlen(msg, HISTORY_MSG_SIZE - 1));
	crc = crc32(rec, OFF_CRC);
	memcpy(rec + OFF_CRC, &crc, 4);
}

/* CRC-32 (IEEE 802.3, reflected), bit by bit: records are few and small. */
static uint32_t
crc32(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n-- > 0) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}
