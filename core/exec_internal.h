/*
 * exec_internal.h - what the executor files (executor.c, exec_supervisor.c,
 * exec_spawn.c, exec_output.c) share and nothing else includes: the server-side structs of
 * plugins, executor processes and runs, and the functions they call across.
 */
#ifndef HEALTHD_EXEC_INTERNAL_H
#define HEALTHD_EXEC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "exec_proto.h"
#include "executor.h"
#include "timer.h"

#define REAP_GRACE_MS 1000      /* a closed executor gets this long to exit */
#define LOST_GRACE_MS 500       /* socket gone, process not yet: then SIGKILL */
#define RSS_POLL_MS 250

struct exec_run {
	uint64_t token;
	uint32_t check_id;
	uint32_t index;
	int64_t deadline;
	const char *check_name; /* the registry's; lives as long as the server */
};

enum proc_state { PROC_READY, PROC_RETIRING };

/* An executor's stdout and stderr as the server reads them (exec_output.c):
 * whoever holds the exec_proc (the supervisor, under the set's lock). */
struct exec_output {
	int fd;                  /* the pipe's read end; -1 once closed */
	char line[1024];         /* a line not ended yet, as far as it is kept */
	size_t len, cut;         /* its bytes kept, and dropped past the line's size */
	size_t lines, bytes;     /* what the log still takes: token buckets */
	int64_t refilled_at;
	uint64_t dropped_bytes, dropped_lines; /* since the last summary */
	int64_t summary_at;      /* when that is told; TIMER_NONE: nothing dropped */
};

struct exec_proc {
	struct exec_plugin *pl;
	pid_t pid;
	int fd;        /* -1 once closed */
	int pidfd;     /* -1 if the kernel has none */
	enum proc_state state;
	struct exec_run *runs;
	size_t nruns, cap;
	int64_t kill_at;   /* INT64_MAX: not yet */
	bool lost;         /* socket gone: dead or dying */
	atomic_bool killed; /* we sent SIGKILL (a starter thread reads it in exec_proc_reap) */
	bool stuck;        /* retired with a run stuck in plugin code */
	bool exited;       /* its pidfd said so: reap it */
	bool unresponsive; /* its socket was full: it stopped reading */
	bool load_timed_out; /* killed at isolation.load_timeout_ms (exec_proc_call) */
	enum exec_reason reason; /* why it ended, when we ended it (crash otherwise) */
	int64_t ready_at;
	char lost_why[ERR_SIZE]; /* when we ended it on purpose: why */
	char culprit[EXEC_NAME_MAX]; /* the check it said it was dying in */
	struct exec_output out;
	struct exec_proc *next;
};

struct exec_instance {
	char *name, *origin;
	char **keys, **values;
	size_t n;
	uint32_t index;
};

/* What a plugin's first load found, from its starter thread to
 * boot_finished(), which installs it under the lock. */
struct exec_first {
	struct exec_msg loaded;       /* name, version, description, ABI, fixed */
	struct exec_instance *inst;   /* the wanted checks it took, with their index */
	size_t ninst;
	bool fatal;                   /* a refusal or a crash: the start fails */
};

struct exec_plugin {
	struct executor_set *set;
	char *path;
	struct stat file;          /* the file when it was loaded: a reload reuses
	                            * the plugin only if it is unchanged */
	int refs;                  /* configurations using it (reload) */
	bool retired;              /* none does any more: close it after its runs */
	bool serving;              /* the current configuration's: /metrics shows it */
	bool loaded;               /* false while its first load() is to come: name is
	                            * its file's stem, and it has no checks yet */
	bool failed;               /* its first load was refused: never restarted */
	int64_t load_started;
	struct exec_first *first;  /* a first load's findings, while starting */
	char name[PLUGIN_NAME_SIZE];
	char version[PLUGIN_VERSION_SIZE];
	char description[PLUGIN_DESCRIPTION_SIZE];
	unsigned abi_major, abi_minor;
	struct exec_fixed *fixed;
	size_t nfixed;
	struct exec_instance *inst;
	size_t ninst;
	size_t nchecks;
	struct exec_proc *procs;   /* alive: the current one and retired ones */
	struct exec_proc *cur;     /* takes new runs; NULL while down or starting */
	struct exec_run *pending;  /* runs waiting for a fresh executor */
	size_t npending, pcap;
	bool starting;             /* a starter thread is at work */
	struct exec_proc *booting; /* the executor it loads, spawned by the supervisor */
	bool boot_done;            /* the starter is through: boot_rc, boot_err */
	int boot_rc;
	char boot_err[512];
	bool starter_joinable;
	pthread_t starter;
	bool down;                 /* crashed; restarts at restart_at */
	int64_t restart_at, last_crash;
	int backoff_ms;
	char down_why[160];
	uint64_t restarts[EXEC_REASON_COUNT];
	uint64_t rss_bytes;
	struct sandbox_report sandbox; /* as its current executor reported it */
	atomic_uint_fast64_t log_dropped; /* output bytes the log did not take */
};

