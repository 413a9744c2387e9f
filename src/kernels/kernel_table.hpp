// The kernel table: one struct of function pointers per CPU architecture. The forward pass
// calls kernels only through a table, so the choice of ISA is made once (dispatch.cpp) and
// can be forced for tests (DSV4_FORCE_ARCH, LoadOptions::cpu_arch).
//
// Rules (docs/kernels.md): kernels take row ranges and never spawn threads; every entry has a
// scalar twin in include/dsv4/ref/ and a test against it on every arch the host supports.
// This header is included by the per-arch TUs, so it holds declarations and PODs only: no
// inline functions, no std templates (an inline function compiled with -mavx512f could be the
// copy the linker keeps for baseline callers).
#pragma once

#include <cstdint>

#include "dsv4/system.hpp"

namespace dsv4::kernels {

// ---- operand descriptions (PODs; pointers into the mapped checkpoint, may be unaligned) ------

// FP8 linear weight: w e4m3 codes [N, K] row-major; scale e8m0 codes [ceil(N/128), ceil(K/128)].
struct Fp8Mat {
    const uint8_t * w     = nullptr;
    const uint8_t * scale = nullptr;
    int64_t         N = 0, K = 0;
};

// FP4 routed-expert weight: w [N, K/2] bytes, element 2j in the low nibble of byte j;
// scale e8m0 codes [N, K/32].
struct Fp4Mat {
    const uint8_t * w     = nullptr;
    const uint8_t * scale = nullptr;
    int64_t         N = 0, K = 0;
};

// Prepared activations, one row per token, produced by act_quant (spec §4.1 step 1: FP8
// block quantisation) or act_plain (no quantisation, for FP8 weights whose reference product
// takes bf16 activations, e.g. wo_a) and consumed by lin8/lin4 of the *same* table. Row layout
// (qact_row_bytes(K) bytes, every part 64-byte aligned relative to the row start; the buffer
// itself must be 64-byte aligned):
//   [K e4m3 codes][K/128 fp32 scales][4·K bytes arch-private: the effective activation values
//   (xa·sa, or x for act_plain) in the arch's format and order — fp32 in natural order for the
//   scalar and AVX2 paths, bf16 in the weight decoder's lane order for AVX-512 BF16].
// lin8/lin4 read only the private part. Codes and scales are written by act_quant (tests check
// them bit for bit) and left undefined by act_plain. Folding sa into the values is exact (powers
// of two commute with fp32 rounding), so results equal the reference's "partial·(sa·sw)" form.
// K must be a multiple of 128 (guaranteed by config validation). The helpers are `static` so
// every TU (including the arch TUs) gets its own copy and none can leak across TUs.
// Largest padded size of a Hadamard transform whose n is not a power of two (the padded copy is
// on the stack); equals ref::kHadamardMaxPadded (checked in scalar_elementwise.cpp).
static constexpr int64_t kHadamardMaxPadded = 4096;

static constexpr int64_t qact_align(int64_t n) {
    return (n + 63) / 64 * 64;
}
static constexpr int64_t qact_codes_offset(int64_t) {
    return 0;
}
static constexpr int64_t qact_scales_offset(int64_t K) {
    return qact_align(K);
}
static constexpr int64_t qact_private_offset(int64_t K) {
    return qact_align(K) + qact_align(K / 128 * 4);
}
static constexpr int64_t qact_row_bytes(int64_t K) {
    return qact_private_offset(K) + 4 * K;
}

// Sparse attention (spec §3.8): the online-softmax chunk of the reference kernel, and the
// treatment of the sink and of the output. The faithful engine is the default; the other
// settings are the model's Numerics seam (model/context.hpp).
static constexpr int64_t kAttnChunk = 64;
// The most hyper-connection streams hc_post takes (the config's limit, model/config.hpp).
static constexpr int64_t kMaxHcStreams = 16;
struct AttnRule {
    bool sink_in_denominator = true;   // exp(sink − m) added to the denominator
    bool sink_in_max         = false;  // the sink starts the running max
    bool round_out           = true;   // bf16 output
};
// Floats of sparse_attn scratch per head (64-byte multiple): the fp32 accumulator [hd], the
// query as bf16 pairs [hd/2], the chunk's scores and probabilities [2·64] (the avx512bf16 path
// keeps P as bf16 pairs in the second half), running state [16].
static constexpr int64_t attn_scratch_floats(int64_t hd) {
    return (hd + (hd + 1) / 2 + 2 * kAttnChunk + 16 + 15) / 16 * 16;
}

struct KernelTable {
    CpuArch      arch;
    const char * name;
    float (*dot_f32)(const float * a, const float * b, int64_t n);
    void (*rmsnorm_f32)(float * out, const float * x, const float * w, int64_t n, float eps);

