// Kernel benchmarks, one registration per usable arch. Bandwidth-bound kernels report
// `GBps` (bytes read per second); later GEMV/GEMM benchmarks add `pct_bw` / `GFLOPs`.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "dsv4/system.hpp"
#include "kernels/kernel_table.hpp"

namespace {

void bm_dot_f32(benchmark::State & state, dsv4::CpuArch arch) {
    const auto &       k = dsv4::kernels::kernel_table(arch);
    const int64_t      n = state.range(0);
    std::vector<float> a(n, 1.0f), b(n, 0.5f);
    for (auto _ : state) benchmark::DoNotOptimize(k.dot_f32(a.data(), b.data(), n));
    state.counters["GBps"] = benchmark::Counter(static_cast<double>(2 * n * sizeof(float)),
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
    state.counters["GBps"] = state.counters["GBps"] / 1e9;
}

}  // namespace

int main(int argc, char ** argv) {
    for (dsv4::CpuArch arch : dsv4::system_info().usable_archs) {
        const std::string name = std::string("dot_f32/") + dsv4::cpu_arch_name(arch);
        benchmark::RegisterBenchmark(name.c_str(), bm_dot_f32, arch)->Arg(4096)->Arg(1 << 20);
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
