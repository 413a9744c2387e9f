// Scalar reference kernels: plain loops, no intrinsics, no threading. These are the
// specification every SIMD kernel is tested against, and the `scalar` kernel table calls them.
// Header-only so tests and tools can use them without linking kernel internals.
#pragma once

#include <cmath>
#include <cstdint>

namespace dsv4::ref {

// Sum of a[i]*b[i] in ascending i, fp32 accumulation.
inline float dot_f32(const float * a, const float * b, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
    return acc;
}

// out[i] = w[i] * (x[i] / sqrt(mean(x^2) + eps)); fp32 throughout (spec §3.2 without the final
// bf16 rounding, which the bf16 variant adds).
inline void rmsnorm_f32(float * out, const float * x, const float * w, int64_t n, float eps) {
    float ss = 0.0f;
    for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    for (int64_t i = 0; i < n; ++i) out[i] = w[i] * (x[i] * r);
}

}  // namespace dsv4::ref
