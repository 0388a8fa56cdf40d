/* Each op against its naive reference (src/ops/ref) on random inputs and odd shapes, with 1 and 2
 * threads (the results must be bit-identical). */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "core/internal.h"
#include "ops/attn.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "ops/ref/ref.h"
#include "ops/winograd.h"
#include "test.h"

static unsigned long long rng_state = 88172645463325252ull;
static float frand(void) { /* xorshift64 → uniform [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0) - 1.0);
}
static float *rand_buf(size_t n, float scale) {
    float *p = dfs_malloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

/* max |a − b| / max(1, max |b|) */
static double rel_err(const float *a, const float *b, size_t n) {
    double m = 0, r = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
        if (fabs(b[i]) > r) r = fabs(b[i]);
    }
    return m / r;
}

static void test_conv(int B, int C, int H, int W, int OC, int K, int stride, int pad) {
    int pad_b = pad == 0 && stride == 2 ? 1 : pad; /* diffusers' asymmetric padding case */
    int OH = (H + pad + pad_b - K) / stride + 1, OW = (W + pad + pad_b - K) / stride + 1;
    size_t no = (size_t)B * OC * OH * OW;
    float *x = rand_buf((size_t)B * C * H * W, 1), *w = rand_buf((size_t)OC * C * K * K, 0.3f), *b = rand_buf(OC, 1);
    float *o1 = rand_buf(no, 1), *o2 = rand_buf(no, 1), *r = rand_buf(no, 1);
    dfs_conv2d_forward_ref(r, x, w, b, B, C, H, W, OC, K, K, stride, pad, pad, OH, OW);
    dfs_ops_set_threads(4); /* the workspace for the most threads used below */
    const size_t nws = dfs_conv2d_workspace(B, C, OC, K, K, stride, OH, OW);
    float *ws = rand_buf(nws, 1);
    for (size_t i = 0; i < nws; i++) ws[i] = NAN; /* scratch read before it is written shows as NaN */
    dfs_ops_set_threads(1);
    dfs_conv2d_forward(o1, ws, x, w, b, B, C, H, W, OC, K, K, stride, pad, pad, OH, OW);
    dfs_ops_set_threads(2);
    dfs_conv2d_forward(o2, ws, x, w, b, B, C, H, W, OC, K, K, stride, pad, pad, OH, OW);
    double e = rel_err(o1, r, no);
    if (!TEST_CHECK(e < 1e-5)) fprintf(stderr, "  conv B%d C%d %dx%d OC%d k%d s%d p%d: err %g\n", B, C, H, W, OC, K, stride, pad, e);
    TEST_CHECK(memcmp(o1, o2, no * sizeof(float)) == 0);
    dfs_ops_set_threads(4); /* more threads than images: each image shared among them */
    dfs_conv2d_forward(o2, ws, x, w, b, B, C, H, W, OC, K, K, stride, pad, pad, OH, OW);
    TEST_CHECK(memcmp(o1, o2, no * sizeof(float)) == 0);
    dfs_ops_set_threads(2);
    /* prepared weights, a per-image bias and the sum added onto what out holds */
    float *prep = rand_buf(dfs_conv2d_prepared_floats(B, C, H, W, OC, K, K, stride, pad, pad, OH, OW) + 1, 1), *bi = rand_buf((size_t)B * OC, 1);
    dfs_conv2d_prepare(prep, w, B, C, H, W, OC, K, K, stride, pad, pad, OH, OW, 0);
    for (size_t i = 0; i < no; i++) o2[i] = (float)(i % 7) - 3.0f;
    dfs_conv2d_forward_prepared(o2, ws, x, w, prep, b, bi, B, C, H, W, OC, K, K, stride, pad, pad, OH, OW, 0, 1);
    for (size_t i = 0; i < no; i++) r[i] += bi[i / ((size_t)OH * OW)] + (float)(i % 7) - 3.0f;
    e = rel_err(o2, r, no);
    if (!TEST_CHECK(e < 1e-5)) fprintf(stderr, "  conv B%d C%d %dx%d OC%d k%d s%d p%d, accumulated: err %g\n", B, C, H, W, OC, K, stride, pad, e);
    dfs_free(ws), dfs_free(prep), dfs_free(bi);
    dfs_free(x); dfs_free(w); dfs_free(b); dfs_free(o1); dfs_free(o2); dfs_free(r);
}

/* F(4×4, 3×3)'s transforms (winograd.h, the weight gradient's included) for every run of planes from 1×1 to 8×8, runs into later
 * images included: every version gives the portable one's bits (returned), and the portable
 * ones agree with Bᵀ d B and Aᵀ m A of their definition (checked here). */
