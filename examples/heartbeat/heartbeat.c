/* heartbeat - passes while `path` exists and was modified at most `max_age_s`
 * seconds ago (default 60): {"name": "app-alive", "plugin": "heartbeat",
 * "path": "/run/app/heartbeat", "max_age_s": 60}. Built against the installed
 * SDK alone, see healthd-plugin(7). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <healthd/plugin.h>

struct heartbeat {
	int64_t max_age_s;
	char path[]; /* allocated with the struct, so destroy is plain free() */
};

static const struct healthd_host_api *api; /* valid until unload */

/* On a worker thread. stat() returns at once, well within the deadline. */
static enum healthd_status
heartbeat_run(void *state, struct healthd_report *report)
{
	const struct heartbeat *hb = state;
	struct stat st;

	if (stat(hb->path, &st) == -1) {
		api->message(report, "%s: %s", hb->path, strerror(errno));
		return HEALTHD_CRITICAL;
	}
	long long age = (long long)(time(NULL) - st.st_mtime);
	api->message(report, "%s is %lld s old (max %lld)", hb->path, age, (long long)hb->max_age_s);
	return age <= hb->max_age_s ? HEALTHD_OK : HEALTHD_CRITICAL;
}

static int
heartbeat_instantiate(struct healthd_host *host, const struct healthd_host_api *a,
                      const char *name, const struct healthd_options *opts, char *err,
                      size_t errlen)
{
	struct healthd_check check = HEALTHD_CHECK_INIT;
	const char *path = a->option(opts, "path");
	struct heartbeat *hb;

	api = a;
	if (path == NULL || path[0] != '/')
		return snprintf(err, errlen, "path: expected an absolute file name"), -1;
	if ((hb = malloc(sizeof(*hb) + strlen(path) + 1)) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	strcpy(hb->path, path);
	check.name = name;
	check.run = heartbeat_run;
	check.destroy = free;
	check.state = hb;
	/* on failure the host names the bad option, or says why in err */
	if (a->option_int(opts, "max_age_s", 60, 1, INT32_MAX, &hb->max_age_s) == 0 &&
	    a->register_check(host, &check, err, errlen) == 0)
		return 0;
	free(hb); /* not registered: the state is still ours */
	return -1;
}

HEALTHD_PLUGIN(.name = "heartbeat", .version = "1.0", .description =
               "a file an application touches is fresh", .instantiate = heartbeat_instantiate);
