/* .npy reader and writer. The header is a Python dict literal; it is parsed strictly (the keys
 * descr, fortran_order and shape, nothing else) rather than evaluated. */
#include <errno.h>
#include <string.h>

#include "io/file.h"
#include "io/npy.h"

#define NPY_MAX_BYTES ((size_t)1 << 36)

static const struct { const char *descr; dfs_dtype t; } descrs[] = {
    {"f4", DFS_DTYPE_F32}, {"f8", DFS_DTYPE_F64}, {"f2", DFS_DTYPE_F16}, {"i8", DFS_DTYPE_I64},
    {"i4", DFS_DTYPE_I32}, {"i2", DFS_DTYPE_I16}, {"i1", DFS_DTYPE_I8},  {"u1", DFS_DTYPE_U8}, {"b1", DFS_DTYPE_BOOL},
};

typedef struct hdr { const char *s, *end; } hdr;

static void skip_sp(hdr *h) {
    while (h->s < h->end && (*h->s == ' ' || *h->s == '\t')) h->s++;
}

static int eat(hdr *h, char c) {
    skip_sp(h);
    if (h->s < h->end && *h->s == c) {
        h->s++;
        return 1;
    }
    return 0;
}

/* A quoted Python string (no escapes needed for these keys) into buf. */
static int py_str(hdr *h, char *buf, size_t size) {
    skip_sp(h);
    if (h->s >= h->end || (*h->s != '\'' && *h->s != '"')) return 0;
    char q = *h->s++;
    size_t n = 0;
    while (h->s < h->end && *h->s != q) {
        if (n + 1 >= size) return 0;
        buf[n++] = *h->s++;
    }
    if (h->s >= h->end) return 0;
    h->s++;
    buf[n] = 0;
    return 1;
}

static dfs_status parse_header(dfs_ctx *ctx, const char *path, const char *text, size_t len, dfs_npy *a) {
    hdr h = {text, text + len};
    int have_descr = 0, have_order = 0, have_shape = 0;
    char key[32], val[32];
    if (!eat(&h, '{')) goto bad;
    while (!eat(&h, '}')) {
        if (!py_str(&h, key, sizeof key) || !eat(&h, ':')) goto bad;
        if (strcmp(key, "descr") == 0) {
            if (!py_str(&h, val, sizeof val)) goto bad;
            char order = val[0];
            size_t k = 0;
            while (k < sizeof descrs / sizeof *descrs && strcmp(val + 1, descrs[k].descr) != 0) k++;
            if (k == sizeof descrs / sizeof *descrs || (order != '<' && order != '|' && order != '='))
                return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: unsupported dtype '%s' (%s)", path, val,
                                order == '>' ? "big-endian" : "diffuse reads little-endian numbers and bools");
            if (order == '|' && dfs_dtype_size(descrs[k].t) != 1) goto bad;
            a->dtype = descrs[k].t;
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            skip_sp(&h);
            if ((size_t)(h.end - h.s) >= 5 && memcmp(h.s, "False", 5) == 0) {
                h.s += 5;
            } else if ((size_t)(h.end - h.s) >= 4 && memcmp(h.s, "True", 4) == 0) {
                return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: Fortran-order arrays are not supported (save it C-contiguous)", path);
            } else {
                goto bad;
            }
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!eat(&h, '(')) goto bad;
            a->ndim = 0;
            while (!eat(&h, ')')) {
                skip_sp(&h);
                if (a->ndim == DFS_NPY_MAX_DIMS)
                    return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: more than %d dimensions", path, DFS_NPY_MAX_DIMS);
                int64_t v = 0;
                int digits = 0;
                while (h.s < h.end && *h.s >= '0' && *h.s <= '9') {
                    if (v > ((int64_t)1 << 50)) return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: absurd shape", path);
                    v = v * 10 + (*h.s++ - '0');
                    digits++;
                }
                if (h.s < h.end && *h.s == 'L') h.s++; /* Python 2 longs */
                if (!digits) goto bad;
                a->shape[a->ndim++] = v;
                if (!eat(&h, ',')) {
                    if (!eat(&h, ')')) goto bad;
                    break;
                }
            }
            have_shape = 1;
        } else {
            return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: unexpected key '%s' in the .npy header", path, key);
        }
        if (!eat(&h, ',')) {
            if (!eat(&h, '}')) goto bad;
            break;
        }
    }
    skip_sp(&h);
    while (h.s < h.end && (*h.s == '\n' || *h.s == ' ')) h.s++;
    if (h.s != h.end || !have_descr || !have_order || !have_shape) goto bad;
    return DFS_OK;
