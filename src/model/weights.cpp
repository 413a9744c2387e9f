#include "model/weights.hpp"

#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <unordered_set>

#include "model/inventory.hpp"

namespace dsv4::model {
namespace {

std::string shape_str(const std::vector<int64_t> & s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(s[i]);
    }
    return out + "]";
}

class Binder {
  public:
    Binder(const ModelConfig & cfg, const io::TensorStore & store, ModelWeights & mw)
        : cfg_(cfg), store_(store), mw_(mw) {}

    // Presence, dtype and shape of every expected tensor; collects unknown extras.
    Status check_inventory(const detail::Logger & log) {
        const std::vector<ExpectedTensor> inv = expected_tensors(cfg_);
        std::unordered_set<std::string>   names;
        names.reserve(inv.size());
        for (const ExpectedTensor & e : inv) {
            names.insert(e.name);
            const io::TensorInfo * t = store_.find(e.name);
            if (!t)
                return Status(Errc::invalid_model, where() + ": tensor '" + e.name +
                                                       "' is missing (expected " + e.dtype + " " +
                                                       shape_str(e.shape) + ")");
            if (e.dtype != io::dtype_name(t->dtype))
                return Status(Errc::invalid_model, file_of(*t) + ": tensor '" + e.name +
                                                       "': dtype " + io::dtype_name(t->dtype) +
                                                       ", expected " + e.dtype);
            if (e.shape != t->shape)
                return Status(Errc::invalid_model, file_of(*t) + ": tensor '" + e.name +
                                                       "': shape " + shape_str(t->shape) +
                                                       ", expected " + shape_str(e.shape));
        }
        std::vector<std::string> extra;
        for (const io::TensorInfo & t : store_.tensors())
            if (!names.count(t.name)) extra.push_back(t.name);
        if (!extra.empty()) {
            std::string msg = where() + ": ignoring " + std::to_string(extra.size()) +
                              " tensor(s) not used by DeepSeek-V4:";
            for (size_t i = 0; i < extra.size() && i < 8; ++i) msg += " '" + extra[i] + "'";
            if (extra.size() > 8) msg += " ...";
            log.warn(msg);
        }
        return Status();
    }

    const io::TensorInfo & t(const std::string & name) const { return *store_.find(name); }

