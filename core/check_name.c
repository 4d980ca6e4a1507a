/* check_name.c - what a check's name may be: the one rule for the config,
 * the registry and the plugins' own checks. */
#include "check_name.h"

#include <string.h>

const char *
check_name_error(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return "a check name must not be empty";
	if (len > CHECK_NAME_MAX)
		return "a check name has at most 64 characters";
	if (name[0] == '_')
		return "check names starting with '_' are reserved (like \"_defaults\")";
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == ':' || ch == '-'))
			return "a check name may only contain letters, digits and _ . : -";
	}
	return NULL;
}
