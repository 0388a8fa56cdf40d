/* Recursive-descent JSON parser (RFC 8259 plus NaN/Infinity) building a small tree. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "io/json.h"
#include "io/file.h"

typedef struct parser {
    dfs_ctx *ctx;
    const char *what;
    const unsigned char *s;
    size_t len, pos;
} parser;

static dfs_status perr(parser *p, const char *msg) {
    return dfs_fail(p->ctx, DFS_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", p->what, p->pos, msg);
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int match(parser *p, const char *lit) {
    size_t n = strlen(lit);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0) return 0;
    p->pos += n;
    return 1;
}

static void put_utf8(char *out, size_t *n, uint32_t cp) {
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xC0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xE0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*n)++] = (char)(0xF0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hex4(parser *p, uint32_t *v) {
    if (p->len - p->pos < 4) return 0;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos++];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        *v = *v * 16 + (uint32_t)d;
    }
    return 1;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t k;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) k = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) k = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) k = 4, cp = c & 0x07;
    else return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

static dfs_status parse_string(parser *p, char **out) {
    /* p->pos is just past the opening quote. The decoded string is never longer than the raw one. */
    size_t start = p->pos, end = start;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return perr(p, "unterminated string");
    char *buf = dfs_malloc(end - start + 1);
    if (!buf) return dfs_fail(p->ctx, DFS_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
    size_t n = 0;
    while (p->s[p->pos] != '"') {
        unsigned char c = p->s[p->pos];
        if (c < 0x20) { dfs_free(buf); return perr(p, "control character in string"); }
        if (c != '\\') {
            size_t k = utf8_len(p->s + p->pos, p->len - p->pos);
            if (k == 0) { dfs_free(buf); return perr(p, "string is not valid UTF-8"); }
            memcpy(buf + n, p->s + p->pos, k);
            n += k;
            p->pos += k;
            continue;
        }
        p->pos++;
        if (p->pos >= p->len) { dfs_free(buf); return perr(p, "unterminated string"); }
        c = p->s[p->pos++];
        uint32_t cp;
        switch (c) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u':
            if (!hex4(p, &cp)) { dfs_free(buf); return perr(p, "bad \\u escape"); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (!match(p, "\\u") || !hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    dfs_free(buf);
                    return perr(p, "unpaired surrogate in \\u escape");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
                dfs_free(buf);
                return perr(p, cp ? "unpaired surrogate in \\u escape" : "\\u0000 in string");
            }
            put_utf8(buf, &n, cp);
            break;
        default: dfs_free(buf); return perr(p, "bad escape in string");
        }
    }
    p->pos++; /* closing quote */
    buf[n] = 0;
    *out = buf;
    return DFS_OK;
}

static dfs_status parse_number(parser *p, double *out) {
    size_t start = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '-') p->pos++;
    if (match(p, "Infinity")) {
        *out = p->s[start] == '-' ? -INFINITY : INFINITY;
        return DFS_OK;
    }
    size_t int_start = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    if (p->pos == int_start) return perr(p, "expected a value");
    if (p->pos - int_start > 1 && p->s[int_start] == '0') return perr(p, "leading zero in number");
    if (p->pos < p->len && p->s[p->pos] == '.') {
        size_t f = ++p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == f) return perr(p, "digits expected after '.'");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        size_t e = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == e) return perr(p, "digits expected in exponent");
    }
    char tmp[64];
    size_t n = p->pos - start;
    if (n >= sizeof tmp) return perr(p, "number too long");
    memcpy(tmp, p->s + start, n);
    tmp[n] = 0;
    *out = strtod(tmp, NULL); /* overflow gives ±HUGE_VAL = ±inf, as Python's float() would */
    return DFS_OK;
}

static dfs_status parse_value(parser *p, dfs_json *v, int depth);

