#include <string.h>

#include "io/json.h"
#include "test.h"

static dfs_status parse(dfs_ctx *ctx, const char *s, dfs_json **j) { return dfs_json_parse(ctx, s, strlen(s), "t.json", j); }

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_json *j = NULL;
    TEST_CHECK(parse(ctx, "{\"a\": [1, 2.5e1, -0.5], \"b\": {\"c\": null, \"d\": true}, \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"m\": -Infinity, \"n\": NaN}", &j) == DFS_OK);
    if (j) {
        const dfs_json *a = dfs_json_get(j, "a");
        TEST_CHECK(a && a->type == DFS_JSON_ARRAY && a->n_items == 3);
        if (a && a->n_items == 3) {
            TEST_NEAR(a->items[1].number, 25.0, 0);
            TEST_NEAR(a->items[2].number, -0.5, 0);
        }
        const dfs_json *d = dfs_json_get(dfs_json_get(j, "b"), "d");
        TEST_CHECK(d && d->type == DFS_JSON_BOOL && d->boolean);
        const dfs_json *s = dfs_json_get(j, "s");
        TEST_CHECK(s && strcmp(s->string, "x\xc3\xa9\xf0\x9f\x98\x80\n") == 0);
        const dfs_json *m = dfs_json_get(j, "m");
        TEST_CHECK(m && isinf(m->number) && m->number < 0);
        TEST_CHECK(isnan(dfs_json_get(j, "n")->number));
    }
    dfs_json_free(j);

    /* Duplicate keys: the last wins, as in Python. */
    TEST_CHECK(parse(ctx, "{\"k\": 1, \"k\": 2}", &j) == DFS_OK);
    TEST_CHECK(j && dfs_json_get(j, "k")->number == 2);
    dfs_json_free(j);

    const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "1e", "\"abc", "\"\\x\"", "\"\\ud800\"",
                         "\"\xff\"", "\"\xc0\xaf\"", "{} x", "[1 2]", "tru", "\"a\tb\"", "-", "\"\\u0000\"", "{1:2}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = NULL;
        int ok = parse(ctx, bad[i], &j) == DFS_ERR_FORMAT && j == NULL;
        if (!ok) fprintf(stderr, "accepted bad JSON #%zu\n", i);
        TEST_CHECK(ok);
        TEST_CHECK(strstr(dfs_errmsg(ctx), "t.json") != NULL);
    }
    /* Deep nesting is refused, not a stack overflow. */
    char deep[4001];
    memset(deep, '[', 4000);
    deep[4000] = 0;
    TEST_CHECK(parse(ctx, deep, &j) == DFS_ERR_FORMAT);
    TEST_CHECK(strstr(dfs_errmsg(ctx), "deeply") != NULL);

    /* Every allocation failure is reported, never crashes or leaks. */
    size_t live = dfs_alloc_live_bytes();
    for (long n = 1; n < 40; n++) {
        dfs_alloc_fail_at(n);
        dfs_status st = parse(ctx, "{\"a\": [1, 2, 3, 4, 5, 6], \"bb\": {\"c\": \"str\"}}", &j);
        dfs_alloc_fail_at(0);
        TEST_CHECK(st == DFS_OK || st == DFS_ERR_NOMEM);
        if (st == DFS_OK) dfs_json_free(j);
        TEST_CHECK(dfs_alloc_live_bytes() == live);
    }
    dfs_ctx_free(ctx);
    return test_summary("json");
}
