/*
 * layout_frozen_1_1.c - the layout of the header as released with ABI 1.1
 * (healthd-plugin-1.1.h, a byte copy frozen at release; never edit it).
 * test_layout.c compares it with layout_1_1.c, built from the current header.
 */
#include <stdbool.h>
#include <stdint.h>

#include "healthd-plugin-1.1.h"

#include "layout.h"

ABI_TYPES_1_1;

_Static_assert(HEALTHD_ABI_MAJOR == 1 && HEALTHD_ABI_MINOR == 1,
               "healthd-plugin-1.1.h must stay the 1.1 header");

const struct abi_entry abi_frozen_1_1[] = {ABI_LAYOUT_1_1};
const size_t abi_frozen_1_1_count = sizeof(abi_frozen_1_1) / sizeof(abi_frozen_1_1[0]);
const char abi_frozen_1_1_symbol[] = HEALTHD_PLUGIN_SYMBOL;
