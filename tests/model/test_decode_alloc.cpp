// Decode allocates nothing (debug guard for the forward pass's contract, forward.hpp: "Nothing on
// the forward path allocates"). This executable replaces the global operator new/delete with
// counting versions (one atomic counter, so allocations on every thread — OpenMP workers
// included — are seen), warms the engine up, then runs single-token decode steps through
// model::Engine::forward (and an MTP step) across an HCA compression boundary (position 127),
// the window ring's wrap (128) and several CSA blocks, and requires zero allocations. On glibc
// without sanitizers it counts malloc/calloc/realloc as well (the OpenMP runtime's own).
// Kept in its own executable so the replaced operators affect no other test.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "dsv4/system.hpp"
#include "io/safetensors.hpp"
#include "kernels/kernel_table.hpp"
#include "model/config.hpp"
#include "model/forward.hpp"
#include "model/weights.hpp"
#include "threading/parallel.hpp"
#include "util/log.hpp"

#include "alloc_counter.hpp"

using dsv4::test::g_allocs;
using dsv4::test::g_armed;
using dsv4::test::g_mallocs;

using namespace dsv4;

namespace {

const std::string kGolden = std::string(DSV4_TEST_DATA_DIR) + "/golden-a";

// Counts operator-new calls and (where interposed) C allocations, all threads, while alive.
class AllocCounter {
  public:
    AllocCounter() {
        g_allocs.store(0);
#if defined(DSV4_TEST_COUNT_MALLOC)
        g_mallocs.store(0);
#endif
        g_armed.store(true);
    }
    ~AllocCounter() {
        g_armed.store(false);
    }
    int64_t count() const {
        return g_allocs.load();
    }
    int64_t c_count() const {
#if defined(DSV4_TEST_COUNT_MALLOC)
        return g_mallocs.load();
#else
        return 0;
#endif
    }
};

}  // namespace

TEST_CASE("allocation counter sees allocations on every thread", "[golden][alloc]") {
    // The guard itself must be able to fail: one allocation on a parallel_for worker (the
    // second of two parts, an OpenMP worker thread when built with OpenMP), none elsewhere.
    threading::parallel_for(2, 2, 1, [](int64_t, int64_t) {});  // start the pool first
    int64_t seen = 0, c_seen = 0;
    {
        AllocCounter c;
        threading::parallel_for(2, 2, 1, [](int64_t b, int64_t e) {
            if (b <= 1 && 1 < e) ::operator delete(::operator new(16));  // a call: not elided
        });
        seen   = c.count();
        c_seen = c.c_count();
    }
    CHECK(seen == 1);
#if defined(DSV4_TEST_COUNT_MALLOC)
    CHECK(c_seen == 1);  // operator new above allocates with malloc
#endif
    (void)c_seen;
}

TEST_CASE("decode allocates nothing", "[golden][alloc]") {
    auto cfg = model::load_config(kGolden + "/config.json");
    REQUIRE(cfg.ok());
    auto store = io::TensorStore::open_dir(kGolden);
    REQUIRE(store.ok());
    auto w = model::bind_weights(*cfg, *store, detail::Logger());
    REQUIRE(w.ok());
    const model::ModelConfig & c    = *cfg;
    auto                       arch = resolve_cpu_arch(CpuArch::automatic);
    REQUIRE(arch.ok());
    model::Engine eng(c, *w, kernels::kernel_table(*arch), 2);

    // Positions: prefill 0..119, warm-up decode 120, then 121..140 armed: CSA blocks complete at
    // 123, 127, ...; the HCA block 0 at 127; the window ring wraps at 128.
    const int64_t P = 120, first = P + 1, steps = 20, n_ctx = 160;
    REQUIRE(c.window_size <= P + 1 + steps - 1);
    auto kv = model::KvState::create(c, n_ctx);
    REQUIRE(kv.ok());
    auto ws = model::Workspace::create(c, P, n_ctx);
    REQUIRE(ws.ok());
    std::vector<int32_t> toks(static_cast<size_t>(first + steps + 1));
    for (size_t i = 0; i < toks.size(); ++i)
        toks[i] = static_cast<int32_t>((i * 37 + 11) % c.vocab_size);
    std::vector<float> logits(static_cast<size_t>(c.vocab_size)), mtp_logits(logits.size());
    std::vector<float> h(static_cast<size_t>(P * c.hc_dim()));

    // Prefill (main and MTP block, so every cache row a decode step reads was written), then
    // one warm-up decode step.
    REQUIRE(eng.forward(*kv, *ws, toks.data(), P, 0, logits.data(), h.data()).ok());
    if (c.n_mtp_layers > 0)
        REQUIRE(eng.mtp(*kv, *ws, h.data(), &toks[1], P, 0, mtp_logits.data()).ok());
    REQUIRE(eng.forward(*kv, *ws, &toks[P], 1, P, logits.data(), h.data()).ok());
    if (c.n_mtp_layers > 0)
        REQUIRE(eng.mtp(*kv, *ws, h.data(), &toks[P + 1], 1, P, mtp_logits.data()).ok());

    std::vector<char> ok(static_cast<size_t>(2 * steps), 0);  // no Catch2 assertions while armed
    int64_t           allocs = 0, c_allocs = 0;
    {
        AllocCounter counter;
        for (int64_t i = 0; i < steps; ++i) {
            const int64_t p = first + i;
            ok[static_cast<size_t>(2 * i)] =
                eng.forward(*kv, *ws, &toks[static_cast<size_t>(p)], 1, p, logits.data(), h.data())
                    .ok();
            ok[static_cast<size_t>(2 * i + 1)] =
                c.n_mtp_layers == 0 ||
                eng.mtp(*kv, *ws, h.data(), &toks[static_cast<size_t>(p + 1)], 1, p,
                        mtp_logits.data())
                    .ok();
        }
        allocs   = counter.count();
        c_allocs = counter.c_count();
    }
    for (char o : ok) CHECK(o);
    CHECK(allocs == 0);
    CHECK(c_allocs == 0);
}
