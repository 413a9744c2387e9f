// Attention kernels (spec §3.7 step 4, §3.8): index_scores (the lightning indexer's block
// scores) and sparse_attn (sparse attention of a range of heads over one list of KV rows).
// Included by ops-inl.hpp inside the per-arch anonymous namespace after elementwise-inl.hpp and
// linear-inl.hpp (uses elt_exp, elt_round_bf16, elt_load_part, elt_store_part and, on AVX-512
// BF16, dp); the rules of ops-inl.hpp apply.
//
// What differs from the scalar twins (table_scalar.cpp), and nothing else:
//  * the fp32 summation order of the dot products q·key (index_scores) and q·row (sparse_attn).
//    Both operands hold bf16 values, so every product is exact in fp32 and only the order of
//    the fp32 additions changes (free by spec §4.4). On avx512bf16 the dots are VDPBF16PS
//    (exact products, fp32 accumulation; bf16 subnormal inputs are read as zero and fp32
//    subnormal sums flushed to zero — values below 2^-126, never produced by the model's
//    normalised q and keys); elsewhere fp32 FMAs on the converted rows.
//  * sparse_attn's probabilities p = exp(s − m) use elt_exp (≤ 1.01 ulp, measured over every
//    fp32 input; see elementwise-inl.hpp) instead of the C library's expf (≤ 0.51 ulp). The
//    rescale factor exp(m − m_new) and the sink term, once per head and chunk, use expf itself.
// Every bf16 rounding point is where the twin has it, and everything else is the same sequence
// of fp32 operations: the index-score epilogue (bf16 of the dot, ReLU, bf16 of the weighted
// term, fp32 head sum in head order, bf16 of the sum), the chunk max, the sequential sum of p,
// P rounded to bf16, P·V as acc·alpha then one exact product added per row in row order (an
// FMA of an exact product is the twin's mul + add; on avx512bf16 one VDPBF16PS adds two rows'
// products in that order, with the same subnormal caveat as the dots: see attn_pv), the
// division and the output rounding.
//
// Shapes the SIMD paths take (others run the scalar twin): index_scores ihd even and <= 128;
// sparse_attn hd a multiple of 64.

// ---- helpers ---------------------------------------------------------------------------------

// VDPBF16PS path: the avx512bf16 table (the same condition as linear-inl.hpp's `dp`).
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
#define DSV4_ATTN_DPBF16 1
#else
#define DSV4_ATTN_DPBF16 0
#endif

using attn_vf = typename batch_f::register_type;  // __m512 or __m256

// kLanes bf16 values -> fp32 (exact).
inline attn_vf attn_bf16x(const uint16_t * p) {
#if defined(__AVX512F__)
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
#else
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
#endif
}

// Lane k of the result = the sum of the lanes of r[k], k < kLanes (a transpose-and-add tree).
// Tracing the shuffles, result lane L receives input a[s(L)] where s swaps the bits of L
// pairwise (3<->2, 1<->0 for 16 lanes; 1<->0 for 8), an involution: so a[k] = r[s(k)].
inline attn_vf attn_reduce_lanes(const attn_vf * r) {
#if defined(__AVX512F__)
    __m512 a[16], b[8], c[4], d[2];
    for (int k = 0; k < 16; ++k)
        a[k] = r[((k & 8) >> 1) | ((k & 4) << 1) | ((k & 2) >> 1) | ((k & 1) << 1)];
    for (int k = 0; k < 8; ++k)  // 256-bit halves: lanes 0-7 from a[k], 8-15 from a[k+8]
        b[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[k], a[k + 8], 0x44),
                             _mm512_shuffle_f32x4(a[k], a[k + 8], 0xEE));
    for (int k = 0; k < 4; ++k)  // 128-bit quarters: a[k], a[k+8], a[k+4], a[k+12]
        c[k] = _mm512_add_ps(_mm512_shuffle_f32x4(b[k], b[k + 4], 0x88),
                             _mm512_shuffle_f32x4(b[k], b[k + 4], 0xDD));
    for (int k = 0; k < 2; ++k) {  // per 128-bit lane: 2 floats of c[k], 2 of c[k+2]
        const __m512d x = _mm512_castps_pd(c[k]), y = _mm512_castps_pd(c[k + 2]);
        d[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xDD));
#else
    __m256 a[8], b[4], c[2];
    for (int k = 0; k < 8; ++k) a[k] = r[(k & 4) | ((k & 2) >> 1) | ((k & 1) << 1)];
    for (int k = 0; k < 4; ++k)  // 128-bit halves: lanes 0-3 from a[k], 4-7 from a[k+4]
        b[k] = _mm256_add_ps(_mm256_permute2f128_ps(a[k], a[k + 4], 0x20),
                             _mm256_permute2f128_ps(a[k], a[k + 4], 0x31));
    for (int k = 0; k < 2; ++k) {
        const __m256d x = _mm256_castps_pd(b[k]), y = _mm256_castps_pd(b[k + 2]);
        c[k] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x, y)),
                             _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)));
    }
    return _mm256_add_ps(_mm256_shuffle_ps(c[0], c[1], 0x88), _mm256_shuffle_ps(c[0], c[1], 0xDD));
