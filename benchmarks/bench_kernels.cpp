// dsv4-bench-kernels: the decode GEMVs and prefill GEMMs of one V4-Flash layer, on the real
// shapes, against limits measured in the same run.
//
// GEMV benchmarks report `GBps` (weight bytes streamed per second, scales included) and
// `pct_bw` (that, as a percentage of the streaming-read bandwidth of benchmarks/read_probe.hpp,
// measured at the same thread count immediately before each GEMV benchmark: this VM's
// bandwidth drifts by up to ±20 % over minutes, so a probe taken once at start-up would not
// describe the memory system a later benchmark ran on; the start-up values are in the context)
// and `pct_bw_paired` (the same against the mean of single passes of the best probe reader
// timed every kPairEvery seconds during the benchmark, timing paused: the same minutes), and
// for the single products `call_ceiling_GBps` / `pct_call_ceiling` (plain_read_call: what
// plain reading code gets through the same one-product call; meaningful with 2 threads).
// The DRAM benchmarks run their products inside one threading::with_team, as the forward pass
// does (--no-team: each product forks and joins its own region).
// GEMM benchmarks report `GFLOPs` (2·N·K·T per product) and `pct_peak` (percentage of the fp32 FMA
// peak measured with the same table and thread count). The weights of every GEMV are cycled through
// enough copies (>= 512 MiB in all) that they come from DRAM, not from the caches, as in a real
// decode step. Each GEMV goes through the forward pass's own wrappers (model/linear.hpp:
// prep_quant, then lin8_all / lin4_all / gemm_bf16_all, and wo_a as one 8-group matrix through
// lin8_grouped as attention.cpp runs it; each hands ~2 MB chunks of rows to
// whichever thread is free), so the threading measured is the library's.
//
// Usage: dsv4-bench-kernels [--arch=NAME] [--misalign=N] [--no-team] [google-benchmark flags, e.g.
//        --benchmark_format=json --benchmark_filter=gemv]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dsv4/system.hpp"
#include "kernels/kernel_table.hpp"
#include "model/linear.hpp"
#include "model/make_model.hpp"
#include "model/moe.hpp"
#include "read_probe.hpp"
#include "threading/parallel.hpp"

