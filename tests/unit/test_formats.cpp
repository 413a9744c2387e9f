// Tests of the exact reference codecs (dsv4/ref/formats.hpp) and quantisation simulations
// (dsv4/ref/ops.hpp). Why: these functions are the specification the SIMD kernels are tested
// against, so each one is checked against an independent formulation: the spec's formulas with
// std::ldexp, brute-force nearest-even searches over the format's grid, or double-precision
// sums with a derived error bound. Sweeps are exhaustive where the domain is small (all codes,
// all bf16 patterns) and structured elsewhere (every rounding-relevant bit pattern class).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "dsv4/ref/formats.hpp"
#include "dsv4/ref/ops.hpp"

using namespace dsv4::ref;

namespace {

constexpr double kU32  = 0x1p-24;  // unit roundoff of fp32
constexpr double kU16b = 0x1p-8;   // unit roundoff of bf16 (8 significant bits)

double gamma_n(int64_t n) {
    const double nu = static_cast<double>(n) * kU32;
    return nu / (1.0 - nu);
}

bool same_bits(float a, float b) {
    return f32_bits(a) == f32_bits(b);
}

// ---- independent formulations -------------------------------------------------------------

// Spec §2.3 e4m3 decode with ldexp (NaN codes excluded by the caller).
double spec_e4m3(int code) {
    const int    s = code >> 7, e = (code >> 3) & 15, m = code & 7;
    const double v = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7);
    return s ? -v : v;
}

// The 127 non-negative finite e4m3 values, ascending with the code (0x00..0x7E).
const std::vector<double> & e4m3_grid() {
    static const std::vector<double> g = [] {
        std::vector<double> v;
        for (int c = 0; c <= 0x7E; ++c) v.push_back(spec_e4m3(c));
        return v;
    }();
    return g;
}

// Brute-force nearest-even search over a sorted non-negative grid (index = code magnitude):
// returns the index nearest to a (exact comparison 2a vs g0+g1), ties to the even index,
// saturating at the last entry.
int nearest_even_index(const std::vector<double> & grid, double a) {
    const int last = static_cast<int>(grid.size()) - 1;
    if (a >= grid[last]) return last;
    int lo = 0;
    for (int i = 0; i <= last; ++i)
        if (grid[i] <= a) lo = i;
    if (grid[lo] == a) return lo;
    const double two_a = 2.0 * a, mid2 = grid[lo] + grid[lo + 1];
    if (two_a < mid2) return lo;
    if (two_a > mid2) return lo + 1;
    return (lo % 2 == 0) ? lo : lo + 1;
}

uint8_t brute_e4m3(float x) {
    if (std::isnan(x)) return 0x7F;
    const int idx = nearest_even_index(e4m3_grid(), std::fabs(static_cast<double>(x)));
    return static_cast<uint8_t>((std::signbit(x) ? 0x80 : 0) | idx);
}

// Spec §3.4 E4M3_RNE formula, literally (std::nearbyint rounds half to even in the default
// rounding mode).
double spec_e4m3_rne(double x) {
    const double a = std::fabs(x);
    double       q = 0.0;
    if (std::isinf(a)) {
        q = 448.0;  // the formula's saturation, without evaluating log2(inf)
    } else if (a > 0.0) {
        const double u = a >= std::ldexp(1.0, -6)
                             ? std::ldexp(1.0, static_cast<int>(std::floor(std::log2(a))) - 3)
                             : std::ldexp(1.0, -9);
        q              = u * std::nearbyint(a / u);
    }
    if (q > 448.0) q = 448.0;
    return std::copysign(q, x);
}

const std::vector<double> & e2m1_grid() {
    static const std::vector<double> g = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};
    return g;
}

double spec_e2m1(int n) {  // spec §2.3 formula
    const int    s = n >> 3, e = (n >> 1) & 3, m = n & 1;
    const double v = e == 0 ? m * 0.5 : (1.0 + m / 2.0) * std::ldexp(1.0, e - 1);
    return s ? -v : v;
}

double spec_e2m1_rne(double x) {  // spec §3.4 E2M1_RNE formula, literally
    const double a = std::fabs(x);
    const double u = a < 2.0 ? 0.5 : (a < 4.0 ? 1.0 : 2.0);
    const double q = std::min(u * std::nearbyint(a / u), 6.0);
    return std::copysign(q, x);
}

uint8_t brute_e2m1(float x) {
    const int idx = nearest_even_index(e2m1_grid(), std::fabs(static_cast<double>(x)));
    return static_cast<uint8_t>((std::signbit(x) ? 8 : 0) | idx);
}

// Nearest-even bf16 by exact comparison with the two neighbouring bf16 values (the upper one may
// be 2^128, standing in for the overflow threshold as in IEEE RNE).
uint16_t brute_bf16(float x) {
    const uint32_t u  = f32_bits(x);
    const uint32_t lo = u & 0xFFFF0000u;
    if (lo == u) return static_cast<uint16_t>(u >> 16);
    const double a    = std::fabs(static_cast<double>(x));
    const double a_lo = std::fabs(static_cast<double>(f32_from_bits(lo)));
    const double ulp  = std::ldexp(1.0, std::max(static_cast<int>((u >> 23) & 0xFF), 1) - 127 - 7);
    const double a_hi = a_lo + ulp;
    const bool   up   = (a - a_lo > a_hi - a) || (a - a_lo == a_hi - a && ((lo >> 16) & 1u));
    return static_cast<uint16_t>((lo >> 16) + (up ? 1u : 0u));
}

// 2^ceil(log2(r)) for r > 0, by exact doubling/halving (no log, no bit tricks).
double pow2_ceil(double r) {
    double p = 1.0;
    while (p < r) p *= 2.0;
    while (p / 2.0 >= r) p /= 2.0;
    return p;
}

