/* PNG decoding for training images: 8-bit grey, grey+alpha, RGB, RGBA and palette images (and 1, 2
 * and 4-bit grey and palette), non-interlaced. The file is untrusted: chunk lengths, CRCs, the
 * declared size against the decompressed data, filter types and palette indices are all checked. */
#include <string.h>

#include "io/file.h"
#include "io/inflate.h"
#include "io/png.h"

#define PNG_MAX_BYTES ((size_t)256 << 20)
#define PNG_MAX_SIDE 16384

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int paeth(int a, int b, int c) {
    const int p = a + b - c, pa = p > a ? p - a : a - p, pb = p > b ? p - b : b - p, pc = p > c ? p - c : c - p;
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

dfs_status dfs_png_read(dfs_ctx *ctx, const char *path, dfs_image *img) {
    memset(img, 0, sizeof *img);
    char *file = NULL;
    size_t n = 0;
    dfs_status st = dfs_file_read_all(ctx, path, PNG_MAX_BYTES, &file, &n);
    if (st) return st;
    const uint8_t *p = (const uint8_t *)file;
    uint8_t *idat = NULL, *raw = NULL;
    size_t idat_n = 0, raw_n = 0;
    uint8_t palette[256][3];
    int n_palette = 0, have_ihdr = 0, have_iend = 0;
    uint32_t W = 0, H = 0;
    int depth = 0, color = 0;
#define BAD(...) do { st = dfs_fail(ctx, DFS_ERR_FORMAT, __VA_ARGS__); goto done; } while (0)
    if (n < 8 || memcmp(p, "\x89PNG\r\n\x1a\n", 8) != 0) BAD("%s: not a PNG file", path);
    for (size_t pos = 8; pos < n && !have_iend;) {
        if (n - pos < 12) BAD("%s: truncated chunk at byte %zu", path, pos);
        const uint32_t len = be32(p + pos);
        const uint8_t *type = p + pos + 4, *data = p + pos + 8;
        if (len > n - pos - 12) BAD("%s: chunk at byte %zu says %u bytes, past the end of the file", path, pos, len);
        if (dfs_crc32(0, type, (size_t)len + 4) != be32(data + len)) BAD("%s: CRC mismatch in a %.4s chunk", path, (const char *)type);
        if (!memcmp(type, "IHDR", 4)) {
            if (len != 13 || have_ihdr) BAD("%s: bad IHDR", path);
            W = be32(data);
            H = be32(data + 4);
            depth = data[8];
            color = data[9];
            if (W == 0 || H == 0 || W > PNG_MAX_SIDE || H > PNG_MAX_SIDE) BAD("%s: image size %ux%u is out of range", path, W, H);
            if (data[10] != 0 || data[11] != 0) BAD("%s: unknown compression or filter method", path);
            if (data[12] != 0) BAD("%s: interlaced PNGs are not supported", path);
            const int ok = (color == 0 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
                           (color == 3 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
                           ((color == 2 || color == 4 || color == 6) && depth == 8);
            if (!ok) BAD("%s: colour type %d with bit depth %d is not supported (8-bit images are)", path, color, depth);
            have_ihdr = 1;
        } else if (!memcmp(type, "PLTE", 4)) {
            if (len % 3 || len / 3 > 256) BAD("%s: bad palette", path);
            n_palette = (int)(len / 3);
            memcpy(palette, data, len);
        } else if (!memcmp(type, "IDAT", 4)) {
            if (!have_ihdr) BAD("%s: image data before the header", path);
            uint8_t *q = dfs_realloc(idat, idat_n + len + 1);
            if (!q) {
                st = dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
            idat = q;
            memcpy(idat + idat_n, data, len);
            idat_n += len;
        } else if (!memcmp(type, "IEND", 4)) {
            have_iend = 1;
        } else if (!(type[0] & 0x20)) {
            BAD("%s: unknown critical chunk %.4s", path, (const char *)type);
        }
        pos += (size_t)len + 12;
    }
    if (!have_ihdr || !idat) BAD("%s: no image header or data", path);
    if (color == 3 && n_palette == 0) BAD("%s: palette image without a palette", path);
    const int channels_in = color == 0 ? 1 : color == 2 ? 3 : color == 3 ? 1 : color == 4 ? 2 : 4;
    const size_t row_bytes = ((size_t)W * channels_in * depth + 7) / 8, bpp = (size_t)(channels_in * depth + 7) / 8;
    const size_t expect = (row_bytes + 1) * H;
    if ((st = dfs_inflate(ctx, path, idat, idat_n, expect, DFS_INFLATE_ZLIB, &raw, &raw_n))) goto done;
    if (raw_n != expect) BAD("%s: the image data holds %zu bytes, a %ux%u image needs %zu", path, raw_n, W, H, expect);
    /* unfilter in place */
    for (uint32_t y = 0; y < H; y++) {
        uint8_t *row = raw + (size_t)y * (row_bytes + 1) + 1;
        const uint8_t *prev = y ? row - (row_bytes + 1) : NULL;
        const int f = row[-1];
        if (f > 4) BAD("%s: bad filter type %d in row %u", path, f, y);
        for (size_t i = 0; i < row_bytes; i++) {
            const int a = i >= bpp ? row[i - bpp] : 0, b = prev ? prev[i] : 0, c = prev && i >= bpp ? prev[i - bpp] : 0;
            const int add = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : paeth(a, b, c);
            row[i] = (uint8_t)(row[i] + add);
        }
    }
    /* expand to grey or RGB, 8 bits */
    const int out_c = color == 0 || color == 4 ? 1 : 3;
    img->pixels = dfs_malloc((size_t)W * H * out_c);
    if (!img->pixels) {
        st = dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (uint32_t y = 0; y < H; y++) {
        const uint8_t *row = raw + (size_t)y * (row_bytes + 1) + 1;
        for (uint32_t x = 0; x < W; x++) {
            uint8_t *o = img->pixels + ((size_t)y * W + x) * out_c;
            if (depth < 8) {
                const int per = 8 / depth, shift = 8 - depth * (int)(x % per + 1);
                const int v = (row[x / per] >> shift) & ((1 << depth) - 1);
                if (color == 0) {
                    o[0] = (uint8_t)(v * 255 / ((1 << depth) - 1));
                } else {
                    if (v >= n_palette) BAD("%s: palette index %d beyond the %d-entry palette", path, v, n_palette);
                    memcpy(o, palette[v], 3);
                }
            } else if (color == 3) {
                if (row[x] >= n_palette) BAD("%s: palette index %d beyond the %d-entry palette", path, row[x], n_palette);
                memcpy(o, palette[row[x]], 3);
            } else {
                const uint8_t *s = row + (size_t)x * channels_in;
                if (out_c == 1) o[0] = s[0]; /* grey, grey+alpha: alpha dropped */
                else memcpy(o, s, 3);        /* RGB, RGBA: alpha dropped */
            }
        }
    }
    img->width = (int)W;
    img->height = (int)H;
    img->channels = out_c;
#undef BAD
done:
    if (st) dfs_image_free(img);
    dfs_free(file);
    dfs_free(idat);
    dfs_free(raw);
    return st;
}

void dfs_image_free(dfs_image *img) {
    dfs_free(img->pixels);
    memset(img, 0, sizeof *img);
}
