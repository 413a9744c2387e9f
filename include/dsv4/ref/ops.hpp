// Scalar reference kernels: plain loops, no intrinsics, no threading. These are the
// specification every SIMD kernel is tested against, and the `scalar` kernel table calls them.
// Header-only so tests and tools can use them without linking kernel internals.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "dsv4/ref/formats.hpp"

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

// ================================================================================================
// Reference semantics of the DeepSeek-V4 forward pass (spec §3, §4): the quantisation
// simulations, Hadamard, bf16 RMSNorm, RoPE, gate/expert scalar functions and the FP8/FP4
// matrix-vector products. Why: these fix the exact rounding points the engine must reproduce;
// SIMD kernels are compared against them.
//
// Conventions:
//  * "bf16 values" are passed as float arrays whose elements are bf16-representable (low 16 bits
//    of the fp32 pattern zero). Inputs documented as bf16 must be such values; outputs documented
//    as bf16 are round_bf16() results, i.e. bf16-exact floats.
//  * Accumulations are fp32 in ascending index order unless stated otherwise.
//  * Products and sums are written as separate statements so that compilers which contract only
//    within one expression (clang's default) cannot fuse them into FMAs. GCC contracts across
//    statements by default even in ISO C++ mode, so dsv4 builds everything with
//    -ffp-contract=off; consumers of these functions who need bit-exact results on an FMA
//    target should do the same.
//  * Size preconditions that callers may plausibly violate are checked and reported by a false
//    return value (nothing is written then); the rest are documented preconditions.
// ================================================================================================

namespace detail {

// One quantise-dequantise pass over a block: amax floor, ue8m0 scale, clamp, RNE, back, bf16.
template <class Rne>
inline void block_sim(float * v, int64_t len, float amax_floor, float inv_max, float max, Rne rne) {
    float amax = 0.0f;
    for (int64_t i = 0; i < len; ++i) amax = std::max(amax, std::fabs(v[i]));
    amax          = std::max(amax, amax_floor);
    const float s = ue8m0_scale(amax, inv_max);
    for (int64_t i = 0; i < len; ++i) {
        const float t  = std::min(std::max(v[i] / s, -max), max);
        const float q  = rne(t);
        const float qs = q * s;  // exact: s is a power of two and q*s stays normal
        v[i]           = round_bf16(qs);
    }
}

}  // namespace detail

// Spec §3.4 fp8sim: for each contiguous block of `block` elements (a shorter final block if
// block does not divide n): amax = max(max|v|, 1e-4f); s = ue8m0_scale(amax, fp32(1/448));
// v = round_bf16(E4M3_RNE(clamp(v/s, -448, 448)) * s). In: bf16 values; out: bf16 values.
// Precondition: block >= 1, no NaN.
inline void fp8sim_inplace(float * v, int64_t n, int64_t block) {
    for (int64_t b = 0; b < n; b += block) {
        detail::block_sim(v + b, std::min(block, n - b), kFp8AmaxFloor, kInvE4M3Max, kE4M3Max,
                          [](float t) { return e4m3_rne(t); });
    }
}

// Spec §3.4 fp4sim: blocks of 32 (shorter final block if 32 does not divide n); amax floor
// 6·2^-126; s = ue8m0_scale(amax, fp32(1/6)); v = round_bf16(E2M1_RNE(clamp(v/s, -6, 6)) * s).
// In: bf16 values; out: bf16 values. Precondition: no NaN.
inline void fp4sim_inplace(float * v, int64_t n) {
    constexpr int64_t kBlock = 32;
    for (int64_t b = 0; b < n; b += kBlock) {
        detail::block_sim(v + b, std::min(kBlock, n - b), kFp4AmaxFloor, kInvE2M1Max, kE2M1Max,
                          [](float t) { return e2m1_rne(t); });
    }
}

