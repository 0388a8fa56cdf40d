/* safetensors reader (mmap, validated) and writer. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file.h"
#include "io/json.h"
#include "io/safetensors.h"

struct dfs_safetensors {
    void *map;
    size_t map_len;
    dfs_st_tensor *tensors; /* (n) sorted by data offset */
    const dfs_st_tensor **by_name; /* (n) sorted by name */
    size_t n;
    char **meta;            /* (2·n_meta) key, value pairs */
    size_t n_meta;
};

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const dfs_st_tensor *const *)a)->name, (*(const dfs_st_tensor *const *)b)->name);
}

typedef struct span { size_t begin, end, idx; } span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int json_u64(const dfs_json *j, uint64_t max, uint64_t *out) {
    if (!dfs_json_is_int(j) || j->number < 0 || j->number > (double)max) return 0;
    *out = (uint64_t)j->number;
    return 1;
}

/* Validates one tensor entry of the header. */
static dfs_status parse_tensor(dfs_ctx *ctx, const char *path, const dfs_json *e, size_t data_len, dfs_st_tensor *t,
                               span *sp) {
    const char *name = e->key;
    if (e->type != DFS_JSON_OBJECT)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: header entry '%s' is not an object", path, name);
    const dfs_json *dt = dfs_json_get(e, "dtype"), *sh = dfs_json_get(e, "shape"), *off = dfs_json_get(e, "data_offsets");
    if (!dt || dt->type != DFS_JSON_STRING)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' has no dtype string", path, name);
    if (!dfs_dtype_from_name(dt->string, &t->dtype))
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%s'", path, name, dt->string);
    if (!sh || sh->type != DFS_JSON_ARRAY)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' has no shape list", path, name);
    if (sh->n_items > DFS_ST_MAX_DIMS)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' has %zu dimensions (at most %d)", path, name, sh->n_items,
                        DFS_ST_MAX_DIMS);
    t->ndim = (int)sh->n_items;
    size_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t v;
        if (!json_u64(&sh->items[d], (uint64_t)1 << 53, &v))
            return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' has a shape entry that is not a non-negative integer",
                            path, name);
        t->shape[d] = (int64_t)v;
        numel = dfs_mul_size(numel, (size_t)v);
    }
    size_t nbytes = dfs_mul_size(numel, dfs_dtype_size(t->dtype));
    if (numel == SIZE_MAX || nbytes == SIZE_MAX)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' has an impossibly large shape", path, name);
    uint64_t b, en;
    if (!off || off->type != DFS_JSON_ARRAY || off->n_items != 2 || !json_u64(&off->items[0], UINT64_MAX, &b) ||
        !json_u64(&off->items[1], UINT64_MAX, &en))
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' needs data_offsets [begin, end] of non-negative integers",
                        path, name);
    if (b > en || en > data_len)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' spans [%llu,%llu), outside the %zu data bytes", path, name,
                        (unsigned long long)b, (unsigned long long)en, data_len);
    if (en - b != nbytes)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' spans %llu bytes, but its %s shape needs %zu", path, name,
                        (unsigned long long)(en - b), dt->string, nbytes);
    t->numel = numel;
    t->nbytes = nbytes;
    sp->begin = (size_t)b;
    sp->end = (size_t)en;
    return DFS_OK;
}

static dfs_status parse_metadata(dfs_ctx *ctx, const char *path, const dfs_json *m, dfs_safetensors *st) {
    if (m->type != DFS_JSON_OBJECT)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: __metadata__ must be an object of strings", path);
    st->meta = dfs_calloc(2 * m->n_items + 1, sizeof(char *));
    if (!st->meta) return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < m->n_items; i++) {
        if (m->items[i].type != DFS_JSON_STRING)
            return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: __metadata__ value '%s' is not a string", path, m->items[i].key);
        st->meta[2 * i] = dfs_strdup(m->items[i].key);
        st->meta[2 * i + 1] = dfs_strdup(m->items[i].string);
        st->n_meta = i + 1;
        if (!st->meta[2 * i] || !st->meta[2 * i + 1]) return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", path);
    }
    return DFS_OK;
}

