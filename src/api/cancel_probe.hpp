// Connects a host's CancelToken to the forward pass: polled after every decoder block, so a
// cancel request stops a forward call within one layer of work (ForwardProbe::stop_requested).
#pragma once

#include <atomic>

#include "dsv4/generate.hpp"
#include "model/context.hpp"

namespace dsv4::detail {

// Test seam: when set, called at every poll (after each decoder block, on the thread running
// the forward pass, before the token is read), so a test can make a cancel request land inside
// a forward call at a chosen block. Null in normal use (one relaxed load per block).
inline std::atomic<void (*)(int layer)> g_cancel_poll_test_hook{nullptr};

class CancelProbe : public model::ForwardProbe {
  public:
    explicit CancelProbe(const CancelToken * cancel) : cancel_(cancel) {}
    bool stop_requested(int layer) override {
        if (auto * hook = g_cancel_poll_test_hook.load(std::memory_order_relaxed)) hook(layer);
        return cancel_ && cancel_->requested();
    }

  private:
    const CancelToken * cancel_;
};

}  // namespace dsv4::detail
