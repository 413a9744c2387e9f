// Public API on the golden-a checkpoint (no tokenizer: the token-id paths): greedy generation
// reproduces the reference's greedy tokens, every stop reason, prefix reuse, snapshots,
// concurrency and the option checks. Text paths (stop strings, chat) are in test_chat_api.cpp.
#include <simdjson.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "api/session_helpers.hpp"
#include "dsv4/dsv4.hpp"
#include "test_util.hpp"

using namespace dsv4;
namespace fs = std::filesystem;

namespace {

const std::string kGolden = std::string(DSV4_TEST_DATA_DIR) + "/golden-a";

std::vector<int32_t> manifest_ids(const char * key) {
    simdjson::dom::parser  p;
    simdjson::dom::element m = p.load(kGolden + "/manifest.json");
    std::vector<int32_t>   v;
    for (auto x : m[key].get_array()) v.push_back(static_cast<int32_t>(int64_t(x)));
    return v;
}

using test::golden_model;

// The first 40 prompt tokens: enough for every state kind (window, a few compressed blocks)
// and cheap; the greedy test uses the whole prompt.
std::vector<int32_t> short_prompt() {
    auto p = manifest_ids("prompt_ids");
    p.resize(40);
    return p;
}

Session new_session(int64_t n_ctx = 512) {
    SessionOptions so;
    so.n_ctx = n_ctx;
    auto s   = golden_model().new_session(so);
    REQUIRE(s.ok());
    return std::move(s).value();
}

std::string read_file(const std::string & path) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    REQUIRE(f.good());
    std::string s(static_cast<size_t>(f.tellg()), '\0');
    f.seekg(0);
    f.read(s.data(), static_cast<std::streamsize>(s.size()));
    return s;
}

using test::greedy;
using test::run_tokens;

}  // namespace

TEST_CASE("api: greedy generation reproduces the reference's greedy tokens", "[api]") {
    const auto    prompt = manifest_ids("prompt_ids");
    const auto    want   = manifest_ids("greedy_tokens");
    Session       s      = new_session();
    GenerateStats st;
    const auto    got = run_tokens(s, prompt, greedy(static_cast<int32_t>(want.size())), &st);
    CHECK(got == want);
    CHECK(st.stop_reason == StopReason::max_tokens);
    CHECK(st.prompt_tokens == static_cast<int32_t>(prompt.size()));
    CHECK(st.generated_tokens == static_cast<int32_t>(want.size()));
    // The last sampled token is not run: the state holds prompt + all but the last token.
    CHECK(s.n_past() == static_cast<int64_t>(prompt.size() + want.size() - 1));
}

