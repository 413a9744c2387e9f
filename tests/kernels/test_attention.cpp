// index_scores and sparse_attn of every usable kernel table against the scalar twins (the code
// the forward pass used before these kernels existed), over odd sizes, masked entries, head
// ranges, unaligned pointers and both Numerics variants; plus checks of the twins against
// independent formulas of spec §3.7/§3.8 on data whose results are exactly known.
//
// Tolerances are derived by re-running the twin's algorithm in interval arithmetic
// ("replicas" below). The SIMD versions perform the twin's fp32 operations in the twin's order
// except for (a) the fp32 summation order inside the q·key / q·row dot products and (b) the exp
// of the attention probabilities (src/kernels/simd/attention-inl.hpp). So:
//  * each dot lies within δ = γ_d·Σ|q_i·k_i| of the exact dot (any summation order of d exact
//    products; the test computes the exact dot in double, whose own error ≤ γ_d(double)·Σ|..|
//    is added). On data whose every partial sum is representable (values k/8, |k| <= 8, d <=
//    512: all partial sums are multiples of 2^-6 below 2^9) δ = 0;
//  * every later step is a monotone function of its inputs (fp32 +, ·, / by a positive value,
//    bf16 rounding, ReLU, max), so the replica carries [lo, hi] through the same steps and the
//    SIMD result must lie in the final interval; exp gets a budget of 2^-22 relative (2 ulps;
//    elt_exp is within 1.01 ulp, glibc's expf within 0.51) plus 2^-148 absolute.
// Where no rounding boundary lies inside an interval the SIMD value is forced to equal the
// twin's bit for bit, which is what makes dropped or moved roundings visible (e.g. P not
// rounded to bf16 before P·V fails the exact-data cases).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

#include "dsv4/ref/formats.hpp"
#include "kernels/arch_util.hpp"

using namespace dsv4;

