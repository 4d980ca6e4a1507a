/*
 * history_store.h - optional persistence of the history in a state_dir, so
 * that a restart keeps the timeline and availability.
 *
 * Files: STATE_DIR/history.log, append-only, of fixed-size binary records
 * (HISTORY_STORE_RECORD bytes: check name, kind, time, status, duration,
 * message, CRC-32), in host byte order (not meant to move between machines).
 * When an append would put more than max_bytes after the file's opening
 * checkpoint, it is renamed to history.log.1 (replacing the previous one) and
 * a new file starts with a checkpoint of every check's transitions, so disk
 * use stays below
 * 2 x (max_bytes + checks x HISTORY_TRANSITIONS x HISTORY_STORE_RECORD).
 *
 * Durability: no fsync per record; each record set is one write(2), so a
 * crash of healthd loses nothing written, a crash of the machine loses what
 * the OS had not flushed yet (seconds). The new file is fdatasync'd after its
 * checkpoint, before history.log.1 is the only other copy.
 *
 * Never fatal: bad records are skipped, a torn tail (a crash mid-write) is cut
 * off, records of checks that are no longer configured are ignored; each open
 * logs at most one warning line, each failing append at most one per outage.
 *
 * Locks: one mutex per store, taken before a check's history lock at rotation
 * (store -> history). Call history_store_record() with no other lock held:
 * it writes to a file.
 */
#ifndef HEALTHD_HISTORY_STORE_H
#define HEALTHD_HISTORY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"

#define HISTORY_STORE_RECORD 224
#define HISTORY_STORE_FILE   "history.log"
#define HISTORY_STORE_OLD    "history.log.1"
#define HISTORY_STORE_MAX_DEFAULT (4u << 20) /* 4 MiB per file */

/* What opening found (for the warning line and tests). */
struct history_store_stats {
	uint32_t loaded;     /* records put back into the history */
	uint32_t bad;        /* records skipped: wrong magic or checksum */
	uint32_t unknown;    /* records of checks not configured now */
	uint32_t torn_bytes; /* partial record cut off the end */
};

struct history_store;

/*
 * Opens (creating) dir's history files and loads history.log.1 then
 * history.log into h, oldest first. dir must exist. max_bytes: the size at
 * which history.log rotates (at least 16 records). stats may be NULL. NULL on
 * an error that stops persistence (the message in err); the caller logs it
 * and runs without a store.
 */
struct history_store *history_store_open(const char *dir, size_t max_bytes, struct history *h,
                                         struct history_store_stats *stats, char *err,
                                         size_t errlen);
/* Flushes (fdatasync) and closes; NULL is fine. h must outlive the store. */
void history_store_close(struct history_store *st);

/*
 * Appends one result of check i (and its transition first, when t is not
 * NULL: history_record()'s *t) in one write(2). Call after history_record(),
 * from any thread, with no other lock held. 0, or -1 when the write failed.
 * i is an index of the history the store holds now: not across a rebind.
 */
int history_store_record(struct history_store *st, size_t i, int64_t time_ms, int status,
                         uint32_t duration_ms, const char *msg,
                         const struct history_transition *t);
/* The same for the check named name: for a caller that writes after its lock
 * is dropped, when a reload may have rebound the store meanwhile. */
int history_store_append(struct history_store *st, const char *name, int64_t time_ms,
                         int status, uint32_t duration_ms, const char *msg,
                         const struct history_transition *t);

/* A reload: rotation's checkpoints read h from now on (its new history).
 * The one the store had may be freed once this returns. Any thread. */
void history_store_rebind(struct history_store *st, struct history *h);

#endif