#endif
}

inline attn_vf attn_set1(float v) {
#if defined(__AVX512F__)
    return _mm512_set1_ps(v);
#else
    return _mm256_set1_ps(v);
#endif
}
inline attn_vf attn_zero() {
    return attn_set1(0.0f);
}
inline attn_vf attn_load(const float * p) {
#if defined(__AVX512F__)
    return _mm512_loadu_ps(p);
#else
    return _mm256_loadu_ps(p);
#endif
}
inline void attn_store(float * p, attn_vf v) {
#if defined(__AVX512F__)
    _mm512_storeu_ps(p, v);
#else
    _mm256_storeu_ps(p, v);
#endif
}
inline attn_vf attn_fma(attn_vf a, attn_vf b, attn_vf c) {  // a·b + c, one rounding
#if defined(__AVX512F__)
    return _mm512_fmadd_ps(a, b, c);
#else
    return _mm256_fmadd_ps(a, b, c);
#endif
}
inline attn_vf attn_mul(attn_vf a, attn_vf b) {
#if defined(__AVX512F__)
    return _mm512_mul_ps(a, b);
#else
    return _mm256_mul_ps(a, b);
#endif
}
inline attn_vf attn_add(attn_vf a, attn_vf b) {
#if defined(__AVX512F__)
    return _mm512_add_ps(a, b);
#else
    return _mm256_add_ps(a, b);
#endif
}
inline attn_vf attn_div(attn_vf a, attn_vf b) {
#if defined(__AVX512F__)
    return _mm512_div_ps(a, b);
#else
    return _mm256_div_ps(a, b);
#endif
}
inline attn_vf attn_sqrt(attn_vf a) {
#if defined(__AVX512F__)
    return _mm512_sqrt_ps(a);
#else
    return _mm256_sqrt_ps(a);
#endif
}
// std::max(x, 0.0f) exactly: (x < 0) ? 0 : x, so −0 and NaN pass through. MAXPS returns its
// second operand when the operands compare unordered or are both zero.
inline attn_vf attn_relu(attn_vf x) {
#if defined(__AVX512F__)
    return _mm512_max_ps(_mm512_setzero_ps(), x);
#else
    return _mm256_max_ps(_mm256_setzero_ps(), x);
#endif
}
// bf16 rounding as ref::round_bf16 (elt_round_bf16), spelled with AVX-512 masks where available.
inline attn_vf attn_round_bf16(attn_vf x) {
#if defined(__AVX512F__)
    const __m512i u   = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r =
        _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb),
                         _mm512_set1_epi32(static_cast<int>(0xFFFF0000u)));
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    // NaN: (u & 0xFFBF0000) | 0x00400000, i.e. quiet, sign and top payload kept.
    const __m512i q = _mm512_ternarylogic_epi32(
        _mm512_set1_epi32(0x00400000), u, _mm512_set1_epi32(static_cast<int>(0xFFBF0000u)), 0xF8);
    return _mm512_castsi512_ps(_mm512_mask_mov_epi32(r, nan, q));
#else
    return elt_round_bf16(batch_f(x));
#endif
}

