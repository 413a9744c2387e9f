// ModelConfig: the DeepSeek-V4 hyper-parameters read from a Hugging Face config.json, checked
// against the envelope the engine supports, plus the derived constants and the per-layer
// schedule (attention kind, hash routing, RoPE/YaRN settings) every later stage needs.
// Validation happens once here so the loader and the forward pass can assume its results.
//
// Error classes (every message names the file, the key and the offending value):
//  * Errc::invalid_model - the text is not a meaningful config: malformed JSON, a value of the
//    wrong JSON type (string/bool/float where an integer is required, ...), a value outside its
//    domain (zero or negative sizes, eps <= 0), a missing required key, or counts that contradict
//    each other (compress_ratios length != n_layers + n_mtp_layers, top-k > experts, hash layers
//    > layers, rope dims > head dim, heads not divisible by o_groups).
//  * Errc::unsupported_model - a consistent config outside what dsv4 runs: another model_type,
//    compress ratios other than 0/4/128, a block size the FP8/FP4 kernels cannot tile, another
//    quantisation scheme, more than one MTP block, a size above the sanity caps below, etc.
//
// Required keys: every key that sets a tensor shape or decides which tensors exist and whose
// ModelArgs default is not the released V4 value — vocab_size, hidden_size,
// moe_intermediate_size, num_hidden_layers, num_hash_layers, num_attention_heads,
// n_routed_experts, num_experts_per_tok, q_lora_rank, head_dim, o_groups, o_lora_rank,
// compress_ratios. All other keys fall back to the ModelArgs dataclass default (spec §1.1)
// when absent or null; those defaults equal the released V4-Flash/Pro values wherever the key
// is architecture-fixed (hc_mult 4, index_head_dim 128, qk_rope_head_dim 64, one MTP block, ...).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dsv4/status.hpp"

