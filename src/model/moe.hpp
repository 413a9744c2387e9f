// The MoE feed-forward of one block (spec §3.10): gate (sqrt-softplus / sigmoid / softmax),
// expert selection (hash table tid2eid, or top-k of score + bias), normalised weights × route
// scale, routed FP4 experts and the shared FP8 expert with clamped SwiGLU, summed in the
// reference's order (experts ascending, then shared), one bf16 rounding at the end.
#pragma once

#include <cstdint>

#include "model/context.hpp"
#include "model/weights.hpp"

namespace dsv4::model {

// Optional record of the routing (tests, dsv4-golden): [T, n_activated] ids and weights,
// [T, n_routed] biased scores (non-hash blocks only; left untouched for hash blocks). Ids are in
// the reference's order: tid2eid's row order for hash blocks, descending biased score for the
// others (torch.topk sorted), exact ties broken towards the lower expert index (spec §8.2:
// the GPU's tie order is unspecified). Weights follow the ids' order.
struct MoeTrace {
    int32_t * indices       = nullptr;
    float *   weights       = nullptr;
    float *   biased_scores = nullptr;
};

// out [T, dim] (bf16 values) = MoE(x [T, dim] bf16 values) for the tokens `tokens` [T] (read by
// hash blocks only, ids in [0, vocab); may be null otherwise). out may alias x. `scratch` must
// hold moe_scratch_bytes(cfg, T) bytes, 64-byte aligned. Threads: ctx.n_threads via
// parallel_for. Deterministic: every output element is computed by one thread in a fixed
// order, so the result does not depend on timing or on the thread count (the same bits for 1
// and N threads), and a token's row does not depend on which other tokens share the call
// (decode T = 1 reproduces the prefill row). No allocation.
void moe_forward(const Ctx & ctx, const BlockWeights & b, const float * x, const int32_t * tokens,
                 int64_t T, float * out, uint8_t * scratch, const MoeTrace * trace = nullptr);

// Scratch bytes for T tokens (dominated by the per-(expert, token) intermediate rows: about
// (T·k + T)·(4·inter + 4·max(inter, dim) + qact_row_bytes(inter)) plus, for T > 1, T·k
// gathered activation rows of qact_row_bytes(dim)).
int64_t moe_scratch_bytes(const ModelConfig & cfg, int64_t T);

}  // namespace dsv4::model
