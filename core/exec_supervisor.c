/*
 * exec_supervisor.c - the supervisor thread, as Varnish's mgt_child.c: start,
 * stop and restart of executors, and the "child died" story in one place.
 * It polls every executor's socket and pidfd, reads results, and acts on four
 * timers: a run's deadline + kill_after_ms, a retired executor's kill time, a
 * restart's backoff, and the RSS poll. Every run ends through
 * exec_done_deliver(), without the set's lock (lock order: runner, then
 * executors).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "exec_internal.h"
#include "lock.h"
#include "log.h"
#include "sandbox.h"

#define POLL_START 64   /* fds polled at first; the set grows with the executors */

static void read_proc(struct exec_proc *p, unsigned char *buf, struct exec_done_list *d, int64_t now);
static void start_replacement(struct exec_plugin *pl);

static void
done_add(struct exec_done_list *d, const struct exec_run *run, enum healthd_status st,
         bool timed_out, int64_t dur_ms, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void
done_add(struct exec_done_list *d, const struct exec_run *run, enum healthd_status st,
         bool timed_out, int64_t dur_ms, const char *fmt, ...)
{
	struct exec_done *x;
	va_list ap;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct exec_done *grown = realloc(d->v, cap * sizeof(*grown));
		if (grown == NULL) {
			log_err("executor: out of memory: a run's end is lost");
			return;
		}
		d->v = grown;
		d->cap = cap;
	}
	x = &d->v[d->n++];
	memset(x, 0, sizeof(*x));
	x->check_id = run->check_id;
	x->token = run->token;
	x->status = st;
	x->dur_ms = dur_ms;
	x->rep.timed_out = timed_out;
	va_start(ap, fmt);
	vsnprintf(x->rep.message, sizeof(x->rep.message), fmt, ap);
	va_end(ap);
}

/* Without the lock: every end reaches the runner through its one door. */
void
exec_done_deliver(struct executor_set *s, struct exec_done_list *d)
{
	LOCK_NOT_HELD(&s->lock);
	for (size_t i = 0; i < d->n; i++) {
		struct exec_done *x = &d->v[i];
		s->done(s->done_arg, x->check_id, x->token, x->status, &x->rep, x->dur_ms);
	}
	free(d->v);
	*d = (struct exec_done_list){0};
}

void
exec_wake(struct executor_set *s)
{
	char c = 1;

	LOCK_HELD(&s->lock);
	if (s->started && write(s->wake[1], &c, 1) == -1 && errno != EAGAIN)
		log_warn("executor: cannot wake the supervisor: %s", strerror(errno));
}

/* ---- the supervisor ----------------------------------------------------- */

static const char *
check_name_of(const struct exec_run *run)
{
	return run->check_name != NULL ? run->check_name : "?";
}

