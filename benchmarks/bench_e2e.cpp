// dsv4-bench: end-to-end prefill and decode speed of a checkpoint through the public API
// (Model::load, Session::eval, Session::generate_tokens), against the memory bus measured in
// the same run (issue 8; docs/performance.md "End to end").
//
//   dsv4-bench --model DIR [--json] [--threads 1,2] [--prefill 512,4096]
//              [--contexts 0,4096,32768,131072] [--decode-tokens N] [--batch N]
//              [--warmup N] [--mem-limit-gib G] [--max-fill-s S] [--seed N]
//              [--probe-mib N] [--flash-config FILE]
//
// Per thread count the model is loaded once (LoadOptions.n_threads) and one Session is created
// (max_batch = --batch, n_ctx = the largest context that fits, plus the decode tokens). Then:
//  * warm-up: --warmup random tokens are evaluated and the session is reset, so the mapped
//    weight pages are resident before anything is timed;
//  * decode at context 0: from an empty session, --decode-tokens greedy single-token steps;
//  * prefill: for each --prefill length, from an empty session, eval() of that many random
//    token ids (run internally in chunks of --batch), timed; tok/s = tokens / wall time;
//  * decode at context C > 0: the session is filled to C tokens with eval() on random ids
//    (reusing what the previous step left), then --decode-tokens greedy steps are timed
//    through generate_tokens (each step = one forward of one token + greedy sampling over the
//    vocabulary); tok/s = steps / wall time. Right after, the same steps are timed at context
//    0 in a second, small session ("paired"): the host's bandwidth drifts within minutes and a
//    long fill takes many, so the long/short ratio is taken from the same minute.
// A context that exceeds max_position_embeddings, whose Session would not fit in --mem-limit-gib
// next to the weights, or whose fill would run past --max-fill-s, is skipped with a note.
//
// Weight bytes read per decode token (computed from config.json, see weight_bytes_per_token):
// every tensor of the decoder layers that one token touches — attention projections, norms,
// hyper-connection mixes, compressor and indexer weights, router, shared expert — plus the
// n_activated routed experts (FP4 + scales) of every layer, one row of tid2eid on hash layers,
// one embedding row and the final norm / hc_head / bf16 head. The MTP block is not run by
// Session decoding and is not counted. GBps = those bytes × decode tok/s; pct_bw = GBps / the
// streaming-read bandwidth measured at the same thread count in this run (best of the probes
// before and after the run); pct_bw_paired = GBps / the mean rate of single probe passes (the
// reader that won the first probe, each after an untimed pass) timed between rounds of
// kProbeRound decode steps, before the first and after the last (read_bw_paired_GBps): the host's
// bandwidth drifts by ±20 % within minutes, and this compares the decode with the memory system of
// the same minutes.
//
// Errors: bad arguments → usage on stderr, exit 2; a model that does not load → its Status
// message on stderr, exit 1. Progress goes to stderr; stdout holds only the table or the JSON.
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dsv4/model.hpp"
#include "model/config.hpp"
#include "model/inventory.hpp"
#include "read_probe.hpp"
#include "threading/parallel.hpp"

#ifndef DSV4_FLASH_CONFIG
#define DSV4_FLASH_CONFIG ""
#endif

namespace {

using dsv4::model::ModelConfig;

// V3.2-style dense MLA cache for the 1M comparison: 512 latent + 64 rope values per token and
// layer, bf16, over V3/V3.2's 61 decoder layers (num_hidden_layers of the V3 configs).
constexpr int64_t kMlaValuesPerToken = 576;
constexpr int64_t kMlaBytesPerValue  = 2;
constexpr int64_t kMlaLayers         = 61;
constexpr int64_t kMillionCtx        = 1048576;  // V4's max_position_embeddings

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Decode steps per round between two passes of the paired read probe (time_decode).
constexpr int64_t kProbeRound = 8;

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// ---- arguments ---------------------------------------------------------------------------

struct Args {
    std::string          model;
    bool                 json = false;
    std::vector<int64_t> threads{1, 2};
    std::vector<int64_t> prefill{512, 4096};
    std::vector<int64_t> contexts{0, 4096, 32768, 131072};
    int64_t              decode_tokens = 16;
    int64_t              batch         = 512;
    int64_t              warmup        = 64;
    double               mem_limit_gib = 0;  // 0 = 90 % of MemTotal
    double               max_fill_s    = 1800;
    uint64_t             seed          = 1;
    int64_t              probe_mib     = 512;
    std::string          flash_config  = DSV4_FLASH_CONFIG;
    // --load: auto (the default: mmap, small-page page cache refreshed), mmap or read (weights
    // copied into memory)
    dsv4::WeightLoad load = dsv4::WeightLoad::automatic;
};

void usage() {
    std::fprintf(
        stderr,
        "usage: dsv4-bench --model DIR [--json] [--threads 1,2] [--prefill 512,4096]\n"
        "                  [--contexts 0,4096,32768,131072] [--decode-tokens N] [--batch N]\n"
        "                  [--warmup N] [--mem-limit-gib G] [--max-fill-s S] [--seed N]\n"
        "                  [--probe-mib N] [--flash-config FILE] [--load auto|mmap|read]\n"
        "  --threads       thread counts, each a separate model load (>= 1)\n"
        "  --prefill       prompt lengths timed from an empty session (>= 1)\n"
        "  --contexts      context lengths at which decode is timed (>= 0)\n"
        "  --decode-tokens greedy single-token steps timed per context (default 16)\n"
        "  --batch         SessionOptions.max_batch: prefill chunk (default 512)\n"
        "  --warmup        tokens evaluated once after loading, untimed (default 64; 0 = none)\n"
        "  --mem-limit-gib weights + session must fit (default 90 %% of MemTotal)\n"
        "  --max-fill-s    give up filling a context after this many seconds (default 1800)\n"
        "  --probe-mib     buffer of the read-bandwidth probe (default 512; >> the caches)\n"
        "  --flash-config  V4-Flash config.json for the 1M-token KV comparison\n"
        "  --load          weights mapped from the files (auto, the default, drops a page cache\n"
        "                  held in small pages first; mmap maps as it is) or read into memory\n");
}

bool parse_int(std::string_view s, int64_t lo, int64_t * out) {
    int64_t v    = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < lo) return false;
    *out = v;
    return true;
}

