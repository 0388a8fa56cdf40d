/* Shared by the fuzz targets: input bytes to a private temporary file, for parsers that read files.
   The file lives in /dev/shm when there is one: a RAM file system makes a file-based target several
   times faster than one on disk (the inputs are tiny, the create/write/close is what costs). */
#ifndef DFS_FUZZ_COMMON_H
#define DFS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *fuzz_tmp_dir(void) {
    return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

static void fuzz_write(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

static const char *fuzz_to_file(const uint8_t *data, size_t n, const char *suffix) {
    static char path[256];
    snprintf(path, sizeof path, "%s/diffuse-fuzz.%d%s", fuzz_tmp_dir(), (int)getpid(), suffix);
    fuzz_write(path, data, n);
    return path;
}

#endif