// Spec §4.1 step 1, the GEMM activation quantisation: per block of 128, amax floor 1e-4,
// scales[b] = ue8m0_scale(amax_b, fp32(1/448)) (a power of two, stored as float),
// codes[k] = f32_to_e4m3(clamp(x[k]/scales[k/128], -448, 448)). x: bf16 values.
// Returns false (writing nothing) unless n is a non-negative multiple of 128.
inline bool act_quant_fp8(const float * x, int64_t n, uint8_t * codes, float * scales) {
    constexpr int64_t kBlock = 128;
    if (n < 0 || n % kBlock != 0) return false;
    for (int64_t b = 0; b < n / kBlock; ++b) {
        const float * xb   = x + b * kBlock;
        float         amax = 0.0f;
        for (int64_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
        amax          = std::max(amax, kFp8AmaxFloor);
        const float s = ue8m0_scale(amax, kInvE4M3Max);
        scales[b]     = s;
        for (int64_t i = 0; i < kBlock; ++i) {
            const float t         = std::min(std::max(xb[i] / s, -kE4M3Max), kE4M3Max);
            codes[b * kBlock + i] = f32_to_e4m3(t);
        }
    }
    return true;
}

// Spec §3.4 had(v): natural-order (Sylvester) Walsh-Hadamard transform, scaled by n^-0.5:
// y[i] = round_bf16(fp32(Σ_j (-1)^popcount(i&j) v[j]) * fp32(n^-0.5)). The sum is formed by
// fp32 radix-2 butterflies (a+b, a-b), lowest index bit first; the scale (n^-0.5 computed in
// double, rounded to fp32) is applied once at the end in fp32, then one bf16 rounding.
// In: bf16 values; out: bf16 values. Any other n is taken as zero-padded to the next power of
// two P (fast_hadamard_transform's documented behaviour, which the reference's rotate_activation
// inherits for an index_head_dim that is not a power of two): the P-point butterflies run over
// v and zeros, the first n outputs are kept, and the scale stays n^-0.5 (the reference passes
// x.size(-1)^-0.5). Returns false (writing nothing) if n <= 0, or if n is not a power of two and
// P exceeds kHadamardMaxPadded (the padded copy lives on the stack).
inline constexpr int64_t kHadamardMaxPadded = 4096;

inline bool hadamard_bf16(float * v, int64_t n) {
    if (n <= 0) return false;
    int64_t P = 1;
    while (P < n) P *= 2;
    float   padded[kHadamardMaxPadded];
    float * w = v;
    if (P != n) {
        if (P > kHadamardMaxPadded) return false;
        for (int64_t i = 0; i < P; ++i) padded[i] = i < n ? v[i] : 0.0f;
        w = padded;
    }
    for (int64_t h = 1; h < P; h *= 2) {
        for (int64_t i = 0; i < P; i += 2 * h) {
            for (int64_t j = i; j < i + h; ++j) {
                const float a = w[j];
                const float b = w[j + h];
                w[j]          = a + b;
                w[j + h]      = a - b;
            }
        }
    }
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
    for (int64_t i = 0; i < n; ++i) {
        const float y = w[i] * scale;
        v[i]          = round_bf16(y);
    }
    return true;
}

// Spec §3.2 RMSNorm: out[i] = round_bf16(w[i] * (x[i] * r)), r = 1/sqrt(Σx²/n + eps), with the
// sum of squares in ascending i (same arithmetic as rmsnorm_f32 plus the final bf16 rounding).
// out may alias x.
inline void rmsnorm_bf16(float * out, const float * x, const float * w, int64_t n, float eps) {
    rmsnorm_f32(out, x, w, n, eps);
    for (int64_t i = 0; i < n; ++i) out[i] = round_bf16(out[i]);
}

// ---- rotary embedding (spec §3.3) -------------------------------------------------------------

// YaRN correction range: low = max(floor(corr(beta_fast)), 0), high = min(ceil(corr(beta_slow)),
// R-1), corr(b) = R·ln(orig/(b·2π)) / (2·ln base), evaluated in double in that operation order.
struct YarnRange {
    int64_t low  = 0;
    int64_t high = 0;
};

inline YarnRange yarn_range(int64_t rope_dim, double base, int64_t original_seq_len,
                            double beta_fast, double beta_slow) {
    constexpr double kPi  = 3.141592653589793238462643383279502884;
    const auto       corr = [&](double rotations) {
        const double r = static_cast<double>(rope_dim);
        return r * std::log(static_cast<double>(original_seq_len) / (rotations * 2.0 * kPi)) /
               (2.0 * std::log(base));
    };
    YarnRange out;
    out.low  = std::max(static_cast<int64_t>(std::floor(corr(beta_fast))), int64_t{0});
    out.high = std::min(static_cast<int64_t>(std::ceil(corr(beta_slow))), rope_dim - 1);
    return out;
}

// freqs[i], i = 0..rope_dim/2-1, in fp32: f = 1 / pow(base, fp32(2i / R)). With yarn:
// ramp[i] = clamp(fp32(i - low) / fp32(high - low), 0, 1) (high - low replaced by
// high + 0.001 - low, formed in double, if low == high), smooth = 1 - ramp,
// f = (f / factor) * (1 - smooth) + f * smooth, evaluated left to right in fp32.
// powf is the C library's (the spec allows <= 1 ulp there). Precondition: rope_dim even, > 0.
inline void rope_freqs(float * freqs, int64_t rope_dim, float base, bool yarn,
                       int64_t original_seq_len, float factor, float beta_fast, float beta_slow) {
    const int64_t half = rope_dim / 2;
    for (int64_t i = 0; i < half; ++i) {
        const float expo = static_cast<float>(2 * i) / static_cast<float>(rope_dim);
        const float p    = std::pow(base, expo);
        freqs[i]         = 1.0f / p;
    }
    if (!yarn) return;
    const YarnRange r = yarn_range(rope_dim, base, original_seq_len, beta_fast, beta_slow);
    const double    hi =
        r.low == r.high ? static_cast<double>(r.high) + 0.001 : static_cast<double>(r.high);
    const float denom = static_cast<float>(hi - static_cast<double>(r.low));
    for (int64_t i = 0; i < half; ++i) {
        const float num    = static_cast<float>(i) - static_cast<float>(r.low);
        const float ramp   = std::min(std::max(num / denom, 0.0f), 1.0f);
        const float smooth = 1.0f - ramp;
        const float f      = freqs[i];
        const float scaled = f / factor;
        const float a      = scaled * (1.0f - smooth);
        const float b      = f * smooth;
        freqs[i]           = a + b;
    }
}

// cos/sin table row for absolute position pos: θ = fp32(fp32(pos) · freqs[i]), i < half.
inline void rope_cos_sin(float * cos_out, float * sin_out, const float * freqs, int64_t half,
                         int64_t pos) {
    const float p = static_cast<float>(pos);
    for (int64_t i = 0; i < half; ++i) {
        const float theta = p * freqs[i];
        cos_out[i]        = std::cos(theta);
        sin_out[i]        = std::sin(theta);
    }
}

// Spec §3.3 application: rotates the last rope_dim dims of v (length len) as interleaved pairs,
// pair i = (v[len-rope_dim+2i], v[len-rope_dim+2i+1]) with cos[i], sin[i], i < rope_dim/2:
// a' = round_bf16(a·cos − b·sin), b' = round_bf16(a·sin + b·cos), each product rounded to fp32
// before the sum. inverse: sin -> −sin. Dims before len−rope_dim are untouched.
// Precondition: rope_dim even, 0 <= rope_dim <= len.
inline void rope_interleaved_last(float * v, int64_t len, int64_t rope_dim, const float * cos,
                                  const float * sin, bool inverse) {
    float * r = v + (len - rope_dim);
    for (int64_t i = 0; i < rope_dim / 2; ++i) {
        const float c   = cos[i];
        const float s   = inverse ? -sin[i] : sin[i];
        const float a   = r[2 * i];
        const float b   = r[2 * i + 1];
        const float ac  = a * c;
        const float bs  = b * s;
        const float as_ = a * s;
        const float bc  = b * c;
        r[2 * i]        = round_bf16(ac - bs);
        r[2 * i + 1]    = round_bf16(as_ + bc);
    }
}

// ---- small scalar functions -------------------------------------------------------------------

// x[i] = exp(x[i] - max) / Σ exp(x[j] - max), fp32, sum in ascending order, then a division
// (not a multiplication by the reciprocal). n == 0 is a no-op.
inline void softmax_inplace(float * x, int64_t n) {
    if (n <= 0) return;
    float m = x[0];
    for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - m);
        sum += x[i];
    }
    for (int64_t i = 0; i < n; ++i) x[i] = x[i] / sum;
}

