/* PyTorch's CPU random stream, reproduced bit for bit.
 *
 * torch.manual_seed(s) seeds a 32-bit Mersenne Twister (MT19937) with the low 32 bits of s.
 * torch.randn(n) on a float32 tensor then takes one of two paths:
 *  - n >= 16: one 24-bit uniform per element ((random() & 0xFFFFFF) · 2^-24), then Box-Muller in
 *    place on each block of 16, pairing element j with j + 8: r = sqrt(−2·log(1 − u_j)),
 *    θ = 2π·u_{j+8}, out_j = r·cos θ, out_{j+8} = r·sin θ. When n is not a multiple of 16, the
 *    last 16 elements get fresh uniforms and are transformed again. The log, sin and cos are
 *    the Cephes-style float polynomials of ATen's avx_mathfun.h, compiled with fused
 *    multiply-adds; they are reproduced below, operation for operation, with fmaf where the
 *    compiled code fuses.
 *  - n < 16: element by element in double: u1, u2 from 53-bit uniforms, r = sqrt(−2·log1p(−u2)),
 *    θ = 2π·u1, out = (float)(r·cos θ), and r·sin θ is cached for the next element (across calls,
 *    until the next seeding).
 * docs/rng.md has the details and what was verified. */
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "core/rng.h"

#define MT_N 624
#define MT_M 397

struct dfs_rng {
    uint32_t mt[MT_N];
    int mti;
    int has_cached_normal; /* a double from the small-tensor path waiting to be used */
    double cached_normal;
};

void dfs_rng_seed(dfs_rng *r, uint64_t seed) {
    r->mt[0] = (uint32_t)seed;
    for (int i = 1; i < MT_N; i++) r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->mti = MT_N;
    r->has_cached_normal = 0;
    r->cached_normal = 0.0;
}

dfs_rng *dfs_rng_new(uint64_t seed) {
    dfs_rng *r = dfs_malloc(sizeof *r);
    if (r) dfs_rng_seed(r, seed);
    return r;
}

void dfs_rng_free(dfs_rng *r) { dfs_free(r); }

