/* dirlist.c - directory listings in file-name order, for plugin_dir (*.so) and
 * checks_dir (*.json) alike; and the plugin directory's walk. */
#include "dirlist.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PLUGIN_SUFFIX ".so"

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
dirlist_read(struct dirlist *l, const char *dir, const char *suffix)
{
	size_t slen = strlen(suffix), cap = 0;
	struct dirent *de;
	DIR *d;

	*l = (struct dirlist){0};
	d = opendir(dir);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len <= slen || de->d_name[0] == '.' || strcmp(de->d_name + len - slen, suffix) != 0)
			continue;
		if (l->n == cap) {
			char **grown = realloc(l->paths, (cap = cap ? cap * 2 : 16) * sizeof(*l->paths));
			if (grown == NULL)
				goto oom;
			l->paths = grown;
		}
		if (asprintf(&l->paths[l->n], "%s/%s", dir, de->d_name) == -1)
			goto oom;
		l->n++;
	}
	closedir(d);
	/* same directory prefix everywhere, so this sorts by file name */
	if (l->n > 1) /* an empty directory has no array to sort */
		qsort(l->paths, l->n, sizeof(*l->paths), by_name);
	return 0;
oom:
	closedir(d);
	dirlist_free(l);
	errno = ENOMEM;
	return -1;
}

void
dirlist_free(struct dirlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->paths[i]);
	free(l->paths);
	*l = (struct dirlist){0};
}

int
dirlist_plugins(const char *dir,
                int (*each)(void *arg, const char *path, const char *base, size_t stem,
                            const struct stat *st, char *err, size_t errlen),
                void *arg, char *err, size_t errlen)
{
	struct dirlist files;
	int rc = 0;

	if (dirlist_read(&files, dir, PLUGIN_SUFFIX) == -1) {
		snprintf(err, errlen, "plugin_dir %s: cannot open: %s", dir, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < files.n && rc == 0; i++) {
		const char *path = files.paths[i], *base = strrchr(path, '/');
		struct stat st;

		base = base ? base + 1 : path;
		/* what stat() cannot read, dlopen() cannot load: say why here */
		if (stat(path, &st) == -1) {
			snprintf(err, errlen, "plugin %s: refused: %s", path, strerror(errno));
			rc = -1;
		} else if (!S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "plugin %s: refused: not a regular file", path);
			rc = -1;
		} else {
			rc = each(arg, path, base, strlen(base) - strlen(PLUGIN_SUFFIX), &st, err,
			          errlen);
		}
	}
	dirlist_free(&files);
	return rc;
}
