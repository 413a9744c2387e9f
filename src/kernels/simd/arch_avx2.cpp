// avx2 copy of the SIMD kernels (flags in cmake/Dsv4ArchFlags.cmake; IPO off).
#include <xsimd/xsimd.hpp>

#include "kernels/kernel_table.hpp"

#define DSV4_ARCH_NS   avx2
#define DSV4_ARCH      xsimd::fma3<xsimd::avx2>
#define DSV4_ARCH_ENUM CpuArch::avx2
#define DSV4_ARCH_NAME "avx2"
#define DSV4_TABLE_VAR kTableAvx2
#include "kernels/simd/ops-inl.hpp"
