/*
 * Runs a fuzz target over files, without libFuzzer: every committed corpus
 * input (seeds and the inputs of crashes once found) becomes a regression
 * test in every build. Arguments are files or directories.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
	unsigned char *buf;
	size_t n;
	long len;
	FILE *f = fopen(path, "rb");

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
		perror(path);
		return -1;
	}
	rewind(f);
	buf = malloc((size_t)len + 1);
	n = fread(buf, 1, (size_t)len, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	int files = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == -1) {
			perror(argv[i]);
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			struct dirent *de;
			DIR *d = opendir(argv[i]);
			while (d != NULL && (de = readdir(d)) != NULL) {
				char path[4096];
				if (de->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
				if (run_file(path) == -1)
					return 1;
				files++;
			}
			if (d != NULL)
				closedir(d);
		} else {
			if (run_file(argv[i]) == -1)
				return 1;
			files++;
		}
	}
	printf("replayed %d input%s\n", files, files == 1 ? "" : "s");
	return files > 0 ? 0 : 1;
}
