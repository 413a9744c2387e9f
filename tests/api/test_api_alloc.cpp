// A Session's decode allocates nothing (issue 7: "all memory allocated at creation, nothing
// allocated during decode"). The engine-level twin (tests/model/test_decode_alloc.cpp) checks
// model::Engine::forward alone; this one checks the whole public decode loop of
// Session::generate_tokens — sampling, stop checks, the token callback plumbing, the forward
// pass with its cancel probe, the history and sampler bookkeeping.
//
// Measurement: a warm-up generation first, then a second one in which the token callback records
// a global allocation counter at every entry and arms it at the entry for index 0; the last entry
// disarms it. So what is counted is exactly what the library does between handing out the first
// and the last sampled token (the prefill before and the result assembly after are not decode).
// The callback itself allocates nothing (preallocated arrays). The counter is one atomic shared
// by every thread, so the OpenMP workers of the forward pass are seen too; on glibc without a
// sanitizer malloc/calloc/realloc are interposed as well.
// Own executable: it replaces the global operator new/delete.
#include <simdjson.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "dsv4/dsv4.hpp"
#include "model/make_model.hpp"
#include "test_util.hpp"

#include "alloc_counter.hpp"

using dsv4::test::g_allocs;
using dsv4::test::g_armed;
using dsv4::test::g_mallocs;

using namespace dsv4;

namespace {

const std::string kGolden = std::string(DSV4_TEST_DATA_DIR) + "/golden-a";

std::vector<int32_t> golden_prompt(size_t n) {
    simdjson::dom::parser  p;
    simdjson::dom::element m = p.load(kGolden + "/manifest.json");
    std::vector<int32_t>   v;
    for (auto x : m["prompt_ids"].get_array()) v.push_back(static_cast<int32_t>(int64_t(x)));
    REQUIRE(v.size() >= n);
    v.resize(n);
    return v;
}

// One measured generation: counters at every callback entry, from index 0 (armed there) to the
// last (disarmed there). `extra_at` >= 0 makes the callback allocate once after that entry —
// the measurement's own check that it can fail.
struct Measured {
    std::vector<int32_t> tokens;
    std::vector<int64_t> news, mallocs;  // counter values at each callback entry
    StopReason           stop = StopReason::eos;
    bool                 ok   = false;

    int64_t total_new() const { return news.empty() ? 0 : news.back(); }
    int64_t total_malloc() const { return mallocs.empty() ? 0 : mallocs.back(); }
    // "step i: n new / m malloc" for every step that allocated (the first index is i).
    std::string where() const {
        std::string s;
        for (size_t i = 1; i < news.size(); ++i)
            if (news[i] != news[i - 1] || mallocs[i] != mallocs[i - 1])
                s += "between tokens " + std::to_string(i - 1) + " and " + std::to_string(i) +
                     ": " + std::to_string(news[i] - news[i - 1]) + " new, " +
                     std::to_string(mallocs[i] - mallocs[i - 1]) + " malloc\n";
        return s;
    }
};

template <class Generate>
Measured measure(int32_t max_tokens, Generate && generate, int extra_at = -1) {
    Measured m;
    m.tokens.reserve(static_cast<size_t>(max_tokens));
    m.news.reserve(static_cast<size_t>(max_tokens));
    m.mallocs.reserve(static_cast<size_t>(max_tokens));
    const TokenCallback cb = [&](const TokenEvent & e) {
        g_armed.store(false);
        m.news.push_back(g_allocs.load());
        m.mallocs.push_back(g_mallocs.load());
        m.tokens.push_back(e.token);
        if (e.index == 0) {
            g_allocs.store(0);
            g_mallocs.store(0);
            m.news.back() = m.mallocs.back() = 0;
        }
        // Armed until the next entry; the last one (max_tokens or a stop) stays disarmed.
        if (e.index + 1 < max_tokens) g_armed.store(true);
        if (e.index == extra_at) ::operator delete(::operator new(16));  // counted
        return Control::proceed;
    };
    auto r = generate(cb);
    g_armed.store(false);  // an early stop (EOS) leaves it armed through the result assembly
    m.ok = r.ok();
    if (m.ok) m.stop = r->stats.stop_reason;
    return m;
}

}  // namespace

