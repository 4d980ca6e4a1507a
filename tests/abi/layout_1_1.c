/*
 * layout_1_1.c - the plugin ABI 1.1, asserted against the CURRENT header.
 *
 * As layout_1_0.c does for 1.0: a change to include/healthd/plugin.h that
 * moves, resizes or retypes anything a 1.1 plugin relies on stops the build
 * here. Numbers are those of LP64 Linux.
 */
#include <stdbool.h>
#include <stdint.h>

#include <healthd/plugin.h>

#include "layout.h"

ABI_TYPES_1_1;

_Static_assert(HEALTHD_ABI_MAJOR == 1, "the major changed: this file describes ABI 1");
_Static_assert(HEALTHD_ABI_MINOR >= 1, "the minor may only grow");

#if defined(__LP64__) && defined(__linux__)
#define AT(T, m, off) _Static_assert(offsetof(struct T, m) == (off), #T "." #m " moved")
#define MIN_SIZE(T, n) _Static_assert(sizeof(struct T) >= (n), "struct " #T " shrank")

MIN_SIZE(healthd_host_api, 104);
AT(healthd_host_api, timeout_ms, 80);
AT(healthd_host_api, cancelled, 88);
AT(healthd_host_api, timed_out, 96);
#endif

const struct abi_entry abi_current_1_1[] = {ABI_LAYOUT_1_1};
const size_t abi_current_1_1_count = sizeof(abi_current_1_1) / sizeof(abi_current_1_1[0]);