bool parse_list(std::string_view s, int64_t lo, std::vector<int64_t> * out) {
    out->clear();
    while (true) {
        const size_t comma = s.find(',');
        int64_t      v     = 0;
        if (!parse_int(s.substr(0, comma), lo, &v)) return false;
        out->push_back(v);
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    std::sort(out->begin(), out->end());
    out->erase(std::unique(out->begin(), out->end()), out->end());
    return true;
}

bool parse_double(std::string_view s, double lo, double * out) {
    const std::string str(s);
    char *            end = nullptr;
    const double      v   = std::strtod(str.c_str(), &end);
    if (str.empty() || end != str.c_str() + str.size() || !std::isfinite(v) || v < lo) return false;
    *out = v;
    return true;
}

// Returns false (after printing why) on a bad command line.
bool parse_args(int argc, char ** argv, Args * a) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view k = argv[i];
        if (k == "--json") {
            a->json = true;
            continue;
        }
        if (k == "--help" || k == "-h") return false;
        if (i + 1 >= argc) {
            std::fprintf(stderr, "dsv4-bench: %s needs a value\n", argv[i]);
            return false;
        }
        const std::string_view v  = argv[++i];
        bool                   ok = true;
        int64_t                n  = 0;
        if (k == "--model") {
            a->model = std::string(v);
            ok       = !v.empty();
        } else if (k == "--threads") {
            ok = parse_list(v, 1, &a->threads);
        } else if (k == "--prefill") {
            ok = parse_list(v, 1, &a->prefill);
        } else if (k == "--contexts") {
            ok = parse_list(v, 0, &a->contexts);
        } else if (k == "--decode-tokens") {
            ok = parse_int(v, 1, &a->decode_tokens);
        } else if (k == "--batch") {
            ok = parse_int(v, 1, &a->batch) && a->batch <= (int64_t{1} << 20);
        } else if (k == "--warmup") {
            ok = parse_int(v, 0, &a->warmup);
        } else if (k == "--seed") {
            ok      = parse_int(v, 0, &n);
            a->seed = static_cast<uint64_t>(n);
        } else if (k == "--mem-limit-gib") {
            ok = parse_double(v, 0.0, &a->mem_limit_gib);
        } else if (k == "--max-fill-s") {
            ok = parse_double(v, 0.0, &a->max_fill_s);
        } else if (k == "--probe-mib") {
            ok = parse_int(v, 1, &a->probe_mib) && a->probe_mib <= 65536;
        } else if (k == "--flash-config") {
            a->flash_config = std::string(v);
        } else if (k == "--load") {
            ok      = v == "auto" || v == "mmap" || v == "read";
            a->load = v == "read"   ? dsv4::WeightLoad::read
                      : v == "mmap" ? dsv4::WeightLoad::mmap
                                    : dsv4::WeightLoad::automatic;
        } else {
            std::fprintf(stderr, "dsv4-bench: unknown option %s\n", argv[i - 1]);
            return false;
        }
        if (!ok) {
            std::fprintf(stderr, "dsv4-bench: bad value '%s' for %s\n", argv[i], argv[i - 1]);
            return false;
        }
    }
    if (a->model.empty()) {
        std::fprintf(stderr, "dsv4-bench: --model is required\n");
        return false;
    }
    for (int64_t t : a->threads)
        if (t > 1024) {
            std::fprintf(stderr, "dsv4-bench: --threads %lld is too many\n",
                         static_cast<long long>(t));
            return false;
        }
    return true;
}

// ---- machine -----------------------------------------------------------------------------

// Streaming-read probe (benchmarks/read_probe.hpp), on a buffer of `mib` MiB that exists only
// while it runs.
double measure_read_bw(int threads, int64_t mib) {
    const dsv4::bench::HugeBuf buf(static_cast<size_t>(mib) << 20);
    return dsv4::bench::measure_read_bw(threads, buf);
}

uint64_t meminfo_bytes(const char * key) {
    std::ifstream f("/proc/meminfo");
    std::string   line;
    const size_t  klen = std::strlen(key);
    while (std::getline(f, line))
        if (line.compare(0, klen, key) == 0 && line.size() > klen && line[klen] == ':')
            return std::strtoull(line.c_str() + klen + 1, nullptr, 10) * 1024;
    return 0;
}

std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string   line;
    while (std::getline(f, line))
        if (line.rfind("model name", 0) == 0) {
            const size_t c = line.find(':');
            if (c != std::string::npos && c + 2 <= line.size()) return line.substr(c + 2);
        }
    return "unknown";
}

// User + system CPU seconds of this process (all its threads). On a machine shared with other
// work, steps × threads / CPU seconds estimates the rate without the time spent descheduled.
double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double load_average() {
    std::ifstream f("/proc/loadavg");
    double        l = NAN;
    f >> l;
    return l;
}

