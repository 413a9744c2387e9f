// Elementwise kernels (spec §3.2–§3.4, §3.10): rmsnorm_bf16, rope (one vector or many heads),
// softmax, swiglu, sqrt_softplus, fp8sim, fp4sim, hadamard. Included by ops-inl.hpp inside the
// per-arch anonymous namespace (after dot_f32), so every arch gets its own copy; the rules of
// ops-inl.hpp apply (xsimd, intrinsics and __builtin_* only; no shared inline code).
//
// Exactness (tests/kernels/test_elementwise.cpp checks each claim):
//  * fp8sim, fp4sim, hadamard, rope: bit-identical to include/dsv4/ref. They perform the
//    reference's operations on the same operands in the same order, only lane-parallel:
//    - fp8sim/fp4sim: amax and the ue8m0 scale as in the reference; v/s is formed as v·(1/s)
//      with 1/s an exact power of two (both are the correctly rounded value of the same real);
//      RNE onto the e4m3/e2m1 grid on the fp32 bit pattern (normal range) or as
//      nearbyint(|t|·2^k)·2^-k (subnormal range); q·s is exact; then the bf16 rounding.
//    - hadamard: radix-2 butterflies lowest bit first; in-register stages form a+b and
//      (−b)+a, which equal the reference's fp32 a+b and a−b exactly.
//    - rope: a·c + b·(−s) and b·c + a·s with separate multiplies (no FMA), which equal the
//      reference's fp32 a·c − b·s and a·s + b·c exactly.
//  * rmsnorm_bf16: the sum of squares is added in a different order (dot_f32), so it differs
//    from the reference by at most gamma_n relative before the final bf16 rounding.
//  * softmax, swiglu, sqrt_softplus use exp/log1p below instead of the C library's; see the
//    error bounds there. softmax also sums in lane order.

// ---- local helpers (no inline code may be shared with baseline TUs) -------------------------

using batch_u = xsimd::batch<uint32_t, arch_t>;
using batch_i = xsimd::batch<int32_t, arch_t>;

inline batch_u elt_bits(batch_f x) {
    return xsimd::bitwise_cast<batch_u>(x);
}
inline batch_f elt_float(batch_u u) {
    return xsimd::bitwise_cast<batch_f>(u);
}

// The first m (0 <= m < kLanes) floats of p; the other lanes hold `fill`. Never reads past p+m.
inline batch_f elt_load_part(const float * p, int64_t m, float fill) {
#if defined(__AVX512F__)
    const __mmask16 k = static_cast<__mmask16>((1u << m) - 1u);
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), k, p);
#elif defined(__AVX2__)
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(m)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, mask),
                            _mm256_castsi256_ps(mask));
#else
    alignas(64) float a[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) a[j] = j < m ? p[j] : fill;
    return batch_f::load_aligned(a);
#endif
}
// Stores the first m (0 <= m < kLanes) lanes of v to p.
inline void elt_store_part(float * p, batch_f v, int64_t m) {
#if defined(__AVX512F__)
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << m) - 1u), v);
#elif defined(__AVX2__)
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(m)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(p, mask, v);
#else
    alignas(64) float a[kLanes];
    v.store_aligned(a);
    for (int64_t j = 0; j < m; ++j) p[j] = a[j];
#endif
}

inline float elt_hmax(batch_f v) {
    alignas(64) float a[kLanes];
    v.store_aligned(a);
    float m = a[0];
    for (int64_t j = 1; j < kLanes; ++j) m = a[j] > m ? a[j] : m;
    return m;
}

// Lane j <-> lane j^h, h a power of two below kLanes.
template <int H>
inline batch_f elt_swap(batch_f x) {
    static_assert(H >= 1 && H < kLanes, "swap distance");
#if defined(__AVX512F__)
    if constexpr (H == 1) return _mm512_permute_ps(x, 0xB1);
    if constexpr (H == 2) return _mm512_permute_ps(x, 0x4E);
    if constexpr (H == 4) return _mm512_shuffle_f32x4(x, x, 0xB1);
    return _mm512_shuffle_f32x4(x, x, 0x4E);
#elif defined(__AVX2__)
    if constexpr (H == 1) return _mm256_permute_ps(x, 0xB1);
    if constexpr (H == 2) return _mm256_permute_ps(x, 0x4E);
    return _mm256_permute2f128_ps(x, x, 0x01);
#else
    alignas(64) float a[kLanes], b[kLanes];
    x.store_aligned(a);
    for (int64_t j = 0; j < kLanes; ++j) b[j] = a[j ^ H];
    return batch_f::load_aligned(b);
#endif
}

