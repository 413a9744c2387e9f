// The elementwise kernels (rmsnorm_bf16, rope, rope_heads, softmax, swiglu, sqrt_softplus,
// hc_post, fp8sim, fp4sim, hadamard) of every usable kernel table against include/dsv4/ref (and
// hc_post against the spec's ordered sum), over odd sizes (SIMD tails), unaligned pointers and
// the aliasing each entry allows. Elements outside the range a kernel may write are checked to
// be untouched.
//
// Exact ops (fp8sim, fp4sim, hadamard, rope) must match the reference bit for bit (compared as
// bit patterns, so −0 vs +0 counts). The others carry a tolerance derived next to each check
// from the error bounds documented in src/kernels/simd/elementwise-inl.hpp.
#include <algorithm>
#include <cstring>
#include <limits>

#include "dsv4/ref/formats.hpp"
#include "dsv4/ref/ops.hpp"
#include "kernels/arch_util.hpp"

using namespace dsv4;

namespace {

constexpr int64_t kSizes[] = {1, 7, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1000, 4096};
constexpr float   kGuard   = 12345.0f;  // sentinel around the written range
constexpr int64_t kPad     = 19;        // guard elements after the range

// Max error of the kernels' exp (elt_exp) against exact exp, measured over every fp32 x in
// [-104, 89] (subnormal results: in units of 2^-149): 1.01 ulp. glibc's expf (the reference's
// std::exp): 0.502 ulp (documented by glibc's implementation, measured the same way).
constexpr double kExpUlpMine = 1.02;
constexpr double kExpUlpLibm = 0.51;

// bf16 values with random sign, exponents uniform in [elo, ehi], 7 random mantissa bits.
std::vector<float> bf16_values(int64_t n, uint32_t seed, int elo, int ehi) {
    std::mt19937                       rng(seed);
    std::uniform_int_distribution<int> e(elo, ehi), m(0, 127), sgn(0, 1);
    std::vector<float>                 v(n);
    for (float & x : v) {
        const float mag = std::ldexp(1.0f + static_cast<float>(m(rng)) / 128.0f, e(rng));
        x               = ref::round_bf16(sgn(rng) ? -mag : mag);
    }
    return v;
}

bool same_bits(float a, float b) {
    return ref::f32_bits(a) == ref::f32_bits(b);
}

// A buffer [off guards][n values][kPad guards] so unaligned starts and out-of-range writes show.
struct Guarded {
    Guarded(const std::vector<float> & vals, int64_t offset)
        : off(offset), n(static_cast<int64_t>(vals.size())), buf(off + n + kPad, kGuard) {
        for (int64_t i = 0; i < n; ++i) buf[off + i] = vals[i];
    }
    float * data() { return buf.data() + off; }
    bool    guards_intact() const {
           for (int64_t i = 0; i < off; ++i)
            if (buf[i] != kGuard) return false;
        for (int64_t i = off + n; i < off + n + kPad; ++i)
            if (buf[i] != kGuard) return false;
        return true;
    }
    int64_t            off, n;
    std::vector<float> buf;
};

// Values that exercise the quantisation simulations: wide exponent range (so many elements fall
// into the e4m3/e2m1 subnormal range of their block), zeros of both signs, fp32-subnormal bf16
// values, block maxima exactly at 448·2^k / 6·2^k, and (by the random 7-bit mantissas) many
// exact ties of the e4m3/e2m1 rounding.
std::vector<float> quant_inputs(int64_t n, uint32_t seed) {
    auto v = bf16_values(n, seed, -24, 6);
    for (int64_t i = 0; i < n; i += 11) v[i] = 0.0f;
    for (int64_t i = 5; i < n; i += 13) v[i] = -0.0f;
    for (int64_t i = 3; i < n; i += 37) v[i] = ref::round_bf16(0x1.8p-130f);  // fp32 subnormal
    for (int64_t i = 9; i < n; i += 97) v[i] = 448.0f * 0x1p-3f;
    for (int64_t i = 17; i < n; i += 101) v[i] = -6.0f * 0x1p2f;
    for (int64_t i = 29; i < n; i += 113) v[i] = 3.0e30f;  // huge block: e4m3 underflows to ±0
    return v;
}

}  // namespace