TEST_CASE("api: stop reasons", "[api]") {
    const auto prompt = short_prompt();
    SECTION("callback") {
        Session s = new_session();
        int     n = 0;
        auto    r = s.generate_tokens(prompt, greedy(10), [&](const TokenEvent & e) {
            ++n;
            return e.index == 2 ? Control::stop : Control::proceed;
        });
        REQUIRE(r.ok());
        CHECK(r->stats.stop_reason == StopReason::callback);
        CHECK(n == 3);
        CHECK(r->stats.generated_tokens == 3);
    }
    SECTION("cancel between tokens") {
        Session     s = new_session();
        CancelToken cancel;
        auto        o = greedy(10);
        o.cancel      = &cancel;
        auto r        = s.generate_tokens(prompt, o, [&](const TokenEvent & e) {
            if (e.index == 1) cancel.request();
            return Control::proceed;
        });
        REQUIRE(r.ok());
        CHECK(r->stats.stop_reason == StopReason::cancelled);
        CHECK(r->stats.generated_tokens == 2);
    }
    SECTION("cancel before the prefill") {
        Session     s = new_session();
        CancelToken cancel;
        cancel.request();
        auto o   = greedy(10);
        o.cancel = &cancel;
        auto r   = s.generate_tokens(prompt, o, nullptr);
        REQUIRE(r.ok());
        CHECK(r->stats.stop_reason == StopReason::cancelled);
        CHECK(r->stats.generated_tokens == 0);
    }
    SECTION("max_tokens 0 prefills only") {
        Session s = new_session();
        auto    r = s.generate_tokens(prompt, greedy(0), nullptr);
        REQUIRE(r.ok());
        CHECK(r->stats.stop_reason == StopReason::max_tokens);
        CHECK(r->stats.generated_tokens == 0);
        CHECK(s.n_past() == static_cast<int64_t>(prompt.size()));
    }
    SECTION("context full during generation") {
        Session s = new_session(static_cast<int64_t>(prompt.size()) + 3);
        auto    r = s.generate_tokens(prompt, greedy(10), nullptr);
        REQUIRE(r.ok());
        CHECK(r->stats.stop_reason == StopReason::context_full);
        CHECK(s.n_past() == s.n_ctx());
    }
    SECTION("a prompt longer than the context is a context_full stop, not an error") {
        Session s = new_session(16);
        auto    r = s.generate_tokens(prompt, greedy(10), nullptr);
        REQUIRE(r.ok());
        CHECK(r->stats.stop_reason == StopReason::context_full);
        CHECK(r->stats.generated_tokens == 0);
    }
    SECTION("eos") {
        // A copy of golden-a whose config names the first greedy token as EOS.
        test::TempDir d;
        for (const auto & e : fs::directory_iterator(kGolden))
            if (e.path().filename() != "golden.safetensors")
                fs::copy(e.path(), d.path / e.path().filename());
        std::string   cfg   = read_file(kGolden + "/config.json");
        Session       probe = new_session();
        const int32_t first = run_tokens(probe, prompt, greedy(1))[0];
        const auto    at    = cfg.find("\"eos_token_id\"");
        REQUIRE(at != std::string::npos);
        const auto end = cfg.find_first_of(",}", at);
        cfg.replace(at, end - at, "\"eos_token_id\": " + std::to_string(first));
        std::ofstream(d.file("config.json"), std::ios::trunc) << cfg;
        auto m = Model::load(d.path.string());
        REQUIRE(m.ok());
        auto s = m->new_session();
        REQUIRE(s.ok());
        int  calls = 0;
        auto r     = s->generate_tokens(prompt, greedy(10), [&](const TokenEvent & e) {
            ++calls;
            CHECK(e.token == first);
            return Control::proceed;
        });
        REQUIRE(r.ok());
        CHECK(r->stats.stop_reason == StopReason::eos);
        CHECK(calls == 1);
    }
}

TEST_CASE("api: prefix reuse prefills only the new suffix, with the logits of a fresh prefill",
          "[api]") {
    const auto prompt = short_prompt();
    Session    s      = new_session();
    const auto first  = run_tokens(s, prompt, greedy(5));
    // The next "turn": everything so far plus a few more tokens.
    std::vector<int32_t> next = prompt;
    next.insert(next.end(), first.begin(), first.end());
    next.insert(next.end(), {5, 6, 7});
    GenerateStats st;
    const auto    cont = run_tokens(s, next, greedy(4), &st);
    CHECK(st.reused_tokens == static_cast<int32_t>(prompt.size() + first.size() - 1));
    Session       fresh = new_session();
    GenerateStats st2;
    const auto    ref = run_tokens(fresh, next, greedy(4), &st2);
    CHECK(st2.reused_tokens == 0);
    // Same tokens; the states differ only by prefill chunking (fp32 summation order inside
    // the GEMMs, then bf16 re-rounding), the noise class of the reference's own prefill vs
    // token-by-token runs (golden README: 0.26 max abs), so compare logits within 0.6.
    CHECK(cont == ref);
    auto l1 = s.eval({9});
    auto l2 = fresh.eval({9});
    REQUIRE(l1.ok());
    REQUIRE(l2.ok());
    float worst = 0;
    for (size_t i = 0; i < l1->size(); ++i) worst = std::max(worst, std::fabs((*l1)[i] - (*l2)[i]));
    CHECK(worst <= 0.6f);
    // A prompt that diverges from the history starts over.
    std::vector<int32_t> other = prompt;
    other[3]                   = other[3] == 10 ? 11 : 10;
    run_tokens(s, other, greedy(1), &st);
    CHECK(st.reused_tokens == 0);
}

