/*
 * layout_1_0.c - the plugin ABI 1.0, asserted against the CURRENT header.
 *
 * Compiled by every build (it is part of test_abi_layout), so a change to
 * include/healthd/plugin.h that moves, resizes or retypes anything a 1.0
 * plugin relies on stops the build here, before any test runs. Members added
 * at the end in a later minor are fine: struct sizes may only grow.
 *
 * The numbers are those of LP64 Linux (x86_64, aarch64, ppc64le, s390x,
 * riscv64); other data models check the types and the ordering only.
 */
#include <stdbool.h>
#include <stdint.h>

#include <healthd/plugin.h>

#include "layout.h"

ABI_TYPES_1_0;

_Static_assert(HEALTHD_ABI_MAJOR == 1, "the major changed: this file describes ABI 1");
_Static_assert(HEALTHD_ABI_MINOR >= 0, "the minor may only grow");
_Static_assert(HEALTHD_OK == 0 && HEALTHD_WARNING == 1 && HEALTHD_CRITICAL == 2 &&
               HEALTHD_UNKNOWN == 3, "status values are the monitoring-plugins ones");
_Static_assert(HEALTHD_LOG_ERR == 3 && HEALTHD_LOG_WARNING == 4 && HEALTHD_LOG_INFO == 6 &&
               HEALTHD_LOG_DEBUG == 7, "log levels are syslog's");
_Static_assert(HEALTHD_CHECK_INLINE == 1u, "flag bits never change");
_Static_assert(sizeof(enum healthd_status) == sizeof(int), "run() returns an int-sized enum");

/* Read before any plugin code runs: the same in every data model. */
_Static_assert(offsetof(struct healthd_plugin, abi_major) == 0, "abi_major comes first");
_Static_assert(offsetof(struct healthd_plugin, abi_minor) == 2, "abi_minor at 2");
_Static_assert(offsetof(struct healthd_plugin, size) == 4, "descriptor size at 4");
_Static_assert(offsetof(struct healthd_check, size) == 0, "check size comes first");
_Static_assert(offsetof(struct healthd_host_api, size) == 0, "table size comes first");

#if defined(__LP64__) && defined(__linux__)
#define AT(T, m, off) _Static_assert(offsetof(struct T, m) == (off), #T "." #m " moved")
#define MIN_SIZE(T, n) _Static_assert(sizeof(struct T) >= (n), "struct " #T " shrank")

MIN_SIZE(healthd_check, 48);
AT(healthd_check, size, 0);
AT(healthd_check, flags, 4);
AT(healthd_check, name, 8);
AT(healthd_check, run, 16);
AT(healthd_check, destroy, 24);
AT(healthd_check, state, 32);
AT(healthd_check, in_defaults, 40);

MIN_SIZE(healthd_host_api, 80);
AT(healthd_host_api, size, 0);
AT(healthd_host_api, register_check, 8);
AT(healthd_host_api, option, 16);
AT(healthd_host_api, option_int, 24);
AT(healthd_host_api, option_bool, 32);
AT(healthd_host_api, option_at, 40);
AT(healthd_host_api, deadline_ms, 48);
AT(healthd_host_api, now_ms, 56);
AT(healthd_host_api, message, 64);
AT(healthd_host_api, log, 72);

MIN_SIZE(healthd_plugin, 56);
AT(healthd_plugin, abi_major, 0);
AT(healthd_plugin, abi_minor, 2);
AT(healthd_plugin, size, 4);
AT(healthd_plugin, name, 8);
AT(healthd_plugin, version, 16);
AT(healthd_plugin, description, 24);
AT(healthd_plugin, load, 32);
AT(healthd_plugin, instantiate, 40);
AT(healthd_plugin, unload, 48);
#endif

const struct abi_entry abi_current[] = {ABI_LAYOUT_1_0};
const size_t abi_current_count = sizeof(abi_current) / sizeof(abi_current[0]);
const char abi_current_symbol[] = HEALTHD_PLUGIN_SYMBOL;
