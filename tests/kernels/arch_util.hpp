// Helpers for per-arch kernel tests: run a check on every kernel table this CPU can execute,
// and derive tolerances from floating-point error bounds instead of tuning them.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "dsv4/system.hpp"
#include "kernels/kernel_table.hpp"

namespace dsv4::test {

inline std::vector<CpuArch> usable_archs() {
    return system_info().usable_archs;
}

// Unit roundoff of fp32 (round to nearest): 2^-24.
constexpr double kU32 = 5.9604644775390625e-8;

// Higham's gamma_n = n u / (1 - n u): the relative bound of a length-n recursive sum in fp32.
// Any summation order obeys |computed - exact| <= gamma_{n} * sum|terms| (for a tree, a smaller
// n applies, so gamma_n covers every order a SIMD kernel may use).
inline double gamma_n(int64_t n) {
    const double nu = static_cast<double>(n) * kU32;
    return nu / (1.0 - nu);
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
    std::mt19937                          rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float>                    v(n);
    for (float & x : v) x = dist(rng);
    return v;
}

}  // namespace dsv4::test
