/*
 * nounshare - runs a command unable to create namespaces, as Docker's default
 * seccomp profile leaves a server: unshare(2) and clone(2) with CLONE_NEWUSER
 * fail with EPERM. For the sandbox tests' "namespaces missing" case.
 *
 *     nounshare healthd --config ...
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);

	if (argc < 2 || ctx == NULL ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
	                     SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)) != 0 ||
	    seccomp_load(ctx) != 0) {
		fprintf(stderr, "usage: nounshare COMMAND [ARG...] (seccomp: %d)\n", errno);
		return 2;
	}
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
