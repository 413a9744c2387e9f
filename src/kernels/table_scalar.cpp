// The scalar table: plain loops following include/dsv4/ref exactly (same operation order), so
// the scalar table is bit-identical to the reference functions. Always compiled, always last.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

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

// ---- attention (moved from model/attention.cpp; the reference the SIMD versions follow) ------

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Index score of one complete block (spec §3.7 step 4): per-head fp32 dot products rounded to
// bf16, ReLU, weighted (bf16), head sum in fp32 in head order, one rounding. Round = false is
// the Numerics seam (no bf16 rounding of the per-head scores, terms and sum).
template <bool Round>
float index_score(const float * qi, const float * wt, const uint16_t * key, int64_t ih,
                  int64_t ihd) {
    float sum = 0.0f;
    for (int64_t h = 0; h < ih; ++h) {
        float dot = 0.0f;
        for (int64_t i = 0; i < ihd; ++i) dot += qi[h * ihd + i] * ref::bf16_to_f32(key[i]);
        if constexpr (Round) {
            const float sh = std::max(ref::round_bf16(dot), 0.0f);
            sum += ref::round_bf16(sh * wt[h]);
        } else {
            sum += std::max(dot, 0.0f) * wt[h];
        }
    }
    return Round ? ref::round_bf16(sum) : sum;
}

// Sparse attention of one query head over a list of KV rows (nullptr = masked entry), as the
// reference kernel: chunks of 64 entries, online softmax with a running fp32 max, P rounded
// to bf16 for the P·V product, the sink only in the denominator, bf16 output. acc [hd] and
// s [kAttnChunk] are scratch.
void attend_head(const float * q, const uint16_t * const * rows, int64_t n, float sink, float scale,
                 int64_t hd, float * acc, float * s, float * out, AttnRule rule) {
    float m = rule.sink_in_max ? sink : kNegInf, l = 0.0f;
    for (int64_t i = 0; i < hd; ++i) acc[i] = 0.0f;
    for (int64_t c0 = 0; c0 < n; c0 += kAttnChunk) {
        const int64_t c1 = std::min(n, c0 + kAttnChunk);
        float         cm = kNegInf;
        for (int64_t j = c0; j < c1; ++j) {
            if (!rows[j]) {
                s[j - c0] = kNegInf;
                continue;
            }
            float dot = 0.0f;
            for (int64_t i = 0; i < hd; ++i) dot += q[i] * ref::bf16_to_f32(rows[j][i]);
            s[j - c0] = dot * scale;
            cm        = std::max(cm, s[j - c0]);
        }
        const float m_new = std::max(m, cm);
        if (m_new == kNegInf) continue;
        const float alpha = std::exp(m - m_new);  // 0 for the first valid chunk
        float       csum  = 0.0f;
        for (int64_t i = 0; i < hd; ++i) acc[i] *= alpha;
        for (int64_t j = c0; j < c1; ++j) {
            if (!rows[j]) continue;
            const float p = std::exp(s[j - c0] - m_new);
            csum += p;
            const float pb = ref::round_bf16(p);
            for (int64_t i = 0; i < hd; ++i) acc[i] += pb * ref::bf16_to_f32(rows[j][i]);
        }
        l = l * alpha + csum;
        m = m_new;
    }
    const float denom = rule.sink_in_denominator ? l + std::exp(sink - m) : l;
    if (rule.round_out) {
        for (int64_t i = 0; i < hd; ++i) out[i] = ref::round_bf16(acc[i] / denom);
    } else {
        for (int64_t i = 0; i < hd; ++i) out[i] = acc[i] / denom;
    }
}

}  // namespace

void index_scores(float * scores, const float * q, const float * wt, const uint16_t * keys,
                  int64_t ih, int64_t ihd, int64_t c0, int64_t c1, bool round) {
    for (int64_t c = c0; c < c1; ++c)
        scores[c] = round ? index_score<true>(q, wt, keys + c * ihd, ih, ihd)
                          : index_score<false>(q, wt, keys + c * ihd, ih, ihd);
}

void sparse_attn(float * out, const float * q, int64_t ld, const float * sinks,
                 const uint16_t * const * rows, int64_t n, int64_t hd, float scale, AttnRule rule,
                 int64_t h0, int64_t h1, float * scratch) {
    for (int64_t h = h0; h < h1; ++h) {
        float * acc = scratch + (h - h0) * attn_scratch_floats(hd);
        attend_head(q + h * ld, rows, n, sinks[h], scale, hd, acc, acc + hd, out + h * ld, rule);
    }
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
    .sum_exp       = &scalar::sum_exp,
    .swiglu        = &scalar::swiglu,
    .sqrt_softplus = &scalar::sqrt_softplus,
    .q_norm_bf16   = &scalar::q_norm_bf16,
    .hc_post       = &scalar::hc_post,
    .fp8sim        = &scalar::fp8sim,
    .fp4sim        = &scalar::fp4sim,
    .hadamard      = &scalar::hadamard,
    .index_scores  = &scalar::index_scores,
    .sparse_attn   = &scalar::sparse_attn,
};

}  // namespace dsv4::kernels