namespace dsv4::model {

// Block sizes fixed by the checkpoint format and the reference kernels (spec §1.2).
inline constexpr int kFp8WeightBlock = 128;  // FP8 weight scale tile 128x128
inline constexpr int kActBlock       = 128;  // activation FP8 quant block along K (lin8/lin4)
inline constexpr int kKvSimBlock     = 64;   // FP8 simulation block over the KV nope dims
inline constexpr int kFp4Block       = 32;   // FP4 scale block (experts; indexer FP4 sim)

// Envelope caps: far above DeepSeek-V4-Pro, low enough that every derived size (element
// counts, payload bytes, KV bytes) fits comfortably in 64 bits and that a hostile config
// cannot request absurd allocations. The forward pass may size fixed arrays with kMaxHcMult.
inline constexpr int kMaxHcMult        = 16;
inline constexpr int kMaxVocab         = 1 << 22;
inline constexpr int kMaxDim           = 1 << 16;  // hidden, q_lora, moe_inter, o_lora
inline constexpr int kMaxHeadDim       = 4096;
inline constexpr int kMaxHeads         = 1024;  // attention heads and indexer heads
inline constexpr int kMaxLayers        = 1024;
inline constexpr int kMaxExperts       = 4096;
inline constexpr int kMaxWindow        = 1 << 20;
inline constexpr int kMaxSinkhornIters = 1 << 16;
inline constexpr int kMaxMtpLayers     = 1;

enum class ScoreFunc : uint8_t { sqrtsoftplus, softmax, sigmoid };

// Routed-expert storage as declared by config.json's "expert_dtype". `none` (key absent) is the
// initial HF revision of the same checkpoint, whose experts are already packed FP4 (I8 tensors),
// so the inventory treats none like fp4. "fp8" describes a re-encoded checkpoint (convert.py
// --expert-dtype fp8) with a different inventory; the CPU engine does not run it and
// parse_config rejects it as unsupported_model.
enum class ExpertDtype : uint8_t { none, fp4, fp8 };

// Attention kind from the compress ratio: 0 = sliding window only, 4 = compressed sparse
// attention (overlapping 4-token blocks + indexer top-k), 128 = heavily compressed attention.
enum class AttnKind : uint8_t { swa, csa, hca };

const char * score_func_name(ScoreFunc f) noexcept;
const char * expert_dtype_name(ExpertDtype d) noexcept;
const char * attn_kind_name(AttnKind k) noexcept;

// ratio 0 -> swa, 4 -> csa, 128 -> hca. Only meaningful for validated ratios.
AttnKind attn_kind_for_ratio(int ratio) noexcept;

// quantization_config of the HF file. `present` is false when the key is absent; the inventory
// then still assumes the FP8 release layout (the tensor check at load catches a mismatch).
struct QuantizationConfig {
    bool        present           = false;
    std::string quant_method      = "fp8";
    std::string fmt               = "e4m3";
    std::string scale_fmt         = "ue8m0";
    std::string activation_scheme = "dynamic";
    int         weight_block_out  = kFp8WeightBlock;
    int         weight_block_in   = kFp8WeightBlock;
};

// Rotary settings of one layer (spec §3.3). Compressed layers (ratio != 0) use
// compress_rope_theta and YaRN when original_seq_len > 0; window-only layers (including MTP)
// use rope_theta and never YaRN. The rotated dims are the last `rope_head_dim` of each vector.
struct RopeParams {
    double  base             = 10000.0;
    bool    yarn             = false;
    double  factor           = 1.0;  // YaRN fields are meaningful only when yarn is true
    int64_t original_seq_len = 0;
    double  beta_fast        = 32.0;
    double  beta_slow        = 1.0;
    int     rope_head_dim    = 64;
};

// One transformer block of the schedule: decoder layers l < n_layers ("layers.{l}.") followed
// by MTP blocks j ("mtp.{j}.", layer id n_layers + j; never hash-routed, always window-only).
struct LayerDesc {
    int         id        = 0;  // layer id; MTP blocks have n_layers + j
    int         ratio     = 0;  // compress ratio: 0, 4 or 128
    AttnKind    kind      = AttnKind::swa;
    bool        hash      = false;  // MoE routes by tid2eid (no gate bias)
    bool        mtp       = false;
    int         mtp_index = -1;  // j for MTP blocks, -1 otherwise
    std::string prefix;          // "layers.{l}." or "mtp.{j}."
    RopeParams  rope;
};

// All ModelArgs fields of spec §1.1 (defaults = the reference dataclass) plus the HF-only keys
// the engine uses. Field names follow ModelArgs; comments give the HF config.json key.
struct ModelConfig {
    int              vocab_size          = 129280;                   // vocab_size
    int              dim                 = 4096;                     // hidden_size
    int              moe_inter_dim       = 4096;                     // moe_intermediate_size
    int              n_layers            = 7;                        // num_hidden_layers
    int              n_hash_layers       = 0;                        // num_hash_layers
    int              n_mtp_layers        = 1;                        // num_nextn_predict_layers
    int              n_heads             = 64;                       // num_attention_heads
    int              n_routed_experts    = 8;                        // n_routed_experts
    int              n_shared_experts    = 1;                        // n_shared_experts
    int              n_activated_experts = 2;                        // num_experts_per_tok
    ScoreFunc        score_func          = ScoreFunc::sqrtsoftplus;  // scoring_func
    double           route_scale         = 1.0;                      // routed_scaling_factor
    double           swiglu_limit        = 0.0;                      // swiglu_limit (0 = off)
    int              q_lora_rank         = 1024;                     // q_lora_rank
    int              head_dim            = 512;                      // head_dim
    int              rope_head_dim       = 64;                       // qk_rope_head_dim
    double           norm_eps            = 1e-6;                     // rms_norm_eps
    int              o_groups            = 8;                        // o_groups
    int              o_lora_rank         = 1024;                     // o_lora_rank
    int              window_size         = 128;                      // sliding_window
    std::vector<int> compress_ratios;  // compress_ratios, length n_layers + n_mtp_layers
    double           compress_rope_theta = 40000.0;  // compress_rope_theta
    int64_t          original_seq_len    = 0;  // rope_scaling.original_max_position_embeddings
    double           rope_theta          = 10000.0;            // rope_theta
    double           rope_factor         = 40.0;               // rope_scaling.factor
    double           beta_fast           = 32.0;               // rope_scaling.beta_fast
    double           beta_slow           = 1.0;                // rope_scaling.beta_slow
    int              index_n_heads       = 64;                 // index_n_heads
    int              index_head_dim      = 128;                // index_head_dim
    int              index_topk          = 512;                // index_topk
    int              hc_mult             = 4;                  // hc_mult
    int              hc_sinkhorn_iters   = 20;                 // hc_sinkhorn_iters
    double           hc_eps              = 1e-6;               // hc_eps
    ExpertDtype      expert_dtype        = ExpertDtype::none;  // expert_dtype