uint64_t peak_rss_bytes() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<uint64_t>(u.ru_maxrss) * 1024;  // Linux: kilobytes
}

// ---- bytes per decode token --------------------------------------------------------------

struct WeightBytes {
    double embed_row  = 0;  // one bf16 row of embed.weight
    double attention  = 0;  // attn.{wq_a,wq_b,wkv,wo_a,wo_b} (+scales), q/kv norms, sinks
    double compressor = 0;  // attn.compressor.* and attn.indexer.* (ratio 4/128 layers)
    double hc_norms   = 0;  // hc_{attn,ffn}_*, attn_norm, ffn_norm
    double router     = 0;  // ffn.gate.weight + bias, or one tid2eid row on hash layers
    double shared     = 0;  // ffn.shared_experts.* (FP8 + scales)
    double routed     = 0;  // n_activated × (w1, w2, w3 FP4 + scales) per layer
    double head       = 0;  // head.weight (bf16) + norm.weight + hc_head_*
    double total() const {
        return embed_row + attention + compressor + hc_norms + router + shared + routed + head;
    }
};

bool has(std::string_view s, std::string_view part) {
    return s.find(part) != std::string_view::npos;
}

// From the checkpoint inventory (model/inventory.hpp), i.e. from config.json alone: every
// expert of a layer has the same size, so the routed part is (all experts) × n_act / E.
WeightBytes weight_bytes_per_token(const ModelConfig & cfg) {
    WeightBytes  w;
    const double act_frac = static_cast<double>(cfg.n_activated_experts) / cfg.n_routed_experts;
    for (const auto & t : dsv4::model::expected_tensors(cfg)) {
        const std::string_view n = t.name;
        const double           b = static_cast<double>(t.bytes());
        if (n.rfind("mtp.", 0) == 0) continue;  // MTP is not run by Session decoding
        if (n == "embed.weight") {
            w.embed_row = static_cast<double>(cfg.dim) * 2;
        } else if (n.rfind("layers.", 0) != 0) {
            w.head += b;  // head.weight, norm.weight, hc_head_*
        } else if (has(n, ".ffn.experts.")) {
            w.routed += b * act_frac;
        } else if (has(n, ".ffn.shared_experts.")) {
            w.shared += b;
        } else if (has(n, ".ffn.gate.tid2eid")) {
            w.router += static_cast<double>(cfg.n_activated_experts) * 8;
        } else if (has(n, ".ffn.gate.")) {
            w.router += b;
        } else if (has(n, ".attn.compressor.") || has(n, ".attn.indexer.")) {
            w.compressor += b;
        } else if (has(n, ".attn.")) {
            w.attention += b;
        } else {
            w.hc_norms += b;  // hc_attn_*, hc_ffn_*, attn_norm, ffn_norm
        }
    }
    return w;
}

// KV-state bytes one decode step reads at context C (an estimate from the attention layout of
// spec §3.9, not a measurement): per layer the window rows min(C, window); ratio-4 layers all
// C/4 indexer keys plus top-k compressed rows; ratio-128 layers all C/128 compressed rows.
double kv_read_bytes(const ModelConfig & cfg, int64_t ctx) {
    double b = 0;
    for (int id = 0; id < cfg.n_layers; ++id) {
        const int r = cfg.ratio(id);
        b += static_cast<double>(std::min<int64_t>(ctx, cfg.window_size)) * cfg.head_dim * 2;
        if (r == 4) {
            b += static_cast<double>(ctx / 4) * cfg.index_head_dim * 2;
            b += static_cast<double>(std::min<int64_t>(ctx / 4, cfg.index_topk)) * cfg.head_dim * 2;
        } else if (r == 128) {
            b += static_cast<double>(ctx / 128) * cfg.head_dim * 2;
        }
    }
    return b;
}

// ---- runs --------------------------------------------------------------------------------

struct PrefillRow {
    int64_t tokens = 0;
    double  s = 0, cpu = 0;
};
struct DecodeRow {
    int64_t context = 0, steps = 0;
    double  s = 0, cpu = 0, kv_read = 0;
    // Context > 0: the same number of steps at context 0 in a second, empty session, timed
    // right after (0 steps if that failed): the short-context rate in the same minute.
    int64_t short_steps = 0;
    double  short_s     = 0;
    // Paired probe: single passes of the best probe reader timed between rounds of these decode
    // steps (before the first, between rounds, after the last): bytes and seconds in all.
    double probe_bytes = 0, probe_s = 0;
    double paired_bw() const { return probe_s > 0 ? probe_bytes / probe_s / 1e9 : NAN; }
};
struct Skip {
    std::string what;  // "context 131072" / "prefill 4096"
    std::string why;
};
struct Run {
    int                     threads = 0;
    dsv4::ModelInfo         info;
    double                  bw_before = 0, bw_after = 0, load_s = 0;
    double                  loadavg_before = NAN, loadavg_after = NAN;
    int64_t                 session_ctx   = 0;
    uint64_t                session_bytes = 0, peak_rss = 0;
    std::vector<PrefillRow> prefill;
    std::vector<DecodeRow>  decode;
    std::vector<Skip>       skipped;
    double                  bw() const { return std::max(bw_before, bw_after); }
};

class Bench {
  public:
    Bench(const Args & a, const ModelConfig & cfg, uint64_t mem_limit)
        : a_(a), cfg_(cfg), mem_limit_(mem_limit), rng_(a.seed) {}