static void
unlink_proc(struct exec_plugin *pl, struct exec_proc *p)
{
	LOCK_HELD(&pl->set->lock);
	for (struct exec_proc **pp = &pl->procs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	if (pl->cur == p)
		pl->cur = NULL;
}

/* A crash (or a failed start) of pl's current executor: back off, then restart. */
static void
plugin_down(struct exec_plugin *pl, enum exec_reason reason, const char *why, int64_t now)
{
	struct executor_set *s = pl->set;

	LOCK_HELD(&s->lock);
	if (pl->backoff_ms == 0 || now - pl->last_crash >= s->iso.crash_reset_ms)
		pl->backoff_ms = s->iso.restart_min_ms;
	else
		pl->backoff_ms = pl->backoff_ms * 2 > s->iso.restart_max_ms ? s->iso.restart_max_ms
		                                                            : pl->backoff_ms * 2;
	pl->last_crash = now;
	pl->restarts[reason]++;
	pl->down = true;
	pl->restart_at = now + pl->backoff_ms;
	snprintf(pl->down_why, sizeof(pl->down_why), "%.150s", why);
}

/* The executor is gone (status from waitpid): end its runs, and if it was the
 * current one, schedule a restart with backoff. */
static void
proc_dead(struct exec_proc *p, int status, struct exec_done_list *d, int64_t now)
{
	struct exec_plugin *pl = p->pl;
	struct executor_set *s = pl->set;
	bool was_current = pl->cur == p;
	char cause[320], why[400];

	LOCK_HELD(&s->lock);
	/* what it wrote (a crash report, say) before the line about its end */
	exec_output_close(p, now);
	/* What it sent before it died counts: results, and which check's code
	 * ended it (without a pidfd we can reap before we read). */
	if (p->fd >= 0) {
		unsigned char *buf = malloc(EXEC_MSG_MAX + 1);
		if (buf != NULL)
			read_proc(p, buf, d, now);
		free(buf);
	}
	if (p->lost_why[0] != '\0')
		snprintf(cause, sizeof(cause), "%s", p->lost_why);
	else
		exec_describe_status(status, cause, sizeof(cause));
	/* every run in flight there fails, naming the check whose code did it
	 * when the executor could tell (a fatal signal, or exit() in run()) */
	for (size_t i = 0; i < p->nruns; i++)
		done_add(d, &p->runs[i], HEALTHD_CRITICAL, false, 0, "plugin %s %s during check \"%s\"",
		         pl->name, cause, p->culprit[0] ? p->culprit : check_name_of(&p->runs[i]));
	unlink_proc(pl, p);
	if (p->culprit[0] != '\0')
		snprintf(why, sizeof(why), "%s during check \"%s\"", cause, p->culprit);
	else if (p->nruns > 0) /* which of them did it, it could not say */
		snprintf(why, sizeof(why), "%s with %zu run%s in flight (check \"%s\"%s)", cause,
		         p->nruns, p->nruns == 1 ? "" : "s", check_name_of(&p->runs[0]),
		         p->nruns > 1 ? " and others" : "");
	else
		snprintf(why, sizeof(why), "%s", cause);
	if (s->stopping || pl->retired) {
		/* expected */
	} else if (was_current) {
		snprintf(cause, sizeof(cause), "its executor %.200s", why);
		plugin_down(pl, p->reason, cause, now);
		log_err("plugin %s (%s): executor pid %ld %s; restarting in %d ms", pl->name,
		        pl->path, (long)p->pid, why, pl->backoff_ms);
	} else if (!p->killed && (p->nruns > 0 || p->culprit[0] != '\0')) {
		log_err("plugin %s (%s): retired executor pid %ld %s", pl->name, pl->path,
		        (long)p->pid, why);
	}
	exec_proc_free(p);
}

/* Socket closed or broken: the executor is dead or dying. */
static void
proc_lost(struct exec_proc *p, int64_t now)
{
	LOCK_HELD(&p->pl->set->lock);
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	if (!p->lost) {
		p->lost = true;
		if (p->kill_at > now + LOST_GRACE_MS)
			p->kill_at = now + LOST_GRACE_MS;
	}
}

/* Ends p now on purpose (protocol, memory): reason and why go to its runs. */
static void
proc_end(struct exec_proc *p, enum exec_reason reason, const char *why, int64_t now)
{
	LOCK_HELD(&p->pl->set->lock);
	p->reason = reason;
	snprintf(p->lost_why, sizeof(p->lost_why), "%.255s", why);
	exec_proc_kill(p);
	proc_lost(p, now);
}

/* Stops giving p new runs; a fresh executor takes them (no backoff). */
static void
proc_retire(struct exec_proc *p, enum exec_reason reason)
{
	struct exec_plugin *pl = p->pl;

	LOCK_HELD(&pl->set->lock);
	if (p->state == PROC_RETIRING)
		return;
	p->state = PROC_RETIRING;
	pl->restarts[reason]++;
	if (pl->cur == p)
		pl->cur = NULL;
	start_replacement(pl);
}

static void
handle_message(struct exec_proc *p, const unsigned char *buf, size_t n, struct exec_done_list *d,
               int64_t now)
{
	struct executor_set *s = p->pl->set;
	struct exec_msg m;
	char why[ERR_SIZE], what[320];

	LOCK_HELD(&s->lock);
	if (exec_decode(buf, n, &m, why, sizeof(why)) == -1 ||
	    (m.type != EXEC_RESULT && m.type != EXEC_DYING)) {
		if (m.type != 0) {
			snprintf(why, sizeof(why), "unexpected message type %u", m.type);
			exec_msg_free(&m);
		}
		log_err("plugin %s: executor pid %ld sent a malformed message (%s); killing it",
		        p->pl->name, (long)p->pid, why);
		snprintf(what, sizeof(what), "sent a malformed message (%.200s)", why);
		proc_end(p, EXEC_REASON_PROTOCOL, what, now);
		return;
	}
	if (m.type == EXEC_DYING) {
		snprintf(p->culprit, sizeof(p->culprit), "%s", m.name2);
		return;
	}
	for (size_t i = 0; i < p->nruns; i++) {
		if (p->runs[i].token == m.token) {
			done_add(d, &p->runs[i], (enum healthd_status)m.status, m.timed_out,
			         m.duration_us / 1000, "%s", m.text);
			if (d->n > 0 && d->v[d->n - 1].token == m.token) {
				d->v[d->n - 1].rep.nvalues = m.nvalues;
				memcpy(d->v[d->n - 1].rep.values, m.values,
				       m.nvalues * sizeof(m.values[0]));
			}
			p->runs[i] = p->runs[--p->nruns];
			return;
		}
	}
	/* A result for a run that is not in flight here: late, or forged. */
	if (s->dropped++ % 1000 == 0)
		log_warn("plugin %s: executor pid %ld sent a result for no run in flight; dropped "
		         "(%u so far)", p->pl->name, (long)p->pid, s->dropped);
}

static void
read_proc(struct exec_proc *p, unsigned char *buf, struct exec_done_list *d, int64_t now)
{
	LOCK_HELD(&p->pl->set->lock);
	/* bounded, so one chatty executor cannot starve the others */
	for (int i = 0; i < 256 && p->fd >= 0; i++) {
		ssize_t n = recv(p->fd, buf, EXEC_MSG_MAX + 1, MSG_DONTWAIT | MSG_TRUNC);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			proc_lost(p, now);
			return;
		}
		handle_message(p, buf, (size_t)n > EXEC_MSG_MAX + 1 ? EXEC_MSG_MAX + 1 : (size_t)n,
		               d, now);
	}
}

