// The scalar table: plain loops following include/dsv4/ref exactly (same operation order), so
// the scalar table is bit-identical to the reference functions. Always compiled, always last.
#include <cmath>
#include <cstring>

#include "dsv4/ref/formats.hpp"
#include "dsv4/ref/ops.hpp"
#include "kernels/kernel_table.hpp"

namespace dsv4::kernels::scalar {
namespace {

const float * values(const uint8_t * qa, int64_t K, int64_t t) {
    return reinterpret_cast<const float *>(qa + t * qact_row_bytes(K) + qact_private_offset(K));
}

}  // namespace

// qa must be 64-byte aligned. Private part: fp32 values xa·sa (exact) in natural order.
void act_quant(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0, int64_t t1) {
    const int64_t                  row = qact_row_bytes(K);
    const std::array<float, 256> & dec = ref::e4m3_table();
    for (int64_t t = t0; t < t1; ++t) {
        uint8_t *       r      = qa + t * row;
        const uint8_t * codes  = r + qact_codes_offset(K);
        float *         scales = reinterpret_cast<float *>(r + qact_scales_offset(K));
        float *         vals   = reinterpret_cast<float *>(r + qact_private_offset(K));
        ref::act_quant_fp8(x + t * ldx, K, r + qact_codes_offset(K), scales);
        for (int64_t k = 0; k < K; ++k) vals[k] = dec[codes[k]] * scales[k / 128];
    }
}

void act_plain(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
        std::memcpy(qa + t * qact_row_bytes(K) + qact_private_offset(K), x + t * ldx,
                    sizeof(float) * K);
}

void lin8(float * y, int64_t ldy, const Fp8Mat & w, const uint8_t * qa, int64_t T, int64_t n0,
          int64_t n1) {
    const int64_t                  K = w.K, nb = K / 128;
    const std::array<float, 256> & dec = ref::e4m3_table();
    for (int64_t t = 0; t < T; ++t) {
        const float * xv = values(qa, K, t);
        for (int64_t n = n0; n < n1; ++n) {
            const uint8_t * wr  = w.w + n * K;
            float           acc = 0.0f;
            for (int64_t b = 0; b < nb; ++b) {
                float partial = 0.0f;
                for (int64_t k = b * 128; k < (b + 1) * 128; ++k) {
                    const float prod = xv[k] * dec[wr[k]];
                    partial += prod;
                }
                const float sc     = ref::e8m0_to_f32(w.scale[(n / 128) * nb + b]);
                const float scaled = partial * sc;
                acc += scaled;
            }
            y[t * ldy + n] = ref::round_bf16(acc);
        }
    }
}

void lin4(float * y, int64_t ldy, const Fp4Mat & w, const uint8_t * qa, int64_t T, int64_t n0,
          int64_t n1) {
    const int64_t K = w.K, nc = K / 32;
    for (int64_t t = 0; t < T; ++t) {
        const float * xv = values(qa, K, t);
        for (int64_t n = n0; n < n1; ++n) {
            const uint8_t * wr  = w.w + n * (K / 2);
            float           acc = 0.0f;
            for (int64_t c = 0; c < nc; ++c) {
                float partial = 0.0f;
                for (int64_t k = c * 32; k < (c + 1) * 32; ++k) {
                    const float prod = xv[k] * ref::e2m1_to_f32(ref::fp4_get(wr, k));
                    partial += prod;
                }
                const float sc     = ref::e8m0_to_f32(w.scale[n * nc + c]);
                const float scaled = partial * sc;
                acc += scaled;
            }
            y[t * ldy + n] = ref::round_bf16(acc);
        }
    }
}

void gemm_bf16(float * y, int64_t ldy, const uint16_t * w, int64_t ldw, const float * x,
               int64_t ldx, int64_t K, int64_t T, int64_t n0, int64_t n1) {
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t n = n0; n < n1; ++n) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; ++k) {
                uint16_t bits;
                std::memcpy(&bits, w + n * ldw + k, sizeof bits);  // w may be unaligned
                acc += x[t * ldx + k] * ref::bf16_to_f32(bits);
            }
            y[t * ldy + n] = acc;
        }
    }
}

void gemm_f32(float * y, int64_t ldy, const float * w, int64_t ldw, const float * x, int64_t ldx,
              int64_t K, int64_t T, int64_t n0, int64_t n1) {
    for (int64_t t = 0; t < T; ++t)
        for (int64_t n = n0; n < n1; ++n)
            y[t * ldy + n] = ref::dot_f32(w + n * ldw, x + t * ldx, K);
}

double fma_probe(int64_t iters) {
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int64_t i = 0; i < iters; ++i)
        for (float & v : a) v = v * 0.999999f + 1e-7f;
    volatile float sink = a[0] + a[7];
    (void)sink;
    return static_cast<double>(iters) * 8 * 2;
}

}  // namespace dsv4::kernels::scalar

namespace dsv4::kernels {

extern const KernelTable kTableScalar = {
    .arch          = CpuArch::scalar,
    .name          = "scalar",
    .dot_f32       = &ref::dot_f32,
    .rmsnorm_f32   = &ref::rmsnorm_f32,
    .act_quant     = &scalar::act_quant,
    .act_plain     = &scalar::act_plain,
    .lin8          = &scalar::lin8,
    .lin4          = &scalar::lin4,
    .gemm_bf16     = &scalar::gemm_bf16,
    .gemm_f32      = &scalar::gemm_f32,
    .fma_probe     = &scalar::fma_probe,
    .rmsnorm_bf16  = &scalar::rmsnorm_bf16,
    .rope          = &scalar::rope,
    .rope_heads    = &scalar::rope_heads,
    .softmax       = &scalar::softmax,
    .swiglu        = &scalar::swiglu,
    .sqrt_softplus = &scalar::sqrt_softplus,
    .fp8sim        = &scalar::fp8sim,
    .fp4sim        = &scalar::fp4sim,
    .hadamard      = &scalar::hadamard,
};

}  // namespace dsv4::kernels