static dfs_status parse_header(dfs_ctx *ctx, const char *path, const dfs_json *h, const uint8_t *data, size_t data_len,
                               dfs_safetensors *st) {
    if (h->type != DFS_JSON_OBJECT) return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: the header is not a JSON object", path);
    size_t n = 0;
    for (size_t i = 0; i < h->n_items; i++) n += strcmp(h->items[i].key, "__metadata__") != 0;
    st->tensors = dfs_calloc(n ? n : 1, sizeof *st->tensors);
    st->by_name = dfs_calloc(n ? n : 1, sizeof *st->by_name);
    span *spans = dfs_calloc(n ? n : 1, sizeof *spans);
    dfs_st_tensor *tmp = dfs_calloc(n ? n : 1, sizeof *tmp);
    dfs_status s = DFS_OK;
    if (!st->tensors || !st->by_name || !spans || !tmp) {
        s = dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < h->n_items && !s; i++) {
        const dfs_json *e = &h->items[i];
        if (strcmp(e->key, "__metadata__") == 0) {
            if (st->meta) s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: __metadata__ appears twice", path);
            else s = parse_metadata(ctx, path, e, st);
            continue;
        }
        if ((s = parse_tensor(ctx, path, e, data_len, &tmp[k], &spans[k]))) break;
        tmp[k].name = e->key;
        spans[k].idx = k;
        k++;
    }
    if (s) goto done;
    /* The data must be covered exactly: sorted by offset, each tensor starts where the last ended. */
    qsort(spans, n, sizeof *spans, cmp_span);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (spans[i].begin != pos) {
            s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' starts at byte %zu, but the previous one ends at %zu (%s)",
                         path, tmp[spans[i].idx].name, spans[i].begin, pos, spans[i].begin < pos ? "overlap" : "gap");
            goto done;
        }
        pos = spans[i].end;
    }
    if (pos != data_len) {
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: the tensors cover %zu of the %zu data bytes", path, pos, data_len);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        dfs_st_tensor *t = &st->tensors[i];
        *t = tmp[spans[i].idx];
        t->data = data + spans[i].begin;
        t->name = dfs_strdup(t->name);
        if (!t->name) {
            s = dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        st->n = i + 1;
        st->by_name[i] = t;
    }
    qsort(st->by_name, n, sizeof *st->by_name, cmp_name);
    for (size_t i = 1; i < n; i++)
        if (strcmp(st->by_name[i]->name, st->by_name[i - 1]->name) == 0) {
            s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", path, st->by_name[i]->name);
            goto done;
        }
done:
    dfs_free(spans);
    dfs_free(tmp);
    return s;
}

dfs_status dfs_safetensors_open(dfs_ctx *ctx, const char *path, dfs_safetensors **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dfs_fail(ctx, DFS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return dfs_fail(ctx, DFS_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file", path, size);
    }
    dfs_safetensors *st = dfs_calloc(1, sizeof *st);
    if (!st) {
        close(fd);
        return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", path);
    }
    st->map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (st->map == MAP_FAILED) {
        st->map = NULL;
        dfs_safetensors_close(st);
        return dfs_fail(ctx, DFS_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    }
    st->map_len = size;
    const uint8_t *p = st->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    dfs_status s;
    dfs_json *h = NULL;
    if (hlen == 0 || hlen > size - 8) {
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: safetensors header length %llu does not fit in the %zu-byte file", path,
                     (unsigned long long)hlen, size);
    } else if (hlen > DFS_ST_MAX_HEADER) {
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: safetensors header of %llu bytes is larger than the %u allowed", path,
                     (unsigned long long)hlen, DFS_ST_MAX_HEADER);
    } else if ((s = dfs_json_parse(ctx, (const char *)p + 8, (size_t)hlen, path, &h)) == DFS_OK) {
        s = parse_header(ctx, path, h, p + 8 + hlen, size - 8 - (size_t)hlen, st);
    }
    dfs_json_free(h);
    if (s) {
        dfs_safetensors_close(st);
        return s;
    }
    *out = st;
    return DFS_OK;
}

