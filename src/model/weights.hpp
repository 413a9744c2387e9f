// Typed, per-layer views of a DeepSeek-V4 checkpoint, bound once at load.
//
// bind_weights() checks every tensor of the inventory (model/inventory.hpp) against the opened
// safetensors store — presence, dtype, shape — and then exposes the bytes the forward pass
// reads. The big tensors (FP8/FP4 weights and their scales, BF16 matrices) stay zero-copy views
// into the mapped files; only small per-layer vectors are converted into an owned arena:
//   * BF16 norm weights -> fp32 (the reference upcasts them at load, spec §2.4),
//   * I64 tid2eid -> int32, after checking every id is in [0, n_routed_experts) and distinct
//     within its row (a duplicate would silently drop an expert in the reference scatter),
//   * any F32/BF16 tensor whose address is not aligned to its element size (safetensors does not
//     promise alignment; the kernels may then use typed pointers safely).
// Unknown extra tensors are reported through the log callback and ignored.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dsv4/status.hpp"
#include "io/safetensors.hpp"
#include "kernels/kernel_table.hpp"
#include "model/config.hpp"
#include "util/log.hpp"

namespace dsv4::model {

using kernels::Fp4Mat;  // w [N, K/2] packed e2m1, scale [N, K/32] e8m0
using kernels::Fp8Mat;  // w [N, K] e4m3, scale [ceil(N/128), ceil(K/128)] e8m0

// Row-major bf16 matrix (raw bits), 2-byte aligned.
struct Bf16Mat {
    const uint16_t * w    = nullptr;
    int64_t          rows = 0, cols = 0;
};

// Hyper-connection mixing parameters: fn [mix, hc*dim] (mix = (2+hc)*hc, or hc for the head),
// base [mix], scale [3] (head: [1]). All fp32.
struct HcWeights {
    const float * fn    = nullptr;
    const float * base  = nullptr;
    const float * scale = nullptr;
};

// Compressor (spec §3.6): wkv/wgate [coff*d, dim] bf16, ape [ratio, coff*d] fp32, norm [d].
struct CompressorWeights {
    int           ratio = 0;  // 4 or 128
    int           coff  = 1;  // 2 for the overlapping ratio-4 compressor
    int           d     = 0;  // output row width (head_dim, or index_head_dim for the indexer)
    const float * ape   = nullptr;
    Bf16Mat       wkv, wgate;
    const float * norm = nullptr;  // [d] fp32
};

// Lightning indexer (ratio-4 layers, spec §3.7).
struct IndexerWeights {
    Fp8Mat            wq_b;          // [index_n_heads*index_head_dim, q_lora_rank]
    Bf16Mat           weights_proj;  // [index_n_heads, dim]
    CompressorWeights compressor;    // d = index_head_dim, ratio 4
};

struct AttentionWeights {
    Fp8Mat            wq_a;                      // [q_lora_rank, dim]
    const float *     q_norm = nullptr;          // [q_lora_rank]
    Fp8Mat            wq_b;                      // [n_heads*head_dim, q_lora_rank]
    Fp8Mat            wkv;                       // [head_dim, dim]
    const float *     kv_norm = nullptr;         // [head_dim]
    Fp8Mat            wo_a;                      // [o_groups*o_lora_rank, heads_per_group*head_dim]
    Fp8Mat            wo_b;                      // [dim, o_groups*o_lora_rank]
    const float *     attn_sink      = nullptr;  // [n_heads]
    bool              has_compressor = false;    // ratio != 0
    CompressorWeights compressor;
    bool              has_indexer = false;  // ratio == 4
    IndexerWeights    indexer;
};

struct ExpertWeights {
    Fp4Mat w1, w3;  // [moe_inter_dim, dim]
    Fp4Mat w2;      // [dim, moe_inter_dim]
};

struct MoeWeights {
    Bf16Mat                    gate;                  // [n_routed_experts, dim]
    const float *              gate_bias = nullptr;   // [n_routed_experts], non-hash blocks
    const int32_t *            tid2eid   = nullptr;   // [vocab, n_activated], hash blocks
    Fp8Mat                     shared_w1, shared_w3;  // [moe_inter_dim, dim]
    Fp8Mat                     shared_w2;             // [dim, moe_inter_dim]
    std::vector<ExpertWeights> experts;               // n_routed_experts
};

struct BlockWeights {
    LayerDesc        desc;
    HcWeights        hc_attn, hc_ffn;
    const float *    attn_norm = nullptr;  // [dim]
    const float *    ffn_norm  = nullptr;  // [dim]
    AttentionWeights attn;
    MoeWeights       ffn;
    // MTP blocks only.
    Fp8Mat        e_proj, h_proj;   // [dim, dim]
    const float * enorm = nullptr;  // [dim]
    const float * hnorm = nullptr;  // [dim]
    const float * norm  = nullptr;  // [dim] (the MTP head's final norm)
    HcWeights     hc_head;          // fn [hc, hc*dim], base [hc], scale [1]
};

struct ModelWeights {
    Bf16Mat                   embed;             // [vocab, dim]
    Bf16Mat                   head;              // [vocab, dim]
    const float *             norm = nullptr;    // [dim]
    HcWeights                 hc_head;           // fn [hc, hc*dim], base [hc], scale [1]
    std::vector<BlockWeights> blocks;            // n_layers decoder blocks, then MTP blocks
    uint64_t                  mapped_bytes = 0;  // tensor bytes used in place
    uint64_t                  copied_bytes = 0;  // bytes converted/realigned into the arena

    // Owned storage of the converted tensors (stable addresses).
    std::vector<std::unique_ptr<float[]>>    f32_arena;
    std::vector<std::unique_ptr<int32_t[]>>  i32_arena;
    std::vector<std::unique_ptr<uint16_t[]>> u16_arena;
};

// Validates the store against the inventory of `cfg` and binds the views. The store must
// outlive the result. Errors: invalid_model naming the tensor (missing, wrong dtype, wrong
// shape, bad tid2eid entry); out_of_memory if the arena cannot be allocated.
Result<ModelWeights> bind_weights(const ModelConfig & cfg, const io::TensorStore & store,
                                  const detail::Logger & log);

// Full scan of every tensor byte (pages everything in): counts e8m0 scale codes 255 (NaN)
// and e4m3 NaN codes (0x7F/0xFF) in FP8 weights. Returned for reporting; not an error.
struct VerifyReport {
    uint64_t                 bytes_scanned   = 0;
    uint64_t                 nan_scale_codes = 0;  // F8_E8M0 bytes equal to 255
    uint64_t                 nan_e4m3_codes  = 0;  // F8_E4M3 bytes equal to 0x7F or 0xFF
    uint64_t                 nonfinite_f32   = 0;  // F32 NaN/Inf values
    uint64_t                 nonfinite_bf16  = 0;  // BF16 NaN/Inf values
    std::vector<std::string> offenders;  // names of the first tensors with any of the above
    uint64_t checksum = 0;               // FNV-1a-style fold of all bytes (proves they were read)
};
VerifyReport verify_tensors(const io::TensorStore & store);

}  // namespace dsv4::model
