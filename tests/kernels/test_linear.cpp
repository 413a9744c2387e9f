// act_quant / lin8 / lin4 / gemm_bf16 / gemm_f32 of every usable kernel table against the
// scalar reference (include/dsv4/ref/ops.hpp), over odd shapes, row sub-ranges, several token
// counts and unaligned weight pointers.
//
// Tolerance (derived, not tuned): every table forms the same exact products (e4m3·e4m3 and
// e4m3·e2m1 scaled by powers of two are exact in fp32) and differs only in the order of the fp32
// additions. Each order is within gamma_K · S of the exact sum, S = Σ|products|, so two orders
// differ by at most 2·gamma_K·S before rounding; the final bf16 rounding of each side adds at
// most half a bf16 ulp (2^-9 relative) of its value. The scalar table must match bit for bit.
#include <cstdlib>
#include <cstring>
#include <memory>

#if defined(__unix__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "dsv4/ref/formats.hpp"
#include "dsv4/ref/ops.hpp"
#include "kernels/arch_util.hpp"

using namespace dsv4;

namespace {

struct AlignedBuf {
    explicit AlignedBuf(size_t n)
        : p(static_cast<uint8_t *>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {}
    ~AlignedBuf() { std::free(p); }
    AlignedBuf(const AlignedBuf &)             = delete;
    AlignedBuf & operator=(const AlignedBuf &) = delete;
    uint8_t *    p;
};

// Activations: bf16 values spread over a few binades, one row per token.
std::vector<float> random_acts(int64_t T, int64_t K, uint32_t seed) {
    std::mt19937                       rng(seed);
    std::normal_distribution<float>    g(0.0f, 1.0f);
    std::uniform_int_distribution<int> mag(-6, 6);
    std::vector<float>                 x(T * K);
    for (int64_t i = 0; i < T * K; ++i)
        x[i] = ref::round_bf16(g(rng) * std::ldexp(1.0f, mag(rng) / 3));
    return x;
}

std::vector<uint8_t> random_e4m3(int64_t n, uint32_t seed, int64_t pad) {
    std::mt19937                       rng(seed);
    std::uniform_int_distribution<int> d(0, 255);
    std::vector<uint8_t>               v(n + pad);
    for (auto & b : v) {
        do b = static_cast<uint8_t>(d(rng));
        while ((b & 0x7F) == 0x7F);  // no NaN codes in weights
    }
    return v;
}

std::vector<uint8_t> random_bytes(int64_t n, uint32_t seed, int lo, int hi) {
    std::mt19937                       rng(seed);
    std::uniform_int_distribution<int> d(lo, hi);
    std::vector<uint8_t>               v(n);
    for (auto & b : v) b = static_cast<uint8_t>(d(rng));
    return v;
}

// One [N, K] matrix in each weight format: e4m3 codes and their 128×128 e8m0 scales, FP4 bytes
// and their per-32 scales, bf16 values (seeds seed .. seed+4).
struct RandomWeights {
    std::vector<uint8_t>  w8, s8, w4, s4;
    std::vector<uint16_t> wb;
    RandomWeights(int64_t N, int64_t K, uint32_t seed)
        : w8(random_e4m3(N * K, seed, 0)),
          s8(random_bytes((N + 127) / 128 * (K / 128), seed + 1, 112, 124)),
          w4(random_bytes(N * K / 2, seed + 2, 0, 255)),
          s4(random_bytes(N * K / 32, seed + 3, 118, 130)),
          wb(static_cast<size_t>(N * K)) {
        const auto wf = test::random_floats(N * K, seed + 4);
        for (size_t i = 0; i < wb.size(); ++i) wb[i] = ref::f32_to_bf16(wf[i]);
    }
};

double tol_for(double S, int64_t K, double y_ref, double y) {
    return 2.0 * test::gamma_n(K) * S + 0x1p-9 * (std::fabs(y_ref) + std::fabs(y)) + 1e-30;
}

}  // namespace

TEST_CASE("act_quant codes and scales are exact on every arch", "[per_arch][linear]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t K : {128, 384, 4096}) {
            const int64_t T = 3;
            auto          x = random_acts(T, K, 7 + static_cast<uint32_t>(K));
            x[5]            = 0.0f;  // a zero, and an all-zero block (amax floor 1e-4)
            for (int64_t i = K; i < K + 128; ++i) x[i] = 0.0f;
            // A block with amax 448 (scale 1) holding exact e4m3 midpoints, so RNE ties are
            // exercised: normal range (ties to the even mantissa, both directions), the
            // subnormal range (quantum 2^-9) and the normal/subnormal border, plus -0 and
            // values far below half the smallest subnormal.
            const float ties[] = {448.0f,   1.0625f,   1.1875f,   -1.0625f,   -1.1875f, 0x1p-10f,
                                  0x3p-10f, -0x5p-10f, 0x0.Fp-6f, 0xF.8p-10f, -0.0f,    0x1p-30f,
                                  240.0f,   232.0f,    -248.0f,   0x1.1p-6f};
            float *     blk    = x.data() + 2 * K;  // row 2, first block
            for (size_t i = 0; i < sizeof ties / sizeof ties[0]; ++i) blk[i] = ties[i];
            AlignedBuf qa(kernels::qact_row_bytes(K) * T);
            k.act_quant(qa.p, x.data(), K, K, 0, T);
            std::vector<uint8_t> codes(K);
            std::vector<float>   scales(K / 128);
            for (int64_t t = 0; t < T; ++t) {
                ref::act_quant_fp8(x.data() + t * K, K, codes.data(), scales.data());
                const uint8_t * row = qa.p + t * kernels::qact_row_bytes(K);
                CHECK(std::memcmp(row + kernels::qact_codes_offset(K), codes.data(), K) == 0);
                CHECK(std::memcmp(row + kernels::qact_scales_offset(K), scales.data(),
                                  sizeof(float) * scales.size()) == 0);
            }
        }
    }
}

