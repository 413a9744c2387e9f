// Manifold-constrained hyper-connections (mHC, spec §3.1, §3.11): the residual stream is
// hc_mult copies ("streams") of width dim per token; every sub-layer reads a mix of them
// (hc_pre) and writes back through a Sinkhorn-normalised mixing matrix (hc_post).
#pragma once

#include <cstdint>

#include "model/context.hpp"
#include "model/weights.hpp"

namespace dsv4::model {

// Per-token mixing coefficients from split_sinkhorn (all fp32).
//   pre[c]  weight of stream c in the sub-layer input,
//   post[c] weight of the sub-layer output written to stream c,
//   comb[j * hc + k]  the reference's comb[..., j, k]: weight of residual (source) stream j in
//                     new stream k (hc_post). Rows j are softmax-normalised first, columns last.
//                     (model.py sums comb[..., j, k, None] · residual[..., j, None, :] over j;
//                     golden-a's manifest calls the first index "out": it is the source.)
struct HcSplit {
    float pre[kMaxHcMult];
    float post[kMaxHcMult];
    float comb[kMaxHcMult * kMaxHcMult];
};

// hc_pre for T tokens: X [T, hc*dim] (bf16 values, stream-major per token) ->
// y [T, dim] (bf16 values) and split[T]. scratch: hc_scratch_floats(cfg, T) floats.
// Parallel over tokens (ctx.n_threads); every token's result is independent of T and of the
// thread count.
void hc_pre(const Ctx & ctx, const HcWeights & w, const float * X, int64_t T, float * y,
            HcSplit * split, float * scratch);

// hc_post: Xnew [T, hc*dim] (bf16 values) from the sub-layer output o [T, dim], the residual
// R [T, hc*dim] (the X given to hc_pre) and split:
//   Xnew[k, i] = bf16(post[k]·o[i] + Σ_j comb[j][k]·R[j, i])  (Σ over j first, in fp32).
// Xnew may alias R.
void hc_post(const Ctx & ctx, const float * o, const float * R, const HcSplit * split, int64_t T,
             float * Xnew);

// The head's mix (no Sinkhorn, spec §3.11): y [T, dim] (bf16 values) from X [T, hc*dim] with
// pre = sigmoid(m·scale[0] + base) + hc_eps. scratch: hc_scratch_floats(cfg, T) floats.
void hc_head(const Ctx & ctx, const HcWeights & w, const float * X, int64_t T, float * y,
             float * scratch);

// Scratch floats hc_pre/hc_head need for T tokens.
int64_t hc_scratch_floats(const ModelConfig & cfg, int64_t T);

}  // namespace dsv4::model
