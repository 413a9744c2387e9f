// Concurrency stress for the public API (issue 7: "several Sessions on one Model from several
// threads; a Session used from two threads at once is rejected, not corrupted. TSan-clean stress
// test"). Everything below runs at the same time on one shared golden-a Model:
//  * 4 workers, each with its own Session (re-created every few rounds from its own copy of the
//    Model handle), loop: a greedy generation, a sampled follow-up turn that reuses the prefix,
//    and a reset every other round — every output must equal the serial reference run;
//  * a victim generates while a canceller thread signals the victim's CancelToken after its
//    second token: every round stops as `cancelled`, the tokens so far are a prefix of the serial
//    reference, and the Session is left either empty or holding exactly prompt + tokens;
//  * a generator uses a shared Session while a hammer thread calls generate/reset/eval/save on
//    the same Session in a loop: the hammer sees Errc::busy (the generator waits inside its
//    callback until it has), every call ends ok or busy, and the generator's outputs equal the
//    reference.
// Catch2 v2 assertions are not thread-safe: the threads record, the test thread checks after
// join. Built under the `tsan` preset by CI (ctest --preset tsan).
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "dsv4/dsv4.hpp"
#include "test_util.hpp"

using namespace dsv4;

namespace {

const std::string kGolden = std::string(DSV4_TEST_DATA_DIR) + "/golden-a";

std::vector<int32_t> golden_prompt(size_t from, size_t n) {
    simdjson::dom::parser  p;
    simdjson::dom::element m = p.load(kGolden + "/manifest.json");
    std::vector<int32_t>   v;
    for (auto x : m["prompt_ids"].get_array()) v.push_back(static_cast<int32_t>(int64_t(x)));
    REQUIRE(v.size() >= from + n);
    return std::vector<int32_t>(v.begin() + static_cast<std::ptrdiff_t>(from),
                                v.begin() + static_cast<std::ptrdiff_t>(from + n));
}

GenerateOptions greedy(int32_t n) {
    GenerateOptions o;
    o.max_tokens           = n;
    o.sampling.temperature = 0.0f;
    return o;
}

GenerateOptions sampled(int32_t n) {
    GenerateOptions o;
    o.max_tokens                  = n;
    o.sampling.temperature        = 0.9f;
    o.sampling.top_k              = 40;
    o.sampling.top_p              = 0.95f;
    o.sampling.repetition_penalty = 1.1f;
    o.sampling.seed               = 99;
    return o;
}

SessionOptions session_options() {
    SessionOptions so;
    so.n_ctx     = 256;
    so.max_batch = 32;
    return so;
}

// A generation's tokens (empty and `status` set on failure).
struct Run {
    std::vector<int32_t> tokens;
    GenerateStats        stats;
    Status               status;
};

Run run(Session & s, const std::vector<int32_t> & prompt, const GenerateOptions & o) {
    Run  out;
    auto r = s.generate_tokens(prompt, o, [&](const TokenEvent & e) {
        out.tokens.push_back(e.token);
        return Control::proceed;
    });
    if (r.ok())
        out.stats = r->stats;
    else
        out.status = r.status();
    return out;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t> & b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// Spins until pred() holds or 5 minutes pass (then a check after join fails instead of a hang).
template <class Pred>
bool wait_for(Pred && pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::yield();
    }
    return true;
}

constexpr int kWorkers = 4, kRounds = 20, kRecreateEvery = 5;
constexpr int kCancelRounds = 5, kVictimTokens = 24, kCancelAt = 1, kGuaranteeAt = 8;
constexpr int kSharedRounds = 8;

struct WorkerRef {
    std::vector<int32_t> prompt, first, second_prompt, second;
    int32_t              second_reused = 0;
};

// What a thread saw; checked on the test thread.
struct WorkerLog {
    int                      rounds_ok = 0;
    std::vector<std::string> errors;
};

}  // namespace

