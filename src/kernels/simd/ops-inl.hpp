// SIMD kernels written once with xsimd and compiled once per architecture.
//
// No include guard on purpose: each arch TU (arch_<name>.cpp) defines DSV4_ARCH_NS (the
// namespace) and DSV4_ARCH (the xsimd arch type) and includes this file, so every copy lives in
// its own namespace dsv4::kernels::DSV4_ARCH_NS and, inside it, an anonymous namespace. That
// keeps arch-specific code from being merged across TUs by the linker (xsimd PR #1311,
// numpy #25274).
//
// Allowed here: xsimd, <cstdint>/<cstddef>, __builtin_* math. Not allowed: std containers or
// other std templates that would be emitted out of line (see kernel_table.hpp).

#ifndef DSV4_ARCH_NS
#error "define DSV4_ARCH_NS and DSV4_ARCH before including ops-inl.hpp"
#endif

#include <immintrin.h>

// GCC 12's AVX-512 reduction intrinsics use self-initialised "undefined" vectors that trip
// -Wuninitialized (a GCC header issue, not ours); silence it for the kernel code only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace dsv4::kernels::DSV4_ARCH_NS {
namespace {

using arch_t             = DSV4_ARCH;
using batch_f            = xsimd::batch<float, arch_t>;
constexpr int64_t kLanes = static_cast<int64_t>(batch_f::size);

// R rows × TT tokens of dot products at once, each pair in the same order: four independent
// accumulators over 4·kLanes inputs (they hide FMA latency), one over the rest, the same
// reduction and a scalar tail. dot_f32 is the 1 × 1 case, so gemm_f32's blocks (the HC mixes
// of a prefill: 24 rows of 16384 fp32, 1.5 MB, were re-read from L3 for every token) give the
// bits of the one-token call while each weight vector loaded serves TT tokens and each
// activation vector R rows.
template <int R, int TT>
void dot_f32_block(float * y, int64_t ldy, const float * w, int64_t ldw, const float * x,
                   int64_t ldx, int64_t K) {
    batch_f acc[R][TT][4];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t)
            for (int j = 0; j < 4; ++j) acc[r][t][j] = batch_f(0.0f);
    const auto step = [&](int64_t i, int j) {
        batch_f wv[R], xv[TT];
        for (int r = 0; r < R; ++r) wv[r] = batch_f::load_unaligned(w + r * ldw + i);
        for (int t = 0; t < TT; ++t) xv[t] = batch_f::load_unaligned(x + t * ldx + i);
        for (int r = 0; r < R; ++r)
            for (int t = 0; t < TT; ++t) acc[r][t][j] = xsimd::fma(wv[r], xv[t], acc[r][t][j]);
    };
    int64_t i = 0;
    for (; i + 4 * kLanes <= K; i += 4 * kLanes)
        for (int j = 0; j < 4; ++j) step(i + j * kLanes, j);
    for (; i + kLanes <= K; i += kLanes) step(i, 0);
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t) {
            const float * a = w + r * ldw;
            const float * b = x + t * ldx;
            float sum = xsimd::hadd((acc[r][t][0] + acc[r][t][1]) + (acc[r][t][2] + acc[r][t][3]));
            for (int64_t k = i; k < K; ++k) sum += a[k] * b[k];
            y[t * ldy + r] = sum;
        }
}

float dot_f32(const float * a, const float * b, int64_t n) {
    float y;
    dot_f32_block<1, 1>(&y, 1, a, 0, b, 0, n);
    return y;
}

void rmsnorm_f32(float * out, const float * x, const float * w, int64_t n, float eps) {
    const float   ss = dot_f32(x, x, n);
    const float   r  = 1.0f / __builtin_sqrtf(ss / static_cast<float>(n) + eps);
    const batch_f vr(r);
    int64_t       i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const batch_f v = batch_f::load_unaligned(w + i) * (batch_f::load_unaligned(x + i) * vr);
        v.store_unaligned(out + i);
    }
    for (; i < n; ++i) out[i] = w[i] * (x[i] * r);
}

// Bit casts shared by the included kernel files (local copies: see the rules above).
inline float f32_from_u32(uint32_t u) {
    float f;
    __builtin_memcpy(&f, &u, sizeof f);
    return f;
}
inline uint32_t u32_from_f32(float f) {
    uint32_t u;
    __builtin_memcpy(&u, &f, sizeof u);
    return u;
}

#include "kernels/simd/elementwise-inl.hpp"
#include "kernels/simd/linear-inl.hpp"
// after the two above: uses their helpers (elt_exp, elt_round_bf16, dp)
#include "kernels/simd/attention-inl.hpp"

}  // namespace
}  // namespace dsv4::kernels::DSV4_ARCH_NS

namespace dsv4::kernels {

// Constant-initialised (addresses of functions only), so safe to use during static init.
extern const KernelTable DSV4_TABLE_VAR = {
    .arch          = DSV4_ARCH_ENUM,
    .name          = DSV4_ARCH_NAME,
    .dot_f32       = &DSV4_ARCH_NS::dot_f32,
    .rmsnorm_f32   = &DSV4_ARCH_NS::rmsnorm_f32,
    .act_quant     = &DSV4_ARCH_NS::act_quant,
    .act_plain     = &DSV4_ARCH_NS::act_plain,
    .lin8          = &DSV4_ARCH_NS::lin8,
    .lin4          = &DSV4_ARCH_NS::lin4,
    .gemm_bf16     = &DSV4_ARCH_NS::gemm_bf16,
    .gemm_f32      = &DSV4_ARCH_NS::gemm_f32,
    .fma_probe     = &DSV4_ARCH_NS::fma_probe,
    .rmsnorm_bf16  = &DSV4_ARCH_NS::rmsnorm_bf16,
    .rope          = &DSV4_ARCH_NS::rope,
    .rope_heads    = &DSV4_ARCH_NS::rope_heads,
    .softmax       = &DSV4_ARCH_NS::softmax,
    .sum_exp       = &DSV4_ARCH_NS::sum_exp,
    .swiglu        = &DSV4_ARCH_NS::swiglu,
    .sqrt_softplus = &DSV4_ARCH_NS::sqrt_softplus,
    .q_norm_bf16   = &DSV4_ARCH_NS::q_norm_bf16,
    .hc_post       = &DSV4_ARCH_NS::hc_post,
    .fp8sim        = &DSV4_ARCH_NS::fp8sim,
    .fp4sim        = &DSV4_ARCH_NS::fp4sim,
    .hadamard      = &DSV4_ARCH_NS::hadamard,
    .index_scores  = &DSV4_ARCH_NS::index_scores,
    .sparse_attn   = &DSV4_ARCH_NS::sparse_attn,
};

}  // namespace dsv4::kernels

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