// Float <-> bf16 bits, round to nearest even (exact for bf16 values).
inline uint16_t attn_bf16_bits(float v) {
    const uint32_t u = u32_from_f32(v);
    return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// ---- per-head q normalisation -------------------------------------------------------------
// kLanes heads at a time, one head per lane: each lane sums its head's bf16 squares in element
// order (the twin's sequence; a single head's sum is one dependent chain, which kept the twin
// at one add latency per element), the elements fetched with a gather. Then the rounding chain
// per lane and the scaling per head, contiguous. Heads past the last full group, and shapes
// whose offsets do not fit the gather's 32-bit indices, run the twin.
void q_norm_bf16(float * q, int64_t H, int64_t hd, float eps) {
    int64_t h0 = 0;
    if (hd > 0 && hd * kLanes <= (int64_t{1} << 30)) {
        alignas(64) int32_t off[kLanes];
        for (int l = 0; l < kLanes; ++l) off[l] = static_cast<int32_t>(l * hd);
#if defined(__AVX512F__)
        const __m512i idx = _mm512_load_si512(off);
#else
        const __m256i idx = _mm256_load_si256(reinterpret_cast<const __m256i *>(off));
#endif
        for (; h0 + kLanes <= H; h0 += kLanes) {
            float * base = q + h0 * hd;
            attn_vf sum  = attn_zero();
            for (int64_t i = 0; i < hd; ++i) {
#if defined(__AVX512F__)
                const attn_vf v = _mm512_i32gather_ps(idx, base + i, 4);
#else
                const attn_vf v = _mm256_i32gather_ps(base + i, idx, 4);
#endif
                sum = attn_add(sum, attn_round_bf16(attn_mul(v, v)));
            }
            const attn_vf ms = attn_round_bf16(attn_div(sum, attn_set1(static_cast<float>(hd))));
            const attn_vf t  = attn_round_bf16(attn_add(ms, attn_set1(eps)));
            const attn_vf rs = attn_round_bf16(attn_div(attn_set1(1.0f), attn_sqrt(t)));
            alignas(64) float r[kLanes];
            attn_store(r, rs);
            for (int l = 0; l < kLanes; ++l) {
                float *       v  = base + l * hd;
                const attn_vf rv = attn_set1(r[l]);
                int64_t       i  = 0;
                for (; i + kLanes <= hd; i += kLanes)
                    attn_store(v + i, attn_round_bf16(attn_mul(attn_load(v + i), rv)));
                if (i < hd)
                    elt_store_part(
                        v + i, elt_round_bf16(elt_load_part(v + i, hd - i, 0.0f) * batch_f(r[l])),
                        hd - i);
            }
        }
    }
    if (h0 < H) scalar::q_norm_bf16(q + h0 * hd, H - h0, hd, eps);
}

// ---- lightning indexer -------------------------------------------------------------------------
// A small GEMM per tile of kIdxVecs·kLanes blocks: the tile's keys are transposed once into
// pairs-by-block order (kt[v][p][lane] = the bf16 pair p of block v·kLanes + lane, one dword), so
// a head's dot with all blocks of the tile is a sequence of broadcast-q-pair × key-vector
// products with the blocks in the lanes. kIdxHeads heads run at once (kIdxVecs·kIdxHeads
// accumulators); the epilogue then takes the heads in order, lane-parallel over the blocks,
// with the twin's operations. The 16 KB query (64 heads × 128) stays in L1 for all tiles.

constexpr int     kIdxVecs     = 2;  // block vectors per tile
constexpr int64_t kIdxTile     = kIdxVecs * kLanes;
constexpr int64_t kIdxMaxPairs = 64;    // ihd <= 128 on the SIMD path
constexpr int64_t kIdxQPairs   = 4096;  // bf16 query pairs converted per slab (16 KB)
#if defined(__AVX512F__)
constexpr int kIdxHeads = 8;
#else
constexpr int kIdxHeads = 4;  // 16 ymm registers
#endif

struct alignas(64) IdxKeys {
    uint32_t kt[kIdxVecs][kIdxMaxPairs][kLanes];
};

#if defined(__AVX512F__)
// Blocks [0, nb) of the tile starting at `keys` (nb <= kIdxTile; missing blocks are zero).
inline void idx_pack(IdxKeys & k, const uint16_t * keys, int64_t ihd, int64_t nb) {
    const int64_t np = ihd / 2;
    for (int v = 0; v < kIdxVecs; ++v) {
        for (int64_t p0 = 0; p0 < np; p0 += 16) {
            const int64_t   w = np - p0 < 16 ? np - p0 : 16;
            const __mmask16 m = static_cast<__mmask16>((1u << w) - 1u);
            __m512i         r[16];
            for (int i = 0; i < 16; ++i) {
                const int64_t c = v * 16 + i;
                r[i]            = c < nb ? _mm512_maskz_loadu_epi32(m, keys + c * ihd + 2 * p0)
                                         : _mm512_setzero_si512();
            }
            transpose16_epi32(r);  // linear-inl.hpp
            for (int64_t j = 0; j < w; ++j) _mm512_store_si512(k.kt[v][p0 + j], r[j]);
        }
    }
}
#else
// In-register transpose of an 8×8 dword matrix.
inline void attn_transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {  // u[4i+e], 128-bit half H: rows 4i..4i+3 of column 4H+e
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int e = 0; e < 4; ++e) {
        r[e] = _mm256_permute2f128_ps(u[e], u[4 + e], 0x20);
        r[4 + e] = _mm256_permute2f128_ps(u[e], u[4 + e], 0x31);
    }
}

inline void idx_pack(IdxKeys & k, const uint16_t * keys, int64_t ihd, int64_t nb) {
    const int64_t np = ihd / 2;
    for (int v = 0; v < kIdxVecs; ++v) {
        for (int64_t p0 = 0; p0 < np; p0 += 8) {
            const int64_t w = np - p0 < 8 ? np - p0 : 8;
            const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(w)),
                                                 _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            __m256 r[8];
            for (int i = 0; i < 8; ++i) {
                const int64_t c = v * 8 + i;
                r[i] = c < nb ? _mm256_castsi256_ps(_mm256_maskload_epi32(
                                    reinterpret_cast<const int *>(keys + c * ihd + 2 * p0), m))
                              : _mm256_setzero_ps();
            }
            attn_transpose8(r);
            for (int64_t j = 0; j < w; ++j)
                _mm256_store_ps(reinterpret_cast<float *>(k.kt[v][p0 + j]), r[j]);
        }
    }
}
#endif

