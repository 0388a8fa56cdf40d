/* Sigma schedules shared by the sigma-parameterised samplers (Euler, Euler ancestral,
 * DPM-Solver++): σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) in float32, interpolated at the chosen timesteps in
 * double as numpy's interp does, optionally respaced as Karras et al. (2022) propose. */
#include "sched/sched_internal.h"
#include "sched/sigmas.h"

void dfs_sched_train_sigmas(const dfs_sched *s, double *out) {
    for (int i = 0; i < s->cfg.num_train_timesteps; i++) {
        const float ac = s->alphas_cumprod[i];
        out[i] = (double)sqrtf((1.0f - ac) / ac);
    }
}

double dfs_sched_interp(double x, const double *fp, int n) {
    if (x <= 0) return fp[0];
    if (x >= n - 1) return fp[n - 1];
    const int j = (int)x;
    const double slope = fp[j + 1] - fp[j];
    return slope * (x - j) + fp[j];
}

void dfs_sched_karras(double sigma_min, double sigma_max, int n, double *out) {
    const double rho = 7.0, min_inv = pow(sigma_min, 1 / rho), max_inv = pow(sigma_max, 1 / rho);
    for (int i = 0; i < n; i++) {
        const double ramp = n == 1 ? 0.0 : (double)i / (n - 1);
        out[i] = pow(max_inv + ramp * (min_inv - max_inv), rho);
    }
}

/* diffusers' _sigma_to_t: the fractional timestep whose log-sigma matches, by linear
 * interpolation between neighbouring training timesteps. */
double dfs_sched_sigma_to_t(double sigma, const double *log_sigmas, int T) {
    const double ls = log(sigma > 1e-10 ? sigma : 1e-10);
    int low = 0;
    for (int i = 0; i < T; i++)
        if (ls - log_sigmas[i] >= 0) low = i; /* last index with log σ_i <= log σ (cumsum argmax) */
    if (low > T - 2) low = T - 2;
    const double lo = log_sigmas[low], hi = log_sigmas[low + 1];
    double w = (lo - ls) / (lo - hi);
    w = w < 0 ? 0 : w > 1 ? 1 : w;
    return (1 - w) * low + w * (low + 1);
}
