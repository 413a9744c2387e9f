#include "kernels/cpu_features.hpp"

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace dsv4::kernels {
namespace {

#if defined(__x86_64__) || defined(__i386__)
struct Regs {
    uint32_t a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(uint32_t leaf, uint32_t sub) {
    Regs r;
    __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
    return r;
}

uint64_t xgetbv0() {
    uint32_t eax = 0, edx = 0;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect() {
    CpuFeatures    f;
    const uint32_t max_leaf = __get_cpuid_max(0, nullptr);
    if (max_leaf < 1) return f;
    const Regs     l1      = cpuid(1, 0);
    const bool     osxsave = (l1.c >> 27) & 1;
    const uint64_t xcr0    = osxsave ? xgetbv0() : 0;
    // XCR0 bits: 1 SSE, 2 AVX (YMM upper), 5 opmask, 6 ZMM_Hi256, 7 Hi16_ZMM.
    const bool os_ymm = (xcr0 & 0x6) == 0x6;
    const bool os_zmm = os_ymm && (xcr0 & 0xE0) == 0xE0;

    f.sse42 = (l1.c >> 20) & 1;
    f.avx   = os_ymm && ((l1.c >> 28) & 1);
    f.fma   = f.avx && ((l1.c >> 12) & 1);
    f.f16c  = f.avx && ((l1.c >> 29) & 1);
    if (max_leaf >= 7) {
        const Regs l7 = cpuid(7, 0);
        f.avx2        = f.avx && ((l7.b >> 5) & 1);
        f.bmi2        = (l7.b >> 8) & 1;
        f.avx512f     = os_zmm && ((l7.b >> 16) & 1);
        f.avx512dq    = f.avx512f && ((l7.b >> 17) & 1);
        f.avx512cd    = f.avx512f && ((l7.b >> 28) & 1);
        f.avx512bw    = f.avx512f && ((l7.b >> 30) & 1);
        f.avx512vl    = f.avx512f && ((l7.b >> 31) & 1);
        f.avx512vnni  = f.avx512f && ((l7.c >> 11) & 1);
        f.avx512vbmi  = f.avx512f && ((l7.c >> 1) & 1);
        if (l7.a >= 1) {
            const Regs l71 = cpuid(7, 1);
            f.avx512bf16   = f.avx512f && ((l71.a >> 5) & 1);
        }
    }
    return f;
}
#else
CpuFeatures detect() {
    return CpuFeatures{};
}
#endif

}  // namespace

const CpuFeatures & cpu_features() noexcept {
    static const CpuFeatures features = detect();
    return features;
}

}  // namespace dsv4::kernels