// Heads [h, h + HG) of the tile: dots, then the epilogue into sum (the fp32 head sum so far).
// qsrc: AVX-512 BF16: the slab's query pairs (qb[(h − slab start)·np + p]); otherwise the fp32
// query rows q + h·ihd.
template <int HG, bool Round>
inline void idx_heads(attn_vf (&sum)[kIdxVecs], const IdxKeys & k, const void * qsrc, int64_t np,
                      int64_t ihd, const float * wt) {
    attn_vf acc[HG][kIdxVecs];
    for (int g = 0; g < HG; ++g)
        for (int v = 0; v < kIdxVecs; ++v) acc[g][v] = attn_zero();
#if DSV4_ATTN_DPBF16
    (void)ihd;
    const auto * qb = static_cast<const uint32_t *>(qsrc);
    for (int64_t p = 0; p < np; ++p) {
        __m512i kv[kIdxVecs];
        for (int v = 0; v < kIdxVecs; ++v) kv[v] = _mm512_load_si512(k.kt[v][p]);
        for (int g = 0; g < HG; ++g) {
            const __m512i qv = _mm512_set1_epi32(static_cast<int>(qb[g * np + p]));
            for (int v = 0; v < kIdxVecs; ++v) acc[g][v] = dp(acc[g][v], kv[v], qv);
        }
    }
#else
    const auto * q = static_cast<const float *>(qsrc);
    const attn_vf hi = attn_set1(f32_from_u32(0xFFFF0000u));
    for (int64_t p = 0; p < np; ++p) {
        attn_vf klo[kIdxVecs], khi[kIdxVecs];
        for (int v = 0; v < kIdxVecs; ++v) {
            const attn_vf x = attn_load(reinterpret_cast<const float *>(k.kt[v][p]));
#if defined(__AVX512F__)
            klo[v] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(x), 16));
            khi[v] = _mm512_and_ps(x, hi);
#else
            klo[v] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(x), 16));
            khi[v] = _mm256_and_ps(x, hi);
#endif
        }
        for (int g = 0; g < HG; ++g) {
            const attn_vf ql = attn_set1(q[g * ihd + 2 * p]),
                          qh = attn_set1(q[g * ihd + 2 * p + 1]);
            for (int v = 0; v < kIdxVecs; ++v)
                acc[g][v] = attn_fma(khi[v], qh, attn_fma(klo[v], ql, acc[g][v]));
        }
    }
#endif
    for (int g = 0; g < HG; ++g) {  // heads in order: the twin's fp32 head sum
        const attn_vf w = attn_set1(wt[g]);
        for (int v = 0; v < kIdxVecs; ++v) {
            if constexpr (Round) {
                const attn_vf sh = attn_relu(attn_round_bf16(acc[g][v]));
                sum[v]           = attn_add(sum[v], attn_round_bf16(attn_mul(sh, w)));
            } else {
                sum[v] = attn_add(sum[v], attn_mul(attn_relu(acc[g][v]), w));
            }
        }
    }
}

template <int HG, bool Round>
inline void idx_heads_n(int hg, attn_vf (&sum)[kIdxVecs], const IdxKeys & k, const void * qsrc,
                        int64_t np, int64_t ihd, const float * wt) {
    if constexpr (HG > 1) {
        if (hg < HG) {
            idx_heads_n<HG - 1, Round>(hg, sum, k, qsrc, np, ihd, wt);
            return;
        }
    }
    idx_heads<HG, Round>(sum, k, qsrc, np, ihd, wt);
}

