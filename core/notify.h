/*
 * notify.h - tells the service manager how healthd is doing, by the
 * sd_notify(3) protocol: one datagram of NAME=VALUE lines to $NOTIFY_SOCKET.
 *
 * READY=1 once healthd listens, STATUS= with the isolated plugins still
 * loading, the number of checks and of failing ones (kept current), WATCHDOG=1 every WATCHDOG_USEC/2 while the
 * runner answers, STOPPING=1 when shutdown begins. Without $NOTIFY_SOCKET
 * (not started by systemd as Type=notify) every call does nothing.
 */
#ifndef HEALTHD_NOTIFY_H
#define HEALTHD_NOTIFY_H

#include "registry.h"
#include "runner.h"

struct notify;

/*
 * Sends READY=1 and the first STATUS= (loading: as notify_loading), then starts one thread that keeps
 * STATUS= current and sends WATCHDOG=1 when the manager asked for it. Call
 * on the main thread once the server listens; runner must outlive
 * notify_stopping(). NULL when there is nothing to notify (a failure to
 * reach the socket is logged once and is not fatal).
 */
struct notify *notify_ready(struct runner *runner, const char *loading);
/* Main thread: the isolated plugins still loading ("http, postgres"; NULL or
 * "" once none), sent in STATUS= at once and kept in it. NULL n is fine. */
void notify_loading(struct notify *n, const char *loading);

/* Around a reload (SIGHUP): RELOADING=1 with MONOTONIC_USEC=, then READY=1
 * and the new STATUS=, as systemd.service(5) describes for reloads. NULL is
 * fine. */
void notify_reloading(struct notify *n);
void notify_reloaded(struct notify *n);

/* Sends STOPPING=1, stops the thread and frees n. NULL is fine. */
void notify_stopping(struct notify *n);

#endif