// Brute-force fp8sim / fp4sim of one block: exact amax, spec floor, scale = 2^ceil(log2(amax /
// max)) computed exactly (the spec's claim for bf16 inputs), nearest-even search, dequantise,
// bf16 (the dequantised value has <= 4 significant bits, so the bf16 rounding is exact).
void brute_block_sim(std::vector<float> & v, size_t begin, size_t end, bool fp4) {
    double amax = 0.0;
    for (size_t i = begin; i < end; ++i) amax = std::max(amax, std::fabs(double(v[i])));
    amax           = std::max(amax, fp4 ? std::ldexp(6.0, -126) : double(1e-4f));
    const double s = pow2_ceil(amax / (fp4 ? 6.0 : 448.0));
    for (size_t i = begin; i < end; ++i) {
        const double t = v[i] / s;  // exact in double
        const double q = fp4 ? spec_e2m1(brute_e2m1(static_cast<float>(t)))
                             : spec_e4m3(brute_e4m3(static_cast<float>(t)));
        v[i]           = static_cast<float>(q * s);
    }
}

// Random bf16 values with per-element magnitudes spread over 2^-emax..2^emax.
std::vector<float> random_bf16(size_t n, uint32_t seed, int emin, int emax) {
    std::mt19937                           rng(seed);
    std::uniform_real_distribution<double> mant(1.0, 2.0);
    std::uniform_int_distribution<int>     ex(emin, emax);
    std::bernoulli_distribution            neg(0.5);
    std::vector<float>                     v(n);
    for (float & x : v) {
        const double m = std::ldexp(mant(rng), ex(rng));
        x              = round_bf16(static_cast<float>(neg(rng) ? -m : m));
    }
    return v;
}

// Floats to test a rounding function on: all bf16 patterns, every exponent of interest with
// structured fractions (all top-10-bit prefixes with low bits 0, 1, 0x1000, 0x1FFF), the values
// within 8 ulps of each given grid point and midpoint, and specials.
std::vector<float> sweep_floats(const std::vector<double> & grid, int exp_lo, int exp_hi) {
    std::vector<float> out;
    for (uint32_t h = 0; h < 0x10000u; ++h) out.push_back(f32_from_bits(h << 16));
    for (int e = exp_lo; e <= exp_hi; ++e) {
        for (uint32_t top = 0; top < 1024; ++top) {
            for (uint32_t low : {0u, 1u, 0x1000u, 0x1FFFu}) {
                const uint32_t bits = (static_cast<uint32_t>(e + 127) << 23) | (top << 13) | low;
                out.push_back(f32_from_bits(bits));
                out.push_back(-f32_from_bits(bits));
            }
        }
    }
    std::vector<double> pts = grid;
    for (size_t i = 0; i + 1 < grid.size(); ++i) pts.push_back((grid[i] + grid[i + 1]) / 2.0);
    for (double p : pts) {
        float x = static_cast<float>(p);  // all grid points and midpoints are exact in fp32
        for (int k = 0; k < 8; ++k) x = std::nextafter(x, 0.0f);
        for (int k = 0; k < 17; ++k) {
            out.push_back(x);
            out.push_back(-x);
            x = std::nextafter(x, std::numeric_limits<float>::infinity());
        }
    }
    const float inf = std::numeric_limits<float>::infinity();
    for (float x : {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::max(),
                    std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min()})
        out.push_back(x);
    return out;
}

}  // namespace

// ================================================================================================
// bf16
// ================================================================================================

TEST_CASE("format: bf16 rounding: ties, specials, overflow", "[formats][bf16]") {
    CHECK(f32_to_bf16(f32_from_bits(0x3F808000u)) == 0x3F80);  // tie, even stays
    CHECK(f32_to_bf16(f32_from_bits(0x3F818000u)) == 0x3F82);  // tie, odd rounds up
    CHECK(f32_to_bf16(f32_from_bits(0x3F808001u)) == 0x3F81);  // above the tie
    CHECK(f32_to_bf16(f32_from_bits(0x3F807FFFu)) == 0x3F80);  // below the tie
    CHECK(f32_to_bf16(f32_from_bits(0xBF818000u)) == 0xBF82);  // sign-symmetric
    CHECK(f32_to_bf16(0.0f) == 0x0000);
    CHECK(f32_to_bf16(-0.0f) == 0x8000);
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(f32_to_bf16(inf) == 0x7F80);
    CHECK(f32_to_bf16(-inf) == 0xFF80);
    // Overflow: FLT_MAX is above the largest bf16 (0x7F7F) plus half an ulp: RNE gives inf.
    CHECK(f32_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);
    CHECK(f32_to_bf16(-std::numeric_limits<float>::max()) == 0xFF80);
    CHECK(f32_to_bf16(f32_from_bits(0x7F7F7FFFu)) == 0x7F7F);  // just below the tie
    CHECK(f32_to_bf16(f32_from_bits(0x7F7F8000u)) == 0x7F80);  // tie with odd 0x7F7F -> inf
    // NaN: stays NaN, quiet, sign kept; a low-payload-only NaN does not become inf.
    for (uint32_t nan : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7FBFFFFFu}) {
        const uint16_t h = f32_to_bf16(f32_from_bits(nan));
        CHECK(std::isnan(bf16_to_f32(h)));
        CHECK((h & 0x0040u) != 0);
        CHECK((h >> 15) == (nan >> 31));
    }
    CHECK(round_bf16(1.0f + 0x1p-9f) == 1.0f);
    CHECK(round_bf16(1.0f + 0x1p-8f) == 1.0f);  // tie, even stays
    CHECK(round_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f);
}

