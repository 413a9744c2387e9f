// Builds the expected tensor list of spec §2.2 from a validated ModelConfig and the KV memory
// arithmetic of spec §3.9. Cross-checked against the real golden-a shard headers and the
// Flash/Pro totals of spec §9 (tests/model/test_config.cpp).
#include "model/inventory.hpp"

#include <utility>

namespace dsv4::model {

uint64_t dtype_tag_size(std::string_view tag) noexcept {
    if (tag == kTagF32) {
        return 4;
    }
    if (tag == kTagBF16) {
        return 2;
    }
    if (tag == kTagI64) {
        return 8;
    }
    if (tag == kTagI8 || tag == kTagF8E4M3 || tag == kTagF8E8M0) {
        return 1;
    }
    return 0;
}

uint64_t ExpectedTensor::elements() const noexcept {
    uint64_t n = 1;
    for (int64_t d : shape) {
        n *= static_cast<uint64_t>(d);
    }
    return n;
}

uint64_t payload_bytes(const std::vector<ExpectedTensor> & tensors) noexcept {
    uint64_t total = 0;
    for (const auto & t : tensors) {
        total += t.bytes();
    }
    return total;
}

namespace {

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

class Builder {
  public:
    explicit Builder(std::vector<ExpectedTensor> & out) : out_(out) {}

    void add(std::string name, std::string_view tag, std::vector<int64_t> shape) {
        out_.push_back(ExpectedTensor{std::move(name), std::string(tag), std::move(shape)});
    }
    // Linear weight [out, in] stored FP8 with 128x128 power-of-two scales.
    void fp8(const std::string & base, int64_t out, int64_t in) {
        add(base + ".weight", kTagF8E4M3, {out, in});
        add(base + ".scale", kTagF8E8M0,
            {ceil_div(out, kFp8WeightBlock), ceil_div(in, kFp8WeightBlock)});
    }
    // Linear weight [out, in] stored as packed FP4 (two codes per byte), one scale per 32 in.
    void fp4(const std::string & base, int64_t out, int64_t in) {
        add(base + ".weight", kTagI8, {out, in / 2});
        add(base + ".scale", kTagF8E8M0, {out, in / kFp4Block});
    }
    // hc_{kind}_fn / _base / _scale for a block sub-layer (MIX rows, 3 scales) or the head (HC
    // rows, 1 scale).
    void hc(const std::string & base, int64_t rows, int64_t hc_dim, int64_t n_scale) {
        add(base + "_fn", kTagF32, {rows, hc_dim});
        add(base + "_base", kTagF32, {rows});
        add(base + "_scale", kTagF32, {n_scale});
    }
    // Compressor with pooled width d, ratio r: ape [r, coff*d], wkv/wgate [coff*d, D], norm [d].
    void compressor(const std::string & base, int ratio, int64_t d, int64_t dim) {
        const int64_t w = ModelConfig::compressor_coff(ratio) * d;
        add(base + ".ape", kTagF32, {ratio, w});
        add(base + ".wkv.weight", kTagBF16, {w, dim});
        add(base + ".wgate.weight", kTagBF16, {w, dim});
        add(base + ".norm.weight", kTagBF16, {d});
    }

