// Exact scalar codecs for the number formats DeepSeek-V4 uses (spec §2.3, §3.4): bf16, e4m3fn
// (FP8), e2m1 (FP4) and ue8m0 (power-of-two scales), plus the reference's scale rule.
//
// Why this file exists: every quantised kernel (SIMD GEMMs, KV simulation, weight loaders) is
// tested against these functions, so they favour exactness and readability over speed. All
// rounding is done on integer bit patterns or exact comparisons, so nothing depends on the
// floating-point environment (rounding mode, flush-to-zero) or on the C library.
//
// Public header: C++17, standard library only.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

namespace dsv4::ref {

// ---- bit helpers ------------------------------------------------------------------------------

inline uint32_t f32_bits(float x) {
    uint32_t u = 0;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

inline float f32_from_bits(uint32_t u) {
    float x = 0.0f;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// ---- constants of the reference ---------------------------------------------------------------

constexpr float kE4M3Max = 448.0f;  // largest finite e4m3fn value (code 0x7E)
constexpr float kE2M1Max = 6.0f;    // largest e2m1 value (nibble 0x7)
// fp32(1/448) and fp32(1/6): the reference multiplies amax by these fp32 constants (it does not
// divide by the format maximum). fp32 division is correctly rounded, so these are fp32(1/max).
constexpr float kInvE4M3Max = 1.0f / 448.0f;
constexpr float kInvE2M1Max = 1.0f / 6.0f;
// amax floors: 1e-4 as fp32 (bits 0x38D1B717) for FP8 blocks, 6 * 2^-126 for FP4 blocks.
constexpr float kFp8AmaxFloor = 1e-4f;
constexpr float kFp4AmaxFloor = 6.0f * 0x1p-126f;

// ---- bf16 -------------------------------------------------------------------------------------
// bf16 = the upper 16 bits of a binary32.

// Round to nearest, ties to even. ±inf stay ±inf; finite values above the largest bf16 round to
// ±inf (as IEEE RNE does); NaN stays NaN with its sign and top payload bits, forced quiet (so a
// NaN whose payload lived only in the low 16 bits cannot turn into an infinity).
inline uint16_t f32_to_bf16(float x) {
    uint32_t u = f32_bits(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
    u += 0x7FFFu + ((u >> 16) & 1u);  // cannot wrap: the largest non-NaN pattern is 0xFF800000
    return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_f32(uint16_t h) {
    return f32_from_bits(static_cast<uint32_t>(h) << 16);
}

// The bf16 rounding point of the reference: the nearest-even bf16 value, as a float.
inline float round_bf16(float x) {
    return bf16_to_f32(f32_to_bf16(x));
}

// ---- e4m3fn (FP8) -----------------------------------------------------------------------------
// Byte s eeee mmm, bias 7. e = 0: subnormal (m/8)·2^-6; e = 15, m = 7 (0x7F/0xFF): NaN; no
// infinities; largest finite 448 (0x7E).

inline float e4m3_to_f32(uint8_t code) {
    const uint32_t s = code >> 7;
    const uint32_t e = (code >> 3) & 0xFu;
    const uint32_t m = code & 0x7u;
    float          v = 0.0f;
    if (e == 15 && m == 7) {
        v = std::numeric_limits<float>::quiet_NaN();
    } else if (e == 0) {
        v = static_cast<float>(m) * 0x1p-9f;  // (m/8)·2^-6, exact
    } else {
        v = f32_from_bits(((e + 120u) << 23) | (m << 20));  // rebias 7 -> 127
    }
    return s ? -v : v;
}

// All 256 codes decoded (index = code).
inline const std::array<float, 256> & e4m3_table() {
    static const std::array<float, 256> table = [] {
        std::array<float, 256> t{};
        for (size_t c = 0; c < t.size(); ++c) t[c] = e4m3_to_f32(static_cast<uint8_t>(c));
        return t;
    }();
    return table;
}

// Round to nearest, ties to even mantissa, onto the e4m3 grid, saturating to ±448 (the reference
// clamps to ±448 before its cast, so ±inf and everything beyond 448 give ±448). The sign of
// zero is kept (-tiny -> 0x80). NaN -> 0x7F whatever its sign (an explicit choice: the reference
// never produces NaN inputs).
inline uint8_t f32_to_e4m3(float x) {
    const uint32_t u    = f32_bits(x);
    const uint8_t  sign = static_cast<uint8_t>((u >> 24) & 0x80u);
    const uint32_t a    = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return 0x7F;
    if (a >= f32_bits(kE4M3Max)) return static_cast<uint8_t>(sign | 0x7Eu);
    const int32_t exp_field = static_cast<int32_t>(a >> 23);
    // Significand with its implicit bit (none for fp32 subnormals) and unbiased exponent, so that
    // |x| = sig · 2^(e - 23).
    const uint32_t sig = exp_field ? ((a & 0x7FFFFFu) | 0x800000u) : (a & 0x7FFFFFu);
    const int32_t  e   = exp_field ? exp_field - 127 : -126;
    // Quantum of the target binade: 2^(e-3) for normal e4m3 (e >= -6), 2^-9 below, so
    // |x| / quantum = sig · 2^-shift with shift = 20 resp. 14 - e (>= 21).
    const int32_t shift = e >= -6 ? 20 : 14 - e;
    uint32_t      q     = 0;  // |x| / quantum rounded half-even
    if (shift < 32) {
        q                   = sig >> shift;
        const uint32_t rem  = sig & ((1u << shift) - 1u);
        const uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) ++q;
    }  // else |x| < 2^-17, far below 2^-10 (half the smallest subnormal): q = 0
    uint32_t code = 0;
    if (e >= -6) {
        // q in [8, 16]; q == 16 carries into the exponent, which the addition does for free.
        code = (static_cast<uint32_t>(e + 7) << 3) + q - 8u;
    } else {
        code = q;  // 0..8; 8 is the smallest normal 2^-6 (code 0x08)
    }
    if (code > 0x7Eu) code = 0x7Eu;  // unreachable below 448, kept as a guard
    return static_cast<uint8_t>(sign | code);
}

// Spec §3.4 E4M3_RNE with saturation: the value f32_to_e4m3 encodes. NaN passes through.
inline float e4m3_rne(float x) {
    if (std::isnan(x)) return x;
    return e4m3_to_f32(f32_to_e4m3(x));
}

// ---- e2m1 (FP4) -------------------------------------------------------------------------------
// Nibble s ee m: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives (nibble 8 is -0).

// Decodes the low 4 bits of `nibble` (higher bits are ignored).
inline float e2m1_to_f32(uint8_t nibble) {
    constexpr float kMag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    const float     v       = kMag[nibble & 7u];
    return (nibble & 8u) ? -v : v;
}

// Round to nearest, ties to the even code (even mantissa bit), saturating at ±6, sign kept
// (also for zero). Each midpoint is compared exactly: ties at 0.25, 1.25, 2.5, 5 go down (to the
// even codes 0, 2, 4, 6 = 0, 1, 2, 4) and ties at 0.75, 1.75, 3.5 go up (to 1, 2, 4). NaN -> 0x7
// (+6): e2m1 has no NaN, so it saturates like +inf (the reference never produces NaN inputs).
inline uint8_t f32_to_e2m1(float x) {
    if (std::isnan(x)) return 0x7;
    const uint8_t sign = std::signbit(x) ? 0x8 : 0x0;
    const float   a    = std::fabs(x);
    uint8_t       mag  = 7;
    if (a <= 0.25f) {
        mag = 0;
    } else if (a < 0.75f) {
        mag = 1;
    } else if (a <= 1.25f) {
        mag = 2;
    } else if (a < 1.75f) {
        mag = 3;
    } else if (a <= 2.5f) {
        mag = 4;
    } else if (a < 3.5f) {
        mag = 5;
    } else if (a <= 5.0f) {
        mag = 6;
    }
    return static_cast<uint8_t>(sign | mag);
}

// Spec §3.4 E2M1_RNE (with saturation): the value f32_to_e2m1 encodes. NaN passes through.
inline float e2m1_rne(float x) {
    if (std::isnan(x)) return x;
    return e2m1_to_f32(f32_to_e2m1(x));
}

// FP4 packing: byte j of a row holds element 2j in its low nibble and 2j+1 in its high nibble.
inline uint8_t fp4_get(const uint8_t * row, int64_t k) {
    const uint8_t b = row[k >> 1];
    return (k & 1) ? static_cast<uint8_t>(b >> 4) : static_cast<uint8_t>(b & 0x0Fu);
}

inline uint8_t fp4_pack(uint8_t lo, uint8_t hi) {
    return static_cast<uint8_t>((lo & 0x0Fu) | ((hi & 0x0Fu) << 4));
}

// ---- ue8m0 (E8M0 scales) ----------------------------------------------------------------------
// Byte e -> 2^(e-127); 255 -> NaN. e = 0 is 2^-127, an fp32 subnormal (bits 0x00400000).

inline float e8m0_to_f32(uint8_t e) {
    if (e == 255) return std::numeric_limits<float>::quiet_NaN();
    if (e == 0) return f32_from_bits(0x00400000u);
    return f32_from_bits(static_cast<uint32_t>(e) << 23);
}

// The smallest e with 2^(e-127) >= x, i.e. 127 + ceil(log2 x): exact for the power-of-two
// scales (2^-127..2^127 map to 0..254). Out of range: x <= 2^-127 (including 0 and negative
// values) -> 0; x > 2^127 (including +inf) and NaN -> 255 (NaN, no finite code fits).
inline uint8_t f32_to_e8m0_ceil(float x) {
    if (std::isnan(x) || x > 0x1p127f) return 255;
    if (!(x > 0x1p-127f)) return 0;
    const uint32_t u         = f32_bits(x);
    const uint32_t exp_field = u >> 23;
    const uint32_t mant      = u & 0x7FFFFFu;
    if (exp_field == 0) {
        // Subnormal x = mant · 2^-149 with 2^-127 < x < 2^-126: ceil(log2 x) = -126.
        return 1;
    }
    return static_cast<uint8_t>(exp_field + (mant != 0 ? 1u : 0u));  // (e-127) + ceil + 127
}

// The reference's ue8m0 scale rule (fast_round_scale, golden README §1): y = fp32(amax · inv_max)
// formed in fp32, then 2^(exponent field of y - 127 + (mantissa of y != 0)), built from exponent
// bits. inv_max is kInvE4M3Max or kInvE2M1Max. For finite positive amax this is
// 2^ceil(log2 y); amax = 448·2^k gives y = 1·2^k exactly, hence scale 2^k. Edge cases follow the
// bit construction: y = 0 -> +0.0f; y = +inf -> +inf; a NaN product gives NaN (the bit trick
// would give -0.0f; callers never pass NaN). The sign of amax is ignored.
inline float ue8m0_scale(float amax, float inv_max) {
    const float y = amax * inv_max;
    if (std::isnan(y)) return y;
    const uint32_t u         = f32_bits(y);
    const uint32_t exp_field = (u >> 23) & 0xFFu;
    const uint32_t round_up  = (u & 0x7FFFFFu) != 0 ? 1u : 0u;
    // exp_field + round_up is in [0, 255] here (exp_field 255 has a zero mantissa: infinity).
    return f32_from_bits((exp_field + round_up) << 23);
}

}  // namespace dsv4::ref