namespace {

using dsv4::kernels::KernelTable;

const KernelTable * g_k = nullptr;

// Weights live where WeightLoad::read puts them: anonymous memory with huge pages requested.
struct Buf {
    explicit Buf(size_t n) : mem(std::max<size_t>(n, 64)), size(n), p(mem.data()) {
        if (!p) {
            std::fprintf(stderr, "dsv4-bench-kernels: cannot map %zu bytes\n", n);
            std::exit(1);
        }
        // Touch with non-trivial bytes (no NaN e4m3 codes) so pages are real and data varied.
        uint32_t s = 0x9E3779B9u;
        for (size_t i = 0; i < n; ++i) {
            s ^= s << 13, s ^= s >> 17, s ^= s << 5;
            p[i] = static_cast<uint8_t>(s % 0x7E);  // codes 0..0x7D
        }
    }
    dsv4::bench::HugeBuf mem;
    size_t               size;
    uint8_t *            p;
};

// ---- machine limits, measured once per thread count -----------------------------------------

double g_bw[3] = {0, 0, 0};  // GB/s streaming read, index = threads
// --misalign=N: every weight matrix starts N bytes past a 64-byte boundary, as the tensors of a
// mapped checkpoint do (safetensors data offsets are not aligned; read mode aligns them).
int64_t g_misalign = 0;
// --no-team: run each DRAM benchmark's products without threading::with_team around the loop,
// so each product forks and joins its own OpenMP region (the forward pass before the team).
bool   g_team    = true;
double g_peak[3] = {0, 0, 0};  // GFLOP/s fp32 FMA peak with the selected table

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

const dsv4::bench::HugeBuf & probe_buf() {
    static dsv4::bench::HugeBuf buf(size_t(1) << 30);  // 1 GiB: far beyond any L3
    return buf;
}
// Best probe rate with `threads` threads; *reader (if given) gets the reader that reached it.
double measure_read_bw(int threads, int * reader = nullptr) {
    return dsv4::bench::measure_read_bw(threads, probe_buf(), reader);
}
constexpr double kPairEvery = 0.05;  // seconds of GEMV between two paired probe passes

double measure_fma_peak(int threads) {
    const int64_t       iters = 20'000'000;
    std::vector<double> rates;
    for (int rep = 0; rep < 3; ++rep) {
        double       flops = 0;
        const double t0    = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
        flops += g_k->fma_probe(iters);
        rates.push_back(flops / (now_s() - t0) / 1e9);
    }
    std::sort(rates.begin(), rates.end());
    return rates.back();  // best: a peak
}

// ---- GEMV (decode) ---------------------------------------------------------------------------

enum class WKind { fp8, fp8_plain, fp4, bf16 };

struct Shape {
    const char * name;
    WKind        kind;
    int64_t      N, K;
    int          groups;  // wo_a: 8 groups of N rows, one matrix, each group its own input
};

const Shape kFlash[] = {
    {"wq_a", WKind::fp8, 1024, 4096, 1},      {"wq_b", WKind::fp8, 32768, 1024, 1},
    {"wkv", WKind::fp8, 512, 4096, 1},        {"wo_a", WKind::fp8_plain, 1024, 4096, 8},
    {"wo_b", WKind::fp8, 4096, 8192, 1},      {"shared_w1", WKind::fp8, 2048, 4096, 1},
    {"shared_w2", WKind::fp8, 4096, 2048, 1}, {"expert_w1", WKind::fp4, 2048, 4096, 1},
    {"expert_w2", WKind::fp4, 4096, 2048, 1}, {"head", WKind::bf16, 129280, 4096, 1},
};

int64_t all_rows(const Shape & s) {
    return s.N * s.groups;
}
// Bytes of the whole matrix (all groups), scales included.
int64_t weight_bytes(const Shape & s) {
    const int64_t n = all_rows(s);
    switch (s.kind) {
        case WKind::fp8:
        case WKind::fp8_plain: return n * s.K + ((n + 127) / 128) * (s.K / 128);
        case WKind::fp4: return n * s.K / 2 + n * (s.K / 32);
        case WKind::bf16: return n * s.K * 2;
    }
    return 0;
}

struct Operand {
    const uint8_t * w;
    const uint8_t * scale;
};

// Lays out `copies` independent matrices in one buffer; e8m0 scale bytes are set to a
// realistic 2^-7 so results stay finite.
struct WeightSet {
    WeightSet(const Shape & s, int64_t min_total) : shape(s) {
        per                  = weight_bytes(s);
        copies               = std::max<int64_t>(1, (min_total + per - 1) / per);
        const int64_t stride = (per + 63) / 64 * 64;
        buf                  = std::make_unique<Buf>(static_cast<size_t>(stride * copies + 64));
        const int64_t n      = all_rows(s);
        for (int64_t c = 0; c < copies; ++c) {
            uint8_t *     base = buf->p + c * stride + g_misalign;
            const int64_t wb   = s.kind == WKind::fp4    ? n * s.K / 2
                                 : s.kind == WKind::bf16 ? n * s.K * 2
                                                         : n * s.K;
            if (s.kind == WKind::bf16) {  // bf16 values of moderate size
                for (int64_t i = 0; i < n * s.K; ++i) {
                    const uint16_t v = static_cast<uint16_t>(0x3C00 | (base[2 * i] & 0x7F));
                    std::memcpy(base + 2 * i, &v, 2);
                }
            }
            std::memset(base + wb, 120, static_cast<size_t>(per - wb));
            ops.push_back({base, base + wb});
        }
    }
    Shape                shape;
    int64_t              per = 0, copies = 0;
    std::unique_ptr<Buf> buf;
    std::vector<Operand> ops;  // one per copy
};

// Read bandwidth for a DRAM-streaming benchmark: the best probe rate just before it, and the
// paired probe — passes of the best reader between stretches of kPairEvery seconds of products,
// timing paused, so that both rates average the same minutes of this VM's drifting bandwidth.
struct Bandwidth {
    explicit Bandwidth(int t) : threads(t), best(measure_read_bw(t, &reader)), last(now_s()) {}
    void tick(benchmark::State & state) {
        if (now_s() - last <= kPairEvery) return;
        state.PauseTiming();
        dsv4::bench::paired_pass(threads, probe_buf(), reader, &pbytes, &psecs);
        state.ResumeTiming();
        last = now_s();
    }
    // Counters for `bytes` of weights read per iteration.
    void report(benchmark::State & state, double bytes) {
        if (psecs == 0) dsv4::bench::paired_pass(threads, probe_buf(), reader, &pbytes, &psecs);
        const auto rate                = benchmark::Counter::kIsIterationInvariantRate;
        state.counters["GBps"]         = benchmark::Counter(bytes / 1e9, rate);
        state.counters["read_bw_GBps"] = best;
        state.counters["pct_bw"]       = benchmark::Counter(100.0 * bytes / 1e9 / best, rate);
        const double paired            = pbytes / psecs / 1e9;
        state.counters["read_bw_paired_GBps"] = paired;
        state.counters["pct_bw_paired"] = benchmark::Counter(100.0 * bytes / 1e9 / paired, rate);
    }
    int    threads, reader = 0;
    double best, pbytes = 0, psecs = 0, last;
};

// What plain reading code gets on one isolated product here: the same number of bytes read
// by plain code (the probe's 4-lockstep-stream reader, NTA-prefetched 2 KB ahead like the
// kernels' streams) through the same call structure — one parallel region per product, rows
// handed out in the chunks model/linear.hpp uses. What it loses against the probe is the
// per-call cost (fork, join, stream start-up, the last chunk's imbalance), which no kernel
// can win back. Seconds for one call over the matrix at `w`.
double plain_read_call(int threads, const uint8_t * w, const Shape & s) {
    const int64_t rows = all_rows(s), row_bytes = weight_bytes(s) / rows / 64 * 64;
    const auto *  f        = reinterpret_cast<const float *>(w);
    float         part[64] = {};
    const double  t0       = now_s();
    dsv4::threading::parallel_for_dynamic(
        threads, rows, 16, dsv4::model::chunk_rows(row_bytes), [&](int64_t a, int64_t b) {
            part[(a / 16) % 64] += dsv4::bench::probe_detail::read_block(4, f + a * row_bytes / 4,
                                                                         (b - a) * row_bytes / 4);
        });
    const double   dt   = now_s() - t0;
    volatile float sink = 0.0f;
    for (float v : part) sink = sink + v;
    return dt;
}

void bm_gemv(benchmark::State & state, Shape s, int threads, bool hot) {
    WeightSet                       ws(s, hot ? 0 : int64_t(512) << 20);
    const int64_t                   K   = s.K;
    const int64_t                   row = dsv4::kernels::qact_row_bytes(K);
    const int64_t                   n   = all_rows(s);
    Buf                             qa(static_cast<size_t>(row * s.groups));
    std::vector<float>              x(static_cast<size_t>(K * s.groups)), y(static_cast<size_t>(n));
    std::mt19937                    rng(1);
    std::normal_distribution<float> g;
    for (float & v : x) v = g(rng);  // bf16 values are not required for timing
    int64_t copy = 0, calls = 0;
    double  csecs = 0;
    // The L2-resident runs (hot) are compared with the start-up probe; no paired passes.
    std::unique_ptr<Bandwidth> bw = hot ? nullptr : std::make_unique<Bandwidth>(threads);
    // The forward pass's own wrappers (model/linear.hpp): activation rows prepared as the model
    // does, the output rows handed out in chunks from a shared counter.
    const dsv4::model::Ctx ctx{nullptr, g_k, threads};
    // Inside one team, as the forward pass runs its products (--no-team: a region each).
    dsv4::threading::with_team(g_team ? threads : 1, [&] {
        for (auto _ : state) {
            const Operand & op = ws.ops[static_cast<size_t>(copy)];
            copy               = (copy + 1) % ws.copies;
            switch (s.kind) {
                case WKind::fp8:
                    dsv4::model::prep_quant(ctx, qa.p, x.data(), K, K, 1);
                    dsv4::model::lin8_all(ctx, y.data(), n, {op.w, op.scale, n, K}, qa.p, 1);
                    break;
                case WKind::fp8_plain:  // wo_a, as attention.cpp runs it
                    dsv4::threading::parallel_for(
                        threads, s.groups, 1, [&](int64_t g0, int64_t g1) {
                            for (int64_t gi = g0; gi < g1; ++gi)
                                g_k->act_plain(qa.p + gi * row, x.data() + gi * K, K, K, 0, 1);
                        });
                    dsv4::model::lin8_grouped(ctx, y.data(), n, {op.w, op.scale, n, K}, qa.p,
                                              s.groups, 1);
                    break;
                case WKind::fp4:
                    dsv4::model::prep_quant(ctx, qa.p, x.data(), K, K, 1);
                    dsv4::model::lin4_all(ctx, y.data(), n, {op.w, op.scale, n, K}, qa.p, 1);
                    break;
                case WKind::bf16:
                    dsv4::model::gemm_bf16_all(ctx, y.data(), n,
                                               reinterpret_cast<const uint16_t *>(op.w), n, K,
                                               x.data(), K, 1);
                    break;
            }
            benchmark::DoNotOptimize(y.data());
            if (bw) {
                // After each product, untimed, the plain read of the next copy (another matrix
                // from DRAM): the per-call ceiling of the same minutes.
                state.PauseTiming();
                csecs += plain_read_call(threads, ws.ops[static_cast<size_t>(copy)].w, s);
                ++calls;
                state.ResumeTiming();
                bw->tick(state);
            }
        }
    });
    const double bytes = static_cast<double>(weight_bytes(s));
    state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
    if (bw) {
        bw->report(state, bytes);
        const double ceiling                = bytes * calls / csecs / 1e9;
        state.counters["call_ceiling_GBps"] = ceiling;
        state.counters["pct_call_ceiling"]  = benchmark::Counter(
             100.0 * bytes / 1e9 / ceiling, benchmark::Counter::kIsIterationInvariantRate);
    } else {
        const auto rate                = benchmark::Counter::kIsIterationInvariantRate;
        state.counters["GBps"]         = benchmark::Counter(bytes / 1e9, rate);
        state.counters["read_bw_GBps"] = g_bw[threads];
        state.counters["pct_bw"] = benchmark::Counter(100.0 * bytes / 1e9 / g_bw[threads], rate);
    }
}

// wq_a and wkv as the decode runs them: both take the same prepared row, so attention.cpp puts
// them in one parallel call (model::run_rows) — 6 MB per call rather than 4 MB and 2 MB, each
// with its own start-up and last chunk.
void bm_gemv_fused(benchmark::State & state, Shape a, Shape b, int threads) {
    WeightSet                       wa(a, int64_t(256) << 20), wb(b, int64_t(256) << 20);
    const int64_t                   K = a.K;
    Buf                             qa(static_cast<size_t>(dsv4::kernels::qact_row_bytes(K)));
    std::vector<float>              x(static_cast<size_t>(K)), ya(a.N), yb(b.N);
    std::mt19937                    rng(1);
    std::normal_distribution<float> g;
    for (float & v : x) v = g(rng);
    const dsv4::model::Ctx ctx{nullptr, g_k, threads};
    Bandwidth              bw(threads);
    int64_t                ca = 0, cb = 0;
    // Inside one team, as the forward pass runs its products (--no-team: a region each).
    dsv4::threading::with_team(g_team ? threads : 1, [&] {
        for (auto _ : state) {
            const Operand & oa = wa.ops[static_cast<size_t>(ca)];
            const Operand & ob = wb.ops[static_cast<size_t>(cb)];
            ca = (ca + 1) % wa.copies, cb = (cb + 1) % wb.copies;
            const dsv4::kernels::Fp8Mat ma{oa.w, oa.scale, a.N, K}, mb{ob.w, ob.scale, b.N, K};
            dsv4::model::prep_quant(ctx, qa.p, x.data(), K, K, 1);
            const dsv4::model::RowJob jobs[] = {
                dsv4::model::RowJob::lin8(ya.data(), a.N, ma, qa.p, 1),
                dsv4::model::RowJob::lin8(yb.data(), b.N, mb, qa.p, 1)};
            dsv4::model::run_rows(ctx, jobs, 2);
            benchmark::DoNotOptimize(ya.data());
            benchmark::DoNotOptimize(yb.data());
            bw.tick(state);
        }
    });
    const double bytes = static_cast<double>(weight_bytes(a) + weight_bytes(b));
    state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
    bw.report(state, bytes);
}

// bf16 bit patterns of small normal values (exactly representable products; no NaN/Inf).
void fill_bf16(uint16_t * p, int64_t n, uint32_t seed) {
    std::mt19937                    rng(seed);
    std::normal_distribution<float> g(0.0f, 0.5f);
    for (int64_t i = 0; i < n; ++i) {
        const float v = g(rng);
        uint32_t    u;
        std::memcpy(&u, &v, 4);
        p[i] = static_cast<uint16_t>(u >> 16);
    }
}
float bf16_value(uint16_t b) {
    const uint32_t u = static_cast<uint32_t>(b) << 16;
    float          f;
    std::memcpy(&f, &u, 4);
    return f;
}

// ---- MoE decode step (the batched FP4 form) ----------------------------------------------------

// One decode token through the forward pass's own MoE (model::moe_forward) on V4-Flash expert
// shapes (flash-mini's config: dim 4096, moe_inter 2048, 32 routed experts, top 6, one shared
// FP8 expert): the gate, the routing, then the w1/w3 products of the 6 routed FP4 experts and
// the shared expert in one parallel call, the w2 products in another. This is how the decode
// streams its FP4 weights — the single 4 MB `gemv/expert_*` products above are one call each.
// The input cycles through 64 rows, so the routing (and with it the
// experts read) changes from call to call; the 32 experts (403 MB) and the shared expert come
// from DRAM. GBps counts the bytes each call reads: the gate, the k routed experts it selected
// (distinct: top-k) and the shared expert.
void bm_moe_decode(benchmark::State & state, int threads) {
    auto cfgr = dsv4::model::preset_config("flash-mini");
    if (!cfgr.ok()) {
        state.SkipWithError(cfgr.status().to_string().c_str());
        return;
    }
    const dsv4::model::ModelConfig cfg = *cfgr;
    const int64_t                  D = cfg.dim, I = cfg.moe_inter_dim, E = cfg.n_routed_experts;
    const int64_t                  k = cfg.n_activated_experts;
    const int64_t fp4_bytes = I * D / 2 + I * (D / 32);  // one w1, w3 or w2 with its scales
    const int64_t fp8_w = I * D, fp8_s = ((I + 127) / 128) * ((D + 127) / 128);
    const int64_t gate_bytes = E * D * 2;
    const int64_t stride4 = (fp4_bytes + 63) / 64 * 64, stride8 = (fp8_w + fp8_s + 63) / 64 * 64;
    Buf           experts(static_cast<size_t>(3 * E * stride4));
    Buf           shared(static_cast<size_t>(3 * stride8));
    std::vector<uint16_t> gate(static_cast<size_t>(E * D));
    fill_bf16(gate.data(), E * D, 7);
    std::vector<float> bias(static_cast<size_t>(E), 0.0f);

    dsv4::model::BlockWeights b;
    b.desc.hash                 = false;
    dsv4::model::MoeWeights & w = b.ffn;
    w.gate                      = {gate.data(), E, D};
    w.gate_bias                 = bias.data();
    const auto fp4              = [&](int64_t i, int64_t N, int64_t K) {
        uint8_t * p = experts.p + i * stride4;
        std::memset(p + N * K / 2, 120, static_cast<size_t>(N * (K / 32)));  // scales 2^-7
        return dsv4::kernels::Fp4Mat{p, p + N * K / 2, N, K};
    };
    const auto fp8 = [&](int64_t i, int64_t N, int64_t K) {
        uint8_t * p = shared.p + i * stride8;
        std::memset(p + N * K, 120, static_cast<size_t>(fp8_s));
        return dsv4::kernels::Fp8Mat{p, p + N * K, N, K};
    };
    w.experts.resize(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e)
        w.experts[static_cast<size_t>(e)] = {fp4(3 * e, I, D), fp4(3 * e + 1, I, D),
                                             fp4(3 * e + 2, D, I)};
    w.shared_w1 = fp8(0, I, D);
    w.shared_w3 = fp8(1, I, D);
    w.shared_w2 = fp8(2, D, I);

    constexpr int         kInputs = 64;
    std::vector<uint16_t> xb(static_cast<size_t>(kInputs * D));
    fill_bf16(xb.data(), kInputs * D, 8);
    std::vector<float> x(xb.size()), out(static_cast<size_t>(D));
    for (size_t i = 0; i < xb.size(); ++i) x[i] = bf16_value(xb[i]);
    Buf                    scratch(static_cast<size_t>(dsv4::model::moe_scratch_bytes(cfg, 1)));
    const dsv4::model::Ctx ctx{&cfg, g_k, threads};

    Bandwidth bw(threads);
    int64_t   input = 0;
    // Inside one team, as the forward pass runs its products (--no-team: a region each).
    dsv4::threading::with_team(g_team ? threads : 1, [&] {
        for (auto _ : state) {
            dsv4::model::moe_forward(ctx, b, x.data() + input * D, nullptr, 1, out.data(),
                                     scratch.p);
            input = (input + 1) % kInputs;
            benchmark::DoNotOptimize(out.data());
            bw.tick(state);
        }
    });
    const int64_t bytes = gate_bytes + 3 * (fp8_w + fp8_s) + 3 * k * fp4_bytes;
    state.SetBytesProcessed(bytes * state.iterations());
    state.counters["fp4_share_pct"] = 100.0 * static_cast<double>(3 * k * fp4_bytes) / bytes;
    bw.report(state, static_cast<double>(bytes));
}

// ---- GEMM (prefill) --------------------------------------------------------------------------

void bm_gemm(benchmark::State & state, Shape s, int threads, int64_t T) {
    WeightSet                       ws(s, 0);
    const int64_t                   K   = s.K;
    const int64_t                   row = dsv4::kernels::qact_row_bytes(K);
    Buf                             qa(static_cast<size_t>(row * T));
    std::vector<float>              x(static_cast<size_t>(K * T)), y(static_cast<size_t>(s.N * T));
    std::mt19937                    rng(2);
    std::normal_distribution<float> g;
    for (float & v : x) v = g(rng);
    const Operand & op = ws.ops[0];
    for (auto _ : state) {
        dsv4::threading::parallel_for(threads, T, 1, [&](int64_t b, int64_t e) {
            if (s.kind == WKind::fp8_plain)
                g_k->act_plain(qa.p, x.data(), K, K, b, e);
            else if (s.kind != WKind::bf16)
                g_k->act_quant(qa.p, x.data(), K, K, b, e);
        });
        dsv4::threading::parallel_for(threads, s.N, 32, [&](int64_t b, int64_t e) {
            switch (s.kind) {
                case WKind::fp8:
                case WKind::fp8_plain:
                    g_k->lin8(y.data(), s.N, {op.w, op.scale, s.N, K}, qa.p, T, b, e);
                    break;
                case WKind::fp4:
                    g_k->lin4(y.data(), s.N, {op.w, op.scale, s.N, K}, qa.p, T, b, e);
                    break;
                case WKind::bf16:
                    g_k->gemm_bf16(y.data(), s.N, reinterpret_cast<const uint16_t *>(op.w), K,
                                   x.data(), K, K, T, b, e);
                    break;
            }
        });
        benchmark::DoNotOptimize(y.data());
    }
    const double flops = 2.0 * static_cast<double>(s.N) * K * T;
    state.counters["GFLOPs"] =
        benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["fma_peak_GFLOPs"] = g_peak[threads];
    state.counters["pct_peak"]        = benchmark::Counter(100.0 * flops / 1e9 / g_peak[threads],
                                                           benchmark::Counter::kIsIterationInvariantRate);
}

// ---- attention math (indexer scores, sparse attention) ---------------------------------------

// Lightning-indexer scores of one decode step over `blocks` compressed blocks (V4-Flash: 64
// heads × 128), parallel over blocks as in the forward pass. Unless `hot`, the keys cycle through
// copies of >= 256 MiB in all, so they come from DRAM as at long context.
void bm_index_scores(benchmark::State & state, int64_t blocks, int threads, bool hot) {
    constexpr int64_t     ih = 64, ihd = 128;
    const int64_t         per    = blocks * ihd;
    const int64_t         copies = hot ? 1 : std::max<int64_t>(1, (int64_t(256) << 20) / (per * 2));
    std::vector<uint16_t> keys(static_cast<size_t>(per * copies)), qb(ih * ihd);
    fill_bf16(keys.data(), per * copies, 3);
    fill_bf16(qb.data(), ih * ihd, 4);
    std::vector<float> q(ih * ihd), wt(ih, 0.125f), scores(static_cast<size_t>(blocks));
    for (int64_t i = 0; i < ih * ihd; ++i) q[i] = bf16_value(qb[i]);
    int64_t copy = 0;
    for (auto _ : state) {
        const uint16_t * k = keys.data() + copy * per;
        copy               = (copy + 1) % copies;
        dsv4::threading::parallel_for_dynamic(
            threads, blocks, 64, 1024, [&](int64_t c0, int64_t c1) {
                g_k->index_scores(scores.data(), q.data(), wt.data(), k, ih, ihd, c0, c1, true);
            });
        benchmark::DoNotOptimize(scores.data());
    }
    const double flops = 2.0 * static_cast<double>(blocks) * ih * ihd;
    state.counters["GFLOPs"] =
        benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// Sparse attention of one decode step: 64 heads × head_dim 512 over `rows` KV rows (window +
// selected compressed rows), parallel over heads as in the forward pass.
void bm_sparse_attn(benchmark::State & state, int64_t rows, int threads) {
    constexpr int64_t     H = 64, hd = 512;
    std::vector<uint16_t> kv(static_cast<size_t>(rows * hd)), qb(H * hd);
    fill_bf16(kv.data(), rows * hd, 5);
    fill_bf16(qb.data(), H * hd, 6);
    std::vector<float> q(H * hd), out(H * hd), sinks(H, 0.5f);
    for (int64_t i = 0; i < H * hd; ++i) q[i] = bf16_value(qb[i]);
    std::vector<const uint16_t *> ptr(static_cast<size_t>(rows));
    for (int64_t j = 0; j < rows; ++j) ptr[static_cast<size_t>(j)] = kv.data() + j * hd;
    const int64_t sf = dsv4::kernels::attn_scratch_floats(hd);
    Buf           scratch(static_cast<size_t>(H * sf) * sizeof(float));
    const float   scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (auto _ : state) {
        dsv4::threading::parallel_for(threads, H, 1, [&](int64_t h0, int64_t h1) {
            g_k->sparse_attn(out.data(), q.data(), hd, sinks.data(), ptr.data(), rows, hd, scale,
                             {}, h0, h1, reinterpret_cast<float *>(scratch.p) + h0 * sf);
        });
        benchmark::DoNotOptimize(out.data());
    }
    const double flops = 4.0 * static_cast<double>(H) * rows * hd;  // q·k and p·v
    state.counters["GFLOPs"] =
        benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char ** argv) {
    dsv4::CpuArch want = dsv4::CpuArch::automatic;
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], "--arch=", 7) == 0) {
            auto a = dsv4::parse_cpu_arch(argv[i] + 7);
            if (!a.ok()) {
                std::fprintf(stderr, "%s\n", a.status().to_string().c_str());
                return 2;
            }
            want = *a;
            for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
            --argc, --i;
        } else if (std::strcmp(argv[i], "--no-team") == 0) {
            g_team = false;
            for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
            --argc, --i;
        } else if (std::strncmp(argv[i], "--misalign=", 11) == 0) {
            char *     end = nullptr;
            const long v   = std::strtol(argv[i] + 11, &end, 10);
            if (!end || *end || v < 0 || v > 63) {
                std::fprintf(stderr, "--misalign wants 0..63, got '%s'\n", argv[i] + 11);
                return 2;
            }
            g_misalign = v;
            for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
            --argc, --i;
        }
    }
    auto arch = dsv4::resolve_cpu_arch(want);
    if (!arch.ok()) {
        std::fprintf(stderr, "%s\n", arch.status().to_string().c_str());
        return 2;
    }
    g_k = &dsv4::kernels::kernel_table(*arch);
    for (int t = 1; t <= 2; ++t) {
        g_bw[t]   = measure_read_bw(t);
        g_peak[t] = measure_fma_peak(t);
    }
    benchmark::AddCustomContext("kernels", g_k->name);
    benchmark::AddCustomContext("weights_misaligned_by", std::to_string(g_misalign));
    benchmark::AddCustomContext("products_in_one_team", g_team ? "yes" : "no");
    for (int t = 1; t <= 2; ++t) {
        benchmark::AddCustomContext("read_bw_GBps_" + std::to_string(t) + "t",
                                    std::to_string(g_bw[t]));
        benchmark::AddCustomContext("fma_peak_GFLOPs_" + std::to_string(t) + "t",
                                    std::to_string(g_peak[t]));
    }
    for (const Shape & s : kFlash)
        for (int t = 1; t <= 2; ++t)
            benchmark::RegisterBenchmark(
                (std::string("gemv/") + s.name + "/threads:" + std::to_string(t)).c_str(), bm_gemv,
                s, t, false)
                ->UseRealTime()
                ->Unit(benchmark::kMicrosecond);
    for (int t = 1; t <= 2; ++t)
        benchmark::RegisterBenchmark(("gemv/wq_a+wkv/threads:" + std::to_string(t)).c_str(),
                                     bm_gemv_fused, kFlash[0], kFlash[2], t)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
    for (int t = 1; t <= 2; ++t)
        benchmark::RegisterBenchmark(("moe/decode/experts:6/threads:" + std::to_string(t)).c_str(),
                                     bm_moe_decode, t)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
    // Compute ceilings: one small weight set that stays in L2, so the kernel's own instruction
    // throughput is measured without DRAM (what a decode GEMV could reach with a perfect bus).
    for (const Shape & s : {Shape{"fp8_256x4096", WKind::fp8, 256, 4096, 1},
                            Shape{"fp4_256x4096", WKind::fp4, 256, 4096, 1},
                            Shape{"bf16_64x4096", WKind::bf16, 64, 4096, 1}})
        benchmark::RegisterBenchmark((std::string("gemv_hot/") + s.name + "/threads:1").c_str(),
                                     bm_gemv, s, 1, true)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
    for (const Shape & s : kFlash) {
        if (s.kind == WKind::bf16) continue;  // the head is only applied to the last token
        for (int64_t T : {64, 256})
            for (int t = 1; t <= 2; ++t)
                benchmark::RegisterBenchmark((std::string("gemm/") + s.name + "/N:" +
                                              std::to_string(T) + "/threads:" + std::to_string(t))
                                                 .c_str(),
                                             bm_gemm, s, t, T)
                    ->UseRealTime()
                    ->Unit(benchmark::kMillisecond);
    }
    for (int t = 1; t <= 2; ++t) {
        const std::string th = "/threads:" + std::to_string(t);
        benchmark::RegisterBenchmark(("attn/index_scores/blocks:32768" + th).c_str(),
                                     bm_index_scores, 32768, t, false)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("attn/sparse/rows:640" + th).c_str(), bm_sparse_attn, 640, t)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark("attn/index_scores_hot/blocks:4096/threads:1", bm_index_scores,
                                 4096, 1, true)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