TEST_CASE("format: bf16: every pattern round-trips, structured sweep matches brute force",
          "[formats][bf16]") {
    for (uint32_t h = 0; h < 0x10000u; ++h) {
        const float x = bf16_to_f32(static_cast<uint16_t>(h));
        CHECK(f32_bits(x) == (h << 16));
        if (std::isnan(x)) continue;
        const uint16_t back = f32_to_bf16(x);
        if (back != h) FAIL("bf16 round trip " << h);
    }
    int bad = 0;
    for (int e = -149; e <= 127; ++e) {
        for (uint32_t mid = 0; mid < 128; ++mid) {
            for (uint32_t low : {0x0001u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu, 0x5A5Au}) {
                const uint32_t ef   = static_cast<uint32_t>(std::max(e + 127, 0));
                const uint32_t bits = (ef << 23) | (mid << 16) | low;
                for (float x : {f32_from_bits(bits), -f32_from_bits(bits)})
                    if (f32_to_bf16(x) != brute_bf16(x)) ++bad;
            }
        }
    }
    CHECK(bad == 0);
}

// ================================================================================================
// e4m3fn
// ================================================================================================

TEST_CASE("format: e4m3: all 256 codes decode per spec and re-encode to themselves",
          "[formats][e4m3]") {
    const auto & table = e4m3_table();
    for (int c = 0; c < 256; ++c) {
        const uint8_t code = static_cast<uint8_t>(c);
        const float   v    = e4m3_to_f32(code);
        CHECK(same_bits(table[static_cast<size_t>(c)], v));
        if ((c & 0x7F) == 0x7F) {
            CHECK(std::isnan(v));
            continue;
        }
        CHECK(static_cast<double>(v) == spec_e4m3(c));
        CHECK(std::signbit(v) == (c >= 0x80));
        CHECK(f32_to_e4m3(v) == code);
        CHECK(same_bits(e4m3_rne(v), v));
    }
    CHECK(e4m3_to_f32(0x7E) == 448.0f);
    CHECK(e4m3_to_f32(0x01) == 0x1p-9f);
    CHECK(e4m3_to_f32(0x08) == 0x1p-6f);
    CHECK(f32_to_e4m3(0.0f) == 0x00);
    CHECK(f32_to_e4m3(-0.0f) == 0x80);
}

TEST_CASE("format: e4m3: encoder equals brute-force nearest-even search", "[formats][e4m3]") {
    const std::vector<float> xs  = sweep_floats(e4m3_grid(), -14, 10);
    int                      bad = 0, bad_rne = 0;
    for (float x : xs) {
        if (std::isnan(x)) {
            if (f32_to_e4m3(x) != 0x7F) ++bad;
            continue;
        }
        const uint8_t got = f32_to_e4m3(x);
        if (got != brute_e4m3(x)) {
            if (++bad < 5) UNSCOPED_INFO("x=" << x << " bits=" << f32_bits(x));
        }
        const double want = spec_e4m3_rne(static_cast<double>(x));
        if (static_cast<double>(e4m3_rne(x)) != want ||
            std::signbit(e4m3_rne(x)) != std::signbit(want))
            ++bad_rne;
    }
    CHECK(bad == 0);
    CHECK(bad_rne == 0);
    INFO("swept " << xs.size() << " floats");
    // Named cases: saturation, ties, subnormal range, NaN.
    CHECK(f32_to_e4m3(464.0f) == 0x7E);  // tie 448/480 (beyond the grid): saturates
    CHECK(f32_to_e4m3(1e30f) == 0x7E);
    CHECK(f32_to_e4m3(-std::numeric_limits<float>::infinity()) == 0xFE);
    CHECK(f32_to_e4m3(0x1p-10f) == 0x00);   // tie 0 / 2^-9 -> even 0
    CHECK(f32_to_e4m3(-0x1p-10f) == 0x80);  // sign of zero kept
    CHECK(f32_to_e4m3(std::nextafter(0x1p-10f, 1.0f)) == 0x01);
    CHECK(f32_to_e4m3(3 * 0x1p-10f) == 0x02);   // tie 1/2 (·2^-9) -> even 2
    CHECK(f32_to_e4m3(15 * 0x1p-10f) == 0x08);  // tie 7/8 (·2^-9) -> 8 = 2^-6
    CHECK(f32_to_e4m3(1.0625f) == 0x38);        // tie 1 / 1.125 -> even 1
    CHECK(f32_to_e4m3(1.1875f) == 0x3A);        // tie 1.125 / 1.25 -> even 1.25
    CHECK(f32_to_e4m3(std::numeric_limits<float>::quiet_NaN()) == 0x7F);
    CHECK(f32_to_e4m3(-std::numeric_limits<float>::quiet_NaN()) == 0x7F);
    CHECK(std::isnan(e4m3_rne(std::numeric_limits<float>::quiet_NaN())));
}

// ================================================================================================
// e2m1 (FP4)
// ================================================================================================