namespace {

constexpr float  kInf      = std::numeric_limits<float>::infinity();
constexpr double kExpRel   = 0x1p-22;   // exp budget, relative (see above)
constexpr double kExpAbs   = 0x1p-148;  // exp budget, absolute (subnormal results)
constexpr double kU64      = 0x1p-53;   // double unit roundoff
constexpr float  kSentinel = 7777.0f;

struct Iv {
    float lo, hi;
};

float down(double x) {
    float f = static_cast<float>(x);
    if (static_cast<double>(f) > x) f = std::nextafter(f, -kInf);
    return f;
}
float up(double x) {
    float f = static_cast<float>(x);
    if (static_cast<double>(f) < x) f = std::nextafter(f, kInf);
    return f;
}
Iv rb(Iv a) {
    return {ref::round_bf16(a.lo), ref::round_bf16(a.hi)};
}
Iv relu(Iv a) {
    return {std::max(a.lo, 0.0f), std::max(a.hi, 0.0f)};
}
Iv add(Iv a, Iv b) {
    return {a.lo + b.lo, a.hi + b.hi};
}
// fl(a·b) over the corners (fl is monotone, the real product's extremes are at corners).
Iv mul(Iv a, Iv b) {
    const float c[4] = {a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi};
    return {*std::min_element(c, c + 4), *std::max_element(c, c + 4)};
}
Iv div(Iv a, Iv b) {  // b > 0
    const float c[4] = {a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi};
    return {*std::min_element(c, c + 4), *std::max_element(c, c + 4)};
}
Iv max(Iv a, Iv b) {
    return {std::max(a.lo, b.lo), std::max(a.hi, b.hi)};
}
Iv exp_iv(Iv x) {  // any exp within the budget of the exact exp of an argument in x
    const double lo = std::exp(static_cast<double>(x.lo)) * (1.0 - kExpRel) - kExpAbs;
    const double hi = std::exp(static_cast<double>(x.hi)) * (1.0 + kExpRel) + kExpAbs;
    return {std::max(0.0f, down(lo)), up(hi)};
}
bool inside(float v, Iv a) {
    return v >= a.lo && v <= a.hi;
}
// The interval of a dot product of n exact products given the exact sum S and A = Σ|terms|
// computed in double: any fp32 summation order is within γ_n·A of S.
Iv dot_iv(double S, double A, int64_t n, bool exact) {
    const double d = (exact ? 0.0 : test::gamma_n(n) * A) + 2.0 * n * kU64 * A;
    return {down(S - d), up(S + d)};
}

// bf16 values: sign · e2m1 value · 2^e (what FP4 simulation produces) for the indexer.
std::vector<float> fp4_values(int64_t n, uint32_t seed) {
    static const float                 kE2m1[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    std::mt19937                       rng(seed);
    std::uniform_int_distribution<int> code(0, 7), sgn(0, 1), ex(-7, 0);
    std::vector<float>                 v(n);
    int                                e = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (i % 32 == 0) e = ex(rng);
        const float x = std::ldexp(kE2m1[code(rng)], e);
        v[i]          = sgn(rng) ? -x : x;
    }
    return v;
}
// bf16 values, random sign, 7 random mantissa bits, exponents in [elo, ehi].
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
// k/8 for k in [-8, 8]: dots of up to 512 of them are exact in fp32 in any order.
std::vector<float> grid_values(int64_t n, uint32_t seed) {
    std::mt19937                       rng(seed);
    std::uniform_int_distribution<int> k(-8, 8);
    std::vector<float>                 v(n);
    for (float & x : v) x = static_cast<float>(k(rng)) / 8.0f;
    return v;
}
std::vector<uint16_t> to_bits(const std::vector<float> & v, int64_t offset) {
    std::vector<uint16_t> b(v.size() + offset + 1, 0);
    for (size_t i = 0; i < v.size(); ++i) b[offset + i] = ref::f32_to_bf16(v[i]);
    return b;
}

struct AlignedFloats {
    explicit AlignedFloats(int64_t n)
        : p(static_cast<float *>(std::aligned_alloc(64, (sizeof(float) * n + 63) / 64 * 64))) {}
    ~AlignedFloats() { std::free(p); }
    AlignedFloats(const AlignedFloats &)             = delete;
    AlignedFloats & operator=(const AlignedFloats &) = delete;
    float *         p;
};

// ---- index scores -----------------------------------------------------------------------------

// The twin's epilogue in interval arithmetic (heads summed in order, as the twin does).
Iv index_score_iv(const float * q, const float * wt, const float * key, int64_t ih, int64_t ihd,
                  bool round) {
    Iv sum{0.0f, 0.0f};
    for (int64_t h = 0; h < ih; ++h) {
        double S = 0, A = 0;
        for (int64_t i = 0; i < ihd; ++i) {
            const double p = static_cast<double>(q[h * ihd + i]) * key[i];
            S += p;
            A += std::fabs(p);
        }
        const Iv dot = dot_iv(S, A, ihd, false);
        const Iv w{wt[h], wt[h]};
        sum = add(sum, round ? rb(mul(relu(rb(dot)), w)) : mul(relu(dot), w));
    }
    return round ? rb(sum) : sum;
}

struct IndexCase {
    int64_t ih, ihd, blocks, c0, c1;
};

void check_index_scores(const kernels::KernelTable & k, const IndexCase & tc, bool round,
                        uint32_t seed) {
    const int64_t ih = tc.ih, ihd = tc.ihd;
    // Unaligned: q and wt start one float in, keys one bf16 in.
    std::vector<float> qv = fp4_values(ih * ihd, seed), q(ih * ihd + 1);
    std::copy(qv.begin(), qv.end(), q.begin() + 1);
    std::vector<float> wv = bf16_values(ih, seed + 1, -9, -4), wt(ih + 1);
    std::copy(wv.begin(), wv.end(), wt.begin() + 1);
    for (int64_t h = 0; h < ih; h += 5) wt[1 + h] = -wt[1 + h];  // negative weights too
    const std::vector<float>    keyv = fp4_values(tc.blocks * ihd, seed + 2);
    const std::vector<uint16_t> keys = to_bits(keyv, 1);

    std::vector<float> got(tc.blocks + 2, kSentinel), want(tc.blocks + 2, kSentinel);
    k.index_scores(got.data() + 1, q.data() + 1, wt.data() + 1, keys.data() + 1, ih, ihd, tc.c0,
                   tc.c1, round);
    kernels::kTableScalar.index_scores(want.data() + 1, q.data() + 1, wt.data() + 1,
                                       keys.data() + 1, ih, ihd, tc.c0, tc.c1, round);
    int64_t out_of_range = 0, outside = 0, differ = 0, twin_outside = 0;
    for (int64_t c = -1; c <= tc.blocks; ++c) {
        const bool in = c >= tc.c0 && c < tc.c1;
        if (!in) {
            out_of_range += got[1 + c] != kSentinel;
            continue;
        }
        const Iv ivw =
            index_score_iv(q.data() + 1, wt.data() + 1, keyv.data() + c * ihd, ih, ihd, round);
        if (!inside(got[1 + c], ivw)) {
            if (outside == 0)
                UNSCOPED_INFO("block " << c << ": got " << got[1 + c] << ", twin " << want[1 + c]
                                       << ", allowed [" << ivw.lo << ", " << ivw.hi << "]");
            ++outside;
        }
        twin_outside += !inside(want[1 + c], ivw);
        differ += ref::f32_bits(got[1 + c]) != ref::f32_bits(want[1 + c]);
    }
    CHECK(out_of_range == 0);
    CHECK(twin_outside == 0);  // the replica itself is right
    CHECK(outside == 0);
    if (k.arch == CpuArch::scalar) CHECK(differ == 0);
}

// ---- sparse attention -----------------------------------------------------------------------

// The twin's attend_head in interval arithmetic. dots[j]: interval of q·row_j (unscaled).
std::vector<Iv> attend_iv(const std::vector<Iv> & dots, const std::vector<const float *> & v,
                          int64_t hd, float sink, float scale, kernels::AttnRule rule) {
    const int64_t   n = static_cast<int64_t>(v.size());
    Iv              m = rule.sink_in_max ? Iv{sink, sink} : Iv{-kInf, -kInf};
    Iv              l{0.0f, 0.0f};
    std::vector<Iv> acc(hd, Iv{0.0f, 0.0f});
    for (int64_t c0 = 0; c0 < n; c0 += kernels::kAttnChunk) {
        const int64_t   c1 = std::min(n, c0 + kernels::kAttnChunk);
        std::vector<Iv> s(c1 - c0);
        Iv              cm{-kInf, -kInf};
        bool            any = false;
        for (int64_t j = c0; j < c1; ++j) {
            if (!v[j]) continue;
            any       = true;
            s[j - c0] = mul(dots[j], Iv{scale, scale});
            cm        = max(cm, s[j - c0]);
        }
        if (!any) continue;
        const Iv m_new = max(m, cm);
        REQUIRE(m_new.hi != -kInf);  // finite scores in these tests
        const Iv alpha =
            m.hi == -kInf ? Iv{0.0f, 0.0f} : exp_iv(Iv{m.lo - m_new.hi, m.hi - m_new.lo});
        Iv csum{0.0f, 0.0f};
        for (auto & a : acc) a = mul(a, alpha);
        for (int64_t j = c0; j < c1; ++j) {
            if (!v[j]) continue;
            const Iv p  = exp_iv(Iv{s[j - c0].lo - m_new.hi, s[j - c0].hi - m_new.lo});
            csum        = add(csum, p);
            const Iv pb = rb(p);
            for (int64_t i = 0; i < hd; ++i) {
                const float x = v[j][i];  // pb·x is exact: bf16 × bf16
                const Iv    t = x >= 0 ? Iv{pb.lo * x, pb.hi * x} : Iv{pb.hi * x, pb.lo * x};
                acc[i]        = add(acc[i], t);
            }
        }
        l = add(mul(l, alpha), csum);
        m = m_new;
    }
    Iv denom = l;
    if (rule.sink_in_denominator) denom = add(l, exp_iv(Iv{sink - m.hi, sink - m.lo}));
    std::vector<Iv> out(hd);
    for (int64_t i = 0; i < hd; ++i) {
        out[i] = div(acc[i], denom);
        if (rule.round_out) out[i] = rb(out[i]);
    }
    return out;
}

enum class Mask { none, random, chunk, all };
enum class Data { grid, general };

struct AttnCase {
    int64_t hd, n, h0, h1;
    Mask    mask;
    Data    data;
};

void check_sparse_attn(const kernels::KernelTable & k, const AttnCase & tc, kernels::AttnRule rule,
                       uint32_t seed) {
    const int64_t hd = tc.hd, n = tc.n, H = tc.h1 + 1;
    const int64_t ld    = hd + 3;  // odd row stride: q and out rows are unaligned
    const float   scale = 1.0f / std::sqrt(static_cast<float>(hd));
    // KV rows: each at its own odd bf16 offset of one buffer; masked entries are nullptr.
    const int64_t      rstride = hd + 5;
    std::vector<float> vals =
        tc.data == Data::grid ? grid_values(n * hd, seed) : bf16_values(n * hd, seed, -4, 1);
    std::vector<uint16_t>         rowbuf(n * rstride + 8);
    std::mt19937                  rng(seed + 7);
    std::vector<const uint16_t *> rows(n);
    std::vector<const float *>    vrows(n);
    for (int64_t j = 0; j < n; ++j) {
        for (int64_t i = 0; i < hd; ++i)
            rowbuf[1 + j * rstride + i] = ref::f32_to_bf16(vals[j * hd + i]);
        bool masked = false;
        switch (tc.mask) {
            case Mask::none: break;
            case Mask::random: masked = rng() % 5 == 0; break;
            case Mask::chunk: masked = (j >= 64 && j < 128) || j % 7 == 3; break;
            case Mask::all: masked = true; break;
        }
        rows[j]  = masked ? nullptr : rowbuf.data() + 1 + j * rstride;
        vrows[j] = masked ? nullptr : vals.data() + j * hd;
    }
    std::vector<float> qv = tc.data == Data::grid ? grid_values(H * hd, seed + 1)
                                                  : bf16_values(H * hd, seed + 1, -3, 1);
    std::vector<float> q(1 + H * ld, kSentinel);
    for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < hd; ++i) q[1 + h * ld + i] = qv[h * hd + i];
    const std::vector<float> sinks = bf16_values(H, seed + 2, -2, 1);

