/* file_modes.h - sshd's StrictModes for the files healthd loads code from. */
#ifndef HEALTHD_FILE_MODES_H
#define HEALTHD_FILE_MODES_H

#include <stddef.h>

/* Refuses a plugin at path, or in a directory, that a user other than root
 * and healthd's own may write: another owner, the world, or a group with
 * anyone else in it. Returns 0, or -1 with one line naming the path in err. */
int file_modes_plugin(const char *path, char *err, size_t errlen);

#endif
