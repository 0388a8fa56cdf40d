/* dtype table and exact half-precision conversions. */
#include <math.h>
#include <string.h>

#include "io/tensor.h"

static const struct { dfs_dtype t; const char *name; size_t size; } table[] = {
    {DFS_DTYPE_F32, "F32", 4}, {DFS_DTYPE_F16, "F16", 2}, {DFS_DTYPE_BF16, "BF16", 2}, {DFS_DTYPE_F64, "F64", 8},
    {DFS_DTYPE_I64, "I64", 8}, {DFS_DTYPE_I32, "I32", 4}, {DFS_DTYPE_I16, "I16", 2},  {DFS_DTYPE_I8, "I8", 1},
    {DFS_DTYPE_U8, "U8", 1},   {DFS_DTYPE_BOOL, "BOOL", 1},
};

size_t dfs_dtype_size(dfs_dtype t) {
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (table[i].t == t) return table[i].size;
    return 0;
}

const char *dfs_dtype_name(dfs_dtype t) {
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (table[i].t == t) return table[i].name;
    return "?";
}

int dfs_dtype_from_name(const char *name, dfs_dtype *out) {
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strcmp(table[i].name, name) == 0) {
            *out = table[i].t;
            return 1;
        }
    return 0;
}

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float dfs_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0x1F) return bits_to_f32(sign | 0x7F800000u | (man << 13)); /* inf / NaN */
    if (exp == 0) { /* zero or subnormal: man · 2^-24 exactly */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t dfs_f32_to_f16(float f) {
    uint32_t u = f32_to_bits(f), sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) return (uint16_t)(sign | 0x7C00 | (a > 0x7F800000u ? 0x200 : 0)); /* inf / NaN */
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00);                                   /* rounds to inf */
    if (a < 0x38800000u) { /* below the smallest normal: subnormal or zero, rounded to nearest even */
        float v = bits_to_f32(a) * 16777216.0f; /* in units of 2^-24, exact in float */
        float r = nearbyintf(v);               /* default rounding mode: to nearest even */
        return (uint16_t)(sign | (uint32_t)r);
    }
    uint32_t man = a & 0x7FFFFF, exp = (a >> 23) - 112;
    uint32_t h = (exp << 10) | (man >> 13), rest = man & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* carries into the exponent correctly */
    return (uint16_t)(sign | h);
}

float dfs_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t dfs_f32_to_bf16(float f) {
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7FFF + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