template <bool Round>
void index_scores_simd(float * scores, const float * q, const float * wt, const uint16_t * keys,
                       int64_t ih, int64_t ihd, int64_t c0, int64_t c1) {
    const int64_t np = ihd / 2;
    IdxKeys       k;
#if DSV4_ATTN_DPBF16
    alignas(64) uint32_t qb[kIdxQPairs];
    const int64_t        slab = kIdxQPairs / np;  // heads per slab
#else
    const int64_t slab = ih;
#endif
    for (int64_t hs0 = 0; hs0 < ih; hs0 += slab) {
        const int64_t hs1 = ih - hs0 < slab ? ih : hs0 + slab;
#if DSV4_ATTN_DPBF16
        for (int64_t h = hs0; h < hs1; ++h) {  // exact: q holds bf16 values
            const float * qh  = q + h * ihd;
            uint16_t *    dst = reinterpret_cast<uint16_t *>(qb + (h - hs0) * np);
            int64_t       i   = 0;
            for (; i + 32 <= ihd; i += 32)
                _mm512_storeu_si512(dst + i,
                                    (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(qh + i + 16),
                                                                 _mm512_loadu_ps(qh + i)));
            for (; i < ihd; ++i) dst[i] = attn_bf16_bits(qh[i]);
        }
#endif
        const bool first = hs0 == 0, last = hs1 == ih;
        for (int64_t c = c0; c < c1; c += kIdxTile) {
            const int64_t nb = c1 - c < kIdxTile ? c1 - c : kIdxTile;
            idx_pack(k, keys + c * ihd, ihd, nb);
            // The keys stream from DRAM once per decode step; the tile's dots take far longer
            // than its fetch, so request the next tile now (a prefetch never faults).
            if (c + kIdxTile < c1) {
                const auto *  next = reinterpret_cast<const char *>(keys + (c + kIdxTile) * ihd);
                const int64_t bytes =
                    (c1 - c - kIdxTile < kIdxTile ? c1 - c - kIdxTile : kIdxTile) * ihd * 2;
                for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(next + off, _MM_HINT_T0);
            }
            attn_vf sum[kIdxVecs];
            for (int v = 0; v < kIdxVecs; ++v) {
                const int64_t lanes = nb - v * kLanes;
                if (first || lanes <= 0)
                    sum[v] = attn_zero();
                else
                    sum[v] = lanes >= kLanes
                                 ? attn_load(scores + c + v * kLanes)
                                 : attn_vf(elt_load_part(scores + c + v * kLanes, lanes, 0.0f));
            }
            for (int64_t h = hs0; h < hs1; h += kIdxHeads) {
                const int hg = static_cast<int>(hs1 - h < kIdxHeads ? hs1 - h : kIdxHeads);
#if DSV4_ATTN_DPBF16
                const void * qsrc = qb + (h - hs0) * np;
#else
                const void * qsrc = q + h * ihd;
#endif
                idx_heads_n<kIdxHeads, Round>(hg, sum, k, qsrc, np, ihd, wt + h);
            }
            for (int v = 0; v < kIdxVecs; ++v) {
                const int64_t lanes = nb - v * kLanes;
                if (lanes <= 0) break;
                const attn_vf out = Round && last ? attn_round_bf16(sum[v]) : sum[v];
                if (lanes >= kLanes)
                    attn_store(scores + c + v * kLanes, out);
                else
                    elt_store_part(scores + c + v * kLanes, batch_f(out), lanes);
            }
        }
    }
}

void index_scores(float * scores, const float * q, const float * wt, const uint16_t * keys,
                  int64_t ih, int64_t ihd, int64_t c0, int64_t c1, bool round) {
    if (ihd <= 0 || ihd % 2 != 0 || ihd / 2 > kIdxMaxPairs || ih <= 0 || c1 <= c0) {
        scalar::index_scores(scores, q, wt, keys, ih, ihd, c0, c1, round);
        return;
    }
    if (round)
        index_scores_simd<true>(scores, q, wt, keys, ih, ihd, c0, c1);
    else
        index_scores_simd<false>(scores, q, wt, keys, ih, ihd, c0, c1);
}

// ---- sparse attention ---------------------------------------------------------------------------
// Per chunk of kAttnChunk entries, heads in groups of kAttnHeads: (1) scores of the chunk's
// valid rows, kAttnRows rows × the group's heads at a time (kLanes accumulators, reduced with
// attn_reduce_lanes); (2) per head the online-softmax step (max, expf rescale, elt_exp of the
// scores, sequential sum, bf16 P); (3) P·V over kAttnPvVecs·kLanes dims at a time for all heads
// of the group, so each row slice is converted once per group. The chunk's rows (64 × hd bf16)
// stay in L1/L2 while all head groups use them. With hd = 512 a chunk (64 KB) does not fit L1,
// so every group reads it from L2 twice (scores, then P·V): on AVX-512, groups of 8 heads × 2
// rows instead of 4 × 4 halve that traffic (attn/sparse/rows:640, one thread: 0.200-0.203 ->
// 0.173-0.174 ms in three alternating runs; bit-identical, each (row, head) dot keeps its order).

#if defined(__AVX512F__)
constexpr int kAttnHeads  = 8;
constexpr int kAttnRows   = 2;
constexpr int kAttnPvVecs = 2;
#else
constexpr int kAttnHeads = 4;
constexpr int kAttnRows = 2;
constexpr int kAttnPvVecs = 2;
#endif
static_assert(kAttnRows * kAttnHeads == kLanes, "one accumulator per reduction lane");

struct AttnHead {
    const float * q;    // fp32 query (FMA path)
    float *       acc;  // [hd] fp32
    uint32_t *    qb;   // [hd/2] bf16 pairs (AVX-512 BF16 path)
    float *       s;    // [kAttnChunk] scores, then probabilities
    float *       st;   // m, l, alpha
};

