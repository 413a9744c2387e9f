// Tokenizer throughput on one thread (Google Benchmark).
//   dsv4-bench-tokenizer --corpus FILE --tokenizer tokenizer.json [benchmark flags]
// Reports MB/s of input text as the user counter `MBps`:
//   BM_encode         encode() of the whole file in one call, warm piece cache (steady state)
//   BM_encode_cold    same, with a freshly loaded tokenizer each iteration (empty cache; the
//                     load itself is not timed)
//   BM_encode_lines   encode() line by line (many short calls, as a chat server would)
//   BM_decode         decode() of the ids of the whole file
// The reference corpus is built by the ctest fixture tokenizer_corpus (build/<preset>/
// tokenizer-js/corpus.txt) or by scripts/make-tokenizer-corpus.py.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dsv4/tokenizer.hpp"

namespace {

std::string g_corpus;
std::string g_tokenizer_path;
std::string g_tokenizer_json;

const dsv4::Tokenizer & tokenizer() {
    static const dsv4::Tokenizer t = [] {
        auto r = dsv4::Tokenizer::from_json(g_tokenizer_json, g_tokenizer_path);
        if (!r.ok()) {
            std::fprintf(stderr, "%s\n", r.status().to_string().c_str());
            std::exit(1);
        }
        return r.value();
    }();
    return t;
}

void set_mbps(benchmark::State & state, size_t bytes) {
    state.counters["MBps"] = benchmark::Counter(static_cast<double>(bytes) * 1e-6,
                                                benchmark::Counter::kIsIterationInvariantRate);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

void BM_encode(benchmark::State & state) {
    const dsv4::Tokenizer & t = tokenizer();
    (void)t.encode(g_corpus);  // warm the piece cache
    for (auto _ : state) {
        auto ids = t.encode(g_corpus);
        benchmark::DoNotOptimize(ids);
    }
    set_mbps(state, g_corpus.size());
}

void BM_encode_cold(benchmark::State & state) {
    for (auto _ : state) {
        state.PauseTiming();
        auto t = dsv4::Tokenizer::from_json(g_tokenizer_json, g_tokenizer_path);
        state.ResumeTiming();
        auto ids = t->encode(g_corpus);
        benchmark::DoNotOptimize(ids);
        state.PauseTiming();
        t = dsv4::Status(dsv4::Errc::internal, "drop");  // destroy outside the timed region
        state.ResumeTiming();
    }
    set_mbps(state, g_corpus.size());
}

void BM_encode_lines(benchmark::State & state) {
    const dsv4::Tokenizer &       t = tokenizer();
    std::vector<std::string_view> lines;
    for (size_t b = 0; b < g_corpus.size();) {
        size_t e = g_corpus.find('\n', b);
        e        = e == std::string::npos ? g_corpus.size() : e + 1;
        lines.emplace_back(g_corpus.data() + b, e - b);
        b = e;
    }
    for (auto _ : state) {
        for (const std::string_view l : lines) {
            auto ids = t.encode(l);
            benchmark::DoNotOptimize(ids);
        }
    }
    set_mbps(state, g_corpus.size());
}

void BM_decode(benchmark::State & state) {
    const dsv4::Tokenizer & t   = tokenizer();
    const auto              ids = t.encode(g_corpus);
    for (auto _ : state) {
        auto text = t.decode(*ids);
        benchmark::DoNotOptimize(text);
    }
    set_mbps(state, g_corpus.size());
}

BENCHMARK(BM_encode)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_encode_cold)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_encode_lines)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_decode)->Unit(benchmark::kMillisecond);

bool read_file(const std::string & path, std::string & out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

}  // namespace

int main(int argc, char ** argv) {
    std::string         corpus_path;
    std::vector<char *> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--corpus") == 0 && i + 1 < argc) {
            corpus_path = argv[++i];
        } else if (std::strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) {
            g_tokenizer_path = argv[++i];
        } else {
            rest.push_back(argv[i]);
        }
    }
    if (corpus_path.empty() || g_tokenizer_path.empty()) {
        std::fprintf(stderr,
                     "usage: dsv4-bench-tokenizer --corpus FILE --tokenizer tokenizer.json "
                     "[benchmark flags]\n");
        return 2;
    }
    if (!read_file(corpus_path, g_corpus) || !read_file(g_tokenizer_path, g_tokenizer_json)) {
        std::fprintf(stderr, "dsv4-bench-tokenizer: cannot read %s or %s\n", corpus_path.c_str(),
                     g_tokenizer_path.c_str());
        return 1;
    }
    int argc2 = static_cast<int>(rest.size());
    benchmark::Initialize(&argc2, rest.data());
    benchmark::AddCustomContext("corpus",
                                corpus_path + " (" + std::to_string(g_corpus.size()) + " bytes)");
    benchmark::AddCustomContext("tokenizer", g_tokenizer_path);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
