/*
 * exec_proto.h - the messages between the server and an executor process.
 *
 * One message per datagram on a SOCK_SEQPACKET socketpair (fd 3 in the
 * executor), at most EXEC_MSG_MAX bytes: a fixed header, then fields in the
 * order listed for each type. Integers are in host byte order (both ends are
 * the same binary on the same machine); strings are NUL-terminated inside the
 * datagram.
 *
 * The server decodes what an executor sends as hostile input: a plugin runs
 * in the executor and controls every byte it may write. exec_decode() checks
 * every length, every string and every enumerated field, and never reads past
 * the datagram; the fuzz target tests/fuzz/fuzz_exec.c holds it to that.
 */
#ifndef HEALTHD_EXEC_PROTO_H
#define HEALTHD_EXEC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"
#include "sandbox.h"
#include "sizes.h"

#define EXEC_MSG_MAX 65536
#define EXEC_TEXT_MAX 1024  /* messages and error texts, NUL included */
#define EXEC_NAME_MAX 65    /* check names, NUL included */
#define EXEC_FIXED_MAX 256  /* fixed checks one plugin may register */

enum exec_type {
	/* server -> executor */
	EXEC_LOAD = 1,        /* path: dlopen, ABI checks, load() */
	EXEC_INSTANTIATE = 2, /* name, origin, then key/value pairs */
	EXEC_SEAL = 3,        /* no more registrations; runs may come */
	EXEC_RUN = 4,         /* token; index, deadline_ms, timeout_ms */
	EXEC_CANCEL = 5,      /* token: set the run's cancelled() */
	/* executor -> server */
	EXEC_LOADED = 16,       /* ok; descriptor, fixed checks, sandbox; or an error */
	EXEC_INSTANTIATED = 17, /* ok; the check's index, or an error */
	EXEC_SEALED = 18,
	EXEC_RESULT = 19,       /* token; status, timed_out, duration, message, values */
	EXEC_DYING = 20,        /* check name: plugin code crashed or exit()ed there */
};

struct exec_header {
	uint32_t type;
	uint32_t len;   /* the whole datagram, header included */
	uint64_t token; /* a run's id (RUN, CANCEL, RESULT); 0 otherwise */
};

struct exec_fixed {
	char name[EXEC_NAME_MAX];
	uint32_t flags;
	bool in_defaults;
};

/* What an executor sends, decoded. Strings point into `fixed` storage or into
 * the decoded struct itself, never into the datagram. */
struct exec_msg {
	enum exec_type type;
	uint64_t token;
	bool ok;
	char text[EXEC_TEXT_MAX]; /* RESULT: message; LOADED/INSTANTIATED: error */
	/* LOADED */
	uint16_t abi_major, abi_minor;
	char name[PLUGIN_NAME_SIZE];
	char version[PLUGIN_VERSION_SIZE];
	char description[PLUGIN_DESCRIPTION_SIZE];
	uint32_t nfixed;
	struct exec_fixed *fixed; /* nfixed entries, malloc'd: exec_msg_free() */
	struct sandbox_report sandbox; /* layers, then off, landlock ABI, why: checked
	                                * consistent, as the executor claims them */
	/* INSTANTIATED */
	uint32_t index;
	/* DYING */
	char name2[EXEC_NAME_MAX];
	/* RESULT */
	uint32_t status;   /* 0..3, checked */
	bool timed_out;
	int64_t duration_us;
	uint32_t nvalues;  /* at most HEALTHD_VALUES_MAX; names and units checked, finite */
	struct report_value values[HEALTHD_VALUES_MAX];
};

/*
 * Decodes one datagram from an executor. Returns 0, or -1 with what is wrong
 * in why (for the log). Only the executor -> server types are accepted.
 */
int exec_decode(const void *buf, size_t len, struct exec_msg *out, char *why, size_t whylen);
void exec_msg_free(struct exec_msg *m);

/* A message under construction, for either direction. */
struct exec_buf {
	unsigned char data[EXEC_MSG_MAX];
	size_t len;
	bool overflow;
};

void exec_buf_start(struct exec_buf *b, enum exec_type type, uint64_t token);
void exec_buf_u32(struct exec_buf *b, uint32_t v);
void exec_buf_i64(struct exec_buf *b, int64_t v);
/* Appends s (cut to max-1 bytes, 0: no cut) and its NUL. */
void exec_buf_str(struct exec_buf *b, const char *s, size_t max);
/* A RESULT's values: count, then name, unit and the double's bits for each. */
void exec_buf_values(struct exec_buf *b, const struct report_value *v, size_t n);
/* Sets the header's len; false if the message did not fit. */
bool exec_buf_finish(struct exec_buf *b);

/* Reading side, used by the executor on what the server sends (trusted, but
 * still read within bounds). */
struct exec_reader {
	const unsigned char *p, *end;
	bool bad;
};

void exec_reader_init(struct exec_reader *r, const void *buf, size_t len);
uint32_t exec_read_u32(struct exec_reader *r);
int64_t exec_read_i64(struct exec_reader *r);
/* A NUL-terminated string inside the datagram, or "" (and bad) if none. */
const char *exec_read_str(struct exec_reader *r);
bool exec_reader_done(const struct exec_reader *r);

#endif