static int winograd4_impls_agree(const dfs_wg_impl **impls, int n) {
    static const double BT[6][6] = {{1, -1.5, -2, 1.5, 1, 0}, {0, 1, -2.5, 0.5, 1, 0}, {0, -1, 0.5, 2.5, 1, 0},
                                    {0, -2, -1, 2, 1, 0},     {0, 0.5, -1, -0.5, 1, 0}, {0, 1, -1.5, -2, 1.5, 1}};
    static const double AT[4][6] = {{1, 1, 1, 1, 1, 0}, {0, -1, 1, 0.5, -2, 0}, {0, 1, 1, 0.25, 4, 0}, {0, -1, 1, 0.125, -8, 1}};
    const size_t xs = 20;
    /* up to 8 wide: gathered lanes; 9 and wider: by segments, one or more a tile row */
    const int sizes[][2] = {{1, 1},  {2, 3},  {4, 4},   {7, 7},   {8, 5},   {3, 8},   {6, 6},   {8, 8},
                            {9, 1},  {16, 4}, {12, 3},  {29, 7},  {32, 8},  {9, 9},   {7, 12},  {13, 11},
                            {14, 14}, {16, 16}, {5, 28}, {28, 28}, {29, 30}, {3, 32}, {32, 32}};
    enum { NS = sizeof sizes / sizeof sizes[0], NB = 3 * (32 * 32 + 5) }; /* a run spans at most 3 of the largest */
    float v0[36 * 20], v1[36 * 20], *m = rand_buf(36 * xs, 1), *b2 = rand_buf(40, 1);
    float *p = rand_buf(NB, 1), *o0 = rand_buf(NB, 1), *o1 = rand_buf(NB, 1);
    int same = 1, right = 1, runs = 0;
    for (int si = 0; si < NS; si++) {
        const int H = sizes[si][0], W = sizes[si][1], TW = (W + 3) / 4, T = (H + 3) / 4 * TW;
        const size_t is = (size_t)H * W + 5; /* images 5 floats apart */
        for (int t0 = 0; t0 < T; t0++)
            for (int len = 1; len <= 16; len++) {
                const int ty = t0 / TW, tx = t0 % TW;
                runs++;
                for (int k = 0; k < n; k++) {
                    memset(v0, 0, sizeof v0), memset(v1, 0, sizeof v1);
                    impls[n - 1]->in4_run(v0, xs, p, is, H, W, ty, tx, len);
                    impls[k]->in4_run(v1, xs, p, is, H, W, ty, tx, len);
                    same &= memcmp(v0, v1, sizeof v0) == 0;
                    memset(v0, 0, sizeof v0), memset(v1, 0, sizeof v1);
                    impls[n - 1]->grad4_run(v0, xs, p, is, H, W, ty, tx, len);
                    impls[k]->grad4_run(v1, xs, p, is, H, W, ty, tx, len);
                    same &= memcmp(v0, v1, sizeof v0) == 0;
                    for (int acc = 0; acc <= 3; acc++) {
                        for (int i = 0; i < NB; i++) o0[i] = o1[i] = (float)i * 0.25f;
                        impls[n - 1]->out4_run(o0, is, H, W, m, xs, ty, tx, len, 0.5f, acc & 2 ? b2 : NULL, 2, acc & 1);
                        impls[k]->out4_run(o1, is, H, W, m, xs, ty, tx, len, 0.5f, acc & 2 ? b2 : NULL, 2, acc & 1);
                        same &= memcmp(o0, o1, sizeof(float) * NB) == 0;
                    }
                }
                impls[n - 1]->grad4_run(v1, xs, p, is, H, W, ty, tx, len);
                impls[n - 1]->in4_run(v0, xs, p, is, H, W, ty, tx, len);
                for (int i = 0; i < NB; i++) o0[i] = -1.0f;
                impls[n - 1]->out4_run(o0, is, H, W, m, xs, ty, tx, len, 0.0f, NULL, 0, 0);
                int written = 0;
                for (int j = 0; j < len; j++) {
                    const int t = t0 + j, q = t / T, y = t % T / TW, x = t % TW;
                    double d[6][6], e[6][6];
                    for (int i = 0; i < 6; i++)
                        for (int c = 0; c < 6; c++) {
                            const int yy = 4 * y - 1 + i, xx = 4 * x - 1 + c;
                            d[i][c] = yy >= 0 && yy < H && xx >= 0 && xx < W ? p[q * is + (size_t)yy * W + xx] : 0.0;
                        }
                    for (int i = 0; i < 6; i++) /* e = Bᵀ d */
                        for (int c = 0; c < 6; c++) {
                            e[i][c] = 0;
                            for (int l = 0; l < 6; l++) e[i][c] += BT[i][l] * d[l][c];
                        }
                    for (int i = 0; i < 6; i++) /* (Bᵀ d) B */
                        for (int c = 0; c < 6; c++) {
                            double want = 0;
                            for (int l = 0; l < 6; l++) want += e[i][l] * BT[c][l];
                            right &= fabs(v0[(6 * i + c) * xs + j] - want) <= 1e-5 * (1 + fabs(want));
                        }
                    for (int i = 0; i < 6; i++) /* A dY Aᵀ of the tile's 4×4 block */
                        for (int c = 0; c < 6; c++) {
                            double want = 0;
                            for (int r = 0; r < 4; r++)
                                for (int l = 0; l < 4; l++) {
                                    const int yy = 4 * y + r, xx = 4 * x + l;
                                    if (yy < H && xx < W) want += AT[r][i] * AT[l][c] * p[q * is + (size_t)yy * W + xx];
                                }
                            right &= fabs(v1[(6 * i + c) * xs + j] - want) <= 1e-5 * (1 + fabs(want));
                        }
                    for (int r = 0; r < 4 && 4 * y + r < H; r++)
                        for (int c = 0; c < 4 && 4 * x + c < W; c++) { /* (Aᵀ m A)[r][c] */
                            double want = 0;
                            for (int i = 0; i < 6; i++)
                                for (int l = 0; l < 6; l++) want += AT[r][i] * AT[c][l] * m[(6 * i + l) * xs + j];
                            right &= fabs(o0[q * is + (size_t)(4 * y + r) * W + 4 * x + c] - want) <= 1e-5 * (1 + fabs(want));
                            written++;
                        }
                }
                for (int i = 0; i < NB; i++) written -= o0[i] != -1.0f;
                right &= written == 0; /* nothing outside the run's blocks */
            }
    }
    TEST_CHECK(runs > 300);
    /* the weight transform, G g Gᵀ, for 1 to 16 kernels a call */
    static const double G[6][3] = {{1, 0, 0}, {-1.0 / 3, 1.0 / 3, -1.0 / 3}, {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                   {-16.0 / 15, -8.0 / 15, -4.0 / 15}, {1.0 / 15, -2.0 / 15, 4.0 / 15}, {0, 0, 1}};
    float u0[36 * 17], u1[36 * 17];
    for (int count = 1; count <= 16; count++) {
        for (int k = 0; k < n; k++) {
            for (int i = 0; i < 36 * 17; i++) u0[i] = u1[i] = -1.0f;
            impls[n - 1]->weights4(u0, 17, p + count, count);
            impls[k]->weights4(u1, 17, p + count, count);
            same &= memcmp(u0, u1, sizeof u0) == 0;
        }
        for (int c = 0; c < 17; c++)
            for (int x = 0; x < 36; x++) {
                double want = -1.0;
                if (c < count) {
                    want = 0;
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 3; b++) want += G[x / 6][a] * G[x % 6][b] * p[count + 9 * c + 3 * a + b];
                }
                right &= fabs(u0[x * 17 + c] - want) <= 1e-6 * (1 + fabs(want));
            }
    }
    /* the weight gradient's last transform, dw += Gᵀ u G, for 1 to 16 gradients a call */
    float w0[9 * 16], w1[9 * 16];
    for (int count = 1; count <= 16; count++) {
        for (int k = 0; k < n; k++) {
            for (int i = 0; i < 9 * 16; i++) w0[i] = w1[i] = (float)i * 0.125f;
            impls[n - 1]->dw4(w0, p + count, 17, count);
            impls[k]->dw4(w1, p + count, 17, count);
            same &= memcmp(w0, w1, sizeof w0) == 0;
        }
        for (int c = 0; c < 16; c++)
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) {
                    double want = (float)(9 * c + 3 * a + b) * 0.125f;
                    for (int i = 0; i < 6 && c < count; i++)
                        for (int l = 0; l < 6; l++) want += G[i][a] * G[l][b] * p[count + (6 * i + l) * 17 + c];
                    right &= fabs(w0[9 * c + 3 * a + b] - want) <= 1e-5 * (1 + fabs(want));
                }
    }
    if (!TEST_CHECK(right)) fprintf(stderr, "  a portable F(4x4, 3x3) transform differs from its definition\n");
    dfs_free(m), dfs_free(b2), dfs_free(p), dfs_free(o0), dfs_free(o1);
    return same;
}