inline AttnHead attn_head(float * scratch, int64_t stride, int64_t hd, const float * q, int64_t i) {
    float * base = scratch + i * stride;
    return {q, base, reinterpret_cast<uint32_t *>(base + hd), base + hd + hd / 2,
            base + hd + hd / 2 + 2 * kAttnChunk};
}

// Scores of rows vr[0 .. R) for the G heads: hs[g].s[k0 + r] = (q_g · row_r) · scale.
template <int R, int G>
inline void attn_qk(const AttnHead * hs, const uint16_t * const * vr, int k0, int64_t hd,
                    float scale) {
    attn_vf acc[kLanes];  // acc[r·kAttnHeads + g]
    for (int i = 0; i < kLanes; ++i) acc[i] = attn_zero();
#if DSV4_ATTN_DPBF16
    for (int64_t d = 0; d < hd; d += 32) {
        __m512i rv[R];
        for (int r = 0; r < R; ++r) rv[r] = _mm512_loadu_si512(vr[r] + d);
        for (int g = 0; g < G; ++g) {
            const __m512i qv = _mm512_load_si512(hs[g].qb + d / 2);
            for (int r = 0; r < R; ++r)
                acc[r * kAttnHeads + g] = dp(acc[r * kAttnHeads + g], rv[r], qv);
        }
    }
#else
    for (int64_t d = 0; d < hd; d += kLanes) {
        attn_vf rv[R];
        for (int r = 0; r < R; ++r) rv[r] = attn_bf16x(vr[r] + d);
        for (int g = 0; g < G; ++g) {
            const attn_vf qv = attn_load(hs[g].q + d);
            for (int r = 0; r < R; ++r)
                acc[r * kAttnHeads + g] = attn_fma(rv[r], qv, acc[r * kAttnHeads + g]);
        }
    }
#endif
    alignas(64) float dots[kLanes];
    attn_store(dots, attn_mul(attn_reduce_lanes(acc), attn_set1(scale)));
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g) hs[g].s[k0 + r] = dots[r * kAttnHeads + g];
}

template <int R, int G>
inline void attn_qk_tail(int r, const AttnHead * hs, const uint16_t * const * vr, int k0,
                         int64_t hd, float scale) {
    if constexpr (R > 1) {
        if (r < R) {
            attn_qk_tail<R - 1, G>(r, hs, vr, k0, hd, scale);
            return;
        }
    }
    attn_qk<R, G>(hs, vr, k0, hd, scale);
}

// The online-softmax step of one head over the chunk's nv valid scores (in chunk order):
// leaves bf16 P in h.s (0 for a head without any finite score so far) and alpha in st[2].
inline void attn_softmax(const AttnHead & h, int nv) {
    constexpr float kNegInf = -__builtin_inff();
    float *         s       = h.s;
    float           cm      = kNegInf;
    for (int k = 0; k < nv; ++k) cm = cm < s[k] ? s[k] : cm;  // std::max(cm, s[k])
    const float m     = h.st[0];
    const float m_new = m < cm ? cm : m;
    if (m_new == kNegInf) {  // the twin skips the chunk: alpha 1 and P 0 leave acc as it is
        h.st[2] = 1.0f;
        for (int k = 0; k < nv; ++k) s[k] = 0.0f;
        return;
    }
    const float   alpha = __builtin_expf(m - m_new);
    const batch_f mn(m_new);
    for (int k = 0; k < nv; k += kLanes) {
        const int64_t w = nv - k < kLanes ? nv - k : kLanes;
        if (w == kLanes)
            elt_exp(batch_f::load_unaligned(s + k) - mn).store_unaligned(s + k);
        else
            elt_store_part(s + k, elt_exp(elt_load_part(s + k, w, 0.0f) - mn), w);
    }
    float csum = 0.0f;
    for (int k = 0; k < nv; ++k) csum += s[k];
    for (int k = 0; k < nv; k += kLanes) {
        const int64_t w = nv - k < kLanes ? nv - k : kLanes;
        if (w == kLanes)
            elt_round_bf16(batch_f::load_unaligned(s + k)).store_unaligned(s + k);
        else
            elt_store_part(s + k, elt_round_bf16(elt_load_part(s + k, w, 0.0f)), w);
    }
    h.st[1] = h.st[1] * alpha + csum;
    h.st[0] = m_new;
    h.st[2] = alpha;
}