// ---- exact ops ---------------------------------------------------------------------------------

TEST_CASE("fp8sim is bit-exact vs ref::fp8sim_inplace on every arch", "[per_arch][elementwise]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t block : {64, 1, 7, 32, 100, 128}) {
            for (int64_t n : kSizes) {
                DYNAMIC_SECTION(k.name << " block=" << block << " n=" << n) {
                    const auto vals = quant_inputs(n, static_cast<uint32_t>(n * 7 + block));
                    Guarded    got(vals, 1 + n % 3);
                    auto       want = vals;
                    k.fp8sim(got.data(), n, block);
                    ref::fp8sim_inplace(want.data(), n, block);
                    int64_t bad = 0;
                    for (int64_t i = 0; i < n; ++i) bad += !same_bits(got.data()[i], want[i]);
                    CHECK(bad == 0);
                    CHECK(got.guards_intact());
                }
            }
        }
    }
}

TEST_CASE("fp4sim is bit-exact vs ref::fp4sim_inplace on every arch", "[per_arch][elementwise]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t n : kSizes) {
            for (int range : {0, 1}) {
                DYNAMIC_SECTION(k.name << " n=" << n << " range=" << range) {
                    // range 0: the wide mix; range 1: values inside one block's few binades
                    // (dense coverage of the e2m1 grid, ties included).
                    const auto vals = range == 0 ? quant_inputs(n, static_cast<uint32_t>(n * 3 + 1))
                                                 : bf16_values(n, static_cast<uint32_t>(n), -3, 2);
                    Guarded    got(vals, n % 4);
                    auto       want = vals;
                    k.fp4sim(got.data(), n);
                    ref::fp4sim_inplace(want.data(), n);
                    int64_t bad = 0;
                    for (int64_t i = 0; i < n; ++i) bad += !same_bits(got.data()[i], want[i]);
                    CHECK(bad == 0);
                    CHECK(got.guards_intact());
                }
            }
        }
    }
}

TEST_CASE("hadamard is bit-exact vs ref::hadamard_bf16 on every arch", "[per_arch][elementwise]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        // Not powers of two (3 .. 3000): zero-padded to the next one, the first n outputs kept.
        for (int64_t n : {1, 2, 3, 4, 8, 12, 16, 32, 64, 96, 100, 128, 129, 160, 256, 1024, 3000}) {
            DYNAMIC_SECTION(k.name << " n=" << n) {
                const auto vals = bf16_values(n, static_cast<uint32_t>(n + 5), -8, 4);
                Guarded    got(vals, 1);
                auto       want = vals;
                REQUIRE(k.hadamard(got.data(), n));
                REQUIRE(ref::hadamard_bf16(want.data(), n));
                int64_t bad = 0;
                for (int64_t i = 0; i < n; ++i) bad += !same_bits(got.data()[i], want[i]);
                CHECK(bad == 0);
                CHECK(got.guards_intact());
            }
        }
        for (int64_t n : {0, 4097}) {  // empty, or padded past kHadamardMaxPadded: false
            auto vals = bf16_values(n, 1, -2, 2);
            auto orig = vals;
            CHECK_FALSE(k.hadamard(vals.data(), n));
            CHECK(vals == orig);
        }
    }
}