// Spec §3.10 gate score: sqrt(softplus(z)), torch softplus with beta 1, threshold 20
// (softplus(z) = z if z > 20 else log1p(exp(z))), fp32.
inline float sqrt_softplus(float z) {
    const float sp = z > 20.0f ? z : std::log1p(std::exp(z));
    return std::sqrt(sp);
}

// Spec §3.10 expert activation: if limit > 0, up = clamp(up, -limit, limit) and
// gate = min(gate, limit) (gate clamped on the upper side only); returns silu(gate) * up with
// silu(g) = g / (1 + exp(-g)), fp32.
inline float swiglu_clamped(float gate, float up, float limit) {
    if (limit > 0.0f) {
        up   = std::min(std::max(up, -limit), limit);
        gate = std::min(gate, limit);
    }
    const float den  = 1.0f + std::exp(-gate);
    const float silu = gate / den;
    return silu * up;
}

// ---- FP8 / FP4 matrix-vector products (spec §4.1, §4.2) ---------------------------------------
//
// Both quantise x with act_quant_fp8 (blocks of 128; codes xa, scales sa) and then follow the
// GPU kernels' structure exactly, in ascending K:
//  lin8: for each 128-block b: partial_b = Σ_{k in b, ascending} e4m3(xa[k]) · e4m3(w[n,k])
//        (each product exact in fp32), acc += partial_b · (sa[b] · sw[n/128, b]) (the scale
//        product and the scaling are exact powers of two), y[n] = round_bf16(acc).
//  lin4: the same with 32-wide chunks c: partial_c = Σ_{k in c} e4m3(xa[k]) · e2m1(w[n,k]),
//        acc += partial_c · (sa[k/128] · sw[n, c]), y[n] = round_bf16(acc).
// Relative to the exact dot product of the dequantised operands, acc therefore differs by at
// most gamma_{K} · Σ_k |terms| (Higham; the partial sums and their accumulation together have
// fewer than K additions per term), and y adds one bf16 rounding (<= 2^-8 relative).

