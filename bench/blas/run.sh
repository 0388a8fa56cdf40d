#!/bin/sh
# diffuse's GEMM against OpenBLAS and BLIS (Debian's libopenblas-dev, libblis-dev) on the UNet's
# convolution shapes. Run from the repository root after `make`.
set -e
B=${BUILD:-build}
CFLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Iinclude -Isrc -fopenmp"
cc $CFLAGS bench/blas/blas_compare.c $B/libdiffuse.a \
    /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so -lm -o $B/blas_openblas
cc $CFLAGS bench/blas/blas_compare.c $B/libdiffuse.a \
    /usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so -lm -o $B/blas_blis
$B/blas_openblas openblas
$B/blas_blis blis
