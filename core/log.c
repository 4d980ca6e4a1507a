/* log.c - one-line messages on stderr, where systemd and containers collect them. */
#include "log.h"

#include <stdio.h>
#include <string.h>

static int log_level = LOG_INFO;

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

/* Formats into one buffer and writes it with one call, so that lines from
 * different threads never interleave; control characters become spaces, so a
 * plugin's message cannot forge extra log lines. */
void
log_vmsg(int level, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048];
	const char *label;
	size_t n;
	int len;

	if (!log_enabled(level))
		return;
	label = (level >= LOG_ERR && level <= LOG_DEBUG && labels[level]) ? labels[level] : "";
	len = snprintf(line, sizeof(line), "healthd: %s%s", label, prefix ? prefix : "");
	if (len < 0)
		return;
	n = (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1;
	len = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (len > 0)
		n += (size_t)len < sizeof(line) - n ? (size_t)len : sizeof(line) - n - 1;
	for (size_t i = 0; i < n; i++)
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
