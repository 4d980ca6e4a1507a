/*
 * Fuzz target: what an executor process sends the server (exec_decode).
 * A plugin runs in the executor and controls every byte it writes, so the
 * decoder must hold whatever arrives.
 * Invariants: a decoded message is one of the executor's types; its strings
 * are NUL-terminated within their fields and free of control characters; a
 * status is 0-3; fixed checks are at most EXEC_FIXED_MAX; a LOADED's sandbox
 * layers are a possible set (none both on and off, a landlock ABI with
 * landlock only, a reason exactly when one is missing); re-encoding a decoded
 * RESULT gives back exactly the input.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "exec_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	assert(n < size);
	for (size_t i = 0; i < n; i++)
		assert((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct exec_msg m;
	char why[256];

	if (exec_decode(data, size, &m, why, sizeof(why)) == -1) {
		assert(m.fixed == NULL && m.type == 0);
		assert(strlen(why) < sizeof(why) && why[0] != '\0');
		return 0;
	}
	assert(m.type == EXEC_LOADED || m.type == EXEC_INSTANTIATED || m.type == EXEC_SEALED ||
	       m.type == EXEC_RESULT || m.type == EXEC_DYING);
	check_text(m.text, sizeof(m.text));
	check_text(m.name, sizeof(m.name));
	check_text(m.version, sizeof(m.version));
	check_text(m.description, sizeof(m.description));
	check_text(m.name2, sizeof(m.name2));
	assert(m.nfixed <= EXEC_FIXED_MAX);
	assert(m.nvalues <= HEALTHD_VALUES_MAX);
	for (uint32_t i = 0; i < m.nvalues; i++) {
		check_text(m.values[i].name, sizeof(m.values[i].name));
		check_text(m.values[i].unit, sizeof(m.values[i].unit));
		assert(m.values[i].name[0] != '\0' && isfinite(m.values[i].value));
	}
	for (uint32_t i = 0; i < m.nfixed; i++)
		check_text(m.fixed[i].name, sizeof(m.fixed[i].name));
	check_text(m.sandbox.why, sizeof(m.sandbox.why));
	assert(((m.sandbox.layers | m.sandbox.off) & ~(unsigned)SANDBOX_ALL) == 0);
	assert((m.sandbox.layers & m.sandbox.off) == 0);
	assert(((m.sandbox.layers & SANDBOX_LANDLOCK) != 0) == (m.sandbox.landlock_abi != 0));
	assert(m.sandbox.landlock_abi <= SANDBOX_LANDLOCK_ABI_MAX);
	if (m.type == EXEC_LOADED && m.ok)
		assert((sandbox_missing(&m.sandbox) != 0) == (m.sandbox.why[0] != '\0'));
	if (m.type == EXEC_RESULT) {
		static struct exec_buf b;
		assert(m.status <= 3 && m.duration_us >= 0);
		exec_buf_start(&b, EXEC_RESULT, m.token);
		exec_buf_u32(&b, m.status);
		exec_buf_u32(&b, m.timed_out);
		exec_buf_i64(&b, m.duration_us);
		exec_buf_str(&b, m.text, 0);
		exec_buf_values(&b, m.values, m.nvalues);
		assert(exec_buf_finish(&b));
		assert(b.len == size && memcmp(b.data, data, size) == 0);
	}
	exec_msg_free(&m);
	return 0;
}
