/* A small PNG encoder: filter type 0 (None) rows, zlib stream with one fixed-Huffman deflate block
 * and greedy LZ77 matching through a hash of 3-byte prefixes. Simple, deterministic, and several
 * times smaller than stored blocks on generated images. */
#include <string.h>

#include "io/file.h"
#include "io/png.h"

uint32_t dfs_crc32(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

uint32_t dfs_adler32(uint32_t a, const uint8_t *p, size_t n) {
    uint32_t s1 = a & 0xFFFF, s2 = a >> 16;
    while (n) {
        size_t k = n < 5552 ? n : 5552; /* largest block that cannot overflow before the modulo */
        n -= k;
        while (k--) {
            s1 += *p++;
            s2 += s1;
        }
        s1 %= 65521;
        s2 %= 65521;
    }
    return (s2 << 16) | s1;
}

typedef struct bitbuf {
    uint8_t *p;
    size_t len, cap;
    uint32_t acc;
    int nbits;
    int oom;
} bitbuf;

static void put_byte(bitbuf *b, uint8_t v) {
    if (b->len == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        uint8_t *q = dfs_realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    b->p[b->len++] = v;
}

/* LSB-first bits, as deflate packs everything except Huffman codes. */
static void put_bits(bitbuf *b, uint32_t v, int n) {
    b->acc |= v << b->nbits;
    b->nbits += n;
    while (b->nbits >= 8) {
        put_byte(b, (uint8_t)b->acc);
        b->acc >>= 8;
        b->nbits -= 8;
    }
}

/* Huffman codes are sent most significant bit first. */
static void put_code(bitbuf *b, uint32_t code, int n) {
    uint32_t r = 0;
    for (int i = 0; i < n; i++) r |= ((code >> i) & 1u) << (n - 1 - i);
    put_bits(b, r, n);
}

/* The fixed literal/length code of RFC 1951 section 3.2.6. */
static void put_litlen(bitbuf *b, int sym) {
    if (sym < 144) put_code(b, 0x30 + sym, 8);
    else if (sym < 256) put_code(b, 0x190 + sym - 144, 9);
    else if (sym < 280) put_code(b, sym - 256, 7);
    else put_code(b, 0xC0 + sym - 280, 8);
}

static const int len_base[] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const int len_extra[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const int dist_base[] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const int dist_extra[] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static void put_match(bitbuf *b, int len, int dist) {
    int li = 28;
    while (len_base[li] > len) li--;
    put_litlen(b, 257 + li);
    put_bits(b, (uint32_t)(len - len_base[li]), len_extra[li]);
    int di = 29;
    while (dist_base[di] > dist) di--;
    put_code(b, (uint32_t)di, 5);
    put_bits(b, (uint32_t)(dist - dist_base[di]), dist_extra[di]);
}

#define HASH_BITS 15
#define WINDOW 32768

/* zlib stream of data[0..n) into b. */
static int deflate_fixed(bitbuf *b, const uint8_t *data, size_t n) {
    int32_t *head = dfs_malloc(sizeof(int32_t) << HASH_BITS);
    int32_t *prev = dfs_malloc(sizeof(int32_t) * (n ? n : 1));
    if (!head || !prev) {
        dfs_free(head);
        dfs_free(prev);
        return 0;
    }
    memset(head, 0xFF, sizeof(int32_t) << HASH_BITS);
    put_byte(b, 0x78); /* zlib header: deflate, 32K window */
    put_byte(b, 0x01);
    put_bits(b, 1, 1); /* final block */
    put_bits(b, 1, 2); /* fixed Huffman */
    size_t i = 0;
    while (i < n) {
        int best_len = 0, best_dist = 0;
        if (i + 3 <= n) {
            uint32_t h = ((uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2]) * 2654435761u >> (32 - HASH_BITS);
            int32_t cand = head[h];
            for (int chain = 0; cand >= 0 && (size_t)(i - (size_t)cand) <= WINDOW && chain < 32; chain++) {
                size_t max = n - i < 258 ? n - i : 258, l = 0;
                while (l < max && data[cand + l] == data[i + l]) l++;
                if ((int)l > best_len) {
                    best_len = (int)l;
                    best_dist = (int)(i - (size_t)cand);
                }
                cand = prev[cand];
            }
            prev[i] = head[h];
            head[h] = (int32_t)i;
        }
        if (best_len >= 3) {
            put_match(b, best_len, best_dist);
            /* index the skipped positions so later matches can find them */
            for (size_t k = i + 1; k < i + (size_t)best_len && k + 3 <= n; k++) {
                uint32_t h = ((uint32_t)data[k] << 16 | (uint32_t)data[k + 1] << 8 | data[k + 2]) * 2654435761u >> (32 - HASH_BITS);
                prev[k] = head[h];
                head[h] = (int32_t)k;
            }
            i += (size_t)best_len;
        } else {
            put_litlen(b, data[i]);
            i++;
        }
    }
    put_litlen(b, 256);
    if (b->nbits) put_bits(b, 0, 8 - b->nbits);
    uint32_t ad = dfs_adler32(1, data, n);
    for (int k = 3; k >= 0; k--) put_byte(b, (uint8_t)(ad >> (8 * k)));
    dfs_free(head);
    dfs_free(prev);
    return !b->oom;
}

static void put_u32be(bitbuf *b, uint32_t v) {
    for (int k = 3; k >= 0; k--) put_byte(b, (uint8_t)(v >> (8 * k)));
}

static void put_chunk(bitbuf *b, const char *type, const uint8_t *data, size_t n) {
    put_u32be(b, (uint32_t)n);
    size_t start = b->len;
    for (int k = 0; k < 4; k++) put_byte(b, (uint8_t)type[k]);
    for (size_t k = 0; k < n; k++) put_byte(b, data[k]);
    if (b->oom) return;
    put_u32be(b, dfs_crc32(0, b->p + start, n + 4));
}

dfs_status dfs_png_encode(dfs_ctx *ctx, const uint8_t *pixels, int W, int H, int channels, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    if (W < 1 || H < 1 || W > (1 << 24) || H > (1 << 24) || (channels != 1 && channels != 3))
        return dfs_fail(ctx, DFS_ERR_ARG, "PNG: cannot encode a %dx%d image with %d channels", W, H, channels);
    size_t row = (size_t)W * channels + 1, raw_n = dfs_mul_size(row, (size_t)H);
    uint8_t *raw = dfs_malloc(raw_n);
    if (!raw) return dfs_fail(ctx, DFS_ERR_NOMEM, "PNG: out of memory");
    for (int y = 0; y < H; y++) {
        raw[(size_t)y * row] = 0; /* filter: None */
        memcpy(raw + (size_t)y * row + 1, pixels + (size_t)y * (row - 1), row - 1);
    }
    bitbuf z = {0}, f = {0};
    int ok = deflate_fixed(&z, raw, raw_n);
    dfs_free(raw);
    if (ok) {
        static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
        uint8_t ihdr[13] = {0};
        for (int k = 0; k < 4; k++) {
            ihdr[k] = (uint8_t)((uint32_t)W >> (24 - 8 * k));
            ihdr[4 + k] = (uint8_t)((uint32_t)H >> (24 - 8 * k));
        }
        ihdr[8] = 8;                      /* bit depth */
        ihdr[9] = channels == 3 ? 2 : 0;  /* colour type: RGB or grey */
        for (int k = 0; k < 8; k++) put_byte(&f, sig[k]);
        put_chunk(&f, "IHDR", ihdr, sizeof ihdr);
        put_chunk(&f, "IDAT", z.p, z.len);
        put_chunk(&f, "IEND", NULL, 0);
        ok = !f.oom;
    }
    dfs_free(z.p);
    if (!ok) {
        dfs_free(f.p);
        return dfs_fail(ctx, DFS_ERR_NOMEM, "PNG: out of memory");
    }
    *out = f.p;
    *len = f.len;
    return DFS_OK;
}

dfs_status dfs_png_write(dfs_ctx *ctx, const char *path, const uint8_t *pixels, int W, int H, int channels) {
    uint8_t *buf = NULL;
    size_t n = 0;
    dfs_status s = dfs_png_encode(ctx, pixels, W, H, channels, &buf, &n);
    if (s) {
        char why[256];
        snprintf(why, sizeof why, "%s", dfs_errmsg(ctx));
        return dfs_fail(ctx, s, "%s: %s", path, why);
    }
    dfs_out_file of;
    if (!(s = dfs_out_open(ctx, path, &of))) {
        if ((s = dfs_out_write(ctx, &of, buf, n)) == DFS_OK) s = dfs_out_commit(ctx, &of);
        else dfs_out_abort(&of);
    }
    dfs_free(buf);
    return s;
}