TEST_CASE("rope and rope_heads are bit-exact vs ref::rope_interleaved_last on every arch",
          "[per_arch][elementwise]") {
    struct Shape {
        int64_t len, rope_dim;
    };
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (Shape sh : {Shape{512, 64}, Shape{128, 64}, Shape{64, 64}, Shape{9, 2}, Shape{20, 6},
                         Shape{40, 14}, Shape{16, 16}, Shape{33, 30}, Shape{200, 128}}) {
            for (bool inverse : {false, true}) {
                DYNAMIC_SECTION(k.name << " len=" << sh.len << " rope_dim=" << sh.rope_dim
                                       << " inverse=" << inverse) {
                    const int64_t      half = sh.rope_dim / 2;
                    std::vector<float> freqs(half), cs(half + 1), sn(half + 1);
                    ref::rope_freqs(freqs.data(), sh.rope_dim, 160000.0f, true, 65536, 16.0f, 32.0f,
                                    1.0f);
                    ref::rope_cos_sin(cs.data() + 1, sn.data() + 1, freqs.data(), half,
                                      1000 + sh.len);  // +1: unaligned tables
                    const float * c = cs.data() + 1;
                    const float * s = sn.data() + 1;

                    const auto vals = bf16_values(sh.len, static_cast<uint32_t>(sh.len), -6, 6);
                    Guarded    got(vals, 3);
                    auto       want = vals;
                    k.rope(got.data(), sh.len, sh.rope_dim, c, s, inverse);
                    ref::rope_interleaved_last(want.data(), sh.len, sh.rope_dim, c, s, inverse);
                    int64_t bad = 0;
                    for (int64_t i = 0; i < sh.len; ++i) bad += !same_bits(got.data()[i], want[i]);
                    CHECK(bad == 0);
                    CHECK(got.guards_intact());

                    // Near-cancelling pairs (a = b, cos ≈ sin in all but the low bits): the
                    // exact a·c − b·s is ~2^-18 of the products, so an FMA (one rounding
                    // instead of two) changes the bf16 result in most lanes — the reference's
                    // separate roundings must be reproduced.
                    std::mt19937                       rng(static_cast<uint32_t>(sh.rope_dim));
                    std::uniform_int_distribution<int> lowbits(-4096, 4096);
                    std::vector<float>                 cc(half), ss(half);
                    const uint32_t                     base = ref::f32_bits(0.70710677f);
                    for (int64_t i = 0; i < half; ++i) {
                        cc[i] = ref::f32_from_bits(base + static_cast<uint32_t>(lowbits(rng)));
                        ss[i] = ref::f32_from_bits(base + static_cast<uint32_t>(lowbits(rng)));
                    }
                    auto pairs = bf16_values(sh.len, static_cast<uint32_t>(sh.len + 9), -6, 6);
                    for (int64_t i = sh.len - sh.rope_dim; i < sh.len; i += 2)
                        pairs[i + 1] = pairs[i];
                    Guarded pg(pairs, 2);
                    k.rope(pg.data(), sh.len, sh.rope_dim, cc.data(), ss.data(), inverse);
                    ref::rope_interleaved_last(pairs.data(), sh.len, sh.rope_dim, cc.data(),
                                               ss.data(), inverse);
                    bad = 0;
                    for (int64_t i = 0; i < sh.len; ++i) bad += !same_bits(pg.data()[i], pairs[i]);
                    CHECK(bad == 0);
                    CHECK(pg.guards_intact());

                    // Many vectors with a stride larger than len: the gaps stay untouched.
                    const int64_t H = 5, stride = sh.len + 3;
                    auto          heads = bf16_values(H * stride, 77, -6, 6);
                    Guarded       hg(heads, 1);
                    auto          hw = heads;
                    k.rope_heads(hg.data(), H, stride, sh.len, sh.rope_dim, c, s, inverse);
                    for (int64_t h = 0; h < H; ++h)
                        ref::rope_interleaved_last(hw.data() + h * stride, sh.len, sh.rope_dim, c,
                                                   s, inverse);
                    bad = 0;
                    for (int64_t i = 0; i < H * stride; ++i) bad += !same_bits(hg.data()[i], hw[i]);
                    CHECK(bad == 0);
                    CHECK(hg.guards_intact());
                }
            }
        }
    }
}

// ---- toleranced ops ----------------------------------------------------------------------------