static void
check_rss(struct exec_proc *p)
{
	struct exec_plugin *pl = p->pl;
	int cap = pl->set->iso.max_rss_mb;
	unsigned long long mb;

	LOCK_HELD(&pl->set->lock);
	pl->rss_bytes = exec_rss_of(p->pid);
	if (pl->rss_bytes <= (uint64_t)cap << 20)
		return;
	mb = (pl->rss_bytes + (1u << 20) - 1) >> 20;
	log_warn("plugin %s: executor pid %ld uses %llu MB, above isolation.max_rss_mb %d; "
	         "replacing it", pl->name, (long)p->pid, mb, cap);
	proc_retire(p, EXEC_REASON_MEMORY);
}

/*
 * The end of a first load (serving while loading). A refusal is kept for the
 * server, which ends the start with it; a timeout backs off as a crash does
 * (returns false: boot_finished() goes on as for a restart). Loaded, the
 * plugin takes its name, fixed checks and instances, and its executor is
 * installed as a restart's (returns false). Returns true when done here.
 */
static bool
first_finished(struct exec_plugin *pl, struct exec_proc *p, int64_t now)
{
	struct executor_set *s = pl->set;
	struct exec_first *f = pl->first;

	LOCK_HELD(&s->lock);
	pl->first = NULL;
	if (pl->boot_rc != 0 && (f == NULL || f->fatal)) {
		if (p != NULL)
			exec_proc_free(p);
		pl->failed = true;
		pl->down = true;
		snprintf(pl->down_why, sizeof(pl->down_why), "its load was refused");
		if (s->fatal[0] == '\0')
			snprintf(s->fatal, sizeof(s->fatal), "%s", pl->boot_err);
		exec_first_free(f);
		if (s->loaded_fn != NULL)
			s->loaded_fn(s->loaded_arg);
		return true;
	}
	if (pl->boot_rc != 0) {
		exec_first_free(f);
		return false;
	}
	snprintf(pl->name, sizeof(pl->name), "%s", f->loaded.name);
	snprintf(pl->version, sizeof(pl->version), "%s", f->loaded.version);
	snprintf(pl->description, sizeof(pl->description), "%s", f->loaded.description);
	pl->abi_major = f->loaded.abi_major;
	pl->abi_minor = f->loaded.abi_minor;
	pl->fixed = f->loaded.fixed;
	pl->nfixed = f->loaded.nfixed;
	f->loaded.fixed = NULL;
	pl->inst = f->inst;
	pl->ninst = f->ninst;
	f->inst = NULL;
	f->ninst = 0;
	pl->nchecks = pl->nfixed + pl->ninst;
	pl->sandbox = f->loaded.sandbox;
	pl->loaded = true;
	if (sandbox_missing(&pl->sandbox) != 0) {
		char line[1024];
		sandbox_describe(&pl->sandbox, line, sizeof(line));
		log_warn("plugin %s: sandbox: %s", pl->name, line);
	}
	pl->backoff_ms = 0; /* timeouts while loading do not count against its crashes */
	exec_first_free(f);
	log_info("plugin %s %s: loaded in %lld ms (isolated, executor pid %ld)", pl->name,
	         pl->version, (long long)(now - pl->load_started), (long)p->pid);
	if (s->loaded_fn != NULL)
		s->loaded_fn(s->loaded_arg);
	return false;
}

