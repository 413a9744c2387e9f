// Connects a host's CancelToken to the forward pass: polled after every decoder block, so a
// cancel request stops a forward call within one layer of work (ForwardProbe::stop_requested).
#pragma once

#include "dsv4/generate.hpp"
#include "model/context.hpp"

namespace dsv4::detail {

class CancelProbe : public model::ForwardProbe {
  public:
    explicit CancelProbe(const CancelToken * cancel) : cancel_(cancel) {}
    bool stop_requested(int layer) override {
        (void)layer;
        return cancel_ && cancel_->requested();
    }

  private:
    const CancelToken * cancel_;
};

}  // namespace dsv4::detail
