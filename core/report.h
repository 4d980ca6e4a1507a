/* report.h - the ABI's opaque struct healthd_report: one run's deadline in, message and values out. */
#ifndef HEALTHD_REPORT_H
#define HEALTHD_REPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <healthd/plugin.h>

#define REPORT_MESSAGE_MAX 1024

/* One number a run reported through host_api.value (ABI 1.2). Plain data, so
 * that it can be copied into results and across a process boundary as is. */
struct report_value {
	char name[HEALTHD_VALUE_NAME_MAX + 1]; /* NUL-terminated, no control characters */
	char unit[HEALTHD_VALUE_UNIT_MAX + 1]; /* "" when none */
	double value;                          /* finite */
};

struct healthd_report {
	int64_t deadline_ms;                 /* CLOCK_MONOTONIC */
	int64_t timeout_ms;                  /* the check's configured timeout */
	atomic_bool cancelled;               /* set by the runner, read by the plugin */
	bool timed_out;                      /* the plugin says it gave up in time */
	bool never_returned;                 /* the host ended the run (its executor was killed,
	                                      * died or is down); the message says how */
	char message[REPORT_MESSAGE_MAX];    /* one line, NUL-terminated */
	size_t nvalues;                      /* values[0..nvalues) are set */
	struct report_value values[HEALTHD_VALUES_MAX];
};

#endif
