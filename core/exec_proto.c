/* exec_proto.c - encoding and (hostile-input) decoding of executor messages. */
#include "exec_proto.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

void
exec_buf_start(struct exec_buf *b, enum exec_type type, uint64_t token)
{
	struct exec_header h = {.type = type, .len = 0, .token = token};

	memcpy(b->data, &h, sizeof(h));
	b->len = sizeof(h);
	b->overflow = false;
}

static void
put(struct exec_buf *b, const void *v, size_t n)
{
	if (b->overflow || n > sizeof(b->data) - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->data + b->len, v, n);
	b->len += n;
}

void
exec_buf_u32(struct exec_buf *b, uint32_t v)
{
	put(b, &v, sizeof(v));
}

void
exec_buf_i64(struct exec_buf *b, int64_t v)
{
	put(b, &v, sizeof(v));
}

void
exec_buf_str(struct exec_buf *b, const char *s, size_t max)
{
	size_t n = strlen(s ? s : "");

	if (max > 0 && n > max - 1)
		n = max - 1;
	put(b, s ? s : "", n);
	put(b, "", 1);
}

void
exec_buf_values(struct exec_buf *b, const struct report_value *v, size_t n)
{
	exec_buf_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		int64_t bits;
		memcpy(&bits, &v[i].value, sizeof(bits));
		exec_buf_str(b, v[i].name, sizeof(v[i].name));
		exec_buf_str(b, v[i].unit, sizeof(v[i].unit));
		exec_buf_i64(b, bits);
	}
}

bool
exec_buf_finish(struct exec_buf *b)
{
	uint32_t len = (uint32_t)b->len;

	if (b->overflow)
		return false;
	memcpy(b->data + offsetof(struct exec_header, len), &len, sizeof(len));
	return true;
}

void
exec_reader_init(struct exec_reader *r, const void *buf, size_t len)
{
	r->p = buf;
	r->end = r->p + len;
	r->bad = false;
}

/* n bytes into v (zeroed when they are not there: then r is bad) */
static void
take(struct exec_reader *r, void *v, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		memset(v, 0, n);
		return;
	}
	memcpy(v, r->p, n);
	r->p += n;
}

uint32_t
exec_read_u32(struct exec_reader *r)
{
	uint32_t v;

	take(r, &v, sizeof(v));
	return v;
}

int64_t
exec_read_i64(struct exec_reader *r)
{
	int64_t v;

	take(r, &v, sizeof(v));
	return v;
}

const char *
exec_read_str(struct exec_reader *r)
{
	const unsigned char *nul;
	const char *s;

	if (r->bad || r->p >= r->end || (nul = memchr(r->p, 0, (size_t)(r->end - r->p))) == NULL) {
		r->bad = true;
		return "";
	}
	s = (const char *)r->p;
	r->p = nul + 1;
	return s;
}

bool
exec_reader_done(const struct exec_reader *r)
{
	return !r->bad && r->p == r->end;
}

/* ---- decoding what an executor sends ------------------------------------ */