TEST_CASE("format: e2m1: codes, tie table, packing", "[formats][e2m1]") {
    const float table[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    for (int n = 0; n < 16; ++n) {
        const float v = e2m1_to_f32(static_cast<uint8_t>(n));
        CHECK(same_bits(v, table[n]));
        CHECK(static_cast<double>(v) == spec_e2m1(n));
        CHECK(f32_to_e2m1(v) == n);
    }
    struct Tie {
        float x, q;
    };
    for (Tie t : {Tie{0.25f, 0.0f}, Tie{0.75f, 1.0f}, Tie{1.25f, 1.0f}, Tie{1.75f, 2.0f},
                  Tie{2.5f, 2.0f}, Tie{3.5f, 4.0f}, Tie{5.0f, 4.0f}, Tie{7.0f, 6.0f},
                  Tie{1e9f, 6.0f}, Tie{std::numeric_limits<float>::infinity(), 6.0f}}) {
        CHECK(e2m1_rne(t.x) == t.q);
        CHECK(e2m1_rne(-t.x) == -t.q);
        CHECK(std::signbit(e2m1_rne(-t.x)));
    }
    CHECK(f32_to_e2m1(-0.1f) == 0x8);
    CHECK(f32_to_e2m1(std::numeric_limits<float>::quiet_NaN()) == 0x7);
    // Spec §9: byte 0x21 holds elements (0.5, 1.0), low nibble first.
    const uint8_t row[2] = {0x21, fp4_pack(0xF, 0x8)};
    CHECK(e2m1_to_f32(fp4_get(row, 0)) == 0.5f);
    CHECK(e2m1_to_f32(fp4_get(row, 1)) == 1.0f);
    CHECK(e2m1_to_f32(fp4_get(row, 2)) == -6.0f);
    CHECK(same_bits(e2m1_to_f32(fp4_get(row, 3)), -0.0f));
    CHECK(fp4_pack(0x1, 0x2) == 0x21);
}

TEST_CASE("format: e2m1: encoder equals brute-force nearest-even search and the spec formula",
          "[formats][e2m1]") {
    const std::vector<float> xs  = sweep_floats(e2m1_grid(), -4, 4);
    int                      bad = 0, bad_formula = 0;
    for (float x : xs) {
        if (std::isnan(x)) continue;  // no NaN in e2m1; checked separately
        if (f32_to_e2m1(x) != brute_e2m1(x)) ++bad;
        const double want = spec_e2m1_rne(static_cast<double>(x));
        if (static_cast<double>(e2m1_rne(x)) != want ||
            std::signbit(e2m1_rne(x)) != std::signbit(want))
            ++bad_formula;
    }
    CHECK(bad == 0);
    CHECK(bad_formula == 0);
}

// ================================================================================================
// e8m0 and the scale rule
// ================================================================================================

TEST_CASE("format: e8m0: all 256 codes", "[formats][e8m0]") {
    for (int e = 0; e < 255; ++e) {
        const float v = e8m0_to_f32(static_cast<uint8_t>(e));
        CHECK(v == std::ldexp(1.0f, e - 127));
        CHECK(static_cast<double>(v) == std::ldexp(1.0, e - 127));
        CHECK(f32_to_e8m0_ceil(v) == e);
    }
    CHECK(f32_bits(e8m0_to_f32(0)) == 0x00400000u);  // 2^-127, subnormal, exact
    CHECK(std::isnan(e8m0_to_f32(255)));
    CHECK(f32_to_e8m0_ceil(3.0f) == 129);  // ceil: 4
    CHECK(f32_to_e8m0_ceil(std::nextafter(1.0f, 2.0f)) == 128);
    CHECK(f32_to_e8m0_ceil(std::nextafter(1.0f, 0.0f)) == 127);
    CHECK(f32_to_e8m0_ceil(0x1p-127f * 1.5f) == 1);  // subnormal between 2^-127 and 2^-126
    CHECK(f32_to_e8m0_ceil(0.0f) == 0);
    CHECK(f32_to_e8m0_ceil(std::numeric_limits<float>::infinity()) == 255);
    CHECK(f32_to_e8m0_ceil(std::numeric_limits<float>::quiet_NaN()) == 255);
}

TEST_CASE("format: ue8m0_scale: spec §9 cases and the bit-trick rule", "[formats][e8m0]") {
    CHECK(f32_bits(kFp8AmaxFloor) == 0x38D1B717u);
    CHECK(kInvE4M3Max == static_cast<float>(1.0 / 448.0));
    CHECK(kInvE2M1Max == static_cast<float>(1.0 / 6.0));
    CHECK(kFp4AmaxFloor == static_cast<float>(std::ldexp(6.0, -126)));
    // amax exactly 448·2^k -> 2^k (448 * fp32(1/448) rounds to exactly 1.0f in fp32).
    CHECK(448.0f * kInvE4M3Max == 1.0f);
    for (int k = -10; k <= 10; ++k) {
        CHECK(ue8m0_scale(std::ldexp(448.0f, k), kInvE4M3Max) == std::ldexp(1.0f, k));
        CHECK(ue8m0_scale(std::ldexp(6.0f, k), kInvE2M1Max) == std::ldexp(1.0f, k));
        // One ulp above 448·2^k needs the next power.
        CHECK(ue8m0_scale(std::nextafter(std::ldexp(448.0f, k), 1e30f), kInvE4M3Max) ==
              std::ldexp(1.0f, k + 1));
    }
    CHECK(ue8m0_scale(kFp8AmaxFloor, kInvE4M3Max) == 0x1p-22f);   // all-zero FP8 block
    CHECK(ue8m0_scale(kFp4AmaxFloor, kInvE2M1Max) == 0x1p-126f);  // all-zero FP4 block
    CHECK(ue8m0_scale(std::numeric_limits<float>::infinity(), kInvE4M3Max) ==
          std::numeric_limits<float>::infinity());
    CHECK(f32_bits(ue8m0_scale(0.0f, kInvE4M3Max)) == 0u);
    // The spec's claim: for every bf16 amax (>= the floors), the fp32 bit trick equals
    // 2^ceil(log2(amax / max)) computed exactly.
    int bad8 = 0, bad4 = 0;
    for (uint32_t h = 0x0001; h < 0x7F80; ++h) {
        const float a = bf16_to_f32(static_cast<uint16_t>(h));
        if (a >= kFp8AmaxFloor &&
            static_cast<double>(ue8m0_scale(a, kInvE4M3Max)) != pow2_ceil(double(a) / 448.0))
            ++bad8;
        if (a >= kFp4AmaxFloor &&
            static_cast<double>(ue8m0_scale(a, kInvE2M1Max)) != pow2_ceil(double(a) / 6.0))
            ++bad4;
    }
    CHECK(bad8 == 0);
    CHECK(bad4 == 0);
}

// ================================================================================================
// Block simulations and activation quantisation
// ================================================================================================

TEST_CASE("format: fp8sim and fp4sim equal brute-force per-element simulations", "[formats][sim]") {
    for (uint32_t seed = 1; seed <= 6; ++seed) {
        for (int64_t n : {448, 100, 64, 33}) {
            std::vector<float> v = random_bf16(static_cast<size_t>(n), seed, -30, 20);
            // Shape some blocks: all zero, amax exactly 448·2^k, tiny values, a huge value.
            for (int64_t i = 0; i < std::min<int64_t>(n, 32); ++i) v[static_cast<size_t>(i)] = 0.0f;
            if (n > 64) v[64] = -std::ldexp(448.0f, 3);
            if (n > 70) v[70] = 0x1p-126f;
            for (bool fp4 : {false, true}) {
                const int64_t      block = fp4 ? 32 : 64;
                std::vector<float> got   = v;
                std::vector<float> want  = v;
                if (fp4) {
                    fp4sim_inplace(got.data(), n);
                } else {
                    fp8sim_inplace(got.data(), n, block);
                }
                for (int64_t b = 0; b < n; b += block)
                    brute_block_sim(want, static_cast<size_t>(b),
                                    static_cast<size_t>(std::min(n, b + block)), fp4);
                int bad = 0;
                for (int64_t i = 0; i < n; ++i)
                    if (!same_bits(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)]))
                        ++bad;
                INFO("seed " << seed << " n " << n << " fp4 " << fp4);
                CHECK(bad == 0);
                for (int64_t i = 0; i < 32 && i < n; ++i)
                    CHECK(got[static_cast<size_t>(i)] == 0.0f);
                if (n > 64 && !fp4) CHECK(got[64] == -std::ldexp(448.0f, 3));  // on the grid
            }
        }
    }
    // Spec §9: amax exactly 448·2^k -> scale 2^k: the block keeps every e4m3 grid value · 2^k.
    std::vector<float> v(64);
    for (size_t i = 0; i < v.size(); ++i)
        v[i] = std::ldexp(e4m3_to_f32(static_cast<uint8_t>(0x40 + i % 62)), -5);
    v[0]                   = std::ldexp(448.0f, -5);
    std::vector<float> got = v;
    fp8sim_inplace(got.data(), 64, 64);
    for (size_t i = 0; i < v.size(); ++i) CHECK(got[i] == v[i]);
}