/* Every version of the Winograd tile transforms gives the portable one's bits, for every run
 * (winograd.h) of planes from 1×1 to 11×37, runs over several tile rows of narrow ones included;
 * the portable input transform also against the definition, Bᵀ d B with d zero outside the plane,
 * and the output transform against (Aᵀ m A) of the tiles' blocks. */
static void test_winograd_impls(void) {
    const dfs_wg_impl *impls[4];
    const int n = dfs_winograd_available(impls, 4);
    const size_t xs = 20;
    float *p = rand_buf(11 * 37 + 64, 1), *m = rand_buf(16 * xs, 1);
    float v0[16 * 20], v1[16 * 20], o0[11 * 37], o1[11 * 37];
    int same = 1, right = 1, runs = 0;
    const int sizes[][2] = {{1, 1}, {2, 3}, {3, 5}, {4, 4}, {7, 7}, {5, 8}, {6, 9}, {9, 13}, {8, 16}, {11, 17}, {5, 37}};
    for (int si = 0; si < 11; si++) {
        const int H = sizes[si][0], W = sizes[si][1], TW = (W + 1) / 2, TH = (H + 1) / 2;
        for (int ty = 0; ty < TH; ty++)
            for (int tx = 0; tx < TW; tx++)
                for (int len = 1; len <= 16; len++) {
                    const int last = tx + len - 1; /* the run's last tile, counted from tile (ty, 0) */
                    if (last / TW >= dfs_wg_run_rows(W) || ty + last / TW >= TH) continue;
                    runs++;
                    for (int k = 0; k < n; k++) {
                        memset(v0, 0, sizeof v0), memset(v1, 0, sizeof v1);
                        impls[n - 1]->in_run(v0, xs, p, 0, H, W, ty, tx, len);
                        impls[k]->in_run(v1, xs, p, 0, H, W, ty, tx, len);
                        same &= memcmp(v0, v1, sizeof v0) == 0;
                        for (int acc = 0; acc <= 3; acc++) {
                            const float b2 = -0.25f;
                            for (int i = 0; i < H * W; i++) o0[i] = o1[i] = (float)i * 0.25f;
                            impls[n - 1]->out_run(o0, 0, H, W, m, xs, ty, tx, len, 0.5f, acc & 2 ? &b2 : NULL, 0, acc & 1);
                            impls[k]->out_run(o1, 0, H, W, m, xs, ty, tx, len, 0.5f, acc & 2 ? &b2 : NULL, 0, acc & 1);
                            same &= memcmp(o0, o1, sizeof(float) * (size_t)(H * W)) == 0;
                        }
                        memset(v0, 0, sizeof v0), memset(v1, 0, sizeof v1);
                        impls[n - 1]->grad_run(v0, xs, p, 0, H, W, ty, tx, len);
                        impls[k]->grad_run(v1, xs, p, 0, H, W, ty, tx, len);
                        same &= memcmp(v0, v1, sizeof v0) == 0;
                    }
                    impls[n - 1]->in_run(v0, xs, p, 0, H, W, ty, tx, len);
                    for (int i = 0; i < H * W; i++) o0[i] = -1.0f;
                    impls[n - 1]->out_run(o0, 0, H, W, m, xs, ty, tx, len, 0.0f, NULL, 0, 0);
                    int written = 0;
                    for (int j = 0; j < len; j++) {
                        const int y = ty + (tx + j) / TW, x = (tx + j) % TW;
                        double d[4][4];
                        for (int i = 0; i < 4; i++)
                            for (int c = 0; c < 4; c++) {
                                const int yy = 2 * y - 1 + i, xx = 2 * x - 1 + c;
                                d[i][c] = yy >= 0 && yy < H && xx >= 0 && xx < W ? p[yy * W + xx] : 0.0;
                            }
                        /* position ξ = (1, 2): (d1 + d2)·(column 2 − column 1) */
                        right &= fabs(v0[6 * xs + j] - ((d[1][2] + d[2][2]) - (d[1][1] + d[2][1]))) <= 1e-5;
                        for (int r = 0; r < 2 && 2 * y + r < H; r++)
                            for (int c = 0; c < 2 && 2 * x + c < W; c++) { /* (Aᵀ m A)[r][c] */
                                double want = 0;
                                for (int i = 0; i < 4; i++)
                                    for (int q = 0; q < 4; q++) {
                                        const double ai = r == 0 ? (i < 3) : (i == 1) - (i >= 2);
                                        const double aq = c == 0 ? (q < 3) : (q == 1) - (q >= 2);
                                        want += ai * aq * m[(4 * i + q) * xs + j];
                                    }
                                right &= fabs(o0[(2 * y + r) * W + 2 * x + c] - want) <= 1e-5;
                                written++;
                            }
                    }
                    for (int i = 0; i < H * W; i++) written -= o0[i] != -1.0f;
                    right &= written == 0; /* nothing outside the run's blocks */
                }
    }
    TEST_CHECK(runs > 1000);
    if (!TEST_CHECK(right)) fprintf(stderr, "  a portable winograd transform differs from its definition\n");
    same &= winograd4_impls_agree(impls, n);
    /* the GEMM packing's transposes, every block size, against the definition */
    const dfs_gemm_impl *gi[4];
    const int ng = dfs_gemm_available(gi, 4);
    const size_t Wp = 24; /* p read as rows of 24 */
    float t[16 * 20];
    for (int k = 0; k < ng; k++)
        for (int rows = 1; rows <= 16; rows++)
            for (int cols = 1; cols <= 16; cols++) {
                for (int i = 0; i < 16 * 20; i++) t[i] = -1.0f;
                gi[k]->transpose(t, 20, p, Wp, rows, cols);
                for (int i = 0; i < 16; i++)
                    for (int j = 0; j < 20; j++)
                        same &= t[i * 20 + j] == (i < rows && j < cols ? p[(size_t)j * Wp + i] : -1.0f);
            }
    if (!TEST_CHECK(same)) fprintf(stderr, "  winograd transforms differ between versions\n");
    /* the padded (phase) planes of stride 1 and 2, against the definition: planes of 1 to 5 rows of
     * 1 to 40 values from images of 0 to 6 rows of 0 to 60 (all within p), offsets −5 .. 2,
     * nothing written past the plane */
    int phase_ok = 1;
    float plane[5 * 40 + 8];
    for (int k = 0; k < ng; k++)
        for (int st = 1; st <= 2; st++)
            for (int Wp = 1; Wp <= 40; Wp += 3)
                for (int Hp = 1; Hp <= 5; Hp += 2)
                    for (int o = -5; o <= 2; o++)
                        for (int W = 0; W <= 60; W += 4)
                            for (int H = 0; H <= 6; H += 3) {
                                const int oy = -o / 2 - 1, ox = o;
                                for (int i = 0; i < 5 * 40 + 8; i++) plane[i] = -1.0f;
                                gi[k]->phase_plane(plane, Hp, Wp, p + 8, H, W, oy, ox, st);
                                for (int i = 0; i < 5 * 40 + 8; i++) {
                                    const int Y = i / Wp, X = i % Wp, y = st * Y + oy, x = st * X + ox;
                                    const float want = i >= Hp * Wp                                  ? -1.0f
                                                       : y >= 0 && y < H && x >= 0 && x < W ? p[8 + y * W + x]
                                                                                             : 0.0f;
                                    phase_ok &= plane[i] == want;
                                }
                            }
    if (!TEST_CHECK(phase_ok)) fprintf(stderr, "  a phase_plane version differs from its definition\n");
    TEST_CHECK(n >= 1 && strcmp(impls[n - 1]->name, "scalar") == 0);
    dfs_free(p), dfs_free(m);
}

