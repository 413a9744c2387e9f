#include "model/forward.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include "dsv4/ref/formats.hpp"
#include "model/attention.hpp"
#include "model/hyper_connections.hpp"
#include "model/linear.hpp"
#include "model/moe.hpp"
#include "model/scratch.hpp"
#include "threading/parallel.hpp"

namespace dsv4::model {
namespace {

struct WsBuffers {
    float *   X;       // [T, hc*dim] residual streams
    float *   y;       // [T, dim] sub-layer input
    float *   o;       // [T, dim] sub-layer output
    HcSplit * split;   // [T]
    float *   hc;      // hc_pre / hc_head scratch
    float *   e;       // [T, dim]      MTP: normalised embedding, then e_proj output
    float *   xh;      // [T*hc, dim]   MTP: normalised streams, then h_proj output
    uint8_t * qa;      // [T*hc rows of dim] MTP prepared activations
    uint8_t * module;  // attention / MoE scratch (used one after the other)
};

WsBuffers carve_ws(Carver & c, const ModelConfig & cfg, int64_t T, int64_t n_ctx) {
    const int64_t hc = cfg.hc_mult, dim = cfg.dim;
    WsBuffers     b;
    b.X     = c.take<float>(T * hc * dim);
    b.y     = c.take<float>(T * dim);
    b.o     = c.take<float>(T * dim);
    b.split = c.take<HcSplit>(T);
    b.hc    = c.take<float>(std::max<int64_t>(hc_scratch_floats(cfg, T), 1));
    b.e     = c.take<float>(T * dim);
    b.xh    = c.take<float>(T * hc * dim);
    b.qa    = c.take<uint8_t>(T * hc * kernels::qact_row_bytes(dim));
    b.module =
        c.take<uint8_t>(std::max(attn_scratch_bytes(cfg, T, n_ctx), moe_scratch_bytes(cfg, T)));
    return b;
}

float bf16_bits_to_f32(uint16_t b) {
    return ref::bf16_to_f32(b);
}

}  // namespace

uint64_t Workspace::bytes(const ModelConfig & cfg, int64_t max_tokens, int64_t n_ctx) {
    Carver c(nullptr);
    carve_ws(c, cfg, max_tokens, n_ctx);
    return static_cast<uint64_t>(c.used());
}

Result<Workspace> Workspace::create(const ModelConfig & cfg, int64_t max_tokens, int64_t n_ctx) {
    if (max_tokens < 1) return Status(Errc::invalid_argument, "max_tokens: must be at least 1");
    Workspace      w;
    const uint64_t n = bytes(cfg, max_tokens, n_ctx);
    w.storage_.reset(new (std::nothrow) uint8_t[n + 64]);
    if (!w.storage_)
        return Status(Errc::out_of_memory,
                      "cannot allocate " + std::to_string(n) + " bytes of forward-pass workspace");
    w.base_ = w.storage_.get();
    w.base_ += (64 - reinterpret_cast<uintptr_t>(w.base_) % 64) % 64;
    w.max_tokens_ = max_tokens;
    return w;
}

void Engine::block(const Ctx & c, const BlockWeights & b, LayerKv & kv, float * X,
                   const int32_t * ids, int64_t T, int64_t start_pos, uint8_t * ws_base) const {
    const ModelConfig & cfg = *cfg_;
    const int64_t       dim = cfg.dim, hcd = cfg.hc_dim();
    const float         eps = static_cast<float>(cfg.norm_eps);
    Carver              cv(ws_base);
    WsBuffers           w  = carve_ws(cv, cfg, T, kv.n_ctx);
    const int           id = b.desc.id;
    if (c.probe) c.probe->tensor(id, "block_in", X, T, hcd);

    hc_pre(c, b.hc_attn, X, T, w.y, w.split, w.hc);
    for (int64_t t = 0; t < T; ++t)
        k_->rmsnorm_bf16(w.y + t * dim, w.y + t * dim, b.attn_norm, dim, eps);
    if (c.probe) c.probe->tensor(id, "attn_in", w.y, T, dim);
    attention_forward(c, b, kv, w.y, start_pos, T, w.o, w.module);
    if (c.probe) c.probe->tensor(id, "attn_out", w.o, T, dim);
    hc_post(c, w.o, X, w.split, T, X);

    hc_pre(c, b.hc_ffn, X, T, w.y, w.split, w.hc);
    for (int64_t t = 0; t < T; ++t)
        k_->rmsnorm_bf16(w.y + t * dim, w.y + t * dim, b.ffn_norm, dim, eps);
    if (c.probe) c.probe->tensor(id, "ffn_in", w.y, T, dim);
    moe_forward(c, b, w.y, ids, T, w.o, w.module);
    if (c.probe) c.probe->tensor(id, "ffn_out", w.o, T, dim);
    hc_post(c, w.o, X, w.split, T, X);
}

void Engine::head(const Ctx & c, const HcWeights & hcw, const float * norm, const float * X_last,
                  float * logits, float * y, float * hc_scratch) const {
    const ModelConfig & cfg = *cfg_;
    hc_head(c, hcw, X_last, 1, y, hc_scratch);
    k_->rmsnorm_bf16(y, y, norm, cfg.dim, static_cast<float>(cfg.norm_eps));
    gemm_bf16_all(c, logits, cfg.vocab_size, w_->head.w, cfg.vocab_size, cfg.dim, y, cfg.dim, 1);
}

Status Engine::forward(KvState & kv, Workspace & ws, const int32_t * tokens, int64_t T,
                       int64_t start_pos, float * logits, float * h_final,
                       ForwardProbe * probe) const {
    const ModelConfig & cfg = *cfg_;
    if (T < 1) return Status(Errc::invalid_argument, "forward: no tokens");
    if (start_pos < 0 || start_pos + T > kv.n_ctx())
        return Status(Errc::context_full, "forward: positions " + std::to_string(start_pos) + ".." +
                                              std::to_string(start_pos + T - 1) +
                                              " exceed the context of " +
                                              std::to_string(kv.n_ctx()) + " tokens");
    for (int64_t t = 0; t < T; ++t)
        if (tokens[t] < 0 || tokens[t] >= cfg.vocab_size)
            return Status(Errc::invalid_argument, "forward: token id " + std::to_string(tokens[t]) +
                                                      " at index " + std::to_string(t) +
                                                      " is outside the vocabulary of " +
                                                      std::to_string(cfg.vocab_size));
    const Ctx c = ctx(probe);
    Status    status;
    // One OpenMP region for the whole call: its products are handed to the same threads
    // (threading::with_team) instead of each forking and joining its own.
    threading::with_team(c.n_threads, [&] {
        status = forward_chunks(c, kv, ws, tokens, T, start_pos, logits, h_final, probe);
    });
    return status;
}

Status Engine::forward_chunks(const Ctx & c, KvState & kv, Workspace & ws, const int32_t * tokens,
                              int64_t T, int64_t start_pos, float * logits, float * h_final,
                              ForwardProbe * probe) const {
    const ModelConfig & cfg = *cfg_;
    const int64_t       dim = cfg.dim, hc = cfg.hc_mult, hcd = cfg.hc_dim();
    for (int64_t c0 = 0; c0 < T; c0 += ws.max_tokens()) {
        const int64_t n   = std::min(ws.max_tokens(), T - c0);
        const int64_t pos = start_pos + c0;
        Carver        cv(ws.data());
        WsBuffers     w = carve_ws(cv, cfg, n, kv.n_ctx());
        for (int64_t t = 0; t < n; ++t) {
            const uint16_t * row = w_->embed.w + static_cast<int64_t>(tokens[c0 + t]) * dim;
            for (int64_t s = 0; s < hc; ++s)
                for (int64_t i = 0; i < dim; ++i)
                    w.X[t * hcd + s * dim + i] = bf16_bits_to_f32(row[i]);
        }
        for (int l = 0; l < cfg.n_layers; ++l) {
            block(c, w_->blocks[static_cast<size_t>(l)], kv.layer(l), w.X, tokens + c0, n, pos,
                  ws.data());
            if (probe && probe->stop_requested(l))
                return Status(Errc::cancelled,
                              "forward: cancelled after layer " + std::to_string(l));
        }
        // The workspace carve for n tokens puts X first, so X survives the block calls.
        if (probe) probe->tensor(cfg.n_layers, "h_final", w.X, n, hcd);
        if (h_final) std::memcpy(h_final + c0 * hcd, w.X, sizeof(float) * n * hcd);
        if (logits && c0 + n == T)
            head(c, w_->hc_head, w_->norm, w.X + (n - 1) * hcd, logits, w.y, w.hc);
    }
    return Status();
}

Status Engine::mtp(KvState & kv, Workspace & ws, const float * h, const int32_t * ids, int64_t T,
                   int64_t start_pos, float * logits, ForwardProbe * probe) const {
    const ModelConfig & cfg = *cfg_;
    if (cfg.n_mtp_layers < 1)
        return Status(Errc::invalid_argument, "mtp: the model has no MTP block");
    if (T < 1 || T > ws.max_tokens())
        return Status(Errc::invalid_argument, "mtp: T must be in [1, workspace max_tokens]");
    if (start_pos < 0 || start_pos + T > kv.n_ctx())
        return Status(Errc::context_full, "mtp: positions exceed the context");
    for (int64_t t = 0; t < T; ++t)
        if (ids[t] < 0 || ids[t] >= cfg.vocab_size)
            return Status(Errc::invalid_argument, "mtp: token id out of range");
    const Ctx c = ctx(probe);
    threading::with_team(c.n_threads, [&] { mtp_body(c, kv, ws, h, ids, T, start_pos, logits); });
    return Status();
}

void Engine::mtp_body(const Ctx & c, KvState & kv, Workspace & ws, const float * h,
                      const int32_t * ids, int64_t T, int64_t start_pos, float * logits) const {
    const ModelConfig &  cfg = *cfg_;
    const int64_t        dim = cfg.dim, hc = cfg.hc_mult, hcd = cfg.hc_dim();
    const float          eps = static_cast<float>(cfg.norm_eps);
    const int            id  = cfg.n_layers;
    const BlockWeights & b   = w_->blocks[static_cast<size_t>(id)];
    Carver               cv(ws.data());
    WsBuffers            w = carve_ws(cv, cfg, T, kv.n_ctx());
    // e = enorm(embed[ids]); xh = hnorm(h) per stream; X = bf16(e_proj(e) + h_proj(xh)).
    for (int64_t t = 0; t < T; ++t) {
        const uint16_t * row = w_->embed.w + static_cast<int64_t>(ids[t]) * dim;
        for (int64_t i = 0; i < dim; ++i) w.y[t * dim + i] = bf16_bits_to_f32(row[i]);
        k_->rmsnorm_bf16(w.y + t * dim, w.y + t * dim, b.enorm, dim, eps);
        for (int64_t s = 0; s < hc; ++s)
            k_->rmsnorm_bf16(w.X + (t * hc + s) * dim, h + (t * hc + s) * dim, b.hnorm, dim, eps);
    }
    prep_quant(c, w.qa, w.y, dim, dim, T);
    lin8_all(c, w.e, dim, b.e_proj, w.qa, T);
    prep_quant(c, w.qa, w.X, dim, dim, T * hc);
    lin8_all(c, w.xh, dim, b.h_proj, w.qa, T * hc);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t s = 0; s < hc; ++s)
            for (int64_t i = 0; i < dim; ++i)
                w.X[t * hcd + s * dim + i] =
                    ref::round_bf16(w.e[t * dim + i] + w.xh[(t * hc + s) * dim + i]);
    block(c, b, kv.layer(id), w.X, ids, T, start_pos, ws.data());
    if (logits) head(c, b.hc_head, b.norm, w.X + (T - 1) * hcd, logits, w.y, w.hc);
}

}  // namespace dsv4::model
