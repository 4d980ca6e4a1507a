/* file_modes.c - sshd's StrictModes: who besides root and healthd's own user
 * may write a plugin or its directory. */
#include "file_modes.h"

#include <grp.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether a user other than root and us may write st: another owner, the
 * world, or a group with anyone in it but us (a user-private group, as
 * umask 002 setups have, is ours alone). */
static bool
others_can_write(const struct stat *st, const char **why)
{
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		*why = "owned by another user";
		return true;
	}
	if (st->st_mode & S_IWOTH) {
		*why = "writable by everyone";
		return true;
	}
	if (st->st_mode & S_IWGRP) {
		struct group *g = st->st_gid == getegid() ? getgrgid(st->st_gid) : NULL;
		if (g == NULL || (g->gr_mem != NULL && g->gr_mem[0] != NULL)) {
			*why = "writable by its group";
			return true;
		}
	}
	return false;
}

int
file_modes_plugin(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *why, *slash = strrchr(path, '/');
	struct stat st;

	snprintf(dir, sizeof(dir), "%.*s", slash == NULL ? 1 : slash == path ? 1 : (int)(slash - path),
	         slash == NULL ? "." : path);
	if (stat(dir, &st) == 0 && others_can_write(&st, &why)) {
		snprintf(err, errlen, "plugin %s: refused: its directory %s is %s (mode %04o, uid %lu): "
		         "only root or healthd's own user may write where plugins load from", path, dir,
		         why, (unsigned)(st.st_mode & 07777), (unsigned long)st.st_uid);
		return -1;
	}
	if (stat(path, &st) == 0 && others_can_write(&st, &why)) {
		snprintf(err, errlen, "plugin %s: refused: it is %s (mode %04o, uid %lu): only root or "
		         "healthd's own user may write a plugin", path, why,
		         (unsigned)(st.st_mode & 07777), (unsigned long)st.st_uid);
		return -1;
	}
	return 0;
}
