/* Sigma schedule helpers (see sigmas.c). */
#ifndef DFS_SCHED_SIGMAS_H
#define DFS_SCHED_SIGMAS_H

#include "sched/sched_internal.h"

/* σ of every training timestep, float32 values held in double: (num_train_timesteps). */
void dfs_sched_train_sigmas(const dfs_sched *s, double *out);
/* numpy.interp(x, arange(n), fp) */
double dfs_sched_interp(double x, const double *fp, int n);
/* Karras et al. (2022) spacing with ρ = 7 from sigma_max down to sigma_min, n values. */
void dfs_sched_karras(double sigma_min, double sigma_max, int n, double *out);
double dfs_sched_sigma_to_t(double sigma, const double *log_sigmas, int T);

#endif