// Lane 2i and 2i+1 = p[i], for i < kLanes/2.
inline batch_f elt_dup_pairs(const float * p) {
#if defined(__AVX512F__)
    const __m512i idx = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(_mm256_loadu_ps(p)));
#elif defined(__AVX2__)
    const __m256i idx = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), idx);
#else
    alignas(64) float a[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) a[j] = p[j / 2];
    return batch_f::load_aligned(a);
#endif
}

// 0x80000000 in lanes j with (j & h) != 0, else 0 (h = 1, 2, 4, 8; lanes beyond kLanes unused).
alignas(64) constexpr uint32_t kEltSignMasks[4][16] = {
    {0, 0x80000000u, 0, 0x80000000u, 0, 0x80000000u, 0, 0x80000000u, 0, 0x80000000u, 0, 0x80000000u,
     0, 0x80000000u, 0, 0x80000000u},
    {0, 0, 0x80000000u, 0x80000000u, 0, 0, 0x80000000u, 0x80000000u, 0, 0, 0x80000000u, 0x80000000u,
     0, 0, 0x80000000u, 0x80000000u},
    {0, 0, 0, 0, 0x80000000u, 0x80000000u, 0x80000000u, 0x80000000u, 0, 0, 0, 0, 0x80000000u,
     0x80000000u, 0x80000000u, 0x80000000u},
    {0, 0, 0, 0, 0, 0, 0, 0, 0x80000000u, 0x80000000u, 0x80000000u, 0x80000000u, 0x80000000u,
     0x80000000u, 0x80000000u, 0x80000000u},
};

// Round to the nearest bf16 value, ties to even, as ref::round_bf16 (NaN: quiet, sign and top
// payload kept; overflow to ±inf).
inline batch_f elt_round_bf16(batch_f x) {
    const batch_u u   = elt_bits(x);
    const batch_u r   = (u + batch_u(0x7FFFu) + ((u >> 16) & batch_u(1u))) & batch_u(0xFFFF0000u);
    const batch_f nan = elt_float((u & batch_u(0xFFFF0000u)) | batch_u(0x00400000u));
    return xsimd::select(x != x, nan, elt_float(r));
}

// exp(x), fp32. Cody–Waite reduction x = n·ln2 + r (ln2 split 0.693359375 + −2.12194440e-4,
// the first part exact in n·C1 for |n| < 2^15), Cephes' degree-7 expf polynomial on
// |r| <= ln2/2, then ·2^n applied as two power-of-two factors, so that results in the
// subnormal range are rounded once and x > 88.72 overflows to +inf like libm. x is clamped to
// [-110, 100] first (exp(-110) rounds to 0, exp(100) to inf); NaN propagates.
// Max error, measured over every fp32 x in [-104, 89] against exp in double (GCC and Clang,
// AVX2 and AVX-512 builds alike): 1.01 ulp; subnormal results within 1.01 units of 2^-149
// (kExpUlpMine in the test).
inline batch_f elt_exp(batch_f x) {
    const batch_f xc = xsimd::min(xsimd::max(x, batch_f(-110.0f)), batch_f(100.0f));
    const batch_f n  = xsimd::nearbyint(xc * batch_f(1.44269504088896341f));
    batch_f       r  = xsimd::fnma(n, batch_f(0.693359375f), xc);
    r                = xsimd::fnma(n, batch_f(-2.12194440e-4f), r);
    batch_f p        = batch_f(1.9875691500e-4f);
    p                = xsimd::fma(p, r, batch_f(1.3981999507e-3f));
    p                = xsimd::fma(p, r, batch_f(8.3334519073e-3f));
    p                = xsimd::fma(p, r, batch_f(4.1665795894e-2f));
    p                = xsimd::fma(p, r, batch_f(1.6666665459e-1f));
    p                = xsimd::fma(p, r, batch_f(5.0000001201e-1f));
    p                = xsimd::fma(p, r * r, r) + batch_f(1.0f);
    const batch_i ni = xsimd::nearbyint_as_int(n);  // in [-159, 145]
    const batch_i n1 = ni >> 1;
    const batch_i n2 = ni - n1;
    const batch_f s1 = xsimd::bitwise_cast<batch_f>((n1 + batch_i(127)) << 23);
    const batch_f s2 = xsimd::bitwise_cast<batch_f>((n2 + batch_i(127)) << 23);
    return xsimd::select(x != x, x, (p * s1) * s2);
}

