/*
 * exec_output.c - what plugin code writes to stdout and stderr. An executor's
 * fds 1 and 2 are the write end of one pipe; the supervisor reads the other
 * end and logs each line as the plugin's, within a budget per executor. What
 * is over the budget is dropped, counted (healthd_plugin_log_dropped_bytes_total)
 * and summarised in one line a second. The write end is non-blocking: once the
 * pipe (OUTPUT_PIPE_SIZE) is full, plugin code's writes fail with EAGAIN
 * instead of stopping the executor; what it lost so is not counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "exec_internal.h"
#include "log.h"

#define OUTPUT_PIPE_SIZE  (1 << 20)  /* F_SETPIPE_SZ: the default cap for a user */
#define OUTPUT_READ_MAX   (256 << 10) /* per read_output(): the supervisor has more to do */
#define OUTPUT_BURST_LINES 200        /* the budget: a token bucket of lines ... */
#define OUTPUT_LINES_PER_S 100
#define OUTPUT_BURST_BYTES (64 << 10) /* ... and of bytes */
#define OUTPUT_BYTES_PER_S (32 << 10)
#define OUTPUT_SUMMARY_MS  1000       /* drops are told at most this often */

static void output_line(struct exec_proc *p, const char *line, size_t len, size_t cut, int64_t now);
static void output_refill(struct exec_output *o, int64_t now);

int
exec_output_open(struct exec_output *o, int *write_end)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) == -1)
		return -1;
	/* a bigger pipe where the kernel allows; the default 64 KiB otherwise */
	if (fcntl(fds[1], F_SETPIPE_SZ, OUTPUT_PIPE_SIZE) == -1)
		(void)fcntl(fds[1], F_SETPIPE_SZ, OUTPUT_PIPE_SIZE / 4);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	*o = (struct exec_output){.fd = fds[0], .lines = OUTPUT_BURST_LINES,
	                          .bytes = OUTPUT_BURST_BYTES, .summary_at = TIMER_NONE};
	*write_end = fds[1];
	return 0;
}

static void
output_refill(struct exec_output *o, int64_t now)
{
	int64_t ms = now - o->refilled_at;

	if (ms <= 0)
		return;
	o->refilled_at = now;
	if (ms > 1000)
		ms = 1000; /* the buckets are full by then anyway */
	o->lines += (size_t)(ms * OUTPUT_LINES_PER_S / 1000);
	o->bytes += (size_t)(ms * OUTPUT_BYTES_PER_S / 1000);
	if (o->lines > OUTPUT_BURST_LINES)
		o->lines = OUTPUT_BURST_LINES;
	if (o->bytes > OUTPUT_BURST_BYTES)
		o->bytes = OUTPUT_BURST_BYTES;
}

/* One line (len bytes kept, cut more dropped after them). The executor's own
 * log lines ("healthd: warning: ...", it logs plainly) keep their level;
 * everything is said to be the plugin's, whatever it claims. */
