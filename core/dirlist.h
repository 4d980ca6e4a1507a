/* dirlist.h - a directory's files with one suffix, in file-name order; and the
 * plugin directory's walk, with its one stat policy. */
#ifndef HEALTHD_DIRLIST_H
#define HEALTHD_DIRLIST_H

#include <stddef.h>

struct dirlist {
	char **paths; /* "DIR/NAME", sorted by NAME with strcmp: deterministic order */
	size_t n;
};

/* Lists dir's entries named "*SUFFIX" (hidden ones left out). Returns 0, or
 * -1 with errno set (opendir's, or ENOMEM). */
int dirlist_read(struct dirlist *l, const char *dir, const char *suffix);
void dirlist_free(struct dirlist *l);

struct stat;
/*
 * The plugin directory's walk, startup's and reload's alike: every "*.so" of
 * dir in file-name order, each stat()ed and refused unless it is a regular
 * file (one stat() cannot read is refused with its reason). each() gets the
 * path, the file name, that name's length without ".so", and the stat; the
 * walk stops at the first non-zero return. Returns 0, or what each() or the
 * walk failed with (-1), with one line in err.
 */
int dirlist_plugins(const char *dir,
                    int (*each)(void *arg, const char *path, const char *base, size_t stem,
                                const struct stat *st, char *err, size_t errlen),
                    void *arg, char *err, size_t errlen);

#endif