/* Prepared weights give the same bits as weights transformed on the fly. */
static void test_conv_prepared(int B, int C, int H, int W, int OC) {
    const size_t no = (size_t)B * OC * H * W, nws = dfs_conv2d_workspace(B, C, OC, 3, 3, 1, H, W);
    float *x = rand_buf((size_t)B * C * H * W, 1), *w = rand_buf((size_t)OC * C * 9, 0.3f), *b = rand_buf(OC, 1);
    float *o1 = rand_buf(no, 1), *o2 = rand_buf(no, 1), *ws = rand_buf(nws, 1);
    float *prep = rand_buf(dfs_conv2d_prepared_floats(B, C, H, W, OC, 3, 3, 1, 1, 1, H, W), 1);
    dfs_conv2d_prepare(prep, w, B, C, H, W, OC, 3, 3, 1, 1, 1, H, W, 0);
    dfs_conv2d_forward(o1, ws, x, w, b, B, C, H, W, OC, 3, 3, 1, 1, 1, H, W);
    for (size_t i = 0; i < nws; i++) ws[i] = NAN;
    dfs_conv2d_forward_prepared(o2, ws, x, w, prep, b, NULL, B, C, H, W, OC, 3, 3, 1, 1, 1, H, W, 0, 0);
    TEST_CHECK(memcmp(o1, o2, no * sizeof(float)) == 0);
    dfs_free(x), dfs_free(w), dfs_free(b), dfs_free(o1), dfs_free(o2), dfs_free(ws), dfs_free(prep);
}

static void test_linear(int N, int I, int O) {
    float *x = rand_buf((size_t)N * I, 1), *w = rand_buf((size_t)O * I, 0.5f), *b = rand_buf(O, 1);
    float *o = rand_buf((size_t)N * O, 1), *r = rand_buf((size_t)N * O, 1);
    dfs_linear_forward(o, x, w, b, N, I, O);
    dfs_linear_forward_ref(r, x, w, b, N, I, O);
    TEST_CHECK(rel_err(o, r, (size_t)N * O) < 1e-5);
    dfs_free(x); dfs_free(w); dfs_free(b); dfs_free(o); dfs_free(r);
}

static void test_groupnorm(int B, int C, int HW, int G, dfs_act act) {
    size_t n = (size_t)B * C * HW;
    float *x = rand_buf(n, 3), *g = rand_buf(C, 1), *b = rand_buf(C, 1), *o = rand_buf(n, 1), *r = rand_buf(n, 1);
    for (size_t i = 0; i < n; i++) x[i] += 2.0f; /* a non-zero mean */
    dfs_groupnorm_forward(o, x, g, b, B, C, HW, G, 1e-5f, act, NULL);
    dfs_groupnorm_forward_ref(r, x, g, b, B, C, HW, G, 1e-5f, act);
    /* x − mean loses about max|x|·ε of a group, magnified by 1/σ: the bound grows with max|x|/σ */
    double cond = 1;
    const size_t gs = (size_t)C / G * HW;
    for (size_t k = 0; k < n / gs; k++) {
        double m = 0, v = 0, big = 0;
        for (size_t i = 0; i < gs; i++) m += x[k * gs + i];
        m /= (double)gs;
        for (size_t i = 0; i < gs; i++) {
            v += (x[k * gs + i] - m) * (x[k * gs + i] - m);
            if (fabs(x[k * gs + i]) > big) big = fabs(x[k * gs + i]);
        }
        if (big / sqrt(v / (double)gs + 1e-5) > cond) cond = big / sqrt(v / (double)gs + 1e-5);
    }
    double e = rel_err(o, r, n);
    if (!TEST_CHECK(e < 8 * FLT_EPSILON * cond))
        fprintf(stderr, "  groupnorm B%d C%d HW%d G%d act %d: err %g (bound %g)\n", B, C, HW, G, act, e, 8 * FLT_EPSILON * cond);
    if (act == DFS_ACT_NONE) { /* as token rows: each image's transpose, the same bits */
        float *t = rand_buf(n, 1), *ws = rand_buf(dfs_groupnorm_tokens_workspace(C, HW, G), 1);
        dfs_groupnorm_forward_tokens(t, ws, x, g, b, B, C, HW, G, 1e-5f);
        int same = 1;
        for (int im = 0; im < B; im++)
            for (int c = 0; c < C; c++)
                for (int p = 0; p < HW; p++)
                    same &= t[((size_t)im * HW + p) * C + c] == o[((size_t)im * C + c) * HW + p];
        TEST_CHECK(same);
        dfs_free(t); dfs_free(ws);
    }
    dfs_free(x); dfs_free(g); dfs_free(b); dfs_free(o); dfs_free(r);
}

