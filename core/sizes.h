/* sizes.h - buffer sizes that several files must agree on, named once.
 * Each counts the terminating NUL. */
#ifndef HEALTHD_SIZES_H
#define HEALTHD_SIZES_H

/* A plugin's descriptor strings as the host keeps them: longer ones are cut.
 * The executor protocol carries them at these sizes, so both ends use these. */
#define PLUGIN_NAME_SIZE        33  /* 32 bytes: plugin names are short ids */
#define PLUGIN_VERSION_SIZE     64
#define PLUGIN_DESCRIPTION_SIZE 256

/* One line of error text handed back to a caller that logs or prints it. */
#define ERR_SIZE 256

#endif