TEST_CASE("format: act_quant_fp8: codes and scales equal brute force", "[formats][sim]") {
    for (uint32_t seed = 11; seed <= 14; ++seed) {
        const int64_t        n = 512;
        std::vector<float>   x = random_bf16(static_cast<size_t>(n), seed, -12, 12);
        std::vector<uint8_t> codes(static_cast<size_t>(n));
        std::vector<float>   scales(static_cast<size_t>(n / 128));
        for (int64_t i = 128; i < 256; ++i) x[static_cast<size_t>(i)] = 0.0f;  // zero block
        REQUIRE(act_quant_fp8(x.data(), n, codes.data(), scales.data()));
        CHECK(scales[1] == 0x1p-22f);
        for (int64_t b = 0; b < n / 128; ++b) {
            double amax = 1e-4f;
            for (int64_t i = b * 128; i < (b + 1) * 128; ++i)
                amax = std::max(amax, std::fabs(double(x[static_cast<size_t>(i)])));
            const double s = pow2_ceil(amax / 448.0);
            CHECK(static_cast<double>(scales[static_cast<size_t>(b)]) == s);
            for (int64_t i = b * 128; i < (b + 1) * 128; ++i)
                CHECK(codes[static_cast<size_t>(i)] ==
                      brute_e4m3(static_cast<float>(x[static_cast<size_t>(i)] / s)));
        }
    }
    std::vector<float>   x(130, 1.0f);
    std::vector<uint8_t> codes(130, 0xAB);
    std::vector<float>   scales(2, -1.0f);
    CHECK_FALSE(act_quant_fp8(x.data(), 130, codes.data(), scales.data()));
    CHECK(codes[0] == 0xAB);
    CHECK(scales[0] == -1.0f);
}

// ================================================================================================
// Hadamard, RMSNorm, RoPE
// ================================================================================================

TEST_CASE("format: hadamard_bf16 against an O(n^2) double-precision transform",
          "[formats][hadamard]") {
    // n not a power of two: v zero-padded to the next one, so output i < n is still the sum
    // over j < n below (the padded entries add zeros), scaled by n^-0.5.
    for (int64_t n : {1, 2, 12, 16, 96, 100, 128, 256}) {
        for (uint32_t seed = 1; seed <= 4; ++seed) {
            // Mildly spread magnitudes: every partial sum is exact in fp32, so the result must be
            // bit-identical to round_bf16(fp32(S) * fp32(n^-0.5)) with S the exact sum.
            std::vector<float> v   = random_bf16(static_cast<size_t>(n), seed * 7 + 1, -3, 3);
            std::vector<float> got = v;
            REQUIRE(hadamard_bf16(got.data(), n));
            const float scale_f = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
            for (int64_t i = 0; i < n; ++i) {
                double s = 0.0;
                for (int64_t j = 0; j < n; ++j) {
                    const double t =
                        (__builtin_popcountll(static_cast<unsigned long long>(i & j)) & 1)
                            ? -double(v[static_cast<size_t>(j)])
                            : double(v[static_cast<size_t>(j)]);
                    s += t;
                }
                REQUIRE(static_cast<double>(static_cast<float>(s)) == s);
                const float model = round_bf16(static_cast<float>(s) * scale_f);
                CHECK(same_bits(got[static_cast<size_t>(i)], model));
                // And within one bf16 rounding (+ fp32 scale/product error) of the exact value.
                const double exact = s / std::sqrt(static_cast<double>(n));
                CHECK(std::fabs(double(got[static_cast<size_t>(i)]) - exact) <=
                      kU16b * std::fabs(exact) * (1.0 + 4.0 * kU32) +
                          4.0 * kU32 * std::fabs(exact));
            }
        }
    }
    // Wide magnitude spread: fp32 butterflies round; each output passes log2(n) additions, so
    // |fp32 sum - S| <= gamma_{log2 n} * sum|v|, then scale and bf16 rounding.
    const int64_t      n   = 128;
    std::vector<float> v   = random_bf16(static_cast<size_t>(n), 99, -40, 20);
    std::vector<float> got = v;
    REQUIRE(hadamard_bf16(got.data(), n));
    double abs_sum = 0.0;
    for (float x : v) abs_sum += std::fabs(double(x));
    for (int64_t i = 0; i < n; ++i) {
        double s = 0.0;
        for (int64_t j = 0; j < n; ++j)
            s += (__builtin_popcountll(static_cast<unsigned long long>(i & j)) & 1)
                     ? -double(v[static_cast<size_t>(j)])
                     : double(v[static_cast<size_t>(j)]);
        const double r     = 1.0 / std::sqrt(double(n));
        const double exact = s * r;
        const double e_sum = (gamma_n(7) + 1e-15) * abs_sum * r;
        const double bound = e_sum + (kU16b + 3.0 * kU32) * (std::fabs(exact) + e_sum);
        CHECK(std::fabs(double(got[static_cast<size_t>(i)]) - exact) <= bound);
    }
    std::vector<float> w(4097, 1.0f);  // padded to 8192 > kHadamardMaxPadded: refused
    CHECK_FALSE(hadamard_bf16(w.data(), 4097));
    CHECK(w[0] == 1.0f);
    CHECK_FALSE(hadamard_bf16(w.data(), 0));
}