TEST_CASE("lin8 matches ref::lin8_ref on every arch", "[per_arch][linear][lin8]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t N : {1, 3, 130, 257}) {
            for (int64_t K : {128, 384, 640, 1024}) {
                // T >= 8 takes the packed prefill GEMM on avx512bf16 (token groups of 12,
                // input chunks of 512: 13 and 30 leave group tails, K = 640 a chunk tail).
                for (int64_t T : {1, 2, 5, 13, 30}) {
                    DYNAMIC_SECTION(k.name << " N=" << N << " K=" << K << " T=" << T) {
                        const uint32_t  seed = static_cast<uint32_t>(N * 1000 + K + T);
                        auto            wbuf = random_e4m3(N * K, seed, 1);  // +1: unaligned view
                        const uint8_t * w    = wbuf.data() + 1;
                        const int64_t   sb   = (N + 127) / 128 * (K / 128);
                        auto            sc   = random_bytes(sb, seed + 1, 112, 124);
                        // T = 13: one weight scale too small to fold into bf16 (e8m0 code 9),
                        // which sends the packed GEMM back to the tile kernels.
                        if (T == 13) sc[0] = 9;
                        auto       x = random_acts(T, K, seed + 2);
                        AlignedBuf qa(kernels::qact_row_bytes(K) * T);
                        k.act_quant(qa.p, x.data(), K, K, 0, T);
                        const int64_t      n0 = N > 2 ? 1 : 0, n1 = N;  // a row sub-range
                        std::vector<float> y(T * N, -1.0f);
                        k.lin8(y.data(), N, kernels::Fp8Mat{w, sc.data(), N, K}, qa.p, T, n0, n1);
                        std::vector<float> want(N);
                        for (int64_t t = 0; t < T; ++t) {
                            REQUIRE(
                                ref::lin8_ref(want.data(), x.data() + t * K, K, w, sc.data(), N));
                            std::vector<uint8_t> xa(K);
                            std::vector<float>   sa(K / 128);
                            ref::act_quant_fp8(x.data() + t * K, K, xa.data(), sa.data());
                            for (int64_t n = 0; n < N; ++n) {
                                const float got = y[t * N + n];
                                if (n < n0) {
                                    CHECK(got == -1.0f);  // outside the range: untouched
                                    continue;
                                }
                                if (arch == CpuArch::scalar) {
                                    CHECK(got == want[n]);
                                    continue;
                                }
                                double S = 0.0;
                                for (int64_t kk = 0; kk < K; ++kk)
                                    S += std::fabs(
                                        double(ref::e4m3_to_f32(xa[kk])) * sa[kk / 128] *
                                        ref::e4m3_to_f32(w[n * K + kk]) *
                                        ref::e8m0_to_f32(sc[(n / 128) * (K / 128) + kk / 128]));
                                CHECK(std::fabs(double(got) - want[n]) <=
                                      tol_for(S, K, want[n], got));
                            }
                        }
                    }
                }
            }
        }
    }
}

