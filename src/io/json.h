/* A small, strict JSON reader for configs and safetensors headers. Input is untrusted: nesting
 * depth, UTF-8 and number syntax are checked. Python's json module also writes the bare tokens
 * NaN, Infinity and -Infinity (scheduler configs contain -Infinity), so they are accepted. */
#ifndef DFS_IO_JSON_H
#define DFS_IO_JSON_H

#include "core/internal.h"

typedef enum dfs_json_type {
    DFS_JSON_NULL,
    DFS_JSON_BOOL,
    DFS_JSON_NUMBER,
    DFS_JSON_STRING,
    DFS_JSON_ARRAY,
    DFS_JSON_OBJECT
} dfs_json_type;

typedef struct dfs_json {
    dfs_json_type type;
    int boolean;
    double number;
    char *string;          /* STRING: UTF-8, NUL-terminated (\u0000 is refused) */
    char *key;             /* member of an OBJECT: its key; else NULL */
    struct dfs_json *items; /* ARRAY / OBJECT: (n_items) children in file order */
    size_t n_items;
} dfs_json;

#define DFS_JSON_MAX_DEPTH 64

/* Parses text[0..len). `what` names the source in error messages (a path). */
dfs_status dfs_json_parse(dfs_ctx *ctx, const char *text, size_t len, const char *what, dfs_json **out);
void dfs_json_free(dfs_json *j);

/* Member of an object by key (the last one, as Python's json keeps), or NULL. */
const dfs_json *dfs_json_get(const dfs_json *obj, const char *key);

/* Reads a whole file (at most max_bytes) and parses it. */
dfs_status dfs_json_load_file(dfs_ctx *ctx, const char *path, size_t max_bytes, dfs_json **out);

/* Whether a number is integral and fits an int64 / int. */
int dfs_json_is_int(const dfs_json *j);

#endif
