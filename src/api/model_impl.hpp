// What a dsv4::Model handle shares between its copies and its Sessions: the config, the mapped
// checkpoint, the bound weight views, the kernel table and the tokenizer. Immutable after load.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "dsv4/model.hpp"
#include "io/safetensors.hpp"
#include "model/config.hpp"
#include "model/forward.hpp"
#include "model/weights.hpp"
#include "util/log.hpp"

namespace dsv4::detail {

struct ModelImpl {
    ModelInfo                    info;
    model::ModelConfig           cfg;
    io::TensorStore              store;
    model::ModelWeights          weights;
    const kernels::KernelTable * k = nullptr;
    std::optional<Tokenizer>     tokenizer;
    Logger                       log;
    // FNV-1a over config.json and every tensor's name, dtype and shape: what a snapshot must
    // match to be restored into a session of this model.
    uint64_t fingerprint = 0;

    model::Engine engine() const { return model::Engine(cfg, weights, *k, info.n_threads); }
};

// FNV-1a, 64 bit.
inline uint64_t fnv1a(const void * data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
    const auto * p = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

}  // namespace dsv4::detail
