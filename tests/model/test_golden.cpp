// The forward pass against DeepSeek's reference outputs on golden-a (tests/data/golden-a, made
// by the official model.py; tolerances from its README), plus properties the reference cannot
// show: chunked prefill vs one-shot vs token-by-token, determinism, per-sequence reset, the KV
// size per token, that the dispatched SIMD kernels run, and that switching off any reproduced
// numeric of spec §4.4 (kernel-table and model::Numerics seams) is detected by a check.
// (Decode allocating nothing: test_decode_alloc.cpp, its own executable.)
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dsv4/system.hpp"
#include "golden_runner.hpp"
#include "io/safetensors.hpp"
#include "kernels/kernel_table.hpp"
#include "model/config.hpp"
#include "model/forward.hpp"
#include "model/inventory.hpp"
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
    opt.n_threads = 1;  // thread counts: the determinism test
    auto r        = golden::run(kGolden, opt);
    REQUIRE(r.ok());
    REQUIRE(r->checks.size() >= 20);
    for (const golden::Check & c : r->checks) {
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
        for (const golden::Check & c : r->checks) {
            INFO(cpu_arch_name(arch) << " " << c.name << ": " << c.detail);
            CHECK(c.pass);
        }
    }
}

namespace {
// The dispatched kernels, called one token row at a time: every product's fp32 summation order
// is then that of the decode GEMV whatever the call's T (the dispatched prefill GEMM may sum in
// another order — free per spec §4.4 — which makes T = 300 and T = 1 differ in the last bits).
const kernels::KernelTable * g_base = nullptr;
void lin8_per_token(float * y, int64_t ldy, const kernels::Fp8Mat & w, const uint8_t * qa,
                    int64_t T, int64_t n0, int64_t n1) {
    for (int64_t t = 0; t < T; ++t)
        g_base->lin8(y + t * ldy, ldy, w, qa + t * kernels::qact_row_bytes(w.K), 1, n0, n1);
}
void lin4_per_token(float * y, int64_t ldy, const kernels::Fp4Mat & w, const uint8_t * qa,
                    int64_t T, int64_t n0, int64_t n1) {
    for (int64_t t = 0; t < T; ++t)
        g_base->lin4(y + t * ldy, ldy, w, qa + t * kernels::qact_row_bytes(w.K), 1, n0, n1);
}
void gemm_bf16_per_token(float * y, int64_t ldy, const uint16_t * w, int64_t ldw, const float * x,
                         int64_t ldx, int64_t K, int64_t T, int64_t n0, int64_t n1) {
    for (int64_t t = 0; t < T; ++t)
        g_base->gemm_bf16(y + t * ldy, ldy, w, ldw, x + t * ldx, ldx, K, 1, n0, n1);
}
void gemm_f32_per_token(float * y, int64_t ldy, const float * w, int64_t ldw, const float * x,
                        int64_t ldx, int64_t K, int64_t T, int64_t n0, int64_t n1) {
    for (int64_t t = 0; t < T; ++t)
        g_base->gemm_f32(y + t * ldy, ldy, w, ldw, x + t * ldx, ldx, K, 1, n0, n1);
}
kernels::KernelTable per_token_table() {
    g_base                 = &best_table();
    kernels::KernelTable t = *g_base;
    t.lin8                 = &lin8_per_token;
    t.lin4                 = &lin4_per_token;
    t.gemm_bf16            = &gemm_bf16_per_token;
    t.gemm_f32             = &gemm_f32_per_token;
    return t;
}
}  // namespace

