/* crash.c - the fatal-signal line: which plugin's code was running. */
#include "crash.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CRASH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CRASH_SANITIZED 1
#endif
#endif

/* initial-exec TLS in the executable: safe to read in a signal handler */
static __thread const char *cur_plugin;
static __thread const char *cur_check;
static void (*reporter)(const char *check);

const char *
crash_current_check(void)
{
	return cur_check;
}

void
crash_set_reporter(void (*fn)(const char *check))
{
	reporter = fn;
}

void
crash_enter(const char *plugin, const char *check)
{
	cur_plugin = plugin;
	cur_check = check;
}

void
crash_leave(void)
{
	cur_plugin = NULL;
	cur_check = NULL;
}

/* Only async-signal-safe calls from here on: write(2), then re-raise. */
static void
append(char *buf, size_t *n, size_t cap, const char *s)
{
	while (*s != '\0' && *n < cap - 1)
		buf[(*n)++] = *s++;
}

static void
on_fatal(int sig)
{
	char line[512];
	size_t n = 0;
	const char *abbrev = sigabbrev_np(sig);

	if (cur_plugin != NULL && reporter != NULL) {
		/* in an executor: the server says it, with the plugin's file */
		if (cur_check != NULL)
			reporter(cur_check);
	} else if (cur_plugin != NULL) {
		append(line, &n, sizeof(line), "healthd: error: fatal SIG");
		append(line, &n, sizeof(line), abbrev ? abbrev : "?");
		append(line, &n, sizeof(line), " in plugin ");
		append(line, &n, sizeof(line), cur_plugin);
		if (cur_check != NULL) {
			append(line, &n, sizeof(line), " during check \"");
			append(line, &n, sizeof(line), cur_check);
			append(line, &n, sizeof(line), "\"");
		}
		line[n++] = '\n';
		(void)!write(STDERR_FILENO, line, n);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* exit() called on a thread in plugin code: in the server nothing else would
 * say why healthd ended (an executor's reporter tells the server instead). */
static void
on_exit_in_plugin(void)
{
	if (cur_plugin == NULL || reporter != NULL)
		return;
	if (cur_check != NULL)
		log_err("plugin %s called exit() during check \"%s\": healthd ends", cur_plugin,
		        cur_check);
	else
		log_err("plugin %s called exit(): healthd ends", cur_plugin);
}

void
crash_install(bool always)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	struct sigaction sa;

	atexit(on_exit_in_plugin);
#ifdef CRASH_SANITIZED
	if (!always)
		return;
#else
	(void)always;
#endif
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}