TEST_CASE("rmsnorm_bf16 matches ref::rmsnorm_bf16 on every arch", "[per_arch][elementwise]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t n : kSizes) {
            DYNAMIC_SECTION(k.name << " n=" << n) {
                const auto x = bf16_values(n, static_cast<uint32_t>(n + 100), -4, 3);
                const auto w = bf16_values(n + 1, static_cast<uint32_t>(n + 200), -1, 0);
                Guarded    got(std::vector<float>(n, 0.0f), 2);
                k.rmsnorm_bf16(got.data(), x.data(), w.data() + 1, n, 1e-6f);
                std::vector<float> pre(n), want(n);
                ref::rmsnorm_f32(pre.data(), x.data(), w.data() + 1, n, 1e-6f);
                ref::rmsnorm_bf16(want.data(), x.data(), w.data() + 1, n, 1e-6f);
                // Before the bf16 rounding the kernel's fp32 value differs from the reference's
                // by at most rel (sum of squares in another order: gamma_n, halved by the rsqrt;
                // each side adds a few roundings: div, add, sqrt, 1/, 2 muls). So the bf16
                // results are equal, or adjacent with the reference's fp32 value within rel of
                // the rounding midpoint between them.
                const double rel = 2.0 * (0.5 * test::gamma_n(n) + 6.0 * test::kU32);
                int64_t      bad = 0;
                for (int64_t i = 0; i < n; ++i) {
                    const float g = got.data()[i];
                    if (same_bits(g, want[i])) continue;
                    const uint32_t gb = ref::f32_bits(g), wb = ref::f32_bits(want[i]);
                    const bool     adjacent =
                        (gb & 0xFFFFu) == 0 && (gb >> 31) == (wb >> 31) &&
                        ((gb >> 16) + 1 == (wb >> 16) || (wb >> 16) + 1 == (gb >> 16));
                    const double mid = 0.5 * (double(g) + double(want[i]));
                    if (!adjacent || std::fabs(double(pre[i]) - mid) > rel * std::fabs(pre[i]))
                        ++bad;
                }
                CHECK(bad == 0);
                CHECK(got.guards_intact());

                // In place (out aliases x): the same values as the out-of-place call.
                Guarded inpl(x, 1);
                k.rmsnorm_bf16(inpl.data(), inpl.data(), w.data() + 1, n, 1e-6f);
                CHECK(std::memcmp(inpl.data(), got.data(), sizeof(float) * n) == 0);
                CHECK(inpl.guards_intact());
            }
        }
    }
}

TEST_CASE("softmax matches ref::softmax_inplace on every arch", "[per_arch][elementwise]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t n : kSizes) {
            for (int kind : {0, 1, 2}) {
                DYNAMIC_SECTION(k.name << " n=" << n << " kind=" << kind) {
                    // kind 0: scores in [-10, 10]; 1: [-200, 5] (exp underflows, subnormal
                    // results); 2: like 0 with masked (-inf) entries (never all of them).
                    auto vals = kind == 1 ? test::random_floats(n, 300 + n, -200.0f, 5.0f)
                                          : test::random_floats(n, 400 + n, -10.0f, 10.0f);
                    if (kind == 2)
                        for (int64_t i = 1; i < n; i += 3)
                            vals[i] = -std::numeric_limits<float>::infinity();
                    Guarded got(vals, 1 + n % 2);
                    auto    want = vals;
                    k.softmax(got.data(), n);
                    ref::softmax_inplace(want.data(), n);
                    // Each exp differs by <= (kExpUlpMine + kExpUlpLibm) ulp <= dexp relative
                    // (ulp <= 2^-23 relative); the sums by 2·gamma_n (any order) plus dexp; the
                    // final divisions add 2^-24 each. Subnormal exps add an absolute 2^-148 per
                    // term, i.e. below 2^-140 after dividing by a sum >= 1.
                    const double dexp = (kExpUlpMine + kExpUlpLibm) * 0x1p-23;
                    const double rel  = 2.0 * dexp + 2.0 * test::gamma_n(n) + 2.0 * 0x1p-24;
                    int64_t      bad  = 0;
                    for (int64_t i = 0; i < n; ++i) {
                        const double g = got.data()[i], w = want[i];
                        if (!(std::fabs(g - w) <= rel * std::fabs(w) + 0x1p-140)) ++bad;
                    }
                    CHECK(bad == 0);
                    CHECK(got.guards_intact());
                }
            }
        }
        float one = 3.0f;
        k.softmax(&one, 0);  // n = 0: no-op
        CHECK(one == 3.0f);
    }
}

