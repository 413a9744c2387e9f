// Random-weight DeepSeek-V4 checkpoints in exactly the official on-disk format, for tests and
// benchmarks (tools/make_model.cpp is the CLI `dsv4-make-model`).
//
// What is written: config.json (HF keys), model-0000i-of-0000N.safetensors shards and
// model.safetensors.index.json — FP8 pairs (e4m3 + 128×128 e8m0 scales), FP4 pairs (I8 packed
// e2m1, low nibble = even element, + per-32 e8m0 scales), BF16, F32 and I64 tid2eid with
// distinct experts per row. Every tensor is a pure function of (seed, tensor name), generated
// row by row (in parallel, deterministically), so a multi-GB checkpoint needs one tensor in
// memory at a time and can be regenerated for comparison (expected_tensor_bytes).
//
// Scales: weights are drawn N(0, 1/in_features) before quantisation, so y = W·x keeps unit-
// size activations unit-size; norms are ~1, hyper-connection mixes are scaled by the stream
// width, biases and sinks are small. Quantisation follows the reference rules (block amax,
// power-of-two ue8m0 scale 2^ceil(log2(amax/max)), round-to-nearest-even).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dsv4/status.hpp"
#include "model/config.hpp"
#include "model/inventory.hpp"

namespace dsv4::model {

// Named configurations:
//  "tiny"       a few MB; every block kind (SWA, CSA, HCA, hash-routed, MTP); small vocab.
//  "flash-mini" the exact V4-Flash per-layer shapes (dim 4096, 64 heads × 512, q_lora 1024,
//               8 × 1024 output groups, indexer 64 × 128, experts 2048 wide, vocab 129280) but
//               4 layers (SWA+hash, CSA, HCA, CSA) + MTP and 32 routed experts (top 6): ~5 GB.
Result<ModelConfig>      preset_config(std::string_view name);
std::vector<std::string> preset_names();

// config.json text for cfg (HF key names; parse_config(config_to_json(c)) reproduces c).
std::string config_to_json(const ModelConfig & cfg);

struct MakeModelOptions {
    uint64_t seed        = 1;
    uint64_t shard_bytes = uint64_t{2} << 30;  // payload per shard; a pair may straddle shards
    int      n_threads   = 1;                  // generation threads (output is independent of it)
};

// Writes the checkpoint into `dir` (created if missing; existing files are overwritten).
// Errors: io_error naming the path; invalid_argument for an invalid config.
// A byte-level BPE tokenizer.json (Hugging Face format) covering ids 0..vocab_size-1, written
// next to synthetic models (vocab_size >= 272) so the text APIs work on them.
std::string byte_tokenizer_json(int vocab_size);

Status write_random_model(const ModelConfig & cfg, const std::string & dir,
                          const MakeModelOptions & opt);

// The bytes write_random_model stores for tensor `t` of expected_tensors(cfg) (dst: t.bytes()).
void expected_tensor_bytes(const ModelConfig & cfg, const ExpectedTensor & t, uint64_t seed,
                           uint8_t * dst, int n_threads = 1);

}  // namespace dsv4::model