/* A starter thread is through: install its executor, or back off. */
static void
boot_finished(struct exec_plugin *pl, struct exec_done_list *d, int64_t now)
{
	struct exec_proc *p = pl->booting;
	bool first = !pl->loaded;

	LOCK_HELD(&pl->set->lock);
	pthread_join(pl->starter, NULL); /* it returned, or is about to: nothing after */
	pl->starter_joinable = false;
	pl->boot_done = false;
	pl->booting = NULL;
	pl->starting = false;
	if (first && first_finished(pl, p, now))
		return;
	if (pl->boot_rc != 0) {
		char why[600];
		if (p != NULL)
			exec_proc_free(p); /* exec_proc_boot reaped it */
		snprintf(why, sizeof(why), "%s: %.500s", pl->loaded ? "restart failed" : "loading failed",
		         pl->boot_err);
		plugin_down(pl, EXEC_REASON_CRASH, why, now);
		log_err("plugin %s (%s): %s; next try in %d ms", pl->name, pl->path, why,
		        pl->backoff_ms);
		for (size_t i = 0; i < pl->npending; i++)
			done_add(d, &pl->pending[i], HEALTHD_CRITICAL, false, 0,
			         "plugin %s is down: %s", pl->name, pl->down_why);
		pl->npending = 0;
		return;
	}
	p->next = pl->procs;
	pl->procs = p;
	pl->cur = p;
	pl->down = false;
	p->ready_at = now;
	pl->rss_bytes = exec_rss_of(p->pid);
	if (pl->rss_bytes > (uint64_t)pl->set->iso.max_rss_mb << 20) {
		/* above the cap before any run: replacing it would loop; back off */
		char why[200];
		snprintf(why, sizeof(why), "used %llu MB after load(), above isolation.max_rss_mb %d",
		         (unsigned long long)((pl->rss_bytes + (1u << 20) - 1) >> 20),
		         pl->set->iso.max_rss_mb);
		log_warn("plugin %s: executor pid %ld %s", pl->name, (long)p->pid, why);
		proc_end(p, EXEC_REASON_MEMORY, why, now);
		return; /* pending runs wait for the next try, or fail if it is late */
	}
	if (!first) /* a first load said "loaded" already */
		log_info("plugin %s: executor pid %ld ready", pl->name, (long)p->pid);
	for (size_t i = 0; i < pl->npending; i++) {
		struct exec_run *run = &pl->pending[i];
		if (exec_runs_push(&p->runs, &p->nruns, &p->cap, run) == -1 ||
		    (!exec_send_run(p, run, run->deadline - now) && errno == EAGAIN)) {
			if (p->nruns > 0 && p->runs[p->nruns - 1].token == run->token)
				p->nruns--;
			done_add(d, run, HEALTHD_CRITICAL, false, 0,
			         "plugin %s: its executor is not taking runs", pl->name);
		}
	}
	pl->npending = 0;
}