  private:
    std::vector<ExpectedTensor> & out_;
};

void add_block(Builder & b, const ModelConfig & c, const LayerDesc & L) {
    const std::string & p   = L.prefix;
    const int64_t       D   = c.dim;
    const int64_t       HD  = c.head_dim;
    const int64_t       mix = c.hc_mix();

    b.hc(p + "hc_attn", mix, c.hc_dim(), 3);
    b.hc(p + "hc_ffn", mix, c.hc_dim(), 3);
    b.add(p + "attn_norm.weight", kTagBF16, {D});
    b.add(p + "ffn_norm.weight", kTagBF16, {D});

    // Attention.
    b.add(p + "attn.attn_sink", kTagF32, {c.n_heads});
    b.fp8(p + "attn.wq_a", c.q_lora_rank, D);
    b.add(p + "attn.q_norm.weight", kTagBF16, {c.q_lora_rank});
    b.fp8(p + "attn.wq_b", c.q_dim(), c.q_lora_rank);
    b.fp8(p + "attn.wkv", HD, D);
    b.add(p + "attn.kv_norm.weight", kTagBF16, {HD});
    b.fp8(p + "attn.wo_a", c.wo_a_out(), c.wo_a_in());
    b.fp8(p + "attn.wo_b", D, c.wo_a_out());
    if (L.ratio != 0) {
        b.compressor(p + "attn.compressor", L.ratio, HD, D);
    }
    if (L.ratio == 4) {
        b.fp8(p + "attn.indexer.wq_b", c.index_q_dim(), c.q_lora_rank);
        b.add(p + "attn.indexer.weights_proj.weight", kTagBF16, {c.index_n_heads, D});
        b.compressor(p + "attn.indexer.compressor", 4, c.index_head_dim, D);
    }

    // MoE.
    const int64_t E = c.n_routed_experts;
    const int64_t I = c.moe_inter_dim;
    b.add(p + "ffn.gate.weight", kTagBF16, {E, D});
    if (L.hash) {
        b.add(p + "ffn.gate.tid2eid", kTagI64, {c.vocab_size, c.n_activated_experts});
    } else {
        b.add(p + "ffn.gate.bias", kTagF32, {E});
    }
    b.fp8(p + "ffn.shared_experts.w1", I, D);
    b.fp8(p + "ffn.shared_experts.w2", D, I);
    b.fp8(p + "ffn.shared_experts.w3", I, D);
    // Routed experts are FP4 for expert_dtype fp4 and for an absent key (see ExpertDtype).
    for (int64_t e = 0; e < E; ++e) {
        const std::string ep = p + "ffn.experts." + std::to_string(e) + ".";
        b.fp4(ep + "w1", I, D);
        b.fp4(ep + "w2", D, I);
        b.fp4(ep + "w3", I, D);
    }

    if (L.mtp) {
        b.fp8(p + "e_proj", D, D);
        b.fp8(p + "h_proj", D, D);
        b.add(p + "enorm.weight", kTagBF16, {D});
        b.add(p + "hnorm.weight", kTagBF16, {D});
        b.add(p + "norm.weight", kTagBF16, {D});
        b.hc(p + "hc_head", c.hc_mult, c.hc_dim(), 1);
    }
}

}  // namespace

std::vector<ExpectedTensor> expected_tensors(const ModelConfig & c) {
    std::vector<ExpectedTensor>  out;
    const std::vector<LayerDesc> layers = c.layers();
    // Upper bound: 6 globals; per block at most 45 fixed tensors + 6 per routed expert.
    out.reserve(6 + layers.size() * (45 + 6 * static_cast<size_t>(c.n_routed_experts)));

    Builder b(out);
    b.add("embed.weight", kTagBF16, {c.vocab_size, c.dim});
    b.add("head.weight", kTagBF16, {c.vocab_size, c.dim});
    b.add("norm.weight", kTagBF16, {c.dim});
    b.hc("hc_head", c.hc_mult, c.hc_dim(), 1);
    for (const auto & L : layers) {
        add_block(b, c, L);
    }
    return out;
}

KvCacheSize kv_cache_size(const ModelConfig & c, int64_t n_ctx, bool include_mtp) noexcept {
    KvCacheSize   s;
    const int     n_blocks = include_mtp ? c.n_blocks() : c.n_layers;
    const int64_t ctx      = n_ctx > 0 ? n_ctx : 0;
    const auto    u        = [](int64_t x) { return static_cast<uint64_t>(x); };
    for (int id = 0; id < n_blocks && static_cast<size_t>(id) < c.compress_ratios.size(); ++id) {
        const int r = c.ratio(id);
        s.window_bytes += u(int64_t{c.window_size} * c.head_dim * 2);
        if (r != 0) {
            const int64_t coff = ModelConfig::compressor_coff(r);
            s.compressed_bytes += u((ctx / r) * c.head_dim * 2);
            s.compressor_state_bytes += u(2 * (coff * r) * (coff * c.head_dim) * 4);
        }
        if (r == 4) {
            s.indexer_bytes += u((ctx / 4) * c.index_head_dim * 2);
            s.compressor_state_bytes += u(int64_t{2} * (2 * 4) * (2 * c.index_head_dim) * 4);
        }
    }
    return s;
}

double kv_cache_bytes_per_token(const ModelConfig & c) noexcept {
    double per_token = 0.0;
    for (int id = 0; id < c.n_layers && static_cast<size_t>(id) < c.compress_ratios.size(); ++id) {
        const int r = c.ratio(id);
        if (r != 0) {
            per_token += static_cast<double>(c.head_dim) * 2.0 / r;
        }
        if (r == 4) {
            per_token += static_cast<double>(c.index_head_dim) * 2.0 / 4.0;
        }
    }
    return per_token;
}

}  // namespace dsv4::model
