// The DeepSeek-V4 forward pass (spec §3): embedding → hyper-connection expansion → blocks
// (hc_pre → attention → hc_post → hc_pre → MoE → hc_post) → hc_head → norm → logits, and the
// MTP block. The Engine holds only immutable things (config, weights, kernel table); each
// sequence brings its KvState and a Workspace (scratch sized once for a maximum call size).
#pragma once

#include <cstdint>
#include <memory>

#include "dsv4/status.hpp"
#include "model/context.hpp"
#include "model/kv_state.hpp"
#include "model/weights.hpp"

namespace dsv4::model {

// Scratch for forward calls of up to max_tokens tokens with a KvState of n_ctx.
class Workspace {
  public:
    static Result<Workspace> create(const ModelConfig & cfg, int64_t max_tokens, int64_t n_ctx);
    static uint64_t          bytes(const ModelConfig & cfg, int64_t max_tokens, int64_t n_ctx);
    int64_t                  max_tokens() const noexcept { return max_tokens_; }
    uint8_t *                data() noexcept { return base_; }

  private:
    int64_t                    max_tokens_ = 0;
    std::unique_ptr<uint8_t[]> storage_;
    uint8_t *                  base_ = nullptr;
};

class Engine {
  public:
    Engine(const ModelConfig & cfg, const ModelWeights & w, const kernels::KernelTable & k,
           int n_threads)
        : cfg_(&cfg), w_(&w), k_(&k), n_threads_(n_threads) {}

    // Runs tokens[0..T) at positions start_pos.. through the decoder blocks, updating kv.
    // logits (nullable): vocab fp32 logits of the LAST position. h_final (nullable):
    // [T, hc·dim] final hyper-connection state (the MTP block's input). Calls longer than the
    // workspace run in chunks (later chunks with decode semantics: chunked prefill).
    // Errors: invalid_argument (bad token id, T < 1), context_full (start_pos + T > n_ctx).
    Status forward(KvState & kv, Workspace & ws, const int32_t * tokens, int64_t T,
                   int64_t start_pos, float * logits, float * h_final = nullptr,
                   ForwardProbe * probe = nullptr) const;

    // The MTP block (spec §3.12): h [T, hc·dim] final states of the main model at positions
    // start_pos.., ids [T] the tokens at the next positions; logits of the LAST position.
    Status mtp(KvState & kv, Workspace & ws, const float * h, const int32_t * ids, int64_t T,
               int64_t start_pos, float * logits, ForwardProbe * probe = nullptr) const;

    const ModelConfig & config() const noexcept { return *cfg_; }
    // The kernel table every product and elementwise op of the forward pass goes through.
    const kernels::KernelTable & kernels() const noexcept { return *k_; }
    int                          n_threads() const noexcept { return n_threads_; }

    // Test-only (context.hpp): run with near-miss numerics. Default: faithful.
    void set_numerics(const Numerics & num) noexcept { num_ = num; }

  private:
    Ctx  ctx(ForwardProbe * probe) const { return Ctx{cfg_, k_, n_threads_, probe, num_}; }
    void block(const Ctx & c, const BlockWeights & b, LayerKv & kv, float * X, const int32_t * ids,
               int64_t T, int64_t start_pos, uint8_t * scratch) const;
    void head(const Ctx & c, const HcWeights & hc, const float * norm, const float * X_last,
              float * logits, float * y, float * hc_scratch) const;
    // The bodies of forward() and mtp() after their checks, run inside a threading::with_team.
    Status forward_chunks(const Ctx & c, KvState & kv, Workspace & ws, const int32_t * tokens,
                          int64_t T, int64_t start_pos, float * logits, float * h_final,
                          ForwardProbe * probe) const;
    void mtp_body(const Ctx & c, KvState & kv, Workspace & ws, const float * h, const int32_t * ids,
                  int64_t T, int64_t start_pos, float * logits) const;

    const ModelConfig *          cfg_;
    const ModelWeights *         w_;
    const kernels::KernelTable * k_;
    int                          n_threads_;
    Numerics                     num_{};
};

}  // namespace dsv4::model
