// Rollback of a sequence's state (issue 7): the undo journal of a forward call, whole-state
// checkpoints (also captured inside a call), Session::truncate, prefix reuse after a prompt that
// leaves the history (thinking-mode follow-up turns), and cancels that land inside a forward call.
//
// What is compared, and why it is exact or not. A restored copy gives back, byte for byte, what
// the forward pass reads at later positions (window rings, compressor state, complete compressed
// rows): the engine-level cases compare those bytes. A session continued from a restored
// rollback point is then bit-identical to a fresh session that made the same forward calls up
// to that point and the same ones after. It is not bit-identical to a session whose calls were
// cut elsewhere: the dispatched prefill GEMM sums in another order than the decode GEMV (free,
// spec §4.4), a first call at position 0 of n < 128 tokens has narrower window lists, and an
// expert's product depends on how many tokens it got in the call. Those cases (a point captured
// inside a call, a re-run up to an arbitrary n, a thinking-mode follow-up turn) are compared
// like the prefix-reuse test does: same greedy tokens, logits within 0.6 (the noise class of the
// reference's own prefill vs token-by-token runs, golden README: 0.26). With products summed
// per token (the test table below) even a point captured inside a call is exact.
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>

#include "api/cancel_probe.hpp"
#include "api/model_impl.hpp"
#include "api/session_helpers.hpp"
#include "dsv4/dsv4.hpp"
#include "model/forward.hpp"
#include "model/make_model.hpp"
#include "test_util.hpp"

using namespace dsv4;

