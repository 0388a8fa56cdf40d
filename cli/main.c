/* The diffuse command-line program. */
#include <stdio.h>
#include <string.h>

#include "diffuse.h"

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        printf("usage: diffuse <command> [options]\n");
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "diffuse: unknown command '%s'\n", argv[1]);
    return 2;
}
