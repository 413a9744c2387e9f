// MoE feed-forward (model/moe.hpp) against the official reference on golden-a: for the recorded
// layers 0 (hash routing), 2 and 3 (biased top-k), ffn_in -> ffn_out within the sublayer
// tolerance of the golden README, the gate's indices exactly, its weights and biased scores to
// 1e-5 relative; on every usable kernel arch, bit-identical across thread counts, and a T = 1
// (decode) call reproduces the matching row of the T = 300 call bit for bit.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dsv4/system.hpp"
#include "io/safetensors.hpp"
#include "kernels/kernel_table.hpp"
#include "model/config.hpp"
#include "model/context.hpp"
#include "model/moe.hpp"
#include "model/weights.hpp"
#include "util/log.hpp"

using namespace dsv4;

namespace {

const std::string kGolden = std::string(DSV4_TEST_DATA_DIR) + "/golden-a";

struct Golden {
    model::ModelConfig  cfg;
    io::TensorStore     store;
    model::ModelWeights weights;
    io::SafetensorsFile ref;
};

const Golden & golden() {
    static const std::unique_ptr<Golden> g = [] {
        auto cfg = model::load_config(kGolden + "/config.json");
        REQUIRE(cfg.ok());
        auto store = io::TensorStore::open_dir(kGolden);
        REQUIRE(store.ok());
        auto ref = io::SafetensorsFile::open(kGolden + "/golden.safetensors");
        REQUIRE(ref.ok());
        auto out =
            std::unique_ptr<Golden>(new Golden{std::move(cfg).value(), std::move(store).value(),
                                               model::ModelWeights{}, std::move(ref).value()});
        auto w = model::bind_weights(out->cfg, out->store, detail::Logger());
        REQUIRE(w.ok());
        out->weights = std::move(w).value();
        return out;
    }();
    return *g;
}

// A golden tensor copied out (the file gives no alignment guarantee).
template <class T>
std::vector<T> tensor(const std::string & name, io::DType dtype) {
    const io::TensorInfo * t = golden().ref.find(name);
    INFO(name);
    REQUIRE(t != nullptr);
    REQUIRE(t->dtype == dtype);
    std::vector<T> v(static_cast<size_t>(t->numel()));
    std::memcpy(v.data(), t->data, t->nbytes);
    return v;
}
std::vector<float> f32(const std::string & name) {
    return tensor<float>(name, io::DType::F32);
}
std::vector<int32_t> i32(const std::string & name) {
    return tensor<int32_t>(name, io::DType::I32);
}

struct AlignedFree {
    void operator()(uint8_t * p) const { std::free(p); }
};
using Scratch = std::unique_ptr<uint8_t, AlignedFree>;

// Exactly moe_scratch_bytes (rounded to 64), so ASan sees any overrun.
Scratch make_scratch(const model::ModelConfig & cfg, int64_t T) {
    const int64_t n = (model::moe_scratch_bytes(cfg, T) + 63) / 64 * 64;
    auto *        p = static_cast<uint8_t *>(std::aligned_alloc(64, static_cast<size_t>(n)));
    REQUIRE(p != nullptr);
    return Scratch(p);
}

struct Run {
    std::vector<float>   out;
    std::vector<int32_t> indices;
    std::vector<float>   weights;
    std::vector<float>   biased;
};

Run run_moe(const kernels::KernelTable & kt, int threads, int layer, const float * x,
            const int32_t * tokens, int64_t T) {
    const Golden &   g = golden();
    const int64_t    D = g.cfg.dim, k = g.cfg.n_activated_experts, E = g.cfg.n_routed_experts;
    const model::Ctx ctx{&g.cfg, &kt, threads};
    Run              r;
    r.out.assign(static_cast<size_t>(T * D), -1.0f);
    r.indices.assign(static_cast<size_t>(T * k), -1);
    r.weights.assign(static_cast<size_t>(T * k), -1.0f);
    r.biased.assign(static_cast<size_t>(T * E), -1.0f);
    const model::MoeTrace trace{r.indices.data(), r.weights.data(), r.biased.data()};
    Scratch               scratch = make_scratch(g.cfg, T);
    model::moe_forward(ctx, g.weights.blocks[static_cast<size_t>(layer)], x, tokens, T,
                       r.out.data(), scratch.get(), &trace);
    return r;
}

bool same_bits(const std::vector<float> & a, const std::vector<float> & b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Err {
    double rel_rms = 0, max_abs = 0;
};
Err compare(const std::vector<float> & got, const std::vector<float> & want) {
    double num = 0, den = 0, mx = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        const double d = static_cast<double>(got[i]) - want[i];
        num += d * d;
        den += static_cast<double>(want[i]) * want[i];
        mx = std::max(mx, std::fabs(d));
    }
    return {std::sqrt(num / den), mx};
}
// max_i |got - want| / max(|want|, |ref_i|): relative to the larger of the value and `ref`
// (default: the value itself).
double max_rel(const std::vector<float> & got, const std::vector<float> & want,
               const std::vector<float> * ref = nullptr) {
    double m = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        double scale = std::fabs(static_cast<double>(want[i]));
        if (ref) scale = std::max(scale, std::fabs(static_cast<double>((*ref)[i])));
        m = std::max(m, std::fabs(static_cast<double>(got[i]) - want[i]) / std::max(scale, 1e-30));
    }
    return m;
}