namespace {

const std::string kGolden = std::string(DSV4_TEST_DATA_DIR) + "/golden-a";

// prompt_ids (300) then decode_ids (120): 420 tokens of the golden model's own data.
const std::vector<int32_t> & golden_ids() {
    static const std::vector<int32_t> ids = [] {
        simdjson::dom::parser  p;
        simdjson::dom::element m = p.load(kGolden + "/manifest.json");
        std::vector<int32_t>   v;
        for (auto x : m["prompt_ids"].get_array()) v.push_back(static_cast<int32_t>(int64_t(x)));
        for (auto x : m["decode_ids"].get_array()) v.push_back(static_cast<int32_t>(int64_t(x)));
        return v;
    }();
    return ids;
}

std::vector<int32_t> ids(size_t from, size_t to) {
    const auto & v = golden_ids();
    REQUIRE(to <= v.size());
    return std::vector<int32_t>(v.begin() + static_cast<std::ptrdiff_t>(from),
                                v.begin() + static_cast<std::ptrdiff_t>(to));
}

std::vector<int32_t> cat(std::vector<int32_t> a, const std::vector<int32_t> & b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// -1 when a and b are equal (bit for bit), else the first index where they differ (a compact
// failure message instead of two printed megabyte arrays).
template <class T>
int64_t diff_at(const std::vector<T> & a, const std::vector<T> & b) {
    const size_t n = std::min(a.size(), b.size());
    for (size_t i = 0; i < n; ++i)
        if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return static_cast<int64_t>(i);
    return a.size() == b.size() ? -1 : static_cast<int64_t>(n);
}

// ---- engine level ------------------------------------------------------------------------

struct Golden {
    model::ModelConfig  cfg;
    io::TensorStore     store;
    model::ModelWeights w;
};

const Golden & golden() {
    static const Golden g = [] {
        Golden r;
        r.cfg   = std::move(model::load_config(kGolden + "/config.json")).value();
        r.store = std::move(io::TensorStore::open_dir(kGolden)).value();
        r.w     = std::move(model::bind_weights(r.cfg, r.store, detail::Logger())).value();
        return r;
    }();
    return g;
}

const kernels::KernelTable & best_table() {
    return kernels::kernel_table(*resolve_cpu_arch(CpuArch::automatic));
}

// The dispatched kernels called one token row at a time: every product then sums in the
// decode GEMV's order whatever the call's size, so differently cut calls agree bit for bit.
const kernels::KernelTable * g_base = nullptr;
void lin8_1(float * y, int64_t ldy, const kernels::Fp8Mat & w, const uint8_t * qa, int64_t T,
            int64_t n0, int64_t n1) {
    for (int64_t t = 0; t < T; ++t)
        g_base->lin8(y + t * ldy, ldy, w, qa + t * kernels::qact_row_bytes(w.K), 1, n0, n1);
}
void lin4_1(float * y, int64_t ldy, const kernels::Fp4Mat & w, const uint8_t * qa, int64_t T,
            int64_t n0, int64_t n1) {
    for (int64_t t = 0; t < T; ++t)
        g_base->lin4(y + t * ldy, ldy, w, qa + t * kernels::qact_row_bytes(w.K), 1, n0, n1);
}
void gemm_bf16_1(float * y, int64_t ldy, const uint16_t * w, int64_t ldw, const float * x,
                 int64_t ldx, int64_t K, int64_t T, int64_t n0, int64_t n1) {
    for (int64_t t = 0; t < T; ++t)
        g_base->gemm_bf16(y + t * ldy, ldy, w, ldw, x + t * ldx, ldx, K, 1, n0, n1);
}
void gemm_f32_1(float * y, int64_t ldy, const float * w, int64_t ldw, const float * x, int64_t ldx,
                int64_t K, int64_t T, int64_t n0, int64_t n1) {
    for (int64_t t = 0; t < T; ++t)
        g_base->gemm_f32(y + t * ldy, ldy, w, ldw, x + t * ldx, ldx, K, 1, n0, n1);
}
const kernels::KernelTable & per_token_table() {
    static const kernels::KernelTable t = [] {
        g_base                 = &best_table();
        kernels::KernelTable k = *g_base;
        k.lin8                 = &lin8_1;
        k.lin4                 = &lin4_1;
        k.gemm_bf16            = &gemm_bf16_1;
        k.gemm_f32             = &gemm_f32_1;
        return k;
    }();
    return t;
}

// Every byte the forward pass can read at positions >= n_past: the window rows written so far
// (the MTP block's ring is never written by Engine::forward: uninitialised memory), all
// compressor state rows (used or not), and the complete compressed rows and indexer keys.
std::vector<uint8_t> readable_state(const model::KvState & kv, const model::ModelConfig & cfg,
                                    int64_t n_past) {
    std::vector<uint8_t> out;
    const auto           put = [&](const void * p, size_t n) {
        const auto * b = static_cast<const uint8_t *>(p);
        out.insert(out.end(), b, b + n);
    };
    const size_t written = size_t(std::min<int64_t>(n_past, cfg.window_size));
    for (int l = 0; l < kv.n_layers(); ++l) {
        const model::LayerKv & L = kv.layer(l);
        if (l < cfg.n_layers)
            for (size_t i = 0; i < written; ++i)  // ring slots of positions n_past-written..
                put(L.window + ((size_t(n_past) - written + i) % size_t(cfg.window_size)) *
                                   size_t(cfg.head_dim),
                    size_t(cfg.head_dim) * 2);
        if (L.ratio == 0) continue;
        const size_t rows = size_t(n_past / L.ratio);
        put(L.comp, rows * size_t(cfg.head_dim) * 2);
        if (L.index_keys) put(L.index_keys, rows * size_t(cfg.index_head_dim) * 2);
        for (const model::CompressorState * c : {&L.main, &L.indexer})
            if (c->kv) {
                put(c->kv, size_t(c->rows) * size_t(c->cols) * 4);
                put(c->score, size_t(c->rows) * size_t(c->cols) * 4);
            }
    }
    return out;
}

struct EngineRun {
    model::Engine      eng;
    model::KvState     kv;
    model::Workspace   ws;
    std::vector<float> logits;
    int64_t            n = 0;
    EngineRun(const kernels::KernelTable & k, int64_t n_ctx)
        : eng(golden().cfg, golden().w, k, 2),
          kv(std::move(model::KvState::create(golden().cfg, n_ctx)).value()),
          ws(std::move(model::Workspace::create(golden().cfg, 512, n_ctx)).value()),
          logits(static_cast<size_t>(golden().cfg.vocab_size)) {}
    // Runs golden_ids()[n, n + T) as one call.
    void call(int64_t T) {
        REQUIRE(eng.forward(kv, ws, golden_ids().data() + n, T, n, logits.data()).ok());
        n += T;
    }
};

}  // namespace

TEST_CASE("api rollback: the undo journal gives back the state before a call, byte for byte",
          "[api][rollback]") {
    const auto & cfg = golden().cfg;
    EngineRun    r(best_table(), 512);
    auto         undo = model::KvCheckpoint::create(cfg, 256);
    REQUIRE(undo.ok());
    r.call(100);
    // Calls of 20, then single tokens across a 4x block end (123), the 128x block end and the
    // window ring's wrap (127 -> 128), then 153 tokens at once (every slot of every ring), the
    // next 128x block end (255) and more single tokens.
    std::vector<int64_t> calls = {20};
    calls.insert(calls.end(), 27, 1);
    calls.push_back(153);
    calls.insert(calls.end(), 10, 1);
    for (int64_t T : calls) {
        INFO("call of " << T << " at " << r.n);
        const auto before = readable_state(r.kv, cfg, r.n);
        undo->save_call(r.kv, r.n, T);
        r.call(T);
        const std::vector<float> first = r.logits;
        r.n -= T;
        undo->restore(r.kv);
        CHECK(diff_at(readable_state(r.kv, cfg, r.n), before) == -1);
        r.call(T);  // again, on the restored state: the same logits
        CHECK(diff_at(r.logits, first) == -1);
    }
}

TEST_CASE("api rollback: a checkpoint taken inside a call equals the state of a call cut there",
          "[api][rollback]") {
    // With per-token products, [0,7) + [7,q+5) and [0,7) + [7,q) agree on positions < q: the
    // checkpoint armed at q inside the longer call must hold exactly the cut run's state, even
    // after the run went on for 150 more tokens (window wrap, the next 128x block end).
    const auto & cfg = golden().cfg;
    const auto & k   = per_token_table();
    for (int64_t q : {128, 151, 255}) {  // ring slot 0 / a 4x block end at q / a 128x block end
        INFO("checkpoint at " << q);
        EngineRun a(k, 512);
        auto      mark = model::KvCheckpoint::create(cfg, model::KvCheckpoint::kWhole);
        REQUIRE(mark.ok());
        a.call(7);
        mark->arm(a.kv, q);
        a.call(q - 2);
        mark->end_capture(a.kv, true);
        REQUIRE(mark->valid());
        CHECK(mark->pos() == q);
        EngineRun more(best_table(), 512);  // the rest of the run: any kernels will do
        REQUIRE(more.eng.forward(a.kv, a.ws, golden_ids().data() + a.n, 150, a.n, a.logits.data())
                    .ok());
        mark->restore(a.kv);
        a.n = q;

        EngineRun b(k, 512);
        b.call(7);
        b.call(q - 7);
        CHECK(diff_at(readable_state(a.kv, cfg, q), readable_state(b.kv, cfg, q)) == -1);
        a.call(20);
        b.call(20);
        CHECK(diff_at(a.logits, b.logits) == -1);
    }
}

TEST_CASE("api rollback: an armed checkpoint is dropped when its call does not complete",
          "[api][rollback]") {
    const auto & cfg = golden().cfg;
    EngineRun    r(best_table(), 512);
    auto         mark = model::KvCheckpoint::create(cfg, model::KvCheckpoint::kWhole);
    REQUIRE(mark.ok());
    r.call(40);
    mark->save_all(r.kv, 40);
    REQUIRE(mark->valid());
    mark->arm(r.kv, 50);
    CHECK_FALSE(mark->valid());
    mark->end_capture(r.kv, false);
    CHECK_FALSE(mark->valid());
    for (int l = 0; l < r.kv.n_layers(); ++l) CHECK(r.kv.layer(l).capture == nullptr);
}

// ---- sessions on golden-a ----------------------------------------------------------------

namespace {

using test::golden_model;

Session new_session(int32_t max_batch = 256) {
    SessionOptions so;
    so.n_ctx     = 512;
    so.max_batch = max_batch;
    auto s       = golden_model().new_session(so);
    REQUIRE(s.ok());
    return std::move(s).value();
}

using test::greedy;
using test::run_tokens;

std::vector<float> eval(Session & s, const std::vector<int32_t> & t) {
    auto r = s.eval(t);
    REQUIRE(r.ok());
    return std::move(r).value();
}

float max_abs_diff(const std::vector<float> & a, const std::vector<float> & b) {
    REQUIRE(a.size() == b.size());
    float m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

size_t argmax(const std::vector<float> & v) {
    return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::string file_bytes(const std::string & path) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    REQUIRE(f.good());
    std::string s(static_cast<size_t>(f.tellg()), '\0');
    f.seekg(0);
    f.read(s.data(), static_cast<std::streamsize>(s.size()));
    return s;
}

// Makes a CancelToken fire inside a chosen forward call (counted from arm()) after a chosen
// decoder block, through the cancel probe's test seam.
struct InsideCancel {
    static inline CancelToken *    token  = nullptr;
    static inline std::atomic<int> calls  = 0;
    static inline int              target = -1;  // 1-based call number; -1: never
    static inline int              layer  = 2;
    static void                    hook(int l) {
                           if (l == 0) ++calls;
        if (calls == target && l == layer) token->request();
    }
    explicit InsideCancel(CancelToken * t) {
        token  = t;
        calls  = 0;
        target = -1;
        detail::g_cancel_poll_test_hook.store(&hook);
    }
    void at_call(int n) { target = calls + n; }  // n-th forward call from now
    ~InsideCancel() { detail::g_cancel_poll_test_hook.store(nullptr); }
};

}  // namespace

TEST_CASE("api rollback: truncate to a rollback point continues bit-identically",
          "[api][rollback]") {
    // A: 200 tokens, then 60 more and 40 generated: the window ring wraps over the rows of
    // positions < 200 and the 128x compressors complete block 1 (position 255). truncate(200)
    // restores the checkpoint taken at the start of the second prefill. B made the same calls
    // up to 200 and never went further.
    const auto x0 = ids(0, 200), x1 = ids(200, 260), more = ids(300, 320);
    Session    a = new_session();
    run_tokens(a, x0, greedy(0));
    run_tokens(a, cat(x0, x1), greedy(40));
    REQUIRE(a.n_past() == 299);
    REQUIRE(a.truncate(200).ok());
    CHECK(a.n_past() == 200);
    CHECK(a.tokens() == x0);

    Session b = new_session();
    run_tokens(b, x0, greedy(0));
    CHECK(diff_at(eval(a, more), eval(b, more)) == -1);
    GenerateStats sa, sb;
    CHECK(run_tokens(a, cat(x0, more), greedy(12), &sa) ==
          run_tokens(b, cat(x0, more), greedy(12), &sb));
    CHECK(sa.reused_tokens == 220);
    CHECK(diff_at(eval(a, {7}), eval(b, {7})) == -1);
}

TEST_CASE("api rollback: truncate between rollback points re-runs the rest", "[api][rollback]") {
    const auto x0 = ids(0, 200), x1 = ids(200, 260), more = ids(300, 316);
    Session    a = new_session();
    run_tokens(a, x0, greedy(0));
    run_tokens(a, cat(x0, x1), greedy(40));
    // 230 is no rollback point (those are 200, 259 and the last decode step's 298): the
    // checkpoint at 200 is restored and tokens 200..229 run again as one call.
    REQUIRE(a.truncate(230).ok());
    CHECK(a.n_past() == 230);
    CHECK(a.tokens() == ids(0, 230));
    const auto la = eval(a, more);

    // Exact against a session that made the same calls (200, then 30 at once) ...
    Session c = new_session();
    run_tokens(c, x0, greedy(0));
    eval(c, ids(200, 230));
    CHECK(diff_at(eval(c, more), la) == -1);
    // ... and like prefix reuse against a one-shot prefill of the 230 tokens.
    Session b = new_session();
    run_tokens(b, ids(0, 230), greedy(0));
    const auto lb = eval(b, more);
    CHECK(max_abs_diff(la, lb) <= 0.6f);
    CHECK(argmax(la) == argmax(lb));

    SECTION("bad arguments and edge cases") {
        CHECK(a.truncate(-1).code() == Errc::invalid_argument);
        const Status s = a.truncate(a.n_past() + 1);
        CHECK(s.code() == Errc::invalid_argument);
        CHECK(s.message().find("truncate") != std::string::npos);
        const int64_t n = a.n_past();
        CHECK(a.truncate(n).ok());
        CHECK(a.n_past() == n);
        CHECK(a.truncate(0).ok());
        CHECK(a.n_past() == 0);
        CHECK(a.tokens().empty());
    }
}

TEST_CASE("api rollback: a prompt that leaves the history reuses the latest rollback point",
          "[api][rollback]") {
    // The second prompt shares the first 150 tokens with the history and then differs: the
    // checkpoint at the start of the previous prefill (150) is restored, only the new suffix
    // runs, and everything matches a session that never saw the other continuation.
    const auto x0 = ids(0, 150), y = ids(150, 190), z = ids(300, 340);
    Session    a = new_session();
    run_tokens(a, x0, greedy(0));
    run_tokens(a, cat(x0, y), greedy(20));
    GenerateStats st;
    const auto    ta = run_tokens(a, cat(x0, z), greedy(20), &st);
    CHECK(st.reused_tokens == 150);

    Session b = new_session();
    run_tokens(b, x0, greedy(0));
    CHECK(ta == run_tokens(b, cat(x0, z), greedy(20)));
    CHECK(diff_at(eval(a, {9}), eval(b, {9})) == -1);

    SECTION("the same prompt again: from its last token") {
        // History 150 + 40 + 19; the prompt is 190 tokens of it: the checkpoint at 189 (the
        // last prompt token, captured inside the prefill) is restored and that token runs
        // alone — another call size than the prefill's, so compare like prefix reuse.
        const auto    p = cat(x0, z);
        GenerateStats s2;
        const auto    again = run_tokens(a, p, greedy(20), &s2);
        CHECK(s2.reused_tokens == 189);
        CHECK(again == ta);
    }
    SECTION("a prompt that leaves the history before any rollback point starts over") {
        auto other = x0;
        other[3]   = other[3] == 10 ? 11 : 10;
        GenerateStats s3;
        run_tokens(a, other, greedy(1), &s3);
        CHECK(s3.reused_tokens == 0);
    }
}

TEST_CASE("api rollback: a cancel inside the prefill leaves the session as before the call",
          "[api][rollback]") {
    const auto      x0 = ids(0, 120), y = ids(120, 180);
    test::TempDir   d;
    CancelToken     cancel;
    GenerateOptions o = greedy(10);
    o.cancel          = &cancel;

    SECTION("after earlier turns") {
        Session a = new_session();
        run_tokens(a, x0, greedy(0));
        REQUIRE(a.save(d.file("before.snap")).ok());
        const auto before = a.tokens();
        {
            InsideCancel ic(&cancel);
            ic.at_call(1);  // the prefill of y, after its third block
            auto r = a.generate_tokens(cat(x0, y), o, nullptr);
            REQUIRE(r.ok());
            CHECK(r->stats.stop_reason == StopReason::cancelled);
            CHECK(r->stats.generated_tokens == 0);
        }
        CHECK(a.n_past() == 120);
        CHECK(a.tokens() == before);
        REQUIRE(a.save(d.file("after.snap")).ok());
        CHECK((file_bytes(d.file("after.snap")) == file_bytes(d.file("before.snap"))));
        cancel.reset();
        GenerateStats st;
        const auto    ta = run_tokens(a, cat(x0, y), greedy(10), &st);
        CHECK(st.reused_tokens == 120);

        Session b = new_session();  // the cancelled call never happened
        run_tokens(b, x0, greedy(0));
        CHECK(ta == run_tokens(b, cat(x0, y), greedy(10)));
        CHECK(diff_at(eval(a, {3}), eval(b, {3})) == -1);
    }
    SECTION("a fresh session, prefill in chunks: the completed chunks stay") {
        Session a = new_session(64);
        {
            InsideCancel ic(&cancel);
            ic.at_call(2);  // inside the second 64-token chunk
            auto r = a.generate_tokens(cat(x0, y), o, nullptr);
            REQUIRE(r.ok());
            CHECK(r->stats.stop_reason == StopReason::cancelled);
        }
        CHECK(a.n_past() == 64);
        CHECK(a.tokens() == ids(0, 64));
        cancel.reset();
        GenerateStats st;
        const auto    ta = run_tokens(a, cat(x0, y), greedy(10), &st);
        CHECK(st.reused_tokens == 64);
        Session b = new_session(64);  // same chunk boundaries, never cancelled
        CHECK(ta == run_tokens(b, cat(x0, y), greedy(10)));
        CHECK(diff_at(eval(a, {3}), eval(b, {3})) == -1);
    }
}

TEST_CASE("api rollback: a cancel inside a decode step keeps every token before it",
          "[api][rollback]") {
    const auto           prompt = ids(0, 100);
    CancelToken          cancel;
    Session              a = new_session();
    std::vector<int32_t> got, at_cancel;
    int64_t              n_at_cancel = -1;
    {
        InsideCancel    ic(&cancel);
        GenerateOptions o = greedy(40);
        o.cancel          = &cancel;
        // Decode steps run positions 100.. across the 128x block end and the ring wrap; the
        // cancel lands in the step that runs token 31 at position 131, which completes a 4x
        // block (the only step kind whose undo matters: it moves the overlapping compressors'
        // halves, while a plain step overwrites only slots no later position reads).
        auto r = a.generate_tokens(prompt, o, [&](const TokenEvent & e) {
            got.push_back(e.token);
            if (e.index == 31) {
                n_at_cancel = a.n_past();
                at_cancel   = a.tokens();
                ic.at_call(1);
            }
            return Control::proceed;
        });
        REQUIRE(r.ok());
        CHECK(r->stats.stop_reason == StopReason::cancelled);
        CHECK(r->stats.generated_tokens == 32);
    }
    CHECK(n_at_cancel == 131);
    CHECK(a.n_past() == n_at_cancel);
    CHECK(a.tokens() == at_cancel);

    // Going on from there (the history and its logits are intact: nothing is re-run) gives
    // what an uninterrupted run gives.
    cancel.reset();
    GenerateStats st;
    const auto    rest = run_tokens(a, a.tokens(), greedy(10), &st);
    CHECK(st.reused_tokens == 131);
    Session    b   = new_session();
    const auto all = run_tokens(b, prompt, greedy(41));
    REQUIRE(all.size() == 41);
    CHECK(std::vector<int32_t>(all.begin(), all.begin() + 32) == got);
    CHECK(rest == std::vector<int32_t>(all.begin() + 31, all.end()));
    REQUIRE(a.tokens() == b.tokens());  // and the same forward calls: the same logits
    CHECK(diff_at(eval(a, {5}), eval(b, {5})) == -1);
}

// ---- thinking mode, on the tiny model with its tokenizer --------------------------------

TEST_CASE("api rollback: a thinking-mode follow-up turn reuses the previous prompt",
          "[api][rollback]") {
    // The V4 encoding drops the reasoning of earlier turns and renders their "<think>" opener
    // as "</think>": the second prompt leaves the history at the first prompt's last token,
    // where the session keeps a rollback point.
    test::TempDir d;
    auto          cfg = model::preset_config("tiny");
    REQUIRE(cfg.ok());
    REQUIRE(model::write_random_model(*cfg, d.path.string(), model::MakeModelOptions{}).ok());
    // Exactness: the follow-up runs the first prompt in one call and the rest in another, the
    // fresh session all of it in one call. With products summed per token (every kernel arch
    // but avx512bf16, whose prefill GEMM sums in its own order) and a first prompt of >= 128
    // tokens (full-width window lists from the start), both are the same computation, so the
    // random-weight model's close greedy calls cannot tell them apart.
    LoadOptions lo;
    lo.n_threads = 2;
    for (CpuArch arch : system_info().usable_archs)
        if (arch != CpuArch::avx512bf16) {
            lo.cpu_arch = arch;
            break;
        }
    REQUIRE(lo.cpu_arch != CpuArch::automatic);
    auto m = Model::load(d.path.string(), lo);
    REQUIRE(m.ok());
    SessionOptions so;
    so.n_ctx = 1024;
    auto a   = m->new_session(so);
    REQUIRE(a.ok());
    GenerateOptions o = greedy(16);
    o.think           = ThinkMode::high;

    std::vector<ChatMessage> conv = {
        ChatMessage::system("You are a helpful assistant. Think about the question step by step "
                            "before answering, and keep the final answer short and precise."),
        ChatMessage::user("Which planets of the solar system have rings, and why do they?")};
    auto r1 = a->generate(conv, o, nullptr);
    REQUIRE(r1.ok());
    const int32_t p1 = r1->stats.prompt_tokens;
    REQUIRE(p1 >= 128);
    conv.push_back(ChatMessage::assistant("Saturn, Jupiter, Uranus and Neptune.",
                                          "The user asks about planetary rings."));
    conv.push_back(ChatMessage::user("And which of them are the brightest?"));

    std::vector<int32_t> ta, tb;
    auto                 r2 = a->generate(conv, o, [&](const TokenEvent & e) {
        ta.push_back(e.token);
        return Control::proceed;
    });
    REQUIRE(r2.ok());
    CHECK(r2->stats.reused_tokens == p1 - 1);
    CHECK(r2->stats.reused_tokens > 0);

    auto b = m->new_session(so);
    REQUIRE(b.ok());
    auto rb = b->generate(conv, o, [&](const TokenEvent & e) {
        tb.push_back(e.token);
        return Control::proceed;
    });
    REQUIRE(rb.ok());
    CHECK(rb->stats.reused_tokens == 0);
    CHECK(ta == tb);
    CHECK(a->tokens() == b->tokens());
    auto la = a->eval({40});
    auto lb = b->eval({40});
    REQUIRE(la.ok());
    REQUIRE(lb.ok());
    CHECK(diff_at(*la, *lb) == -1);
}

TEST_CASE("api rollback: session_bytes counts the rollback copies", "[api][rollback]") {
    const Model &  m = golden_model();
    SessionOptions so;
    so.n_ctx       = 512;
    const auto & c = golden().cfg;
    // Two whole copies (window rings + compressor states: the KV state's fixed part) and a
    // journal for calls of max_batch tokens (here >= every ring: also whole).
    const uint64_t whole = model::KvCheckpoint::bytes(c, model::KvCheckpoint::kWhole);
    CHECK(whole == model::KvState::bytes(c, 0));
    CHECK(model::KvCheckpoint::bytes(c, 256) == whole);
    CHECK(model::KvCheckpoint::bytes(c, 1) < whole);
    so.max_batch       = 256;
    const uint64_t big = m.session_bytes(so);
    so.max_batch       = 1;
    const uint64_t one = m.session_bytes(so);
    CHECK(big - one ==
          (whole - model::KvCheckpoint::bytes(c, 1)) +
              (model::Workspace::bytes(c, 256, 512) - model::Workspace::bytes(c, 1, 512)));
}