    // Returns false (after printing the Status) when the model does not load.
    bool run(int threads, Run * r) {
        r->threads        = threads;
        r->loadavg_before = load_average();
        bool ok           = run_model(threads, r);
        probe_.reset();
        r->loadavg_after = load_average();
        r->peak_rss      = peak_rss_bytes();
        if (!ok) return false;
        r->bw_after = measure_read_bw(threads, a_.probe_mib);
        return true;
    }

  private:
    template <class... T>
    void note(const char * fmt, T... v) const {
        std::fprintf(stderr, "[dsv4-bench] ");
        std::fprintf(stderr, fmt, v...);
        std::fprintf(stderr, "\n");
    }

    std::vector<int32_t> random_tokens(int64_t n) {
        std::uniform_int_distribution<int32_t> d(0, cfg_.vocab_size - 1);
        std::vector<int32_t>                   v(static_cast<size_t>(n));
        for (auto & t : v) t = d(rng_);
        return v;
    }

    // Why a session of n_ctx tokens cannot be used, or "" when it can.
    std::string infeasible(const dsv4::Model & m, int64_t n_ctx) const {
        const int64_t maxpos = cfg_.max_position_embeddings;
        if (maxpos > 0 && n_ctx > maxpos)
            return "needs " + std::to_string(n_ctx) + " positions > max_position_embeddings " +
                   std::to_string(maxpos);
        dsv4::SessionOptions o;
        o.n_ctx             = n_ctx;
        o.max_batch         = static_cast<int32_t>(a_.batch);
        const uint64_t need = m.info().weight_bytes + m.session_bytes(o);
        if (need > mem_limit_) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "weights + session = %.2f GiB > memory limit %.2f GiB",
                          need / kGiB, mem_limit_ / kGiB);
            return buf;
        }
        return "";
    }

    bool run_model(int threads, Run * r) {
        dsv4::LoadOptions lo;
        lo.n_threads    = threads;
        lo.weight_load  = a_.load;
        const double t0 = now_s();
        auto         m  = dsv4::Model::load(a_.model, lo);
        if (!m.ok()) {
            std::fprintf(stderr, "dsv4-bench: %s\n", m.status().to_string().c_str());
            return false;
        }
        r->load_s = now_s() - t0;
        r->info   = m->info();
        // After the load (mapping reads no weight byte), before the session exists.
        note("threads %d: measuring read bandwidth", threads);
        // Kept while the model runs: the paired probe passes of time_decode read it again.
        probe_   = std::make_unique<dsv4::bench::HugeBuf>(static_cast<size_t>(a_.probe_mib) << 20);
        threads_ = threads;
        r->bw_before = dsv4::bench::measure_read_bw(threads, *probe_, &probe_reader_);

        // One session for everything: sized for the largest prefill / context that fits.
        const int64_t        steps = a_.decode_tokens;
        std::vector<int64_t> prefill, contexts;
        int64_t              n_ctx = std::max<int64_t>(a_.warmup, steps + 1);
        for (int64_t p : a_.prefill) {
            const std::string why = infeasible(*m, std::max(p, n_ctx));
            if (!why.empty()) {
                r->skipped.push_back({"prefill " + std::to_string(p), why});
                continue;
            }
            prefill.push_back(p);
            n_ctx = std::max(n_ctx, p);
        }
        for (int64_t c : a_.contexts) {
            const std::string why = infeasible(*m, std::max(c + steps + 1, n_ctx));
            if (!why.empty()) {
                r->skipped.push_back({"context " + std::to_string(c), why});
                continue;
            }
            contexts.push_back(c);
            n_ctx = std::max(n_ctx, c + steps + 1);
        }
        dsv4::SessionOptions so;
        so.n_ctx         = n_ctx;
        so.max_batch     = static_cast<int32_t>(a_.batch);
        r->session_ctx   = n_ctx;
        r->session_bytes = m->session_bytes(so);
        auto s           = m->new_session(so);
        if (!s.ok()) {
            for (int64_t p : prefill)
                r->skipped.push_back({"prefill " + std::to_string(p), s.status().to_string()});
            for (int64_t c : contexts)
                r->skipped.push_back({"context " + std::to_string(c), s.status().to_string()});
            return true;
        }
        dsv4::Session &              S = *s;
        std::optional<dsv4::Session> S0;  // context-0 reference for the longer contexts
        note("threads %d: loaded in %.2f s; session n_ctx %lld (%.2f GiB)", threads, r->load_s,
             static_cast<long long>(n_ctx), r->session_bytes / kGiB);

        if (a_.warmup > 0) {
            auto w = S.eval(random_tokens(a_.warmup));
            if (!w.ok()) note("warm-up failed: %s", w.status().to_string().c_str());
            (void)S.reset();
        }

        // Decode at context 0 first (empty session), then the prefills (ascending; the last
        // leaves its tokens in the session), then the longer contexts on top of that.
        size_t ci = 0;
        if (!contexts.empty() && contexts[0] == 0) {
            decode_at(S, 0, r);
            ci = 1;
        }
        for (int64_t p : prefill) {
            (void)S.reset();
            const auto   toks = random_tokens(p);
            const double c1   = cpu_seconds();
            const double t1   = now_s();
            auto         e    = S.eval(toks);
            const double dt   = now_s() - t1;
            const double cpu  = cpu_seconds() - c1;
            if (!e.ok()) {
                r->skipped.push_back({"prefill " + std::to_string(p), e.status().to_string()});
                continue;
            }
            r->prefill.push_back({p, dt, cpu});
            note("threads %d: prefill %lld tokens: %.2f s (%.1f tok/s)", threads,
                 static_cast<long long>(p), dt, p / dt);
        }
        for (; ci < contexts.size(); ++ci) {
            const int64_t c = contexts[ci];
            if (S.n_past() > c) (void)S.reset();
            std::string why = fill(S, c, threads);
            if (!why.empty()) {
                // Larger contexts would need even longer: skip them all.
                for (size_t k = ci; k < contexts.size(); ++k)
                    r->skipped.push_back({"context " + std::to_string(contexts[k]), why});
                break;
            }
            if (!decode_at(S, c, r)) continue;
            // The host's bandwidth drifts by ±20 % within minutes and a long fill takes many:
            // time context 0 again now, in a small second session, for a same-minute ratio.
            if (!S0) {
                dsv4::SessionOptions o0;
                o0.n_ctx     = steps + 2;
                o0.max_batch = 1;
                auto s0      = m->new_session(o0);
                if (!s0.ok()) {
                    note("no paired short-context session: %s", s0.status().to_string().c_str());
                    continue;
                }
                S0.emplace(std::move(*s0));
            }
            (void)S0->reset();
            int64_t   done = 0;
            double    secs = 0, cpu = 0;
            DecodeRow unused;  // the long context's row keeps its own paired probe
            if (time_decode(*S0, &done, &secs, &cpu, &unused).empty() && done > 0) {
                r->decode.back().short_steps = done;
                r->decode.back().short_s     = secs;
                note("threads %d: paired decode at context 0: %.2f tok/s", threads, done / secs);
            }
        }
        return true;
    }

    // Fills the session to exactly `target` tokens; returns why it could not.    // Gives up as
    // soon as the time so far plus the rest at the rate so far (an optimistic estimate: later
    // tokens attend to more context) exceeds --max-fill-s.
    std::string fill(dsv4::Session & S, int64_t target, int threads) {
        const double  t0    = now_s();
        const int64_t start = S.n_past();
        const int64_t chunk = std::max<int64_t>(a_.batch, 4096) / a_.batch * a_.batch;
        while (S.n_past() < target) {
            const int64_t n = std::min(chunk, target - S.n_past());
            auto          e = S.eval(random_tokens(n));
            if (!e.ok()) return "filling the cache: " + e.status().to_string();
            const double el = now_s() - t0;
            note("threads %d: filled %lld / %lld tokens (%.0f s)", threads,
                 static_cast<long long>(S.n_past()), static_cast<long long>(target), el);
            const double rate = static_cast<double>(S.n_past() - start) / el;
            const double est  = el + static_cast<double>(target - S.n_past()) / rate;
            if (S.n_past() < target && est > a_.max_fill_s) {
                char buf[200];
                std::snprintf(buf, sizeof buf,
                              "filling stopped at %lld tokens after %.0f s: at %.1f tok/s the "
                              "fill would take >= %.0f s (--max-fill-s %.0f)",
                              static_cast<long long>(S.n_past()), el, rate, est, a_.max_fill_s);
                return buf;
            }
        }
        return "";
    }

    // One paired probe pass (read_probe.hpp) with the best reader of this run's first probe.
    void probe_pass(DecodeRow * row) const {
        if (probe_)
            dsv4::bench::paired_pass(threads_, *probe_, probe_reader_, &row->probe_bytes,
                                     &row->probe_s);
    }

    // Times decode_tokens greedy steps on top of the current state; returns why it failed
    // ("" on success). Each generate_tokens call runs the new prompt token (one single-token
    // forward) and then max_tokens - 1 more, so the forwards of one call equal its
    // generated_tokens; an early EOS just means another call (the prompt then extends the
    // history again). Calls are rounds of at most kProbeRound steps with a paired probe pass
    // (untimed here, added to *paired) before each round and after the last.
    std::string time_decode(dsv4::Session & S, int64_t * done, double * secs, double * cpu,
                            DecodeRow * paired) {
        dsv4::GenerateOptions go;
        go.sampling.temperature = 0.0f;  // greedy
        while (*done < a_.decode_tokens) {
            std::vector<int32_t> prompt = S.tokens();
            prompt.push_back(random_tokens(1)[0]);
            probe_pass(paired);
            go.max_tokens   = static_cast<int32_t>(std::min(kProbeRound, a_.decode_tokens - *done));
            const double c0 = cpu_seconds();
            const double t0 = now_s();
            auto         g  = S.generate_tokens(prompt, go, nullptr);
            *secs += now_s() - t0;
            *cpu += cpu_seconds() - c0;
            if (!g.ok()) return g.status().to_string();
            *done += g->stats.generated_tokens;
            if (g->stats.generated_tokens == 0 ||
                g->stats.stop_reason == dsv4::StopReason::context_full)
                break;
        }
        probe_pass(paired);
        return "";
    }

    // Decode at context ctx (the session holds ctx tokens); false if nothing was timed.
    bool decode_at(dsv4::Session & S, int64_t ctx, Run * r) {
        int64_t           done = 0;
        double            secs = 0, cpu = 0;
        DecodeRow         row;
        const std::string why = time_decode(S, &done, &secs, &cpu, &row);
        if (!why.empty()) {
            r->skipped.push_back({"context " + std::to_string(ctx), why});
            return false;
        }
        if (done == 0) return false;
        row.context = ctx;
        row.steps   = done;
        row.s       = secs;
        row.cpu     = cpu;
        row.kv_read = kv_read_bytes(cfg_, ctx);
        r->decode.push_back(row);
        note("threads %d: decode at context %lld: %lld steps in %.3f s (%.2f tok/s)", r->threads,
             static_cast<long long>(ctx), static_cast<long long>(done), secs, done / secs);
        return true;
    }

    const Args &        a_;
    const ModelConfig & cfg_;
    uint64_t            mem_limit_;
    std::mt19937_64     rng_;
    // Paired probe: the buffer of the run's first probe, kept while the model runs, the reader
    // that probe found best, and the run's thread count.
    std::unique_ptr<dsv4::bench::HugeBuf> probe_;
    int                                   probe_reader_ = 0;
    int                                   threads_      = 1;
};

