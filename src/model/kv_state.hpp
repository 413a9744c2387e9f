// Per-sequence attention state (spec §3.9), sized once from the context length and never
// reallocated: the window ring of raw KV rows, the compressed KV rows, the indexer's compressed
// keys and both compressors' pooling state, for every block (decoder layers and MTP).
//
// Storage: KV rows are bf16 bits (every stored value is a bf16 value in the reference: post
// norm, RoPE and FP8/FP4 simulation), halving memory and attention bandwidth against fp32.
// Compressor state is fp32 as in the reference.
//
// KvCheckpoint (below) copies the rolling part of the state (window rings, compressor state) so
// that a sequence can be cut back to an earlier position (rollback) without recomputing it.
#pragma once

#include <cstdint>
#include <limits>
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

class KvCheckpoint;

struct LayerKv {
    int             id         = 0;  // block index in the KvState
    int             ratio      = 0;
    int64_t         n_ctx      = 0;        // context length the state was sized for
    uint16_t *      window     = nullptr;  // [window_size, head_dim]: slot p mod window_size
    uint16_t *      comp       = nullptr;  // [max_comp, head_dim]: compressed block c (ratio != 0)
    int64_t         max_comp   = 0;        // n_ctx / ratio
    uint16_t *      index_keys = nullptr;  // [max_comp, index_head_dim] (ratio 4)
    CompressorState main;                  // ratio != 0
    CompressorState indexer;               // ratio 4
    // Set by KvCheckpoint::arm: attention_forward hands this block's rolling state to `capture`
    // when its token loop reaches position capture_pos, before that position is written.
    KvCheckpoint * capture     = nullptr;
    int64_t        capture_pos = -1;
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

    int64_t         n_ctx() const noexcept { return n_ctx_; }
    LayerKv &       layer(int id) { return layers_[static_cast<size_t>(id)]; }
    const LayerKv & layer(int id) const { return layers_[static_cast<size_t>(id)]; }
    int             n_layers() const noexcept { return static_cast<int>(layers_.size()); }

  private:
    int64_t                    n_ctx_ = 0;
    std::vector<LayerKv>       layers_;
    std::unique_ptr<uint8_t[]> storage_;
};

// The rolling part of a KvState at one position p (the state holds tokens [0, p)): what later
// positions overwrite. That is every block's window ring (slot q mod window_size is rewritten by
// q + window_size) and both compressors' pooling state (the 128x compressor's slot q mod 128 is
// rewritten by q + 128; the overlapping 4x compressors also move their current half into the
// previous-block half whenever a block completes). Compressed rows and indexer keys are
// append-only — block c is written once, by the position that completes it — so a sequence cut
// back to p still holds every complete block it uses (only their count, p / ratio, drops) and
// they are never copied. Restoring the copy into the KvState therefore gives back, byte for
// byte, everything the forward pass reads at positions >= p.
//
// Three ways to fill one (all storage is allocated by create(); nothing here allocates after):
//  * save_all(kv, p): the whole rolling state (a "checkpoint"); restore() is valid as long as
//    the sequence still starts with the same p tokens (positions < p were not rewritten).
//  * save_call(kv, p, T): only the rows a forward call of T tokens at p will overwrite (the
//    window slots of p..p+T-1, their compressor slots, and an overlapping compressor's previous
//    half when a block completes) — the undo journal of that call; restore() is valid until the
//    next call starts, and brings back the state before the call (a cancelled or failed call
//    leaves its positions half-written).
//  * arm(kv, p) + end_capture(): a checkpoint at a position p inside the next forward call
//    (start <= p <= start + T): each block's attention copies its own state when its token loop
//    reaches p (p = start + T: end_capture copies the end state), so no call is split (a split
//    would change the products' summation order).
class KvCheckpoint {
  public:
    // max_call: the largest call save_call() must cover; kWhole for save_all / arm.
    static constexpr int64_t kWhole = std::numeric_limits<int64_t>::max();

    static Result<KvCheckpoint> create(const ModelConfig & cfg, int64_t max_call);
    static uint64_t             bytes(const ModelConfig & cfg, int64_t max_call);

    void save_all(const KvState & kv, int64_t pos);
    void save_call(const KvState & kv, int64_t pos, int64_t T);  // T <= max_call
    void arm(KvState & kv, int64_t pos);
    // After the armed call: completes the blocks the call did not run (MTP: unchanged state);
    // the checkpoint is valid only if the call completed.
    void end_capture(KvState & kv, bool call_completed);
    void capture_layer(LayerKv & l);  // attention_forward's hook (clears l.capture)

    void restore(KvState & kv) const;

    bool    valid() const noexcept { return valid_; }
    int64_t pos() const noexcept { return pos_; }
    void    invalidate() noexcept { valid_ = false; }

  private:
    enum class Kind : uint8_t { window, main_kv, main_score, index_kv, index_score };
    struct Ring {
        int       layer     = 0;
        Kind      kind      = Kind::window;
        bool      overlap   = false;  // 2·ratio rows: slot ratio + q mod ratio, halves shift
        int64_t   period    = 0;      // window_size or ratio
        int64_t   rows      = 0;      // slots of the KvState buffer
        int64_t   row_bytes = 0;
        int64_t   cap       = 0;  // rows this copy holds
        uint8_t * data      = nullptr;
        int64_t   first = 0, count = 0;  // saved slots first, first+1, ... (mod rows)
    };
    static std::vector<Ring> rings(const ModelConfig & cfg, int64_t max_call);
    static uint8_t *         base(const LayerKv & l, Kind k);
    void                     save_ring(Ring & r, const LayerKv & l, int64_t first, int64_t count);

    std::vector<Ring>          rings_;
    std::unique_ptr<uint8_t[]> storage_;
    int64_t                    max_call_ = 0;
    int64_t                    pos_      = 0;
    bool                       valid_    = false;
};

}  // namespace dsv4::model
