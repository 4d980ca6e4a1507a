/* config_impl.h - what the configuration's files share (config.c, the top
 * level; config_checks.c, checks and groups; config_isolation.c, isolation
 * and the sandbox's settings; config_tls.c, tls). Nothing else includes it. */
#ifndef HEALTHD_CONFIG_IMPL_H
#define HEALTHD_CONFIG_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "config.h"

/* What a key handler gets: the file being read, for messages and relative paths. */
struct reader {
	struct config *c;
	const char *file; /* as named to the user */
	char *dir;        /* directory of file, for relative paths */
	char *err;
	size_t errlen;
	bool saw_secret, saw_secret_file;
};

typedef int (*key_fn)(struct reader *rd, const char *key, struct json_object *v);

/* Writes "FILE: KEY: what" into rd->err; returns -1, so that a handler can
 * return config_fail(...). */
int config_fail(struct reader *rd, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "a string", "an object", ...: what a value is, for messages. */
const char *config_type_name(struct json_object *v);
/* A JSON string without NUL bytes, or NULL after reporting the problem. */
const char *config_want_string(struct reader *rd, const char *key, struct json_object *v);
/* An integer from min to max into *out; 0, or -1 after reporting. */
int config_want_int(struct reader *rd, const char *key, struct json_object *v, long long min,
                    long long max, int *out);
/* A number from min to max, integer or not; 0, or -1 after reporting. */
int config_want_number(struct reader *rd, const char *key, struct json_object *v, double min,
                       double max, double *out);
/* Errors quote what the file says; whatever it says, they stay one line. */
void config_one_line(char *s);
/* Replaces *field with a copy of value (NULL frees it); -1 out of memory. */
int config_replace_string(char **field, const char *value);
/* path, made relative to the config file's directory when it is relative. */
char *config_resolve_path(const struct reader *rd, const char *path);

/* The top-level keys that have files of their own. */
int config_key_isolation(struct reader *rd, const char *key, struct json_object *v);
int config_key_in_process(struct reader *rd, const char *key, struct json_object *v);
int config_key_checks(struct reader *rd, const char *key, struct json_object *v);
int config_key_groups(struct reader *rd, const char *key, struct json_object *v);
int config_key_tls(struct reader *rd, const char *key, struct json_object *v);
void config_tls_free(struct config_tls *t);
/* A checks_dir file's array, as "checks" is read. */
int config_read_check_list(struct reader *rd, const char *key, struct json_object *v);
void config_group_free(struct config_group *g);
void config_options_free(struct healthd_options *o);

#endif