TEST_CASE("format: rmsnorm_bf16 rounds the fp32 result once", "[formats][rmsnorm]") {
    const int64_t      n = 300;
    std::vector<float> x = random_bf16(n, 5, -4, 3), w = random_bf16(n, 6, -2, 1);
    std::vector<float> got(n), f32(n);
    rmsnorm_bf16(got.data(), x.data(), w.data(), n, 1e-6f);
    rmsnorm_f32(f32.data(), x.data(), w.data(), n, 1e-6f);
    double ss = 0.0;
    for (float v : x) ss += double(v) * v;
    const double r = 1.0 / std::sqrt(ss / n + 1e-6);
    for (int64_t i = 0; i < n; ++i) {
        const size_t k = static_cast<size_t>(i);
        CHECK(same_bits(got[k], round_bf16(f32[k])));
        const double exact = double(w[k]) * double(x[k]) * r;
        // fp32: sum of squares gamma_n relative (halved by the rsqrt), ~6 further roundings.
        const double e32 = (0.5 * gamma_n(n) + 6.0 * kU32) * std::fabs(exact);
        CHECK(std::fabs(double(got[k]) - exact) <= e32 + kU16b * (std::fabs(exact) + e32));
    }
    std::vector<float> alias = x;
    rmsnorm_bf16(alias.data(), alias.data(), w.data(), n, 1e-6f);
    for (size_t k = 0; k < alias.size(); ++k) CHECK(same_bits(alias[k], got[k]));
}

TEST_CASE("format: rope_freqs: YaRN range and blend", "[formats][rope]") {
    const YarnRange r = yarn_range(64, 160000.0, 65536, 32.0, 1.0);
    CHECK(r.low == 15);
    CHECK(r.high == 25);
    float plain[32], yarn[32];
    rope_freqs(plain, 64, 160000.0f, false, 65536, 16.0f, 32.0f, 1.0f);
    rope_freqs(yarn, 64, 160000.0f, true, 65536, 16.0f, 32.0f, 1.0f);
    for (int i = 0; i < 32; ++i) {
        const double exact = 1.0 / std::pow(160000.0, 2.0 * i / 64.0);
        CHECK(std::fabs(double(plain[i]) - exact) <= 4.0 * kU32 * exact);  // pow <= ~1 ulp
        if (i <= 15) {
            CHECK(yarn[i] == plain[i]);  // smooth = 1: f/16·0 + f·1 == f exactly
        } else if (i >= 25) {
            CHECK(yarn[i] == plain[i] / 16.0f);  // smooth = 0: exactly f/16
        } else {
            const double ramp = (i - 15) / 10.0;
            const double want = double(plain[i]) / 16.0 * ramp + double(plain[i]) * (1.0 - ramp);
            CHECK(std::fabs(double(yarn[i]) - want) <= 8.0 * kU32 * want);
        }
    }
    // rope_theta 10000 layers: no YaRN.
    float f10k[32];
    rope_freqs(f10k, 64, 10000.0f, false, 0, 1.0f, 32.0f, 1.0f);
    CHECK(f10k[0] == 1.0f);
    CHECK(std::fabs(double(f10k[31]) - 1.0 / std::pow(10000.0, 62.0 / 64.0)) <=
          4.0 * kU32 * double(f10k[31]));
    // low == high (corr(31.45) = 15.5, corr(45.74) = 14.5): the ramp denominator becomes
    // 0.001, a step from f to f/16 just after i = low.
    const YarnRange same = yarn_range(64, 160000.0, 65536, 31.45, 45.74);
    REQUIRE(same.low == 15);
    REQUIRE(same.high == 15);
    float step[32];
    rope_freqs(step, 64, 160000.0f, true, 65536, 16.0f, 31.45f, 45.74f);
    for (int i = 0; i < 32; ++i) CHECK(step[i] == (i <= 15 ? plain[i] : plain[i] / 16.0f));
    // Cosine/sine table: θ = fp32(fp32(p) · f).
    float c[32], s[32];
    rope_cos_sin(c, s, yarn, 32, 1000);
    for (int i = 0; i < 32; ++i) {
        const float theta = 1000.0f * yarn[i];
        CHECK(std::fabs(double(c[i]) - std::cos(double(theta))) <= 2e-7);
        CHECK(std::fabs(double(s[i]) - std::sin(double(theta))) <= 2e-7);
    }
}

