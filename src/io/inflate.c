/* DEFLATE decoding (RFC 1951) and the gzip and zlib wrappers (RFC 1952, 1950), for .gz datasets
 * and PNG input. Input is untrusted: every read is bounds-checked, code lengths are validated
 * (no over-subscribed or incomplete trees except as the RFC allows), back-references may not
 * reach before the start, and the output has a size cap. */
#include <string.h>

#include "io/inflate.h"
#include "io/png.h"

typedef struct bits {
    const uint8_t *p;
    size_t n, pos; /* byte position */
    uint32_t acc;
    int cnt;
    int overrun;
} bits;

static uint32_t getbits(bits *b, int need) {
    while (b->cnt < need) {
        if (b->pos >= b->n) {
            b->overrun = 1;
            return 0;
        }
        b->acc |= (uint32_t)b->p[b->pos++] << b->cnt;
        b->cnt += 8;
    }
    const uint32_t v = need ? b->acc & ((1u << need) - 1) : 0;
    b->acc >>= need;
    b->cnt -= need;
    return v;
}

/* Canonical Huffman decoding table: counts per length and symbols sorted by code. */
typedef struct huff {
    uint16_t count[16];
    uint16_t symbol[320];
} huff;

/* Builds the table; returns 0 when the lengths over-subscribe the code space, 1 otherwise.
 * (An incomplete code is allowed: decoding then fails only if an unused code appears.) */
static int build(huff *h, const uint8_t *len, int n) {
    memset(h->count, 0, sizeof h->count);
    for (int i = 0; i < n; i++) h->count[len[i]]++;
    h->count[0] = 0;
    int left = 1;
    for (int l = 1; l < 16; l++) {
        left <<= 1;
        left -= h->count[l];
        if (left < 0) return 0;
    }
    uint16_t offs[16];
    offs[1] = 0;
    for (int l = 1; l < 15; l++) offs[l + 1] = (uint16_t)(offs[l] + h->count[l]);
    for (int i = 0; i < n; i++)
        if (len[i]) h->symbol[offs[len[i]]++] = (uint16_t)i;
    return 1;
}

