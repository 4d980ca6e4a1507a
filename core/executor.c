/*
 * executor.c - the executor set's public API: load, instantiate, seal,
 * start, run, cancel, info, reload and shutdown. The supervisor thread is in
 * exec_supervisor.c, processes in exec_spawn.c. One lock guards all three;
 * no plugin code ever runs in this process for an isolated plugin.
 *
 * A plugin (struct exec_plugin) has at most one current executor, which takes
 * its new runs, and any number of retired ones finishing theirs. Its runs are
 * in flight on one executor (struct exec_proc), or pending while a fresh one
 * starts. The supervisor thread polls every executor's socket and pidfd and
 * acts on four timers: a run's deadline + kill_after_ms, a retired executor's
 * kill time, a restart's backoff, and the RSS poll. Every run ends through
 * the callback executor_start() was given, called without this lock (lock
 * order: runner, then executors).
 */
#include "executor.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "exec_internal.h"
#include "lock.h"
#include "log.h"

static const char *const reason_names[EXEC_REASON_COUNT] = {
	[EXEC_REASON_CRASH] = "crash",
	[EXEC_REASON_DEADLINE] = "deadline",
	[EXEC_REASON_MEMORY] = "memory",
	[EXEC_REASON_PROTOCOL] = "protocol",
};

const char *
executor_reason_name(enum exec_reason r)
{
	return (unsigned)r < EXEC_REASON_COUNT ? reason_names[r] : "unknown";
}

/* ---- startup ------------------------------------------------------------ */

struct executor_set *
executor_set_new(const struct config *cfg, const char *self)
{
	struct executor_set *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->iso = cfg->isolation;
	s->self = strdup(self);
	s->wake[0] = s->wake[1] = -1;
	s->wake_at = TIMER_NONE;
	if (s->self == NULL || exec_spawn_env(s) == -1) {
		executor_set_free(s);
		return NULL;
	}
	return s;
}

/* A loaded plugin of that name: one still loading has only its file's. */
static struct exec_plugin *
find_plugin(const struct executor_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->plugins[i]->loaded && strcmp(s->plugins[i]->name, name) == 0)
			return s->plugins[i];
	return NULL;
}

void
executor_set_taken(struct executor_set *s, const char *(*fn)(void *arg, const char *name),
                   void *arg)
{
	s->taken = fn;
	s->taken_arg = arg;
}

const char *
executor_file_of(const struct executor_set *s, const char *name)
{
	const struct exec_plugin *pl = find_plugin(s, name);

	return pl != NULL ? pl->path : NULL;
}

bool
executor_has_plugin(const struct executor_set *s, const char *name)
{
	return s != NULL && find_plugin(s, name) != NULL;
}

void
exec_instance_clear(struct exec_instance *in)
{
	for (size_t j = 0; j < in->n; j++) {
		free(in->keys[j]);
		free(in->values[j]);
	}
	free(in->keys);
	free(in->values);
	free(in->name);
	free(in->origin);
	*in = (struct exec_instance){0};
}

/* A copy of ck's name, origin and options at index. Returns 0, or -1 out of
 * memory (in is then clear). */
int
exec_instance_copy(struct exec_instance *in, const struct config_check *ck, uint32_t index)
{
	*in = (struct exec_instance){.name = strdup(ck->name), .origin = strdup(ck->origin),
	                             .index = index};
	if (in->name == NULL || in->origin == NULL)
		goto oom;
	if (ck->options.n > 0) {
		in->keys = calloc(ck->options.n, sizeof(char *));
		in->values = calloc(ck->options.n, sizeof(char *));
		if (in->keys == NULL || in->values == NULL)
			goto oom;
	}
	for (size_t i = 0; i < ck->options.n; i++) {
		in->keys[i] = strdup(ck->options.v[i].key);
		in->values[i] = strdup(ck->options.v[i].value);
		in->n++;
		if (in->keys[i] == NULL || in->values[i] == NULL)
			goto oom;
	}
	return 0;
oom:
	exec_instance_clear(in);
	return -1;
}

