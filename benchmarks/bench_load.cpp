// dsv4-bench-load: time to open a checkpoint — parse config.json, map every shard, parse and
// validate every header, check the whole inventory and bind the per-layer views (no weight
// bytes are read: mmap is lazy). Issue target: a flash-mini checkpoint opens in well under 1 s.
//   dsv4-make-model --preset flash-mini --out /tmp/flash-mini
//   dsv4-bench-load --model /tmp/flash-mini [--no-mmap] [google-benchmark flags]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "io/safetensors.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"

namespace {

void bm_open(benchmark::State & state, std::string dir, bool use_mmap) {
    size_t tensors = 0;
    for (auto _ : state) {
        auto cfg   = dsv4::model::load_config(dir + "/config.json");
        auto store = cfg.ok() ? dsv4::io::TensorStore::open_dir(dir, use_mmap)
                              : dsv4::Result<dsv4::io::TensorStore>(cfg.status());
        if (!store.ok()) {
            state.SkipWithError(store.status().to_string().c_str());
            return;
        }
        auto w = dsv4::model::bind_weights(*cfg, *store, dsv4::detail::Logger());
        if (!w.ok()) {
            state.SkipWithError(w.status().to_string().c_str());
            return;
        }
        tensors = store->tensors().size();
        benchmark::DoNotOptimize(w->blocks.data());
    }
    state.counters["tensors"] = static_cast<double>(tensors);
}

}  // namespace

int main(int argc, char ** argv) {
    std::string dir;
    bool        use_mmap = true;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            dir = argv[i + 1];
            for (int j = i; j + 2 < argc; ++j) argv[j] = argv[j + 2];
            argc -= 2, --i;
        } else if (std::strcmp(argv[i], "--no-mmap") == 0) {
            use_mmap = false;
            for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
            --argc, --i;
        }
    }
    if (dir.empty()) {
        std::fprintf(stderr, "usage: dsv4-bench-load --model DIR [--no-mmap] [benchmark flags]\n");
        return 2;
    }
    benchmark::RegisterBenchmark("open_checkpoint", bm_open, dir, use_mmap)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