bad:
    return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: malformed .npy header", path);
}

dfs_status dfs_npy_read(dfs_ctx *ctx, const char *path, dfs_npy *out) {
    memset(out, 0, sizeof *out);
    char *buf = NULL;
    size_t len = 0;
    dfs_status s = dfs_file_read_all(ctx, path, NPY_MAX_BYTES, &buf, &len);
    if (s) return s;
    const uint8_t *p = (const uint8_t *)buf;
    size_t hlen, start;
    if (len < 10 || memcmp(p, "\x93NUMPY", 6) != 0) {
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
        goto fail;
    }
    if (p[6] == 1 && p[7] == 0) {
        hlen = (size_t)p[8] | (size_t)p[9] << 8;
        start = 10;
    } else if ((p[6] == 2 || p[6] == 3) && p[7] == 0 && len >= 12) {
        hlen = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
        start = 12;
    } else {
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: unsupported .npy version %d.%d", path, p[6], p[7]);
        goto fail;
    }
    if (hlen > len - start) {
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: .npy header length %zu runs past the end of the file", path, hlen);
        goto fail;
    }
    if ((s = parse_header(ctx, path, buf + start, hlen, out))) goto fail;
    size_t numel = 1;
    for (int d = 0; d < out->ndim; d++) numel = dfs_mul_size(numel, (size_t)out->shape[d]);
    size_t nbytes = dfs_mul_size(numel, dfs_dtype_size(out->dtype));
    size_t have = len - start - hlen;
    if (nbytes != have) {
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: the header's shape needs %zu data bytes, the file has %zu", path, nbytes, have);
        goto fail;
    }
    out->numel = numel;
    out->data = dfs_malloc(nbytes ? nbytes : 1);
    if (!out->data) {
        s = dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    memcpy(out->data, p + start + hlen, nbytes);
    dfs_free(buf);
    return DFS_OK;
fail:
    dfs_free(buf);
    memset(out, 0, sizeof *out);
    return s;
}

void dfs_npy_free(dfs_npy *a) {
    dfs_free(a->data);
    a->data = NULL;
}

dfs_status dfs_npy_write(dfs_ctx *ctx, const char *path, dfs_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    const char *descr = NULL;
    for (size_t k = 0; k < sizeof descrs / sizeof *descrs; k++)
        if (descrs[k].t == dtype) descr = descrs[k].descr;
    if (!descr || ndim < 0 || ndim > DFS_NPY_MAX_DIMS)
        return dfs_fail(ctx, DFS_ERR_ARG, "%s: cannot write a %d-dimensional %s array", path, ndim, dfs_dtype_name(dtype));
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                     dfs_dtype_size(dtype) == 1 ? '|' : '<', descr);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%lld%s", (long long)shape[d], ndim == 1 ? "," : d + 1 < ndim ? ", " : "");
        numel *= (size_t)shape[d];
    }
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
    size_t total = 10 + (size_t)n + 1; /* magic, version, length, dict, newline */
    size_t pad = (64 - total % 64) % 64;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hl = (size_t)n + pad + 1;
    pre[8] = (uint8_t)hl;
    pre[9] = (uint8_t)(hl >> 8);
    memset(hdr + n, ' ', pad);
    hdr[n + pad] = '\n';
    dfs_out_file of;
    dfs_status s = dfs_out_open(ctx, path, &of);
    if (s) return s;
    if (!(s = dfs_out_write(ctx, &of, pre, sizeof pre)) && !(s = dfs_out_write(ctx, &of, hdr, hl)) &&
        !(s = dfs_out_write(ctx, &of, data, numel * dfs_dtype_size(dtype))))
        return dfs_out_commit(ctx, &of);
    dfs_out_abort(&of);
    return s;
}
