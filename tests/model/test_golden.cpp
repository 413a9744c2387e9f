// The forward pass against DeepSeek's reference outputs on golden-a (tests/data/golden-a, made
// by the official model.py; tolerances from its README), plus properties the reference cannot
// show: chunked prefill, determinism, and that switching off a reproduced numeric is detected.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "golden_runner.hpp"
#include "io/safetensors.hpp"
#include "kernels/kernel_table.hpp"
#include "model/config.hpp"
#include "model/forward.hpp"
#include "model/weights.hpp"

using namespace dsv4;

namespace {

const std::string kGolden = std::string(DSV4_TEST_DATA_DIR) + "/golden-a";

struct Model {
    model::ModelConfig   cfg;
    io::TensorStore      store;
    model::ModelWeights  w;
    std::vector<int32_t> prompt;
};

const Model & golden_model() {
    static Model m = [] {
        Model r;
        r.cfg   = std::move(model::load_config(kGolden + "/config.json")).value();
        r.store = std::move(io::TensorStore::open_dir(kGolden)).value();
        r.w     = std::move(model::bind_weights(r.cfg, r.store, detail::Logger())).value();
        auto                   g = io::SafetensorsFile::open(kGolden + "/golden.safetensors");
        const io::TensorInfo * t = g->find("prompt_ids");
        r.prompt.resize(static_cast<size_t>(t->numel()));
        std::memcpy(r.prompt.data(), t->data, t->nbytes);
        return r;
    }();
    return m;
}

// Logits of the last position after feeding the prompt in the given chunk sizes.
std::vector<float> run_chunks(const std::vector<int64_t> & chunks, int threads,
                              const kernels::KernelTable & k) {
    const Model &      m = golden_model();
    model::Engine      eng(m.cfg, m.w, k, threads);
    const int64_t      P  = static_cast<int64_t>(m.prompt.size());
    auto               kv = model::KvState::create(m.cfg, P + 4);
    auto               ws = model::Workspace::create(m.cfg, P, P + 4);
    std::vector<float> logits(static_cast<size_t>(m.cfg.vocab_size));
    int64_t            pos = 0;
    for (int64_t n : chunks) {
        REQUIRE(eng.forward(*kv, *ws, m.prompt.data() + pos, n, pos, logits.data()).ok());
        pos += n;
    }
    REQUIRE(pos == P);
    return logits;
}

const kernels::KernelTable & best_table() {
    return kernels::kernel_table(*resolve_cpu_arch(CpuArch::automatic));
}

double max_abs_diff(const std::vector<float> & a, const std::vector<float> & b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
    return m;
}

}  // namespace

TEST_CASE("golden-a: every check of the manifest passes", "[golden]") {
    golden::Options opt;
    opt.n_threads = 2;
    auto r        = golden::run(kGolden, opt);
    REQUIRE(r.ok());
    REQUIRE(r->size() >= 20);
    for (const golden::Check & c : *r) {
        INFO(c.name << ": " << c.detail);
        CHECK(c.pass);
    }
}

TEST_CASE("golden-a: sublayer checks hold on every kernel arch", "[golden][per_arch]") {
    for (CpuArch arch : system_info().usable_archs) {
        golden::Options opt;
        opt.arch           = arch;
        opt.run_end_to_end = false;
        auto r             = golden::run(kGolden, opt);
        REQUIRE(r.ok());
        for (const golden::Check & c : *r) {
            INFO(cpu_arch_name(arch) << " " << c.name << ": " << c.detail);
            CHECK(c.pass);
        }
    }
}

TEST_CASE("forward: chunked prefill equals token-by-token decoding", "[golden][chunked]") {
    const auto &  k = best_table();
    const int64_t P = static_cast<int64_t>(golden_model().prompt.size());
    // A first chunk of one token is the reference's prefill of one token, which is also the
    // first step of token-by-token decoding; every later chunk runs decode semantics. So this
    // must be bit-identical to feeding one token at a time.
    std::vector<int64_t> one_by_one(static_cast<size_t>(P), 1);
    const auto           tbt     = run_chunks(one_by_one, 2, k);
    const auto           chunked = run_chunks({1, 128, P - 129}, 2, k);
    CHECK(chunked == tbt);
    // 7 + 128 + 165 against one-shot prefill: the first chunk is a prefill of 7 tokens (its index
    // lists are 7 wide, not 300), so results agree to the end-to-end tolerance, not bitwise.
    const auto oneshot = run_chunks({P}, 2, k);
    const auto mixed   = run_chunks({7, 128, P - 135}, 2, k);
    CHECK(max_abs_diff(mixed, oneshot) <= 3.0);
    CHECK(std::max_element(mixed.begin(), mixed.end()) - mixed.begin() ==
          std::max_element(oneshot.begin(), oneshot.end()) - oneshot.begin());
    CHECK(max_abs_diff(mixed, tbt) <= 3.0);
}

TEST_CASE("forward: deterministic across runs and thread counts", "[golden][determinism]") {
    const auto &  k = best_table();
    const int64_t P = static_cast<int64_t>(golden_model().prompt.size());
    const auto    a = run_chunks({P}, 2, k);
    const auto    b = run_chunks({P}, 2, k);
    const auto    c = run_chunks({P}, 1, k);
    CHECK(a == b);
    CHECK(a == c);  // every output element is computed by one thread in a fixed order
}

namespace {
void no_quant(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0, int64_t t1) {
    best_table().act_plain(qa, x, ldx, K, t0, t1);
}
void no_fp8sim(float *, int64_t, int64_t) {}
void no_fp4sim(float *, int64_t) {}
bool no_hadamard(float *, int64_t) {
    return true;
}

// Runs the sublayer checks with one numeric switched off; returns the names of failed checks.
std::vector<std::string> failing_with(const kernels::KernelTable & t) {
    golden::Options opt;
    opt.run_end_to_end = false;
    opt.table_override = &t;
    auto r             = golden::run(kGolden, opt);
    REQUIRE(r.ok());
    std::vector<std::string> failed;
    for (const auto & c : *r)
        if (!c.pass) failed.push_back(c.name);
    return failed;
}
bool any_contains(const std::vector<std::string> & v, const std::string & part) {
    for (const auto & s : v)
        if (s.find(part) != std::string::npos) return true;
    return false;
}
}  // namespace

// Spec §4.4 "must reproduce": switching one off through the kernel-table seam must break a
// sublayer check (the checks can tell a faithful engine from a near miss).
TEST_CASE("forward: each reproduced numeric is detected when switched off", "[golden][seams]") {
    kernels::KernelTable t = best_table();
    SECTION("FP8 activation quantisation before FP8/FP4 GEMMs") {
        t.act_quant  = &no_quant;
        const auto f = failing_with(t);
        CHECK(any_contains(f, "attention"));
        CHECK(any_contains(f, "MoE"));
    }
    SECTION("FP8 simulation of the KV nope dims") {
        t.fp8sim     = &no_fp8sim;
        const auto f = failing_with(t);
        CHECK(any_contains(f, "compressed KV"));
    }
    SECTION("FP4 simulation in the indexer") {
        t.fp4sim     = &no_fp4sim;
        const auto f = failing_with(t);
        CHECK(any_contains(f, "indexer"));
    }
    SECTION("Hadamard rotation in the indexer") {
        t.hadamard   = &no_hadamard;
        const auto f = failing_with(t);
        CHECK(any_contains(f, "indexer"));
    }
}
