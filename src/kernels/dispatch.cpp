// Runtime choice of the kernel table. Compiled at the baseline ISA with IPO off, so nothing
// arch-specific can leak into the code that decides whether arch-specific code may run.
#include <cstdlib>
#include <string>

#include "dsv4/system.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/kernel_table.hpp"

namespace dsv4::kernels {

bool arch_compiled(CpuArch arch) noexcept {
    switch (arch) {
        case CpuArch::scalar: return true;
#if defined(DSV4_HAVE_AVX2)
        case CpuArch::avx2: return true;
#endif
#if defined(DSV4_HAVE_AVX512)
        case CpuArch::avx512:
        case CpuArch::avx512bf16: return true;
#endif
        default: return false;
    }
}

bool arch_supported(CpuArch arch) noexcept {
    if (!arch_compiled(arch)) return false;
    const CpuFeatures & f    = cpu_features();
    const bool          avx2 = f.avx2 && f.fma && f.f16c && f.bmi2;
    const bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512cd;
    switch (arch) {
        case CpuArch::scalar: return true;
        case CpuArch::avx2: return avx2;
        case CpuArch::avx512: return avx512;
        case CpuArch::avx512bf16: return avx512 && f.avx512bf16 && f.avx512vnni && f.avx512vbmi;
        default: return false;
    }
}

const KernelTable & kernel_table(CpuArch arch) noexcept {
    if (!arch_supported(arch)) return kTableScalar;
    switch (arch) {
#if defined(DSV4_HAVE_AVX2)
        case CpuArch::avx2: return kTableAvx2;
#endif
#if defined(DSV4_HAVE_AVX512)
        case CpuArch::avx512: return kTableAvx512;
        case CpuArch::avx512bf16: return kTableAvx512Bf16;
#endif
        default: return kTableScalar;
    }
}

}  // namespace dsv4::kernels

namespace dsv4 {
namespace {

constexpr CpuArch kPriority[] = {CpuArch::avx512bf16, CpuArch::avx512, CpuArch::avx2,
                                 CpuArch::scalar};

CpuArch best_usable() {
    for (CpuArch a : kPriority)
        if (kernels::arch_supported(a)) return a;
    return CpuArch::scalar;
}

std::string force_env() {
    const char * v = std::getenv("DSV4_FORCE_ARCH");
    return v ? std::string(v) : std::string();
}

Result<CpuArch> check_usable(CpuArch a, const char * origin) {
    if (!kernels::arch_compiled(a))
        return Status(Errc::backend_unavailable, std::string(origin) + ": CPU arch '" +
                                                     cpu_arch_name(a) +
                                                     "' is not compiled into this build of dsv4");
    if (!kernels::arch_supported(a))
        return Status(Errc::backend_unavailable, std::string(origin) + ": CPU arch '" +
                                                     cpu_arch_name(a) +
                                                     "' is not supported by this CPU/OS");
    return a;
}

}  // namespace

const char * cpu_arch_name(CpuArch arch) noexcept {
    switch (arch) {
        case CpuArch::automatic: return "automatic";
        case CpuArch::scalar: return "scalar";
        case CpuArch::avx2: return "avx2";
        case CpuArch::avx512: return "avx512";
        case CpuArch::avx512bf16: return "avx512bf16";
    }
    return "unknown";
}

Result<CpuArch> parse_cpu_arch(std::string_view name) {
    for (CpuArch a :
         {CpuArch::automatic, CpuArch::scalar, CpuArch::avx2, CpuArch::avx512, CpuArch::avx512bf16})
        if (name == cpu_arch_name(a)) return a;
    return Status(Errc::invalid_argument,
                  "unknown CPU arch '" + std::string(name) +
                      "' (expected automatic, scalar, avx2, avx512 or avx512bf16)");
}

Result<CpuArch> resolve_cpu_arch(CpuArch requested) {
    if (requested != CpuArch::automatic) return check_usable(requested, "cpu_arch");
    const std::string env = force_env();
    if (env.empty()) return best_usable();
    Result<CpuArch> forced = parse_cpu_arch(env);
    if (!forced.ok())
        return Status(Errc::invalid_argument, "DSV4_FORCE_ARCH: " + forced.status().message());
    if (*forced == CpuArch::automatic) return best_usable();
    return check_usable(*forced, "DSV4_FORCE_ARCH");
}

}  // namespace dsv4
