// The state behind a dsv4::Session: one sequence's KV state, the forward-pass workspace, the
// logits row, the token history, the sampler and the rollback copies — all allocated in
// create(), sized from the SessionOptions, and reused by every call.
//
// Rollback (docs/embedding.md "Rollback"): `undo` is the journal of the running forward call
// (restored when the call is cancelled or fails); `marks` are two whole-state checkpoints taken
// by generate() at the start of its prefill and at its prompt's last token (the `<think>`
// opener in thinking mode), where a later prompt is most likely to leave the history.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/model_impl.hpp"
#include "api/sampler.hpp"
#include "model/kv_state.hpp"

namespace dsv4::detail {

struct SessionImpl {
    Model                            model;  // keeps the weights alive
    std::shared_ptr<const ModelImpl> m;
    SessionOptions                   opt;
    model::KvState                   kv;
    model::Workspace                 ws;
    model::KvCheckpoint              undo;      // rows the current/last forward call overwrote
    model::KvCheckpoint              marks[2];  // whole rolling state at chosen positions
    std::vector<float>               logits;    // [vocab] after the last forward call
    bool                             logits_valid = false;
    std::vector<int32_t>             history;  // tokens in kv (capacity n_ctx)
    Sampler                          sampler;
    std::atomic<bool>                busy{false};
    std::string                      held;  // generated text not yet released (stop strings)

    SessionImpl(Model mdl, std::shared_ptr<const ModelImpl> impl, const SessionOptions & o,
                model::KvState k, model::Workspace w, model::KvCheckpoint u, model::KvCheckpoint m0,
                model::KvCheckpoint m1);

    static uint64_t bytes(const ModelImpl & m, const SessionOptions & o);
    static Result<std::unique_ptr<SessionImpl>> create(const Model &                    mdl,
                                                       std::shared_ptr<const ModelImpl> impl,
                                                       const SessionOptions &           o);

    void clear();
    // Runs tokens[0..n) at n_past.. (prefill in chunks of max_batch), appending to history.
    // Returns cancelled if `cancel` fires between chunks or inside the forward pass; a forward
    // call that is cancelled or fails is undone (state, history and logits as before it).
    // `mark` (nullable) captures a whole-state checkpoint at position mark_pos when a chunk
    // starts at or runs over it.
    Status run(const int32_t * tokens, int64_t n, const CancelToken * cancel,
               const PrefillProgressFn & progress, int32_t progress_base, int32_t progress_total,
               model::KvCheckpoint * mark = nullptr, int64_t mark_pos = -1);
    // Cuts the state back to the largest restorable position <= target (a checkpoint, the
    // last call's start, n_past itself, or 0) without running anything; returns that position.
    int64_t rewind(int64_t target);
    // Keeps exactly tokens [0, n): rewind(n), then the tokens between re-run.
    Status truncate(int64_t n);
    // A checkpoint slot to overwrite, never the one holding position `keep`.
    model::KvCheckpoint & free_mark(int64_t keep);
    // mark_pos: where generate() takes its second checkpoint (-1: the last prompt token).
    Result<GenerateResult> generate(const std::vector<int32_t> & prompt, const GenerateOptions & o,
                                    const TokenCallback & cb, int64_t mark_pos = -1);
};

}  // namespace dsv4::detail