    Fp8Mat fp8(const std::string & base) {
        const io::TensorInfo & w = t(base + ".weight");
        const io::TensorInfo & s = t(base + ".scale");
        mw_.mapped_bytes += w.nbytes + s.nbytes;
        return Fp8Mat{w.data, s.data, w.shape[0], w.shape[1]};
    }
    Fp4Mat fp4(const std::string & base) {
        const io::TensorInfo & w = t(base + ".weight");
        const io::TensorInfo & s = t(base + ".scale");
        mw_.mapped_bytes += w.nbytes + s.nbytes;
        return Fp4Mat{w.data, s.data, w.shape[0], w.shape[1] * 2};
    }
    // BF16 matrix, zero-copy when 2-byte aligned.
    Bf16Mat bf16(const std::string & name) {
        const io::TensorInfo & x = t(name);
        Bf16Mat                m;
        m.rows = x.shape[0];
        m.cols = x.shape.size() > 1 ? x.shape[1] : 1;
        if (reinterpret_cast<uintptr_t>(x.data) % alignof(uint16_t) == 0) {
            m.w = reinterpret_cast<const uint16_t *>(x.data);
            mw_.mapped_bytes += x.nbytes;
        } else {
            uint16_t * p = alloc<uint16_t>(mw_.u16_arena, static_cast<size_t>(x.numel()));
            if (!p) return m;
            std::memcpy(p, x.data, x.nbytes);
            mw_.copied_bytes += x.nbytes;
            m.w = p;
        }
        return m;
    }
    // F32 tensor, zero-copy when 4-byte aligned.
    const float * f32(const std::string & name) {
        const io::TensorInfo & x = t(name);
        if (reinterpret_cast<uintptr_t>(x.data) % alignof(float) == 0) {
            mw_.mapped_bytes += x.nbytes;
            return reinterpret_cast<const float *>(x.data);
        }
        float * p = alloc<float>(mw_.f32_arena, static_cast<size_t>(x.numel()));
        if (!p) return nullptr;
        std::memcpy(p, x.data, x.nbytes);
        mw_.copied_bytes += x.nbytes;
        return p;
    }
    // BF16 vector widened to fp32 (norm weights; exact).
    const float * bf16_as_f32(const std::string & name) {
        const io::TensorInfo & x = t(name);
        const size_t           n = static_cast<size_t>(x.numel());
        float *                p = alloc<float>(mw_.f32_arena, n);
        if (!p) return nullptr;
        for (size_t i = 0; i < n; ++i) {
            uint16_t b;
            std::memcpy(&b, x.data + 2 * i, 2);
            const uint32_t u = static_cast<uint32_t>(b) << 16;
            std::memcpy(p + i, &u, 4);
        }
        mw_.copied_bytes += n * sizeof(float);
        return p;
    }
    // tid2eid I64 [vocab, k] -> int32 with range and distinctness checks.
    Result<const int32_t *> tid2eid(const std::string & name) {
        const io::TensorInfo & x    = t(name);
        const int64_t          rows = x.shape[0], k = x.shape[1];
        int32_t *              p = alloc<int32_t>(mw_.i32_arena, static_cast<size_t>(rows * k));
        if (!p) return Status(Errc::out_of_memory, where() + ": cannot allocate " + name);
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t j = 0; j < k; ++j) {
                int64_t v;
                std::memcpy(&v, x.data + 8 * (r * k + j), 8);
                if (v < 0 || v >= cfg_.n_routed_experts)
                    return Status(Errc::invalid_model,
                                  file_of(x) + ": tensor '" + name + "': row " + std::to_string(r) +
                                      " names expert " + std::to_string(v) + ", outside [0, " +
                                      std::to_string(cfg_.n_routed_experts) + ")");
                for (int64_t i = 0; i < j; ++i)
                    if (p[r * k + i] == v)
                        return Status(Errc::invalid_model, file_of(x) + ": tensor '" + name +
                                                               "': row " + std::to_string(r) +
                                                               " names expert " +
                                                               std::to_string(v) + " twice");
                p[r * k + j] = static_cast<int32_t>(v);
            }
        }
        mw_.copied_bytes += static_cast<uint64_t>(rows * k) * sizeof(int32_t);
        return static_cast<const int32_t *>(p);
    }

    HcWeights hc(const std::string & prefix, const std::string & kind) {
        return HcWeights{f32(prefix + "hc_" + kind + "_fn"), f32(prefix + "hc_" + kind + "_base"),
                         f32(prefix + "hc_" + kind + "_scale")};
    }

    CompressorWeights compressor(const std::string & p, int ratio, int d) {
        CompressorWeights c;
        c.ratio = ratio;
        c.coff  = ModelConfig::compressor_coff(ratio);
        c.d     = d;
        c.ape   = f32(p + "ape");
        c.wkv   = bf16(p + "wkv.weight");
        c.wgate = bf16(p + "wgate.weight");
        c.norm  = bf16_as_f32(p + "norm.weight");
        return c;
    }

    bool        out_of_memory() const noexcept { return oom_; }
    std::string where() const { return "checkpoint '" + store_.dir() + "'"; }

  private:
    std::string file_of(const io::TensorInfo & x) const { return store_.file_path(x.file_index); }

    template <class T>
    T * alloc(std::vector<std::unique_ptr<T[]>> & arena, size_t n) {
        T * p = new (std::nothrow) T[n ? n : 1];
        if (!p) {
            oom_ = true;
            return nullptr;
        }
        arena.emplace_back(p);
        return p;
    }

    const ModelConfig &     cfg_;
    const io::TensorStore & store_;
    ModelWeights &          mw_;
    bool                    oom_ = false;
};

}  // namespace

