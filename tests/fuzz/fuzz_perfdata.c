/*
 * Fuzz target: the exec plugin's output parser (plugins/exec/perfdata.c),
 * fed a command's raw output.
 * Invariants: never more values than the cap; every label 1..63 bytes with no
 * control character; every unit at most 15 bytes of letters, %, / or UTF-8;
 * every value finite; the message lies inside the input, on its first line,
 * before any '|'.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perfdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct perfdata_output out;
	char *copy;

	/* an exact-size heap copy: ASan sees any read past the end */
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	perfdata_parse_output(copy, size, &out);
	assert(out.nvalues <= PERFDATA_VALUES_MAX);
	assert(out.message >= copy && out.message + out.message_len <= copy + size);
	assert(memchr(out.message, '\n', out.message_len) == NULL);
	assert(memchr(out.message, '|', out.message_len) == NULL);
	for (size_t i = 0; i < out.nvalues; i++) {
		const struct perfdata_value *v = &out.values[i];
		size_t ll = strnlen(v->label, sizeof(v->label)), ul = strnlen(v->uom, sizeof(v->uom));

		assert(ll >= 1 && ll <= PERFDATA_LABEL_MAX);
		for (size_t j = 0; j < ll; j++)
			assert((unsigned char)v->label[j] >= 0x20 && v->label[j] != 0x7f);
		assert(ul <= PERFDATA_UOM_MAX);
		for (size_t j = 0; j < ul; j++)
			assert(strchr("%/", v->uom[j]) != NULL ||
			       (v->uom[j] >= 'a' && v->uom[j] <= 'z') ||
			       (v->uom[j] >= 'A' && v->uom[j] <= 'Z') || (unsigned char)v->uom[j] >= 0x80);
		assert(isfinite(v->value));
	}
	free(copy);
	return 0;
}