    // HF-only keys.
    int64_t            max_position_embeddings = 0;  // 0 = key absent (design limit unknown)
    int                bos_token_id            = 0;
    std::vector<int>   eos_token_ids           = {1};  // eos_token_id: an integer or a list
    QuantizationConfig quantization;                   // quantization_config
    std::string        model_type;                     // "" when absent

    // ---- derived constants (spec §1.2) ----
    int     eos_token_id() const { return eos_token_ids.empty() ? -1 : eos_token_ids.front(); }
    int     n_blocks() const { return n_layers + n_mtp_layers; }
    int     nope_dim() const { return head_dim - rope_head_dim; }
    int     hc_mix() const { return (2 + hc_mult) * hc_mult; }
    int64_t hc_dim() const { return int64_t{hc_mult} * dim; }
    int     heads_per_group() const { return n_heads / o_groups; }
    int64_t wo_a_in() const { return int64_t{heads_per_group()} * head_dim; }
    int64_t wo_a_out() const { return int64_t{o_groups} * o_lora_rank; }  // = wo_b in-features
    int64_t q_dim() const { return int64_t{n_heads} * head_dim; }         // wq_b out-features
    int64_t index_q_dim() const { return int64_t{index_n_heads} * index_head_dim; }
    // Attention softmax scale head_dim^-0.5 (no YaRN mscale). Kernels use it rounded to fp32.
    double softmax_scale() const;
    // Indexer weight scale index_head_dim^-0.5 * index_n_heads^-0.5.
    double indexer_scale() const;
    // Compressor overlap factor: 2 for ratio 4 (overlapping blocks), 1 otherwise.
    static int compressor_coff(int ratio) { return ratio == 4 ? 2 : 1; }

    // ---- layer schedule (spec §1.3); ids in [0, n_blocks()) ----
    // MTP block j has id n_layers + j; it is never hash-routed (n_hash_layers <= n_layers).
    bool                   is_mtp(int id) const { return id >= n_layers; }
    bool                   is_hash_layer(int id) const { return id >= 0 && id < n_hash_layers; }
    int                    ratio(int id) const { return compress_ratios[static_cast<size_t>(id)]; }
    AttnKind               attn_kind(int id) const { return attn_kind_for_ratio(ratio(id)); }
    bool                   has_csa() const;  // any ratio-4 block (indexer present)
    RopeParams             rope(int id) const;
    LayerDesc              layer(int id) const;
    std::vector<LayerDesc> layers() const;  // all n_blocks() blocks in id order
};

// Parses and validates a config.json text. `source_name` prefixes every message (usually the
// path or "config.json").
Result<ModelConfig> parse_config(std::string_view json_text, std::string_view source_name);

// Reads the file and calls parse_config. A missing/unreadable file is file_not_found / io_error
// naming the path.
Result<ModelConfig> load_config(const std::string & path);

}  // namespace dsv4::model
