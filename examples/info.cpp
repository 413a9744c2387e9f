// dsv4-info: what this build of dsv4 can do on this machine (kernel archs, CPU features,
// backends). Uses only the public API.
#include <dsv4/dsv4.hpp>

#include <cstdio>

int main() {
    const dsv4::SystemInfo info = dsv4::system_info();
    std::printf("dsv4 %s\n", info.version.c_str());
    std::printf("hardware threads : %d\n", info.n_hw_threads);
    std::printf("openmp           : %s\n", info.openmp ? "yes" : "no");
    std::printf("compiled kernels :");
    for (dsv4::CpuArch a : info.compiled_archs) std::printf(" %s", dsv4::cpu_arch_name(a));
    std::printf("\nusable kernels   :");
    for (dsv4::CpuArch a : info.usable_archs) std::printf(" %s", dsv4::cpu_arch_name(a));
    std::printf("\nselected kernels : %s%s\n", dsv4::cpu_arch_name(info.default_arch),
                info.force_arch_env.empty() ? "" : " (DSV4_FORCE_ARCH)");
    const dsv4::CpuFeatures & f = info.cpu;
    std::printf("cpu features     :%s%s%s%s%s%s%s%s%s%s\n", f.avx2 ? " avx2" : "",
                f.fma ? " fma" : "", f.f16c ? " f16c" : "", f.avx512f ? " avx512f" : "",
                f.avx512bw ? " avx512bw" : "", f.avx512vl ? " avx512vl" : "",
                f.avx512dq ? " avx512dq" : "", f.avx512bf16 ? " avx512bf16" : "",
                f.avx512vnni ? " avx512vnni" : "", f.avx512vbmi ? " avx512vbmi" : "");
    const dsv4::Status cuda = dsv4::check_backend(dsv4::Backend::cuda);
    std::printf("cuda backend     : %s\n", cuda.ok() ? "available" : cuda.message().c_str());
    return 0;
}
