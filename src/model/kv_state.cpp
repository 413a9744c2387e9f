#include "model/kv_state.hpp"

#include <cmath>
#include <limits>
#include <new>

namespace dsv4::model {
namespace {

uint64_t align64(uint64_t n) {
    return (n + 63) / 64 * 64;
}

// Walks the layout once; with base == nullptr it only measures.
uint64_t layout(const ModelConfig & cfg, int64_t n_ctx, uint8_t * base,
                std::vector<LayerKv> * out) {
    uint64_t off  = 0;
    auto     take = [&](uint64_t bytes) -> uint8_t * {
        uint8_t * p = base ? base + off : nullptr;
        off += align64(bytes);
        return p;
    };
    const uint64_t hd = static_cast<uint64_t>(cfg.head_dim);
    for (const LayerDesc & d : cfg.layers()) {
        LayerKv l;
        l.ratio  = d.ratio;
        l.n_ctx  = n_ctx;
        l.window = reinterpret_cast<uint16_t *>(take(uint64_t(cfg.window_size) * hd * 2));
        if (d.ratio != 0) {
            l.max_comp       = n_ctx / d.ratio;
            l.comp           = reinterpret_cast<uint16_t *>(take(uint64_t(l.max_comp) * hd * 2));
            const int coff   = ModelConfig::compressor_coff(d.ratio);
            l.main.rows      = coff * d.ratio;
            l.main.cols      = coff * cfg.head_dim;
            const uint64_t n = uint64_t(l.main.rows) * l.main.cols * 4;
            l.main.kv        = reinterpret_cast<float *>(take(n));
            l.main.score     = reinterpret_cast<float *>(take(n));
        }
        if (d.ratio == 4) {
            l.index_keys = reinterpret_cast<uint16_t *>(
                take(uint64_t(l.max_comp) * uint64_t(cfg.index_head_dim) * 2));
            l.indexer.rows   = 2 * 4;
            l.indexer.cols   = 2 * cfg.index_head_dim;
            const uint64_t n = uint64_t(l.indexer.rows) * l.indexer.cols * 4;
            l.indexer.kv     = reinterpret_cast<float *>(take(n));
            l.indexer.score  = reinterpret_cast<float *>(take(n));
        }
        if (out) out->push_back(l);
    }
    return off;
}

void reset_compressor(CompressorState & c) {
    const int64_t n = int64_t(c.rows) * c.cols;
    for (int64_t i = 0; i < n; ++i) {
        c.kv[i]    = 0.0f;
        c.score[i] = -std::numeric_limits<float>::infinity();
    }
}

}  // namespace

uint64_t KvState::bytes(const ModelConfig & cfg, int64_t n_ctx) {
    return layout(cfg, n_ctx, nullptr, nullptr);
}

Result<KvState> KvState::create(const ModelConfig & cfg, int64_t n_ctx) {
    if (n_ctx < 1)
        return Status(Errc::invalid_argument,
                      "n_ctx: must be at least 1, got " + std::to_string(n_ctx));
    KvState        s;
    const uint64_t total = layout(cfg, n_ctx, nullptr, nullptr);
    // 64-byte alignment: over-allocate and align the base by hand.
    s.storage_.reset(new (std::nothrow) uint8_t[total + 64]);
    if (!s.storage_)
        return Status(Errc::out_of_memory,
                      "cannot allocate " + std::to_string(total) + " bytes of KV state");
    uint8_t * base = s.storage_.get();
    base += (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
    layout(cfg, n_ctx, base, &s.layers_);
    s.n_ctx_ = n_ctx;
    s.reset();
    return s;
}

void KvState::reset() {
    for (LayerKv & l : layers_) {
        if (l.main.kv) reset_compressor(l.main);
        if (l.indexer.kv) reset_compressor(l.indexer);
    }
}

}  // namespace dsv4::model