/*
 * A plugin no configuration uses (reload): its executors take no new runs
 * and close once their runs are over (supervisor_step() then reaps them) ...
 */
static void
retire_mark(struct exec_plugin *pl, struct exec_done_list *d)
{
	LOCK_HELD(&pl->set->lock);
	for (size_t k = 0; k < pl->npending; k++)
		done_add(d, &pl->pending[k], HEALTHD_CRITICAL, false, 0,
		         "plugin %s was removed by a reload", pl->name);
	pl->npending = 0;
	pl->down = false;
	for (struct exec_proc *p = pl->procs; p != NULL; p = p->next)
		p->state = PROC_RETIRING; /* not a restart: no reason counted */
	pl->cur = NULL;
}

/* ... and when none is left it is freed. Returns true if it was, and
 * s->plugins[i] is now another plugin. */
static bool
retired_gone(struct executor_set *s, size_t i)
{
	struct exec_plugin *pl = s->plugins[i];

	LOCK_HELD(&s->lock);
	if (pl->procs != NULL || pl->starting)
		return false; /* a restart in load(): boot_finished() installs it first */
	log_info("plugin %s %s (%s): retired", pl->name, pl->version, pl->path);
	exec_plugin_free(pl);
	s->plugins[i] = s->plugins[--s->n];
	return true;
}

/* crash_reset_ms after pl's last crash, its restarts back off from
 * restart_min_ms again (plugin_down() would see the window itself; this says
 * when it passes). Returns next, or the window's end if sooner. */
static int64_t
backoff_reset(struct exec_plugin *pl, int64_t now, int64_t next)
{
	int64_t at = pl->last_crash + pl->set->iso.crash_reset_ms;

	LOCK_HELD(&pl->set->lock);
	if (pl->backoff_ms == 0)
		return next;
	if (now < at) {
		timer_min(&next, at);
		return next;
	}
	pl->backoff_ms = 0;
	log_info("plugin %s: no crash for %d ms: its restarts back off from %d ms again", pl->name,
	         pl->set->iso.crash_reset_ms, pl->set->iso.restart_min_ms);
	return next;
}

/* One step of the supervisor, under the lock: finished restarts, retirement,
 * runs past deadline + kill_after_ms, kill times, reaps, restarts, RSS.
 * Returns when it must look next. */
