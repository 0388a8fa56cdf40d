/* The diffuse command-line program: dispatches to the subcommands in cli/cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *about;
} commands[] = {
    {"sample", cmd_sample, "generate images with a model and a sampler"},
    {"train", cmd_train, "train a model on images (idx files or PNG directories)"},
    {"info", cmd_info, "describe a model: architecture, parameters, FLOPs"},
    {"unet", cmd_unet, "run the network once on .npy inputs"},
    {"bench", cmd_bench, "time forward passes of a model"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: diffuse <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].about);
    fprintf(f, "\n'diffuse <command> --help' describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc, argv);
    fprintf(stderr, "diffuse: unknown command '%s' (see 'diffuse --help')\n", argv[1]);
    return 2;
}
