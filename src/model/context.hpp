// What every forward-pass module needs: the validated config, the chosen kernel table and the
// thread count. Modules never allocate on the hot path: they take scratch memory sized up
// front by their *_scratch_floats() functions.
#pragma once

#include <cstdint>

#include "kernels/kernel_table.hpp"
#include "model/config.hpp"

namespace dsv4::model {

// Optional observer of intermediate values (tests and dsv4-golden). Every hook has an empty
// default; the forward pass calls them only when a probe is installed.
class ForwardProbe {
  public:
    virtual ~ForwardProbe() = default;
    // A [rows, cols] activation of block `layer` for the tokens of the current call, by name:
    // "block_in" (rows × hc·dim), "attn_in", "attn_out", "ffn_in", "ffn_out", "h_final".
    virtual void tensor(int layer, const char * name, const float * data, int64_t rows,
                        int64_t cols) {
        (void)layer, (void)name, (void)data, (void)rows, (void)cols;
    }
    // A compressed row as stored (bf16 values): main compressor (indexer = false) or the
    // indexer's compressor, block index `block`.
    virtual void compressed(int layer, bool indexer, int64_t block, const float * row, int64_t d) {
        (void)layer, (void)indexer, (void)block, (void)row, (void)d;
    }
    // The indexer's selection for the token at `pos`: block ids in selection order, chosen from
    // `scores` [n_blocks] (bf16 values; every complete block so far).
    virtual void indexer_topk(int layer, int64_t pos, const int32_t * blocks, int64_t n,
                              const float * scores, int64_t n_blocks) {
        (void)layer, (void)pos, (void)blocks, (void)n, (void)scores, (void)n_blocks;
    }
    // The MoE routing of block `layer` for the T tokens of the current call: expert ids and
    // routing weights [T, k] (moe.hpp's order), and the biased scores [T, E] the selection was
    // made from (null for hash-routed blocks).
    virtual void routing(int layer, const int32_t * ids, const float * weights, int64_t T,
                         int64_t k, const float * biased_scores, int64_t E) {
        (void)layer, (void)ids, (void)weights, (void)T, (void)k, (void)biased_scores, (void)E;
    }
    // Polled after every decoder block; true aborts the call with Errc::cancelled (the KV state
    // is then partly updated for the call's positions: callers restore it, e.g. from the
    // KvCheckpoint journal taken before the call, or reset it). This is how a host's cancel
    // request stops a forward pass within one layer of work.
    virtual bool stop_requested(int layer) {
        (void)layer;
        return false;
    }
};

// Test-only seam (spec §4.4 "must reproduce"): each switch replaces one reproduced numeric that
// is not a kernel-table entry by a near miss, so tests can show that the golden checks tell a
// faithful engine from one that is almost right. The defaults are the faithful engine. Modules
// read a switch once per call (a predictable branch), never per element, and the near-miss
// code paths are plain loops written for clarity, not speed.
struct Numerics {
    // Per-head q RMS in bf16 ops (§3.5 step 3). false: fp32 mean and rsqrt, one final rounding.
    bool q_norm_bf16 = true;
    // bf16 rounding of the sparse-attention output. false: fp32 output into wo_a (computed then
    // by a plain fp32 loop over the dequantised weight, since act_plain requires bf16 values).
    bool round_attn_out = true;
    // bf16 rounding of the wo_a output. false: fp32 z into the FP8 quantisation for wo_b.
    bool round_wo_a = true;
    // bf16 rounding of the indexer's per-head scores, weighted terms and summed score (§3.7).
    bool round_index_scores = true;
    // YaRN only on compressed layers (faithful), on every layer, or on none.
    enum class Yarn : uint8_t { compressed_only, all_layers, none };
    Yarn yarn = Yarn::compressed_only;
    // Attention sink only in the softmax denominator (faithful); dropped (plain softmax); or
    // taking part in the running max (the spec notes it must not; a rounding-level change).
    enum class Sink : uint8_t { denominator_only, dropped, in_max };
    Sink sink = Sink::denominator_only;
    // RoPE of compressed block c at position c·ratio (faithful) or at its last position
    // c·ratio + ratio − 1 (the position of the token that completes it).
    enum class CompressedRope : uint8_t { block_start, block_end };
    CompressedRope compressed_rope = CompressedRope::block_start;
    // SwiGLU clamp: up on both sides, gate on the upper side (faithful); sides swapped (gate
    // both sides, up upper only); no clamp at all; or no clamp on the shared expert only (the
    // initial HF revision).
    enum class Clamp : uint8_t { faithful, sides_swapped, none, shared_unclamped };
    Clamp swiglu_clamp = Clamp::faithful;
    // Routing weights from the un-biased scores (faithful). false: from score + bias.
    bool gate_weights_unbiased = true;
    // Routing weight applied to the SwiGLU output before w2 (faithful). false: to w2's output.
    bool route_weight_before_w2 = true;
};

struct Ctx {
    const ModelConfig *          cfg       = nullptr;
    const kernels::KernelTable * k         = nullptr;
    int                          n_threads = 1;
    ForwardProbe *               probe     = nullptr;
    Numerics                     num{};  // test-only (above); default: faithful
};

// Activations between modules are fp32 arrays holding bf16 values wherever the reference holds
// bf16 tensors (the "bf16 values" convention of include/dsv4/ref), row-major [T, width].

}  // namespace dsv4::model