// ---- output ------------------------------------------------------------------------------

std::string jnum(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[40];
    if (std::floor(v) == v && std::fabs(v) < 9e15)
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    else
        std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

std::string jstr(std::string_view s) {
    std::string o = "\"";
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            o += '\\';
            o += ch;
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            o += buf;
        } else {
            o += ch;
        }
    }
    return o + "\"";
}

struct Kv1M {
    bool        ok = false;
    std::string note;
    int         flash_layers = 0;
    double      flash_bytes = 0, flash_per_token = 0, dense_bytes = 0;
    WeightBytes flash_weights;  // bytes one V4-Flash decode token reads (same formula)
};

Kv1M kv_1m(const std::string & flash_config) {
    Kv1M k;
    k.dense_bytes =
        static_cast<double>(kMillionCtx * kMlaValuesPerToken * kMlaBytesPerValue * kMlaLayers);
    if (flash_config.empty()) {
        k.note = "no --flash-config given";
        return k;
    }
    auto c = dsv4::model::load_config(flash_config);
    if (!c.ok()) {
        k.note = c.status().to_string();
        return k;
    }
    k.ok           = true;
    k.flash_layers = c->n_layers;
    k.flash_bytes  = static_cast<double>(
        dsv4::model::kv_cache_size(*c, kMillionCtx, /*include_mtp=*/false).total());
    k.flash_per_token = dsv4::model::kv_cache_bytes_per_token(*c);
    k.flash_weights   = weight_bytes_per_token(*c);
    return k;
}

