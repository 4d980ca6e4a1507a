/*
 * layout_frozen_1_0.c - the layout of the header as released with ABI 1.0
 * (healthd-plugin-1.0.h, a byte copy frozen at release; never edit it).
 * test_layout.c compares it with layout_1_0.c, built from the current header.
 */
#include <stdbool.h>
#include <stdint.h>

#include "healthd-plugin-1.0.h"

#include "layout.h"

ABI_TYPES_1_0;

_Static_assert(HEALTHD_ABI_MAJOR == 1 && HEALTHD_ABI_MINOR == 0,
               "healthd-plugin-1.0.h must stay the 1.0 header");

const struct abi_entry abi_frozen_1_0[] = {ABI_LAYOUT_1_0};
const size_t abi_frozen_1_0_count = sizeof(abi_frozen_1_0) / sizeof(abi_frozen_1_0[0]);
const char abi_frozen_1_0_symbol[] = HEALTHD_PLUGIN_SYMBOL;
