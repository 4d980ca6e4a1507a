/*
 * test_perfdata.c - the exec plugin's output parser (plugins/exec/perfdata.c)
 * on the cases the monitoring-plugins guidelines describe, on what real
 * plugins print, and on garbage.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../unit/testing.h"
#include "perfdata.h"

static struct perfdata_output out;

static void
parse(const char *text)
{
	perfdata_parse_output(text, strlen(text), &out);
}

static const struct perfdata_value *
value(const char *label)
{
	for (size_t i = 0; i < out.nvalues; i++)
		if (strcmp(out.values[i].label, label) == 0)
			return &out.values[i];
	return NULL;
}

#define EXPECT_VALUE(label, v, unit)                                                       \
	do {                                                                               \
		const struct perfdata_value *pv__ = value(label);                          \
		check_count__++;                                                           \
		if (pv__ == NULL)                                                          \
			FAIL__("no value %s", label);                                      \
		else if (pv__->value != (v) || strcmp(pv__->uom, unit) != 0)               \
			FAIL__("%s: expected %g%s, got %g%s", label, (double)(v), unit,     \
			       pv__->value, pv__->uom);                                    \
	} while (0)

#define EXPECT_MESSAGE(text)                                                               \
	do {                                                                               \
		check_count__++;                                                           \
		if (out.message_len != strlen(text) ||                                     \
		    memcmp(out.message, text, out.message_len) != 0)                        \
			FAIL__("message: expected \"%s\", got \"%.*s\"", text,              \
			       (int)out.message_len, out.message);                          \
	} while (0)

DEF_TEST(check_load_output)
{
	parse("LOAD OK - total load average: 0.52, 0.58, 0.59|load1=0.520;15.000;30.000;0; "
	      "load5=0.580;10.000;25.000;0; load15=0.590;5.000;20.000;0; \n");
	EXPECT_MESSAGE("LOAD OK - total load average: 0.52, 0.58, 0.59");
	EXPECT_EQ_INT(3, out.nvalues);
	EXPECT_EQ_INT(0, out.skipped);
	EXPECT_VALUE("load1", 0.52, "");
	EXPECT_VALUE("load5", 0.58, "");
	EXPECT_VALUE("load15", 0.59, "");
	return 0;
}

DEF_TEST(check_disk_output)
{
	parse("DISK OK - free space: / 81257MiB (82% inode=97%);| "
	      "/=17539530752B;267847005634;270552530944;0;270552530944\n");
	EXPECT_MESSAGE("DISK OK - free space: / 81257MiB (82% inode=97%);");
	EXPECT_EQ_INT(1, out.nvalues);
	EXPECT_VALUE("/", 17539530752.0, "B");
	return 0;
}

#define EXPECT_FIELD(label, f, v)                                                          \
	do {                                                                               \
		const struct perfdata_value *pv__ = value(label);                          \
		check_count__++;                                                           \
		if (pv__ == NULL || !pv__->has[f] || pv__->field[f] != (v))                \
			FAIL__("%s: field %d: expected %g", label, f, (double)(v));        \
	} while (0)
#define EXPECT_NO_FIELD(label, f)                                                          \
	do {                                                                               \
		const struct perfdata_value *pv__ = value(label);                          \
		check_count__++;                                                           \
		if (pv__ == NULL || pv__->has[f])                                          \
			FAIL__("%s: field %d: expected none", label, f);                   \
	} while (0)

/* warn;crit;min;max: kept when one number, bare or in the value's UOM */
DEF_TEST(thresholds_min_max)
{
	parse("PING OK | rta=0.5ms;100.000;500.0ms;0; pl=0%;20;60;0;100 "
	      "r=5;10:20;@5;~:3;x t=1s;2ms;;; u=3;4 \n");
	EXPECT_EQ_INT(5, out.nvalues);
	EXPECT_VALUE("rta", 0.5, "ms");
	EXPECT_FIELD("rta", PERFDATA_WARN, 100);
	EXPECT_FIELD("rta", PERFDATA_CRIT, 500);
	EXPECT_FIELD("rta", PERFDATA_MIN, 0);
	EXPECT_NO_FIELD("rta", PERFDATA_MAX); /* empty */
	EXPECT_FIELD("pl", PERFDATA_WARN, 20);
	EXPECT_FIELD("pl", PERFDATA_CRIT, 60);
	EXPECT_FIELD("pl", PERFDATA_MIN, 0);
	EXPECT_FIELD("pl", PERFDATA_MAX, 100);
	/* ranges and garbage are not one threshold */
	EXPECT_VALUE("r", 5, "");
	EXPECT_NO_FIELD("r", PERFDATA_WARN);
	EXPECT_NO_FIELD("r", PERFDATA_CRIT);
	EXPECT_NO_FIELD("r", PERFDATA_MIN);
	EXPECT_NO_FIELD("r", PERFDATA_MAX);
	/* another unit than the value's: not comparable, left out */
	EXPECT_NO_FIELD("t", PERFDATA_WARN);
	EXPECT_FIELD("u", PERFDATA_WARN, 4);
	EXPECT_NO_FIELD("u", PERFDATA_CRIT);
	return 0;
}

