// The scalar table's elementwise kernels: the include/dsv4/ref functions themselves (baseline
// TU), so the scalar table is bit-identical to the reference by construction.
#include <cmath>

#include "dsv4/ref/formats.hpp"
#include "dsv4/ref/ops.hpp"
#include "kernels/kernel_table.hpp"

namespace dsv4::kernels::scalar {

void rmsnorm_bf16(float * out, const float * x, const float * w, int64_t n, float eps) {
    ref::rmsnorm_bf16(out, x, w, n, eps);
}

void rope(float * v, int64_t len, int64_t rope_dim, const float * cos, const float * sin,
          bool inverse) {
    ref::rope_interleaved_last(v, len, rope_dim, cos, sin, inverse);
}

void rope_heads(float * v, int64_t n_vec, int64_t stride, int64_t len, int64_t rope_dim,
                const float * cos, const float * sin, bool inverse) {
    for (int64_t h = 0; h < n_vec; ++h)
        ref::rope_interleaved_last(v + h * stride, len, rope_dim, cos, sin, inverse);
}

void softmax(float * x, int64_t n) {
    ref::softmax_inplace(x, n);
}
double sum_exp(const float * x, int64_t n, float m) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - double(m));
    return s;
}

void swiglu(float * out, const float * gate, const float * up, int64_t n, float limit,
            float weight) {
    for (int64_t i = 0; i < n; ++i) {
        const float h = ref::swiglu_clamped(gate[i], up[i], limit);
        out[i]        = weight * h;
    }
}

void sqrt_softplus(float * out, const float * z, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = ref::sqrt_softplus(z[i]);
}

void q_norm_bf16(float * q, int64_t H, int64_t hd, float eps) {
    for (int64_t h = 0; h < H; ++h) {
        float * v   = q + h * hd;
        float   sum = 0.0f;
        for (int64_t i = 0; i < hd; ++i) sum += ref::round_bf16(v[i] * v[i]);
        const float ms = ref::round_bf16(sum / static_cast<float>(hd));
        const float t  = ref::round_bf16(ms + eps);
        const float rs = ref::round_bf16(1.0f / std::sqrt(t));
        for (int64_t i = 0; i < hd; ++i) v[i] = ref::round_bf16(v[i] * rs);
    }
}

void hc_post(float * x, const float * o, const float * R, const float * post, const float * comb,
             int64_t hc, int64_t dim, int64_t c0, int64_t c1) {
    for (int64_t i = c0; i < c1; ++i) {
        float r[kMaxHcStreams];
        for (int64_t j = 0; j < hc; ++j) r[j] = R[j * dim + i];
        for (int64_t k = 0; k < hc; ++k) {
            float s = comb[k] * r[0];
            for (int64_t j = 1; j < hc; ++j) {
                const float p = comb[j * hc + k] * r[j];
                s += p;
            }
            const float po = post[k] * o[i];
            x[k * dim + i] = ref::round_bf16(po + s);
        }
    }
}

void fp8sim(float * v, int64_t n, int64_t block) {
    ref::fp8sim_inplace(v, n, block);
}

void fp4sim(float * v, int64_t n) {
    ref::fp4sim_inplace(v, n);
}

static_assert(kHadamardMaxPadded == ref::kHadamardMaxPadded);
bool hadamard(float * v, int64_t n) {
    return ref::hadamard_bf16(v, n);
}

}  // namespace dsv4::kernels::scalar
