// The state behind a dsv4::Session: one sequence's KV state, the forward-pass workspace, the
// logits row, the token history and the sampler — all allocated in create(), sized from the
// SessionOptions, and reused by every call.
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
    std::vector<float>               logits;  // [vocab] after the last forward call
    bool                             logits_valid = false;
    std::vector<int32_t>             history;  // tokens in kv (capacity n_ctx)
    Sampler                          sampler;
    std::atomic<bool>                busy{false};
    std::string                      held;  // generated text not yet released (stop strings)

    SessionImpl(Model mdl, std::shared_ptr<const ModelImpl> impl, const SessionOptions & o,
                model::KvState k, model::Workspace w);

    static uint64_t bytes(const ModelImpl & m, const SessionOptions & o);
    static Result<std::unique_ptr<SessionImpl>> create(const Model &                    mdl,
                                                       std::shared_ptr<const ModelImpl> impl,
                                                       const SessionOptions &           o);

    void clear();
    // Runs tokens[0..n) at n_past.. (prefill in chunks of max_batch), appending to history.
    // Returns cancelled if `cancel` fires between chunks or inside the forward pass.
    Status                 run(const int32_t * tokens, int64_t n, const CancelToken * cancel,
                               const PrefillProgressFn & progress, int32_t progress_base, int32_t progress_total);
    Result<GenerateResult> generate(const std::vector<int32_t> & prompt, const GenerateOptions & o,
                                    const TokenCallback & cb);
};

}  // namespace dsv4::detail
