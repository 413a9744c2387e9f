// Attention of one block (spec §3.5–§3.8): low-rank q with per-head bf16 RMS and partial RoPE,
// the shared KV head with FP8 simulation, the 128-token window ring, the compressed KV
// (ratio 4: overlapping compressor + lightning indexer top-k; ratio 128: all complete
// blocks), sparse attention with the sink in the denominator, inverse RoPE and the grouped
// low-rank output projection.
//
// How a call of T tokens at start_pos runs:
//  1. batched over T: q, kv, compressor and indexer projections (the GEMM-heavy part);
//  2. token by token, in position order: indexer compressor step → index scores and top-k →
//     window write → main compressor step → attention of that token (parallel over heads).
//     This is exactly the reference's decode semantics, and equal to its prefill for
//     start_pos = 0 (whose index lists this module reproduces, including their widths, so
//     the kernel's 64-entry chunking of the online softmax matches as well);
//  3. batched over T: inverse RoPE, wo_a (per group, FP8 weights × bf16 activations), wo_b.
// Chunked prefill (start_pos > 0, T > 1) is therefore identical to token-by-token decoding.
#pragma once

#include <cstdint>

#include "model/context.hpp"
#include "model/kv_state.hpp"
#include "model/weights.hpp"

namespace dsv4::model {

// out [T, dim] (bf16 values) = Attention(x [T, dim] bf16 values) at positions
// start_pos .. start_pos+T−1, updating `kv`. Requires start_pos + T <= kv n_ctx.
// scratch: attn_scratch_bytes(cfg, T, n_ctx) bytes, 64-byte aligned.
void attention_forward(const Ctx & ctx, const BlockWeights & b, LayerKv & kv, const float * x,
                       int64_t start_pos, int64_t T, float * out, uint8_t * scratch);

int64_t attn_scratch_bytes(const ModelConfig & cfg, int64_t T, int64_t n_ctx);

// The indexer's top-k (spec §8.2): the min(k, n) best of scores[0, n) into out, higher score
// first, equal scores → lower block index first (NaN ranks as -inf). tmp: 2·n words of
// scratch. Exposed for tests.
void topk_desc(const float * scores, int64_t n, int64_t k, int32_t * out, uint32_t * tmp);

}  // namespace dsv4::model
