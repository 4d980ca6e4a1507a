/* log.c - one-line messages on stderr, where systemd and containers collect
 * them: with sd-daemon(3) priority prefixes when stderr is the journal, with
 * an RFC 3339 time stamp otherwise. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int log_level = LOG_INFO;
static enum log_style log_style = LOG_STYLE_PLAIN; /* until log_init() */

/* level     label */
static const char *const labels[] = {
	[LOG_ERR] = "error: ",
	[LOG_WARNING] = "warning: ",
	[LOG_INFO] = "",
	[LOG_DEBUG] = "debug: ",
};

void
log_set_level(int level)
{
	log_level = level;
}

int
log_enabled(int level)
{
	return level <= log_level;
}

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected to
 * stderr; it is the journal only while fd 2 is still that stream (a child
 * may have inherited the variable with another stderr). */
static bool
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) == -1)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int
log_init(const char *style)
{
	if (style == NULL || *style == '\0' || strcmp(style, "auto") == 0)
		log_style = stderr_is_journal() ? LOG_STYLE_JOURNAL : LOG_STYLE_TIMESTAMP;
	else if (strcmp(style, "journal") == 0)
		log_style = LOG_STYLE_JOURNAL;
	else if (strcmp(style, "timestamp") == 0)
		log_style = LOG_STYLE_TIMESTAMP;
	else if (strcmp(style, "plain") == 0)
		log_style = LOG_STYLE_PLAIN;
	else
		return -1;
	return 0;
}

enum log_style
log_get_style(void)
{
	return log_style;
}

/* What goes before "healthd: ": "<3>" for the journal, which keeps its own
 * time; "2026-12-06T20:35:04.123Z " otherwise (UTC, milliseconds). */
static int
line_head(char *buf, size_t len, int level)
{
	struct timespec ts;
	struct tm tm;
	char day[32];

	switch (log_style) {
	case LOG_STYLE_JOURNAL:
		return snprintf(buf, len, "<%d>", level);
	case LOG_STYLE_TIMESTAMP:
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
		return snprintf(buf, len, "%s.%03ldZ ", day, ts.tv_nsec / 1000000);
	case LOG_STYLE_PLAIN:
		break;
	}
	return 0;
}

/* Formats into one buffer and writes it with one call, so that lines from
 * different threads never interleave; control characters become spaces, so a
 * plugin's message cannot forge extra log lines. */
void
log_vmsg(int level, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048];
	const char *label;
	size_t n, head;
	int len;

	if (!log_enabled(level))
		return;
	label = (level >= LOG_ERR && level <= LOG_DEBUG && labels[level]) ? labels[level] : "";
	len = line_head(line, sizeof(line), level);
	head = len > 0 ? (size_t)len : 0;
	len = snprintf(line + head, sizeof(line) - head, "healthd: %s%s", label,
	               prefix ? prefix : "");
	if (len < 0)
		return;
	n = head + ((size_t)len < sizeof(line) - head ? (size_t)len : sizeof(line) - head - 1);
	len = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (len > 0)
		n += (size_t)len < sizeof(line) - n ? (size_t)len : sizeof(line) - n - 1;
	for (size_t i = head; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
	line[n++] = '\n';
	fwrite(line, 1, n, stderr);
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, NULL, fmt, ap);
	va_end(ap);
}