static void test_attention(int B, int C, int HW, int heads, int dh, float rescale) {
    const int inner = heads * dh;
    size_t n = (size_t)B * C * HW;
    float *x = rand_buf(n, 1), *res = rand_buf(n, 1);
    float *wq = rand_buf((size_t)inner * C, 0.4f), *wk = rand_buf((size_t)inner * C, 0.4f), *wv = rand_buf((size_t)inner * C, 0.4f);
    float *wo = rand_buf((size_t)C * inner, 0.4f), *bq = rand_buf(inner, 0.1f), *bk = rand_buf(inner, 0.1f);
    float *bv = rand_buf(inner, 0.1f), *bo = rand_buf(C, 0.1f);
    dfs_ops_set_threads(2); /* the scratch size depends on the thread count */
    float *scratch = rand_buf(dfs_attention_scratch(B, C, HW, heads, dh), 1);
    float *o1 = rand_buf(n, 1), *o2 = rand_buf(n, 1), *r = rand_buf(n, 1);
    dfs_attention_forward_ref(r, x, res, wq, bq, wk, bk, wv, bv, wo, bo, B, C, HW, heads, dh, rescale);
    dfs_ops_set_threads(1);
    dfs_attention_forward(o1, scratch, x, res, wq, bq, wk, bk, wv, bv, wo, bo, B, C, HW, heads, dh, rescale);
    dfs_ops_set_threads(2);
    /* in place on the residual, as the UNet uses it */
    memcpy(o2, res, n * sizeof(float));
    dfs_attention_forward(o2, scratch, x, o2, wq, bq, wk, bk, wv, bv, wo, bo, B, C, HW, heads, dh, rescale);
    double e = rel_err(o1, r, n);
    if (!TEST_CHECK(e < 1e-5)) fprintf(stderr, "  attention B%d C%d HW%d heads %d dh %d: err %g\n", B, C, HW, heads, dh, e);
    TEST_CHECK(memcmp(o1, o2, n * sizeof(float)) == 0);
    if (dfs_attention_takes_tokens(B, HW)) { /* the input as token rows: the same bits */
        float *T = rand_buf(n, 1);
        for (int im = 0; im < B; im++)
            for (int c = 0; c < C; c++)
                for (int p = 0; p < HW; p++) T[((size_t)im * HW + p) * C + c] = x[((size_t)im * C + c) * HW + p];
        dfs_attention_forward_tokens(o2, scratch, T, res, wq, bq, wk, bk, wv, bv, wo, bo, B, C, HW, heads, dh, rescale);
        TEST_CHECK(memcmp(o1, o2, n * sizeof(float)) == 0);
        dfs_free(T);
    }
    /* a batch is shared out image by image, one image step by step: the same bits either way */
    const size_t img = (size_t)C * HW;
    for (int b = 0; b < B && B > 1; b++) {
        dfs_attention_forward(o2, scratch, x + b * img, res + b * img, wq, bq, wk, bk, wv, bv, wo, bo, 1, C, HW, heads, dh,
                              rescale);
        TEST_CHECK(memcmp(o2, o1 + b * img, img * sizeof(float)) == 0);
    }
    dfs_free(x); dfs_free(res); dfs_free(wq); dfs_free(wk); dfs_free(wv); dfs_free(wo); dfs_free(bq); dfs_free(bk);
    dfs_free(bv); dfs_free(bo); dfs_free(scratch); dfs_free(o1); dfs_free(o2); dfs_free(r);
}

/* Every version of one head's attention core (attn.h) gives the blocked version's bits, outputs
 * and saved row statistics, for the sizes it takes: 1 to 64 positions, head sizes 16 to 256, keys
 * as rows and transposed, the next head's columns left alone; the blocked one also against the
 * definition, in double. */
static void test_attn_impls(void) {
    const dfs_attn_impl *impls[4];
    const int n = dfs_attn_available(impls, 4);
    const int hws[] = {1, 5, 16, 17, 36, 48, 49, 63, 64}, dhs[] = {16, 32, 48, 64, 80, 256};
    int same = 1, right = 1, cases = 0;
    for (size_t a = 0; a < sizeof hws / sizeof *hws; a++)
        for (size_t c = 0; c < sizeof dhs / sizeof *dhs; c++) {
            const int HW = hws[a], dh = dhs[c], inner = dh + 16; /* the head is followed by another's columns */
            const size_t m = (size_t)HW * inner;
            float *Q = rand_buf(m, 1), *K = rand_buf(m, 1), *V = rand_buf(m, 1), *KT = rand_buf((size_t)dh * HW, 1);
            float *O0 = rand_buf(m, 1), *O1 = rand_buf(m, 1), st0[128], st1[128];
            for (int d = 0; d < dh; d++)
                for (int j = 0; j < HW; j++) KT[(size_t)d * HW + j] = K[(size_t)j * inner + d];
            const float scale = 1.0f / sqrtf((float)dh);
            impls[n - 1]->head(O0, st0, Q, K, 1, (size_t)inner, V, HW, inner, dh, scale);
            for (int i = 0; i < HW; i++) {
                double s[64], mx = -1e300, l = 0;
                for (int j = 0; j < HW; j++) {
                    s[j] = 0;
                    for (int d = 0; d < dh; d++) s[j] += (double)Q[(size_t)i * inner + d] * K[(size_t)j * inner + d];
                    s[j] *= scale;
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j < HW; j++) l += exp(s[j] - mx);
                for (int d = 0; d < dh; d++) {
                    double o = 0;
                    for (int j = 0; j < HW; j++) o += exp(s[j] - mx) / l * V[(size_t)j * inner + d];
                    right &= fabs(O0[(size_t)i * inner + d] - o) < 1e-5 * (1 + fabs(o));
                }
            }
            for (int k = 0; k < n - 1; k++) {
                /* the blocked version's products are the micro-kernel's at the permitted level */
                if (!impls[k]->small_only || !dfs_isa_permits(impls[k]->name)) continue;
                for (int transposed = 0; transposed < 2; transposed++) {
                    memcpy(O1, O0, m * sizeof(float));
                    for (int i = 0; i < HW; i++) memset(O1 + (size_t)i * inner, 0, sizeof(float) * (size_t)dh);
                    if (transposed)
                        impls[k]->head(O1, st1, Q, KT, (size_t)HW, 1, V, HW, inner, dh, scale);
                    else
                        impls[k]->head(O1, st1, Q, K, 1, (size_t)inner, V, HW, inner, dh, scale);
                    same &= memcmp(O0, O1, m * sizeof(float)) == 0 && memcmp(st0, st1, sizeof(float) * 2 * (size_t)HW) == 0;
                    cases++;
                }
            }
            dfs_free(Q), dfs_free(K), dfs_free(V), dfs_free(KT), dfs_free(O0), dfs_free(O1);
        }
    TEST_CHECK(right);
    TEST_CHECK(same);
    int permitted = 0;
    for (int k = 0; k < n - 1; k++) permitted += dfs_isa_permits(impls[k]->name);
    TEST_CHECK(cases == 2 * 9 * 6 * permitted);
}