// log1p(t) for t in [0, 1]: u = 1 + t, c = (t − (u − 1)) / u (the rounding error of u, exact
// numerator), u = 2^k·(1 + f) with f in [√½ − 1, √2 − 1] (exact), Cephes' logf polynomial for
// log(1 + f), plus k·ln2 (split as in elt_exp) and c. Max error, measured over every fp32 t in
// [0, 1]: 0.90 ulp.
inline batch_f elt_log1p_unit(batch_f t) {
    const batch_f one(1.0f);
    const batch_f u   = t + one;
    const batch_f um1 = u - one;
    const batch_f c   = (t - um1) / u;
    const auto    big = u > batch_f(1.41421356237f);
    const batch_f k   = xsimd::select(big, one, batch_f(0.0f));
    const batch_f f   = xsimd::select(big, u * batch_f(0.5f) - one, um1);
    const batch_f z   = f * f;
    batch_f       p   = batch_f(7.0376836292e-2f);
    p                 = xsimd::fma(p, f, batch_f(-1.1514610310e-1f));
    p                 = xsimd::fma(p, f, batch_f(1.1676998740e-1f));
    p                 = xsimd::fma(p, f, batch_f(-1.2420140846e-1f));
    p                 = xsimd::fma(p, f, batch_f(1.4249322787e-1f));
    p                 = xsimd::fma(p, f, batch_f(-1.6668057665e-1f));
    p                 = xsimd::fma(p, f, batch_f(2.0000714765e-1f));
    p                 = xsimd::fma(p, f, batch_f(-2.4999993993e-1f));
    p                 = xsimd::fma(p, f, batch_f(3.3333331174e-1f));
    batch_f y         = p * f * z;
    y                 = xsimd::fma(k, batch_f(-2.12194440e-4f), y);
    y                 = xsimd::fma(batch_f(-0.5f), z, y);
    y                 = y + c;
    return xsimd::fma(k, batch_f(0.693359375f), f + y);
}

// ---- RMSNorm (spec §3.2) -------------------------------------------------------------------

void rmsnorm_bf16(float * out, const float * x, const float * w, int64_t n, float eps) {
    const float   ss = dot_f32(x, x, n);
    const float   r  = 1.0f / __builtin_sqrtf(ss / static_cast<float>(n) + eps);
    const batch_f vr(r);
    int64_t       i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const batch_f v = batch_f::load_unaligned(w + i) * (batch_f::load_unaligned(x + i) * vr);
        elt_round_bf16(v).store_unaligned(out + i);
    }
    if (i < n) {
        const batch_f v =
            elt_load_part(w + i, n - i, 0.0f) * (elt_load_part(x + i, n - i, 0.0f) * vr);
        elt_store_part(out + i, elt_round_bf16(v), n - i);
    }
}

// ---- rotary embedding (spec §3.3) ----------------------------------------------------------

// x unchanged, but opaque to the optimiser: GCC contracts a·b + c into an FMA whenever FMA is
// enabled (its C++ default is -ffp-contract=fast, ISO mode included), which would skip the
// reference's rounding of the product to fp32.
inline batch_f elt_no_contract(batch_f x) {
    typename batch_f::register_type r = x;
#if defined(__AVX512F__)
    __asm__("" : "+v"(r));
#elif defined(__AVX__)
    __asm__("" : "+x"(r));
#else
    __asm__("" : "+m"(r));
#endif
    return r;
}

