// CPU feature detection: CPUID for what the core implements, XGETBV(XCR0) for what the OS
// saves across context switches. A feature counts only if both agree (the check ggml's
// scoring lacked and xsimd 8 does not do).
#pragma once

#include "dsv4/system.hpp"

namespace dsv4::kernels {

const CpuFeatures & cpu_features() noexcept;  // detected once, cached

}  // namespace dsv4::kernels