    // Quantises rows t in [t0, t1) of x (bf16 values, row stride ldx floats, K columns) into
    // qa + t·qact_row_bytes(K).
    void (*act_quant)(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0,
                      int64_t t1);
    // Same rows, no quantisation: x must hold bf16 values (they are used as they are).
    void (*act_plain)(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0,
                      int64_t t1);
    // y[t·ldy + n] = lin8(x_t, W)[n] (bf16 values) for output rows n in [n0, n1) and all T
    // token rows of qa. T = 1 is the decode GEMV; T > 1 the prefill GEMM.
    void (*lin8)(float * y, int64_t ldy, const Fp8Mat & w, const uint8_t * qa, int64_t T,
                 int64_t n0, int64_t n1);
    // The same for FP4 weights (spec §4.2).
    void (*lin4)(float * y, int64_t ldy, const Fp4Mat & w, const uint8_t * qa, int64_t T,
                 int64_t n0, int64_t n1);
    // Unquantised products (spec §4.3): y[t·ldy + n] = Σ_k x[t·ldx + k] · W[n, k], fp32
    // accumulation, fp32 output, n in [n0, n1). W is bf16 bits [N, K] (row stride ldw) or fp32.
    void (*gemm_bf16)(float * y, int64_t ldy, const uint16_t * w, int64_t ldw, const float * x,
                      int64_t ldx, int64_t K, int64_t T, int64_t n0, int64_t n1);
    void (*gemm_f32)(float * y, int64_t ldy, const float * w, int64_t ldw, const float * x,
                     int64_t ldx, int64_t K, int64_t T, int64_t n0, int64_t n1);

    // Benchmark probe, not a kernel: runs `iters` rounds of independent fp32 FMAs at this
    // arch's vector width and returns the flops performed (2 per lane per FMA), so benchmarks
    // can report a percentage of the machine's measured FMA peak.
    double (*fma_probe)(int64_t iters);