static int
bad(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A string field that must fit dst (NUL included) and hold no control bytes. */
static int
read_text(struct exec_reader *r, char *dst, size_t size, const char *field, char *why,
          size_t whylen)
{
	const char *s = exec_read_str(r);
	size_t n = strlen(s);

	if (r->bad)
		return bad(why, whylen, "%s: missing or not NUL-terminated", field);
	if (n >= size)
		return bad(why, whylen, "%s: %zu bytes, at most %zu", field, n, size - 1);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return bad(why, whylen, "%s: control character at byte %zu", field, i);
	memcpy(dst, s, n + 1);
	return 0;
}

static int decode_sandbox(struct exec_reader *r, struct sandbox_report *sb, char *why,
                          size_t whylen);

static int
decode_loaded(struct exec_reader *r, struct exec_msg *m, char *why, size_t whylen)
{
	uint32_t major, minor;

	m->ok = exec_read_u32(r) != 0;
	if (!m->ok)
		return read_text(r, m->text, sizeof(m->text), "error", why, whylen);
	major = exec_read_u32(r);
	minor = exec_read_u32(r);
	if (r->bad || major > UINT16_MAX || minor > UINT16_MAX)
		return bad(why, whylen, "ABI version missing or out of range");
	m->abi_major = (uint16_t)major;
	m->abi_minor = (uint16_t)minor;
	if (read_text(r, m->name, sizeof(m->name), "name", why, whylen) == -1 ||
	    read_text(r, m->version, sizeof(m->version), "version", why, whylen) == -1 ||
	    read_text(r, m->description, sizeof(m->description), "description", why, whylen) == -1)
		return -1;
	m->nfixed = exec_read_u32(r);
	if (r->bad || m->nfixed > EXEC_FIXED_MAX)
		return bad(why, whylen, "fixed check count missing or above %d", EXEC_FIXED_MAX);
	if (m->nfixed > 0) {
		m->fixed = calloc(m->nfixed, sizeof(*m->fixed));
		if (m->fixed == NULL)
			return bad(why, whylen, "out of memory");
	}
	for (uint32_t i = 0; i < m->nfixed; i++) {
		uint32_t in_defaults;

		m->fixed[i].flags = exec_read_u32(r);
		in_defaults = exec_read_u32(r);
		if (r->bad || in_defaults > 1)
			return bad(why, whylen, "fixed check %u: bad flags", i);
		m->fixed[i].in_defaults = in_defaults != 0;
		if (read_text(r, m->fixed[i].name, sizeof(m->fixed[i].name), "check name", why,
		              whylen) == -1)
			return -1;
	}
	return decode_sandbox(r, &m->sandbox, why, whylen);
}

/* The layers an executor set up: bits of enum config_sandbox_layer, none both
 * set up and turned off, a PID namespace only inside the others, a landlock
 * ABI with landlock only, and a reason exactly when a layer is missing. */
static int
decode_sandbox(struct exec_reader *r, struct sandbox_report *sb, char *why, size_t whylen)
{
	uint32_t layers = exec_read_u32(r), off = exec_read_u32(r), abi = exec_read_u32(r);
	bool has_landlock = layers & SANDBOX_LANDLOCK;

	if (r->bad)
		return bad(why, whylen, "sandbox layers missing");
	if ((layers | off) & ~(uint32_t)SANDBOX_ALL || (layers & off) != 0 ||
	    ((layers & SANDBOX_PID_NAMESPACE) && !(layers & SANDBOX_NAMESPACES)))
		return bad(why, whylen, "sandbox layers %#x, off %#x: not a possible set", layers, off);
	if (has_landlock != (abi != 0) || abi > SANDBOX_LANDLOCK_ABI_MAX)
		return bad(why, whylen, "landlock ABI %u with landlock %s", abi,
		           has_landlock ? "on" : "off");
	sb->layers = layers;
	sb->off = off;
	sb->landlock_abi = abi;
	if (read_text(r, sb->why, sizeof(sb->why), "sandbox reason", why, whylen) == -1)
		return -1;
	if (((SANDBOX_ALL & ~layers & ~off) != 0) != (sb->why[0] != '\0'))
		return bad(why, whylen, "sandbox reason %s", sb->why[0] ? "without a missing layer" :
		           "missing for a missing layer");
	return 0;
}

static int decode(const void *buf, size_t len, struct exec_msg *out, char *why, size_t whylen);

/* A RESULT's values, as host_value() would have taken them. */
static int
decode_values(struct exec_reader *r, struct exec_msg *m, char *why, size_t whylen)
{
	m->nvalues = exec_read_u32(r);
	if (r->bad || m->nvalues > HEALTHD_VALUES_MAX)
		return bad(why, whylen, "value count missing or above %d", HEALTHD_VALUES_MAX);
	for (uint32_t i = 0; i < m->nvalues; i++) {
		struct report_value *v = &m->values[i];
		int64_t bits;

		if (read_text(r, v->name, sizeof(v->name), "value name", why, whylen) == -1 ||
		    read_text(r, v->unit, sizeof(v->unit), "value unit", why, whylen) == -1)
			return -1;
		bits = exec_read_i64(r);
		memcpy(&v->value, &bits, sizeof(bits));
		if (r->bad || v->name[0] == '\0' || !isfinite(v->value))
			return bad(why, whylen, "value %u: empty name, missing or not finite", i);
		for (uint32_t k = 0; k < i; k++)
			if (strcmp(m->values[k].name, v->name) == 0)
				return bad(why, whylen, "value %u: name \"%s\" twice", i, v->name);
	}
	return 0;
}

int
exec_decode(const void *buf, size_t len, struct exec_msg *out, char *why, size_t whylen)
{
	int rc = decode(buf, len, out, why, whylen);

	if (rc != 0) {
		/* nothing of a refused message is for use, not even its type */
		exec_msg_free(out);
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

static int
decode(const void *buf, size_t len, struct exec_msg *out, char *why, size_t whylen)
{
	struct exec_header h;
	struct exec_reader r;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(h))
		return bad(why, whylen, "%zu bytes, shorter than a header", len);
	if (len > EXEC_MSG_MAX)
		return bad(why, whylen, "%zu bytes, longer than %d", len, EXEC_MSG_MAX);
	memcpy(&h, buf, sizeof(h));
	if (h.len != len)
		return bad(why, whylen, "header says %u bytes, datagram has %zu", h.len, len);
	exec_reader_init(&r, (const unsigned char *)buf + sizeof(h), len - sizeof(h));
	out->token = h.token;
	switch (h.type) {
	case EXEC_LOADED:
		out->type = EXEC_LOADED;
		rc = decode_loaded(&r, out, why, whylen);
		break;
	case EXEC_INSTANTIATED:
		out->type = EXEC_INSTANTIATED;
		out->ok = exec_read_u32(&r) != 0;
		if (out->ok)
			out->index = exec_read_u32(&r);
		else
			rc = read_text(&r, out->text, sizeof(out->text), "error", why, whylen);
		break;
	case EXEC_SEALED:
		out->type = EXEC_SEALED;
		break;
	case EXEC_DYING:
		out->type = EXEC_DYING;
		rc = read_text(&r, out->name2, sizeof(out->name2), "check name", why, whylen);
		break;
	case EXEC_RESULT:
		out->type = EXEC_RESULT;
		out->status = exec_read_u32(&r);
		if (!r.bad && out->status > 3)
			return bad(why, whylen, "status %u out of range", out->status);
		{
			uint32_t t = exec_read_u32(&r);
			if (!r.bad && t > 1)
				return bad(why, whylen, "timed_out %u is not 0 or 1", t);
			out->timed_out = t != 0;
		}
		out->duration_us = exec_read_i64(&r);
		if (!r.bad && out->duration_us < 0)
			return bad(why, whylen, "negative duration");
		rc = read_text(&r, out->text, sizeof(out->text), "message", why, whylen);
		if (rc == 0)
			rc = decode_values(&r, out, why, whylen);
		break;
	default:
		return bad(why, whylen, "unknown message type %u", h.type);
	}
	if (rc == 0 && !exec_reader_done(&r))
		rc = bad(why, whylen, "type %u: %s", h.type,
		         r.bad ? "truncated" : "trailing bytes after the last field");
	return rc;
}

void
exec_msg_free(struct exec_msg *m)
{
	free(m->fixed);
	m->fixed = NULL;
	m->nfixed = 0;
}