struct executor_set {
	struct config_isolation iso;
	char *self;
	char **wrapper;       /* words put before self (HEALTHD_EXECUTOR_WRAPPER) */
	char **envp;          /* the environment without HEALTH_URL_SECRET */
	struct exec_plugin **plugins;
	size_t n;
	executor_done_fn *done;  /* where every run ends (executor_start) ... */
	void *done_arg;
	pthread_mutex_t lock;  /* taken after the runner's, never before: done()
	                        * is called without it */
	int wake[2];
	pthread_t thread;
	bool started, stopping;
	int64_t wake_at;      /* when the supervisor looks next */
	int grace_ms;         /* shutdown: how long executors get to unload */
	int64_t next_rss;
	unsigned dropped;     /* results for runs not in flight, for the log */
	const char *(*taken)(void *arg, const char *name);
	void *taken_arg;
	/* Serving while loading: configured checks of no in-process plugin, for
	 * the isolated plugin whose first load() gives their plugin's name
	 * (immutable once started); and who hears of each first load's end. */
	const struct config_check **wanted;
	size_t nwanted;
	void (*loaded_fn)(void *arg);
	void *loaded_arg;
	char fatal[ERR_SIZE * 2];  /* the first refusal of a first load */
};

/* A run's end, delivered to the runner once the lock is released. */
struct exec_done {
	uint32_t check_id;
	uint64_t token;
	enum healthd_status status;
	int64_t dur_ms;
	struct healthd_report rep; /* message, timed_out and values */
};

struct exec_done_list {
	struct exec_done *v;
	size_t n, cap;
};

/* exec_spawn.c: processes. */
int exec_spawn_env(struct executor_set *s);
struct exec_proc *exec_proc_spawn(struct exec_plugin *pl, char *err, size_t errlen);
void exec_proc_kill(struct exec_proc *p);
bool exec_proc_try_reap(struct exec_proc *p, int *status);
int exec_proc_reap(struct exec_proc *p, int ms);
void exec_proc_free(struct exec_proc *p);
void exec_describe_status(int status, char *buf, size_t len);
uint64_t exec_rss_of(pid_t pid);
bool exec_send_msg(int fd, struct exec_buf *b, int flags);
int exec_proc_call(struct exec_proc *p, struct exec_buf *b, enum exec_type want,
                   struct exec_msg *reply, const char *what, char *err, size_t errlen);
void exec_buf_load(struct exec_buf *b, const char *path);
void exec_buf_instantiate(struct exec_buf *b, const struct exec_instance *in);
int exec_proc_boot(struct exec_plugin *pl, struct exec_proc *p, char *err, size_t errlen);
void exec_first_free(struct exec_first *f);

/* exec_output.c: plugin code's stdout and stderr, into the log. */
int exec_output_open(struct exec_output *o, int *write_end);
void exec_output_read(struct exec_proc *p, int64_t now);
int64_t exec_output_tick(struct exec_proc *p, int64_t now);  /* next summary, or TIMER_NONE */
void exec_output_close(struct exec_proc *p, int64_t now);    /* reads what is left first */

/* exec_supervisor.c: the supervisor thread. */
void *exec_supervisor_main(void *arg);
void exec_wake(struct executor_set *s);
void exec_stop_all(struct executor_set *s, struct exec_done_list *d);
void exec_done_deliver(struct executor_set *s, struct exec_done_list *d);

/* executor.c: the API's side. */
void exec_plugin_free(struct exec_plugin *pl);
void exec_instance_clear(struct exec_instance *in);
int exec_instance_copy(struct exec_instance *in, const struct config_check *ck, uint32_t index);
int exec_runs_push(struct exec_run **v, size_t *n, size_t *cap, const struct exec_run *run);
bool exec_send_run(struct exec_proc *p, const struct exec_run *run, int64_t timeout_ms);

#endif
