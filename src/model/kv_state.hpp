// Per-sequence attention state (spec §3.9), sized once from the context length and never
// reallocated: the window ring of raw KV rows, the compressed KV rows, the indexer's compressed
// keys and both compressors' pooling state, for every block (decoder layers and MTP).
//
// Storage: KV rows are bf16 bits (every stored value is a bf16 value in the reference: post
// norm, RoPE and FP8/FP4 simulation), halving memory and attention bandwidth against fp32.
// Compressor state is fp32 as in the reference.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dsv4/status.hpp"
#include "model/config.hpp"

namespace dsv4::model {

struct CompressorState {
    float * kv    = nullptr;  // [coff*ratio, coff*d] fp32 (kvS)
    float * score = nullptr;  // [coff*ratio, coff*d] fp32 (scS), -inf when empty
    int     rows  = 0;        // coff*ratio
    int     cols  = 0;        // coff*d
};

struct LayerKv {
    int             ratio      = 0;
    int64_t         n_ctx      = 0;        // context length the state was sized for
    uint16_t *      window     = nullptr;  // [window_size, head_dim]: slot p mod window_size
    uint16_t *      comp       = nullptr;  // [max_comp, head_dim]: compressed block c (ratio != 0)
    int64_t         max_comp   = 0;        // n_ctx / ratio
    uint16_t *      index_keys = nullptr;  // [max_comp, index_head_dim] (ratio 4)
    CompressorState main;                  // ratio != 0
    CompressorState indexer;               // ratio 4
};

// All blocks' state for one sequence of at most n_ctx tokens.
class KvState {
  public:
    static Result<KvState> create(const ModelConfig & cfg, int64_t n_ctx);
    static uint64_t        bytes(const ModelConfig & cfg, int64_t n_ctx);

    // Back to an empty sequence: compressor states to 0 / -inf (spec §8.3: the reference never
    // resets them; a fresh process starts like this). KV rows need no clearing: only rows that
    // were written are ever read.
    void reset();

    int64_t   n_ctx() const noexcept { return n_ctx_; }
    LayerKv & layer(int id) { return layers_[static_cast<size_t>(id)]; }
    int       n_layers() const noexcept { return static_cast<int>(layers_.size()); }

  private:
    int64_t                    n_ctx_ = 0;
    std::vector<LayerKv>       layers_;
    std::unique_ptr<uint8_t[]> storage_;
};

}  // namespace dsv4::model
