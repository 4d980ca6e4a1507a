/*
 * Fuzz target: configuration text, as config_load() reads a file.
 * Invariants: either an error of one line that starts with a path, or a
 * configuration whose every part is usable.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[1024] = "";

	if (config_init(&c) == -1)
		return 0;
	if (config_load_text(&c, "/nonexistent-fuzz/healthd.json", (const char *)data, size, err,
	                     sizeof(err)) == -1) {
		assert(err[0] == '/');
		assert(strchr(err, '\n') == NULL);
	} else {
		/* JSON has no raw NUL bytes: text holding one must be refused */
		assert(memchr(data, '\0', size) == NULL);
		assert(c.nlisten >= 1);
		assert(c.url_prefix != NULL && (c.url_prefix[0] == '\0' || c.url_prefix[0] == '/'));
		assert(c.workers >= 1);
		assert(c.secret_mode != SECRET_SET || (c.secret != NULL && c.secret[0] != '\0'));
		for (size_t i = 0; i < c.nchecks; i++) {
			assert(c.checks[i].name != NULL && c.checks[i].plugin != NULL);
			assert(c.checks[i].timeout_ms >= 1 && c.checks[i].cache_ms >= 0);
			for (size_t k = 0; k < c.checks[i].options.n; k++)
				assert(c.checks[i].options.v[k].key != NULL &&
				       c.checks[i].options.v[k].value != NULL);
		}
	}
	config_free(&c);
	return 0;
}