    AlignedFloats      scr((tc.h1 - tc.h0) * kernels::attn_scratch_floats(hd));
    std::vector<float> got(q.size(), kSentinel), want(q.size(), kSentinel);
    k.sparse_attn(got.data() + 1, q.data() + 1, ld, sinks.data(), rows.data(), n, hd, scale, rule,
                  tc.h0, tc.h1, scr.p);
    kernels::kTableScalar.sparse_attn(want.data() + 1, q.data() + 1, ld, sinks.data(), rows.data(),
                                      n, hd, scale, rule, tc.h0, tc.h1, scr.p);
    // In place (out == q), as the forward pass calls it.
    std::vector<float> inplace = q;
    k.sparse_attn(inplace.data() + 1, inplace.data() + 1, ld, sinks.data(), rows.data(), n, hd,
                  scale, rule, tc.h0, tc.h1, scr.p);

    int64_t untouched_bad = 0, outside = 0, twin_outside = 0, differ = 0, inplace_differ = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const int64_t h = (static_cast<int64_t>(i) - 1) / ld,
                      d = (static_cast<int64_t>(i) - 1) % ld;
        if (i == 0 || h < tc.h0 || h >= tc.h1 || d >= hd) untouched_bad += got[i] != kSentinel;
    }
    const bool all_masked = std::all_of(rows.begin(), rows.end(), [](auto p) { return !p; });
    for (int64_t h = tc.h0; h < tc.h1; ++h) {
        const float *   gh = got.data() + 1 + h * ld;
        const float *   wh = want.data() + 1 + h * ld;
        const float *   ih = inplace.data() + 1 + h * ld;
        std::vector<Iv> out;
        if (all_masked && !rule.sink_in_denominator) {  // 0/0 in the twin too
            for (int64_t i = 0; i < hd; ++i) {
                outside += !std::isnan(gh[i]);
                twin_outside += !std::isnan(wh[i]);
                inplace_differ += !std::isnan(ih[i]);
            }
            continue;
        }
        if (!all_masked) {
            std::vector<Iv> dots(n, Iv{0.0f, 0.0f});
            for (int64_t j = 0; j < n; ++j) {
                if (!vrows[j]) continue;
                double S = 0, A = 0;
                for (int64_t i = 0; i < hd; ++i) {
                    const double p = static_cast<double>(qv[h * hd + i]) * vrows[j][i];
                    S += p;
                    A += std::fabs(p);
                }
                dots[j] = dot_iv(S, A, hd, tc.data == Data::grid);
            }
            out = attend_iv(dots, vrows, hd, sinks[h], scale, rule);
        } else {
            out = attend_iv({}, {}, hd, sinks[h], scale, rule);
        }
        for (int64_t i = 0; i < hd; ++i) {
            if (!inside(gh[i], out[i])) {
                if (outside == 0)
                    UNSCOPED_INFO("head " << h << " dim " << i << ": got " << gh[i] << ", twin "
                                          << wh[i] << ", allowed [" << out[i].lo << ", "
                                          << out[i].hi << "]");
                ++outside;
            }
            twin_outside += !inside(wh[i], out[i]);
            differ += ref::f32_bits(gh[i]) != ref::f32_bits(wh[i]);
            inplace_differ += ref::f32_bits(gh[i]) != ref::f32_bits(ih[i]);
        }
    }
    CHECK(untouched_bad == 0);
    CHECK(twin_outside == 0);  // the replica itself is right
    CHECK(outside == 0);
    CHECK(inplace_differ == 0);
    if (k.arch == CpuArch::scalar) CHECK(differ == 0);
}

