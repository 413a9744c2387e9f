// dot_f32 and rmsnorm_f32 on every usable arch against the scalar reference, with odd sizes
// (SIMD tails) and unaligned pointers.
#include "dsv4/ref/ops.hpp"
#include "kernels/arch_util.hpp"

using namespace dsv4;

namespace {
constexpr int64_t kSizes[] = {1, 3, 7, 15, 16, 17, 31, 64, 100, 127, 128, 129, 1000, 4096, 4099};
}

TEST_CASE("dot_f32 matches the scalar reference on every arch", "[per_arch][dot]") {
    for (CpuArch arch : test::usable_archs()) {
        const kernels::KernelTable & k = kernels::kernel_table(arch);
        REQUIRE(k.arch == arch);
        for (int64_t n : kSizes) {
            for (int64_t offset : {0, 1, 3}) {  // unaligned starts
                DYNAMIC_SECTION(k.name << " n=" << n << " off=" << offset) {
                    auto          a       = test::random_floats(n + offset, 1 + n);
                    auto          b       = test::random_floats(n + offset, 2 + n);
                    const float * pa      = a.data() + offset;
                    const float * pb      = b.data() + offset;
                    const float   got     = k.dot_f32(pa, pb, n);
                    const float   ref     = ref::dot_f32(pa, pb, n);
                    double        abs_sum = 0.0;
                    for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(double(pa[i]) * pb[i]);
                    // Both results are within gamma_n * sum|ab| of the exact value.
                    const double tol = 2.0 * test::gamma_n(n) * abs_sum;
                    CHECK(std::fabs(double(got) - double(ref)) <= tol);
                }
            }
        }
    }
}

TEST_CASE("rmsnorm_f32 matches the scalar reference on every arch", "[per_arch][rmsnorm]") {
    for (CpuArch arch : test::usable_archs()) {
        const kernels::KernelTable & k = kernels::kernel_table(arch);
        for (int64_t n : kSizes) {
            DYNAMIC_SECTION(k.name << " n=" << n) {
                auto               x = test::random_floats(n + 1, 10 + n, -4.0f, 4.0f);
                auto               w = test::random_floats(n + 1, 20 + n, 0.5f, 1.5f);
                std::vector<float> got(n + 1), want(n + 1);
                k.rmsnorm_f32(got.data() + 1, x.data() + 1, w.data() + 1, n, 1e-6f);
                ref::rmsnorm_f32(want.data() + 1, x.data() + 1, w.data() + 1, n, 1e-6f);
                // The sum of squares differs by <= gamma_n relative (all terms positive); the
                // rsqrt halves that; each side adds a few roundings (div, add, sqrt, 2 muls).
                const double rel = 2.0 * (0.5 * test::gamma_n(n) + 6.0 * test::kU32);
                for (int64_t i = 1; i <= n; ++i)
                    CHECK(std::fabs(double(got[i]) - double(want[i])) <=
                          rel * std::fabs(double(want[i])) + 1e-30);
            }
        }
    }
}