DEF_TEST(quoted_labels_and_units)
{
	parse("OK | 'a b'=1s 'it''s'=2.5ms;1;2 '/var/lib'=10% c=5c d=-1.5e3KB e=+7\n");
	EXPECT_MESSAGE("OK");
	EXPECT_EQ_INT(6, out.nvalues);
	EXPECT_VALUE("a b", 1, "s");
	EXPECT_VALUE("it's", 2.5, "ms");
	EXPECT_VALUE("/var/lib", 10, "%");
	EXPECT_VALUE("c", 5, "c");
	EXPECT_VALUE("d", -1500, "KB");
	EXPECT_VALUE("e", 7, "");
	return 0;
}

DEF_TEST(empty_fields_and_undetermined)
{
	/* empty thresholds are fine; "U" (no value) and empty values are skipped */
	parse("WARNING - x | a=1;;;; b=U;1;2 c= d=4;;5;;\n");
	EXPECT_MESSAGE("WARNING - x");
	EXPECT_EQ_INT(2, out.nvalues);
	EXPECT_EQ_INT(2, out.skipped);
	EXPECT_VALUE("a", 1, "");
	EXPECT_VALUE("d", 4, "");
	return 0;
}

DEF_TEST(perfdata_on_later_lines)
{
	parse("OK - main | a=1\nlong text 2\nlong text 3 | 'b c'=2.5ms;1;2;0;10\nd=3%\n");
	EXPECT_MESSAGE("OK - main");
	EXPECT_EQ_INT(3, out.nvalues);
	EXPECT_VALUE("a", 1, "");
	EXPECT_VALUE("b c", 2.5, "ms");
	EXPECT_VALUE("d", 3, "%");
	return 0;
}

DEF_TEST(no_perfdata)
{
	parse("  just text  \nsecond line\n");
	EXPECT_MESSAGE("just text");
	EXPECT_EQ_INT(0, out.nvalues);
	parse("");
	EXPECT_MESSAGE("");
	EXPECT_EQ_INT(0, out.nvalues);
	parse("| a=1");
	EXPECT_MESSAGE("");
	EXPECT_VALUE("a", 1, "");
	return 0;
}

DEF_TEST(garbage_is_skipped_not_parsed)
{
	char label[96];

	parse("OK | =1 a==2 'unterminated=3 b=1,5 c=0x10 d=nan e=inf f=1e999 g=--1 h=.\n");
	EXPECT_EQ_INT(0, out.nvalues);
	EXPECT_EQ_INT(10, out.skipped);
	parse("OK | 'x\x01y'=1 z=1\x01\n");
	EXPECT_EQ_INT(0, out.nvalues);
	/* a label longer than 63 bytes is skipped, not cut */
	memcpy(label, "| ", 2);
	memset(label + 2, 'l', 64);
	snprintf(label + 66, sizeof(label) - 66, "=1 ok=2");
	perfdata_parse_output(label, strlen(label), &out);
	EXPECT_EQ_INT(1, out.nvalues);
	EXPECT_VALUE("ok", 2, "");
	/* a unit longer than 15 bytes too */
	parse("| a=1abcdefghijklmnop b=2abcdefghijklmno");
	EXPECT_EQ_INT(1, out.nvalues);
	EXPECT_VALUE("b", 2, "abcdefghijklmno");
	return 0;
}

DEF_TEST(at_most_sixteen_values)
{
	char text[1024];
	size_t off = 0;

	off += (size_t)snprintf(text, sizeof(text), "OK |");
	for (int i = 0; i < 20; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, " v%d=%d", i, i);
	parse(text);
	EXPECT_EQ_INT(PERFDATA_VALUES_MAX, out.nvalues);
	EXPECT_EQ_INT(4, out.skipped);
	EXPECT_VALUE("v15", 15, "");
	return 0;
}

DEF_TEST(nul_bytes_and_no_trailing_newline)
{
	static const char text[] = "OK\0hidden | a=1\0b=2";

	perfdata_parse_output(text, sizeof(text) - 1, &out);
	EXPECT_EQ_INT(2, out.nvalues);
	EXPECT_VALUE("a", 1, "");
	EXPECT_VALUE("b", 2, "");
	return 0;
}

int
main(void)
{
	RUN_TEST(check_load_output);
	RUN_TEST(check_disk_output);
	RUN_TEST(quoted_labels_and_units);
	RUN_TEST(thresholds_min_max);
	RUN_TEST(empty_fields_and_undetermined);
	RUN_TEST(perfdata_on_later_lines);
	RUN_TEST(no_perfdata);
	RUN_TEST(garbage_is_skipped_not_parsed);
	RUN_TEST(at_most_sixteen_values);
	RUN_TEST(nul_bytes_and_no_trailing_newline);
	END_TEST;
}