static int64_t
supervisor_step(struct executor_set *s, struct exec_done_list *d, int64_t now)
{
	int64_t next = TIMER_NONE;
	bool rss_due = now >= s->next_rss;

	LOCK_HELD(&s->lock);
	if (rss_due)
		s->next_rss = now + RSS_POLL_MS;
	for (size_t i = 0; i < s->n; i++) {
		struct exec_plugin *pl = s->plugins[i];
		if (pl->boot_done)
			boot_finished(pl, d, now);
		if (pl->retired)
			retire_mark(pl, d);
		for (struct exec_proc *p = pl->procs, *next_p; p != NULL; p = next_p) {
			next_p = p->next;
			for (size_t k = 0; k < p->nruns && !p->lost;) {
				struct exec_run *run = &p->runs[k];
				int64_t limit = run->deadline + s->iso.kill_after_ms;
				if (now < limit) {
					timer_min(&next, limit);
					k++;
					continue;
				}
				if (p->state == PROC_READY) {
					log_warn("plugin %s: check \"%s\" still running %lld ms after its "
					         "deadline; replacing executor pid %ld", pl->name,
					         check_name_of(run), (long long)(now - run->deadline),
					         (long)p->pid);
					proc_retire(p, EXEC_REASON_DEADLINE);
				}
				/* already answered at its deadline; this frees the check */
				done_add(d, run, HEALTHD_CRITICAL, true, now - run->deadline,
				         "killed: still running %lld ms after its deadline",
				         (long long)(now - run->deadline));
				p->runs[k] = p->runs[--p->nruns];
				p->stuck = true;
			}
			if (p->state == PROC_RETIRING && p->nruns == 0 && !p->lost) {
				/* its last run is over: close it; it unloads, or is killed
				 * (at once if a thread is stuck: nothing graceful is left) */
				if (p->kill_at == TIMER_NONE)
					p->kill_at = p->stuck ? now : now + REAP_GRACE_MS;
				if (p->fd >= 0) {
					close(p->fd);
					p->fd = -1;
				}
			}
			if (p->kill_at <= now && !p->killed)
				exec_proc_kill(p);
			if (p->unresponsive && p->state == PROC_READY && !p->lost) {
				log_warn("plugin %s: executor pid %ld does not read its socket; replacing "
				         "it", pl->name, (long)p->pid);
				proc_retire(p, EXEC_REASON_PROTOCOL);
			}
			if (rss_due && p->state == PROC_READY && !p->lost)
				check_rss(p);
			timer_min(&next, exec_output_tick(p, now));
			/* reap what has exited: its pidfd said so, or without a pidfd
			 * whatever we expect to end */
			if (p->exited || p->lost || p->killed || p->fd < 0 || p->pidfd < 0) {
				int status;
				if (exec_proc_try_reap(p, &status)) {
					proc_dead(p, status, d, now);
					continue;
				}
			}
			if (!p->killed)
				timer_min(&next, p->kill_at);
			if ((p->lost || p->killed || p->fd < 0) && p->pidfd < 0)
				timer_min(&next, now + 10); /* no pidfd: look for its exit soon */
		}
		if (pl->retired) {
			if (retired_gone(s, i))
				i--; /* freed: the next one moved here */
			continue;
		}
		next = backoff_reset(pl, now, next);
		if (pl->down && !pl->starting && !pl->failed && !s->stopping) {
			if (now >= pl->restart_at)
				start_replacement(pl);
			else
				timer_min(&next, pl->restart_at);
		}
	}
	timer_min(&next, s->next_rss);
	return next;
}

/*
 * Shutdown, on the thread that spawned the executors (PR_SET_PDEATHSIG fires
 * when that thread ends): close every socket, so that executors destroy their
 * checks and unload, wait up to grace_ms, then kill and reap what is left.
 * Called with the lock held; returns with it held.
 */