static int decode(bits *b, const huff *h) {
    int code = 0, first = 0, index = 0;
    for (int l = 1; l < 16; l++) {
        code |= (int)getbits(b, 1);
        if (b->overrun) return -1;
        const int count = h->count[l];
        if (code - count < first) return h->symbol[index + (code - first)];
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

typedef struct outbuf {
    uint8_t *p;
    size_t n, cap, max;
} outbuf;

static int put(outbuf *o, uint8_t v) {
    if (o->n == o->cap) {
        if (o->cap >= o->max) return 0;
        size_t cap = o->cap ? o->cap * 2 : 1 << 16;
        if (cap > o->max) cap = o->max;
        uint8_t *q = dfs_realloc(o->p, cap);
        if (!q) return -1;
        o->p = q;
        o->cap = cap;
    }
    o->p[o->n++] = v;
    return 1;
}

static const uint16_t len_base[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/* Decodes one compressed block's symbols. Returns NULL on success or a reason. */
static const char *codes(bits *b, outbuf *o, const huff *lit, const huff *dist) {
    for (;;) {
        const int sym = decode(b, lit);
        if (sym < 0) return "bad literal/length code";
        if (sym < 256) {
            const int r = put(o, (uint8_t)sym);
            if (r <= 0) return r < 0 ? "out of memory" : "output larger than allowed";
        } else if (sym == 256) {
            return NULL;
        } else {
            const int li = sym - 257;
            if (li >= 29) return "bad length symbol";
            const size_t len = len_base[li] + getbits(b, len_extra[li]);
            const int ds = decode(b, dist);
            if (ds < 0 || ds >= 30) return "bad distance code";
            const size_t d = dist_base[ds] + getbits(b, dist_extra[ds]);
            if (b->overrun) return "truncated";
            if (d > o->n) return "distance reaches before the start";
            for (size_t k = 0; k < len; k++) {
                const int r = put(o, o->p[o->n - d]);
                if (r <= 0) return r < 0 ? "out of memory" : "output larger than allowed";
            }
        }
    }
}

static const char *dynamic(bits *b, huff *lit, huff *dist) {
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    uint8_t lens[320];
    const int nlen = (int)getbits(b, 5) + 257, ndist = (int)getbits(b, 5) + 1, ncode = (int)getbits(b, 4) + 4;
    if (b->overrun) return "truncated";
    if (nlen > 286 || ndist > 30) return "bad code counts";
    memset(lens, 0, sizeof lens);
    for (int i = 0; i < ncode; i++) lens[order[i]] = (uint8_t)getbits(b, 3);
    huff lencode;
    if (!build(&lencode, lens, 19)) return "bad code-length code";
    int i = 0;
    while (i < nlen + ndist) {
        int sym = decode(b, &lencode);
        if (sym < 0) return "bad code-length symbol";
        if (sym < 16) {
            lens[i++] = (uint8_t)sym;
            continue;
        }
        uint8_t v = 0;
        int rep;
        if (sym == 16) {
            if (i == 0) return "repeat with no previous length";
            v = lens[i - 1];
            rep = 3 + (int)getbits(b, 2);
        } else if (sym == 17) {
            rep = 3 + (int)getbits(b, 3);
        } else {
            rep = 11 + (int)getbits(b, 7);
        }
        if (i + rep > nlen + ndist) return "too many code lengths";
        while (rep--) lens[i++] = v;
    }
    if (b->overrun) return "truncated";
    if (lens[256] == 0) return "no end-of-block code";
    if (!build(lit, lens, nlen) || !build(dist, lens + nlen, ndist)) return "over-subscribed code";
    return NULL;
}

static const char *inflate_raw(bits *b, outbuf *o) {
    int last;
    do {
        last = (int)getbits(b, 1);
        const int type = (int)getbits(b, 2);
        if (b->overrun) return "truncated";
        const char *err = NULL;
        if (type == 0) {
            b->acc = 0;
            b->cnt = 0; /* stored blocks start at a byte boundary */
            if (b->n - b->pos < 4) return "truncated";
            const unsigned len = b->p[b->pos] | b->p[b->pos + 1] << 8, nlen = b->p[b->pos + 2] | b->p[b->pos + 3] << 8;
            b->pos += 4;
            if (len != (~nlen & 0xFFFF)) return "bad stored block length";
            if (b->n - b->pos < len) return "truncated";
            for (unsigned k = 0; k < len; k++) {
                const int r = put(o, b->p[b->pos + k]);
                if (r <= 0) return r < 0 ? "out of memory" : "output larger than allowed";
            }
            b->pos += len;
        } else if (type == 1) {
            uint8_t lens[318];
            huff lit, dist;
            for (int i = 0; i < 288; i++) lens[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
            for (int i = 0; i < 30; i++) lens[288 + i] = 5;
            build(&lit, lens, 288);
            build(&dist, lens + 288, 30);
            err = codes(b, o, &lit, &dist);
        } else if (type == 2) {
            huff lit, dist;
            err = dynamic(b, &lit, &dist);
            if (!err) err = codes(b, o, &lit, &dist);
        } else {
            return "bad block type";
        }
        if (err) return err;
    } while (!last);
    return NULL;
}

dfs_status dfs_inflate(dfs_ctx *ctx, const char *what, const uint8_t *in, size_t n, size_t max_out, int wrapper,
                       uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    bits b = {in, n, 0, 0, 0, 0};
    if (wrapper == DFS_INFLATE_GZIP) {
        if (n < 18 || in[0] != 0x1F || in[1] != 0x8B || in[2] != 8)
            return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: not a gzip file", what);
        const int flags = in[3];
        size_t pos = 10;
        if (flags & 4) { /* FEXTRA */
            if (pos + 2 > n) return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: truncated gzip header", what);
            pos += 2 + (size_t)(in[pos] | in[pos + 1] << 8);
        }
        for (int f = 8; f <= 16; f <<= 1) /* FNAME, FCOMMENT: zero-terminated */
            if (flags & f) {
                while (pos < n && in[pos]) pos++;
                pos++;
            }
        if (flags & 2) pos += 2; /* FHCRC */
        if (pos + 8 > n) return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: truncated gzip header", what);
        b.pos = pos;
        b.n = n - 8;
    } else if (wrapper == DFS_INFLATE_ZLIB) {
        if (n < 6 || (in[0] & 0x0F) != 8 || ((in[0] << 8) | in[1]) % 31 != 0 || (in[1] & 0x20))
            return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: bad zlib header", what);
        b.pos = 2;
        b.n = n - 4;
    }
    outbuf o = {NULL, 0, 0, max_out};
    const char *err = inflate_raw(&b, &o);
    if (!err && wrapper == DFS_INFLATE_GZIP) {
        const uint8_t *t = in + n - 8;
        const uint32_t crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
        const uint32_t isize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
        if (crc != dfs_crc32(0, o.p, o.n)) err = "CRC mismatch";
        else if (isize != (uint32_t)o.n) err = "length mismatch";
    } else if (!err && wrapper == DFS_INFLATE_ZLIB) {
        const uint8_t *t = in + n - 4;
        const uint32_t ad = (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
        if (ad != dfs_adler32(1, o.p, o.n)) err = "Adler-32 mismatch";
    }
    if (err) {
        dfs_free(o.p);
        return dfs_fail(ctx, strcmp(err, "out of memory") == 0 ? DFS_ERR_NOMEM : DFS_ERR_FORMAT, "%s: compressed data: %s",
                        what, err);
    }
    *out = o.p;
    *out_len = o.n;
    return DFS_OK;
}
