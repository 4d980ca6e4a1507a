/*
 * run_check.h - `healthd --config FILE --run-check NAME`: one run of one
 * check, printed as a monitoring-plugins line ("OK - message | time=0.003s")
 * with the status as exit code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), so
 * that a plugin can be tried at once and healthd can serve as a monitoring
 * plugin itself.
 */
#ifndef HEALTHD_RUN_CHECK_H
#define HEALTHD_RUN_CHECK_H

#include <stdio.h>

#include "registry.h"
#include "runner.h"

/* Runs the check called name through r (in process or in its executor, as
 * the server would), writes the line to out, returns the exit status. */
int run_check_once(const struct registry *reg, struct runner *r, const char *name, FILE *out);

#endif