TEST_CASE("forward: chunked prefill equals one-shot prefill and token-by-token decoding",
          "[golden][chunked]") {
    const auto &         k = best_table();
    const auto           t = per_token_table();
    const int64_t        P = static_cast<int64_t>(golden_model().prompt.size());
    std::vector<int64_t> one_by_one(static_cast<size_t>(P), 1), seven_then_ones = one_by_one;
    seven_then_ones.erase(seven_then_ones.begin(), seven_then_ones.begin() + 6);
    seven_then_ones[0] = 7;
    // T = 1 calls: the dispatched and the per-token table run the same kernels.
    const auto tbt   = run_chunks(one_by_one, 1, k);
    const auto seven = run_chunks(seven_then_ones, 1, k);

    // Bit for bit when the products do not depend on the call size. Every chunk after the first
    // runs decode semantics (window ring order, one compressor step per token, indexer over the
    // complete blocks). A first chunk of n tokens is the reference's prefill: its window lists
    // are min(n, 128) wide, so for n >= 128 (and n = 1) they equal the decode lists, while a
    // 7-token prefill puts the compressed entries into an earlier 64-entry chunk of the online
    // softmax (the bf16 rounding of P moves) — exactly as the reference's prefill of 7 would.
    CHECK(run_chunks({P}, 1, t) == tbt);
    CHECK(run_chunks({7, 128, P - 135}, 1, t) == seven);

    // With the dispatched kernels (the prefill GEMM may sum in another order than the decode
    // GEMV, free per spec §4.4, and the model amplifies last-bit differences, golden README)
    // the splits agree like two faithful engines: the README's end-to-end rule against the
    // reference's prefill logits, the same argmax, and within 3.0 of each other.
    const auto oneshot = run_chunks({P}, 1, k);
    const auto mixed   = run_chunks({7, 128, P - 135}, 1, k);
    auto       g       = io::SafetensorsFile::open(kGolden + "/golden.safetensors");
    REQUIRE(g.ok());
    const io::TensorInfo * ti = g->find("prefill.logits");
    REQUIRE(ti != nullptr);
    std::vector<float> want(static_cast<size_t>(ti->numel()));
    std::memcpy(want.data(), ti->data, ti->nbytes);
    const auto argmax = [](const std::vector<float> & v) {
        return std::max_element(v.begin(), v.end()) - v.begin();
    };
    for (const auto * v : {&tbt, &seven, &oneshot, &mixed}) {
        CHECK(max_abs_diff(*v, want) <= 3.0);
        CHECK(argmax(*v) == argmax(want));
    }
    INFO("max |d| 7+128+165 vs one-shot " << max_abs_diff(mixed, oneshot) << ", vs token by token "
                                          << max_abs_diff(mixed, tbt));
    CHECK(max_abs_diff(mixed, oneshot) <= 3.0);
    CHECK(max_abs_diff(mixed, tbt) <= 3.0);
}

TEST_CASE("forward: deterministic across runs and thread counts", "[golden][determinism]") {
    // A prefill (GEMM products) and 20 decode steps (GEMV products, one compression of every
    // ratio-4 compressor per 4 steps), repeated at 2 threads and run at 1.
    const auto &         k = best_table();
    const int64_t        P = static_cast<int64_t>(golden_model().prompt.size());
    std::vector<int64_t> chunks(21, 1);
    chunks[0]    = P - 20;
    const auto a = run_chunks(chunks, 2, k);
    const auto b = run_chunks(chunks, 2, k);
    const auto c = run_chunks(chunks, 1, k);
    CHECK(a == b);
    CHECK(a == c);  // every output element is computed by one thread in a fixed order
}

namespace {
// Logits of every step of: prefill `prefill` tokens of `toks` at position 0, then decode the
// rest one token at a time.
std::vector<float> run_sequence(const model::Engine & eng, model::KvState & kv,
                                model::Workspace & ws, const std::vector<int32_t> & toks,
                                int64_t prefill) {
    const int64_t      V = eng.config().vocab_size;
    std::vector<float> out, logits(static_cast<size_t>(V));
    REQUIRE(eng.forward(kv, ws, toks.data(), prefill, 0, logits.data()).ok());
    out.insert(out.end(), logits.begin(), logits.end());
    for (int64_t p = prefill; p < static_cast<int64_t>(toks.size()); ++p) {
        REQUIRE(eng.forward(kv, ws, &toks[static_cast<size_t>(p)], 1, p, logits.data()).ok());
        out.insert(out.end(), logits.begin(), logits.end());
    }
    return out;
}
}  // namespace

