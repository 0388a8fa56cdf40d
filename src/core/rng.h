/* A random number generator that reproduces PyTorch's CPU generator: after dfs_rng_seed(r, s),
 * dfs_rng_randn(r, out, n) writes the same float32 values, bit for bit, as
 * torch.manual_seed(s); torch.randn(n) on the CPU, and successive calls continue the stream the
 * way successive torch.randn calls do. */
#ifndef DFS_CORE_RNG_H
#define DFS_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct dfs_rng dfs_rng;

dfs_rng *dfs_rng_new(uint64_t seed); /* NULL when out of memory */
void dfs_rng_free(dfs_rng *r);
void dfs_rng_seed(dfs_rng *r, uint64_t seed);
/* One raw 32-bit draw of the Mersenne Twister (torch's generator.random()). */
uint32_t dfs_rng_u32(dfs_rng *r);
/* Standard normal float32 values, as torch.randn(n) (a contiguous tensor of n elements). */
void dfs_rng_randn(dfs_rng *r, float *out, size_t n);

/* The whole state as DFS_RNG_STATE_WORDS 32-bit words, for checkpoints; load returns 0 when the
 * words are not a valid state. */
#define DFS_RNG_STATE_WORDS 628
void dfs_rng_save(const dfs_rng *r, uint32_t *words);
int dfs_rng_load(dfs_rng *r, const uint32_t *words);

#endif