TEST_CASE("api: weights read into memory (aligned copies) give the mapped model's logits",
          "[api]") {
    LoadOptions o;
    o.n_threads   = 2;
    o.weight_load = WeightLoad::read;
    auto m        = Model::load(kGolden, o);
    REQUIRE(m.ok());
    SessionOptions so;
    so.n_ctx  = 512;
    auto read = m->new_session(so);
    auto mmap = golden_model().new_session(so);  // WeightLoad::automatic = mmap
    REQUIRE(read.ok());
    REQUIRE(mmap.ok());
    // Same kernels on the same bytes, only the addresses differ: bit-identical.
    auto a = read->eval(short_prompt());
    auto b = mmap->eval(short_prompt());
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    REQUIRE(a->size() == b->size());
    CHECK(std::memcmp(a->data(), b->data(), a->size() * sizeof(float)) == 0);
}

TEST_CASE("api: snapshot round trip continues exactly as never stopping", "[api]") {
    const auto prompt = short_prompt();
    Session    whole  = new_session();
    const auto all    = run_tokens(whole, prompt, greedy(10));

    Session    a     = new_session();
    const auto first = run_tokens(a, prompt, greedy(4));
    REQUIRE(first == std::vector<int32_t>(all.begin(), all.begin() + 4));
    test::TempDir d;
    REQUIRE(a.save(d.file("s.snap")).ok());

    Session b = new_session();
    REQUIRE(b.load(d.file("s.snap")).ok());
    CHECK(b.tokens() == a.tokens());
    std::vector<int32_t> cont_prompt = prompt;
    cont_prompt.insert(cont_prompt.end(), first.begin(), first.end());
    GenerateStats st;
    const auto    rest = run_tokens(b, cont_prompt, greedy(6), &st);
    CHECK(st.reused_tokens == static_cast<int32_t>(prompt.size() + 3));
    CHECK(rest == std::vector<int32_t>(all.begin() + 4, all.end()));

    SECTION("corrupt, truncated and foreign snapshots are refused") {
        const std::string bytes = read_file(d.file("s.snap"));
        {
            std::string bad = bytes;
            bad[bad.size() / 2] ^= 0x40;
            std::ofstream(d.file("bad.snap"), std::ios::binary) << bad;
            const Status s = b.load(d.file("bad.snap"));
            CHECK(s.code() == Errc::invalid_argument);
            CHECK(s.message().find("checksum") != std::string::npos);
            CHECK(b.n_past() == 0);  // never half-restored
        }
        {
            std::ofstream(d.file("short.snap"), std::ios::binary) << bytes.substr(0, 100);
            CHECK(b.load(d.file("short.snap")).code() == Errc::invalid_argument);
        }
        {
            std::string bad = bytes;
            bad[12] ^= 1;  // inside the model fingerprint
            std::ofstream(d.file("other.snap"), std::ios::binary) << bad;
            const Status s = b.load(d.file("other.snap"));
            CHECK(s.code() == Errc::invalid_argument);
            CHECK(s.message().find("different model") != std::string::npos);
        }
        {
            Session      small = new_session(16);
            const Status s     = small.load(d.file("s.snap"));
            CHECK(s.code() == Errc::invalid_argument);
            CHECK(s.message().find("n_ctx") != std::string::npos);
        }
        CHECK(b.load(d.file("missing.snap")).code() == Errc::file_not_found);
    }
}