static void test_act(void) {
    static const dfs_act acts[] = {DFS_ACT_SILU, DFS_ACT_MISH, DFS_ACT_GELU, DFS_ACT_RELU};
    for (size_t k = 0; k < sizeof acts / sizeof *acts; k++) {
        float x[64];
        double worst = 0;
        for (int i = 0; i < 64; i++) x[i] = (float)(i - 32) * 0.9f;
        x[0] = -100.0f; x[63] = 100.0f; /* saturation */
        float y[64];
        memcpy(y, x, sizeof x);
        dfs_act_forward(y, 64, acts[k]);
        for (int i = 0; i < 64; i++) {
            double ref = dfs_act_ref(x[i], acts[k]);
            double e = fabs(y[i] - ref) / (1 + fabs(ref));
            if (e > worst || isnan(y[i])) worst = isnan(y[i]) ? 1 : e;
        }
        TEST_CHECK(worst < 1e-6);
    }
}

static void test_resample(void) {
    float x[2 * 3 * 5], up[2 * 6 * 10], down[2 * 3 * 5];
    for (int i = 0; i < 30; i++) x[i] = (float)i;
    dfs_upsample2x_forward(up, x, 2, 3, 5);
    int ok = 1;
    for (int p = 0; p < 2; p++)
        for (int y = 0; y < 6; y++)
            for (int xx = 0; xx < 10; xx++) ok &= up[(p * 6 + y) * 10 + xx] == x[(p * 3 + y / 2) * 5 + xx / 2];
    TEST_CHECK(ok);
    dfs_avgpool2x_forward(down, up, 2, 6, 10);
    TEST_CHECK(memcmp(down, x, sizeof x) == 0); /* pooling undoes nearest upsampling exactly */
    float odd[1 * 3 * 3] = {1, 2, 100, 3, 4, 100, 100, 100, 100}, pooled[1];
    dfs_avgpool2x_forward(pooled, odd, 1, 3, 3); /* floor: the last row and column are dropped */
    TEST_NEAR(pooled[0], 2.5, 0);
}

static void test_timestep_embedding(void) {
    /* Against the closed form in double; torch's float32 rounding keeps it within ~1e-4 at t≈1000. */
    const float t[3] = {0.0f, 10.0f, 999.0f};
    float e[3 * 33];
    dfs_timestep_embedding(e, t, 3, 33, 1, 1.0f);
    double worst = 0;
    for (int n = 0; n < 3; n++)
        for (int i = 0; i < 16; i++) {
            double f = exp(-log(10000.0) * i / (16 - 1.0)), a = t[n] * f;
            worst = fmax(worst, fabs(e[n * 33 + i] - cos(a)));
            worst = fmax(worst, fabs(e[n * 33 + 16 + i] - sin(a)));
        }
    TEST_CHECK(worst < 2e-4);
    TEST_CHECK(e[32] == 0.0f && e[65] == 0.0f); /* odd width: zero padded */
}

/* Every micro-kernel this CPU runs against a double-precision product, full and partial tiles,
 * adding to C and overwriting it. */
static void test_gemm_kernels(void) {
    const dfs_gemm_impl *impls[4];
    int n = dfs_gemm_available(impls, 4);
    TEST_CHECK(n >= 1 && impls[n - 1] == &dfs_gemm_scalar);
    const int kc = 37, lda = 41;
    for (int i = 0; i < n; i++) {
        const int NR = impls[i]->nr;
        float *a = rand_buf((size_t)DFS_GEMM_MR * lda, 1), *b = rand_buf((size_t)kc * NR, 1);
        for (int mr = 1; mr <= DFS_GEMM_MR; mr++) {
            for (int nr = 1; nr <= NR; nr += NR / 3 + 1) {
                for (int add = 0; add <= 1; add++) {
                    const int ldc = NR + 3;
                    float *c = rand_buf((size_t)DFS_GEMM_MR * ldc, 1), *c0 = dfs_malloc(sizeof(float) * DFS_GEMM_MR * ldc);
                    memcpy(c0, c, sizeof(float) * DFS_GEMM_MR * ldc);
                    impls[i]->kernel(kc, a, lda, b, (size_t)NR, c, ldc, mr, nr, add);
                    double worst = 0;
                    int untouched = 1;
                    for (int r = 0; r < DFS_GEMM_MR; r++)
                        for (int j = 0; j < ldc; j++) {
                            if (r >= mr || j >= nr) {
                                untouched &= c[r * ldc + j] == c0[r * ldc + j];
                                continue;
                            }
                            double ref = add ? c0[r * ldc + j] : 0.0; /* add = 0 overwrites */
                            for (int k = 0; k < kc; k++) ref += (double)a[r * lda + k] * b[k * NR + j];
                            worst = fmax(worst, fabs(c[r * ldc + j] - ref));
                        }
                    if (!TEST_CHECK(worst < 1e-4 && untouched))
                        fprintf(stderr, "  gemm %s mr %d nr %d add %d: err %g, untouched %d\n", impls[i]->name, mr, nr, add,
                                worst, untouched);
                    dfs_free(c);
                    dfs_free(c0);
                }
            }
        }
        dfs_free(a);
        dfs_free(b);
    }
}

/* The strided GEMM driver, each operand plain or transposed, against a double-precision product
 * (sizes crossing row chunks, strips and K panels), and bit-identical with 1 and 2 threads. */
static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The BF16 kernels: rounding against hand-worked cases, every version's packing and products with
 * the portable one's bits, and the portable products against a double-precision sum of the same
 * rounded values. */
