/* Option parsing for the subcommands: --long VALUE, --long=VALUE, -s VALUE, and flags. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_parse(const char *cmd, const cli_opt *opts, int n_opts, int argc, char **argv, int first, cli_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = 1;
            continue;
        }
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        int k = 0;
        for (; k < n_opts; k++)
            if ((strlen(opts[k].lng) == name_len && strncmp(opts[k].lng, arg, name_len) == 0) ||
                (!eq && opts[k].shrt && strcmp(opts[k].shrt, arg) == 0))
                break;
        if (k == n_opts) {
            fprintf(stderr, "diffuse %s: %s '%s' (see 'diffuse %s --help')\n", cmd,
                    arg[0] == '-' ? "unknown option" : "unexpected argument", arg, cmd);
            return 2;
        }
        if (!opts[k].value) {
            if (eq) {
                fprintf(stderr, "diffuse %s: option %s takes no value\n", cmd, opts[k].lng);
                return 2;
            }
            a->vals[k] = "1";
        } else if (eq) {
            a->vals[k] = eq + 1;
        } else {
            if (i + 1 >= argc) {
                fprintf(stderr, "diffuse %s: option %s needs a value (%s)\n", cmd, opts[k].lng, opts[k].value);
                return 2;
            }
            a->vals[k] = argv[++i];
        }
    }
    return 0;
}

const char *cli_get(const cli_args *a, const cli_opt *opts, int n_opts, const char *lng) {
    for (int k = 0; k < n_opts; k++)
        if (strcmp(opts[k].lng, lng) == 0) return a->vals[k];
    return NULL;
}

void cli_usage(FILE *f, const char *usage, const char *about, const cli_opt *opts, int n_opts) {
    fprintf(f, "usage: %s\n\n%s\n\noptions:\n", usage, about);
    for (int k = 0; k < n_opts; k++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s%s%s", opts[k].shrt ? opts[k].shrt : "", opts[k].shrt ? ", " : "",
                 opts[k].lng, opts[k].value ? " " : "", opts[k].value ? opts[k].value : "");
        fprintf(f, "  %-26s %s\n", left, opts[k].help);
    }
    fprintf(f, "  %-26s %s\n", "-h, --help", "show this help");
}

int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "diffuse %s: %s must be an integer from %ld to %ld, not '%s'\n", cmd, opt, lo, hi, s);
        return 2;
    }
    *out = v;
    return 0;
}

int cli_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "diffuse %s: %s must be a number from %g to %g, not '%s'\n", cmd, opt, lo, hi, s);
        return 2;
    }
    *out = v;
    return 0;
}

int cli_fail(const char *cmd, dfs_ctx *ctx, dfs_status s) {
    fprintf(stderr, "diffuse %s: %s\n", cmd, dfs_errmsg(ctx));
    switch (s) {
    case DFS_ERR_FORMAT:
    case DFS_ERR_SHAPE:
    case DFS_ERR_ARG:
    case DFS_ERR_UNSUPPORTED: return 2;
    default: return 1;
    }
}

int cli_dtype(const char *cmd, const char *s) {
    if (!s || strcmp(s, "f32") == 0 || strcmp(s, "bf16") == 0) return 0;
    fprintf(stderr, "diffuse %s: --dtype must be f32 or bf16, not '%s'\n", cmd, s);
    return 2;
}
