/* report.h - the ABI's opaque struct healthd_report: one run's deadline in, message out. */
#ifndef HEALTHD_REPORT_H
#define HEALTHD_REPORT_H

#include <stdint.h>

#define REPORT_MESSAGE_MAX 1024

struct healthd_report {
	int64_t deadline_ms;                 /* CLOCK_MONOTONIC */
	char message[REPORT_MESSAGE_MAX];    /* one line, NUL-terminated */
};

#endif