size_t dfs_safetensors_count(const dfs_safetensors *st) { return st->n; }

const dfs_st_tensor *dfs_safetensors_at(const dfs_safetensors *st, size_t i) { return i < st->n ? &st->tensors[i] : NULL; }

const dfs_st_tensor *dfs_safetensors_find(const dfs_safetensors *st, const char *name) {
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->by_name[mid]->name, name);
        if (c == 0) return st->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *dfs_safetensors_metadata(const dfs_safetensors *st, const char *key) {
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

void dfs_safetensors_close(dfs_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) dfs_free((char *)st->tensors[i].name);
    for (size_t i = 0; i < 2 * st->n_meta; i++) dfs_free(st->meta[i]);
    dfs_free(st->meta);
    dfs_free(st->tensors);
    dfs_free(st->by_name);
    if (st->map) munmap(st->map, st->map_len);
    dfs_free(st);
}

dfs_status dfs_st_tensor_to_f32(dfs_ctx *ctx, const dfs_st_tensor *t, float *out) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case DFS_DTYPE_F32: memcpy(out, p, t->numel * 4); return DFS_OK;
    case DFS_DTYPE_F16:
        for (size_t i = 0; i < t->numel; i++) out[i] = dfs_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return DFS_OK;
    case DFS_DTYPE_BF16:
        for (size_t i = 0; i < t->numel; i++) out[i] = dfs_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return DFS_OK;
    default:
        return dfs_fail(ctx, DFS_ERR_UNSUPPORTED, "tensor '%s' is %s, not a floating-point type diffuse reads", t->name,
                        dfs_dtype_name(t->dtype));
    }
}

/* A growing string for the header. */
typedef struct sbuf { char *p; size_t len, cap; int oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = dfs_realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_string(sbuf *b, const char *s) {
    sb_str(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_str(b, esc);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_str(b, "\"");
}

dfs_status dfs_safetensors_write(dfs_ctx *ctx, const char *path, const dfs_st_entry *entries, size_t n,
                                 const char *const *metadata_kv) {
    sbuf h = {0};
    char num[64];
    size_t off = 0;
    sb_str(&h, "{");
    int first = 1;
    if (metadata_kv && metadata_kv[0]) {
        sb_str(&h, "\"__metadata__\":{");
        for (size_t i = 0; metadata_kv[i] && metadata_kv[i + 1]; i += 2) {
            if (i) sb_str(&h, ",");
            sb_json_string(&h, metadata_kv[i]);
            sb_str(&h, ":");
            sb_json_string(&h, metadata_kv[i + 1]);
        }
        sb_str(&h, "}");
        first = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const dfs_st_entry *e = &entries[i];
        size_t numel = 1;
        if (!first) sb_str(&h, ",");
        first = 0;
        sb_json_string(&h, e->name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, dfs_dtype_name(e->dtype));
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)e->shape[d]);
            sb_str(&h, num);
            numel *= (size_t)e->shape[d];
        }
        size_t nb = numel * dfs_dtype_size(e->dtype);
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        sb_str(&h, num);
        off += nb;
    }
    sb_str(&h, "}");
    while (!h.oom && h.len % 8) sb_str(&h, " ");
    if (h.oom) {
        dfs_free(h.p);
        return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", path);
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    dfs_out_file of;
    dfs_status s = dfs_out_open(ctx, path, &of);
    if (!s) s = dfs_out_write(ctx, &of, len8, 8);
    if (!s) s = dfs_out_write(ctx, &of, h.p, h.len);
    for (size_t i = 0; i < n && !s; i++) {
        size_t numel = 1;
        for (int d = 0; d < entries[i].ndim; d++) numel *= (size_t)entries[i].shape[d];
        s = dfs_out_write(ctx, &of, entries[i].data, numel * dfs_dtype_size(entries[i].dtype));
    }
    if (!s) s = dfs_out_commit(ctx, &of);
    else if (of.f) dfs_out_abort(&of);
    dfs_free(h.p);
    return s;
}