static void test_gemm_bf16(void) {
    static const struct { uint32_t in; uint16_t out; } cases[] = {
        {0x3f800000u, 0x3f80}, {0x3f808000u, 0x3f80}, {0x3f818000u, 0x3f82}, {0x3f808001u, 0x3f81},
        {0x7f7fffffu, 0x7f80}, {0x7f800000u, 0x7f80}, {0xff800000u, 0xff80}, {0x00000001u, 0x0000},
        {0x807fffffu, 0x8000}, {0x00800000u, 0x0080}, {0x7fc00001u, 0x7fc0}, {0x7f800001u, 0x7fc0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (!TEST_CHECK(dfs_bf16_round(bits_float(cases[i].in)) == cases[i].out))
            fprintf(stderr, "  bf16 of %08x: %04x\n", cases[i].in, dfs_bf16_round(bits_float(cases[i].in)));
    const dfs_gemm_bf16_impl *impls[4];
    const int n = dfs_gemm_bf16_available(impls, 4);
    TEST_CHECK(n >= 1 && strcmp(impls[n - 1]->name, "scalar") == 0);
    enum { KC2 = 130, M = 8, NCOL = 48 };
    float lo[KC2 * NCOL], hi[KC2 * NCOL], alo[M * KC2], ahi[M * KC2];
    for (int i = 0; i < KC2 * NCOL; i++) {
        lo[i] = frand() * ldexpf(1.0f, (int)(frand() * 20)), hi[i] = frand();
        if (i % 97 == 0) lo[i] = bits_float(0x00400000u); /* a denormal, read as zero */
        if (i % 89 == 0) hi[i] = 1e-20f;                  /* products down near the denormal range */
    }
    for (int i = 0; i < M * KC2; i++) alo[i] = frand(), ahi[i] = i % 89 == 0 ? 1e-20f : frand();
    static uint32_t b[KC2 * NCOL], b1[KC2 * NCOL], a[M * KC2];
    impls[n - 1]->pack(b, lo, hi, KC2 * NCOL);
    impls[n - 1]->pack(a, alo, ahi, M * KC2);
    int same = 1;
    for (int k = 0; k < n; k++)
        for (int len = 1; len <= 40; len += 13) {
            memset(b1, 0, sizeof b1);
            impls[k]->pack(b1, lo, len == 40 ? NULL : hi, len);
            for (int j = 0; j < len; j++)
                same &= b1[j] == (dfs_bf16_round(lo[j]) | (uint32_t)(len == 40 ? 0 : dfs_bf16_round(hi[j])) << 16);
            same &= b1[len] == 0;
        }
    static const int kcs[] = {1, 7, 64, 130}, nrs[] = {1, 15, 16, 17, 32, 33, 48};
    float c0[M * NCOL], c1[M * NCOL];
    double worst = 0;
    for (int k = 0; k < n; k++)
        for (size_t ik = 0; ik < sizeof kcs / sizeof *kcs; ik++)
            for (size_t in = 0; in < sizeof nrs / sizeof *nrs; in++)
                for (int mr = 1; mr <= M; mr += 3)
                    for (int add = 0; add <= 1; add++) {
                        const int kc2 = kcs[ik], nr = nrs[in];
                        for (int i = 0; i < M * NCOL; i++) c0[i] = c1[i] = (float)i * 0.125f;
                        impls[n - 1]->kernel(kc2, a, KC2, b, NCOL, c0, NCOL, mr, nr, add);
                        impls[k]->kernel(kc2, a, KC2, b, NCOL, c1, NCOL, mr, nr, add);
                        same &= memcmp(c0, c1, sizeof c0) == 0;
                        if (k > 0 || add) continue;
                        for (int i = 0; i < mr; i++)
                            for (int j = 0; j < nr; j++) {
                                double ref = 0, mag = 0;
                                for (int q = 0; q < kc2; q++) {
                                    const uint32_t x = a[i * KC2 + q], y = b[q * NCOL + j];
                                    const double p = (double)bits_float(x << 16) * bits_float(y << 16) +
                                                     (double)bits_float(x & 0xffff0000u) * bits_float(y & 0xffff0000u);
                                    ref += p, mag += fabs(p);
                                }
                                const double e = fabs(c0[i * NCOL + j] - ref) / (mag + 1e-30);
                                if (e > worst) worst = e;
                            }
                    }
    if (!TEST_CHECK(same)) fprintf(stderr, "  bf16 kernels differ between versions\n");
    if (!TEST_CHECK(worst < 1e-5)) fprintf(stderr, "  bf16 products off the reference by %g\n", worst);
}

static void test_gemm_driver(int M, int N, int K) {
    float *a = rand_buf((size_t)M * K, 1), *b = rand_buf((size_t)K * N, 1);
    float *c0 = rand_buf((size_t)M * N, 1), *c1 = dfs_malloc(sizeof(float) * M * N), *c2 = dfs_malloc(sizeof(float) * M * N);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            /* the same logical A (M×K) and B (K×N), stored row-major or transposed */
            const size_t a_rs = ta ? 1 : (size_t)K, a_cs = ta ? (size_t)M : 1;
            const size_t b_rs = tb ? 1 : (size_t)N, b_cs = tb ? (size_t)K : 1;
            memcpy(c1, c0, sizeof(float) * M * N);
            memcpy(c2, c0, sizeof(float) * M * N);
            dfs_ops_set_threads(1);
            dfs_gemm(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c1, (size_t)N);
            dfs_ops_set_threads(2);
            dfs_gemm(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c2, (size_t)N);
            double worst = 0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double ref = c0[(size_t)i * N + j];
                    for (int k = 0; k < K; k++) ref += (double)a[i * a_rs + k * a_cs] * b[k * b_rs + j * b_cs];
                    worst = fmax(worst, fabs(c1[(size_t)i * N + j] - ref) / (1 + fabs(ref)));
                }
            if (!TEST_CHECK(worst < 1e-5)) fprintf(stderr, "  gemm %dx%dx%d ta %d tb %d: err %g\n", M, N, K, ta, tb, worst);
            TEST_CHECK(memcmp(c1, c2, sizeof(float) * M * N) == 0);
        }
    dfs_free(a); dfs_free(b); dfs_free(c0); dfs_free(c1); dfs_free(c2);
}