const char * arch_label(CpuArch a) {
    return kernels::kernel_table(a).name;
}

}  // namespace

TEST_CASE("moe: golden-a ffn_in -> ffn_out and gate, every arch and thread count",
          "[moe][golden]") {
    const Golden &             g      = golden();
    const int64_t              T      = 300;
    const int64_t              D      = g.cfg.dim;
    const int64_t              k      = g.cfg.n_activated_experts;
    const std::vector<int32_t> tokens = i32("prompt_ids");
    REQUIRE(static_cast<int64_t>(tokens.size()) == T);
    for (const int layer : {0, 2, 3}) {
        const std::string p    = "prefill.L" + std::to_string(layer) + ".";
        const bool        hash = g.weights.blocks[static_cast<size_t>(layer)].desc.hash;
        CHECK(hash == (layer == 0));
        const std::vector<float>   x     = f32(p + "ffn_in");
        const std::vector<float>   want  = f32(p + "ffn_out");
        const std::vector<int32_t> g_idx = i32(p + "gate.indices");
        const std::vector<float>   g_w   = f32(p + "gate.weights");
        REQUIRE(static_cast<int64_t>(x.size()) == T * D);
        for (const CpuArch arch : system_info().usable_archs) {
            const kernels::KernelTable & kt = kernels::kernel_table(arch);
            INFO("layer " << layer << " arch " << kt.name);
            const Run r1 = run_moe(kt, 1, layer, x.data(), tokens.data(), T);

            // Routing: ids in the reference's order (hash: table order; top-k: descending).
            CHECK(r1.indices == g_idx);
            const double w_rel = max_rel(r1.weights, g_w);
            CHECK(w_rel <= 1e-5);
            double b_rel = 0;
            if (!hash) {
                // Relative to the larger of the biased and the un-biased score (golden minus
                // bias): a biased score near 0 carries the rounding error of the score.
                const std::vector<float> g_b = f32(p + "gate_biased.scores");
                const float * bias = g.weights.blocks[static_cast<size_t>(layer)].ffn.gate_bias;
                std::vector<float> g_s(g_b.size());
                for (size_t i = 0; i < g_b.size(); ++i)
                    g_s[i] = g_b[i] - bias[i % static_cast<size_t>(g.cfg.n_routed_experts)];
                b_rel = max_rel(r1.biased, g_b, &g_s);
                CHECK(b_rel <= 1e-5);
            }
            // Output: the golden README's sublayer tolerance.
            const Err e = compare(r1.out, want);
            CHECK(e.rel_rms <= 5e-3);
            CHECK(e.max_abs <= 0.1);
            size_t diff = 0;
            for (size_t i = 0; i < want.size(); ++i) diff += r1.out[i] != want[i];
            std::printf(
                "moe L%d %-10s rel_rms %.3e  max_abs %.3e  elems_differing %zu/%zu  "
                "gate_w_rel %.2e  biased_rel %.2e\n",
                layer, arch_label(arch), e.rel_rms, e.max_abs, diff, want.size(), w_rel, b_rel);

            // Determinism: the thread count changes the work split, never a bit of the result.
            for (const int threads : {2, 3}) {
                INFO("threads " << threads);
                const Run rn = run_moe(kt, threads, layer, x.data(), tokens.data(), T);
                CHECK(same_bits(rn.out, r1.out));
                CHECK(rn.indices == r1.indices);
                CHECK(same_bits(rn.weights, r1.weights));
                if (!hash) CHECK(same_bits(rn.biased, r1.biased));
            }

            // Decode (T = 1, no row gathering) equals the batched row bit for bit.
            for (const int64_t t : {int64_t{0}, int64_t{1}, int64_t{157}, T - 1}) {
                INFO("token " << t);
                const Run rd = run_moe(kt, 2, layer, x.data() + t * D, tokens.data() + t, 1);
                const std::vector<float> row(r1.out.begin() + t * D, r1.out.begin() + (t + 1) * D);
                CHECK(same_bits(rd.out, row));
                CHECK(std::equal(rd.indices.begin(), rd.indices.end(), r1.indices.begin() + t * k));
            }
        }
    }
}

