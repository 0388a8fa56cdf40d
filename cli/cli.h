/* Shared pieces of the diffuse command-line program: option parsing and error reporting. */
#ifndef DFS_CLI_CLI_H
#define DFS_CLI_CLI_H

#include <stdio.h>

#include "diffuse.h"

/* One option of a subcommand. `value` names the argument in --help ("N", "FILE"); NULL for a
 * flag. */
typedef struct cli_opt {
    const char *lng;   /* "--threads" */
    const char *shrt;  /* "-t" or NULL */
    const char *value; /* "N", or NULL for a flag */
    const char *help;
} cli_opt;

/* Parsed arguments: for each option of the table, its value (or "1" for a set flag), else NULL. */
typedef struct cli_args {
    const char *vals[48];
    int help;
} cli_args;

/* Parses argv[first..] against opts. Returns 0, or prints one line to stderr and returns 2. */
int cli_parse(const char *cmd, const cli_opt *opts, int n_opts, int argc, char **argv, int first, cli_args *a);
void cli_usage(FILE *f, const char *usage, const char *about, const cli_opt *opts, int n_opts);
const char *cli_get(const cli_args *a, const cli_opt *opts, int n_opts, const char *lng);

/* Integer / float option values with range checks; print the error and return 2 on bad input. */
int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);
/* --dtype: f32 or bf16 (NULL: not given); prints the error and returns 2 on anything else. */
int cli_dtype(const char *cmd, const char *s);

/* Prints "diffuse CMD: MESSAGE" and returns the exit status for the status: 2 for bad input
 * (malformed files, bad arguments, unsupported configurations), 1 for anything else. */
int cli_fail(const char *cmd, dfs_ctx *ctx, dfs_status s);

int cmd_info(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_unet(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
