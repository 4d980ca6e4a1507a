/*
 * The ABI 1.2 deadline helpers of the host table, called as a plugin calls
 * them: time_left_ms() and wait_fd() (ready, deadline, cancelled, bad fd).
 */
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "plugin_loader.h"
#include "report.h"
#include "testing.h"

static int64_t
scaled(int64_t ms)
{
	const char *s = getenv("HEALTHD_TIME_SCALE");
	double k = s ? atof(s) : 1.0;

	return (int64_t)(ms * (k > 1.0 ? k : 1.0));
}

DEF_TEST(time_left)
{
	const struct healthd_host_api *api = plugin_host_api();
	struct healthd_report r = {.deadline_ms = clock_ms() + 10000};
	int64_t left = api->time_left_ms(&r);

	EXPECT_TRUE(HEALTHD_API_HAS(api, time_left_ms) && HEALTHD_API_HAS(api, wait_fd));
	EXPECT_TRUE(left > 0 && left <= 10000);
	r.deadline_ms = clock_ms() - 5;
	EXPECT_EQ_INT(0, api->time_left_ms(&r));
	return 0;
}

DEF_TEST(wait_ready)
{
	const struct healthd_host_api *api = plugin_host_api();
	struct healthd_report r = {.deadline_ms = clock_ms() + scaled(10000)};
	int sv[2], got;

	EXPECT_EQ_INT(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	EXPECT_EQ_INT(1, (int)write(sv[1], "x", 1));
	got = api->wait_fd(&r, sv[0], POLLIN);
	EXPECT_TRUE(got > 0 && (got & POLLIN));
	/* writable at once, too */
	got = api->wait_fd(&r, sv[0], POLLOUT);
	EXPECT_TRUE(got > 0 && (got & POLLOUT));
	close(sv[0]);
	close(sv[1]);
	return 0;
}

DEF_TEST(wait_until_deadline)
{
	const struct healthd_host_api *api = plugin_host_api();
	struct healthd_report r = {.deadline_ms = clock_ms() + 120};
	int sv[2], got;
	int64_t returned;

	EXPECT_EQ_INT(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	got = api->wait_fd(&r, sv[0], POLLIN); /* nothing ever comes */
	returned = clock_ms();
	EXPECT_EQ_INT(0, got);
	/* not before the deadline; the upper bound is only "it came back" */
	EXPECT_TRUE(returned >= r.deadline_ms);
	EXPECT_TRUE(returned < r.deadline_ms + scaled(5000));
	close(sv[0]);
	close(sv[1]);
	return 0;
}

DEF_TEST(wait_cancelled)
{
	const struct healthd_host_api *api = plugin_host_api();
	struct healthd_report r = {.deadline_ms = clock_ms() + scaled(60000)};
	int sv[2];
	int64_t t0;

	EXPECT_EQ_INT(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	atomic_store(&r.cancelled, true);
	t0 = clock_ms();
	EXPECT_EQ_INT(0, api->wait_fd(&r, sv[0], POLLIN));
	EXPECT_TRUE(clock_ms() - t0 < scaled(5000)); /* not the minute to the deadline */
	close(sv[0]);
	close(sv[1]);
	return 0;
}

DEF_TEST(wait_bad_fd)
{
	const struct healthd_host_api *api = plugin_host_api();
	struct healthd_report r = {.deadline_ms = clock_ms() + scaled(10000)};
	int sv[2], got;

	EXPECT_EQ_INT(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	close(sv[0]);
	close(sv[1]);
	got = api->wait_fd(&r, sv[0], POLLIN); /* closed: poll() says POLLNVAL */
	EXPECT_TRUE(got > 0 && (got & POLLNVAL));
	return 0;
}

int
main(void)
{
	RUN_TEST(time_left);
	RUN_TEST(wait_ready);
	RUN_TEST(wait_until_deadline);
	RUN_TEST(wait_cancelled);
	RUN_TEST(wait_bad_fd);
	END_TEST;
}