TEST_CASE("moe: exact ties go to the lower expert index; out may alias x", "[moe]") {
    const Golden &           g = golden();
    const int64_t            T = 5, D = g.cfg.dim, E = g.cfg.n_routed_experts;
    const int64_t            k = g.cfg.n_activated_experts;
    const std::vector<float> x = f32("prefill.L2.ffn_in");
    // A zero gate and zero bias: every score is sqrt(softplus(0)), all tied.
    model::BlockWeights   blk = g.weights.blocks[2];
    std::vector<uint16_t> zero_gate(static_cast<size_t>(E * D), 0);
    std::vector<float>    zero_bias(static_cast<size_t>(E), 0.0f);
    blk.ffn.gate.w    = zero_gate.data();
    blk.ffn.gate_bias = zero_bias.data();
    for (const CpuArch arch : system_info().usable_archs) {
        const kernels::KernelTable & kt = kernels::kernel_table(arch);
        INFO("arch " << kt.name);
        const model::Ctx      ctx{&g.cfg, &kt, 2};
        std::vector<float>    out(static_cast<size_t>(T * D));
        std::vector<int32_t>  idx(static_cast<size_t>(T * k));
        std::vector<float>    wts(static_cast<size_t>(T * k));
        const model::MoeTrace trace{idx.data(), wts.data(), nullptr};
        Scratch               scratch = make_scratch(g.cfg, T);
        model::moe_forward(ctx, blk, x.data(), nullptr, T, out.data(), scratch.get(), &trace);
        for (int64_t t = 0; t < T; ++t) {
            for (int64_t j = 0; j < k; ++j) {
                CHECK(idx[static_cast<size_t>(t * k + j)] == j);
                CHECK(wts[static_cast<size_t>(t * k + j)] ==
                      Approx(g.cfg.route_scale / static_cast<double>(k)).epsilon(1e-6));
            }
        }
        // In place (out == x) gives the same bits as a separate output.
        std::vector<float> inplace(x.begin(), x.begin() + T * D);
        model::moe_forward(ctx, blk, inplace.data(), nullptr, T, inplace.data(), scratch.get());
        CHECK(same_bits(inplace, out));
    }
}

TEST_CASE("moe: scratch size grows with T and T = 0 is a no-op", "[moe]") {
    const Golden & g = golden();
    CHECK(model::moe_scratch_bytes(g.cfg, 1) > 0);
    CHECK(model::moe_scratch_bytes(g.cfg, 64) > model::moe_scratch_bytes(g.cfg, 1));
    const model::Ctx ctx{&g.cfg, &kernels::kernel_table(CpuArch::scalar), 2};
    float            out = 123.0f;
    model::moe_forward(ctx, g.weights.blocks[2], nullptr, nullptr, 0, &out, nullptr);
    CHECK(out == 123.0f);
}
