// The kernel table: one struct of function pointers per CPU architecture. The forward pass
// calls kernels only through a table, so the choice of ISA is made once (dispatch.cpp) and
// can be forced for tests (DSV4_FORCE_ARCH, LoadOptions::cpu_arch).
//
// Rules (docs/kernels.md): kernels take row ranges and never spawn threads; every entry has a
// scalar twin in include/dsv4/ref/ and a test against it on every arch the host supports.
// This header is included by the per-arch TUs, so it holds declarations and PODs only: no
// inline functions, no std templates (an inline function compiled with -mavx512f could be the
// copy the linker keeps for baseline callers).
#pragma once

#include <cstdint>

#include "dsv4/system.hpp"

namespace dsv4::kernels {

struct KernelTable {
    CpuArch      arch;
    const char * name;
    float (*dot_f32)(const float * a, const float * b, int64_t n);
    void (*rmsnorm_f32)(float * out, const float * x, const float * w, int64_t n, float eps);
};

// Tables compiled into this binary (defined in the arch TUs; absent ones are null).
extern const KernelTable kTableScalar;
#if defined(DSV4_HAVE_AVX2)
extern const KernelTable kTableAvx2;
#endif
#if defined(DSV4_HAVE_AVX512)
extern const KernelTable kTableAvx512;
extern const KernelTable kTableAvx512Bf16;
#endif

bool arch_compiled(CpuArch arch) noexcept;
bool arch_supported(CpuArch arch) noexcept;  // compiled and runnable on this CPU/OS

// Table for an explicit, usable arch (callers resolve `automatic` first via resolve_cpu_arch).
// Falls back to the scalar table for anything not usable, so it never returns null.
const KernelTable & kernel_table(CpuArch arch) noexcept;

}  // namespace dsv4::kernels