// acc_g = acc_g·alpha_g, then acc_g += P_g[k]·row_k for k in order (exact products).
#if DSV4_ATTN_DPBF16
// VDPBF16PS adds the two products of a pair one after the other, the odd (high) element's first,
// each with one rounding (Intel SDM; measured the same on Zen 5 over 32M random pairs, and the
// test "sparse_attn adds the probability-weighted rows one by one, in row order" fails on a CPU
// that does otherwise): with row k in the high and row k + 1 in the low word of every dword, and
// P[k], P[k + 1] likewise, one instruction is the twin's two additions of exact products, in its
// order. The two rows are interleaved with VPUNPCK{L,H}WD, which work within 128-bit lanes, so
// the accumulator of a 32-dim block [d, d + 32) is kept permuted: its first 16 floats hold dims
// d + 8L + 0..3 of each lane L, the second 16 dims d + 8L + 4..7. attn_pv_unpermute puts them
// back in order once, at the output. Differences from the twin: bf16 subnormal P or row values
// are read as zero and fp32 subnormal sums flushed (as the q·row dots on this path).
inline __m512 attn_pv_unpermute(__m512 lo, __m512 hi, int half) {
    // Output float j of half h: 128-bit lane m = 4h + j/4 of the block is lane m/2 of lo (m even)
    // or of hi (m odd).
    alignas(64) static constexpr int32_t kIdx[2][16] = {
        {0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23},
        {8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31}};
    return _mm512_permutex2var_ps(lo, _mm512_load_si512(kIdx[half]), hi);
}

template <int G>
inline void attn_pv(const AttnHead * hs, const uint16_t * const * vr, int nv, int64_t hd) {
    constexpr int V = G > 4 ? 1 : 2;  // 32-dim blocks per step: 2·V accumulators per head
    // P as pairs: dword i = P[2i] (high word), P[2i + 1] (low word, 0 past nv), in the second
    // half of the head's score area. P holds bf16 values, so the conversion is exact.
    const uint32_t * pp[G];
    for (int g = 0; g < G; ++g) {
        uint32_t * dst = reinterpret_cast<uint32_t *>(hs[g].s + kAttnChunk);
        for (int k = 0; k < nv; k += 32) {
            const int       w  = nv - k < 32 ? nv - k : 32;
            const __mmask16 m0 = static_cast<__mmask16>(w >= 16 ? 0xFFFF : (1u << w) - 1u);
            const __mmask16 m1 = static_cast<__mmask16>(w <= 16 ? 0 : (1u << (w - 16)) - 1u);
            const __m512i   bf =
                (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, hs[g].s + k + 16),
                                             _mm512_maskz_loadu_ps(m0, hs[g].s + k));
            _mm512_storeu_si512(dst + k / 2, _mm512_rol_epi32(bf, 16));
        }
        pp[g] = dst;
    }
    for (int64_t d0 = 0; d0 < hd; d0 += V * 32) {
        __m512 a[G][2 * V];
        for (int g = 0; g < G; ++g) {
            const __m512 al = _mm512_set1_ps(hs[g].st[2]);
            for (int v = 0; v < 2 * V; ++v)
                a[g][v] = _mm512_mul_ps(_mm512_load_ps(hs[g].acc + d0 + v * 16), al);
        }
        for (int k = 0; k < nv; k += 2) {
            __m512i lo[V], hi[V];
            for (int v = 0; v < V; ++v) {
                const __m512i r0 = _mm512_loadu_si512(vr[k] + d0 + 32 * v);
                const __m512i r1 = k + 1 < nv ? _mm512_loadu_si512(vr[k + 1] + d0 + 32 * v)
                                              : _mm512_setzero_si512();
                lo[v]            = _mm512_unpacklo_epi16(r1, r0);
                hi[v]            = _mm512_unpackhi_epi16(r1, r0);
            }
            for (int g = 0; g < G; ++g) {
                const __m512i pb = _mm512_set1_epi32(static_cast<int>(pp[g][k / 2]));
                for (int v = 0; v < V; ++v) {
                    a[g][2 * v]     = dp(a[g][2 * v], lo[v], pb);
                    a[g][2 * v + 1] = dp(a[g][2 * v + 1], hi[v], pb);
                }
            }
        }
        for (int g = 0; g < G; ++g)
            for (int v = 0; v < 2 * V; ++v) _mm512_store_ps(hs[g].acc + d0 + v * 16, a[g][v]);
    }
}
#else
template <int G>
inline void attn_pv(const AttnHead * hs, const uint16_t * const * vr, int nv, int64_t hd) {
    constexpr int V = kAttnPvVecs;
    for (int64_t d0 = 0; d0 < hd; d0 += V * kLanes) {
        attn_vf a[G][V];
        for (int g = 0; g < G; ++g) {
            const attn_vf al = attn_set1(hs[g].st[2]);
            for (int v = 0; v < V; ++v)
                a[g][v] = attn_mul(attn_load(hs[g].acc + d0 + v * kLanes), al);
        }
        for (int k = 0; k < nv; ++k) {
            attn_vf rv[V];
            for (int v = 0; v < V; ++v) rv[v] = attn_bf16x(vr[k] + d0 + v * kLanes);
            for (int g = 0; g < G; ++g) {
                const attn_vf pb = attn_set1(hs[g].s[k]);
                for (int v = 0; v < V; ++v) a[g][v] = attn_fma(pb, rv[v], a[g][v]);
            }
        }
        for (int g = 0; g < G; ++g)
            for (int v = 0; v < V; ++v) attn_store(hs[g].acc + d0 + v * kLanes, a[g][v]);
    }
}

