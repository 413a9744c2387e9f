// The tensor inventory a DeepSeek-V4 checkpoint must contain, computed from the config alone
// (spec §2.2): every name with its safetensors dtype tag and shape. The loader compares the
// shard headers against it (presence, dtype, shape; nothing more, nothing less), and the memory
// estimates below use the same config-only arithmetic.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.hpp"

namespace dsv4::model {

// dtype tags as written in safetensors headers. Kept as strings so this file does not depend on
// the io layer's DType enum; compare with the header's tag directly.
inline constexpr std::string_view kTagBF16   = "BF16";
inline constexpr std::string_view kTagF32    = "F32";
inline constexpr std::string_view kTagI64    = "I64";
inline constexpr std::string_view kTagI8     = "I8";       // packed FP4 (e2m1 x2) experts
inline constexpr std::string_view kTagF8E4M3 = "F8_E4M3";  // FP8 weights
inline constexpr std::string_view kTagF8E8M0 = "F8_E8M0";  // power-of-two block scales

// Bytes per element of a tag above; 0 for an unknown tag.
uint64_t dtype_tag_size(std::string_view tag) noexcept;

struct ExpectedTensor {
    std::string          name;   // HF name, no "model." prefix, e.g. "layers.3.attn.wkv.weight"
    std::string          dtype;  // safetensors tag, e.g. "F8_E4M3"
    std::vector<int64_t> shape;  // row-major; linear weights are [out, in] (FP4: [out, in/2])

    uint64_t elements() const noexcept;
    uint64_t bytes() const noexcept { return elements() * dtype_tag_size(dtype); }
};

// Every tensor of the checkpoint in a fixed order: global tensors, then each block of
// config.layers() in id order. The config must have passed parse_config's validation.
// Layout per block (prefix "layers.{l}." or "mtp.{j}."):
//   hc_{attn,ffn}_{fn,base,scale} F32; {attn,ffn}_norm.weight BF16; attn.attn_sink F32;
//   attn.{wq_a,wq_b,wkv,wo_a,wo_b} FP8 pairs; attn.{q,kv}_norm.weight BF16;
//   ratio != 0: attn.compressor.{ape F32, wkv/wgate/norm BF16};
//   ratio == 4: attn.indexer.{wq_b FP8 pair, weights_proj.weight BF16, compressor.*};
//   ffn.gate.weight BF16; ffn.gate.tid2eid I64 (hash layers) or ffn.gate.bias F32 (others);
//   ffn.shared_experts.{w1,w2,w3} FP8 pairs; ffn.experts.{e}.{w1,w2,w3} FP4 pairs;
//   MTP only: {e,h}_proj FP8 pairs, {e,h}norm.weight / norm.weight BF16, hc_head_* F32.
// FP8 pair: .weight F8_E4M3 [out, in] + .scale F8_E8M0 [ceil(out/128), ceil(in/128)].
// FP4 pair: .weight I8 [out, in/2] + .scale F8_E8M0 [out, in/32].
std::vector<ExpectedTensor> expected_tensors(const ModelConfig & cfg);

// Sum of bytes() over the list (the safetensors payload, headers excluded).
uint64_t payload_bytes(const std::vector<ExpectedTensor> & tensors) noexcept;

// Per-sequence KV state of one session (spec §3.9), bf16 rows except the fp32 compressor state.
// Per block with compress ratio r (0, 4 or 128) and context n_ctx:
//   window     = window_size * head_dim * 2                       (ring of raw KV rows)
//   compressed = (n_ctx / r) * head_dim * 2                       (r != 0; rows 128 + c)
//   indexer    = (n_ctx / 4) * index_head_dim * 2                 (r == 4; index keys)
//   state      = 2 * (coff*r) * (coff*head_dim) * 4               (r != 0; kvS and scS, fp32)
//              + 2 * (2*4) * (2*index_head_dim) * 4               (r == 4; indexer compressor)
// with coff = 2 for r == 4 and 1 otherwise, and integer division for n_ctx / r.
struct KvCacheSize {
    uint64_t window_bytes           = 0;
    uint64_t compressed_bytes       = 0;
    uint64_t indexer_bytes          = 0;
    uint64_t compressor_state_bytes = 0;
    uint64_t total() const noexcept {
        return window_bytes + compressed_bytes + indexer_bytes + compressor_state_bytes;
    }
};

// Sizes for n_ctx tokens over the n_layers decoder blocks, plus the MTP blocks when
// include_mtp (each MTP block keeps its own window cache).
KvCacheSize kv_cache_size(const ModelConfig & cfg, int64_t n_ctx, bool include_mtp) noexcept;

// Context-proportional KV bytes per token over the decoder layers, exact as a rational:
// sum over ratio-4 layers of (head_dim*2)/4 + (index_head_dim*2)/4, plus over ratio-128 layers
// (head_dim*2)/128. (Flash: 6880, Pro: 9848.) The window and state parts are per sequence.
double kv_cache_bytes_per_token(const ModelConfig & cfg) noexcept;

}  // namespace dsv4::model
