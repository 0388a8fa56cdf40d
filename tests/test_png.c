/* PNG decoding against Pillow (tests/fixtures/png: grey, grey+alpha, RGB, RGBA, palette and 1-bit
 * images with Pillow's decoded pixels), our encoder's output decoding back exactly, and malformed
 * files: each refused with a message naming the file. */
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "io/npy.h"
#include "io/png.h"
#include "test.h"

static char tmpdir[128];

static void write_bytes(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

static void fix_crc(uint8_t *chunk_len_pos) { /* recompute the CRC of the chunk starting at its length field */
    const uint32_t len = (uint32_t)chunk_len_pos[0] << 24 | chunk_len_pos[1] << 16 | chunk_len_pos[2] << 8 | chunk_len_pos[3];
    const uint32_t crc = dfs_crc32(0, chunk_len_pos + 4, len + 4);
    uint8_t *c = chunk_len_pos + 8 + len;
    c[0] = (uint8_t)(crc >> 24);
    c[1] = (uint8_t)(crc >> 16);
    c[2] = (uint8_t)(crc >> 8);
    c[3] = (uint8_t)crc;
}

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    static const char *const names[] = {"rgb", "grey", "rgba", "grey_alpha", "palette", "bilevel"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[256], q[256];
        snprintf(p, sizeof p, "tests/fixtures/png/%s.png", names[i]);
        snprintf(q, sizeof q, "tests/fixtures/png/%s.npy", names[i]);
        dfs_image im;
        dfs_npy ref;
        if (!TEST_CHECK(dfs_png_read(ctx, p, &im) == DFS_OK && dfs_npy_read(ctx, q, &ref) == DFS_OK)) {
            fprintf(stderr, "  %s\n", dfs_errmsg(ctx));
            continue;
        }
        const int C = ref.ndim == 3 ? (int)ref.shape[2] : 1;
        TEST_CHECK(im.width == (int)ref.shape[1] && im.height == (int)ref.shape[0] && im.channels == C);
        if (!TEST_CHECK(ref.numel == (size_t)im.width * im.height * im.channels && memcmp(im.pixels, ref.data, ref.numel) == 0))
            fprintf(stderr, "  %s: pixels differ from Pillow's\n", names[i]);
        dfs_image_free(&im);
        dfs_npy_free(&ref);
    }
    /* our encoder round-trips */
    uint8_t px[5 * 7 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37 + 11);
    uint8_t *enc = NULL;
    size_t n = 0;
    TEST_CHECK(dfs_png_encode(ctx, px, 7, 5, 3, &enc, &n) == DFS_OK);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/diffuse-png.%d", (int)getpid());
    char cmd[200], path[256];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmpdir);
    TEST_CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/x.png", tmpdir);
    write_bytes(path, enc, n);
    dfs_image im;
    TEST_CHECK(dfs_png_read(ctx, path, &im) == DFS_OK && im.width == 7 && im.height == 5 && memcmp(im.pixels, px, sizeof px) == 0);
    dfs_image_free(&im);

    /* malformed variants of a valid file */
    uint8_t *bad = dfs_malloc(n + 64);
    struct { const char *what, *expect; } cases[] = {
        {"truncated signature", "not a PNG"}, {"truncated chunk", "truncated|past the end"}, {"bad CRC", "CRC"},
        {"lying width", "image data holds|compressed"}, {"zero height", "out of range"}, {"huge size", "out of range"},
        {"interlaced", "interlaced"}, {"16-bit", "not supported"}, {"bad filter", "filter|compressed"},
        {"no IDAT", "no image"}, {"empty file", "not a PNG"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        memcpy(bad, enc, n);
        size_t m = n;
        uint8_t *ihdr = bad + 8; /* length, "IHDR", 13 bytes of data, CRC */
        switch (k) {
        case 0: m = 5; break;
        case 1: m = 8 + 8 + 13 + 4 + 6; break;
        case 2: bad[8 + 8 + 2] ^= 1; break;
        case 3: ihdr[8 + 3] = 9; fix_crc(ihdr); break;                       /* width 9 with data for 7 */
        case 4: ihdr[8 + 7] = 0; fix_crc(ihdr); break;                       /* height 0 */
        case 5: ihdr[8 + 0] = 0x7F; fix_crc(ihdr); break;                    /* width ~2^31 */
        case 6: ihdr[8 + 12] = 1; fix_crc(ihdr); break;
        case 7: ihdr[8 + 8] = 16; fix_crc(ihdr); break;
        case 8: {
            /* the first filter byte is the first byte of the inflated data: make the zlib stream
             * a stored block we control instead */
            static const uint8_t zl[] = {0x78, 0x01, 1, 22, 0, 0xE9, 0xFF, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21};
            uint8_t *idat = bad + 8 + 25;
            const uint32_t len = sizeof zl + 4;
            idat[0] = 0; idat[1] = 0; idat[2] = 0; idat[3] = (uint8_t)len;
            memcpy(idat + 4, "IDAT", 4);
            memcpy(idat + 8, zl, sizeof zl);
            const uint32_t ad = dfs_adler32(1, zl + 7, 22);
            uint8_t *t = idat + 8 + sizeof zl;
            t[0] = (uint8_t)(ad >> 24); t[1] = (uint8_t)(ad >> 16); t[2] = (uint8_t)(ad >> 8); t[3] = (uint8_t)ad;
            fix_crc(idat);
            memcpy(idat + 12 + len, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
            ihdr[8 + 3] = 7; ihdr[8 + 7] = 1; ihdr[8 + 9] = 0; fix_crc(ihdr); /* 7x1 grey: 8 bytes a row */
            m = (size_t)(idat + 12 + len + 12 - bad);
            break;
        }
        case 9: m = 8 + 25; memcpy(bad + m, "\0\0\0\0IEND\xae\x42\x60\x82", 12); m += 12; break;
        case 10: m = 0; break;
        }
        write_bytes(path, bad, m);
        const dfs_status st = dfs_png_read(ctx, path, &im);
        int hit = 0;
        char pat[64];
        snprintf(pat, sizeof pat, "%s", cases[k].expect);
        for (char *tok = strtok(pat, "|"); tok; tok = strtok(NULL, "|")) hit |= strstr(dfs_errmsg(ctx), tok) != NULL;
        if (!TEST_CHECK(st == DFS_ERR_FORMAT && hit && strstr(dfs_errmsg(ctx), "x.png")))
            fprintf(stderr, "  %s: status %d, '%s'\n", cases[k].what, st, dfs_errmsg(ctx));
        if (st == DFS_OK) dfs_image_free(&im);
    }
    dfs_free(bad);
    dfs_free(enc);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    TEST_CHECK(system(cmd) == 0);
    dfs_ctx_free(ctx);
    return test_summary("png");
}
