/*
 * perfdata.h - splitting a monitoring-plugins command's output into its
 * message and its performance data, and parsing that data.
 *
 * Pure functions over a byte buffer: no allocation, no I/O, no global state,
 * so a fuzz target links them as they are (tests/fuzz/fuzz_perfdata.c).
 *
 * The format (monitoring-plugins development guidelines, "Plugin Output"):
 *
 *     TEXT | 'label'=value[UOM];[warn];[crit];[min];[max] 'label 2'=...
 *     LONG TEXT LINE 2
 *     LONG TEXT LINE 3 | PERFDATA LINE 2
 *     PERFDATA LINE 3
 *
 * The message is the first line up to its '|'. Perfdata follows that '|' on
 * the first line, and after the first '|' of the later lines it runs to the
 * end of the output. Items are separated by white space; a label needs
 * single quotes if it holds spaces, and '' inside quotes is one quote.
 */
#ifndef HEALTHD_EXEC_PERFDATA_H
#define HEALTHD_EXEC_PERFDATA_H

#include <stdbool.h>
#include <stddef.h>

#define PERFDATA_LABEL_MAX 63 /* bytes, as healthd's value names */
#define PERFDATA_UOM_MAX   15 /* bytes, as healthd's value units */
#define PERFDATA_VALUES_MAX 16

/* The fields after the value, in their order: warn;crit;min;max. */
enum perfdata_field { PERFDATA_WARN, PERFDATA_CRIT, PERFDATA_MIN, PERFDATA_MAX,
                      PERFDATA_FIELDS };

struct perfdata_value {
	char label[PERFDATA_LABEL_MAX + 1]; /* 1..63 bytes, no control characters */
	char uom[PERFDATA_UOM_MAX + 1];     /* "" when none */
	double value;                       /* finite */
	/* warn, crit, min, max when the field is one plain number (in the value's
	 * UOM); a range ("10:20", "@5") or an empty field leaves has[] false */
	double field[PERFDATA_FIELDS];
	bool has[PERFDATA_FIELDS];
};

struct perfdata_output {
	const char *message;  /* points into the buffer: the first line before '|' */
	size_t message_len;   /* trimmed of white space at both ends */
	size_t nvalues;
	size_t skipped;       /* items malformed, without a value ("U"), or past the cap */
	struct perfdata_value values[PERFDATA_VALUES_MAX];
};

/* Parses a command's whole output, buf[0..len) (NUL bytes allowed). */
void perfdata_parse_output(const char *buf, size_t len, struct perfdata_output *out);

/*
 * Parses perfdata text[0..len) into out[0..max); returns how many were
 * stored and adds the items it could not store to *skipped.
 */
size_t perfdata_parse(const char *text, size_t len, struct perfdata_value *out, size_t max,
                      size_t *skipped);

#endif