static void
output_line(struct exec_proc *p, const char *line, size_t len, size_t cut, int64_t now)
{
	struct exec_output *o = &p->out;
	const char *name = p->pl->name, *slash = strrchr(p->pl->path, '/');
	size_t nlen = strlen(name);
	int level = LOG_INFO;
	bool own = false; /* an executor's line, as log.c wrote it */

	if (nlen == 0) { /* before its first load() answered: the file's stem */
		name = slash != NULL ? slash + 1 : p->pl->path;
		nlen = strlen(name);
		if (nlen > 3 && strcmp(name + nlen - 3, ".so") == 0)
			nlen -= 3;
	}

	output_refill(o, now);
	if (o->lines == 0 || o->bytes < len) {
		cut += len;
		o->dropped_lines++;
		len = 0;
	} else {
		o->lines--;
		o->bytes -= len;
	}
	if (cut > 0) {
		o->dropped_bytes += cut;
		atomic_fetch_add(&p->pl->log_dropped, (uint64_t)cut);
		if (o->summary_at == TIMER_NONE)
			o->summary_at = now + OUTPUT_SUMMARY_MS;
	}
	if (len == 0)
		return;
	if (p->pl->set->wrapper != NULL && len > 2 && line[0] == '=' && line[1] == '=') {
		/* a test setup's valgrind: its reports reach the harness as they are */
		fprintf(stderr, "%.*s\n", (int)len, line);
		return;
	}
	if (len >= 9 && memcmp(line, "healthd: ", 9) == 0) {
		own = true;
		static const struct {
			const char *label;
			int level;
		} labels[] = {{"error: ", LOG_ERR}, {"warning: ", LOG_WARNING}, {"debug: ", LOG_DEBUG}};
		line += 9;
		len -= 9;
		for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
			size_t k = strlen(labels[i].label);
			if (len >= k && memcmp(line, labels[i].label, k) == 0) {
				level = labels[i].level;
				line += k;
				len -= k;
				break;
			}
		}
	}
	/* the executor's lines that name it already ("plugin NAME: ", and the
	 * plugin's host log "NAME: ") stay as they are */
	if (own && ((len > nlen + 9 && memcmp(line, "plugin ", 7) == 0 &&
	             memcmp(line + 7, name, nlen) == 0 && memcmp(line + 7 + nlen, ": ", 2) == 0) ||
	            (len > nlen + 2 && memcmp(line, name, nlen) == 0 &&
	             memcmp(line + nlen, ": ", 2) == 0)))
		log_msg(level, "%.*s%s", (int)len, line, cut > 0 ? " [...]" : "");
	else
		log_msg(level, "plugin %.*s: %.*s%s", (int)nlen, name, (int)len, line,
		        cut > 0 ? " [...]" : "");
}

void
exec_output_read(struct exec_proc *p, int64_t now)
{
	struct exec_output *o = &p->out;
	size_t total = 0;

	while (o->fd >= 0 && total < OUTPUT_READ_MAX) {
		char buf[16384];
		ssize_t n = read(o->fd, buf, sizeof(buf));
		size_t start = 0;

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EAGAIN: all read; 0: every writer is gone */
		total += (size_t)n;
		for (size_t i = 0; i < (size_t)n; i++) {
			if (buf[i] != '\n')
				continue;
			if (o->len > 0 || o->cut > 0) {
				/* the end of a line begun in an earlier read */
				size_t k = i - start;
				size_t room = sizeof(o->line) - o->len;
				size_t keep = k < room ? k : room;
				memcpy(o->line + o->len, buf + start, keep);
				output_line(p, o->line, o->len + keep, o->cut + (k - keep), now);
				o->len = o->cut = 0;
			} else if (i - start > sizeof(o->line)) {
				output_line(p, buf + start, sizeof(o->line), i - start - sizeof(o->line),
				            now);
			} else {
				output_line(p, buf + start, i - start, 0, now);
			}
			start = i + 1;
		}
		/* a line not ended yet: kept up to the line's size, the rest counted */
		if (start < (size_t)n) {
			size_t k = (size_t)n - start;
			size_t room = sizeof(o->line) - o->len;
			size_t keep = k < room ? k : room;
			memcpy(o->line + o->len, buf + start, keep);
			o->len += keep;
			o->cut += k - keep;
		}
	}
}

int64_t
exec_output_tick(struct exec_proc *p, int64_t now)
{
	struct exec_output *o = &p->out;

	if (o->summary_at == TIMER_NONE || now < o->summary_at)
		return o->summary_at;
	log_warn("plugin %s: executor pid %ld wrote more than the log takes: %llu bytes in %llu "
	         "lines dropped (healthd_plugin_log_dropped_bytes_total)", p->pl->name,
	         (long)p->pid, (unsigned long long)o->dropped_bytes,
	         (unsigned long long)o->dropped_lines);
	o->dropped_bytes = o->dropped_lines = 0;
	o->summary_at = TIMER_NONE;
	return TIMER_NONE;
}

void
exec_output_close(struct exec_proc *p, int64_t now)
{
	struct exec_output *o = &p->out;

	if (o->fd < 0)
		return;
	exec_output_read(p, now);
	if (o->len > 0 || o->cut > 0)
		output_line(p, o->line, o->len, o->cut, now);
	o->len = o->cut = 0;
	if (o->summary_at != TIMER_NONE)
		exec_output_tick(p, INT64_MAX);
	close(o->fd);
	o->fd = -1;
}