TEST_CASE("sum_exp matches the double-precision sum on every arch", "[per_arch][elementwise]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{15}, int64_t{17}, int64_t{255},
                          int64_t{256}, int64_t{257}, int64_t{4099}, int64_t{129280}}) {
            DYNAMIC_SECTION(k.name << " n=" << n) {
                // Logits-like values; m = their max (the greedy sampler's log-sum-exp), and a
                // larger m (every term < 1).
                auto        x  = test::random_floats(n, 500 + n, -30.0f, 12.0f);
                const float mx = n ? *std::max_element(x.begin(), x.end()) : 0.0f;
                for (float m : {mx, mx + 3.0f}) {
                    double want = 0.0;
                    for (int64_t i = 0; i < n; ++i) want += std::exp(double(x[i]) - double(m));
                    const double got = k.sum_exp(x.data(), n, m);
                    // Each term: x − m rounded to fp32 (absolute error <= |x − m|·2^-24 <=
                    // 45·2^-24, i.e. that much relative error in exp) and the fp32 exp
                    // (<= kExpUlpMine ulp <= kExpUlpMine·2^-23 relative); the double reference
                    // is exact to ~1e-16. Sums: fp32 blocks of <= 256 non-negative terms, within
                    // gamma_256 of their exact sum in any order, added in double.
                    const double dexp = kExpUlpMine * 0x1p-23 + 45.0 * 0x1p-24;
                    const double rel  = dexp + test::gamma_n(256) + 1e-15;
                    CHECK(std::fabs(got - want) <= rel * want + 1e-300);
                }
            }
        }
    }
}

TEST_CASE("swiglu matches ref::swiglu_clamped on every arch", "[per_arch][elementwise]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t n : kSizes) {
            for (float limit : {0.0f, 10.0f}) {
                for (float weight : {1.0f, 0.3717f}) {
                    DYNAMIC_SECTION(k.name << " n=" << n << " limit=" << limit
                                           << " weight=" << weight) {
                        auto gate = test::random_floats(n, 500 + n, -30.0f, 30.0f);
                        auto up   = test::random_floats(n, 600 + n, -30.0f, 30.0f);
                        // exp(-g) near and past fp32 overflow (-g > 88.72) and far out.
                        const float special[] = {-88.0f, -88.7f, -88.73f, -89.0f, -100.0f,
                                                 -1e30f, 1e30f,  0.0f,    -0.0f,  88.8f};
                        for (int64_t i = 0; i < n && i < 10; ++i) gate[i] = special[i];
                        std::vector<float> want(n);
                        for (int64_t i = 0; i < n; ++i)
                            want[i] = weight * ref::swiglu_clamped(gate[i], up[i], limit);
                        Guarded got(std::vector<float>(n, 0.0f), 3);
                        k.swiglu(got.data(), gate.data(), up.data(), n, limit, weight);
                        // exp(-g) differs by <= dexp relative, so 1 + exp(-g) by <= dexp
                        // relative too; then each side rounds 1+e, the division, the product and
                        // the weight product (4 · 2^-24 each side). Absolute 2^-100: where exp(-g)
                        // overflows on one side only (-g ≈ 88.72: g/inf = -0 vs ~1e-37·|up|) and
                        // subnormal results.
                        const double dexp = (kExpUlpMine + kExpUlpLibm) * 0x1p-23;
                        const double rel  = dexp + 8.0 * 0x1p-24;
                        int64_t      bad  = 0;
                        for (int64_t i = 0; i < n; ++i) {
                            const double g = got.data()[i], w = want[i];
                            if (!(std::fabs(g - w) <= rel * std::fabs(w) + 0x1p-100)) ++bad;
                        }
                        CHECK(bad == 0);
                        CHECK(got.guards_intact());

                        // out aliasing gate, and out aliasing up: the same bits.
                        Guarded ag(gate, 1), au(up, 2);
                        k.swiglu(ag.data(), ag.data(), up.data(), n, limit, weight);
                        k.swiglu(au.data(), gate.data(), au.data(), n, limit, weight);
                        CHECK(std::memcmp(ag.data(), got.data(), sizeof(float) * n) == 0);
                        CHECK(std::memcmp(au.data(), got.data(), sizeof(float) * n) == 0);
                        CHECK((ag.guards_intact() && au.guards_intact()));
                    }
                }
            }
        }
    }
}