TEST_CASE("forward: KvState::reset starts a new sequence, compressor state included",
          "[golden][reset]") {
    // Sequence A leaves partial blocks in every compressor (150 = 37·4 + 2 = 128 + 22) and a
    // previous block in the ratio-4 overlap state. Sequence B then prefills 3 tokens (fewer
    // than one ratio-4 block: spec §8.3, the reference would pool B's first block with A's
    // stale overlap state) and decodes to position 11, past three ratio-4 blocks.
    const Model &              m = golden_model();
    model::Engine              eng(m.cfg, m.w, best_table(), 1);
    const int64_t              n_ctx = 160;
    auto                       kv    = model::KvState::create(m.cfg, n_ctx);
    auto                       fresh = model::KvState::create(m.cfg, n_ctx);
    auto                       ws    = model::Workspace::create(m.cfg, 150, n_ctx);
    const std::vector<int32_t> a(m.prompt.begin(), m.prompt.begin() + 150);
    const std::vector<int32_t> b(m.prompt.begin() + 150, m.prompt.begin() + 162);
    const auto                 want = run_sequence(eng, *fresh, *ws, b, 3);

    (void)run_sequence(eng, *kv, *ws, a, 150);
    const auto stale = run_sequence(eng, *kv, *ws, b, 3);  // no reset: B sees A's state
    CHECK(stale != want);                                  // so this test can tell a missing reset

    (void)run_sequence(eng, *kv, *ws, a, 150);
    kv->reset();
    CHECK(run_sequence(eng, *kv, *ws, b, 3) == want);
}

TEST_CASE("KvState: bytes per token as documented", "[golden][kv]") {
    // docs/architecture.md: KvState = a per-sequence fixed part (window rings, compressor
    // states) + kv_cache_bytes_per_token(cfg) per token of n_ctx (compressed rows and indexer
    // keys, bf16): V4-Flash 6,880 B, V4-Pro 9,848 B, golden-a 392 B (+ the MTP block's window).
    for (const std::string & path :
         {kGolden + "/config.json", std::string(DSV4_TEST_DATA_DIR) + "/configs/flash.json",
          std::string(DSV4_TEST_DATA_DIR) + "/configs/pro.json"}) {
        INFO(path);
        auto cfg = model::load_config(path);
        REQUIRE(cfg.ok());
        // Multiples of 128·64 tokens: every per-token array is then a multiple of 64 bytes, so
        // alignment adds nothing and the growth is exact.
        const int64_t  n0 = 8192, n1 = 4 * 8192;
        const uint64_t b0 = model::KvState::bytes(*cfg, n0), b1 = model::KvState::bytes(*cfg, n1);
        CHECK(static_cast<double>(b1 - b0) ==
              model::kv_cache_bytes_per_token(*cfg) * static_cast<double>(n1 - n0));
        // And the layout is the inventory's KV formula (model/inventory.hpp), MTP included.
        CHECK(b1 == model::kv_cache_size(*cfg, n1, true).total());
    }
    auto g = model::load_config(kGolden + "/config.json");
    REQUIRE(g.ok());
    CHECK(model::kv_cache_bytes_per_token(*g) == 392.0);
}

namespace {
// Counting wrappers around the dispatched table's hot entries.
struct Calls {
    int64_t lin8 = 0, lin4 = 0, gemm_bf16 = 0, act_quant = 0, rmsnorm = 0;
} g_calls;
const kernels::KernelTable * g_counted = nullptr;
void count_lin8(float * y, int64_t ldy, const kernels::Fp8Mat & w, const uint8_t * qa, int64_t T,
                int64_t n0, int64_t n1) {
    ++g_calls.lin8;  // the engines below run one thread: no data race on the counters
    g_counted->lin8(y, ldy, w, qa, T, n0, n1);
}
void count_lin4(float * y, int64_t ldy, const kernels::Fp4Mat & w, const uint8_t * qa, int64_t T,
                int64_t n0, int64_t n1) {
    ++g_calls.lin4;
    g_counted->lin4(y, ldy, w, qa, T, n0, n1);
}
void count_gemm_bf16(float * y, int64_t ldy, const uint16_t * w, int64_t ldw, const float * x,
                     int64_t ldx, int64_t K, int64_t T, int64_t n0, int64_t n1) {
    ++g_calls.gemm_bf16;
    g_counted->gemm_bf16(y, ldy, w, ldw, x, ldx, K, T, n0, n1);
}
void count_act_quant(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0,
                     int64_t t1) {
    ++g_calls.act_quant;
    g_counted->act_quant(qa, x, ldx, K, t0, t1);
}
void count_rmsnorm(float * out, const float * x, const float * w, int64_t n, float eps) {
    ++g_calls.rmsnorm;
    g_counted->rmsnorm_bf16(out, x, w, n, eps);
}
}  // namespace

