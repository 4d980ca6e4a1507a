/* report.h - the ABI's opaque struct healthd_report: one run's deadline in, message out. */
#ifndef HEALTHD_REPORT_H
#define HEALTHD_REPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define REPORT_MESSAGE_MAX 1024

struct healthd_report {
	int64_t deadline_ms;                 /* CLOCK_MONOTONIC */
	int64_t timeout_ms;                  /* the check's configured timeout */
	atomic_bool cancelled;               /* set by the runner, read by the plugin */
	bool timed_out;                      /* the plugin says it gave up in time */
	char message[REPORT_MESSAGE_MAX];    /* one line, NUL-terminated */
};

#endif