static dfs_status parse_container(parser *p, dfs_json *v, int depth, int is_object) {
    char close = is_object ? '}' : ']';
    size_t cap = 0;
    v->type = is_object ? DFS_JSON_OBJECT : DFS_JSON_ARRAY;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return DFS_OK;
    }
    for (;;) {
        if (v->n_items == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            dfs_json *items = dfs_realloc(v->items, dfs_mul_size(ncap, sizeof *items));
            if (!items) return dfs_fail(p->ctx, DFS_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
            memset(items + cap, 0, (ncap - cap) * sizeof *items);
            v->items = items;
            cap = ncap;
        }
        dfs_json *item = &v->items[v->n_items++];
        dfs_status st;
        skip_ws(p);
        if (is_object) {
            if (p->pos >= p->len || p->s[p->pos] != '"') return perr(p, "expected a key string");
            p->pos++;
            if ((st = parse_string(p, &item->key)) != DFS_OK) return st;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return perr(p, "expected ':'");
            p->pos++;
        }
        if ((st = parse_value(p, item, depth + 1)) != DFS_OK) return st;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return DFS_OK;
        }
        return perr(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static dfs_status parse_value(parser *p, dfs_json *v, int depth) {
    if (depth > DFS_JSON_MAX_DEPTH) return perr(p, "nested too deeply");
    skip_ws(p);
    if (p->pos >= p->len) return perr(p, "unexpected end of input");
    unsigned char c = p->s[p->pos];
    switch (c) {
    case '{': p->pos++; return parse_container(p, v, depth, 1);
    case '[': p->pos++; return parse_container(p, v, depth, 0);
    case '"': p->pos++; v->type = DFS_JSON_STRING; return parse_string(p, &v->string);
    default: break;
    }
    if (match(p, "null")) { v->type = DFS_JSON_NULL; return DFS_OK; }
    if (match(p, "true")) { v->type = DFS_JSON_BOOL; v->boolean = 1; return DFS_OK; }
    if (match(p, "false")) { v->type = DFS_JSON_BOOL; return DFS_OK; }
    if (match(p, "NaN")) { v->type = DFS_JSON_NUMBER; v->number = NAN; return DFS_OK; }
    v->type = DFS_JSON_NUMBER;
    return parse_number(p, &v->number);
}

static void free_children(dfs_json *j) {
    for (size_t i = 0; i < j->n_items; i++) free_children(&j->items[i]);
    dfs_free(j->items);
    dfs_free(j->string);
    dfs_free(j->key);
}

void dfs_json_free(dfs_json *j) {
    if (!j) return;
    free_children(j);
    dfs_free(j);
}

dfs_status dfs_json_parse(dfs_ctx *ctx, const char *text, size_t len, const char *what, dfs_json **out) {
    *out = NULL;
    dfs_json *root = dfs_calloc(1, sizeof *root);
    if (!root) return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory parsing JSON", what);
    parser p = {ctx, what, (const unsigned char *)text, len, 0};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p.pos = 3; /* a UTF-8 byte-order mark */
    dfs_status st = parse_value(&p, root, 0);
    if (st == DFS_OK) {
        skip_ws(&p);
        if (p.pos != p.len) st = perr(&p, "trailing characters after the value");
    }
    if (st != DFS_OK) {
        dfs_json_free(root);
        return st;
    }
    *out = root;
    return DFS_OK;
}

const dfs_json *dfs_json_get(const dfs_json *obj, const char *key) {
    if (!obj || obj->type != DFS_JSON_OBJECT) return NULL;
    for (size_t i = obj->n_items; i-- > 0;)
        if (strcmp(obj->items[i].key, key) == 0) return &obj->items[i];
    return NULL;
}

int dfs_json_is_int(const dfs_json *j) {
    return j && j->type == DFS_JSON_NUMBER && isfinite(j->number) && j->number == floor(j->number) &&
           fabs(j->number) < 9.0e15;
}

dfs_status dfs_json_load_file(dfs_ctx *ctx, const char *path, size_t max_bytes, dfs_json **out) {
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    dfs_status st = dfs_file_read_all(ctx, path, max_bytes, &text, &len);
    if (st != DFS_OK) return st;
    st = dfs_json_parse(ctx, text, len, path, out);
    dfs_free(text);
    return st;
}
