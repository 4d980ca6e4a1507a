/* dirlist.h - a directory's files with one suffix, in file-name order. */
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

#endif