TEST_CASE("api alloc: the measurement counts allocations between two tokens", "[api][alloc]") {
    LoadOptions lo;
    lo.n_threads = 2;
    auto model   = Model::load(kGolden, lo);
    REQUIRE(model.ok());
    auto s = model->new_session();
    REQUIRE(s.ok());
    GenerateOptions o;
    o.max_tokens           = 4;
    o.sampling.temperature = 0.0f;
    const auto prompt      = golden_prompt(16);
    const auto gen = [&](const TokenCallback & cb) { return s->generate_tokens(prompt, o, cb); };
    measure(o.max_tokens, gen);  // warm-up
    const Measured m = measure(o.max_tokens, gen, /*extra_at=*/1);
    REQUIRE(m.ok);
    REQUIRE(m.tokens.size() == 4);
    INFO(m.where());
    // The one deliberate allocation after token 1 (a malloc inside operator new, too); nothing
    // else when the library holds its promise — the real check is the next test case.
    CHECK(m.news[2] - m.news[1] >= 1);
#if defined(DSV4_TEST_COUNT_MALLOC)
    CHECK(m.mallocs[2] - m.mallocs[1] >= 1);
#endif
}

TEST_CASE("api alloc: Session decode allocates nothing (golden-a, token ids)", "[api][alloc]") {
    LoadOptions lo;
    lo.n_threads = 2;  // OpenMP workers take part in the forward pass
    auto model   = Model::load(kGolden, lo);
    REQUIRE(model.ok());
    SessionOptions so;
    so.n_ctx = 256;
    auto s   = model->new_session(so);
    REQUIRE(s.ok());
    // 120 prompt tokens and 22 generated: the decode steps run positions 120..140, across CSA
    // block ends (123, 127, ...), the first HCA block (127) and the window ring's wrap (128).
    const auto      prompt = golden_prompt(120);
    GenerateOptions o;
    o.max_tokens = 22;
    CancelToken never;  // a cancel token that stays quiet: the forward pass runs its probe

    SECTION("greedy") {
        o.sampling.temperature = 0.0f;
    }
    SECTION("every sampling stage, with a cancel token") {
        o.sampling.temperature        = 0.8f;
        o.sampling.top_k              = 50;
        o.sampling.top_p              = 0.9f;
        o.sampling.min_p              = 0.01f;
        o.sampling.repetition_penalty = 1.1f;
        o.sampling.seed               = 7;
        o.cancel                      = &never;
    }
    const auto gen = [&](const TokenCallback & cb) { return s->generate_tokens(prompt, o, cb); };
    const Measured warm = measure(o.max_tokens, gen);
    REQUIRE(warm.ok);
    REQUIRE(s->reset().ok());
    const Measured m = measure(o.max_tokens, gen);
    REQUIRE(m.ok);
    CHECK(m.tokens == warm.tokens);  // same seed, same state: same run
    REQUIRE(m.tokens.size() >= 2);
    INFO("stop " << stop_reason_name(m.stop) << ", " << m.tokens.size() << " tokens\n"
                 << m.where());
    CHECK(m.total_new() == 0);
    CHECK(m.total_malloc() == 0);
}

TEST_CASE("api alloc: Session decode with a tokenizer and stop strings allocates nothing",
          "[api][alloc]") {
    // The text path: the stream decoder, stop-string hold-back and GenerateResult::text.
    test::TempDir d;
    auto          cfg = model::preset_config("tiny");
    REQUIRE(cfg.ok());
    REQUIRE(model::write_random_model(*cfg, d.path.string(), model::MakeModelOptions{}).ok());
    LoadOptions lo;
    lo.n_threads = 2;
    auto model   = Model::load(d.path.string(), lo);
    REQUIRE(model.ok());
    REQUIRE(model->info().has_tokenizer);
    auto s = model->new_session();
    REQUIRE(s.ok());
    GenerateOptions o;
    o.max_tokens           = 40;
    o.sampling.temperature = 0.0f;
    o.stop_strings         = {"\x01never appears"};
    const auto gen         = [&](const TokenCallback & cb) {
        return s->generate_raw("Hello there, allocation counter.", o, cb);
    };
    const Measured warm = measure(o.max_tokens, gen);
    REQUIRE(warm.ok);
    REQUIRE(s->reset().ok());
    const Measured m = measure(o.max_tokens, gen);
    REQUIRE(m.ok);
    REQUIRE(m.tokens.size() >= 2);
    INFO("stop " << stop_reason_name(m.stop) << ", " << m.tokens.size() << " tokens\n"
                 << m.where());
    CHECK(m.total_new() == 0);
    CHECK(m.total_malloc() == 0);
}