TEST_CASE("sqrt_softplus matches ref::sqrt_softplus on every arch", "[per_arch][elementwise]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t n : kSizes) {
            DYNAMIC_SECTION(k.name << " n=" << n) {
                auto        z         = test::random_floats(n, 700 + n, -30.0f, 30.0f);
                const float special[] = {20.0f,   std::nextafter(20.0f, 30.0f),
                                         19.99f,  std::nextafter(20.0f, 0.0f),
                                         0.0f,    -0.0f,
                                         -87.0f,  -95.0f,
                                         -104.0f, -200.0f,
                                         1e30f,   -1e30f};
                for (int64_t i = 0; i < n && i < 12; ++i) z[i] = special[i];
                Guarded got(std::vector<float>(n, 0.0f), 1);
                k.sqrt_softplus(got.data(), z.data(), n);
                // Measured over every fp32 z in [-104, 20] against the exact function: the
                // kernel (own exp and log1p, max(z,0) + log1p(exp(-|z|)) form) is within 1.34
                // ulp, the reference (glibc expf + log1pf, then sqrtf) within 1.27 ulp, for
                // results above 2^-60; z > 20 gives sqrt(z) on both sides. Below (z < -83):
                // softplus is within ~1 unit of 2^-149 on both sides and sqrt(a) − sqrt(b) <=
                // sqrt(|a − b|) <= 2^-74.
                const double rel = (1.34 + 1.27) * 0x1p-23;
                int64_t      bad = 0;
                for (int64_t i = 0; i < n; ++i) {
                    const double g = got.data()[i], w = ref::sqrt_softplus(z[i]);
                    if (!(std::fabs(g - w) <= rel * std::fabs(w) + 0x1p-74)) ++bad;
                }
                CHECK(bad == 0);
                CHECK(got.guards_intact());

                Guarded inpl(z, 2);  // out aliases z
                k.sqrt_softplus(inpl.data(), inpl.data(), n);
                CHECK(std::memcmp(inpl.data(), got.data(), sizeof(float) * n) == 0);
            }
        }
    }
}