const char * rule_name(const kernels::AttnRule & r) {
    if (!r.round_out) return "fp32-out";
    if (!r.sink_in_denominator) return "sink-dropped";
    return r.sink_in_max ? "sink-in-max" : "faithful";
}

}  // namespace

TEST_CASE("index_scores of every arch within the twin's interval", "[per_arch][attention]") {
    // ih not a multiple of 16 (13, 70), one head, ih·ihd/2 above the 4096-pair slab of the
    // AVX-512 BF16 path (129 × 64, 70 × 128: two slabs); block ranges that are not multiples of
    // the 32-block tile, start inside the keys, a single block and an empty range.
    const IndexCase cases[] = {
        {64, 128, 300, 0, 300}, {64, 128, 300, 7, 290}, {13, 64, 100, 3, 100},
        {1, 128, 40, 0, 40},    {129, 64, 50, 1, 50},   {70, 128, 33, 0, 33},
        {8, 128, 5, 4, 5},      {8, 64, 9, 9, 9},       {5, 130, 20, 2, 19},  // 130: twin path
    };
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (const IndexCase & tc : cases) {
            for (bool round : {true, false}) {
                DYNAMIC_SECTION(k.name << " ih=" << tc.ih << " ihd=" << tc.ihd << " [" << tc.c0
                                       << "," << tc.c1 << ") round=" << round) {
                    check_index_scores(k, tc, round, static_cast<uint32_t>(tc.ih * 31 + tc.c1));
                }
            }
        }
    }
}

