/* run_check.c - one run of one check, as a monitoring-plugins line. */
#include "run_check.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

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

int
run_check_once(const struct registry *reg, struct runner *r, const char *name, FILE *out)
{
	static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
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
	fprintf(out, "%s - ", names[st]);
	print_message(out, res->message[0] ? res->message : names[st]);
	fprintf(out, " | time=%.3fs;;;0", (double)res->duration_ms / 1000.0);
	/* the run's values, as perfdata: 'label'=value[UOM] */
	for (size_t i = 0; i < res->nvalues; i++)
		fprintf(out, " '%s'=%.15g%s", res->values[i].name, res->values[i].value,
		        res->values[i].unit);
	fputc('\n', out);
	runner_job_free(job);
	return st;
}