    // ---- elementwise kernels (spec §3.2–§3.4, §3.10): fp32 arrays, pointers may be unaligned --
    // out[i] = bf16(w[i]·(x[i]·r)), r = 1/sqrt(Σx²/n + eps) (§3.2); n ≥ 1; out may alias x.
    void (*rmsnorm_bf16)(float * out, const float * x, const float * w, int64_t n, float eps);
    // In place on v[len − rope_dim, len): interleaved pairs rotated by cos/sin[rope_dim/2], bf16
    // outputs, −sin if inverse (§3.3, ref::rope_interleaved_last); rope_dim even, ≤ len.
    void (*rope)(float * v, int64_t len, int64_t rope_dim, const float * cos, const float * sin,
                 bool inverse);
    // rope on the n_vec vectors v + h·stride (h < n_vec, e.g. attention heads), same cos/sin.
    void (*rope_heads)(float * v, int64_t n_vec, int64_t stride, int64_t len, int64_t rope_dim,
                       const float * cos, const float * sin, bool inverse);
    // In place: x[i] = exp(x[i] − max) / Σ exp(x[j] − max), fp32 (ref::softmax_inplace); n ≥ 0.
    void (*softmax)(float * x, int64_t n);
    // Σ exp(x[i] − m) over n ≥ 0 values, m ≥ every x[i] (their max for a log-sum-exp): each term
    // an fp32 exp (the softmax's, ≤ 1.01 ulp), summed in fp32 over blocks of at most 256 terms
    // whose sums are added in double. The scalar twin: exp and sum in double.
    double (*sum_exp)(const float * x, int64_t n, float m);
    // out[i] = weight·(silu(min(gate[i], L))·clamp(up[i], −L, L)), L = limit (0: no clamp),
    // fp32 (§3.10, weight = routing weight or 1); out may alias gate or up.
    void (*swiglu)(float * out, const float * gate, const float * up, int64_t n, float limit,
                   float weight);
    // out[i] = sqrt(softplus(z[i])), torch threshold 20, fp32 (§3.10 gate); out may alias z.
    void (*sqrt_softplus)(float * out, const float * z, int64_t n);
    // Per-head q normalisation in bf16 arithmetic (§3.5 step 3) of the H heads q + h·hd: sq =
    // bf16(q²), ms = bf16(Σ sq / hd) (fp32 sum in element order), t = bf16(ms + eps), rs =
    // bf16(1 / sqrt(t)) (fp32), q = bf16(q·rs). hd ≥ 1.
    void (*q_norm_bf16)(float * q, int64_t H, int64_t hd, float eps);
    // The hyper-connection write-back (§3.1 hc_post) of columns [c0, c1), x and R [hc, dim]
    // (stream-major), o [dim]: x[k·dim + i] = bf16(post[k]·o[i] + s), s = comb[k]·R[i] then
    // + comb[j·hc + k]·R[j·dim + i] for j = 1 .. hc−1 in order (fp32, each product rounded, no
    // FMA). 1 ≤ hc ≤ kMaxHcStreams; x may alias R (a column's hc inputs are read before any of its
    // outputs is written).
    void (*hc_post)(float * x, const float * o, const float * R, const float * post,
                    const float * comb, int64_t hc, int64_t dim, int64_t c0, int64_t c1);
    // In place FP8 block simulation (§3.4, ref::fp8sim_inplace), blocks of `block` ≥ 1 (the last
    // may be shorter); bf16 values in and out.
    void (*fp8sim)(float * v, int64_t n, int64_t block);
    // In place FP4 block simulation (§3.4, ref::fp4sim_inplace), blocks of 32; bf16 in and out.
    void (*fp4sim)(float * v, int64_t n);
    // In place scaled Walsh–Hadamard transform (§3.4, ref::hadamard_bf16), bf16 values in and
    // out; n not a power of two is zero-padded to the next one P (the first n outputs kept);
    // returns false (v untouched) if n <= 0 or such a P exceeds kHadamardMaxPadded.
    bool (*hadamard)(float * v, int64_t n);

