/* log.h - one-line messages on stderr; safe from any thread. Under journald
 * each line starts with sd-daemon(3)'s "<N>" priority; elsewhere with an RFC
 * 3339 time stamp in UTC. */
#ifndef HEALTHD_LOG_H
#define HEALTHD_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/* Levels are syslog's, like healthd_log_level in the plugin ABI. */
enum log_level { LOG_ERR = 3, LOG_WARNING = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

/* How a line starts: "<3>healthd: error: ..." for the journal,
 * "2026-12-06T20:35:04.123Z healthd: ..." otherwise, or bare "healthd: ...". */
enum log_style { LOG_STYLE_JOURNAL, LOG_STYLE_TIMESTAMP, LOG_STYLE_PLAIN };

/* Chooses the style from HEALTHD_LOG_FORMAT's value: "auto" (or NULL or
 * empty: the journal when stderr is the stream JOURNAL_STREAM names, time
 * stamps otherwise), "journal", "timestamp" or "plain". -1 for another
 * value. Called once, before any thread starts. */
int log_init(const char *style);
enum log_style log_get_style(void);
void log_set_level(int level);
int log_enabled(int level);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
