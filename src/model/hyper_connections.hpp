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
//   comb[a * hc + b]  as the reference's comb tensor [a][b] (see hc_post for how it is used).
struct HcSplit {
    float pre[kMaxHcMult];
    float post[kMaxHcMult];
    float comb[kMaxHcMult * kMaxHcMult];
};

// hc_pre for T tokens: X [T, hc*dim] (bf16 values, stream-major per token) ->
// y [T, dim] (bf16 values) and split[T]. scratch: hc_scratch_floats(cfg) floats per call.
void hc_pre(const Ctx & ctx, const HcWeights & w, const float * X, int64_t T, float * y,
            HcSplit * split, float * scratch);

// hc_post: Xnew [T, hc*dim] (bf16 values) from the sub-layer output o [T, dim], the residual
// R [T, hc*dim] (the X given to hc_pre) and split. Xnew may alias R.
void hc_post(const Ctx & ctx, const float * o, const float * R, const HcSplit * split, int64_t T,
             float * Xnew);

// The head's mix (no Sinkhorn): y [T, dim] (bf16 values) from X [T, hc*dim].
void hc_head(const Ctx & ctx, const HcWeights & w, const float * X, int64_t T, float * y,
             float * scratch);

// Scratch floats hc_pre/hc_head need for T tokens.
int64_t hc_scratch_floats(const ModelConfig & cfg, int64_t T);

}  // namespace dsv4::model