TEST_CASE("format: rope_interleaved_last rotates the last dims as interleaved pairs",
          "[formats][rope]") {
    const int64_t      len = 512, rd = 64;
    std::vector<float> v = random_bf16(len, 3, -3, 3);
    float              freqs[32], c[32], s[32];
    rope_freqs(freqs, rd, 160000.0f, true, 65536, 16.0f, 32.0f, 1.0f);
    rope_cos_sin(c, s, freqs, 32, 777);
    std::vector<float> got = v;
    rope_interleaved_last(got.data(), len, rd, c, s, false);
    for (int64_t i = 0; i < len - rd; ++i)
        CHECK(same_bits(got[static_cast<size_t>(i)], v[static_cast<size_t>(i)]));
    for (int64_t i = 0; i < rd / 2; ++i) {
        const double a = v[static_cast<size_t>(len - rd + 2 * i)];
        const double b = v[static_cast<size_t>(len - rd + 2 * i + 1)];
        const double x = a * c[i] - b * s[i], y = a * s[i] + b * c[i];
        // Two product roundings and one sum rounding in fp32, then one bf16 rounding.
        const double ex = 2.0 * kU32 * (std::fabs(a * c[i]) + std::fabs(b * s[i]));
        const double ey = 2.0 * kU32 * (std::fabs(a * s[i]) + std::fabs(b * c[i]));
        CHECK(std::fabs(double(got[static_cast<size_t>(len - rd + 2 * i)]) - x) <=
              ex + kU16b * (std::fabs(x) + ex));
        CHECK(std::fabs(double(got[static_cast<size_t>(len - rd + 2 * i + 1)]) - y) <=
              ey + kU16b * (std::fabs(y) + ey));
    }
    // inverse == forward with negated sines, bit for bit.
    float neg_s[32];
    for (int i = 0; i < 32; ++i) neg_s[i] = -s[i];
    std::vector<float> inv = v, fwd_neg = v;
    rope_interleaved_last(inv.data(), len, rd, c, s, true);
    rope_interleaved_last(fwd_neg.data(), len, rd, c, neg_s, false);
    for (size_t k = 0; k < v.size(); ++k) CHECK(same_bits(inv[k], fwd_neg[k]));
    // Zero angle leaves bf16 inputs unchanged.
    float one[32], zero[32];
    std::fill(one, one + 32, 1.0f);
    std::fill(zero, zero + 32, 0.0f);
    std::vector<float> id = v;
    rope_interleaved_last(id.data(), len, rd, one, zero, false);
    for (size_t k = 0; k < v.size(); ++k) CHECK(id[k] == v[k]);
}

// ================================================================================================
// Scalar functions
// ================================================================================================

TEST_CASE("format: softmax, sqrt_softplus, swiglu_clamped", "[formats][scalar]") {
    std::vector<float> x = {1000.0f, 999.0f, -5.0f, 998.5f};
    softmax_inplace(x.data(), 4);
    const double e[4] = {1.0, std::exp(-1.0), std::exp(-1005.0), std::exp(-1.5)};
    const double sum  = e[0] + e[1] + e[2] + e[3];
    for (int i = 0; i < 4; ++i)
        CHECK(std::fabs(x[static_cast<size_t>(i)] - e[i] / sum) <= 1e-6 * e[i] / sum + 1e-30);

    CHECK(sqrt_softplus(25.0f) == 5.0f);  // above the threshold: softplus(z) = z
    const float above = std::nextafter(20.0f, 30.0f);
    CHECK(same_bits(sqrt_softplus(above), std::sqrt(above)));
    for (float z : {20.0f, 0.0f, -3.0f, -100.0f, 7.5f})
        CHECK(same_bits(sqrt_softplus(z), std::sqrt(std::log1p(std::exp(z)))));
    CHECK(std::fabs(sqrt_softplus(0.0f) - std::sqrt(std::log(2.0))) <= 1e-7);

    const float L    = 10.0f;
    auto        silu = [](double g) { return g / (1.0 + std::exp(-g)); };
    CHECK(swiglu_clamped(1.0f, 100.0f, L) == swiglu_clamped(1.0f, 10.0f, L));    // up upper
    CHECK(swiglu_clamped(1.0f, -100.0f, L) == swiglu_clamped(1.0f, -10.0f, L));  // up lower
    CHECK(swiglu_clamped(100.0f, 1.0f, L) == swiglu_clamped(10.0f, 1.0f, L));    // gate upper
    // Gate is not clamped from below: silu(-15) differs from silu(-10).
    CHECK(std::fabs(swiglu_clamped(-15.0f, 1.0f, L) - silu(-15.0)) <=
          1e-6 * std::fabs(silu(-15.0)));
    CHECK(std::fabs(swiglu_clamped(100.0f, 2.0f, L) - 2.0 * silu(10.0)) <= 1e-5);
    // limit 0: no clamps.
    CHECK(swiglu_clamped(1.0f, 100.0f, 0.0f) == 100.0f * swiglu_clamped(1.0f, 1.0f, 0.0f));
}

// ================================================================================================
// FP8 / FP4 linear twins
// ================================================================================================