TEST_CASE("forward: runs the dispatched SIMD kernel table, not the scalar references",
          "[golden][dispatch]") {
    auto arch = resolve_cpu_arch(CpuArch::automatic);
    REQUIRE(arch.ok());
    const kernels::KernelTable & dispatched = kernels::kernel_table(*arch);
    const SystemInfo             info       = system_info();

    // The golden runner (dsv4-golden, the tests above) reports the table it ran: the resolved one.
    golden::Options opt;
    opt.run_end_to_end = false;
    auto r             = golden::run(kGolden, opt);
    REQUIRE(r.ok());
    CHECK(r->arch == *arch);
    CHECK(r->table == &dispatched);
    CHECK(r->table->arch == *arch);

    // On a CPU with a SIMD table (and no DSV4_FORCE_ARCH) that table is not the scalar one, and
    // its hot entries are not the scalar functions.
    if (info.force_arch_env.empty() && info.best_arch != CpuArch::scalar) {
        CHECK(*arch == info.best_arch);
        CHECK(&dispatched != &kernels::kTableScalar);
        CHECK(dispatched.lin8 != kernels::kTableScalar.lin8);
        CHECK(dispatched.lin4 != kernels::kTableScalar.lin4);
        CHECK(dispatched.gemm_bf16 != kernels::kTableScalar.gemm_bf16);
        CHECK(dispatched.act_quant != kernels::kTableScalar.act_quant);
    }
    if (kernels::arch_supported(CpuArch::avx2) && info.force_arch_env.empty())
        CHECK(*arch != CpuArch::scalar);

    // The forward pass reaches the products through the Engine's table (no direct call of a
    // scalar function): a table of counting wrappers around the dispatched entries sees every
    // hot entry used, and the logits equal those of the dispatched table bit for bit.
    const Model & m               = golden_model();
    g_counted                     = &dispatched;
    g_calls                       = {};
    kernels::KernelTable counting = dispatched;
    counting.lin8                 = &count_lin8;
    counting.lin4                 = &count_lin4;
    counting.gemm_bf16            = &count_gemm_bf16;
    counting.act_quant            = &count_act_quant;
    counting.rmsnorm_bf16         = &count_rmsnorm;
    const int64_t      P          = 40;
    std::vector<float> got(static_cast<size_t>(m.cfg.vocab_size)), want(got.size());
    for (const kernels::KernelTable * t :
         {&dispatched, static_cast<const kernels::KernelTable *>(&counting)}) {
        model::Engine eng(m.cfg, m.w, *t, 1);
        CHECK(&eng.kernels() == t);
        auto                 kv  = model::KvState::create(m.cfg, P + 1);
        auto                 ws  = model::Workspace::create(m.cfg, P, P + 1);
        std::vector<float> & out = t == &dispatched ? want : got;
        REQUIRE(eng.forward(*kv, *ws, m.prompt.data(), P, 0, out.data()).ok());
        REQUIRE(eng.forward(*kv, *ws, m.prompt.data() + P, 1, P, out.data()).ok());
    }
    CHECK(got == want);
    CHECK(g_calls.lin8 > 0);
    CHECK(g_calls.lin4 > 0);
    CHECK(g_calls.gemm_bf16 > 0);
    CHECK(g_calls.act_quant > 0);
    CHECK(g_calls.rmsnorm > 0);
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

// The sublayer checks with one numeric switched off (DSV4_SEAM_LOG=1 prints them).
std::vector<golden::Check> sublayer_checks(const kernels::KernelTable & t,
                                           const model::Numerics &      num) {
    golden::Options opt;
    opt.run_end_to_end = false;
    opt.table_override = &t;
    opt.numerics       = num;
    auto r             = golden::run(kGolden, opt);
    REQUIRE(r.ok());
    if (std::getenv("DSV4_SEAM_LOG"))
        for (const auto & c : r->checks)
            std::printf("  %s %s: %s\n", c.pass ? "pass" : "FAIL", c.name.c_str(),
                        c.detail.c_str());
    return r->checks;
}
std::vector<std::string> failed_names(const std::vector<golden::Check> & checks) {
    std::vector<std::string> failed;
    for (const auto & c : checks)
        if (!c.pass) failed.push_back(c.name);
    return failed;
}
// Names of the failed checks.
std::vector<std::string> failing_with(const kernels::KernelTable & t,
                                      const model::Numerics &      num = {}) {
    return failed_names(sublayer_checks(t, num));
}
std::vector<std::string> failing_with(const model::Numerics & num) {
    return failing_with(best_table(), num);
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

// Spec §4.4 "must reproduce" items that are not kernel-table entries, switched off through the
// test-only Numerics seam (model/context.hpp).
TEST_CASE("forward: reproduced formula details are detected when switched off", "[golden][seams]") {
    using N = model::Numerics;
    N num;
    SECTION("q-norm in fp32 instead of bf16 ops") {
        num.q_norm_bf16 = false;
        const auto f    = failing_with(num);
        CHECK(any_contains(f, "attention"));
    }
    SECTION("attention output not rounded to bf16") {
        num.round_attn_out = false;
        const auto f       = failing_with(num);
        CHECK(any_contains(f, "attention"));
    }
    SECTION("wo_a output not rounded to bf16") {
        num.round_wo_a = false;
        const auto f   = failing_with(num);
        CHECK(any_contains(f, "attention"));
    }
    SECTION("indexer scores not rounded to bf16") {
        num.round_index_scores = false;
        const auto f           = failing_with(num);
        CHECK(any_contains(f, "indexer top-k"));
    }
    SECTION("YaRN on every layer") {
        num.yarn     = N::Yarn::all_layers;
        const auto f = failing_with(num);
        CHECK(any_contains(f, "L0 attention"));
    }
    SECTION("YaRN on no layer") {
        num.yarn     = N::Yarn::none;
        const auto f = failing_with(num);
        CHECK(any_contains(f, "compressed KV"));
    }
    SECTION("attention sink dropped") {
        num.sink     = N::Sink::dropped;
        const auto f = failing_with(num);
        CHECK(any_contains(f, "attention"));
    }
    SECTION("attention sink in the running max: measurable, but within the README tolerance") {
        // Only the bf16 rounding of P moves (it is taken relative to a different maximum), so
        // this is rounding-level: measured rel RMS 2.1-2.5e-3 on the three recorded layers,
        // under the README's 5e-3, so not detected by the checks. Asserted here is that the
        // checks' metric does see it on every layer, against the faithful engine on the same
        // kernel table. The faithful error is fp32 summation-order noise: 1.3-3.5e-4 with the
        // old scalar attention loops, 7.6-9.8e-4 with the SIMD attention kernels (the reference
        // itself moves by 6.9-9.3e-4 when its score dots are summed in 16 lanes; see
        // docs/testing.md, "Golden-a agreement"). The smallest per-layer ratio seam/faithful is
        // now 2.2, so the margin asserted is 2x (was 4x over the max of the layers). The README
        // tolerance is not loosened or tightened for it.
        const auto f0 = sublayer_checks(best_table(), {});
        num.sink      = N::Sink::in_max;
        const auto r  = sublayer_checks(best_table(), num);
        CHECK(failed_names(r).empty());
        int layers = 0;
        for (const auto & c : r) {
            if (c.name.find("attention") == std::string::npos) continue;
            for (const auto & c0 : f0)
                if (c0.name == c.name) {
                    INFO(c.name << ": seam " << c.value << ", faithful " << c0.value);
                    CHECK(c.value > 2 * c0.value);
                    ++layers;
                }
        }
        CHECK(layers >= 3);
    }
    SECTION("compressed-block RoPE at the block's last position") {
        num.compressed_rope = N::CompressedRope::block_end;
        const auto f        = failing_with(num);
        CHECK(any_contains(f, "compressed KV"));
    }
    SECTION("SwiGLU clamp sides swapped") {
        num.swiglu_clamp = N::Clamp::sides_swapped;
        const auto f     = failing_with(num);
        CHECK(any_contains(f, "MoE"));
    }
    SECTION("SwiGLU without clamp") {
        num.swiglu_clamp = N::Clamp::none;
        const auto f     = failing_with(num);
        CHECK(any_contains(f, "MoE"));
    }
    SECTION("shared expert without clamp (initial revision)") {
        num.swiglu_clamp = N::Clamp::shared_unclamped;
        const auto f     = failing_with(num);
        CHECK(any_contains(f, "MoE"));
    }
    SECTION("gate weights from the biased scores") {
        num.gate_weights_unbiased = false;
        const auto f              = failing_with(num);
        CHECK(any_contains(f, "gate indices and weights"));
    }
    SECTION("routing weight applied after w2") {
        num.route_weight_before_w2 = false;
        const auto f               = failing_with(num);
        CHECK(any_contains(f, "MoE"));
    }
}