void
exec_stop_all(struct executor_set *s, struct exec_done_list *d)
{
	int64_t until = clock_ms() + s->grace_ms;
	bool any;

	LOCK_HELD(&s->lock);
	/* a restart still in load() is not waited for: its end unblocks the starter */
	for (size_t i = 0; i < s->n; i++) {
		struct exec_plugin *pl = s->plugins[i];
		if (pl->booting != NULL && !pl->booting->killed)
			exec_proc_kill(pl->booting);
	}
	for (size_t i = 0; i < s->n; i++) {
		struct exec_plugin *pl = s->plugins[i];
		if (pl->starter_joinable) {
			pthread_mutex_unlock(&s->lock);
			pthread_join(pl->starter, NULL);
			pthread_mutex_lock(&s->lock);
			pl->starter_joinable = false;
		}
		if (pl->booting != NULL) {
			struct exec_proc *p = pl->booting;
			pl->booting = NULL;
			pl->boot_done = false;
			pl->starting = false;
			if (pl->boot_rc == 0) { /* booted after all: stop it with the rest */
				p->next = pl->procs;
				pl->procs = p;
			} else {
				exec_proc_free(p);
			}
		}
		for (size_t k = 0; k < pl->npending; k++)
			done_add(d, &pl->pending[k], HEALTHD_UNKNOWN, false, 0,
			         "healthd is shutting down");
		pl->npending = 0;
		for (struct exec_proc *p = pl->procs; p != NULL; p = p->next) {
			if (p->fd >= 0) {
				close(p->fd);
				p->fd = -1;
			}
		}
	}
	do {
		any = false;
		for (size_t i = 0; i < s->n; i++) {
			struct exec_plugin *pl = s->plugins[i];
			for (struct exec_proc *p = pl->procs, *next; p != NULL; p = next) {
				int status = 0;
				next = p->next;
				if (clock_ms() >= until && !p->killed)
					exec_proc_kill(p);
				if (exec_proc_try_reap(p, &status))
					proc_dead(p, status, d, clock_ms());
				else
					any = true;
			}
		}
		if (any) {
			struct timespec ts = {0, 5 * 1000000L};
			pthread_mutex_unlock(&s->lock);
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&s->lock);
		}
	} while (any);
}

/* What the supervisor polls: its wake pipe at 0, then every executor's
 * output, socket and pidfd, who[i] owning pfd[i]. It grows with the executors. */
struct poll_set {
	struct pollfd *pfd;
	struct exec_proc **who;
	size_t cap;
	bool short_logged; /* out of memory once: some fds were left out */
};

static bool
poll_grow(struct poll_set *ps, size_t want)
{
	size_t cap = ps->cap ? ps->cap : POLL_START;
	struct pollfd *pfd;
	struct exec_proc **who;

	while (cap < want)
		cap *= 2;
	pfd = realloc(ps->pfd, cap * sizeof(*pfd));
	if (pfd == NULL)
		return false;
	ps->pfd = pfd;
	who = realloc(ps->who, cap * sizeof(*who));
	if (who == NULL)
		return false;
	ps->who = who;
	ps->cap = cap;
	return true;
}

/* Fills ps with every executor's fds, growing it as needed; only out of
 * memory does it leave some out, and says so once. Returns how many. */
static size_t
poll_fill(struct executor_set *s, struct poll_set *ps)
{
	size_t n = 1, want = 1;

	LOCK_HELD(&s->lock);
	for (size_t i = 0; i < s->n; i++)
		for (struct exec_proc *p = s->plugins[i]->procs; p != NULL; p = p->next)
			want += 3;
	if (want > ps->cap && !poll_grow(ps, want) && !ps->short_logged) {
		log_err("executor: out of memory: polling only %zu of %zu executor fds",
		        ps->cap - 1, want - 1);
		ps->short_logged = true;
	}
	ps->pfd[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
	for (size_t i = 0; i < s->n; i++) {
		for (struct exec_proc *p = s->plugins[i]->procs; p != NULL; p = p->next) {
			if (n + 3 > ps->cap)
				return n;
			/* output first: what it wrote comes before what it answered */
			if (p->out.fd >= 0) {
				ps->who[n] = p;
				ps->pfd[n++] = (struct pollfd){.fd = p->out.fd, .events = POLLIN};
			}
			if (p->fd >= 0) {
				ps->who[n] = p;
				ps->pfd[n++] = (struct pollfd){.fd = p->fd, .events = POLLIN};
			}
			if (p->pidfd >= 0) {
				ps->who[n] = p;
				ps->pfd[n++] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
			}
		}
	}
	return n;
}

void *
exec_supervisor_main(void *arg)
{
	struct executor_set *s = arg;
	struct poll_set ps = {0};
	unsigned char *buf = malloc(EXEC_MSG_MAX + 1);
	struct exec_done_list d = {0};

	if (!poll_grow(&ps, POLL_START) || buf == NULL) {
		log_err("executor: out of memory: no supervisor");
		free(ps.pfd);
		free(ps.who);
		free(buf);
		return NULL;
	}
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		int64_t now = clock_ms(), next;
		size_t n;
		int rc;

		next = supervisor_step(s, &d, now);
		s->wake_at = next;
		n = poll_fill(s, &ps);
		pthread_mutex_unlock(&s->lock);
		exec_done_deliver(s, &d);

		rc = poll(ps.pfd, n, timer_poll_timeout(next, now));

		pthread_mutex_lock(&s->lock);
		if (rc <= 0)
			continue;
		if (ps.pfd[0].revents & POLLIN) {
			char drain[64];
			while (read(s->wake[0], drain, sizeof(drain)) > 0)
				;
		}
		now = clock_ms();
		for (size_t i = 1; i < n; i++) {
			struct exec_proc *p = ps.who[i];
			if (ps.pfd[i].revents == 0)
				continue;
			if (ps.pfd[i].fd == p->out.fd) {
				exec_output_read(p, now);
				continue;
			}
			if (ps.pfd[i].fd != p->fd) {
				p->exited = true; /* its pidfd: supervisor_step() reaps it */
				continue;
			}
			read_proc(p, buf, &d, now);
		}
		pthread_mutex_unlock(&s->lock);
		exec_done_deliver(s, &d);
		pthread_mutex_lock(&s->lock);
	}
	exec_stop_all(s, &d);
	pthread_mutex_unlock(&s->lock);
	exec_done_deliver(s, &d);
	free(ps.pfd);
	free(ps.who);
	free(buf);
	return NULL;
}