TEST_CASE("hc_post is the spec's ordered sum, bit for bit, on every arch",
          "[per_arch][elementwise]") {
    // Spec §3.1 (hc_post) as fp32 operations in a fixed order: s = comb[k]·R[0][i], then
    // s += comb[j·hc + k]·R[j][i] for j = 1 .. hc−1, x = bf16(post[k]·o[i] + s), every product
    // and sum rounded (no FMA). Exact arithmetic, so every arch must give the same bits; columns
    // outside [c0, c1) stay untouched, and x may be R itself.
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t hc : {1, 3, 4, 16}) {
            for (int64_t dim : {1, 17, 100, 4096}) {
                DYNAMIC_SECTION(k.name << " hc=" << hc << " dim=" << dim) {
                    const uint32_t     seed = static_cast<uint32_t>(hc * 131 + dim);
                    const auto         R    = bf16_values(hc * dim, seed, -8, 4);
                    const auto         o    = bf16_values(dim, seed + 1, -10, 3);
                    const auto         post = test::random_floats(hc, seed + 2, -2.0f, 2.0f);
                    const auto         comb = test::random_floats(hc * hc, seed + 3, 0.0f, 1.0f);
                    const int64_t      c0 = dim > 8 ? 5 : 0, c1 = dim > 8 ? dim - 3 : dim;
                    std::vector<float> want = R;  // columns outside [c0, c1) keep R's values
                    for (int64_t i = c0; i < c1; ++i)
                        for (int64_t kk = 0; kk < hc; ++kk) {
                            float s = comb[kk] * R[i];
                            for (int64_t j = 1; j < hc; ++j) {
                                const float p = comb[j * hc + kk] * R[j * dim + i];
                                s += p;
                            }
                            const float po     = post[kk] * o[i];
                            want[kk * dim + i] = ref::round_bf16(po + s);
                        }
                    Guarded got(R, 1);  // out of place: starts as a copy of R
                    k.hc_post(got.data(), o.data(), R.data(), post.data(), comb.data(), hc, dim, c0,
                              c1);
                    Guarded inplace(R, 2);
                    k.hc_post(inplace.data(), o.data(), inplace.data(), post.data(), comb.data(),
                              hc, dim, c0, c1);
                    int64_t bad = 0, bad_inplace = 0;
                    for (int64_t i = 0; i < hc * dim; ++i) {
                        bad += !same_bits(got.data()[i], want[i]);
                        bad_inplace += !same_bits(inplace.data()[i], want[i]);
                    }
                    CHECK(bad == 0);
                    CHECK(bad_inplace == 0);
                    CHECK((got.guards_intact() && inplace.guards_intact()));
                }
            }
        }
    }
}

TEST_CASE("q_norm_bf16 is the spec's per-head chain, bit for bit, on every arch",
          "[per_arch][elementwise]") {
    // Spec §3.5 step 3 per head, written out: sq = bf16(q²) summed in element order in fp32,
    // ms = bf16(sum / hd), t = bf16(ms + eps), rs = bf16(1/sqrt(t)), q = bf16(q·rs). Every step
    // is a correctly rounded fp32 operation, so every arch gives the same bits; head counts
    // around the SIMD group (8 or 16 heads per gather) and head sizes with SIMD tails. A dropped
    // or moved rounding shows in most heads; the order of the sum only where it moves ms across a
    // bf16 rounding boundary.
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t H : {1, 7, 16, 17, 33, 64}) {
            for (int64_t hd : {1, 20, 128, 512}) {
                DYNAMIC_SECTION(k.name << " H=" << H << " hd=" << hd) {
                    const float eps = 1e-6f;
                    const auto  q = bf16_values(H * hd, static_cast<uint32_t>(H * 977 + hd), -9, 5);
                    auto        want = q;
                    for (int64_t h = 0; h < H; ++h) {
                        float * v   = want.data() + h * hd;
                        float   sum = 0.0f;
                        for (int64_t i = 0; i < hd; ++i) sum += ref::round_bf16(v[i] * v[i]);
                        const float ms = ref::round_bf16(sum / static_cast<float>(hd));
                        const float t  = ref::round_bf16(ms + eps);
                        const float rs = ref::round_bf16(1.0f / std::sqrt(t));
                        for (int64_t i = 0; i < hd; ++i) v[i] = ref::round_bf16(v[i] * rs);
                    }
                    Guarded got(q, 3);
                    k.q_norm_bf16(got.data(), H, hd, eps);
                    int64_t bad = 0;
                    for (int64_t i = 0; i < H * hd; ++i) bad += !same_bits(got.data()[i], want[i]);
                    CHECK(bad == 0);
                    CHECK(got.guards_intact());
                }
            }
        }
    }
}