// y[n] (bf16 values, N of them) = lin8(x, W) with W FP8 [N, K] row-major, e4m3 codes, and
// w_scale the e8m0 codes [ceil(N/128), ceil(K/128)] row-major. x: K bf16 values.
// Returns false (writing nothing) unless K is a non-negative multiple of 128.
inline bool lin8_ref(float * y, const float * x, int64_t K, const uint8_t * w,
                     const uint8_t * w_scale, int64_t N) {
    constexpr int64_t kBlock = 128;
    if (K < 0 || K % kBlock != 0) return false;
    const int64_t        nb = K / kBlock;  // = ceil(K/128)
    std::vector<uint8_t> xa(static_cast<size_t>(K));
    std::vector<float>   sa(static_cast<size_t>(nb));
    act_quant_fp8(x, K, xa.data(), sa.data());
    const std::array<float, 256> & dec = e4m3_table();
    for (int64_t n = 0; n < N; ++n) {
        const uint8_t * wr  = w + n * K;
        float           acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
            float partial = 0.0f;
            for (int64_t k = b * kBlock; k < (b + 1) * kBlock; ++k) {
                const float prod = dec[xa[static_cast<size_t>(k)]] * dec[wr[k]];
                partial += prod;
            }
            const float sc =
                sa[static_cast<size_t>(b)] * e8m0_to_f32(w_scale[(n / kBlock) * nb + b]);
            const float scaled = partial * sc;
            acc += scaled;
        }
        y[n] = round_bf16(acc);
    }
    return true;
}

// y[n] (bf16 values, N of them) = lin4(x, W) with W FP4 [N, K] packed as [N, K/2] bytes (element
// 2j in the low nibble of byte j) and w_scale the e8m0 codes [N, K/32] row-major. x: K bf16
// values. Returns false (writing nothing) unless K is a non-negative multiple of 128.
inline bool lin4_ref(float * y, const float * x, int64_t K, const uint8_t * w_packed,
                     const uint8_t * w_scale, int64_t N) {
    constexpr int64_t kBlock = 128;
    constexpr int64_t kChunk = 32;
    if (K < 0 || K % kBlock != 0) return false;
    std::vector<uint8_t> xa(static_cast<size_t>(K));
    std::vector<float>   sa(static_cast<size_t>(K / kBlock));
    act_quant_fp8(x, K, xa.data(), sa.data());
    const std::array<float, 256> & dec = e4m3_table();
    const int64_t                  nc  = K / kChunk;
    for (int64_t n = 0; n < N; ++n) {
        const uint8_t * wr  = w_packed + n * (K / 2);
        float           acc = 0.0f;
        for (int64_t c = 0; c < nc; ++c) {
            float partial = 0.0f;
            for (int64_t k = c * kChunk; k < (c + 1) * kChunk; ++k) {
                const float prod = dec[xa[static_cast<size_t>(k)]] * e2m1_to_f32(fp4_get(wr, k));
                partial += prod;
            }
            const float sc =
                sa[static_cast<size_t>(c * kChunk / kBlock)] * e8m0_to_f32(w_scale[n * nc + c]);
            const float scaled = partial * sc;
            acc += scaled;
        }
        y[n] = round_bf16(acc);
    }
    return true;
}

}  // namespace dsv4::ref