// kLanes/2 pairs at p with cos/sin c, s; sgn flips the sine in the even (forward) or odd
// (inverse) lanes: even lanes get a·c + b·(−s), odd lanes b·c + a·s, each product rounded.
inline batch_f elt_rope_vec(batch_f x, batch_f c, batch_f s, batch_u sgn) {
    const batch_f xc = elt_no_contract(x * c);
    const batch_f ys = elt_no_contract(elt_swap<1>(x) * elt_float(elt_bits(s) ^ sgn));
    return elt_round_bf16(xc + ys);
}

void rope(float * v, int64_t len, int64_t rope_dim, const float * cos, const float * sin,
          bool inverse) {
    constexpr int64_t kPairs = kLanes / 2;
    float *           r      = v + (len - rope_dim);
    const int64_t     half   = rope_dim / 2;
    // The sine is negated in the odd lanes (kEltSignMasks[0]) for the inverse, else the even.
    const batch_u sgn =
        batch_u::load_aligned(kEltSignMasks[0]) ^ batch_u(inverse ? 0u : 0x80000000u);
    int64_t i = 0;
    for (; i + kPairs <= half; i += kPairs) {
        const batch_f x = batch_f::load_unaligned(r + 2 * i);
        elt_rope_vec(x, elt_dup_pairs(cos + i), elt_dup_pairs(sin + i), sgn)
            .store_unaligned(r + 2 * i);
    }
    if (i < half) {
        const int64_t     m          = half - i;
        alignas(64) float cb[kPairs] = {}, sb[kPairs] = {};
        for (int64_t j = 0; j < m; ++j) {
            cb[j] = cos[i + j];
            sb[j] = sin[i + j];
        }
        const batch_f x = elt_load_part(r + 2 * i, 2 * m, 0.0f);
        elt_store_part(r + 2 * i, elt_rope_vec(x, elt_dup_pairs(cb), elt_dup_pairs(sb), sgn),
                       2 * m);
    }
}

void rope_heads(float * v, int64_t n_vec, int64_t stride, int64_t len, int64_t rope_dim,
                const float * cos, const float * sin, bool inverse) {
    for (int64_t h = 0; h < n_vec; ++h) rope(v + h * stride, len, rope_dim, cos, sin, inverse);
}

// ---- softmax, SwiGLU, router score -----------------------------------------------------------

void softmax(float * x, int64_t n) {
    if (n <= 0) return;
    const float ninf = -__builtin_inff();
    batch_f     vm(ninf);
    int64_t     i = 0;
    for (; i + kLanes <= n; i += kLanes) vm = xsimd::max(vm, batch_f::load_unaligned(x + i));
    if (i < n) vm = xsimd::max(vm, elt_load_part(x + i, n - i, ninf));
    const batch_f m(elt_hmax(vm));
    batch_f       vs(0.0f);
    for (i = 0; i + kLanes <= n; i += kLanes) {
        const batch_f e = elt_exp(batch_f::load_unaligned(x + i) - m);
        e.store_unaligned(x + i);
        vs += e;
    }
    if (i < n) {
        const batch_f e = elt_exp(elt_load_part(x + i, n - i, ninf) - m);  // padding: exp(-inf) = 0
        elt_store_part(x + i, e, n - i);
        vs += e;
    }
    const batch_f sum(xsimd::hadd(vs));
    for (i = 0; i + kLanes <= n; i += kLanes)
        (batch_f::load_unaligned(x + i) / sum).store_unaligned(x + i);
    if (i < n) elt_store_part(x + i, elt_load_part(x + i, n - i, 0.0f) / sum, n - i);
}