#endif

template <int G>
inline void attn_chunk(const AttnHead * hs, const uint16_t * const * vr, int nv, int64_t hd,
                       float scale) {
    int k = 0;
    for (; k + kAttnRows <= nv; k += kAttnRows) attn_qk<kAttnRows, G>(hs, vr + k, k, hd, scale);
    if (k < nv) attn_qk_tail<kAttnRows - 1, G>(nv - k, hs, vr + k, k, hd, scale);
    for (int g = 0; g < G; ++g) attn_softmax(hs[g], nv);
    attn_pv<G>(hs, vr, nv, hd);
}

template <int G>
inline void attn_chunk_n(int g, const AttnHead * hs, const uint16_t * const * vr, int nv,
                         int64_t hd, float scale) {
    if constexpr (G > 1) {
        if (g < G) {
            attn_chunk_n<G - 1>(g, hs, vr, nv, hd, scale);
            return;
        }
    }
    attn_chunk<G>(hs, vr, nv, hd, scale);
}

void sparse_attn(float * out, const float * q, int64_t ld, const float * sinks,
                 const uint16_t * const * rows, int64_t n, int64_t hd, float scale, AttnRule rule,
                 int64_t h0, int64_t h1, float * scratch) {
    if (h1 <= h0) return;
    if (hd <= 0 || hd % 64 != 0) {
        scalar::sparse_attn(out, q, ld, sinks, rows, n, hd, scale, rule, h0, h1, scratch);
        return;
    }
    const int64_t stride = attn_scratch_floats(hd);
    for (int64_t h = h0; h < h1; ++h) {
        const AttnHead hh = attn_head(scratch, stride, hd, q + h * ld, h - h0);
        for (int64_t d = 0; d < hd; d += kLanes) attn_store(hh.acc + d, attn_zero());
        hh.st[0] = rule.sink_in_max ? sinks[h] : -__builtin_inff();
        hh.st[1] = 0.0f;
#if DSV4_ATTN_DPBF16
        for (int64_t d = 0; d < hd; d += 32)  // exact: q holds bf16 values
            _mm512_store_si512(hh.qb + d / 2,
                               (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(hh.q + d + 16),
                                                            _mm512_loadu_ps(hh.q + d)));
#endif
    }
    const uint16_t * vr[kAttnChunk];
    for (int64_t c0 = 0; c0 < n; c0 += kAttnChunk) {
        const int64_t c1 = n - c0 < kAttnChunk ? n : c0 + kAttnChunk;
        int           nv = 0;
        for (int64_t j = c0; j < c1; ++j)
            if (rows[j]) vr[nv++] = rows[j];
        // A chunk without valid rows changes nothing in the twin (alpha = exp(0) = 1, csum 0).
        if (nv == 0) continue;
        for (int64_t hg = h0; hg < h1; hg += kAttnHeads) {
            AttnHead  hs[kAttnHeads];
            const int g = static_cast<int>(h1 - hg < kAttnHeads ? h1 - hg : kAttnHeads);
            for (int i = 0; i < g; ++i)
                hs[i] = attn_head(scratch, stride, hd, q + (hg + i) * ld, hg + i - h0);
            attn_chunk_n<kAttnHeads>(g, hs, vr, nv, hd, scale);
        }
    }
    for (int64_t h = h0; h < h1; ++h) {
        const AttnHead hh = attn_head(scratch, stride, hd, q + h * ld, h - h0);
        const float    m = hh.st[0], l = hh.st[1];
        const float    denom = rule.sink_in_denominator ? l + __builtin_expf(sinks[h] - m) : l;
        const attn_vf  dv    = attn_set1(denom);
        float *        o     = out + h * ld;
#if DSV4_ATTN_DPBF16
        for (int64_t d = 0; d < hd; d += 32) {  // acc lane-permuted (attn_pv)
            const __m512 lo = _mm512_load_ps(hh.acc + d), hi = _mm512_load_ps(hh.acc + d + 16);
            for (int h2 = 0; h2 < 2; ++h2) {
                const attn_vf y = attn_div(attn_pv_unpermute(lo, hi, h2), dv);
                attn_store(o + d + 16 * h2, rule.round_out ? attn_round_bf16(y) : y);
            }
        }
#else
        for (int64_t d = 0; d < hd; d += kLanes) {
            const attn_vf y = attn_div(attn_load(hh.acc + d), dv);
            attn_store(o + d, rule.round_out ? attn_round_bf16(y) : y);
        }
#endif
    }
}

#undef DSV4_ATTN_DPBF16
