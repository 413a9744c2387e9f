// Manifold-constrained hyper-connections (spec §3.1, §3.11), following the official reference
// (inference/model.py Block.hc_pre / hc_post, ParallelHead.hc_head; kernel.py
// hc_split_sinkhorn) operation by operation, all in fp32:
//   * the mixes are fp32 dot products of the *un-normalised* flattened streams with fn rows,
//     multiplied afterwards by r = 1/sqrt(mean(v²) + norm_eps);
//   * every product that the reference materialises as a tensor (pre·v, post·o, comb·R) is
//     rounded to fp32 before it is summed, and sums over streams run in ascending stream order
//     (what torch's reduction over a size-hc dimension does), so the only differences from the
//     reference are the fp32 summation orders inside the two long dot products (mixes, Σv²);
//   * bf16 rounding only where the reference casts back to bf16 (hc_pre/hc_head output, hc_post
//     output).
#include "model/hyper_connections.hpp"

#include <algorithm>
#include <cmath>

#include "dsv4/ref/formats.hpp"
#include "dsv4/ref/ops.hpp"
#include "threading/parallel.hpp"

namespace dsv4::model {
namespace {

inline float sigmoid(float x) {
    return 1.0f / (1.0f + std::exp(-x));
}

// r = 1/sqrt(mean(v²) + eps) over the n = hc·dim values of one token.
inline float inv_rms(const kernels::KernelTable & k, const float * v, int64_t n, float eps) {
    const float ss = k.dot_f32(v, v, n);
    return 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
}

// hc_split_sinkhorn of kernel.py for one token: m = the hc·(2+hc) mixes (already times r).
//   pre[c]  = sigmoid(m[c]·scale0 + base[c]) + eps
//   post[c] = 2·sigmoid(m[hc+c]·scale1 + base[hc+c])
//   M[j][k] = m[2hc + j·hc + k]·scale2 + base[2hc + j·hc + k]
//   M = row softmax(M) + eps (eps after the division); M /= (column sums + eps);
//   then (iters − 1) times: M /= (row sums + eps); M /= (column sums + eps).
void split_sinkhorn(const float * m, const float * scale, const float * base, int hc, int iters,
                    float eps, HcSplit & out) {
    for (int c = 0; c < hc; ++c) out.pre[c] = sigmoid(m[c] * scale[0] + base[c]) + eps;
    for (int c = 0; c < hc; ++c) out.post[c] = 2.0f * sigmoid(m[hc + c] * scale[1] + base[hc + c]);

    float *   M   = out.comb;  // M[j * hc + k]: row j, column k
    const int off = 2 * hc;
    for (int i = 0; i < hc * hc; ++i) M[i] = m[off + i] * scale[2] + base[off + i];

    float      col[kMaxHcMult];
    const auto normalise_columns = [&] {
        for (int k = 0; k < hc; ++k) col[k] = 0.0f;
        for (int j = 0; j < hc; ++j)
            for (int k = 0; k < hc; ++k) col[k] += M[j * hc + k];
        for (int j = 0; j < hc; ++j)
            for (int k = 0; k < hc; ++k) M[j * hc + k] /= col[k] + eps;
    };

    // Row softmax, eps added after the division.
    for (int j = 0; j < hc; ++j) {
        float * row = M + j * hc;
        ref::softmax_inplace(row, hc);
        for (int k = 0; k < hc; ++k) row[k] += eps;
    }
    normalise_columns();

    for (int it = 1; it < iters; ++it) {
        for (int j = 0; j < hc; ++j) {
            float * row = M + j * hc;
            float   sum = 0.0f;
            for (int k = 0; k < hc; ++k) sum += row[k];
            for (int k = 0; k < hc; ++k) row[k] /= sum + eps;
        }
        normalise_columns();
    }
}

// y[i] = bf16(Σ_c pre[c]·v[c·dim + i]), products rounded to fp32, summed in stream order.
void mix_streams(const float * pre, const float * v, int hc, int64_t dim, float * y) {
    for (int64_t i = 0; i < dim; ++i) {
        float acc = pre[0] * v[i];
        for (int c = 1; c < hc; ++c) {
            const float p = pre[c] * v[c * dim + i];
            acc += p;
        }
        y[i] = ref::round_bf16(acc);
    }
}

// Tokens per parallel_for grain: enough work per chunk to amortise a thread start.
int64_t token_grain(int64_t flops_per_token) {
    constexpr int64_t kMinFlopsPerChunk = int64_t{1} << 16;
    return std::max<int64_t>(1, kMinFlopsPerChunk / std::max<int64_t>(flops_per_token, 1));
}

}  // namespace

int64_t hc_scratch_floats(const ModelConfig & cfg, int64_t T) {
    // hc_pre holds T rows of mix = (2+hc)·hc mixes; hc_head needs only hc per row.
    return T * cfg.hc_mix();
}

void hc_pre(const Ctx & ctx, const HcWeights & w, const float * X, int64_t T, float * y,
            HcSplit * split, float * scratch) {
    const ModelConfig &          cfg   = *ctx.cfg;
    const kernels::KernelTable & k     = *ctx.k;
    const int                    hc    = cfg.hc_mult;
    const int                    mix   = cfg.hc_mix();
    const int64_t                dim   = cfg.dim;
    const int64_t                hcd   = cfg.hc_dim();
    const float                  neps  = static_cast<float>(cfg.norm_eps);
    const float                  heps  = static_cast<float>(cfg.hc_eps);
    const int                    iters = cfg.hc_sinkhorn_iters;

    // mixes[t][j] = fn[j] · v_t (fp32). With fewer tokens than threads (decode) the rows of fn
    // (1.5 MB for V4) are split across the threads first; otherwise each thread takes whole
    // tokens. A mix is one dot product either way, so the results are the same.
    const bool by_rows = T < ctx.n_threads;
    if (by_rows)
        threading::parallel_for(ctx.n_threads, mix, 1, [&](int64_t j0, int64_t j1) {
            k.gemm_f32(scratch, mix, w.fn, hcd, X, hcd, hcd, T, j0, j1);
        });
    threading::parallel_for(
        ctx.n_threads, T, token_grain(2 * int64_t{mix + 1} * hcd), [&](int64_t t0, int64_t t1) {
            float * mixes = scratch + t0 * mix;
            if (!by_rows)
                k.gemm_f32(mixes, mix, w.fn, hcd, X + t0 * hcd, hcd, hcd, t1 - t0, 0, mix);
            for (int64_t t = t0; t < t1; ++t) {
                const float * v = X + t * hcd;
                float *       m = scratch + t * mix;
                const float   r = inv_rms(k, v, hcd, neps);
                for (int j = 0; j < mix; ++j) m[j] *= r;
                split_sinkhorn(m, w.scale, w.base, hc, iters, heps, split[t]);
                mix_streams(split[t].pre, v, hc, dim, y + t * dim);
            }
        });
}

static_assert(kMaxHcMult <= kernels::kMaxHcStreams, "the hc_post kernel takes every config");

void hc_post(const Ctx & ctx, const float * o, const float * R, const HcSplit * split, int64_t T,
             float * Xnew) {
    const ModelConfig & cfg = *ctx.cfg;
    const int           hc  = cfg.hc_mult;
    const int64_t       dim = cfg.dim;
    const int64_t       hcd = cfg.hc_dim();

    // Xnew[k, i] = bf16(post[k]·o[i] + Σ_j comb[j][k]·R[j, i]) for columns [c0, c1) of token
    // t (the kernel's hc_post; Xnew may alias R). comb's first index is the source stream j, the
    // second the destination.
    constexpr int64_t kBlock  = 64;
    const auto        columns = [&](int64_t t, int64_t c0, int64_t c1) {
        ctx.k->hc_post(Xnew + t * hcd, o + t * dim, R + t * hcd, split[t].post, split[t].comb, hc,
                              dim, c0, c1);
    };
    if (T < ctx.n_threads) {  // decode: split the columns (each element is computed alone)
        for (int64_t t = 0; t < T; ++t)
            threading::parallel_for(ctx.n_threads, dim, kBlock,
                                    [&](int64_t c0, int64_t c1) { columns(t, c0, c1); });
        return;
    }
    threading::parallel_for(ctx.n_threads, T, token_grain(3 * int64_t{hc} * hcd),
                            [&](int64_t t0, int64_t t1) {
                                for (int64_t t = t0; t < t1; ++t) columns(t, 0, dim);
                            });
}

void hc_head(const Ctx & ctx, const HcWeights & w, const float * X, int64_t T, float * y,
             float * scratch) {
    const ModelConfig &          cfg  = *ctx.cfg;
    const kernels::KernelTable & k    = *ctx.k;
    const int                    hc   = cfg.hc_mult;
    const int64_t                dim  = cfg.dim;
    const int64_t                hcd  = cfg.hc_dim();
    const float                  neps = static_cast<float>(cfg.norm_eps);
    const float                  heps = static_cast<float>(cfg.hc_eps);

    threading::parallel_for(
        ctx.n_threads, T, token_grain(2 * int64_t{hc + 1} * hcd), [&](int64_t t0, int64_t t1) {
            float * mixes = scratch + t0 * hc;
            k.gemm_f32(mixes, hc, w.fn, hcd, X + t0 * hcd, hcd, hcd, t1 - t0, 0, hc);
            for (int64_t t = t0; t < t1; ++t) {
                const float * v = X + t * hcd;
                const float * m = scratch + t * hc;
                const float   r = inv_rms(k, v, hcd, neps);
                float         pre[kMaxHcMult];
                for (int c = 0; c < hc; ++c)
                    pre[c] = sigmoid((m[c] * r) * w.scale[0] + w.base[c]) + heps;
                mix_streams(pre, v, hc, dim, y + t * dim);
            }
        });
}

}  // namespace dsv4::model