// Σ exp(x[i] − m): fp32 terms (elt_exp), fp32 lane sums over blocks of kSumExpBlock values, the
// block sums added in double — so the error is that of ≤ 256-term fp32 sums, whatever n.
constexpr int64_t kSumExpBlock = 256;
double            sum_exp(const float * x, int64_t n, float m) {
               const float   ninf = -__builtin_inff();
               const batch_f vm(m);
               double        total = 0.0;
               for (int64_t b = 0; b < n; b += kSumExpBlock) {
                   const int64_t e = n - b < kSumExpBlock ? n : b + kSumExpBlock;
                   batch_f       vs(0.0f);
                   int64_t       i = b;
                   for (; i + kLanes <= e; i += kLanes) vs += elt_exp(batch_f::load_unaligned(x + i) - vm);
        if (i < e) vs += elt_exp(elt_load_part(x + i, e - i, ninf) - vm);  // exp(-inf) = 0
        total += static_cast<double>(xsimd::hadd(vs));
    }
               return total;
}

inline batch_f elt_swiglu(batch_f g, batch_f u, float limit, batch_f weight) {
    if (limit > 0.0f) {
        const batch_f l(limit);
        u = xsimd::min(xsimd::max(u, -l), l);
        g = xsimd::min(g, l);
    }
    const batch_f den  = batch_f(1.0f) + elt_exp(-g);
    const batch_f silu = g / den;
    return weight * (silu * u);
}

void swiglu(float * out, const float * gate, const float * up, int64_t n, float limit,
            float weight) {
    const batch_f w(weight);
    int64_t       i = 0;
    for (; i + kLanes <= n; i += kLanes)
        elt_swiglu(batch_f::load_unaligned(gate + i), batch_f::load_unaligned(up + i), limit, w)
            .store_unaligned(out + i);
    if (i < n)
        elt_store_part(out + i,
                       elt_swiglu(elt_load_part(gate + i, n - i, 0.0f),
                                  elt_load_part(up + i, n - i, 0.0f), limit, w),
                       n - i);
}

// The twin's operations per column, kLanes columns at a time: all hc inputs of the columns are
// loaded before any output is stored (x may alias R).
template <bool Part>
inline void elt_hc_post(float * x, const float * o, const float * R, const float * post,
                        const float * comb, int64_t hc, int64_t dim, int64_t i, int64_t m) {
    batch_f r[kMaxHcStreams];
    for (int64_t j = 0; j < hc; ++j)
        r[j] = Part ? elt_load_part(R + j * dim + i, m, 0.0f)
                    : batch_f::load_unaligned(R + j * dim + i);
    const batch_f ov = Part ? elt_load_part(o + i, m, 0.0f) : batch_f::load_unaligned(o + i);
    for (int64_t k = 0; k < hc; ++k) {
        batch_f s = batch_f(comb[k]) * r[0];
        for (int64_t j = 1; j < hc; ++j) s = s + batch_f(comb[j * hc + k]) * r[j];
        const batch_f v = elt_round_bf16(batch_f(post[k]) * ov + s);
        if (Part)
            elt_store_part(x + k * dim + i, v, m);
        else
            v.store_unaligned(x + k * dim + i);
    }
}

void hc_post(float * x, const float * o, const float * R, const float * post, const float * comb,
             int64_t hc, int64_t dim, int64_t c0, int64_t c1) {
    int64_t i = c0;
    for (; i + kLanes <= c1; i += kLanes)
        elt_hc_post<false>(x, o, R, post, comb, hc, dim, i, kLanes);
    if (i < c1) elt_hc_post<true>(x, o, R, post, comb, hc, dim, i, c1 - i);
}

// sqrt(softplus(z)), softplus(z) = z if z > 20 else log1p(exp(z)), evaluated as
// max(z, 0) + log1p(exp(−|z|)) (the same function; exp(−|z|) in (0, 1] keeps log1p on [0, 1]).
// Max error, measured over every fp32 z in [-104, 20] with results above 2^-60: 1.34 ulp (the
// reference's glibc expf + log1pf + sqrtf: 1.27 ulp); z > 20 gives sqrt(z) exactly as the
// reference does.
inline batch_f elt_sqrt_softplus(batch_f z) {
    const batch_f zero(0.0f);
    const batch_f l  = elt_log1p_unit(elt_exp(-xsimd::abs(z)));
    const batch_f sp = xsimd::select(z > batch_f(20.0f), z, xsimd::max(z, zero) + l);
    return xsimd::sqrt(sp);
}

