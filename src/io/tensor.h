/* Element types of tensors in files (safetensors, .npy) and their conversions. */
#ifndef DFS_IO_TENSOR_H
#define DFS_IO_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum dfs_dtype {
    DFS_DTYPE_F32,
    DFS_DTYPE_F16,
    DFS_DTYPE_BF16,
    DFS_DTYPE_F64,
    DFS_DTYPE_I64,
    DFS_DTYPE_I32,
    DFS_DTYPE_I16,
    DFS_DTYPE_I8,
    DFS_DTYPE_U8,
    DFS_DTYPE_BOOL
} dfs_dtype;

size_t dfs_dtype_size(dfs_dtype t);
const char *dfs_dtype_name(dfs_dtype t); /* as safetensors spells them: "F32", ... */
/* Looks up a safetensors dtype name; returns 0 when unknown. */
int dfs_dtype_from_name(const char *name, dfs_dtype *out);

float dfs_f16_to_f32(uint16_t h);
uint16_t dfs_f32_to_f16(float f);  /* round to nearest even, like torch's .half() */
float dfs_bf16_to_f32(uint16_t h);
uint16_t dfs_f32_to_bf16(float f); /* round to nearest even, like torch's .bfloat16() */

#endif