int main(void) {
    test_gemm_kernels();
    test_gemm_bf16();
    test_gemm_driver(1, 1, 1);
    test_gemm_driver(7, 5, 3);
    test_gemm_driver(131, 97, 300);
    test_gemm_driver(64, 48, 256);
    test_gemm_driver(301, 40, 20);  /* tiles of many rows (A in place): 151 at 1 thread, 80 at 2 */
    test_gemm_driver(203, 100, 260); /* the same over two K panels and three strips */
    test_conv(1, 40, 24, 20, 13, 3, 1, 1);  /* several K panels, several pixel panels */
    test_conv(2, 70, 9, 9, 66, 1, 1, 0);
    test_conv(1, 30, 33, 31, 9, 3, 2, 1);
    test_conv(1, 3, 7, 9, 5, 3, 1, 1);
    test_conv(2, 4, 8, 8, 8, 3, 1, 1);
    test_conv(1, 17, 5, 3, 3, 3, 1, 1);
    test_conv(2, 5, 9, 7, 6, 1, 1, 0);
    test_conv(3, 9, 5, 6, 7, 1, 1, 0); /* 1×1 read in place but for the last image, also with more threads than images */
    test_conv(1, 3, 8, 8, 4, 3, 2, 1);
    test_conv(2, 6, 9, 7, 5, 3, 2, 1);
    test_conv(1, 4, 8, 6, 7, 3, 2, 0);
    test_conv(1, 1, 1, 1, 1, 3, 1, 1);
    test_conv(2, 300, 6, 5, 70, 3, 1, 1); /* channels over one K panel, output channels over one tile */
    test_conv(1, 260, 4, 13, 9, 1, 1, 0);
    test_conv(1, 8, 30, 30, 16, 3, 1, 0);
    test_conv(2, 70, 8, 9, 66, 3, 2, 1); /* strided: several K panels, output channels over one tile */
    test_conv(1, 5, 11, 10, 7, 5, 2, 2);
    test_conv(3, 4, 13, 12, 5, 4, 3, 1);
    test_conv(1, 2, 5, 5, 3, 1, 2, 1); /* padding wider than the kernel */
    test_conv(2, 3, 9, 9, 4, 2, 2, 3);
    test_linear(1, 1, 1);
    test_linear(3, 17, 5);
    test_linear(2, 64, 33);
    test_groupnorm(1, 4, 9, 2, DFS_ACT_NONE);
    test_groupnorm(3, 128, 49, 8, DFS_ACT_NONE); /* attention's, at 7×7: 16 channels a group */
    test_groupnorm(2, 40, 23, 2, DFS_ACT_NONE);
    test_groupnorm(2, 32, 17, 8, DFS_ACT_SILU);
    test_groupnorm(2, 6, 1, 3, DFS_ACT_GELU);
    test_groupnorm(1, 15, 25, 5, DFS_ACT_MISH);
    test_attention(1, 8, 9, 1, 8, 1.0f);
    test_attention(2, 16, 17, 2, 8, 1.0f);
    test_attention(5, 16, 49, 4, 4, 1.0f); /* more images than threads */
    test_attention(3, 8, 4, 2, 4, 1.41421356f); /* fewer positions than the dot-product rows of linear layers */
    test_attention(1, 12, 16, 3, 4, 1.41421356f);
    test_attention(1, 10, 5, 3, 3, 1.0f); /* heads·dh < C, as diffusers allows */
    test_attention(1, 8, 300, 2, 4, 1.0f);  /* several query tasks and key blocks per head */
    test_attention(2, 24, 520, 1, 24, 1.0f); /* a last key block of 8 */
    test_attention(6, 128, 49, 4, 32, 1.0f); /* the 28x28 model's 7x7 attention: heads in vectors (attn.h) */
    test_attention(1, 64, 64, 1, 64, 1.41421356f);
    test_attn_impls();
    test_act();
    test_resample();
    test_timestep_embedding();
    /* last, so that the cases above keep their random inputs */
    test_conv(3, 20, 9, 7, 70, 3, 1, 1);  /* Winograd: odd sizes, strips across images, two channel blocks */
    test_conv(1, 300, 14, 14, 9, 3, 1, 1); /* Winograd: channels over one K panel */
    test_conv(1, 3, 64, 64, 5, 3, 1, 1);   /* Winograd: many strips */
    test_conv(7, 5, 7, 7, 6, 3, 1, 1);     /* Winograd: runs over 4 tile rows, strips across images */
    test_conv(5, 4, 3, 13, 6, 3, 1, 1);    /* Winograd: runs over 2 tile rows of 7 tiles */
    test_conv(9, 3, 5, 3, 4, 3, 1, 1);     /* Winograd: runs over 3 tile rows of 2 tiles */
    /* F(4×4, 3×3): images of up to 32×32 in enough tiles take it, and only they: at least 64 for
     * the AVX-512 kernel's strips of 48 columns, in proportion for narrower strips (4 to a 7×7 image) */
    const int least = 64 * dfs_gemm_best()->nr / 48, b7 = (least + 3) / 4;
    TEST_CHECK(dfs_winograd_tile(b7, 8, 8, 7, 7, 0) == 4 && dfs_winograd_tile(64, 8, 8, 4, 4, 0) == 4 &&
               dfs_winograd_tile(1, 8, 8, 32, 32, 0) == 4 && dfs_winograd_tile(2, 8, 8, 28, 28, 0) == 4);
    TEST_CHECK(dfs_winograd_tile(b7 - 1, 8, 8, 7, 7, 0) == 2 && dfs_winograd_tile(64, 8, 8, 33, 8, 0) == 2 &&
               dfs_winograd_tile(64, 8, 8, 8, 33, 0) == 2 && dfs_winograd_tile(1, 8, 8, 12, 12, 0) == 2 &&
               dfs_winograd_tile(64, 8, 8, 7, 7, 1) == 2 && dfs_winograd_tile(64, 8, 1 << 20, 8, 8, 0) == 2);
    test_conv(16, 20, 7, 7, 70, 3, 1, 1);  /* odd size, strips across images, two channel blocks */
    test_conv(64, 9, 4, 4, 8, 3, 1, 1);    /* one tile an image */
    test_conv(20, 300, 8, 5, 12, 3, 1, 1); /* non-square, channels over one K panel */
    test_conv(64, 2, 8, 1, 8, 3, 1, 1);    /* one column */
    test_conv(30, 3, 6, 3, 9, 3, 1, 1);    /* partial tiles in both directions */
    test_conv(3, 6, 28, 20, 17, 3, 1, 1);  /* larger images: runs within a tile row */
    test_conv(2, 4, 32, 30, 9, 3, 1, 1);   /* the largest side, a partial last tile column */
    test_winograd_impls();
    test_conv_prepared(16, 7, 7, 7, 20); /* F(4×4, 3×3) */
    test_conv_prepared(2, 7, 10, 9, 20);
    test_conv_prepared(1, 5, 4, 4, 6); /* too small for Winograd: the direct path ignores prep */
    return test_summary("ops");
}