TEST_CASE("sparse_attn of every arch within the twin's interval", "[per_arch][attention]") {
    // n not a multiple of 64 (1, 65, 130, 200), masked entries incl. a fully masked chunk
    // (entries 64..127) and an all-masked list; head ranges of 1, 3 (a partial group), 5 and 8
    // heads, not starting at 0, and 11 (a full group of 8 and a partial one on AVX-512); head_dim
    // 64, 128, 512 and 96 (not a multiple of 64: twin path).
    const AttnCase cases[] = {
        {512, 200, 0, 8, Mask::random, Data::grid},
        {512, 65, 3, 6, Mask::none, Data::grid},
        {128, 200, 1, 6, Mask::chunk, Data::grid},
        {64, 1, 0, 1, Mask::none, Data::grid},
        {64, 130, 2, 7, Mask::all, Data::grid},
        {512, 640, 0, 4, Mask::random, Data::general},
        {128, 200, 0, 5, Mask::chunk, Data::general},
        {64, 64, 1, 4, Mask::none, Data::general},
        {96, 70, 0, 3, Mask::random, Data::grid},
        {128, 100, 2, 13, Mask::random, Data::general},
    };
    const kernels::AttnRule rules[] = {
        {true, false, true}, {false, false, true}, {true, true, true}, {true, false, false}};
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (const AttnCase & tc : cases) {
            for (const auto & rule : rules) {
                DYNAMIC_SECTION(k.name << " hd=" << tc.hd << " n=" << tc.n << " heads=[" << tc.h0
                                       << "," << tc.h1 << ") mask=" << static_cast<int>(tc.mask)
                                       << " data=" << static_cast<int>(tc.data) << " "
                                       << rule_name(rule)) {
                    check_sparse_attn(k, tc, rule, static_cast<uint32_t>(tc.hd + tc.n * 3 + tc.h0));
                }
            }
        }
    }
}

