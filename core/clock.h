/*
 * clock.h - the host's two clocks in milliseconds: clock_ms() (CLOCK_MONOTONIC)
 * for every deadline, timeout and interval, and clock_wall_ms()
 * (CLOCK_REALTIME) for timestamps shown to people (and a jitter seed), never
 * for time spans. Not the only readers: the HTTP connection layer and the
 * executor's own main read CLOCK_MONOTONIC in microseconds, notify.c for
 * sd_notify's MONOTONIC_USEC, and timed waits on condition variables are set
 * to CLOCK_MONOTONIC. The host uses no other clock.
 */
#ifndef HEALTHD_CLOCK_H
#define HEALTHD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds since the epoch (CLOCK_REALTIME): never for deadlines. */
static inline int64_t
clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
