/* Shared by the fuzz targets: input bytes to a private temporary file, for parsers that read files. */
#ifndef DFS_FUZZ_COMMON_H
#define DFS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *fuzz_to_file(const uint8_t *data, size_t n, const char *suffix) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/diffuse-fuzz.%d%s", (int)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
    return path;
}

#endif
