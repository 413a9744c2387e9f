// What this build of dsv4 can do on this machine: compiled kernel architectures, the CPU
// features the dispatcher detected (CPUID *and* OS support via XCR0), which kernel table it
// picks, and which backends exist. Cheap to call; the detection runs once per process.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dsv4/export.hpp"
#include "dsv4/status.hpp"

namespace dsv4 {

enum class Backend : uint8_t { automatic, cpu, cuda };

// Kernel tables. `scalar` is the plain-loop reference every SIMD kernel is tested against.
// avx2 = AVX2+FMA+F16C; avx512 = AVX-512 F/BW/VL/DQ/CD; avx512bf16 = avx512 + BF16 + VNNI +
// VBMI (Zen 4+, Sapphire Rapids+), which has exact bf16 dot products for the FP8/FP4 weights.
enum class CpuArch : uint8_t { automatic, scalar, avx2, avx512, avx512bf16 };

struct CpuFeatures {
    bool sse42      = false;
    bool avx        = false;  // CPUID and OS (XCR0 saves YMM state)
    bool avx2       = false;
    bool fma        = false;
    bool f16c       = false;
    bool bmi2       = false;
    bool avx512f    = false;  // CPUID and OS (XCR0 saves opmask/ZMM state)
    bool avx512bw   = false;
    bool avx512vl   = false;
    bool avx512dq   = false;
    bool avx512cd   = false;
    bool avx512bf16 = false;
    bool avx512vnni = false;
    bool avx512vbmi = false;  // byte permutes (vpermb/vpermt2b): the FP8 decode table lookup
};

struct SystemInfo {
    std::string          version;         // DSV4_VERSION_STRING
    CpuFeatures          cpu;             // detected features
    std::vector<CpuArch> compiled_archs;  // tables in this binary, best first; scalar always last
    std::vector<CpuArch> usable_archs;    // compiled and supported by this CPU/OS, best first
    CpuArch              best_arch    = CpuArch::scalar;  // first usable arch
    CpuArch              default_arch = CpuArch::scalar;  // best_arch unless DSV4_FORCE_ARCH
    std::string          force_arch_env;                  // value of DSV4_FORCE_ARCH ("" if unset)
    bool                 openmp       = false;            // built with OpenMP
    bool                 cuda         = false;            // built with the CUDA backend
    int32_t              n_hw_threads = 0;                // logical CPUs visible to the process
};

DSV4_API SystemInfo system_info();

// "scalar", "avx2", "avx512", "avx512bf16", "automatic".
DSV4_API const char * cpu_arch_name(CpuArch arch) noexcept;
DSV4_API const char * backend_name(Backend backend) noexcept;

// Parses one of the names above (case-sensitive).
DSV4_API Result<CpuArch> parse_cpu_arch(std::string_view name);

// Resolves a requested arch to the table that will run: `automatic` gives the default arch
// (honouring DSV4_FORCE_ARCH); an explicit arch is checked against this CPU and build.
// Errors: invalid_argument when DSV4_FORCE_ARCH does not name an arch; backend_unavailable
// when the arch is not compiled in or this CPU/OS lacks it.
DSV4_API Result<CpuArch> resolve_cpu_arch(CpuArch requested);

// ok for Backend::cpu/automatic; backend_unavailable for Backend::cuda unless built with it.
DSV4_API Status check_backend(Backend backend);

}  // namespace dsv4
