// avx512bf16 copy of the SIMD kernels (flags in cmake/Dsv4ArchFlags.cmake; IPO off).
#include <xsimd/xsimd.hpp>

#include "kernels/kernel_table.hpp"

#define DSV4_ARCH_NS   avx512bf16
#define DSV4_ARCH      xsimd::avx512bw
#define DSV4_ARCH_ENUM CpuArch::avx512bf16
#define DSV4_ARCH_NAME "avx512bf16"
#define DSV4_TABLE_VAR kTableAvx512Bf16
#include "kernels/simd/ops-inl.hpp"
