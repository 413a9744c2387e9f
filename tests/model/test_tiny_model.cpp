// The shipped default model (models/dsv4-tiny, issue 9) against the PyTorch outputs that
// tools/train/export.py recorded in tests/data/dsv4_tiny_reference.json:
//   * held-out perplexity over the recorded windows, dsv4 vs PyTorch, within 1 %;
//   * greedy continuations of the recorded prompts, token for token (64 tokens each);
//   * dsv4's tokenizer gives the recorded prompt ids (the file records them with BOS first).
// Everything goes through the public API (Model::load, Session::eval/generate_tokens).
//
// Per-position logits: Session::eval returns the logits of the last position only, so each
// window is fed one token per eval() call (the decode path: 511 steps per window). That is the
// honest route through the API a host uses for scoring; it costs a few seconds on the tiny
// model. PyTorch scores the window in one teacher-forced pass; dsv4's token-by-token path
// equals its one-shot prefill up to the rounding of differently blocked products (tested on
// golden-a, see docs/testing.md), so the comparison stays within the noise budget below.
//
// Until the model lands, a missing models/dsv4-tiny makes every case a warning and a pass.
// DSV4_TINY_MODEL_DIR / DSV4_TINY_REFERENCE point the test elsewhere (used to prove the harness
// on a random-weight model with a reference written from dsv4's own outputs).
#include <simdjson.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "dsv4/dsv4.hpp"

using namespace dsv4;
namespace fs = std::filesystem;