TEST_CASE("api: sessions on one model from several threads", "[api][threads]") {
    const auto                        prompt = short_prompt();
    Session                           ref    = new_session();
    const auto                        want   = run_tokens(ref, prompt, greedy(6));
    std::vector<std::vector<int32_t>> got(3);
    std::vector<std::thread>          th;
    for (int i = 0; i < 3; ++i)
        th.emplace_back([&, i] {
            SessionOptions so;
            so.n_ctx = 512;
            auto s   = golden_model().new_session(so);
            if (!s.ok()) return;
            auto r = s->generate_tokens(prompt, greedy(6), [&](const TokenEvent & e) {
                got[static_cast<size_t>(i)].push_back(e.token);
                return Control::proceed;
            });
            (void)r;
        });
    for (auto & t : th) t.join();
    for (const auto & g : got) CHECK(g == want);
}

TEST_CASE("api: a session used from two threads at once is rejected, not corrupted", "[api]") {
    const auto        prompt = manifest_ids("prompt_ids");
    Session           s      = new_session();
    std::atomic<bool> inside{false}, release{false};
    std::thread       t([&] {
        auto r = s.generate_tokens(prompt, greedy(3), [&](const TokenEvent &) {
            inside = true;
            while (!release) std::this_thread::yield();
            return Control::proceed;
        });
        CHECK(r.ok());
    });
    while (!inside) std::this_thread::yield();
    auto r2 = s.generate_tokens(prompt, greedy(1), nullptr);
    CHECK(r2.status().code() == Errc::busy);
    CHECK(s.reset().code() == Errc::busy);
    release = true;
    t.join();
    CHECK(s.reset().ok());
}

TEST_CASE("api: bad options name the field", "[api]") {
    const auto prompt     = short_prompt();
    Session    s          = new_session();
    const auto expect_bad = [&](GenerateOptions o, const char * field) {
        auto r = s.generate_tokens(prompt, o, nullptr);
        CHECK(r.status().code() == Errc::invalid_argument);
        CHECK(r.status().message().find(field) != std::string::npos);
    };
    GenerateOptions o;
    o.max_tokens = -1;
    expect_bad(o, "max_tokens");
    o                      = {};
    o.sampling.temperature = -0.5f;
    expect_bad(o, "temperature");
    o                = {};
    o.sampling.top_k = -2;
    expect_bad(o, "top_k");
    o                = {};
    o.sampling.top_p = 0.0f;
    expect_bad(o, "top_p");
    o                = {};
    o.sampling.min_p = 1.5f;
    expect_bad(o, "min_p");
    o                             = {};
    o.sampling.repetition_penalty = 0.0f;
    expect_bad(o, "repetition_penalty");
    o              = {};
    o.stop_strings = {"ok", ""};
    expect_bad(o, "stop_strings[1]");
    auto r = s.generate_tokens({1, 2, 99999}, {}, nullptr);
    CHECK(r.status().code() == Errc::invalid_argument);
    CHECK(r.status().message().find("prompt[2]") != std::string::npos);
    CHECK(s.generate_raw("hello", {}, nullptr).status().code() == Errc::invalid_argument);

    SessionOptions so;
    so.n_ctx = 0;
    CHECK(golden_model().new_session(so).status().code() == Errc::invalid_argument);
    so.n_ctx     = 64;
    so.max_batch = 0;
    CHECK(golden_model().new_session(so).status().message().find("max_batch") != std::string::npos);
    LoadOptions lo;
    lo.n_threads = -1;
    CHECK(Model::load(kGolden, lo).status().message().find("n_threads") != std::string::npos);
    CHECK(Model::load("/nonexistent/dir").status().code() == Errc::file_not_found);
    lo             = {};
    lo.on_progress = [](float f) { return f < 0.5f; };
    CHECK(Model::load(kGolden, lo).status().code() == Errc::cancelled);
}

TEST_CASE("api: sampling is reproducible with a seed and respects top-k = 1", "[api]") {
    const auto      prompt = manifest_ids("prompt_ids");
    GenerateOptions o;
    o.max_tokens    = 8;
    o.sampling.seed = 1234;
    Session    a = new_session(), b = new_session();
    const auto x = run_tokens(a, prompt, o);
    const auto y = run_tokens(b, prompt, o);
    CHECK(x == y);
    o.sampling.top_k = 1;  // top-k 1 is greedy whatever the temperature
    Session    c     = new_session();
    const auto z     = run_tokens(c, prompt, o);
    Session    g     = new_session();
    CHECK(z == run_tokens(g, prompt, greedy(8)));
}