void sqrt_softplus(float * out, const float * z, int64_t n) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        elt_sqrt_softplus(batch_f::load_unaligned(z + i)).store_unaligned(out + i);
    if (i < n) elt_store_part(out + i, elt_sqrt_softplus(elt_load_part(z + i, n - i, 0.0f)), n - i);
}

// ---- quantisation simulations (spec §3.4) ----------------------------------------------------

// One format of the block simulation: e4m3 (Fp4 = false) or e2m1 (Fp4 = true).
template <bool Fp4>
struct EltFmt {
    static constexpr float    kMax      = Fp4 ? 6.0f : 448.0f;
    static constexpr float    kInvMax   = Fp4 ? 1.0f / 6.0f : 1.0f / 448.0f;
    static constexpr float    kFloor    = Fp4 ? 6.0f * 0x1p-126f : 1e-4f;
    static constexpr float    kMinNorm  = Fp4 ? 1.0f : 0x1p-6f;      // smallest normal
    static constexpr float    kSubScale = Fp4 ? 2.0f : 512.0f;       // 1 / subnormal quantum
    static constexpr float    kSubQuant = Fp4 ? 0.5f : 0x1p-9f;      // subnormal quantum
    static constexpr int      kDrop     = Fp4 ? 22 : 20;             // fp32 mantissa bits dropped
    static constexpr uint32_t kHalf     = (1u << (kDrop - 1)) - 1u;  // just below half an ulp
    static constexpr uint32_t kKeep     = ~((1u << kDrop) - 1u);
};

// Round |t| (<= kMax) to nearest-even on the format's grid; the sign of t is restored
// afterwards (also for zero). Normal range: RNE of the fp32 significand to the format's
// mantissa width on the bit pattern (a carry moves into the exponent, as it should; |t| <= kMax
// cannot round above kMax). Subnormal range: nearbyint(|t|/quantum)·quantum (exact scalings).
template <bool Fp4>
inline batch_f elt_rne_grid(batch_f t) {
    using F           = EltFmt<Fp4>;
    const batch_u tb  = elt_bits(t);
    const batch_u sgn = tb & batch_u(0x80000000u);
    const batch_u ab  = tb & batch_u(0x7FFFFFFFu);
    const batch_f a   = elt_float(ab);
    const batch_u qn =
        (ab + batch_u(F::kHalf) + ((ab >> F::kDrop) & batch_u(1u))) & batch_u(F::kKeep);
    const batch_f qs = xsimd::nearbyint(a * batch_f(F::kSubScale)) * batch_f(F::kSubQuant);
    const batch_f q  = xsimd::select(a < batch_f(F::kMinNorm), qs, elt_float(qn));
    return elt_float(elt_bits(q) | sgn);
}

template <bool Fp4>
void elt_block_sim(float * v, int64_t len) {
    using F = EltFmt<Fp4>;
    batch_f va(0.0f);
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes)
        va = xsimd::max(va, xsimd::abs(batch_f::load_unaligned(v + i)));
    if (i < len) va = xsimd::max(va, xsimd::abs(elt_load_part(v + i, len - i, 0.0f)));
    float amax = elt_hmax(va);
    amax       = amax > F::kFloor ? amax : F::kFloor;
    // ue8m0 scale exactly as ref::ue8m0_scale: exponent field of y, +1 if y has mantissa bits.
    const float    y  = amax * F::kInvMax;
    const uint32_t yb = u32_from_f32(y);
    const uint32_t e  = ((yb >> 23) & 0xFFu) + ((yb & 0x7FFFFFu) != 0 ? 1u : 0u);
    const float    s  = f32_from_u32(e << 23);
    // 1/s is an exact power of two for e in [1, 253] (always, for finite blocks: amax >= the
    // floor and amax/448 < 2^119); otherwise fall back to the division.
    const bool    exact_inv = e >= 1 && e <= 253;
    const batch_f vinv(exact_inv ? f32_from_u32((254u - e) << 23) : 1.0f);
    const batch_f vs(s), lo(-F::kMax), hi(F::kMax);
    const auto    quant = [&](batch_f x) {
        const batch_f d = exact_inv ? x * vinv : x / vs;
        const batch_f t = xsimd::min(xsimd::max(d, lo), hi);
        return elt_round_bf16(elt_rne_grid<Fp4>(t) * vs);
    };
    for (i = 0; i + kLanes <= len; i += kLanes)
        quant(batch_f::load_unaligned(v + i)).store_unaligned(v + i);
    if (i < len) elt_store_part(v + i, quant(elt_load_part(v + i, len - i, 0.0f)), len - i);
}