static uint32_t next_u32(dfs_rng *r) {
    if (r->mti >= MT_N) {
        for (int i = 0; i < MT_N; i++) {
            const uint32_t y = (r->mt[i] & 0x80000000u) | (r->mt[(i + 1) % MT_N] & 0x7FFFFFFFu);
            r->mt[i] = r->mt[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908B0DFu : 0u);
        }
        r->mti = 0;
    }
    uint32_t y = r->mt[r->mti++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9D2C5680u;
    y ^= (y << 15) & 0xEFC60000u;
    y ^= y >> 18;
    return y;
}

uint32_t dfs_rng_u32(dfs_rng *r) { return next_u32(r); }

static float uniform_f32(dfs_rng *r) { return (float)(next_u32(r) & 0xFFFFFFu) * (1.0f / 16777216.0f); }

static double uniform_f64(dfs_rng *r) {
    const uint32_t hi = next_u32(r), lo = next_u32(r);
    const uint64_t v = ((uint64_t)hi << 32) | lo;
    return (double)(v & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* avx_mathfun's log for x in (0, 1]: exponent and mantissa in [√½, √2), a degree-8 polynomial. */
static float cephes_logf(float x) {
    const float min_norm = bits_f32(0x00800000u);
    if (x < min_norm) x = min_norm;
    const uint32_t u = f32_bits(x);
    float e = (float)((int32_t)(u >> 23) - 0x7F) + 1.0f;
    x = bits_f32((u & ~0x7F800000u) | f32_bits(0.5f));
    const int small = x < 0.707106781186547524f;
    const float tmp = small ? x : 0.0f;
    x = x - 1.0f;
    if (small) e = e - 1.0f;
    x = x + tmp;
    const float z = x * x;
    float y = 7.0376836292E-2f;
    y = fmaf(y, x, -1.1514610310E-1f);
    y = fmaf(y, x, 1.1676998740E-1f);
    y = fmaf(y, x, -1.2420140846E-1f);
    y = fmaf(y, x, 1.4249322787E-1f);
    y = fmaf(y, x, -1.6668057665E-1f);
    y = fmaf(y, x, 2.0000714765E-1f);
    y = fmaf(y, x, -2.4999993993E-1f);
    y = fmaf(y, x, 3.3333331174E-1f);
    y = y * x;
    y = fmaf(y, z, e * -2.12194440e-4f);
    y = fmaf(z, -0.5f, y);
    x = x + y;
    return fmaf(e, 0.693359375f, x);
}

/* avx_mathfun's sincos: reduction by π/4 in three parts, two polynomials, octant signs. */
static void cephes_sincosf(float theta, float *s, float *c) {
    uint32_t sign_sin = f32_bits(theta) & 0x80000000u;
    float x = bits_f32(f32_bits(theta) & 0x7FFFFFFFu);
    int32_t j = (int32_t)(x * 1.27323954473516f); /* truncation, as cvttps */
    j = (j + 1) & ~1;
    const float yq = (float)j;
    sign_sin ^= (uint32_t)(j & 4) << 29;
    const int poly = (j & 2) == 0;
    const uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    x = fmaf(yq, -0.78515625f, x);
    x = fmaf(yq, -2.4187564849853515625e-4f, x);
    x = fmaf(yq, -3.77489497744594108e-8f, x);
    const float z = x * x;
    float yc = fmaf(2.443315711809948E-005f, z, -1.388731625493765E-003f);
    yc = fmaf(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = fmaf(-1.9515295891E-4f, z, 8.3321608736E-3f);
    ys = fmaf(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = fmaf(ys, x, x);
    *s = bits_f32(f32_bits(poly ? ys : yc) ^ sign_sin);
    *c = bits_f32(f32_bits(poly ? yc : ys) ^ sign_cos);
}

/* Box-Muller on 16 uniforms in place, pairing j with j + 8. */
static void normal16(float *d) {
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        const float radius = sqrtf(-2.0f * cephes_logf(1.0f - d[j]));
        float s, c;
        cephes_sincosf(two_pi * d[j + 8], &s, &c);
        /* torch ends with x·std + mean: a uniform of exactly 0 gives radius −0, which that turns to +0 */
        d[j] = radius * c + 0.0f;
        d[j + 8] = radius * s + 0.0f;
    }
}

void dfs_rng_randn(dfs_rng *r, float *out, size_t n) {
    if (n >= 16) {
        for (size_t i = 0; i < n; i++) out[i] = uniform_f32(r);
        for (size_t i = 0; i + 16 <= n; i += 16) normal16(out + i);
        if (n % 16) {
            float *tail = out + n - 16;
            for (int i = 0; i < 16; i++) tail[i] = uniform_f32(r);
            normal16(tail);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (r->has_cached_normal) {
            r->has_cached_normal = 0;
            out[i] = (float)r->cached_normal;
            continue;
        }
        const double u1 = uniform_f64(r), u2 = uniform_f64(r);
        const double radius = sqrt(-2.0 * log1p(-u2)), theta = 2.0 * 3.14159265358979323846 * u1;
        r->cached_normal = radius * sin(theta);
        r->has_cached_normal = 1;
        out[i] = (float)(radius * cos(theta));
    }
}

void dfs_rng_save(const dfs_rng *r, uint32_t *words) {
    memcpy(words, r->mt, sizeof r->mt);
    words[MT_N] = (uint32_t)r->mti;
    words[MT_N + 1] = (uint32_t)r->has_cached_normal;
    uint64_t bits;
    memcpy(&bits, &r->cached_normal, sizeof bits);
    words[MT_N + 2] = (uint32_t)bits;
    words[MT_N + 3] = (uint32_t)(bits >> 32);
}

int dfs_rng_load(dfs_rng *r, const uint32_t *words) {
    if (words[MT_N] > MT_N || words[MT_N + 1] > 1) return 0;
    memcpy(r->mt, words, sizeof r->mt);
    r->mti = (int)words[MT_N];
    r->has_cached_normal = (int)words[MT_N + 1];
    const uint64_t bits = (uint64_t)words[MT_N + 2] | (uint64_t)words[MT_N + 3] << 32;
    memcpy(&r->cached_normal, &bits, sizeof bits);
    return 1;
}