TEST_CASE("lin4 matches ref::lin4_ref on every arch", "[per_arch][linear][lin4]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t N : {1, 3, 130}) {
            for (int64_t K : {128, 256, 640, 2048}) {
                for (int64_t T : {1, 3, 6, 13, 30}) {
                    DYNAMIC_SECTION(k.name << " N=" << N << " K=" << K << " T=" << T) {
                        const uint32_t  seed = static_cast<uint32_t>(N * 7919 + K + T);
                        auto            wbuf = random_bytes(N * K / 2 + 1, seed, 0, 255);
                        const uint8_t * w    = wbuf.data() + 1;
                        auto            sc   = random_bytes(N * K / 32, seed + 1, 118, 130);
                        if (T == 13) sc[0] = 1;  // not foldable (e8m0 code 1): tile fallback
                        auto       x = random_acts(T, K, seed + 2);
                        AlignedBuf qa(kernels::qact_row_bytes(K) * T);
                        k.act_quant(qa.p, x.data(), K, K, 0, T);
                        std::vector<float> y(T * N, -1.0f);
                        k.lin4(y.data(), N, kernels::Fp4Mat{w, sc.data(), N, K}, qa.p, T, 0, N);
                        std::vector<float> want(N);
                        for (int64_t t = 0; t < T; ++t) {
                            REQUIRE(
                                ref::lin4_ref(want.data(), x.data() + t * K, K, w, sc.data(), N));
                            std::vector<uint8_t> xa(K);
                            std::vector<float>   sa(K / 128);
                            ref::act_quant_fp8(x.data() + t * K, K, xa.data(), sa.data());
                            for (int64_t n = 0; n < N; ++n) {
                                const float got = y[t * N + n];
                                if (arch == CpuArch::scalar) {
                                    CHECK(got == want[n]);
                                    continue;
                                }
                                double S = 0.0;
                                for (int64_t kk = 0; kk < K; ++kk)
                                    S += std::fabs(
                                        double(ref::e4m3_to_f32(xa[kk])) * sa[kk / 128] *
                                        ref::e2m1_to_f32(ref::fp4_get(w + n * K / 2, kk)) *
                                        ref::e8m0_to_f32(sc[n * K / 32 + kk / 32]));
                                CHECK(std::fabs(double(got) - want[n]) <=
                                      tol_for(S, K, want[n], got));
                            }
                        }
                    }
                }
            }
        }
    }
}