struct Report {
    const Args *        a   = nullptr;
    const ModelConfig * cfg = nullptr;
    dsv4::ModelInfo     info;
    WeightBytes         wb;
    double              kv_per_token = 0;
    Kv1M                kv1m;
    uint64_t            mem_total = 0, mem_limit = 0;
    std::string         cpu;
    std::vector<Run>    runs;
};

void print_json(const Report & R) {
    std::ostringstream  o;
    const WeightBytes & w = R.wb;
    o << "{\n  \"tool\": \"dsv4-bench\",\n  \"model\": " << jstr(R.a->model) << ",\n";
    o << "  \"config\": {\"n_layers\": " << R.cfg->n_layers << ", \"dim\": " << R.cfg->dim
      << ", \"vocab_size\": " << R.cfg->vocab_size
      << ", \"n_routed_experts\": " << R.cfg->n_routed_experts
      << ", \"n_activated_experts\": " << R.cfg->n_activated_experts
      << ", \"max_position_embeddings\": " << R.cfg->max_position_embeddings
      << ", \"checkpoint_bytes\": " << jnum(static_cast<double>(R.info.weight_bytes)) << "},\n";
    o << "  \"machine\": {\"cpu\": " << jstr(R.cpu)
      << ", \"kernels\": " << jstr(dsv4::cpu_arch_name(R.info.cpu_arch))
      << ", \"hardware_threads\": " << std::thread::hardware_concurrency()
      << ", \"mem_total_bytes\": " << jnum(static_cast<double>(R.mem_total))
      << ", \"mem_limit_bytes\": " << jnum(static_cast<double>(R.mem_limit))
      << ", \"read_bw_GBps\": {";
    for (size_t i = 0; i < R.runs.size(); ++i)
        o << (i ? ", " : "") << "\"" << R.runs[i].threads << "\": " << jnum(R.runs[i].bw());
    o << "}},\n";
    o << "  \"weight_bytes_per_token\": " << jnum(w.total()) << ",\n";
    o << "  \"weight_bytes_per_token_parts\": {\"embed_row\": " << jnum(w.embed_row)
      << ", \"attention\": " << jnum(w.attention)
      << ", \"compressor_indexer\": " << jnum(w.compressor)
      << ", \"hc_norms\": " << jnum(w.hc_norms) << ", \"router\": " << jnum(w.router)
      << ", \"shared_expert\": " << jnum(w.shared) << ", \"routed_experts\": " << jnum(w.routed)
      << ", \"head\": " << jnum(w.head) << "},\n";
    o << "  \"weight_load\": "
      << jstr(R.a->load == dsv4::WeightLoad::read   ? "read"
              : R.a->load == dsv4::WeightLoad::mmap ? "mmap"
                                                    : "auto")
      << ",\n";
    o << "  \"kv_bytes_per_token\": " << jnum(R.kv_per_token) << ",\n";
    o << "  \"decode_tokens\": " << R.a->decode_tokens << ",\n  \"batch\": " << R.a->batch << ",\n";
    o << "  \"runs\": [";
    for (size_t i = 0; i < R.runs.size(); ++i) {
        const Run & r = R.runs[i];
        o << (i ? ",\n" : "\n") << "    {\"threads\": " << r.threads
          << ", \"read_bw_GBps\": " << jnum(r.bw())
          << ", \"read_bw_before_GBps\": " << jnum(r.bw_before)
          << ", \"read_bw_after_GBps\": " << jnum(r.bw_after)
          << ", \"loadavg_before\": " << jnum(r.loadavg_before)
          << ", \"loadavg_after\": " << jnum(r.loadavg_after) << ", \"load_s\": " << jnum(r.load_s)
          << ", \"session_n_ctx\": " << r.session_ctx
          << ", \"session_bytes\": " << jnum(static_cast<double>(r.session_bytes))
          << ", \"peak_rss_bytes\": " << jnum(static_cast<double>(r.peak_rss)) << ",\n";
        o << "     \"prefill\": [";
        for (size_t j = 0; j < r.prefill.size(); ++j) {
            const PrefillRow & p = r.prefill[j];
            o << (j ? ", " : "") << "{\"tokens\": " << p.tokens << ", \"seconds\": " << jnum(p.s)
              << ", \"prefill_tok_s\": " << jnum(p.tokens / p.s)
              << ", \"cpu_seconds\": " << jnum(p.cpu)
              << ", \"prefill_tok_s_cpu_time\": " << jnum(p.tokens * r.threads / p.cpu) << "}";
        }
        o << "],\n     \"decode\": [";
        for (size_t j = 0; j < r.decode.size(); ++j) {
            const DecodeRow & d    = r.decode[j];
            const double      tps  = d.steps / d.s;
            const double      gbps = w.total() * tps / 1e9;
            o << (j ? ",\n                " : "") << "{\"context\": " << d.context
              << ", \"steps\": " << d.steps << ", \"seconds\": " << jnum(d.s)
              << ", \"decode_tok_s\": " << jnum(tps)
              << ", \"ms_per_token\": " << jnum(1e3 * d.s / d.steps) << ", \"GBps\": " << jnum(gbps)
              << ", \"pct_bw\": " << jnum(r.bw() > 0 ? 100.0 * gbps / r.bw() : NAN)
              << ", \"read_bw_paired_GBps\": " << jnum(d.paired_bw())
              << ", \"pct_bw_paired\": " << jnum(100.0 * gbps / d.paired_bw())
              << ", \"cpu_seconds\": " << jnum(d.cpu)
              << ", \"decode_tok_s_cpu_time\": " << jnum(d.steps * r.threads / d.cpu)
              << ", \"kv_read_bytes_per_token_est\": " << jnum(d.kv_read)
              << ", \"paired_short_decode_tok_s\": "
              << jnum(d.short_steps ? d.short_steps / d.short_s : NAN)
              << ", \"pct_of_paired_short\": "
              << jnum(d.short_steps ? 100.0 * tps / (d.short_steps / d.short_s) : NAN) << "}";
        }
        o << "],\n     \"skipped\": [";
        for (size_t j = 0; j < r.skipped.size(); ++j)
            o << (j ? ", " : "") << "{\"what\": " << jstr(r.skipped[j].what)
              << ", \"why\": " << jstr(r.skipped[j].why) << "}";
        o << "]}";
    }
    o << "\n  ],\n";
    const Kv1M & k = R.kv1m;
    o << "  \"kv_1m\": {\"context\": " << kMillionCtx
      << ", \"flash_config\": " << jstr(R.a->flash_config)
      << ", \"flash_layers\": " << k.flash_layers
      << ", \"flash_kv_bytes_per_token\": " << jnum(k.ok ? k.flash_per_token : NAN)
      << ", \"flash_weight_bytes_per_token\": " << jnum(k.ok ? k.flash_weights.total() : NAN)
      << ", \"dense_mla_layers\": " << kMlaLayers
      << ", \"dense_mla_bytes_per_token_per_layer\": " << kMlaValuesPerToken * kMlaBytesPerValue
      << ", \"note\": " << jstr(k.note) << "},\n";
    o << "  \"kv_1m_flash_bytes\": " << jnum(k.ok ? k.flash_bytes : NAN) << ",\n";
    o << "  \"kv_1m_dense_mla_bytes\": " << jnum(k.dense_bytes) << ",\n";
    o << "  \"kv_ratio\": " << jnum(k.ok ? k.flash_bytes / k.dense_bytes : NAN) << "\n}\n";
    std::fputs(o.str().c_str(), stdout);
}

