/* check_name.h - what a check's name may be (check_name.c). */
#ifndef HEALTHD_CHECK_NAME_H
#define HEALTHD_CHECK_NAME_H

#define CHECK_NAME_MAX 64

/* Validates a check name: 1-64 of [A-Za-z0-9_.:-], not starting with '_'.
 * Returns NULL if valid, else what is wrong. */
const char *check_name_error(const char *name);

#endif
