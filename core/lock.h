/* lock.h - lock-held assertions, as SQLite's assert(sqlite3_mutex_held(m)):
 * the first line of a function that must be called with a mutex held says
 * so, and debug and sanitizer builds check it. Release builds (NDEBUG) and
 * C libraries other than glibc compile it away. */
#ifndef HEALTHD_LOCK_H
#define HEALTHD_LOCK_H

#include <assert.h>
#include <pthread.h>

#if !defined(NDEBUG) && defined(__GLIBC__)
#include <unistd.h>

/* True when the calling thread holds m. glibc records the owner's tid in
 * every mutex type it locks; the tid is cached per thread, since gettid()
 * is a system call. */
static inline int
lock_held(const pthread_mutex_t *m)
{
	static __thread pid_t self;

	if (self == 0)
		self = gettid();
	return m->__data.__owner == self;
}
#define LOCK_HELD(m)     assert(lock_held(m))
#define LOCK_NOT_HELD(m) assert(!lock_held(m))
#else
#define LOCK_HELD(m)     ((void)(m))
#define LOCK_NOT_HELD(m) ((void)(m))
#endif

#endif
