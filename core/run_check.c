/* run_check.c - one run of one check, as a monitoring-plugins line. */
#include "run_check.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "format.h"

static const char *const status_names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

static void suspend(void *arg);
static void resume(void *arg);
static void print_message(FILE *out, const char *msg);
static size_t status_word_at(const char *msg, size_t *len);
static void print_status_line(FILE *out, int st, const char *msg);
static void print_label(FILE *out, const char *s, size_t n);
static void print_perfdata(FILE *out, const struct runner_result *res);

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool done;
};

static void
suspend(void *arg)
{
	(void)arg;
}

static void
resume(void *arg)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

/* Perfdata may not hold '|'; the message is one line already. */
static void
print_message(FILE *out, const char *msg)
{
	for (; *msg != '\0'; msg++)
		fputc(*msg == '|' ? '/' : *msg, out);
}

/*
 * Where the message's own status word starts, as monitoring-plugins write
 * it: "OK: ...", "DISK OK - ...", "HTTP CRITICAL: ..." (a service word in
 * capitals, then the status). Returns its offset and sets *len, or returns
 * (size_t)-1 when the message carries none.
 */
static size_t
status_word_at(const char *msg, size_t *len)
{
	size_t at = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (int st = 0; st < 4; st++) {
			size_t n = strlen(status_names[st]);
			if (strncmp(msg + at, status_names[st], n) == 0 &&
			    strchr(": -", msg[at + n]) != NULL) { /* also at the end: '\0' */
				*len = n;
				return at;
			}
		}
		/* one service word of capitals, digits or '_' before it */
		size_t w = strspn(msg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
		if (pass > 0 || w == 0 || msg[w] != ' ')
			break;
		at = w + 1;
	}
	return (size_t)-1;
}

/* "STATUS - message", or the message as it is when it carries a status word
 * already, that word made ours (the exit code's) if the two differ. */
static void
print_status_line(FILE *out, int st, const char *msg)
{
	size_t len, at = msg[0] != '\0' ? status_word_at(msg, &len) : (size_t)-1;

	if (at == (size_t)-1) {
		fprintf(out, "%s - ", status_names[st]);
		print_message(out, msg[0] != '\0' ? msg : status_names[st]);
		return;
	}
	fprintf(out, "%.*s%s", (int)at, msg, status_names[st]);
	print_message(out, msg + at + len);
}

/* A perfdata label, quoted, a quote in it written twice. */
static void
print_label(FILE *out, const char *s, size_t n)
{
	fputc('\'', out);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\'')
			fputc('\'', out);
		fputc(s[i], out);
	}
	fputc('\'', out);
}

/* time, then each value as 'label'=value[UOM];warn;crit;min;max with the
 * thresholds the plugin reported beside it ("label;warn" ...). */
static void
print_perfdata(FILE *out, const struct runner_result *res)
{
	bool own_time = false;

	for (size_t i = 0; i < res->nvalues; i++)
		own_time = own_time || strcmp(res->values[i].name, "time") == 0;
	fprintf(out, " |");
	if (!own_time) /* the plugin's own "time" wins: one item per label */
		fprintf(out, " time=%.3fs;;;0", (double)res->duration_ms / 1000.0);
	for (size_t i = 0; i < res->nvalues; i++) {
		const struct report_value *v = &res->values[i];
		double field[4];
		bool has[4] = {false};
		int last = -1;
		size_t stem;

		if (format_value_part(v->name, &stem) != FORMAT_VALUE)
			continue;
		for (size_t j = 0; j < res->nvalues; j++) {
			const char *n = res->values[j].name;
			enum format_part p = format_value_part(n, &stem);
			if (p != FORMAT_VALUE && stem == strlen(v->name) &&
			    strncmp(n, v->name, stem) == 0) {
				field[p - FORMAT_WARN] = res->values[j].value;
				has[p - FORMAT_WARN] = true;
			}
		}
		fputc(' ', out);
		print_label(out, v->name, strlen(v->name));
		fprintf(out, "=%.15g%s", v->value, v->unit);
		for (int f = 0; f < 4; f++)
			if (has[f])
				last = f;
		for (int f = 0; f <= last; f++) {
			fputc(';', out);
			if (has[f])
				fprintf(out, "%.15g", field[f]);
		}
	}
}

int
run_check_once(const struct registry *reg, struct runner *r, const char *name, FILE *out)
{
	struct waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	const struct runner_result *res;
	struct runner_job *job;
	int id = registry_find(reg, name, strlen(name));
	uint32_t uid;
	int st;

	if (id < 0) {
		fprintf(out, "UNKNOWN - no check named \"%s\" (checks:", name);
		for (uint32_t i = 0; i < registry_count(reg); i++)
			fprintf(out, " %s", registry_at(reg, i)->name);
		fprintf(out, "%s)\n", registry_count(reg) ? "" : " none");
		return 3;
	}
	uid = (uint32_t)id;
	job = runner_submit(r, &uid, 1);
	if (job == NULL) {
		fprintf(out, "UNKNOWN - out of memory\n");
		return 3;
	}
	/* the runner's deadline bounds this wait: a timeout fills the slot */
	if (runner_job_arm(job, suspend, resume, &w)) {
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.lock);
		pthread_mutex_unlock(&w.lock);
	}
	res = runner_job_result(job, 0);
	st = (unsigned)res->status > 3 ? 3 : (int)res->status;
	print_status_line(out, st, res->message);
	print_perfdata(out, res);
	fputc('\n', out);
	runner_job_free(job);
	return st;
}