/* ---- restarts ----------------------------------------------------------- */

/* Loads the executor the supervisor spawned; never touches the runner (its
 * end is the supervisor's to handle: boot_finished()). */
static void *
starter_main(void *arg)
{
	struct exec_plugin *pl = arg;
	struct executor_set *s = pl->set;
	char err[512];
	int rc;

	LOCK_NOT_HELD(&s->lock);
	rc = exec_proc_boot(pl, pl->booting, err, sizeof(err));
	pthread_mutex_lock(&s->lock);
	pl->boot_rc = rc;
	if (rc != 0)
		snprintf(pl->boot_err, sizeof(pl->boot_err), "%s", err);
	pl->boot_done = true;
	exec_wake(s);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Under the lock, on the supervisor thread. Spawns a fresh executor for pl and
 * loads it on a thread of its own, as loading may take long; runs wait in
 * pending meanwhile. */
static void
start_replacement(struct exec_plugin *pl)
{
	struct executor_set *s = pl->set;
	char err[512];
	int rc;

	LOCK_HELD(&s->lock);
	if (pl->starting || s->stopping)
		return;
	/* Spawned here, on the supervisor thread, which lives as long as the
	 * executors: PR_SET_PDEATHSIG fires when the thread that forked exits. */
	pl->booting = exec_proc_spawn(pl, err, sizeof(err));
	if (pl->booting == NULL) {
		plugin_down(pl, EXEC_REASON_CRASH, err, clock_ms());
		log_err("plugin %s: cannot restart its executor: %s; next try in %d ms", pl->name,
		        err, pl->backoff_ms);
		return;
	}
	pl->starting = true;
	pl->down = false;
	pl->boot_done = false;
	if (!pl->loaded)
		pl->load_started = clock_ms();
	rc = pthread_create(&pl->starter, NULL, starter_main, pl);
	if (rc != 0) {
		exec_proc_kill(pl->booting);
		exec_proc_reap(pl->booting, 0);
		exec_proc_free(pl->booting);
		pl->booting = NULL;
		pl->starting = false;
		snprintf(err, sizeof(err), "cannot start a thread: %s", strerror(rc));
		plugin_down(pl, EXEC_REASON_CRASH, err, clock_ms());
		log_err("plugin %s: cannot restart its executor: %s", pl->name, err);
		return;
	}
	pl->starter_joinable = true;
}