TEST_CASE("api stress: sessions, cancel and busy on one model from 8 threads", "[api][threads]") {
    LoadOptions lo;
    lo.n_threads = 2;
    auto loaded  = Model::load(kGolden, lo);
    REQUIRE(loaded.ok());
    const Model model = std::move(loaded).value();

    // ---- serial references ------------------------------------------------------------------
    std::vector<WorkerRef> ref(kWorkers);
    for (int w = 0; w < kWorkers; ++w) {
        auto s = model.new_session(session_options());
        REQUIRE(s.ok());
        WorkerRef & R = ref[static_cast<size_t>(w)];
        R.prompt      = golden_prompt(static_cast<size_t>(8 * w), 16);
        Run a         = run(*s, R.prompt, greedy(4));
        REQUIRE(a.status.ok());
        R.first = a.tokens;
        // The next turn: prompt + reply + one more token; all but the reply's last token (never
        // run through the model) is reused.
        R.second_prompt = concat(concat(R.prompt, R.first), {static_cast<int32_t>(17 + w)});
        Run b           = run(*s, R.second_prompt, sampled(4));
        REQUIRE(b.status.ok());
        R.second        = b.tokens;
        R.second_reused = b.stats.reused_tokens;
        REQUIRE(R.second_reused == static_cast<int32_t>(R.prompt.size() + R.first.size() - 1));
    }
    const auto           victim_prompt = golden_prompt(100, 24);
    const auto           shared_prompt = golden_prompt(60, 20);
    std::vector<int32_t> victim_ref, shared_ref;
    {
        auto s = model.new_session(session_options());
        REQUIRE(s.ok());
        Run v = run(*s, victim_prompt, greedy(kVictimTokens));
        REQUIRE(v.status.ok());
        victim_ref = v.tokens;
        REQUIRE(victim_ref.size() == kVictimTokens);  // no early EOS: a cancel always lands
        Run g = run(*s, shared_prompt, greedy(4));
        REQUIRE(g.status.ok());
        shared_ref = g.tokens;
    }

    auto shared_s = model.new_session(session_options());
    REQUIRE(shared_s.ok());
    Session &     shared = *shared_s;
    test::TempDir tmp;

    // ---- the threads (no REQUIRE from here to the join) --------------------------------------
    std::vector<WorkerLog>   logs(kWorkers + 4);
    std::vector<std::thread> threads;
    const auto               fail = [&](size_t who, std::string what) {
        logs[who].errors.push_back(std::move(what));
    };

    for (int w = 0; w < kWorkers; ++w)
        threads.emplace_back([&, w, m = model]() {  // each worker holds its own Model copy
            const WorkerRef & R   = ref[static_cast<size_t>(w)];
            const size_t      who = static_cast<size_t>(w);
            Result<Session>   s   = Status(Errc::internal, "not created");
            for (int i = 0; i < kRounds; ++i) {
                if (i % kRecreateEvery == 0) {
                    s = m.new_session(session_options());
                    if (!s.ok()) return fail(who, "new_session: " + s.status().to_string());
                }
                Run a = run(*s, R.prompt, greedy(4));
                if (!a.status.ok()) return fail(who, "first: " + a.status.to_string());
                if (a.tokens != R.first)
                    fail(who, "round " + std::to_string(i) + ": first turn differs");
                Run b = run(*s, R.second_prompt, sampled(4));
                if (!b.status.ok()) return fail(who, "second: " + b.status.to_string());
                if (b.tokens != R.second)
                    fail(who, "round " + std::to_string(i) + ": second turn differs");
                if (b.stats.reused_tokens != R.second_reused)
                    fail(who, "round " + std::to_string(i) + ": reused " +
                                  std::to_string(b.stats.reused_tokens));
                if (i % 2 == 0 && !s->reset().ok()) fail(who, "reset failed");
                ++logs[who].rounds_ok;
            }
        });

    // Victim and canceller.
    CancelToken      cancel;
    std::atomic<int> victim_round{-1};  // the round whose generation reached token kCancelAt
    const size_t     kVictim = kWorkers, kCanceller = kWorkers + 1;
    threads.emplace_back([&] {
        auto s = model.new_session(session_options());
        if (!s.ok()) return fail(kVictim, "new_session: " + s.status().to_string());
        for (int round = 0; round < kCancelRounds; ++round) {
            cancel.reset();
            GenerateOptions o = greedy(kVictimTokens);
            o.cancel          = &cancel;
            std::vector<int32_t> got;
            auto              r  = s->generate_tokens(victim_prompt, o, [&](const TokenEvent & e) {
                got.push_back(e.token);
                if (e.index == kCancelAt) victim_round.store(round);
                // From here on the generation cannot outrun the canceller: wait for the request
                // (it is seen between tokens); usually it lands earlier, inside a forward pass.
                if (e.index >= kGuaranteeAt) wait_for([&] { return cancel.requested(); });
                return Control::proceed;
            });
            const std::string at = "round " + std::to_string(round) + ": ";
            if (!r.ok()) return fail(kVictim, at + r.status().to_string());
            if (r->stats.stop_reason != StopReason::cancelled)
                fail(kVictim, at + "stop " + stop_reason_name(r->stats.stop_reason));
            if (got.size() < kCancelAt + 1 || got.size() > kGuaranteeAt + 1 ||
                !std::equal(got.begin(), got.end(), victim_ref.begin()))
                fail(kVictim, at + std::to_string(got.size()) + " tokens, not a reference prefix");
            // Cancelled inside a forward call: that call is undone (KvCheckpoint journal), the
            // session keeps what ran before it; between tokens: it holds exactly the prompt and
            // the tokens that were run.
            const auto & h = s->tokens();
            if (!h.empty()) {
                const auto want = concat(victim_prompt, got);
                if (h.size() < victim_prompt.size() || h.size() > want.size() ||
                    !std::equal(h.begin(), h.end(), want.begin()))
                    fail(kVictim, at + "history is not prompt + generated tokens");
            }
            ++logs[kVictim].rounds_ok;
        }
    });
    threads.emplace_back([&] {
        for (int round = 0; round < kCancelRounds; ++round) {
            if (!wait_for([&] { return victim_round.load() >= round; }))
                return fail(kCanceller, "victim never reached round " + std::to_string(round));
            cancel.request();
            ++logs[kCanceller].rounds_ok;
        }
    });

    // Shared session: generator and hammer.
    std::atomic<int>  hammer_busy{0}, hammer_ok{0}, generator_busy{0};
    std::atomic<bool> generator_done{false};
    const size_t      kGenerator = kWorkers + 2, kHammer = kWorkers + 3;
    threads.emplace_back([&] {
        for (int round = 0; round < kSharedRounds; ++round) {
            const int              busy_before = hammer_busy.load();
            std::vector<int32_t>   got;
            Result<GenerateResult> r = Status(Errc::internal, "not run");
            for (;;) {  // the hammer may hold the session for a moment: retry on busy
                got.clear();
                r = shared.generate_tokens(shared_prompt, greedy(4), [&](const TokenEvent & e) {
                    got.push_back(e.token);
                    // Inside a call: hold the session until the hammer has bounced off it.
                    if (e.index == 1) wait_for([&] { return hammer_busy.load() > busy_before; });
                    return Control::proceed;
                });
                if (r.status().code() != Errc::busy) break;
                ++generator_busy;
                std::this_thread::yield();
            }
            const std::string at = "round " + std::to_string(round) + ": ";
            if (!r.ok()) {
                fail(kGenerator, at + r.status().to_string());
                break;
            }
            if (got != shared_ref) fail(kGenerator, at + "tokens differ from the reference");
            if (hammer_busy.load() <= busy_before) fail(kGenerator, at + "the hammer saw no busy");
            ++logs[kGenerator].rounds_ok;
            // A pause between calls: the hammer's calls get through too (state handed over).
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        generator_done = true;
    });
    threads.emplace_back([&] {
        const std::string snap = tmp.file("shared.snap");
        for (int i = 0; !generator_done.load(); ++i) {
            Status st;
            switch (i % 4) {
                case 0: st = shared.reset(); break;
                case 1:
                    st = shared.generate_tokens(shared_prompt, greedy(1), nullptr).status();
                    break;
                case 2: st = shared.eval({5}).status(); break;
                default: st = shared.save(snap); break;
            }
            if (st.code() == Errc::busy)
                ++hammer_busy;
            else if (st.ok() || (i % 4 == 2 && st.code() == Errc::context_full))
                ++hammer_ok;
            else
                fail(kHammer, "call " + std::to_string(i % 4) + ": " + st.to_string());
            std::this_thread::yield();
        }
        ++logs[kHammer].rounds_ok;
    });

    for (auto & t : threads) t.join();

    for (size_t i = 0; i < logs.size(); ++i) {
        INFO("thread " << i);
        for (const auto & e : logs[i].errors) FAIL_CHECK(e);
    }
    for (int w = 0; w < kWorkers; ++w) CHECK(logs[static_cast<size_t>(w)].rounds_ok == kRounds);
    CHECK(logs[kVictim].rounds_ok == kCancelRounds);
    CHECK(logs[kCanceller].rounds_ok == kCancelRounds);
    CHECK(logs[kGenerator].rounds_ok == kSharedRounds);
    CHECK(logs[kHammer].rounds_ok == 1);
    INFO("hammer: " << hammer_busy.load() << " busy, " << hammer_ok.load()
                    << " ok; generator retried " << generator_busy.load() << " times");
    CHECK(hammer_busy.load() >= kSharedRounds);
}