void
exec_plugin_free(struct exec_plugin *pl)
{
	if (pl == NULL)
		return;
	for (struct exec_proc *p = pl->procs, *next; p != NULL; p = next) {
		next = p->next;
		exec_proc_free(p);
	}
	for (size_t i = 0; i < pl->ninst; i++)
		exec_instance_clear(&pl->inst[i]);
	free(pl->inst);
	exec_first_free(pl->first);
	free(pl->fixed);
	free(pl->pending);
	free(pl->path);
	free(pl);
}

/* The registry entry of pl's fixed check number i (registered by load()). */
static struct check
fixed_check(struct exec_plugin *pl, size_t i)
{
	struct check c = {0};

	snprintf(c.name, sizeof(c.name), "%s", pl->fixed[i].name);
	c.plugin = pl->name;
	c.origin = pl->path;
	c.exec = pl;
	c.exec_index = (uint32_t)i;
	c.in_defaults = pl->fixed[i].in_defaults;
	c.timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS;
	/* HEALTHD_CHECK_INLINE means nothing across a process boundary */
	return c;
}

int
executor_load(struct executor_set *s, const char *path, struct registry *reg, char *err,
              size_t errlen)
{
	struct exec_plugin *pl, **grown;
	struct exec_proc *p;
	struct exec_buf *b;
	struct exec_msg m;
	char why[768];

	grown = realloc(s->plugins, (s->n + 1) * sizeof(*s->plugins));
	pl = calloc(1, sizeof(*pl));
	b = malloc(sizeof(*b));
	if (grown != NULL)
		s->plugins = grown;
	if (grown == NULL || pl == NULL || b == NULL || (pl->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "plugin %s: out of memory", path);
		free(b);
		exec_plugin_free(pl);
		return -1;
	}
	pl->set = s;
	pl->serving = true; /* a reload's merge says otherwise */
	if (stat(path, &pl->file) == -1)
		memset(&pl->file, 0, sizeof(pl->file));
	p = exec_proc_spawn(pl, err, errlen);
	if (p == NULL) {
		free(b);
		exec_plugin_free(pl);
		return -1;
	}
	exec_buf_load(b, path);
	if (exec_proc_call(p, b, EXEC_LOADED, &m, "load()", why, sizeof(why)) == -1) {
		snprintf(err, errlen, "plugin %s: refused: %s", path, why);
		goto fail;
	}
	if (!m.ok) {
		/* the loader's own one line, as in process */
		snprintf(err, errlen, "%s", m.text);
		exec_msg_free(&m);
		goto fail;
	}
	if (strlen(m.name) == 0 || strspn(m.name, "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
	    strlen(m.name)) {
		/* the loader checked it in the executor, but plugin code ran there */
		snprintf(err, errlen, "plugin %s: refused: its executor reported a bad name", path);
		exec_msg_free(&m);
		goto fail;
	}
	if (find_plugin(s, m.name) != NULL || (s->taken && s->taken(s->taken_arg, m.name))) {
		snprintf(err, errlen, "plugin %s: refused: a plugin named \"%s\" is already loaded "
		         "from %s", path, m.name, find_plugin(s, m.name) ? find_plugin(s, m.name)->path
		         : s->taken(s->taken_arg, m.name));
		exec_msg_free(&m);
		goto fail;
	}
	snprintf(pl->name, sizeof(pl->name), "%s", m.name);
	snprintf(pl->version, sizeof(pl->version), "%s", m.version);
	snprintf(pl->description, sizeof(pl->description), "%s", m.description);
	pl->abi_major = m.abi_major;
	pl->abi_minor = m.abi_minor;
	pl->fixed = m.fixed;
	pl->nfixed = m.nfixed;
	pl->sandbox = m.sandbox;
	m.fixed = NULL;
	if (sandbox_missing(&pl->sandbox) != 0) {
		/* here rather than at "ready:", so that a reload's new plugin says it too */
		char line[1024];
		sandbox_describe(&pl->sandbox, line, sizeof(line));
		log_warn("plugin %s: sandbox: %s", pl->name, line);
	}
	for (size_t i = 0; i < pl->nfixed; i++) {
		struct check c = fixed_check(pl, i);
		if (registry_add(reg, &c, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "plugin %s: refused: it registered a check the host "
			         "refused: %s", path, why);
			goto fail;
		}
		pl->nchecks++;
	}
	p->next = pl->procs;
	pl->procs = p;
	pl->cur = p;
	pl->loaded = true;
	s->plugins[s->n++] = pl;
	free(b);
	log_debug("plugin %s %s runs isolated in executor pid %ld", pl->name, pl->version,
	          (long)p->pid);
	return 0;
fail:
	if (p->fd >= 0) {
		close(p->fd); /* the executor exits on its own */
		p->fd = -1;
		exec_proc_reap(p, REAP_GRACE_MS);
	}
	exec_proc_free(p);
	free(b);
	exec_plugin_free(pl);
	return -1;
}

/* ---- loading while serving --------------------------------------------- */

int
executor_load_later(struct executor_set *s, const char *path, const char *stem, size_t len,
                    char *err, size_t errlen)
{
	struct exec_plugin *pl, **grown;

	grown = realloc(s->plugins, (s->n + 1) * sizeof(*s->plugins));
	if (grown != NULL)
		s->plugins = grown;
	pl = calloc(1, sizeof(*pl));
	if (grown == NULL || pl == NULL || (pl->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "plugin %s: out of memory", path);
		exec_plugin_free(pl);
		return -1;
	}
	pl->set = s;
	pl->serving = true;
	if (stat(path, &pl->file) == -1)
		memset(&pl->file, 0, sizeof(pl->file));
	snprintf(pl->name, sizeof(pl->name), "%.*s", (int)(len < sizeof(pl->name) - 1 ? len :
	         sizeof(pl->name) - 1), stem);
	/* down, due now: the supervisor's first step starts it as a restart */
	pl->down = true;
	pl->restart_at = 0;
	snprintf(pl->down_why, sizeof(pl->down_why), "its load() has not finished yet");
	s->plugins[s->n++] = pl;
	return 0;
}

int
executor_want(struct executor_set *s, const struct config_check *ck)
{
	const struct config_check **grown = realloc(s->wanted, (s->nwanted + 1) * sizeof(*grown));

	if (grown == NULL)
		return -1;
	s->wanted = grown;
	s->wanted[s->nwanted++] = ck;
	return 0;
}

void
executor_set_loaded_fn(struct executor_set *s, void (*fn)(void *arg), void *arg)
{
	s->loaded_fn = fn;
	s->loaded_arg = arg;
}

bool
executor_loading(struct executor_set *s, struct exec_plugin **out, size_t max, size_t *nout,
                 char *fatal, size_t fatallen)
{
	bool failed;

	pthread_mutex_lock(&s->lock);
	*nout = 0;
	for (size_t i = 0; i < s->n; i++)
		if (!s->plugins[i]->loaded && *nout < max)
			out[(*nout)++] = s->plugins[i];
	failed = s->fatal[0] != '\0';
	if (failed)
		snprintf(fatal, fatallen, "%s", s->fatal);
	pthread_mutex_unlock(&s->lock);
	return failed;
}

bool
executor_loaded_name(struct exec_plugin *pl, char *name, size_t len)
{
	bool loaded;

	pthread_mutex_lock(&pl->set->lock); /* a first load sets both */
	loaded = pl->loaded;
	snprintf(name, len, "%s", pl->name);
	pthread_mutex_unlock(&pl->set->lock);
	return loaded;
}

int
executor_register_fixed(struct exec_plugin *pl, struct registry *reg, char *err, size_t errlen)
{
	char why[ERR_SIZE];

	/* loaded: its fixed checks no longer change (only reads, no lock) */
	for (size_t i = 0; i < pl->nfixed; i++) {
		struct check c = fixed_check(pl, i);
		if (registry_add(reg, &c, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "plugin %s: refused: it registered a check the host "
			         "refused: %s", pl->path, why);
			return -1;
		}
	}
	return 0;
}

int
executor_register_instance(struct exec_plugin *pl, const struct config_check *ck,
                           struct registry *reg, char *err, size_t errlen)
{
	char why[ERR_SIZE];

	for (size_t i = 0; i < pl->ninst; i++) {
		struct check c = {0};
		if (strcmp(pl->inst[i].name, ck->name) != 0)
			continue;
		snprintf(c.name, sizeof(c.name), "%s", ck->name);
		c.plugin = pl->name;
		c.exec = pl;
		c.exec_index = pl->inst[i].index;
		registry_apply_config(&c, ck);
		if (registry_add(reg, &c, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s.name: %s", ck->origin, why);
			return -1;
		}
		return 1;
	}
	return 0;
}

static int
keep_instance(struct exec_plugin *pl, const struct config_check *ck, uint32_t index)
{
	struct exec_instance *grown = realloc(pl->inst, (pl->ninst + 1) * sizeof(*grown));

	if (grown == NULL)
		return -1;
	pl->inst = grown;
	if (exec_instance_copy(&pl->inst[pl->ninst], ck, index) == -1)
		return -1;
	pl->ninst++;
	return 0;
}

int
executor_instantiate(struct executor_set *s, const struct config_check *ck,
                     struct registry *reg, char *err, size_t errlen)
{
	struct exec_plugin *pl = find_plugin(s, ck->plugin);
	struct exec_instance tmp;
	struct exec_buf *b;
	struct exec_msg m;
	struct check c = {0};
	char why[768];
	int rc = -1;

	if (pl == NULL || pl->cur == NULL) {
		snprintf(err, errlen, "%s.plugin: unknown plugin \"%.64s\"", ck->origin, ck->plugin);
		return -1;
	}
	if (check_name_error(ck->name) != NULL) {
		snprintf(err, errlen, "%s.name: invalid check name \"%.80s\": %s", ck->origin,
		         ck->name, check_name_error(ck->name));
		return -1;
	}
	b = malloc(sizeof(*b));
	tmp = (struct exec_instance){.name = ck->name, .origin = ck->origin, .n = ck->options.n};
	tmp.keys = calloc(ck->options.n + 1, sizeof(char *));
	tmp.values = calloc(ck->options.n + 1, sizeof(char *));
	if (b == NULL || tmp.keys == NULL || tmp.values == NULL) {
		snprintf(err, errlen, "%s: out of memory", ck->origin);
		goto out;
	}
	for (size_t i = 0; i < ck->options.n; i++) {
		tmp.keys[i] = ck->options.v[i].key;
		tmp.values[i] = ck->options.v[i].value;
	}
	exec_buf_instantiate(b, &tmp);
	if (!exec_buf_finish(b)) {
		snprintf(err, errlen, "%s: the check's options are larger than %d bytes", ck->origin,
		         EXEC_MSG_MAX);
		goto out;
	}
	if (exec_proc_call(pl->cur, b, EXEC_INSTANTIATED, &m, "instantiate()", why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s (plugin %s): %s", ck->origin, ck->plugin, why);
		pl->cur->lost = true;
		goto out;
	}
	if (!m.ok) {
		snprintf(err, errlen, "%s", m.text);
		goto out;
	}
	snprintf(c.name, sizeof(c.name), "%s", ck->name);
	c.plugin = pl->name;
	c.exec = pl;
	c.exec_index = m.index;
	registry_apply_config(&c, ck);
	if (registry_add(reg, &c, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s.name: %s", ck->origin, why);
		goto out;
	}
	if (keep_instance(pl, ck, m.index) == -1) {
		snprintf(err, errlen, "%s: out of memory", ck->origin);
		goto out;
	}
	pl->nchecks++;
	rc = 0;
out:
	free(tmp.keys);
	free(tmp.values);
	free(b);
	return rc;
}

int
executor_seal(struct executor_set *s, char *err, size_t errlen)
{
	struct exec_buf *b = malloc(sizeof(*b));
	struct exec_msg m;

	if (b == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct exec_plugin *pl = s->plugins[i];
		char why[512];
		if (!pl->loaded)
			continue; /* its starter seals it once loaded */
		exec_buf_start(b, EXEC_SEAL, 0);
		if (exec_proc_call(pl->cur, b, EXEC_SEALED, &m, "seal", why, sizeof(why)) == -1) {
			snprintf(err, errlen, "plugin %s: %s", pl->path, why);
			pl->cur->lost = true;
			free(b);
			return -1;
		}
	}
	free(b);
	return 0;
}

int
executor_start(struct executor_set *s, executor_done_fn *done, void *arg, char *err,
               size_t errlen)
{
	int rc;

	s->done = done;
	s->done_arg = arg;
	if (executor_seal(s, err, errlen) == -1)
		return -1;
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "executor: pipe: %s", strerror(errno));
		return -1;
	}
	s->started = true;
	s->next_rss = clock_ms() + RSS_POLL_MS;
	rc = pthread_create(&s->thread, NULL, exec_supervisor_main, s);
	if (rc != 0) {
		s->started = false;
		snprintf(err, errlen, "executor: cannot start the supervisor thread: %s",
		         strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- runs --------------------------------------------------------------- */

int
exec_runs_push(struct exec_run **v, size_t *n, size_t *cap, const struct exec_run *run)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		struct exec_run *grown = realloc(*v, c * sizeof(*grown));
		if (grown == NULL)
			return -1;
		*v = grown;
		*cap = c;
	}
	(*v)[(*n)++] = *run;
	return 0;
}

bool
exec_send_run(struct exec_proc *p, const struct exec_run *run, int64_t timeout_ms)
{
	struct exec_buf b;

	LOCK_HELD(&p->pl->set->lock);
	exec_buf_start(&b, EXEC_RUN, run->token);
	exec_buf_u32(&b, run->index);
	exec_buf_i64(&b, run->deadline);
	exec_buf_i64(&b, timeout_ms);
	return exec_send_msg(p->fd, &b, MSG_DONTWAIT);
}

int
executor_run(const struct check *c, uint32_t check_id, uint64_t token, int64_t deadline_ms,
             char *msg, size_t msglen)
{
	struct exec_plugin *pl = c->exec;
	struct executor_set *s = pl->set;
	struct exec_run run = {.token = token, .check_id = check_id, .index = c->exec_index,
	                       .deadline = deadline_ms, .check_name = c->name};
	int64_t timeout_ms = c->timeout_ms;
	int64_t kill_time = deadline_ms + s->iso.kill_after_ms;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		snprintf(msg, msglen, "healthd is shutting down");
		rc = -1;
	} else if (pl->retired) {
		/* a request begun before a reload that removed it, not run after */
		snprintf(msg, msglen, "plugin %s was removed by a reload", pl->name);
		rc = -1;
	} else if (pl->cur != NULL) {
		struct exec_proc *p = pl->cur;
		/* A full socket means an executor that stopped reading: its runs
		 * fail now, and the deadline check retires it. */
		if (exec_runs_push(&p->runs, &p->nruns, &p->cap, &run) == -1) {
			snprintf(msg, msglen, "out of memory");
			rc = -1;
		} else if (!exec_send_run(p, &run, timeout_ms) && errno == EAGAIN) {
			p->nruns--;
			snprintf(msg, msglen, "plugin %s: its executor is not taking runs", pl->name);
			rc = -1;
			/* the supervisor replaces it (spawning is its job, see
			 * start_replacement) */
			if (!p->unresponsive) {
				p->unresponsive = true;
				s->wake_at = 0;
				exec_wake(s);
			}
		}
		/* any other send error: the executor is dying; the supervisor fails
		 * the run with the cause once it is reaped */
	} else if (pl->starting) {
		if (exec_runs_push(&pl->pending, &pl->npending, &pl->pcap, &run) == -1) {
			snprintf(msg, msglen, "out of memory");
			rc = -1;
		}
	} else {
		int64_t left = pl->restart_at - clock_ms();
		snprintf(msg, msglen, "plugin %s is down: %s; restart in %lld ms", pl->name,
		         pl->down_why, (long long)(left > 0 ? left : 0));
		rc = -1;
	}
	if (rc == 0 && kill_time < s->wake_at) {
		s->wake_at = kill_time;
		exec_wake(s);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

bool
executor_cancel(struct exec_plugin *pl, uint64_t token)
{
	struct executor_set *s = pl->set;
	bool dropped = false;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < pl->npending; i++) {
		if (pl->pending[i].token == token) {
			pl->pending[i] = pl->pending[--pl->npending];
			dropped = true;
			break;
		}
	}
	for (struct exec_proc *p = pl->procs; p != NULL && !dropped; p = p->next) {
		for (size_t i = 0; i < p->nruns; i++) {
			if (p->runs[i].token == token) {
				struct exec_buf b;
				exec_buf_start(&b, EXEC_CANCEL, token);
				exec_send_msg(p->fd, &b, MSG_DONTWAIT);
				break;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	return dropped;
}

/* ---- info and shutdown -------------------------------------------------- */

size_t
executor_count(struct executor_set *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Under the lock. */
static void
info_locked(const struct exec_plugin *pl, struct executor_info *out)
{
	LOCK_HELD(&pl->set->lock);
	*out = (struct executor_info){
		.abi_major = pl->abi_major, .abi_minor = pl->abi_minor,
		.nchecks = pl->nchecks, .up = pl->cur != NULL,
		.retired = pl->retired || !pl->serving,
		.rss_bytes = pl->cur != NULL ? exec_rss_of(pl->cur->pid) : 0,
		.log_dropped_bytes = atomic_load(&pl->log_dropped),
	};
	snprintf(out->name, sizeof(out->name), "%s", pl->name);
	snprintf(out->version, sizeof(out->version), "%s", pl->version);
	snprintf(out->description, sizeof(out->description), "%s", pl->description);
	snprintf(out->file, sizeof(out->file), "%s", pl->path);
	memcpy(out->restarts, pl->restarts, sizeof(out->restarts));
	out->sandbox = pl->sandbox;
}

bool
executor_info(struct executor_set *s, size_t i, struct executor_info *out)
{
	pthread_mutex_lock(&s->lock);
	if (i >= s->n) {
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	info_locked(s->plugins[i], out);
	pthread_mutex_unlock(&s->lock);
	return true;
}

size_t
executor_serving_info(struct executor_set *s, struct executor_info *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock); /* one look: a plugin freed meanwhile cannot hide another */
	for (size_t i = 0; i < s->n && n < max; i++)
		if (!s->plugins[i]->retired && s->plugins[i]->serving)
			info_locked(s->plugins[i], &out[n++]);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- reload ------------------------------------------------------------- */

/* Whether pl's instances are exactly the checks cfg gives a plugin of its
 * name, in order, with the same options. */
static bool
same_instances(const struct exec_plugin *pl, const struct config *cfg)
{
	size_t k = 0;

	for (size_t i = 0; i < cfg->nchecks; i++) {
		const struct config_check *ck = &cfg->checks[i];
		const struct exec_instance *in;
		if (strcmp(ck->plugin, pl->name) != 0)
			continue;
		if (k == pl->ninst)
			return false;
		in = &pl->inst[k++];
		if (strcmp(in->name, ck->name) != 0 || in->n != ck->options.n)
			return false;
		for (size_t j = 0; j < in->n; j++)
			if (strcmp(in->keys[j], ck->options.v[j].key) != 0 ||
			    strcmp(in->values[j], ck->options.v[j].value) != 0)
				return false;
	}
	return k == pl->ninst;
}

struct exec_plugin *
executor_reusable(struct executor_set *s, const char *path, const struct stat *st,
                  const struct config *cfg)
{
	struct exec_plugin *found = NULL;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n && found == NULL; i++) {
		struct exec_plugin *pl = s->plugins[i];
		struct exec_plugin probe = {.path = (char *)path, .file = *st};
		if (!pl->retired && executor_same_file(pl, &probe) && same_instances(pl, cfg))
			found = pl;
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

const char *
executor_plugin_name(const struct exec_plugin *pl)
{
	return pl->name;
}

const char *
executor_plugin_version(const struct exec_plugin *pl)
{
	return pl->version;
}

const char *
executor_plugin_path(const struct exec_plugin *pl)
{
	return pl->path;
}

bool
executor_same_file(const struct exec_plugin *a, const struct exec_plugin *b)
{
	return strcmp(a->path, b->path) == 0 && a->file.st_dev == b->file.st_dev &&
	       a->file.st_ino == b->file.st_ino && a->file.st_size == b->file.st_size &&
	       a->file.st_mtim.tv_sec == b->file.st_mtim.tv_sec &&
	       a->file.st_mtim.tv_nsec == b->file.st_mtim.tv_nsec;
}

/* The slot old gives pl's check number index, or 0. */
static uint32_t
old_slot(const struct registry *old, const struct exec_plugin *pl, uint32_t index)
{
	for (uint32_t id = 0; old != NULL && id < registry_count(old); id++) {
		const struct check *c = registry_at(old, id);
		if (c->exec == pl && c->exec_index == index)
			return c->slot;
	}
	return 0;
}

int
executor_register(struct exec_plugin *pl, struct registry *reg, const struct registry *old,
                  const struct config *cfg, char *err, size_t errlen)
{
	char why[ERR_SIZE];
	size_t k = 0;

	for (size_t i = 0; i < pl->nfixed; i++) {
		struct check c = fixed_check(pl, i);
		c.slot = old_slot(old, pl, c.exec_index);
		if (registry_add(reg, &c, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "plugin %s: %s", pl->path, why);
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->nchecks; i++) {
		const struct config_check *ck = &cfg->checks[i];
		struct check c = {0};
		if (strcmp(ck->plugin, pl->name) != 0)
			continue;
		snprintf(c.name, sizeof(c.name), "%s", ck->name);
		c.plugin = pl->name;
		c.exec = pl;
		c.exec_index = pl->inst[k++].index;
		registry_apply_config(&c, ck);
		c.slot = old_slot(old, pl, c.exec_index);
		if (registry_add(reg, &c, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s.name: %s", ck->origin, why);
			return -1;
		}
	}
	return 0;
}

int
executor_merge(struct executor_set *live, struct executor_set *staging)
{
	struct exec_plugin **grown;

	pthread_mutex_lock(&live->lock);
	grown = realloc(live->plugins, (live->n + staging->n + 1) * sizeof(*grown));
	if (grown == NULL) {
		pthread_mutex_unlock(&live->lock);
		return -1;
	}
	live->plugins = grown;
	for (size_t i = 0; i < staging->n; i++) {
		staging->plugins[i]->set = live;
		staging->plugins[i]->serving = false; /* until executor_serve() */
		live->plugins[live->n++] = staging->plugins[i];
	}
	staging->n = 0;
	live->wake_at = 0;
	exec_wake(live);
	pthread_mutex_unlock(&live->lock);
	return 0;
}

void
executor_serve(struct executor_set *live, struct exec_plugin *const *serving, size_t nserving)
{
	pthread_mutex_lock(&live->lock);
	/* at once: a plugin replaced under its name and its replacement never
	 * show up side by side (one series per name) */
	for (size_t i = 0; i < live->n; i++) {
		struct exec_plugin *pl = live->plugins[i];
		pl->serving = false;
		for (size_t k = 0; k < nserving && !pl->serving; k++)
			pl->serving = serving[k] == pl;
	}
	pthread_mutex_unlock(&live->lock);
}

size_t
executor_plugins(struct executor_set *s, struct exec_plugin **out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n && n < max; i++)
		if (!s->plugins[i]->retired)
			out[n++] = s->plugins[i];
	pthread_mutex_unlock(&s->lock);
	return n;
}

void
executor_hold(struct exec_plugin *pl)
{
	pthread_mutex_lock(&pl->set->lock);
	pl->refs++;
	pthread_mutex_unlock(&pl->set->lock);
}

void
executor_release(struct exec_plugin *pl)
{
	struct executor_set *s = pl->set;

	pthread_mutex_lock(&s->lock);
	if (--pl->refs == 0) {
		pl->retired = true;
		s->wake_at = 0;
		exec_wake(s);
	}
	pthread_mutex_unlock(&s->lock);
}

void
executor_shutdown(struct executor_set *s, int grace_ms)
{
	struct exec_done_list d = {0};

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->grace_ms = grace_ms;
	s->stopping = true;
	exec_wake(s);
	pthread_mutex_unlock(&s->lock);
	if (s->started) {
		/* the supervisor stops what it spawned, then returns */
		pthread_join(s->thread, NULL);
		s->started = false;
	}
	/* Not started (startup failed, --check-config): this thread spawned them.
	 * After the supervisor: nothing is left, and this does nothing. */
	pthread_mutex_lock(&s->lock);
	exec_stop_all(s, &d);
	pthread_mutex_unlock(&s->lock);
	exec_done_deliver(s, &d);
}

void
executor_set_free(struct executor_set *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		exec_plugin_free(s->plugins[i]);
	free(s->plugins);
	free(s->wanted);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	if (s->wrapper != NULL)
		free(s->wrapper[0]);
	free(s->wrapper);
	free(s->envp);
	free(s->self);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