// Decode GEMVs over weights that start at every offset within a cache line (as the tensors of
// a mapped checkpoint do): bit-identical to the same weights 64-byte aligned. The avx512bf16
// kernels read such rows as aligned lines with byte masks and reassemble them
// (linear-inl.hpp, "rows that do not start on a cache line"); the bytes around the matrix are
// e4m3 NaN codes / bf16 NaNs / FP4 bytes 0x77 (two 6.0 values), so a byte taken from outside
// a row would change the result.
TEST_CASE("decode GEMVs are bit-identical at every weight line offset", "[per_arch][linear]") {
    constexpr int64_t   N = 131, K = 256, T = 1;  // 131 rows: stream parts and a leftover row
    const auto          x = random_acts(T, K, 7);
    const RandomWeights rw(N, K, 8);
    const auto &        w8 = rw.w8, &sc = rw.s8, &w4 = rw.w4, &s4 = rw.s4;
    const auto &        wb = rw.wb;
    AlignedBuf          qa(kernels::qact_row_bytes(K) * T);
    AlignedBuf          buf(N * K * 2 + 256);
    // Runs both GEMVs with the weights at buf + 64 + m (NaN codes / bf16 NaNs around them).
    const auto run = [&](const kernels::KernelTable & k, int64_t m, int64_t n0,
                         std::vector<float> * y8, std::vector<float> * y4,
                         std::vector<float> * y16) {
        std::memset(buf.p, 0x7F, N * K * 2 + 256);
        uint8_t * w = buf.p + 64 + m;
        std::memcpy(w, w8.data(), N * K);
        y8->assign(N, 0.0f);
        k.lin8(y8->data(), N, kernels::Fp8Mat{w, sc.data(), N, K}, qa.p, T, n0, N);
        std::memset(buf.p, 0x77, N * K * 2 + 256);
        std::memcpy(w, w4.data(), N * K / 2);
        y4->assign(N, 0.0f);
        k.lin4(y4->data(), N, kernels::Fp4Mat{w, s4.data(), N, K}, qa.p, T, n0, N);
        y16->assign(N, 0.0f);
        if (m % 2) return;                          // bf16 rows start on even bytes
        std::memset(buf.p, 0xFF, N * K * 2 + 256);  // 0xFFFF: a bf16 NaN
        auto * wh = reinterpret_cast<uint16_t *>(buf.p + 64 + m);
        std::memcpy(wh, wb.data(), wb.size() * 2);
        k.gemm_bf16(y16->data(), N, wh, K, x.data(), K, K, T, n0, N);
    };
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        k.act_quant(qa.p, x.data(), K, K, 0, T);
        for (int64_t n0 : {int64_t{0}, int64_t{5}}) {
            std::vector<float> want8, want4, want16, y8, y4, y16;
            run(k, 0, n0, &want8, &want4, &want16);
            for (int64_t m = 1; m < 64; ++m) {
                run(k, m, n0, &y8, &y4, &y16);
                INFO(k.name << " offset " << m << " rows from " << n0);
                CHECK(y8 == want8);
                CHECK(y4 == want4);
                if (m % 2 == 0) CHECK(y16 == want16);
            }
        }
    }
}

#if defined(__unix__)
// n bytes that end where an inaccessible page begins: a read past them faults.
class GuardedTail {
  public:
    explicit GuardedTail(size_t n) : page_(static_cast<size_t>(sysconf(_SC_PAGESIZE))) {
        body_    = (n + page_ - 1) / page_ * page_;
        void * m = mmap(nullptr, body_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
        REQUIRE(m != MAP_FAILED);
        map_ = static_cast<uint8_t *>(m);
        REQUIRE(mprotect(map_ + body_, page_, PROT_NONE) == 0);
        p_ = map_ + body_ - n;
    }
    ~GuardedTail() { munmap(map_, body_ + page_); }
    GuardedTail(const GuardedTail &)             = delete;
    GuardedTail & operator=(const GuardedTail &) = delete;
    uint8_t *     data() const { return p_; }

  private:
    size_t    page_, body_ = 0;
    uint8_t * map_ = nullptr;
    uint8_t * p_   = nullptr;
};

// The kernels may prefetch past a matrix but never load past it: weights and scales end at an
// inaccessible page here, so such a load would crash the test (a unit test's 1-byte-larger
// heap buffer would not). Results must equal those from an ordinary buffer.
TEST_CASE("linear kernels read nothing past the weights or their scales", "[per_arch][linear]") {
    constexpr int64_t   N = 67, K = 256;
    const RandomWeights rw(N, K, 21);
    const auto &        w8 = rw.w8, &s8 = rw.s8, &w4 = rw.w4, &s4 = rw.s4;
    const auto &        wb = rw.wb;
    GuardedTail gw8(w8.size()), gs8(s8.size()), gw4(w4.size()), gs4(s4.size()), gwb(wb.size() * 2);
    std::memcpy(gw8.data(), w8.data(), w8.size());
    std::memcpy(gs8.data(), s8.data(), s8.size());
    std::memcpy(gw4.data(), w4.data(), w4.size());
    std::memcpy(gs4.data(), s4.data(), s4.size());
    std::memcpy(gwb.data(), wb.data(), wb.size() * 2);
    const auto * gbf = reinterpret_cast<const uint16_t *>(gwb.data());
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t T : {1, 2, 9}) {  // decode tiles, several-token tiles, packed GEMM
            DYNAMIC_SECTION(k.name << " T=" << T) {
                const auto x = random_acts(T, K, 26);
                AlignedBuf qa(kernels::qact_row_bytes(K) * T);
                k.act_quant(qa.p, x.data(), K, K, 0, T);
                std::vector<float> want(T * N), got(T * N);
                k.lin8(want.data(), N, kernels::Fp8Mat{w8.data(), s8.data(), N, K}, qa.p, T, 0, N);
                k.lin8(got.data(), N, kernels::Fp8Mat{gw8.data(), gs8.data(), N, K}, qa.p, T, 0, N);
                CHECK(got == want);
                k.lin4(want.data(), N, kernels::Fp4Mat{w4.data(), s4.data(), N, K}, qa.p, T, 0, N);
                k.lin4(got.data(), N, kernels::Fp4Mat{gw4.data(), gs4.data(), N, K}, qa.p, T, 0, N);
                CHECK(got == want);
                k.gemm_bf16(want.data(), N, wb.data(), K, x.data(), K, K, T, 0, N);
                k.gemm_bf16(got.data(), N, gbf, K, x.data(), K, K, T, 0, N);
                CHECK(got == want);
            }
        }
    }
}
#endif

