/* The command line: the input, split at NUL bytes, is the argument list of one subcommand (the
 * first byte picks which), run in an empty directory that is emptied again after each run.
 * Inputs holding '/', ".." or "fashion" are skipped and train gets "--data no-such-data" first (its
 * default is the installed Fashion-MNIST), so every file an argument names is missing (or made
 * by the same run) and no command gets past its checks into real work; what is fuzzed is the
 * option parsing and validation, and the early error paths. */
#define _GNU_SOURCE /* memmem, nftw */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/cli.h"

#define MAX_ARGS 64
#define TRAIN 4

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *f) {
    if (f->level > 0) remove(path);
    return 0;
}

static char dir[] = "/tmp/diffuse-fuzz-cli.XXXXXX";

static void remove_dir(void) {
    if (chdir("/") == 0) rmdir(dir);
}

/* libFuzzer is given absolute corpus and artifact paths (the Makefile does), so the change of
 * directory does not move them */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (!mkdtemp(dir) || chdir(dir) != 0) abort();
    atexit(remove_dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {{"info", cmd_info}, {"unet", cmd_unet}, {"bench", cmd_bench}, {"sample", cmd_sample}, {"train", cmd_train}};
    if (n < 1 || n > 4096 || memchr(data, '/', n) || memmem(data, n, "..", 2) || memmem(data, n, "fashion", 7)) return 0;
    char *buf = malloc(n); /* the arguments after the command byte, NUL-terminated */
    if (!buf) return 0;
    memcpy(buf, data + 1, n - 1);
    buf[n - 1] = '\0';
    char *argv[MAX_ARGS + 5];
    int argc = 0;
    argv[argc++] = "diffuse";
    argv[argc++] = (char *)cmds[data[0] % 5].name;
    if (data[0] % 5 == TRAIN) {
        argv[argc++] = "--data";
        argv[argc++] = "no-such-data";
    }
    for (size_t i = 0; i < n - 1 && argc < MAX_ARGS + 4; i += strlen(buf + i) + 1) argv[argc++] = buf + i;
    argv[argc] = NULL;
    cmds[data[0] % 5].run(argc, argv);
    free(buf);
    nftw(".", remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
