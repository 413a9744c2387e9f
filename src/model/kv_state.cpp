#include "model/kv_state.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "util/assert.hpp"

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
        l.id     = out ? static_cast<int>(out->size()) : 0;
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

// ---- KvCheckpoint ------------------------------------------------------------------------

std::vector<KvCheckpoint::Ring> KvCheckpoint::rings(const ModelConfig & cfg, int64_t max_call) {
    std::vector<Ring> out;
    const auto        add = [&](int layer, Kind kind, bool overlap, int64_t period, int64_t rows,
                         int64_t row_bytes) {
        Ring r;
        r.layer     = layer;
        r.kind      = kind;
        r.overlap   = overlap;
        r.period    = period;
        r.rows      = rows;
        r.row_bytes = row_bytes;
        // A call of T tokens rewrites min(T, rows) slots of a plain ring; an overlapping
        // compressor may rewrite all its rows in one step (the half shift at a block's end).
        r.cap = overlap ? rows : std::min(rows, max_call);
        out.push_back(r);
    };
    int id = 0;
    for (const LayerDesc & d : cfg.layers()) {
        add(id, Kind::window, false, cfg.window_size, cfg.window_size, int64_t(cfg.head_dim) * 2);
        if (d.ratio != 0) {
            const int     coff = ModelConfig::compressor_coff(d.ratio);
            const int64_t rows = int64_t(coff) * d.ratio, bytes = int64_t(coff) * cfg.head_dim * 4;
            add(id, Kind::main_kv, coff == 2, d.ratio, rows, bytes);
            add(id, Kind::main_score, coff == 2, d.ratio, rows, bytes);
        }
        if (d.ratio == 4) {
            const int64_t bytes = int64_t(2) * cfg.index_head_dim * 4;
            add(id, Kind::index_kv, true, 4, 8, bytes);
            add(id, Kind::index_score, true, 4, 8, bytes);
        }
        ++id;
    }
    return out;
}

uint64_t KvCheckpoint::bytes(const ModelConfig & cfg, int64_t max_call) {
    uint64_t n = 0;
    for (const Ring & r : rings(cfg, max_call)) n += align64(uint64_t(r.cap) * r.row_bytes);
    return n;
}

Result<KvCheckpoint> KvCheckpoint::create(const ModelConfig & cfg, int64_t max_call) {
    if (max_call < 1)
        return Status(Errc::invalid_argument,
                      "KvCheckpoint: max_call must be at least 1, got " + std::to_string(max_call));
    KvCheckpoint   c;
    const uint64_t total = bytes(cfg, max_call);
    c.storage_.reset(new (std::nothrow) uint8_t[total + 64]);
    if (!c.storage_)
        return Status(Errc::out_of_memory,
                      "cannot allocate " + std::to_string(total) + " bytes of KV checkpoint");
    uint8_t * p = c.storage_.get();
    p += (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;
    c.rings_ = rings(cfg, max_call);
    for (Ring & r : c.rings_) {
        r.data = p;
        p += align64(uint64_t(r.cap) * r.row_bytes);
    }
    c.max_call_ = max_call;
    return c;
}

uint8_t * KvCheckpoint::base(const LayerKv & l, Kind k) {
    switch (k) {
        case Kind::window: return reinterpret_cast<uint8_t *>(l.window);
        case Kind::main_kv: return reinterpret_cast<uint8_t *>(l.main.kv);
        case Kind::main_score: return reinterpret_cast<uint8_t *>(l.main.score);
        case Kind::index_kv: return reinterpret_cast<uint8_t *>(l.indexer.kv);
        case Kind::index_score: return reinterpret_cast<uint8_t *>(l.indexer.score);
    }
    return nullptr;
}

void KvCheckpoint::save_ring(Ring & r, const LayerKv & l, int64_t first, int64_t count) {
    DSV4_DASSERT(count <= r.cap);
    const uint8_t * src = base(l, r.kind);
    for (int64_t i = 0; i < count; ++i)
        std::memcpy(r.data + i * r.row_bytes, src + ((first + i) % r.rows) * r.row_bytes,
                    static_cast<size_t>(r.row_bytes));
    r.first = first;
    r.count = count;
}

void KvCheckpoint::save_all(const KvState & kv, int64_t pos) {
    DSV4_DASSERT(max_call_ == kWhole);
    for (Ring & r : rings_) save_ring(r, kv.layer(r.layer), 0, r.rows);
    pos_   = pos;
    valid_ = true;
}

void KvCheckpoint::save_call(const KvState & kv, int64_t pos, int64_t T) {
    DSV4_DASSERT(T >= 1 && T <= max_call_);
    for (Ring & r : rings_) {
        const int64_t in_block = pos % r.period;
        if (!r.overlap)  // window ring, 128x compressor: slot q mod rows for q in pos..pos+T-1
            save_ring(r, kv.layer(r.layer), pos % r.rows, std::min(T, r.rows));
        else if (in_block + T >= r.period)  // a block completes: both halves change
            save_ring(r, kv.layer(r.layer), 0, r.rows);
        else  // only current-half slots period + q mod period
            save_ring(r, kv.layer(r.layer), r.period + in_block, T);
    }
    pos_   = pos;
    valid_ = true;
}

void KvCheckpoint::arm(KvState & kv, int64_t pos) {
    DSV4_DASSERT(max_call_ == kWhole);
    for (int l = 0; l < kv.n_layers(); ++l) {
        kv.layer(l).capture     = this;
        kv.layer(l).capture_pos = pos;
    }
    pos_   = pos;
    valid_ = false;
}

void KvCheckpoint::capture_layer(LayerKv & l) {
    for (Ring & r : rings_)
        if (r.layer == l.id) save_ring(r, l, 0, r.rows);
    l.capture     = nullptr;
    l.capture_pos = -1;
}

void KvCheckpoint::end_capture(KvState & kv, bool call_completed) {
    for (int l = 0; l < kv.n_layers(); ++l) {
        LayerKv & L = kv.layer(l);
        if (L.capture != this) continue;
        // A block the call did not run (the MTP block) still holds its state at pos.
        if (call_completed) capture_layer(L);
        L.capture     = nullptr;
        L.capture_pos = -1;
    }
    valid_ = call_completed;
}

void KvCheckpoint::restore(KvState & kv) const {
    DSV4_DASSERT(valid_);
    for (const Ring & r : rings_) {
        uint8_t * dst = base(kv.layer(r.layer), r.kind);
        for (int64_t i = 0; i < r.count; ++i)
            std::memcpy(dst + ((r.first + i) % r.rows) * r.row_bytes, r.data + i * r.row_bytes,
                        static_cast<size_t>(r.row_bytes));
    }
}

}  // namespace dsv4::model