#include "api/cancel_probe.hpp"
#include "api/model_impl.hpp"

namespace {
// Requests the cancel in the middle of layer `at` (as another thread would), then counts the
// decoder blocks that still start.
class MidLayerCancel : public dsv4::detail::CancelProbe {
  public:
    MidLayerCancel(CancelToken * c, int at) : CancelProbe(c), c_(c), at_(at) {}
    void tensor(int layer, const char * name, const float *, int64_t, int64_t) override {
        if (std::string(name) == "block_in" && c_->requested()) ++started_after_;
        if (layer == at_ && std::string(name) == "attn_out") c_->request();
    }
    int started_after_ = 0;

  private:
    CancelToken * c_;
    int           at_;
};
}  // namespace

TEST_CASE("api: a cancel stops the forward pass within one layer", "[api]") {
    auto cfg = model::load_config(kGolden + "/config.json");
    REQUIRE(cfg.ok());
    auto store = io::TensorStore::open_dir(kGolden);
    REQUIRE(store.ok());
    auto w = model::bind_weights(*cfg, *store, detail::Logger());
    REQUIRE(w.ok());
    const auto    prompt = short_prompt();
    model::Engine eng(*cfg, *w, kernels::kernel_table(*resolve_cpu_arch(CpuArch::automatic)), 2);
    for (int at = 0; at < cfg->n_layers; ++at) {
        auto kv = model::KvState::create(*cfg, 64);
        auto ws = model::Workspace::create(*cfg, 64, 64);
        REQUIRE(kv.ok());
        REQUIRE(ws.ok());
        CancelToken        cancel;
        MidLayerCancel     probe(&cancel, at);
        std::vector<float> logits(static_cast<size_t>(cfg->vocab_size));
        const Status s = eng.forward(*kv, *ws, prompt.data(), static_cast<int64_t>(prompt.size()),
                                     0, logits.data(), nullptr, &probe);
        CHECK(s.code() == Errc::cancelled);
        CHECK(probe.started_after_ == 0);  // no block starts after the one that saw the request
    }
}

#include "model/make_model.hpp"

TEST_CASE("api: text generation on a synthetic model with a tokenizer: stop strings", "[api]") {
    // The tiny preset with its byte-level tokenizer (what the README's first command runs).
    test::TempDir d;
    auto          cfg = model::preset_config("tiny");
    REQUIRE(cfg.ok());
    REQUIRE(model::write_random_model(*cfg, d.path.string(), model::MakeModelOptions{}).ok());
    auto m = Model::load(d.path.string());
    REQUIRE(m.ok());
    REQUIRE(m->info().has_tokenizer);
    GenerateOptions o  = greedy(40);
    const auto      go = [&](const GenerateOptions & opt, std::string * streamed) {
        auto s = m->new_session();
        REQUIRE(s.ok());
        auto r = s->generate_raw("Hello there, stop strings.", opt, [&](const TokenEvent & e) {
            streamed->append(e.text);
            return Control::proceed;
        });
        REQUIRE(r.ok());
        return std::move(r).value();
    };
    std::string    streamed;
    GenerateResult full = go(o, &streamed);
    CHECK(streamed == full.text);  // the callback saw exactly the result text
    REQUIRE(full.text.size() >= 12);
    // A stop string taken from the middle of the greedy text: the same run must stop there,
    // release exactly the text before it, and never show the stop string.
    const std::string stop = full.text.substr(full.text.size() / 2, 3);
    o.stop_strings         = {"\x01never", stop};
    std::string    streamed2;
    GenerateResult cut = go(o, &streamed2);
    CHECK(cut.stats.stop_reason == StopReason::stop_string);
    CHECK(cut.text == full.text.substr(0, full.text.find(stop)));
    CHECK(streamed2 == cut.text);
}