void print_table(const Report & R, FILE * f) {
    const WeightBytes & w = R.wb;
    std::fprintf(f, "dsv4-bench  %s\n", R.a->model.c_str());
    std::fprintf(f,
                 "model: %d layers, dim %d, vocab %d, %d experts top-%d; checkpoint %.2f GB; "
                 "kernels %s\n",
                 R.cfg->n_layers, R.cfg->dim, R.cfg->vocab_size, R.cfg->n_routed_experts,
                 R.cfg->n_activated_experts, R.info.weight_bytes / 1e9,
                 dsv4::cpu_arch_name(R.info.cpu_arch));
    std::fprintf(f, "machine: %s, %u hardware threads, %.1f GiB RAM (limit %.1f GiB)\n",
                 R.cpu.c_str(), std::thread::hardware_concurrency(), R.mem_total / kGiB,
                 R.mem_limit / kGiB);
    std::fprintf(f,
                 "weight bytes per decode token: %.1f MB = attention %.1f + compressor/indexer "
                 "%.1f + hc/norms %.1f + router %.2f + shared %.1f + routed %.1f + head %.1f + "
                 "embed row %.3f\n",
                 w.total() / 1e6, w.attention / 1e6, w.compressor / 1e6, w.hc_norms / 1e6,
                 w.router / 1e6, w.shared / 1e6, w.routed / 1e6, w.head / 1e6, w.embed_row / 1e6);
    std::fprintf(f, "KV bytes per context token: %.0f\n\n", R.kv_per_token);

    std::fprintf(f, "%-8s %-10s %-9s %-12s %-11s %-13s\n", "threads", "read GB/s", "load s",
                 "load avg", "session GiB", "peak RSS GiB");
    for (const Run & r : R.runs)
        std::fprintf(f, "%-8d %-10.1f %-9.2f %-12s %-11.2f %-13.2f\n", r.threads, r.bw(), r.load_s,
                     (jnum(std::round(r.loadavg_before * 10) / 10) + "-" +
                      jnum(std::round(r.loadavg_after * 10) / 10))
                         .c_str(),
                     r.session_bytes / kGiB, r.peak_rss / kGiB);
    std::fprintf(f, "\n%-8s %-9s %-10s %-9s %-12s\n", "threads", "prefill", "tok/s", "seconds",
                 "tok/s (cpu)");
    for (const Run & r : R.runs)
        for (const PrefillRow & p : r.prefill)
            std::fprintf(f, "%-8d %-9lld %-10.1f %-9.2f %-12.1f\n", r.threads,
                         static_cast<long long>(p.tokens), p.tokens / p.s, p.s,
                         p.tokens * r.threads / p.cpu);
    std::fprintf(f, "\n%-8s %-9s %-9s %-9s %-8s %-7s %-15s %-12s %-11s %-s\n", "threads", "context",
                 "tok/s", "ms/tok", "GB/s", "% bw", "% paired bw", "tok/s (cpu)", "KV read MB",
                 "% of context 0 (paired)");
    for (const Run & r : R.runs)
        for (const DecodeRow & d : r.decode) {
            const double tps = d.steps / d.s, gbps = w.total() * tps / 1e9;
            char         paired[48] = "";
            if (d.short_steps)
                std::snprintf(paired, sizeof paired, "%.1f (%.2f tok/s)",
                              100.0 * tps / (d.short_steps / d.short_s), d.short_steps / d.short_s);
            char pbw[40] = "-";
            if (d.probe_s > 0)
                std::snprintf(pbw, sizeof pbw, "%.1f (%.1f)", 100.0 * gbps / d.paired_bw(),
                              d.paired_bw());
            std::fprintf(f, "%-8d %-9lld %-9.2f %-9.1f %-8.1f %-7.1f %-15s %-12.2f %-11.1f %s\n",
                         r.threads, static_cast<long long>(d.context), tps, 1e3 / tps, gbps,
                         r.bw() > 0 ? 100.0 * gbps / r.bw() : 0.0, pbw, d.steps * r.threads / d.cpu,
                         d.kv_read / 1e6, paired);
        }
    std::fprintf(f,
                 "(%% bw: of the best probe pass before/after the run; %% paired bw (GB/s): of the "
                 "mean of probe passes interleaved with the timed steps, every %lld steps; "
                 "tok/s (cpu) = tokens x threads / process CPU seconds: the rate without the "
                 "time spent descheduled on a shared machine, an estimate)\n",
                 static_cast<long long>(kProbeRound));
    for (const Run & r : R.runs)
        for (const Skip & s : r.skipped)
            std::fprintf(f, "skipped (threads %d) %s: %s\n", r.threads, s.what.c_str(),
                         s.why.c_str());
    const Kv1M & k = R.kv1m;
    if (!k.ok) {
        std::fprintf(f, "\nKV cache at 1M tokens: Flash config unavailable (%s)\n", k.note.c_str());
        return;
    }
    std::fprintf(f,
                 "\nKV cache of a 1M-token session: V4-Flash (%d layers, %.0f B/token) %.2f "
                 "GB vs dense MLA (%lld layers x %lld values x %lld B) %.2f GB: %.1f %%\n",
                 k.flash_layers, k.flash_per_token, k.flash_bytes / 1e9,
                 static_cast<long long>(kMlaLayers), static_cast<long long>(kMlaValuesPerToken),
                 static_cast<long long>(kMlaBytesPerValue), k.dense_bytes / 1e9,
                 100.0 * k.flash_bytes / k.dense_bytes);
    std::fprintf(f,
                 "V4-Flash weight bytes per decode token (same formula, %d layers): %.2f GB "
                 "(routed experts %.2f, head %.2f)\n",
                 k.flash_layers, k.flash_weights.total() / 1e9, k.flash_weights.routed / 1e9,
                 k.flash_weights.head / 1e9);
}

}  // namespace