// Independent checks of the twins (and every arch) on inputs whose results follow from the
// formulas of spec §3.7 / §3.8 directly.
TEST_CASE("index_scores matches the spec formula on exactly representable data",
          "[per_arch][attention]") {
    // q·key of small integers is exact; the spec's rounding chain is then applied in double
    // (every intermediate is exact in fp32, so double gives the same roundings).
    const int64_t      ih = 3, ihd = 64, blocks = 40;
    std::vector<float> q(ih * ihd), keys_f(blocks * ihd);
    std::vector<float> wt = {0.375f, -0.25f, 1.5f};
    for (int64_t i = 0; i < ih * ihd; ++i) q[i] = static_cast<float>((i * 7) % 5) - 2.0f;
    for (int64_t i = 0; i < blocks * ihd; ++i) keys_f[i] = static_cast<float>((i * 3) % 7) - 3.0f;
    const auto keys = to_bits(keys_f, 0);
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        DYNAMIC_SECTION(k.name) {
            std::vector<float> got(blocks), raw(blocks);
            k.index_scores(got.data(), q.data(), wt.data(), keys.data(), ih, ihd, 0, blocks, true);
            k.index_scores(raw.data(), q.data(), wt.data(), keys.data(), ih, ihd, 0, blocks, false);
            for (int64_t c = 0; c < blocks; ++c) {
                double sum = 0, sum_raw = 0;
                for (int64_t h = 0; h < ih; ++h) {
                    double dot = 0;
                    for (int64_t i = 0; i < ihd; ++i) dot += q[h * ihd + i] * keys_f[c * ihd + i];
                    const float sh = std::max(ref::round_bf16(static_cast<float>(dot)), 0.0f);
                    sum += ref::round_bf16(sh * wt[h]);
                    sum_raw += std::max(dot, 0.0) * wt[h];
                }
                CHECK(got[c] == ref::round_bf16(static_cast<float>(sum)));
                CHECK(raw[c] == static_cast<float>(sum_raw));
            }
        }
    }
}