Result<ModelWeights> bind_weights(const ModelConfig & cfg, const io::TensorStore & store,
                                  const detail::Logger & log) {
    ModelWeights mw;
    Binder       b(cfg, store, mw);
    if (Status s = b.check_inventory(log); !s.ok()) return s;

    mw.embed   = b.bf16("embed.weight");
    mw.head    = b.bf16("head.weight");
    mw.norm    = b.bf16_as_f32("norm.weight");
    mw.hc_head = HcWeights{b.f32("hc_head_fn"), b.f32("hc_head_base"), b.f32("hc_head_scale")};

    for (const LayerDesc & d : cfg.layers()) {
        BlockWeights        bw;
        const std::string & p = d.prefix;
        bw.desc               = d;
        bw.hc_attn            = b.hc(p, "attn");
        bw.hc_ffn             = b.hc(p, "ffn");
        bw.attn_norm          = b.bf16_as_f32(p + "attn_norm.weight");
        bw.ffn_norm           = b.bf16_as_f32(p + "ffn_norm.weight");

        AttentionWeights & a  = bw.attn;
        const std::string  ap = p + "attn.";
        a.wq_a                = b.fp8(ap + "wq_a");
        a.q_norm              = b.bf16_as_f32(ap + "q_norm.weight");
        a.wq_b                = b.fp8(ap + "wq_b");
        a.wkv                 = b.fp8(ap + "wkv");
        a.kv_norm             = b.bf16_as_f32(ap + "kv_norm.weight");
        a.wo_a                = b.fp8(ap + "wo_a");
        a.wo_b                = b.fp8(ap + "wo_b");
        a.attn_sink           = b.f32(ap + "attn_sink");
        if (d.ratio != 0) {
            a.has_compressor = true;
            a.compressor     = b.compressor(ap + "compressor.", d.ratio, cfg.head_dim);
        }
        if (d.ratio == 4) {
            a.has_indexer          = true;
            a.indexer.wq_b         = b.fp8(ap + "indexer.wq_b");
            a.indexer.weights_proj = b.bf16(ap + "indexer.weights_proj.weight");
            a.indexer.compressor = b.compressor(ap + "indexer.compressor.", 4, cfg.index_head_dim);
        }

        MoeWeights &      f  = bw.ffn;
        const std::string fp = p + "ffn.";
        f.gate               = b.bf16(fp + "gate.weight");
        if (d.hash) {
            Result<const int32_t *> ids = b.tid2eid(fp + "gate.tid2eid");
            if (!ids.ok()) return ids.status();
            f.tid2eid = *ids;
        } else {
            f.gate_bias = b.f32(fp + "gate.bias");
        }
        f.shared_w1 = b.fp8(fp + "shared_experts.w1");
        f.shared_w2 = b.fp8(fp + "shared_experts.w2");
        f.shared_w3 = b.fp8(fp + "shared_experts.w3");
        f.experts.resize(static_cast<size_t>(cfg.n_routed_experts));
        for (int e = 0; e < cfg.n_routed_experts; ++e) {
            const std::string ep              = fp + "experts." + std::to_string(e) + ".";
            f.experts[static_cast<size_t>(e)] = {b.fp4(ep + "w1"), b.fp4(ep + "w3"),
                                                 b.fp4(ep + "w2")};
        }

        if (d.mtp) {
            bw.e_proj  = b.fp8(p + "e_proj");
            bw.h_proj  = b.fp8(p + "h_proj");
            bw.enorm   = b.bf16_as_f32(p + "enorm.weight");
            bw.hnorm   = b.bf16_as_f32(p + "hnorm.weight");
            bw.norm    = b.bf16_as_f32(p + "norm.weight");
            bw.hc_head = HcWeights{b.f32(p + "hc_head_fn"), b.f32(p + "hc_head_base"),
                                   b.f32(p + "hc_head_scale")};
        }
        mw.blocks.push_back(std::move(bw));
    }
    if (b.out_of_memory())
        return Status(Errc::out_of_memory, b.where() + ": cannot allocate the converted tensors");
    return mw;
}

VerifyReport verify_tensors(const io::TensorStore & store) {
    VerifyReport r;
    uint64_t     h = 1469598103934665603ull;
    for (const io::TensorInfo & t : store.tensors()) {
        uint64_t bad = 0;
        switch (t.dtype) {
            case io::DType::F8_E8M0:
                for (uint64_t i = 0; i < t.nbytes; ++i) bad += t.data[i] == 255;
                r.nan_scale_codes += bad;
                break;
            case io::DType::F8_E4M3:
                for (uint64_t i = 0; i < t.nbytes; ++i) bad += (t.data[i] & 0x7F) == 0x7F;
                r.nan_e4m3_codes += bad;
                break;
            case io::DType::F32:
                for (uint64_t i = 0; i + 4 <= t.nbytes; i += 4) {
                    uint32_t u;
                    std::memcpy(&u, t.data + i, 4);
                    bad += (u & 0x7F800000u) == 0x7F800000u;
                }
                r.nonfinite_f32 += bad;
                break;
            case io::DType::BF16:
                for (uint64_t i = 0; i + 2 <= t.nbytes; i += 2) {
                    uint16_t u;
                    std::memcpy(&u, t.data + i, 2);
                    bad += (u & 0x7F80u) == 0x7F80u;
                }
                r.nonfinite_bf16 += bad;
                break;
            default: break;
        }
        // Fold every byte (8 at a time) so the whole payload is really read.
        uint64_t i = 0;
        for (; i + 8 <= t.nbytes; i += 8) {
            uint64_t v;
            std::memcpy(&v, t.data + i, 8);
            h = (h ^ v) * 1099511628211ull;
        }
        for (; i < t.nbytes; ++i) h = (h ^ t.data[i]) * 1099511628211ull;
        r.bytes_scanned += t.nbytes;
        if (bad && r.offenders.size() < 16) r.offenders.push_back(t.name);
    }
    r.checksum = h;
    return r;
}

}  // namespace dsv4::model