namespace {

// Random e4m3 code, never NaN.
uint8_t random_e4m3(std::mt19937 & rng) {
    for (;;) {
        const uint8_t c = static_cast<uint8_t>(rng() & 0xFFu);
        if ((c & 0x7Fu) != 0x7Fu) return c;
    }
}

// Independent activation quantisation (values): xq[k] = e4m3 value, sa[b] = scale.
void brute_act_quant(const std::vector<float> & x, std::vector<double> & xq,
                     std::vector<double> & sa) {
    const size_t K = x.size();
    xq.assign(K, 0.0);
    sa.assign(K / 128, 0.0);
    for (size_t b = 0; b < K / 128; ++b) {
        double amax = 1e-4f;
        for (size_t k = b * 128; k < (b + 1) * 128; ++k)
            amax = std::max(amax, std::fabs(double(x[k])));
        sa[b] = pow2_ceil(amax / 448.0);
        for (size_t k = b * 128; k < (b + 1) * 128; ++k)
            xq[k] = spec_e4m3(brute_e4m3(static_cast<float>(x[k] / sa[b])));
    }
}

// Error bound of the twins (see the comment above lin8_ref): the fp32 accumulation is within
// gamma_K · T of the exact sum (T = Σ|terms|; the double reference adds <= K·2^-53·T), then one
// bf16 rounding: |y - E| <= e + 2^-8·(|E| + e).
double lin_bound(double exact, double abs_terms, int64_t K) {
    const double e = gamma_n(K) * abs_terms + static_cast<double>(K) * 0x1p-53 * abs_terms;
    return e + kU16b * (std::fabs(exact) + e);
}

}  // namespace

TEST_CASE("format: lin8_ref against a double-precision dequantise-and-dot", "[formats][lin]") {
    for (int64_t K : {128, 512}) {
        const int64_t        N  = 130;  // two scale rows, the second partial
        const int64_t        nb = K / 128;
        std::mt19937         rng(static_cast<uint32_t>(K));
        std::vector<uint8_t> w(static_cast<size_t>(N * K)), ws(static_cast<size_t>(2 * nb));
        for (uint8_t & c : w) c = random_e4m3(rng);
        for (uint8_t & c : ws) c = static_cast<uint8_t>(120 + rng() % 12);
        std::vector<float> x = random_bf16(static_cast<size_t>(K), 77, -8, 4);
        std::vector<float> y(static_cast<size_t>(N));
        REQUIRE(lin8_ref(y.data(), x.data(), K, w.data(), ws.data(), N));
        std::vector<double> xq, sa;
        brute_act_quant(x, xq, sa);
        for (int64_t n = 0; n < N; ++n) {
            double exact = 0.0, abs_terms = 0.0;
            for (int64_t k = 0; k < K; ++k) {
                const double t =
                    xq[static_cast<size_t>(k)] * sa[static_cast<size_t>(k / 128)] *
                    spec_e4m3(w[static_cast<size_t>(n * K + k)]) *
                    std::ldexp(1.0, ws[static_cast<size_t>((n / 128) * nb + k / 128)] - 127);
                exact += t;
                abs_terms += std::fabs(t);
            }
            const double got = y[static_cast<size_t>(n)];
            CHECK(round_bf16(y[static_cast<size_t>(n)]) == y[static_cast<size_t>(n)]);
            CHECK(std::fabs(got - exact) <= lin_bound(exact, abs_terms, K));
        }
    }
    // Exactly representable case: x = 1 (scale 2^-8, code 256), W = 1 (0x38), sw = 2^0.
    const int64_t        K = 256, N = 3;
    std::vector<float>   x(K, 1.0f), y(N);
    std::vector<uint8_t> w(static_cast<size_t>(N * K), 0x38), ws(2, 127);
    REQUIRE(lin8_ref(y.data(), x.data(), K, w.data(), ws.data(), N));
    for (float v : y) CHECK(v == 256.0f);
    CHECK_FALSE(lin8_ref(y.data(), x.data(), 200, w.data(), ws.data(), N));
}

TEST_CASE("format: lin4_ref against a double-precision dequantise-and-dot", "[formats][lin]") {
    for (int64_t K : {128, 384}) {
        const int64_t        N = 7;
        std::mt19937         rng(static_cast<uint32_t>(K + 1));
        std::vector<uint8_t> w(static_cast<size_t>(N * K / 2)), ws(static_cast<size_t>(N * K / 32));
        for (uint8_t & c : w) c = static_cast<uint8_t>(rng() & 0xFFu);
        for (uint8_t & c : ws) c = static_cast<uint8_t>(118 + rng() % 16);
        std::vector<float> x = random_bf16(static_cast<size_t>(K), 78, -6, 6);
        std::vector<float> y(static_cast<size_t>(N));
        REQUIRE(lin4_ref(y.data(), x.data(), K, w.data(), ws.data(), N));
        std::vector<double> xq, sa;
        brute_act_quant(x, xq, sa);
        for (int64_t n = 0; n < N; ++n) {
            double exact = 0.0, abs_terms = 0.0;
            for (int64_t k = 0; k < K; ++k) {
                // Element k of row n: byte k/2, low nibble for even k (independent of fp4_get).
                const uint8_t byte = w[static_cast<size_t>(n * (K / 2) + k / 2)];
                const int     nib  = (k % 2 == 0) ? (byte & 0xF) : (byte >> 4);
                const double  t =
                    xq[static_cast<size_t>(k)] * sa[static_cast<size_t>(k / 128)] * spec_e2m1(nib) *
                    std::ldexp(1.0, ws[static_cast<size_t>(n * (K / 32) + k / 32)] - 127);
                exact += t;
                abs_terms += std::fabs(t);
            }
            const double got = y[static_cast<size_t>(n)];
            CHECK(round_bf16(y[static_cast<size_t>(n)]) == y[static_cast<size_t>(n)]);
            CHECK(std::fabs(got - exact) <= lin_bound(exact, abs_terms, K));
        }
    }
    // Exactly representable case: x = 1 (xq 256, sa 2^-8), every nibble 0x2 (1.0), sw = 2^1.
    const int64_t        K = 128, N = 2;
    std::vector<float>   x(K, 1.0f), y(N);
    std::vector<uint8_t> w(static_cast<size_t>(N * K / 2), 0x22),
        ws(static_cast<size_t>(N * K / 32), 128);
    REQUIRE(lin4_ref(y.data(), x.data(), K, w.data(), ws.data(), N));
    for (float v : y) CHECK(v == 256.0f);
    CHECK_FALSE(lin4_ref(y.data(), x.data(), 96, w.data(), ws.data(), N));
}