TEST_CASE("sparse_attn with a zero query averages the rows, sink in the denominator",
          "[per_arch][attention]") {
    // q = 0: every score is 0, so p = exp(0) = 1 = bf16(p) for each valid row, alpha = 1, and
    // out = bf16(Σ_j v_j / (n_valid + exp(sink))) (spec §3.8), without the sink term when it is
    // dropped. Sums of a few k/8 values are exact.
    const int64_t                 hd = 128, n = 150;
    std::vector<float>            v = grid_values(n * hd, 5);
    std::vector<uint16_t>         bits(n * hd);
    std::vector<const uint16_t *> rows(n);
    for (int64_t i = 0; i < n * hd; ++i) bits[i] = ref::f32_to_bf16(v[i]);
    int64_t valid = 0;
    for (int64_t j = 0; j < n; ++j) {
        const bool masked = (j >= 64 && j < 128) || j % 9 == 0;
        rows[j]           = masked ? nullptr : bits.data() + j * hd;
        valid += !masked;
    }
    const float   sinks[2] = {0.5f, -1.25f};
    AlignedFloats scr(2 * kernels::attn_scratch_floats(hd));
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (bool with_sink : {true, false}) {
            DYNAMIC_SECTION(k.name << " sink=" << with_sink) {
                std::vector<float>      q(2 * hd, 0.0f);
                const kernels::AttnRule rule{with_sink, false, true};
                k.sparse_attn(q.data(), q.data(), hd, sinks, rows.data(), n, hd, 0.125f, rule, 0, 2,
                              scr.p);
                for (int64_t h = 0; h < 2; ++h) {
                    const float denom = with_sink ? static_cast<float>(valid) + std::exp(sinks[h])
                                                  : static_cast<float>(valid);
                    int64_t     bad   = 0;
                    for (int64_t i = 0; i < hd; ++i) {
                        float sum = 0.0f;
                        for (int64_t j = 0; j < n; ++j)
                            if (rows[j]) sum += v[j * hd + i];
                        bad += q[h * hd + i] != ref::round_bf16(sum / denom);
                    }
                    CHECK(bad == 0);
                }
            }
        }
    }
}

TEST_CASE("sparse_attn adds the probability-weighted rows one by one, in row order",
          "[per_arch][attention]") {
    // q = 0 again (every p is exactly 1), now with rows of bf16 values of mixed magnitude whose
    // running fp32 sums round, and an fp32 output: out = (((v_0 + v_1) + v_2) + ...) / n_valid
    // with the sequence of spec §3.8's accumulation, so a kernel that adds the rows in another
    // order or pairs them differently shows in the last bits. Chunks hold an odd number of
    // valid rows (masks), so the pairing of rows (avx512bf16) also meets its lone last row.
    const int64_t                 hd = 192, n = 141;
    const std::vector<float>      v = bf16_values(n * hd, 11, -12, 6);
    std::vector<uint16_t>         bits(n * hd);
    std::vector<const uint16_t *> rows(n);
    for (int64_t i = 0; i < n * hd; ++i) bits[i] = ref::f32_to_bf16(v[i]);
    int64_t valid = 0;
    for (int64_t j = 0; j < n; ++j) {
        const bool masked = j % 11 == 4 || j == 70;
        rows[j]           = masked ? nullptr : bits.data() + j * hd;
        valid += !masked;
    }
    std::vector<float> want(hd);
    for (int64_t i = 0; i < hd; ++i) {
        float sum = 0.0f;
        for (int64_t j = 0; j < n; ++j)
            if (rows[j]) sum += v[j * hd + i];
        want[i] = sum / static_cast<float>(valid);
    }
    const float   sinks[3] = {0.0f, 0.0f, 0.0f};
    AlignedFloats scr(3 * kernels::attn_scratch_floats(hd));
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        DYNAMIC_SECTION(k.name) {
            std::vector<float>      q(3 * hd, 0.0f);
            const kernels::AttnRule rule{false, false, false};  // no sink term, fp32 output
            k.sparse_attn(q.data(), q.data(), hd, sinks, rows.data(), n, hd, 0.125f, rule, 0, 3,
                          scr.p);
            int64_t bad = 0;
            for (int64_t h = 0; h < 3; ++h)
                for (int64_t i = 0; i < hd; ++i) bad += q[h * hd + i] != want[i];
            CHECK(bad == 0);
        }
    }
}