TEST_CASE("gemm_bf16 and gemm_f32 match plain loops on every arch", "[per_arch][linear][gemm]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t N : {1, 5, 67}) {
            for (int64_t K : {1, 31, 32, 100, 4096}) {
                for (int64_t T : {1, 3, 13}) {  // 13: the prefill GEMM (12 + 1 tokens)
                    DYNAMIC_SECTION(k.name << " N=" << N << " K=" << K << " T=" << T) {
                        const uint32_t        seed = static_cast<uint32_t>(N * 31 + K * 7 + T);
                        auto                  wf   = test::random_floats(N * K + 1, seed);
                        std::vector<uint16_t> wb(N * K + 1);
                        for (size_t i = 0; i < wb.size(); ++i) wb[i] = ref::f32_to_bf16(wf[i]);
                        auto x = random_acts(T, K, seed + 3);  // bf16 values (contract)
                        std::vector<float> y(T * N), y32(T * N);
                        k.gemm_bf16(y.data(), N, wb.data() + 1, K, x.data(), K, K, T, 0, N);
                        k.gemm_f32(y32.data(), N, wf.data() + 1, K, x.data(), K, K, T, 0, N);
                        for (int64_t t = 0; t < T; ++t)
                            for (int64_t n = 0; n < N; ++n) {
                                double exact = 0, exact32 = 0, S = 0, S32 = 0;
                                for (int64_t kk = 0; kk < K; ++kk) {
                                    const double a = ref::bf16_to_f32(wb[1 + n * K + kk]) *
                                                     double(x[t * K + kk]);
                                    const double b = double(wf[1 + n * K + kk]) * x[t * K + kk];
                                    exact += a, S += std::fabs(a);
                                    exact32 += b, S32 += std::fabs(b);
                                }
                                // One order of fp32 additions (products exact for bf16·bf16;
                                // fp32·fp32 products add one rounding each: gamma_{K+1}).
                                CHECK(std::fabs(y[t * N + n] - exact) <=
                                      test::gamma_n(K) * S + 1e-30);
                                CHECK(std::fabs(y32[t * N + n] - exact32) <=
                                      test::gamma_n(K + 1) * S32 + 1e-30);
                            }
                    }
                }
            }
        }
    }
}

// gemm_f32 computes several tokens and rows at once (the HC mixes of a prefill) but must give
// each (row, token) the bits of the one-token call, so a prefill and a decode of the same
// token agree exactly.
TEST_CASE("gemm_f32 gives the same bits for any number of tokens", "[per_arch][linear][gemm]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t N : {1, 5, 24}) {
            for (int64_t K : {1, 31, 100, 1000, 16384}) {
                DYNAMIC_SECTION(k.name << " N=" << N << " K=" << K) {
                    constexpr int64_t  T = 5;
                    const auto         w = test::random_floats(N * K, static_cast<uint32_t>(K));
                    const auto         x = test::random_floats(T * K, static_cast<uint32_t>(K + 1));
                    std::vector<float> all(T * N, -1.0f), one(T * N, -2.0f);
                    k.gemm_f32(all.data(), N, w.data(), K, x.data(), K, K, T, 0, N);
                    for (int64_t t = 0; t < T; ++t)
                        k.gemm_f32(one.data() + t * N, N, w.data(), K, x.data() + t * K, K, K, 1, 0,
                                   N);
                    CHECK(std::memcmp(all.data(), one.data(), sizeof(float) * all.size()) == 0);
                }
            }
        }
    }
}