namespace {

std::string env_or(const char * name, const std::string & fallback) {
    const char * v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string model_dir() {
    return env_or("DSV4_TINY_MODEL_DIR", std::string(DSV4_SOURCE_DIR) + "/models/dsv4-tiny");
}

std::string reference_path() {
    return env_or("DSV4_TINY_REFERENCE",
                  std::string(DSV4_TEST_DATA_DIR) + "/dsv4_tiny_reference.json");
}

// The model is committed (models/dsv4-tiny): a missing one is a failure, not a skip.
bool model_present() {
    const bool there = fs::exists(fs::path(model_dir()) / "config.json");
    INFO("model directory: " << model_dir());
    REQUIRE(there);
    return there;
}

struct Prompt {
    std::string          text;
    std::vector<int32_t> ids;     // BOS first
    std::vector<int32_t> greedy;  // PyTorch's greedy continuation
};

struct Reference {
    int64_t                           seq_len = 0;
    std::vector<std::vector<int32_t>> windows;  // [BOS] + held-out tokens each
    double                            nll_sum     = 0;
    int64_t                           n_predicted = 0;
    double                            ppl         = 0;
    std::vector<Prompt>               prompts;
};

std::vector<int32_t> ids_of(simdjson::dom::element e) {
    std::vector<int32_t> v;
    for (simdjson::dom::element x : e.get_array()) v.push_back(static_cast<int32_t>(int64_t(x)));
    return v;
}

const Reference & reference() {
    static const Reference r = [] {
        Reference                  ref;
        simdjson::dom::parser      p;
        simdjson::dom::element     j;
        const simdjson::error_code err = p.load(reference_path()).get(j);
        INFO("reading " << reference_path() << ": " << simdjson::error_message(err));
        REQUIRE(err == simdjson::SUCCESS);
        ref.seq_len = int64_t(j["seq_len"]);
        for (simdjson::dom::element w : j["heldout"]["windows"].get_array())
            ref.windows.push_back(ids_of(w));
        ref.nll_sum     = double(j["heldout"]["nll_sum"]);
        ref.n_predicted = int64_t(j["heldout"]["n_predicted"]);
        ref.ppl         = double(j["heldout"]["ppl"]);
        for (simdjson::dom::element q : j["prompts"].get_array()) {
            Prompt pr;
            pr.text   = std::string(std::string_view(q["text"]));
            pr.ids    = ids_of(q["ids"]);
            pr.greedy = ids_of(q["greedy"]);
            ref.prompts.push_back(std::move(pr));
        }
        return ref;
    }();
    return r;
}

const Model & tiny_model() {
    static const Model m = [] {
        LoadOptions o;
        // One thread: a decode step of the tiny model is ~2 ms, too little work to share, and
        // on a loaded 2-core machine OpenMP's waiting made 2 threads 10x slower (17 vs 1.7 ms).
        o.n_threads = 1;
        auto r      = Model::load(model_dir(), o);
        INFO(r.status().to_string());
        REQUIRE(r.ok());
        return std::move(r).value();
    }();
    return m;
}

// -log softmax(logits)[target], in double.
double nll_of(const std::vector<float> & logits, int32_t target) {
    const float mx = *std::max_element(logits.begin(), logits.end());
    double      s  = 0;
    for (float l : logits) s += std::exp(static_cast<double>(l) - mx);
    return std::log(s) + mx - static_cast<double>(logits[static_cast<size_t>(target)]);
}

// The perplexity criterion, and why 1 % is the right bound:
//   ppl = exp(mean NLL), so ppl_dsv4 / ppl_torch = exp(ΔNLL), ΔNLL = the difference of the mean
//   per-token NLL: |ratio − 1| <= 1 % <=> ΔNLL ∈ [−0.01005, +0.00995] nats per token.
//   A logit error vector δ at one position moves that token's NLL by at most 2·‖δ‖∞
//   (log-sum-exp is 1-Lipschitz in ‖·‖∞); rounding errors have either sign, so over the 4,088
//   predicted tokens they largely cancel in the mean, while an error in the model (a shifted
//   position, a missing quantisation simulation, a wrong scale or token) biases every token the
//   same way. PyTorch and dsv4 share the numerics (FP8 act_quant, FP4 experts, KV FP8 sim,
//   indexer FP4 + Hadamard, bf16 roundings), so what separates them is float32/bf16 rounding in
//   different orders plus, here, the decode path (token by token) against PyTorch's one pass.
//   That part was measured on the random-weight `tiny` preset (mean NLL 7.6 nats: far larger,
//   more peaked logits than a trained model): dsv4's decode path vs its own one-shot prefill,
//   127 positions of a 512-token window, ΔNLL = −0.0066 nats/token (per token |Δ| 0.019 on
//   average, 0.28 at most). On the trained model the whole difference, dsv4 decode path vs
//   PyTorch's one pass, measured ratio − 1 = −8.0e-5 (first export of models/dsv4-tiny,
//   4,088 tokens): 1 % sits two orders of magnitude above the rounding noise of the trained
//   model and above it even for a badly conditioned one, while any defect that biases every
//   token's NLL by 0.01 nats or more fails it. The value is printed on every run (WARN).
constexpr double kPplRelTol = 0.01;

bool ppl_agrees(double ppl_dsv4, double ppl_torch) {
    return std::fabs(ppl_dsv4 / ppl_torch - 1.0) <= kPplRelTol;
}

// Greedy tokens as dsv4 emits them: generation ends at EOS (which is emitted), so the reference
// is compared up to and including its first EOS, if any.
std::vector<int32_t> expected_greedy(const std::vector<int32_t> & greedy, int32_t eos) {
    auto it = std::find(greedy.begin(), greedy.end(), eos);
    return std::vector<int32_t>(greedy.begin(), it == greedy.end() ? it : it + 1);
}

size_t first_difference(const std::vector<int32_t> & a, const std::vector<int32_t> & b) {
    size_t k = 0;
    while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
    return k;
}

std::string ids_text(const std::vector<int32_t> & v, size_t from, size_t n) {
    std::string s;
    for (size_t k = from; k < v.size() && k < from + n; ++k) s += std::to_string(v[k]) + " ";
    return s;
}

}  // namespace

TEST_CASE("tiny model: the comparison rules reject a 2 % perplexity shift and one changed id",
          "[model][tiny]") {
    // The rules themselves, independent of the model: each check can fail.
    CHECK(ppl_agrees(10.0, 10.0));
    CHECK(ppl_agrees(10.09, 10.0));
    CHECK_FALSE(ppl_agrees(10.2, 10.0));
    CHECK_FALSE(ppl_agrees(9.8, 10.0));
    // NLL sum perturbed by 2 % at a realistic mean NLL of ~2.3 nats moves ppl by ~4.7 %.
    const double n = 4088, nll = 2.3 * n;
    CHECK_FALSE(ppl_agrees(std::exp(nll * 1.02 / n), std::exp(nll / n)));
    const std::vector<int32_t> g = {5, 7, 1, 9};
    CHECK(expected_greedy(g, 1) == std::vector<int32_t>{5, 7, 1});
    CHECK(expected_greedy(g, 3) == g);
    CHECK(first_difference({5, 7, 1}, {5, 8, 1}) == 1);
}

TEST_CASE("tiny model: held-out perplexity equals PyTorch's within 1 %", "[model][tiny]") {
    if (!model_present()) return;
    const Reference & ref = reference();
    const Model &     m   = tiny_model();
    REQUIRE(m.tokenizer() != nullptr);
    REQUIRE(!ref.windows.empty());
    REQUIRE(ref.seq_len >= 2);
    REQUIRE(ref.ppl > 0);
    // The file is self-consistent: ppl = exp(nll_sum / n_predicted), n_predicted = Σ(len − 1).
    int64_t n_expected = 0;
    for (const auto & w : ref.windows) {
        REQUIRE(w.size() >= 2);
        REQUIRE(static_cast<int64_t>(w.size()) <= ref.seq_len);
        CHECK(w[0] == m.tokenizer()->bos_id());
        n_expected += static_cast<int64_t>(w.size()) - 1;
    }
    REQUIRE(ref.n_predicted == n_expected);
    REQUIRE(std::exp(ref.nll_sum / static_cast<double>(ref.n_predicted)) ==
            Approx(ref.ppl).epsilon(1e-6));

    SessionOptions so;
    so.n_ctx = ref.seq_len;
    auto sr  = m.new_session(so);
    REQUIRE(sr.ok());
    Session    s       = std::move(sr).value();
    double     nll_sum = 0;
    const auto t0      = std::chrono::steady_clock::now();
    for (size_t wi = 0; wi < ref.windows.size(); ++wi) {
        const auto & w = ref.windows[wi];
        REQUIRE(s.reset().ok());
        double nll_w = 0;
        for (size_t t = 0; t + 1 < w.size(); ++t) {
            auto logits = s.eval({w[t]});
            INFO("window " << wi << " position " << t << ": " << logits.status().to_string());
            REQUIRE(logits.ok());
            REQUIRE(logits->size() == static_cast<size_t>(m.info().vocab_size));
            nll_w += nll_of(*logits, w[t + 1]);
        }
        nll_sum += nll_w;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double ppl   = std::exp(nll_sum / static_cast<double>(ref.n_predicted));
    const double ratio = ppl / ref.ppl;
    WARN("held-out: " << ref.windows.size() << " windows, " << ref.n_predicted
                      << " predicted tokens; ppl dsv4 " << ppl << " vs PyTorch " << ref.ppl
                      << ", ratio - 1 = " << (ratio - 1.0) << " (bound " << kPplRelTol
                      << "); mean NLL diff "
                      << (nll_sum - ref.nll_sum) / static_cast<double>(ref.n_predicted)
                      << " nats/token; " << secs << " s");
    CHECK(ppl_agrees(ppl, ref.ppl));
}

TEST_CASE("tiny model: greedy continuations equal PyTorch's token for token", "[model][tiny]") {
    if (!model_present()) return;
    const Reference & ref = reference();
    const Model &     m   = tiny_model();
    REQUIRE(m.tokenizer() != nullptr);
    REQUIRE(!ref.prompts.empty());
    const int32_t eos = m.tokenizer()->eos_id();
    for (size_t pi = 0; pi < ref.prompts.size(); ++pi) {
        const Prompt & p = ref.prompts[pi];
        REQUIRE(!p.greedy.empty());
        SessionOptions so;
        so.n_ctx = static_cast<int64_t>(p.ids.size() + p.greedy.size()) + 1;
        auto sr  = m.new_session(so);
        REQUIRE(sr.ok());
        Session         s = std::move(sr).value();
        GenerateOptions o;
        o.max_tokens           = static_cast<int32_t>(p.greedy.size());
        o.sampling.temperature = 0.0f;
        std::vector<int32_t> got;
        auto                 r = s.generate_tokens(p.ids, o, [&](const TokenEvent & e) {
            got.push_back(e.token);
            return Control::proceed;
        });
        INFO("prompt " << pi << " \"" << p.text << "\": " << r.status().to_string());
        REQUIRE(r.ok());
        const std::vector<int32_t> want = expected_greedy(p.greedy, eos);
        const size_t               k    = first_difference(got, want);
        INFO("first difference at token " << k << ": dsv4 [" << ids_text(got, k, 8) << "] PyTorch ["
                                          << ids_text(want, k, 8) << "]");
        CHECK(got == want);
    }
}

TEST_CASE("tiny model: dsv4's tokenizer gives the recorded prompt ids", "[model][tiny]") {
    if (!model_present()) return;
    const Reference & ref = reference();
    const Model &     m   = tiny_model();
    REQUIRE(m.info().has_tokenizer);
    REQUIRE(m.tokenizer() != nullptr);
    const Tokenizer & tok = *m.tokenizer();
    REQUIRE(tok.vocab_size() == m.info().vocab_size);
    REQUIRE(!ref.prompts.empty());
    for (size_t pi = 0; pi < ref.prompts.size(); ++pi) {
        const Prompt & p = ref.prompts[pi];
        INFO("prompt " << pi << " \"" << p.text << "\"");
        // The file records the ids the model was run on: BOS, then the text's tokens.
        REQUIRE(!p.ids.empty());
        CHECK(p.ids[0] == tok.bos_id());
        auto ids = tok.encode(p.text);
        REQUIRE(ids.ok());
        CHECK(*ids == std::vector<int32_t>(p.ids.begin() + 1, p.ids.end()));
        auto text = tok.decode(*ids);
        REQUIRE(text.ok());
        CHECK(*text == p.text);
    }
}