void fp8sim(float * v, int64_t n, int64_t block) {
    for (int64_t b = 0; b < n; b += block)
        elt_block_sim<false>(v + b, n - b < block ? n - b : block);
}

void fp4sim(float * v, int64_t n) {
    for (int64_t b = 0; b < n; b += 32) elt_block_sim<true>(v + b, n - b < 32 ? n - b : 32);
}

// ---- Hadamard (spec §3.4) --------------------------------------------------------------------

// Butterfly stage h (< kLanes) inside one vector: lane j gets x[j] + x[j^h] if bit h of j is
// clear, else (−x[j]) + x[j^h] = x[j^h] − x[j] (the reference's a − b).
template <int H>
inline batch_f elt_had_stage(batch_f x, int64_t n) {
    if constexpr (H < kLanes) {
        if (H >= n) return x;
        constexpr int kIdx = H == 1 ? 0 : H == 2 ? 1 : H == 4 ? 2 : 3;
        const batch_u sgn  = batch_u::load_aligned(kEltSignMasks[kIdx]);
        x                  = elt_float(elt_bits(x) ^ sgn) + elt_swap<H>(x);
        return elt_had_stage<H * 2>(x, n);
    } else {
        return x;
    }
}

// The transform of v[0, n), n a power of two, scaled by `scale`, rounded to bf16.
void hadamard_pow2(float * v, int64_t n, float scale) {
    const batch_f vscale(scale);
    if (n < kLanes) {  // everything in one register
        const batch_f x = elt_had_stage<1>(elt_load_part(v, n, 0.0f), n);
        elt_store_part(v, elt_round_bf16(x * vscale), n);
        return;
    }
    for (int64_t i = 0; i < n; i += kLanes)
        elt_had_stage<1>(batch_f::load_unaligned(v + i), n).store_unaligned(v + i);
    for (int64_t h = kLanes; h < n; h *= 2) {
        const bool last = 2 * h == n;  // fold the scale and the bf16 rounding into the last stage
        for (int64_t i = 0; i < n; i += 2 * h) {
            for (int64_t j = i; j < i + h; j += kLanes) {
                const batch_f a = batch_f::load_unaligned(v + j);
                const batch_f b = batch_f::load_unaligned(v + j + h);
                batch_f       s = a + b, d = a - b;
                if (last) {
                    s = elt_round_bf16(s * vscale);
                    d = elt_round_bf16(d * vscale);
                }
                s.store_unaligned(v + j);
                d.store_unaligned(v + j + h);
            }
        }
    }
    if (n == kLanes)
        for (int64_t i = 0; i < n; i += kLanes)
            elt_round_bf16(batch_f::load_unaligned(v + i) * vscale).store_unaligned(v + i);
}

// ref::hadamard_bf16, bit for bit: any other n zero-padded to the next power of two, the first n
// outputs kept, the scale n^-0.5.
bool hadamard(float * v, int64_t n) {
    if (n <= 0) return false;
    int64_t P = 1;
    while (P < n) P *= 2;
    const float scale = static_cast<float>(1.0 / __builtin_sqrt(static_cast<double>(n)));
    if (P == n) {
        hadamard_pow2(v, n, scale);
        return true;
    }
    if (P > kHadamardMaxPadded) return false;
    alignas(64) float padded[kHadamardMaxPadded];
    for (int64_t i = 0; i < P; ++i) padded[i] = i < n ? v[i] : 0.0f;
    hadamard_pow2(padded, P, scale);
    for (int64_t i = 0; i < n; ++i) v[i] = padded[i];
    return true;
}