// wo_a's product (spec §3.5 step 9, §4.3): FP8 weights (dequantised exactly) times bf16
// activations that are NOT quantised, fp32 accumulation, bf16 output.
TEST_CASE("act_plain + lin8 is the unquantised bf16 product on every arch",
          "[per_arch][linear][lin8]") {
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t N : {2, 129}) {
            for (int64_t K : {128, 1024}) {
                for (int64_t T : {1, 3, 9}) {
                    DYNAMIC_SECTION(k.name << " N=" << N << " K=" << K << " T=" << T) {
                        const uint32_t seed = static_cast<uint32_t>(N * 17 + K + T);
                        auto           wbuf = random_e4m3(N * K, seed, 0);
                        auto sc = random_bytes((N + 127) / 128 * (K / 128), seed + 1, 112, 124);
                        auto x  = random_acts(T, K, seed + 2);
                        AlignedBuf qa(kernels::qact_row_bytes(K) * T);
                        k.act_plain(qa.p, x.data(), K, K, 0, T);
                        std::vector<float> y(T * N);
                        k.lin8(y.data(), N, kernels::Fp8Mat{wbuf.data(), sc.data(), N, K}, qa.p, T,
                               0, N);
                        for (int64_t t = 0; t < T; ++t)
                            for (int64_t n = 0; n < N; ++n) {
                                double exact = 0, S = 0;
                                for (int64_t kk = 0; kk < K; ++kk) {
                                    const double p =
                                        double(x[t * K + kk]) * ref::e4m3_to_f32(wbuf[n * K + kk]) *
                                        ref::e8m0_to_f32(sc[(n / 128) * (K / 128) + kk / 128]);
                                    exact += p, S += std::fabs(p);
                                }
                                const double got = y[t * N + n];
                                CHECK(std::fabs(got - exact) <=
                                      test::gamma_n(K) * S + 0x1p-8 * std::fabs(exact) + 1e-30);
                            }
                    }
                }
            }
        }
    }
}

// Decode kernels walk a row range as several parts in lockstep (linear-inl.hpp, "weight
// streams"), so which rows share a tile depends on the range a thread got. A row's result must
// not: every split of [0, N) gives the same bits as the whole range (this is what makes the
// forward pass independent of the thread count).
TEST_CASE("linear kernels give the same rows for every split of the row range",
          "[per_arch][linear]") {
    constexpr int64_t N = 37, K = 256;
    const int64_t     splits[] = {1, 2, 3, 4, 5, 9, 17, 36};
    for (CpuArch arch : test::usable_archs()) {
        const auto & k = kernels::kernel_table(arch);
        for (int64_t T : {1, 2, 5, 9}) {  // 9: the packed prefill GEMMs
            DYNAMIC_SECTION(k.name << " T=" << T) {
                const RandomWeights rw(N, K, 11);
                const auto &        wb = rw.wb;
                auto                x  = random_acts(T, K, 16);
                AlignedBuf          qa(kernels::qact_row_bytes(K) * T);
                k.act_quant(qa.p, x.data(), K, K, 0, T);
                const kernels::Fp8Mat m8{rw.w8.data(), rw.s8.data(), N, K};
                const kernels::Fp4Mat m4{rw.w4.data(), rw.s4.data(), N, K};
                auto                  run = [&](int64_t n0, int64_t n1, std::vector<float> * y) {
                    k.lin8(y[0].data(), N, m8, qa.p, T, n0, n1);
                    k.lin4(y[1].data(), N, m4, qa.p, T, n0, n1);
                    k.gemm_bf16(y[2].data(), N, wb.data(), K, x.data(), K, K, T, n0, n1);
                };
                std::vector<float> whole[3], parts[3];
                for (int i = 0; i < 3; ++i) whole[i].assign(T * N, -1.0f);
                run(0, N, whole);
                for (int64_t cut : splits) {
                    for (int i = 0; i < 3; ++i) parts[i].assign(T * N, -2.0f);
                    run(0, cut, parts);
                    run(cut, N, parts);
                    for (int i = 0; i < 3; ++i)
                        CHECK(std::memcmp(parts[i].data(), whole[i].data(),
                                          sizeof(float) * parts[i].size()) == 0);
                }
            }
        }
    }
}
