/*
 * layout.h - the plugin ABI 1.0 and 1.1 as data and as type assertions, so that
 * translation units built against different copies of healthd/plugin.h can be
 * compared (they share an include guard, so one TU holds one copy).
 *
 * Include after a plugin.h. ABI_LAYOUT_1_0 lists every member and constant of
 * 1.0 once; ABI_TYPES_1_0 pins every member's type to its 1.0 declaration, so
 * a changed signature fails the build even when no offset moves.
 * ABI_LAYOUT_1_1 and ABI_TYPES_1_1 do the same for 1.1 (1.0 plus its additions).
 */
#ifndef HEALTHD_ABI_LAYOUT_H
#define HEALTHD_ABI_LAYOUT_H

#include <stddef.h>

struct abi_entry {
	const char *name;
	long long value;
};

#define ABI_SIZE(T) {"sizeof(struct " #T ")", (long long)sizeof(struct T)}
#define ABI_MEMBER(T, m)                                                                   \
	{"offsetof(struct " #T ", " #m ")", (long long)offsetof(struct T, m)},             \
	{"sizeof(" #T "." #m ")", (long long)sizeof(((struct T *)0)->m)}
#define ABI_CONST(c) {#c, (long long)(c)}

/* Entries named "sizeof(struct ...)" and HEALTHD_ABI_MINOR may grow in a
 * later minor; every other value is fixed for all of ABI 1. */
#define ABI_LAYOUT_1_0                                                                     \
	ABI_CONST(HEALTHD_ABI_MAJOR),                                                      \
	ABI_CONST(HEALTHD_ABI_MINOR),                                                      \
	ABI_CONST(HEALTHD_OK),                                                             \
	ABI_CONST(HEALTHD_WARNING),                                                        \
	ABI_CONST(HEALTHD_CRITICAL),                                                       \
	ABI_CONST(HEALTHD_UNKNOWN),                                                        \
	ABI_CONST(HEALTHD_LOG_ERR),                                                        \
	ABI_CONST(HEALTHD_LOG_WARNING),                                                    \
	ABI_CONST(HEALTHD_LOG_INFO),                                                       \
	ABI_CONST(HEALTHD_LOG_DEBUG),                                                      \
	ABI_CONST(HEALTHD_CHECK_INLINE),                                                   \
	ABI_CONST(sizeof(enum healthd_status)),                                            \
	ABI_SIZE(healthd_check),                                                           \
	ABI_MEMBER(healthd_check, size),                                                   \
	ABI_MEMBER(healthd_check, flags),                                                  \
	ABI_MEMBER(healthd_check, name),                                                   \
	ABI_MEMBER(healthd_check, run),                                                    \
	ABI_MEMBER(healthd_check, destroy),                                                \
	ABI_MEMBER(healthd_check, state),                                                  \
	ABI_MEMBER(healthd_check, in_defaults),                                            \
	ABI_SIZE(healthd_host_api),                                                        \
	ABI_MEMBER(healthd_host_api, size),                                                \
	ABI_MEMBER(healthd_host_api, register_check),                                      \
	ABI_MEMBER(healthd_host_api, option),                                              \
	ABI_MEMBER(healthd_host_api, option_int),                                          \
	ABI_MEMBER(healthd_host_api, option_bool),                                         \
	ABI_MEMBER(healthd_host_api, option_at),                                           \
	ABI_MEMBER(healthd_host_api, deadline_ms),                                         \
	ABI_MEMBER(healthd_host_api, now_ms),                                              \
	ABI_MEMBER(healthd_host_api, message),                                             \
	ABI_MEMBER(healthd_host_api, log),                                                 \
	ABI_SIZE(healthd_plugin),                                                          \
	ABI_MEMBER(healthd_plugin, abi_major),                                             \
	ABI_MEMBER(healthd_plugin, abi_minor),                                             \
	ABI_MEMBER(healthd_plugin, size),                                                  \
	ABI_MEMBER(healthd_plugin, name),                                                  \
	ABI_MEMBER(healthd_plugin, version),                                               \
	ABI_MEMBER(healthd_plugin, description),                                           \
	ABI_MEMBER(healthd_plugin, load),                                                  \
	ABI_MEMBER(healthd_plugin, instantiate),                                           \
	ABI_MEMBER(healthd_plugin, unload)

/* 1.1 added three members at the end of the host table. */
#define ABI_LAYOUT_1_1                                                                     \
	ABI_LAYOUT_1_0,                                                                    \
	ABI_MEMBER(healthd_host_api, timeout_ms),                                          \
	ABI_MEMBER(healthd_host_api, cancelled),                                           \
	ABI_MEMBER(healthd_host_api, timed_out)

/* True when member m of struct T has exactly type `type`. */
#define ABI_HAS_TYPE(T, m, type) _Generic(((struct T *)0)->m, type: 1, default: 0)
#define ABI_ASSERT_TYPE(T, m, type)                                                        \
	_Static_assert(ABI_HAS_TYPE(T, m, type), "struct " #T "." #m " is no longer " #type)

/* Every 1.0 member, declared as in 1.0. */
#define ABI_TYPES_1_0                                                                      \
	ABI_ASSERT_TYPE(healthd_check, size, uint32_t);                                    \
	ABI_ASSERT_TYPE(healthd_check, flags, uint32_t);                                   \
	ABI_ASSERT_TYPE(healthd_check, name, const char *);                                \
	ABI_ASSERT_TYPE(healthd_check, run,                                                \
	                enum healthd_status (*)(void *, struct healthd_report *));         \
	ABI_ASSERT_TYPE(healthd_check, destroy, void (*)(void *));                         \
	ABI_ASSERT_TYPE(healthd_check, state, void *);                                     \
	ABI_ASSERT_TYPE(healthd_check, in_defaults, bool);                                 \
	ABI_ASSERT_TYPE(healthd_host_api, size, uint32_t);                                 \
	ABI_ASSERT_TYPE(healthd_host_api, register_check,                                  \
	                int (*)(struct healthd_host *, const struct healthd_check *, char *,   \
	                        size_t));                                                  \
	ABI_ASSERT_TYPE(healthd_host_api, option,                                          \
	                const char *(*)(const struct healthd_options *, const char *));    \
	ABI_ASSERT_TYPE(healthd_host_api, option_int,                                      \
	                int (*)(const struct healthd_options *, const char *, int64_t,     \
	                        int64_t, int64_t, int64_t *));                             \
	ABI_ASSERT_TYPE(healthd_host_api, option_bool,                                     \
	                int (*)(const struct healthd_options *, const char *, bool, bool *)); \
	ABI_ASSERT_TYPE(healthd_host_api, option_at,                                       \
	                bool (*)(const struct healthd_options *, size_t, const char **,    \
	                         const char **));                                          \
	ABI_ASSERT_TYPE(healthd_host_api, deadline_ms,                                     \
	                int64_t (*)(const struct healthd_report *));                       \
	ABI_ASSERT_TYPE(healthd_host_api, now_ms, int64_t (*)(void));                      \
	ABI_ASSERT_TYPE(healthd_host_api, message,                                         \
	                void (*)(struct healthd_report *, const char *, ...));             \
	ABI_ASSERT_TYPE(healthd_host_api, log,                                             \
	                void (*)(struct healthd_host *, int, const char *, ...));          \
	ABI_ASSERT_TYPE(healthd_plugin, abi_major, uint16_t);                              \
	ABI_ASSERT_TYPE(healthd_plugin, abi_minor, uint16_t);                              \
	ABI_ASSERT_TYPE(healthd_plugin, size, uint32_t);                                   \
	ABI_ASSERT_TYPE(healthd_plugin, name, const char *);                               \
	ABI_ASSERT_TYPE(healthd_plugin, version, const char *);                            \
	ABI_ASSERT_TYPE(healthd_plugin, description, const char *);                        \
	ABI_ASSERT_TYPE(healthd_plugin, load,                                              \
	                int (*)(struct healthd_host *, const struct healthd_host_api *,        \
	                        char *, size_t));                                          \
	ABI_ASSERT_TYPE(healthd_plugin, instantiate,                                       \
	                int (*)(struct healthd_host *, const struct healthd_host_api *,        \
	                        const char *, const struct healthd_options *, char *,      \
	                        size_t));                                                  \
	ABI_ASSERT_TYPE(healthd_plugin, unload, void (*)(void))

/* Every 1.1 member, declared as in 1.1. */
#define ABI_TYPES_1_1                                                                      \
	ABI_TYPES_1_0;                                                                     \
	ABI_ASSERT_TYPE(healthd_host_api, timeout_ms,                                      \
	                int64_t (*)(const struct healthd_report *));                       \
	ABI_ASSERT_TYPE(healthd_host_api, cancelled,                                       \
	                bool (*)(const struct healthd_report *));                          \
	ABI_ASSERT_TYPE(healthd_host_api, timed_out, void (*)(struct healthd_report *))

/* One table per copy of the header and minor: layout_1_0.c and layout_1_1.c
 * (current header), layout_frozen_1_0.c, layout_frozen_1_1.c. */
extern const struct abi_entry abi_current[];
extern const size_t abi_current_count;
extern const char abi_current_symbol[];
extern const struct abi_entry abi_frozen_1_0[];
extern const size_t abi_frozen_1_0_count;
extern const char abi_frozen_1_0_symbol[];
extern const struct abi_entry abi_current_1_1[];
extern const size_t abi_current_1_1_count;
extern const struct abi_entry abi_frozen_1_1[];
extern const size_t abi_frozen_1_1_count;
extern const char abi_frozen_1_1_symbol[];

#endif