    // ---- attention (spec §3.7, §3.8) --------------------------------------------------------
    // Lightning-indexer scores of compressed blocks c in [c0, c1) (spec §3.7 step 4):
    //   round: scores[c] = bf16(Σ_h bf16(max(bf16(q_h·key_c), 0)·wt[h])), heads summed in order;
    //   !round (Numerics seam): scores[c] = Σ_h max(q_h·key_c, 0)·wt[h], no rounding.
    // q [ih, ihd] fp32 holding bf16 values (after Hadamard + FP4 simulation), wt [ih], keys bf16
    // bits [blocks, ihd] (row c at keys + c·ihd); the dots are fp32 sums of exact products.
    void (*index_scores)(float * scores, const float * q, const float * wt, const uint16_t * keys,
                         int64_t ih, int64_t ihd, int64_t c0, int64_t c1, bool round);
    // Sparse attention of heads h in [h0, h1) over the same n KV rows (bf16 bits, hd each;
    // rows[j] == nullptr is a masked entry), as the reference kernel: chunks of kAttnChunk
    // entries, online softmax with a running fp32 max, P rounded to bf16 for P·V, the sink per
    // `rule`. q + h·ld (fp32 holding bf16 values), sinks[h], out + h·ld (may alias q: every
    // head's q is read before any output is written). scratch: (h1 − h0)·attn_scratch_floats(hd)
    // floats, 64-byte aligned.
    void (*sparse_attn)(float * out, const float * q, int64_t ld, const float * sinks,
                        const uint16_t * const * rows, int64_t n, int64_t hd, float scale,
                        AttnRule rule, int64_t h0, int64_t h1, float * scratch);
};

// The scalar kernels (table_scalar.cpp, baseline ISA). Arch tables may point at these for
// entries they have no SIMD version of yet.
namespace scalar {
void   act_quant(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0, int64_t t1);
void   act_plain(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0, int64_t t1);
void   lin8(float * y, int64_t ldy, const Fp8Mat & w, const uint8_t * qa, int64_t T, int64_t n0,
            int64_t n1);
void   lin4(float * y, int64_t ldy, const Fp4Mat & w, const uint8_t * qa, int64_t T, int64_t n0,
            int64_t n1);
void   gemm_bf16(float * y, int64_t ldy, const uint16_t * w, int64_t ldw, const float * x,
                 int64_t ldx, int64_t K, int64_t T, int64_t n0, int64_t n1);
void   gemm_f32(float * y, int64_t ldy, const float * w, int64_t ldw, const float * x, int64_t ldx,
                int64_t K, int64_t T, int64_t n0, int64_t n1);
double fma_probe(int64_t iters);
// scalar_elementwise.cpp: the include/dsv4/ref functions behind the elementwise entries.
void   rmsnorm_bf16(float * out, const float * x, const float * w, int64_t n, float eps);
void   rope(float * v, int64_t len, int64_t rope_dim, const float * cos, const float * sin,
            bool inverse);
void   rope_heads(float * v, int64_t n_vec, int64_t stride, int64_t len, int64_t rope_dim,
                  const float * cos, const float * sin, bool inverse);
void   softmax(float * x, int64_t n);
double sum_exp(const float * x, int64_t n, float m);
void   swiglu(float * out, const float * gate, const float * up, int64_t n, float limit,
              float weight);
void   sqrt_softplus(float * out, const float * z, int64_t n);
void   q_norm_bf16(float * q, int64_t H, int64_t hd, float eps);
void   hc_post(float * x, const float * o, const float * R, const float * post, const float * comb,
               int64_t hc, int64_t dim, int64_t c0, int64_t c1);
void   fp8sim(float * v, int64_t n, int64_t block);
void   fp4sim(float * v, int64_t n);
bool   hadamard(float * v, int64_t n);
// table_scalar.cpp: the attention twins (plain loops; the specification of the SIMD versions).
void index_scores(float * scores, const float * q, const float * wt, const uint16_t * keys,
                  int64_t ih, int64_t ihd, int64_t c0, int64_t c1, bool round);
void sparse_attn(float * out, const float * q, int64_t ld, const float * sinks,
                 const uint16_t * const * rows, int64_t n, int64_t hd, float scale, AttnRule rule,
                 int64_t h0, int64_t h1, float * scratch);
}  // namespace scalar

// Tables compiled into this binary (defined in the arch TUs; absent ones are null).
extern const KernelTable kTableScalar;
#if defined(DSV4_HAVE_AVX2)
extern const KernelTable kTableAvx2;
#endif
#if defined(DSV4_HAVE_AVX512)
extern const KernelTable kTableAvx512;
extern const KernelTable kTableAvx512Bf16;
#endif

bool arch_compiled(CpuArch arch) noexcept;
bool arch_supported(CpuArch arch) noexcept;  // compiled and runnable on this CPU/OS

// Table for an explicit, usable arch (callers resolve `automatic` first via resolve_cpu_arch).
// Falls back to the scalar table for anything not usable, so it never returns null.
const KernelTable & kernel_table(CpuArch arch) noexcept;

}  // namespace dsv4::kernels