int main(int argc, char ** argv) {
    Args a;
    if (!parse_args(argc, argv, &a)) {
        usage();
        return 2;
    }
    auto cfg = dsv4::model::load_config(a.model + "/config.json");
    if (!cfg.ok()) {
        std::fprintf(stderr, "dsv4-bench: %s\n", cfg.status().to_string().c_str());
        return 1;
    }

    Report R;
    R.a         = &a;
    R.cfg       = &*cfg;
    R.cpu       = cpu_model();
    R.mem_total = meminfo_bytes("MemTotal");
    R.mem_limit = a.mem_limit_gib > 0 ? static_cast<uint64_t>(a.mem_limit_gib * kGiB)
                                      : static_cast<uint64_t>(0.9 * R.mem_total);
    if (R.mem_limit == 0) R.mem_limit = UINT64_MAX;  // no /proc/meminfo: do not limit
    R.wb           = weight_bytes_per_token(*cfg);
    R.kv_per_token = dsv4::model::kv_cache_bytes_per_token(*cfg);
    R.kv1m         = kv_1m(a.flash_config);

    Bench bench(a, *cfg, R.mem_limit);
    for (int64_t t : a.threads) {
        Run r;
        if (!bench.run(static_cast<int>(t), &r)) return 1;
        R.runs.push_back(std::move(r));
    }
    R.info = R.runs.front().info;

    if (a.json) {
        print_json(R);
        print_table(R, stderr);
    } else {
        print_table(R, stdout);
    }
    return 0;
}
