// Quantised and unquantised linear kernels (spec §4): act_quant, lin8 (FP8 weights), lin4 (FP4
// experts), gemm_bf16, gemm_f32. Included by ops-inl.hpp inside the per-arch anonymous
// namespace, so every arch gets its own copy (see the rules in ops-inl.hpp).
//
// Two implementations, chosen at compile time of each arch TU:
//
//  * AVX-512 BF16 + VBMI (table avx512bf16). Every e4m3 and e2m1 value, and every activation
//    code times its power-of-two scale, is exact in bf16, and a bf16·bf16 product is exact in
//    fp32. So weights are decoded to bf16 with table lookups (vpermt2b for the 128 e4m3
//    magnitudes, vpshufb for the 16 e2m1 codes) and multiplied with VDPBF16PS, accumulating in
//    fp32: the same products the reference forms, summed in a different fp32 order.
//    The decoder's byte->word unpacks interleave elements within 128-bit lanes; rather than
//    undo that per weight, act_quant writes the activations once per row in the matching order
//    (the "private" part of the quantised-activation row, kernel_table.hpp).
//
//  * AVX2 + FMA + F16C (tables avx2 and avx512). e4m3 bits shifted into an fp16 bit pattern
//    give the value times 2^-8 exactly, subnormals included, and VCVTPH2PS widens that to fp32
//    without ever producing an fp32 subnormal; e2m1 codes become small integers via vpshufb.
//    Products and sums are fp32 FMAs.
//
// Scales are folded as the reference folds them: the activation scale into the activation
// values (exact, powers of two), the weight scale per 128×128 block (FP8) or per 32 inputs (FP4)
// into a per-block partial sum (GEMV) — so results differ from ref::lin8_ref / lin4_ref only by
// fp32 summation order (bounded by gamma_K · Σ|terms|) before the final bf16 rounding.
// Known, documented deviations (degenerate scales never written by DeepSeek's converter): in the
// SIMD paths an e8m0 weight-scale code 0 is taken as 0 instead of 2^-127 and code 255 as +inf
// instead of NaN.

// ---- small helpers (local copies: no inline code may be shared with baseline TUs) ----------

// Round to the nearest bf16 value, ties to even (inputs here are finite sums).
inline float round_bf16_local(float x) {
    uint32_t u = u32_from_f32(x);
    if ((u & 0x7F800000u) == 0x7F800000u) return x;  // inf / NaN unchanged
    u += 0x7FFFu + ((u >> 16) & 1u);
    return f32_from_u32(u & 0xFFFF0000u);
}
inline float e8m0_value(uint8_t e) {
    if (e == 0) return f32_from_u32(0x00400000u);  // 2^-127 (subnormal)
    if (e == 255) return f32_from_u32(0x7FC00000u);
    return f32_from_u32(static_cast<uint32_t>(e) << 23);
}
// The same as fp32 bit patterns, one per code: the decode tiles broadcast a weight scale per
// row and block straight from this table (one load), where e8m0_value's two tests and moves
// between register files were a quarter of the FP8 tile's instructions.
struct E8m0Table {
    alignas(64) uint32_t bits[256];
};
constexpr E8m0Table make_e8m0_table() {
    E8m0Table t{};
    for (uint32_t e = 0; e < 256; ++e)
        t.bits[e] = e == 0 ? 0x00400000u : e == 255 ? 0x7FC00000u : e << 23;
    return t;
}
constexpr E8m0Table kE8m0 = make_e8m0_table();

// e4m3 magnitude m (0..127) -> bf16 bits of its value.
constexpr uint16_t e4m3_mag_bf16(int m) {
    const int e = m >> 3, f = m & 7;
    if (m == 0x7F) return 0x7FC0;  // NaN
    if (e > 0) return static_cast<uint16_t>(((e + 120) << 7) | (f << 4));
    if (f == 0) return 0;
    int p = 2;  // subnormal f·2^-9: normalise
    while (!(f & (1 << p))) --p;
    return static_cast<uint16_t>(((p - 9 + 127) << 7) | (((f - (1 << p)) << (7 - p)) & 0x7F));
}
struct E4m3Tables {
    alignas(64) uint8_t bf16_lo[128];  // low byte of the bf16 pattern of magnitude m
    alignas(64) uint8_t bf16_hi[128];  // high byte (sign added separately)
};
constexpr E4m3Tables make_e4m3_tables() {
    E4m3Tables t{};
    for (int m = 0; m < 128; ++m) {
        t.bf16_lo[m] = static_cast<uint8_t>(e4m3_mag_bf16(m) & 0xFF);
        t.bf16_hi[m] = static_cast<uint8_t>(e4m3_mag_bf16(m) >> 8);
    }
    return t;
}
constexpr E4m3Tables kE4m3 = make_e4m3_tables();

// e2m1 nibble -> value
constexpr float kE2m1Value[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// Activation row pointers (layout in kernel_table.hpp).
inline const uint8_t * qa_row(const uint8_t * qa, int64_t K, int64_t t) {
    return qa + t * qact_row_bytes(K);
}
inline const float * qa_scales(const uint8_t * row, int64_t K) {
    return reinterpret_cast<const float *>(row + qact_scales_offset(K));
}
inline uint8_t * qa_private(uint8_t * row, int64_t K) {
    return row + qact_private_offset(K);
}
inline const uint8_t * qa_private(const uint8_t * row, int64_t K) {
    return row + qact_private_offset(K);
}

// ---- activation quantisation (spec §4.1 step 1), lane-parallel ------------------------------
// Bit-identical to ref::act_quant_fp8 for finite inputs: the same amax (a max is exact in any
// order), floor, ue8m0 scale and clamp; x/s formed as x·(1/s) with 1/s an exact power of two
// (the correctly rounded value of the same real); RNE onto the e4m3 grid by elt_rne_grid (the
// fp8sim rounding, exact as documented in elementwise-inl.hpp). The code is read off the
// rounded value's bits: normal range (>= 2^-6) exponent and top 3 mantissa bits, subnormal
// range the integer |q|·2^9. NaN inputs are not reproduced (activations are finite).
// Writes codes and scales of the K inputs (K % 128 == 0) and vals[k] = code value · scale
// (exact) in natural order; the caller stores vals in its private layout.
inline void quant_row_e4m3(const float * x, int64_t K, uint8_t * codes, float * scales,
                           float * vals) {
    using F = EltFmt<false>;
    for (int64_t b = 0; b < K; b += 128) {
        batch_f va(0.0f);
        for (int64_t i = 0; i < 128; i += kLanes)
            va = xsimd::max(va, xsimd::abs(batch_f::load_unaligned(x + b + i)));
        float amax              = elt_hmax(va);
        amax                    = amax > F::kFloor ? amax : F::kFloor;
        const float    y        = amax * F::kInvMax;
        const uint32_t yb       = u32_from_f32(y);
        const uint32_t e        = ((yb >> 23) & 0xFFu) + ((yb & 0x7FFFFFu) != 0 ? 1u : 0u);
        const float    s        = f32_from_u32(e << 23);
        scales[b / 128]         = s;
        const bool    exact_inv = e >= 1 && e <= 253;
        const batch_f vinv(exact_inv ? f32_from_u32((254u - e) << 23) : 1.0f);
        const batch_f vs(s), lo(-F::kMax), hi(F::kMax);
        for (int64_t i = 0; i < 128; i += kLanes) {
            const batch_f xv = batch_f::load_unaligned(x + b + i);
            const batch_f d  = exact_inv ? xv * vinv : xv / vs;
            const batch_f q  = elt_rne_grid<false>(xsimd::min(xsimd::max(d, lo), hi));
            (q * vs).store_unaligned(vals + b + i);
            const batch_u qb          = elt_bits(q);
            const batch_u ab          = qb & batch_u(0x7FFFFFFFu);
            const batch_u normal_code = (ab >> 20) - batch_u(960u);  // ((exp-120) << 3) | m3
            const batch_u sub_code    = xsimd::bitwise_cast<batch_u>(
                xsimd::nearbyint_as_int(elt_float(ab) * batch_f(512.0f)));
            const batch_u code = xsimd::select(ab >= batch_u(0x3C800000u), normal_code, sub_code) |
                                 ((qb >> 24) & batch_u(0x80u));
            alignas(64) uint32_t c32[kLanes];
            code.store_aligned(c32);
            for (int64_t j = 0; j < kLanes; ++j) codes[b + i + j] = static_cast<uint8_t>(c32[j]);
        }
    }
}

// ---- weight streams ---------------------------------------------------------------------------
// Decode reads every weight once, so the kernels are paced by how fast the memory system hands a
// core its bytes, and that depends on the access pattern more than on the instructions
// (docs/kernels.md "Weight streams"; measured on the Zen 5 VM, weights in huge pages):
//  * a tile of R adjacent rows is R streams that each end after one row (a V4 row is often one
//    4 KB page): they restart cold every row — 26-30 GB/s with 2 threads;
//  * one row after another is one long stream: 47-50 GB/s, the rate of a plain one-stream sum;
//  * a thread's rows split into kStreams contiguous parts walked in lockstep — R rows far apart,
//    each part one long ascending stream — keeps several hardware streams busy at once: 1.15-1.2×
//    the one-stream rate with 2 threads and up to 1.4× with one; 4 parts beat 2, 3, 6 and 8.
// Each stream is also software-prefetched (NTA) a fixed distance ahead: it bridges the page
// boundaries where the hardware streamer stops (4 KB pages when weights are mmap'ed). Best
// distances, with either page size: 2 KB for FP8/FP4 (better than none, 1 KB or 4 KB), 1 KB for
// bf16 (in a harness, head shape: 68-69 GB/s vs 59-64 at 2 KB and 57 at 4 KB, probe 75-77; an
// A/B of the two library builds was within the noise). A prefetch never faults, so it may run
// past the end of a part or of the matrix (the address is formed as an integer, not a pointer).
// FP4 rows carry a second stream per part, their e8m0 scales (1 byte per 32 inputs, 1/16 of the
// weight bytes): prefetched as far ahead in row terms (kPrefetchQ / 16 bytes), +2-9 % on the
// expert shapes (interleaved A/B in a harness); FP8 scales are one row per 128 rows, cached.
constexpr int     kStreams     = 4;     // decode (one token): parts walked in lockstep
constexpr int     kTileStreams = 2;     // several tokens: the 2-row tiles
constexpr int64_t kPrefetchQ   = 2048;  // bytes ahead within each stream: FP8 / FP4 weights
constexpr int64_t kPrefetchB   = 1024;  // bf16 weights
template <int64_t D = kPrefetchQ>
inline void prefetch_stream(const uint8_t * p) {
    _mm_prefetch(
        reinterpret_cast<const char *>(reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(D)),
        _MM_HINT_NTA);
}

// Rows [n0, n1) as S contiguous parts of sizes differing by at most one; tile(rows) is called
// with one row of each part (rows[s] from part s, ascending within each part) until the
// shortest part ends, then one(n) for each row left. A row's result must not depend on which
// call computed it (the kernels compute every row with the same operation sequence whatever R).
template <int S, class Tile, class One>
inline void for_row_streams(int64_t n0, int64_t n1, Tile && tile, One && one) {
    const int64_t rows = n1 - n0, base = rows / S, extra = rows % S;
    int64_t       start[S], r[S];
    for (int s = 0; s < S; ++s) start[s] = n0 + s * base + (s < extra ? s : extra);
    for (int64_t i = 0; i < base; ++i) {
        for (int s = 0; s < S; ++s) r[s] = start[s] + i;
        tile(static_cast<const int64_t *>(r));
    }
    for (int64_t s = 0; s < extra; ++s) one(start[s] + base);
}

#if defined(__AVX512F__)
// In-register transpose of a 16×16 dword matrix: r[i] (row i) -> r[j] (column j).
inline void transpose16_epi32(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i]     = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {  // r[4i+e], lane L: rows 4i..4i+3 of column 4L+e
        r[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int e = 0; e < 4; ++e) {
        const __m512i a = _mm512_shuffle_i32x4(r[e], r[4 + e], 0x44);
        const __m512i b = _mm512_shuffle_i32x4(r[8 + e], r[12 + e], 0x44);
        const __m512i c = _mm512_shuffle_i32x4(r[e], r[4 + e], 0xEE);
        const __m512i d = _mm512_shuffle_i32x4(r[8 + e], r[12 + e], 0xEE);
        t[e]            = _mm512_shuffle_i32x4(a, b, 0x88);
        t[4 + e]        = _mm512_shuffle_i32x4(a, b, 0xDD);
        t[8 + e]        = _mm512_shuffle_i32x4(c, d, 0x88);
        t[12 + e]       = _mm512_shuffle_i32x4(c, d, 0xDD);
    }
    for (int i = 0; i < 16; ++i) r[i] = t[i];
}
#endif

#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
// =============================================================================================
// AVX-512 BF16 path
// =============================================================================================

// Private layout: [K bf16: lin8 order][K bf16: lin4 order], values xa·sa (exact in bf16).
// lin8 order, per 64 elements: word L*8+j (L = 128-bit lane, j < 8) of the first 32 words holds
// element L*16+j, of the second 32 words element L*16+8+j (what unpacklo/hi_epi8 produce).
// lin4 order, per 128 elements: register j (0..3) of 32 words, word i holds element 4i+j (what
// the nibble decoder produces: nibble j of weight word i; lane L = words 8L..8L+7 = 32-input
// chunk L).

// 16 natural-order fp32 values (exact in bf16) -> 16 bf16 words (truncation is exact).
inline __m256i bf16x16(const float * v) {
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_loadu_si512(v), 16));
}

// Writes the 128 natural-order values v (exact in bf16) of inputs g .. g+127 into both private
// layouts of a row.
inline void put_private_group(uint16_t * p8, int64_t K, int64_t g, const float * v) {
    __m512i h[4];  // h[j]: 32 words = inputs g+32j .. g+32j+31, four 8-word lanes
    for (int j = 0; j < 4; ++j)
        h[j] = _mm512_inserti64x4(_mm512_castsi256_si512(bf16x16(v + 32 * j)),
                                  bf16x16(v + 32 * j + 16), 1);
    // lin8 order, per 64 inputs: first register = the low 8-word half of each 16-input chunk,
    // second register = the high halves.
    for (int c = 0; c < 2; ++c) {
        const __m512i a = h[2 * c], b = h[2 * c + 1];
        _mm512_storeu_si512(p8 + g + 64 * c, _mm512_shuffle_i64x2(a, b, 0x88));       // 0,2,0,2
        _mm512_storeu_si512(p8 + g + 64 * c + 32, _mm512_shuffle_i64x2(a, b, 0xDD));  // 1,3,1,3
    }
    // lin4 order: register j, lane L = inputs 32L + 4m + j (m < 8). Group each h[L] by j
    // first (word 8j+m <- word 4m+j), then register j gathers 128-bit lane j of every h[L].
    const __m512i by_j =
        _mm512_set_epi16(31, 27, 23, 19, 15, 11, 7, 3, 30, 26, 22, 18, 14, 10, 6, 2, 29, 25, 21, 17,
                         13, 9, 5, 1, 28, 24, 20, 16, 12, 8, 4, 0);
    for (int j = 0; j < 4; ++j) h[j] = _mm512_permutexvar_epi16(by_j, h[j]);
    const __m512i t01a = _mm512_shuffle_i64x2(h[0], h[1], 0x44);  // h0.0 h0.1 h1.0 h1.1
    const __m512i t23a = _mm512_shuffle_i64x2(h[2], h[3], 0x44);  // h2.0 h2.1 h3.0 h3.1
    const __m512i t01b = _mm512_shuffle_i64x2(h[0], h[1], 0xEE);  // h0.2 h0.3 h1.2 h1.3
    const __m512i t23b = _mm512_shuffle_i64x2(h[2], h[3], 0xEE);
    uint16_t *    p4   = p8 + K + g;
    _mm512_storeu_si512(p4, _mm512_shuffle_i64x2(t01a, t23a, 0x88));       // lane 0 of h0..h3
    _mm512_storeu_si512(p4 + 32, _mm512_shuffle_i64x2(t01a, t23a, 0xDD));  // lane 1
    _mm512_storeu_si512(p4 + 64, _mm512_shuffle_i64x2(t01b, t23b, 0x88));  // lane 2
    _mm512_storeu_si512(p4 + 96, _mm512_shuffle_i64x2(t01b, t23b, 0xDD));  // lane 3
}

void act_quant(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
        uint8_t *         row    = qa + t * qact_row_bytes(K);
        uint16_t *        p8     = reinterpret_cast<uint16_t *>(qa_private(row, K));
        float *           scales = reinterpret_cast<float *>(row + qact_scales_offset(K));
        alignas(64) float vals[128];
        for (int64_t g = 0; g < K; g += 128) {
            quant_row_e4m3(x + t * ldx + g, 128, row + qact_codes_offset(K) + g, scales + g / 128,
                           vals);
            put_private_group(p8, K, g, vals);
        }
    }
}

void act_plain(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
        uint16_t * p8 = reinterpret_cast<uint16_t *>(qa_private(qa + t * qact_row_bytes(K), K));
        for (int64_t g = 0; g < K; g += 128) put_private_group(p8, K, g, x + t * ldx + g);
    }
}

struct E4m3Lut {
    __m512i lo0, lo1, hi0, hi1, sign;
};
inline E4m3Lut load_e4m3_lut() {
    return {_mm512_load_si512(kE4m3.bf16_lo), _mm512_load_si512(kE4m3.bf16_lo + 64),
            _mm512_load_si512(kE4m3.bf16_hi), _mm512_load_si512(kE4m3.bf16_hi + 64),
            _mm512_set1_epi8(static_cast<char>(0x80))};
}
// 64 e4m3 bytes -> 64 bf16 (two registers, lin8 order).
inline void decode_e4m3(const E4m3Lut & l, __m512i w, __m512i & a, __m512i & b) {
    const __m512i lo = _mm512_permutex2var_epi8(l.lo0, w, l.lo1);
    __m512i       hi = _mm512_permutex2var_epi8(l.hi0, w, l.hi1);
    hi               = _mm512_ternarylogic_epi32(hi, w, l.sign, 0xF8);  // hi | (w & 0x80)
    a                = _mm512_unpacklo_epi8(lo, hi);
    b                = _mm512_unpackhi_epi8(lo, hi);
}
inline __m512 dp(__m512 acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

// ---- rows that do not start on a cache line (decode) ----------------------------------------
// A mapped checkpoint's tensors start wherever the safetensors layout puts them (data offsets
// are not aligned: flash-mini's lie at 0, 16, 32, 40 or 56 mod 64), so every 64-byte load of a
// row straddles two cache lines. dsv4-bench-kernels --misalign=16 measured what that costs the
// decode GEMVs, 2 threads: head 94 -> 60-66 % of the read probe, wo_b 90 -> 77, shared expert
// 81-82 -> 63-70 (docs/performance.md). A misaligned row is therefore read as whole aligned
// lines, and each 64-byte vector of the row assembled from two neighbouring lines with one
// VPERMT2B. The row's first line and the line after its last vector are loaded with byte masks
// that cover only the row's own bytes, so nothing outside the row is read (a masked-off byte is
// never accessed, not even for faults). The decoded values and the order of every operation are
// those of the plain path: results are bit-identical.
struct Realign {
    __m512i   idx;         // byte i <- byte i + m of (line j, line j + 1)
    __mmask64 head, tail;  // bytes of the row in its first line / in the line after its last
    int64_t   m;           // the row's start modulo 64 (1..63)
};
inline Realign make_realign(int64_t m) {
    alignas(64) uint8_t ix[64];
    for (int i = 0; i < 64; ++i) ix[i] = static_cast<uint8_t>(i + m);
    return {_mm512_load_si512(ix), ~__mmask64{0} << m, ~__mmask64{0} >> (64 - m), m};
}
inline int64_t line_offset(const void * p) {
    return static_cast<int64_t>(reinterpret_cast<uintptr_t>(p) & 63u);
}
// The aligned line holding the first byte of a row that starts at p (line_offset(p) == ra.m).
inline const uint8_t * row_line(const Realign & ra, const void * p) {
    return reinterpret_cast<const uint8_t *>(reinterpret_cast<uintptr_t>(p) -
                                             static_cast<uintptr_t>(ra.m));
}
// Byte masks of the two lines behind bytes [k, k + 64) of a row of L bytes (k % 64 == 0,
// k + 64 <= L): all bytes except in the row's first line and in the line after its last vector.
// The same for every row of a tile, so computed once per k.
struct LineMasks {
    __mmask64 lo, hi;
};
inline LineMasks line_masks(const Realign & ra, int64_t k, int64_t L) {
    return {k == 0 ? ra.head : ~__mmask64{0}, k + 64 < L ? ~__mmask64{0} : ra.tail};
}
// Bytes [k, k + 64) of the row whose lines start at `line`: two aligned loads (the second is
// the next vector's first, from L1) and one VPERMT2B. Stateless, so no register per row is
// carried through the loop.
inline __m512i realign_at(const Realign & ra, LineMasks mk, const uint8_t * line, int64_t k) {
    return _mm512_permutex2var_epi8(_mm512_maskz_loadu_epi8(mk.lo, line + k), ra.idx,
                                    _mm512_maskz_loadu_epi8(mk.hi, line + k + 64));
}

// Output rows rows[0..R) × tokens t0..t0+TT, all of K. Every (row, token) result is the same
// operation sequence whatever R and TT (for_row_streams relies on it). RA: the rows start at
// line offset ra->m != 0 and are read as aligned lines (TT == 1 only: registers).
template <int R, int TT, bool RA = false>
void lin8_tile(float * y, int64_t ldy, const Fp8Mat & w, const uint8_t * qa, int64_t t0,
               const int64_t * rows, const Realign * ra = nullptr) {
    static_assert(!RA || TT == 1);
    const int64_t   K = w.K, nb = K / 128;
    const E4m3Lut   lut = load_e4m3_lut();
    const uint8_t * wr[R];
    const uint8_t * sr[R];
    const uint8_t * line[R];
    for (int r = 0; r < R; ++r) {
        wr[r] = w.w + rows[r] * K;
        sr[r] = w.scale + (rows[r] / 128) * nb;
        if constexpr (RA) line[r] = row_line(*ra, wr[r]);
    }
    const uint16_t * xp[TT];
    for (int t = 0; t < TT; ++t)
        xp[t] = reinterpret_cast<const uint16_t *>(qa_private(qa_row(qa, K, t0 + t), K));
    __m512 acc[R][TT];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        // Two partial sums per (row, token) — one per decoded half — so consecutive VDPBF16PS
        // do not wait on each other; the block's partial is their sum.
        __m512 pa[R][TT], pb[R][TT];
        for (int r = 0; r < R; ++r)
            for (int t = 0; t < TT; ++t) pa[r][t] = pb[r][t] = _mm512_setzero_ps();
        for (int64_t k = b * 128; k < b * 128 + 128; k += 64) {
            [[maybe_unused]] LineMasks mk{};
            if constexpr (RA) mk = line_masks(*ra, k, K);
            __m512i xa[TT], xb[TT];
            for (int t = 0; t < TT; ++t) {
                xa[t] = _mm512_load_si512(xp[t] + k);
                xb[t] = _mm512_load_si512(xp[t] + k + 32);
            }
            // Each row decoded and used at once: two decoded registers live, not 2·R (with
            // all rows decoded first the compiler spilled them and reloaded weights).
            for (int r = 0; r < R; ++r) {
                __m512i wa, wb;
                prefetch_stream(wr[r] + k);
                if constexpr (RA)
                    decode_e4m3(lut, realign_at(*ra, mk, line[r], k), wa, wb);
                else
                    decode_e4m3(lut, _mm512_loadu_si512(wr[r] + k), wa, wb);
                for (int t = 0; t < TT; ++t) {
                    pa[r][t] = dp(pa[r][t], wa, xa[t]);
                    pb[r][t] = dp(pb[r][t], wb, xb[t]);
                }
            }
        }
        for (int r = 0; r < R; ++r) {
            const __m512 s =
                _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(kE8m0.bits[sr[r][b]])));
            for (int t = 0; t < TT; ++t)
                acc[r][t] = _mm512_fmadd_ps(_mm512_add_ps(pa[r][t], pb[r][t]), s, acc[r][t]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t)
            y[(t0 + t) * ldy + rows[r]] = round_bf16_local(_mm512_reduce_add_ps(acc[r][t]));
}

// e2m1 nibble -> bf16 word, twice (32 entries: VPERMW reads 5 index bits, so bit 4 — the low
// bit of the next nibble — selects the same value), and the VPERMW indices that spread the
// scales of group q (of 8) to its lanes (ScaleWords).
struct E2m1Tables {
    alignas(64) uint16_t words[32];
    alignas(64) uint16_t spread[8][32];
};
constexpr uint16_t e2m1_bf16(int nib) {
    constexpr uint16_t kMag[8] = {0x0000, 0x3F00, 0x3F80, 0x3FC0, 0x4000, 0x4040, 0x4080, 0x40C0};
    return static_cast<uint16_t>(kMag[nib & 7] | ((nib & 8) ? 0x8000 : 0));
}
constexpr E2m1Tables make_e2m1_tables() {
    E2m1Tables t{};
    for (int i = 0; i < 32; ++i) t.words[i] = e2m1_bf16(i % 16);
    for (int q = 0; q < 8; ++q)
        for (int i = 0; i < 32; ++i) t.spread[q][i] = static_cast<uint16_t>(4 * q + i / 8);
    return t;
}
constexpr E2m1Tables kE2m1 = make_e2m1_tables();

inline __m512i load_e2m1_lut() {
    return _mm512_load_si512(kE2m1.words);
}
// 64 FP4 bytes (128 inputs) -> four registers of 32 bf16 (lin4 order): register j holds nibble j
// of every 16-bit weight word, looked up with one VPERMW (bits above the nibble are ignored or,
// for bit 4, harmless: the table repeats).
inline void decode_e2m1(__m512i lut, __m512i w, __m512i d[4]) {
    d[0] = _mm512_permutexvar_epi16(w, lut);
    d[1] = _mm512_permutexvar_epi16(_mm512_srli_epi16(w, 4), lut);
    d[2] = _mm512_permutexvar_epi16(_mm512_srli_epi16(w, 8), lut);
    d[3] = _mm512_permutexvar_epi16(_mm512_srli_epi16(w, 12), lut);
}
// The e8m0 scales of up to 8 groups (32 chunks of 32 inputs) of one row, held as the high
// words of their fp32 values (code << 7 puts the code in the exponent field: 0 -> 0.0 and
// 255 -> +inf, as before); at(q) spreads group q's four to fp32 lanes 4c..4c+3 (= scale of
// chunk c) with one VPERMW whose mask zeroes the low words. Spreading each group's four bytes
// from a broadcast took a broadcast load, a VPSHUFB and a shift per row and group.
struct ScaleWords {
    __m512i w;
    // Scale bytes s[0 .. 4n), 1 <= n <= 8 (nothing past them is read).
    void load(const uint8_t * s, int n) {
        const __m256i b = n == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s))
                                 : _mm256_maskz_loadu_epi8((1u << (4 * n)) - 1u, s);
        w               = _mm512_slli_epi16(_mm512_cvtepu8_epi16(b), 7);
    }
    __m512 at(int q) const {
        return _mm512_castsi512_ps(
            _mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, _mm512_load_si512(kE2m1.spread[q]), w));
    }
};

// Misaligned rows are loaded as they are: a straddling load costs this tile little
// (dsv4-bench-kernels --misalign=16, 2 threads: expert w1/w2 75/71 % vs 76/73 % aligned), and
// the realigning read of lin8_tile costs it much: with it (registers allow it since each row is
// decoded and used at once) the FP4 decode, already five shuffles per 64 bytes, fell from 72-77
// to 58-61 % of the paired probe (three alternating runs, misaligned by 16).
template <int R, int TT>
void lin4_tile(float * y, int64_t ldy, const Fp4Mat & w, const uint8_t * qa, int64_t t0,
               const int64_t * rows) {
    const int64_t   K = w.K, ng = K / 128, nc = K / 32;
    const __m512i   lut = load_e2m1_lut();
    const uint8_t * wr[R];
    const uint8_t * sr[R];
    for (int r = 0; r < R; ++r) {
        wr[r] = w.w + rows[r] * (K / 2);
        sr[r] = w.scale + rows[r] * nc;
    }
    const uint16_t * xp[TT];
    for (int t = 0; t < TT; ++t)
        xp[t] = reinterpret_cast<const uint16_t *>(qa_private(qa_row(qa, K, t0 + t), K)) + K;
    __m512 acc[R][TT];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t g0 = 0; g0 < ng; g0 += 8) {
        const int  nq = ng - g0 < 8 ? static_cast<int>(ng - g0) : 8;
        ScaleWords sw[R];
        for (int r = 0; r < R; ++r) {
            prefetch_stream<kPrefetchQ / 16>(sr[r] + g0 * 4);  // the row's scales, as far ahead
            sw[r].load(sr[r] + g0 * 4, nq);
        }
        for (int q = 0; q < nq; ++q) {
            const int64_t g = g0 + q;
            __m512i       x[TT][4];
            for (int t = 0; t < TT; ++t)
                for (int j = 0; j < 4; ++j) x[t][j] = _mm512_load_si512(xp[t] + g * 128 + 32 * j);
            for (int r = 0; r < R; ++r) {  // each row decoded and used at once (see lin8_tile)
                __m512i d[4];
                prefetch_stream(wr[r] + g * 64);
                decode_e2m1(lut, _mm512_loadu_si512(wr[r] + g * 64), d);
                const __m512 s = sw[r].at(q);
                for (int t = 0; t < TT; ++t) {  // two independent chains, then one FMA
                    const __m512 pa = dp(dp(_mm512_setzero_ps(), d[0], x[t][0]), d[2], x[t][2]);
                    const __m512 pb = dp(dp(_mm512_setzero_ps(), d[1], x[t][1]), d[3], x[t][3]);
                    acc[r][t]       = _mm512_fmadd_ps(_mm512_add_ps(pa, pb), s, acc[r][t]);
                }
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t)
            y[(t0 + t) * ldy + rows[r]] = round_bf16_local(_mm512_reduce_add_ps(acc[r][t]));
}

// gemm_bf16: x must hold bf16 values (every caller's input is a bf16 activation); it is
// converted to bf16 32 values at a time (exact) and multiplied with VDPBF16PS. Rows rows[0..R)
// of one token, one accumulator chain per row (the same sequence whatever R).
// RA: every row starts at line offset ra->m != 0 (ldw·2 % 64 == 0) and its first K / 32 · 64
// bytes are read as aligned lines.
template <int R, bool RA = false>
void gemm_bf16_rows(float * y, const uint16_t * w, int64_t ldw, const float * x, int64_t K,
                    const int64_t * rows, const Realign * ra = nullptr) {
    const uint16_t * wr[R];
    __m512           acc[R];
    const uint8_t *  line[R];
    const int64_t    L = K / 32 * 64;  // bytes of the vector part of a row
    for (int r = 0; r < R; ++r) {
        wr[r]  = w + rows[r] * ldw;
        acc[r] = _mm512_setzero_ps();
        if constexpr (RA) line[r] = row_line(*ra, wr[r]);
    }
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
        const __m512i xb =
            (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
        [[maybe_unused]] LineMasks mk{};
        if constexpr (RA) mk = line_masks(*ra, 2 * k, L);
        for (int r = 0; r < R; ++r) {
            prefetch_stream<kPrefetchB>(reinterpret_cast<const uint8_t *>(wr[r] + k));
            if constexpr (RA)
                acc[r] = dp(acc[r], realign_at(*ra, mk, line[r], 2 * k), xb);
            else
                acc[r] = dp(acc[r], _mm512_loadu_si512(wr[r] + k), xb);
        }
    }
    for (int r = 0; r < R; ++r) {
        float s = _mm512_reduce_add_ps(acc[r]);
        for (int64_t kk = k; kk < K; ++kk) {
            uint16_t bits;
            __builtin_memcpy(&bits, wr[r] + kk, 2);
            s += x[kk] * f32_from_u32(static_cast<uint32_t>(bits) << 16);
        }
        y[rows[r]] = s;
    }
}

// ---- prefill GEMM (T >= kGemmMinTokens) --------------------------------------------------------
// The tile kernels above decode a weight row pair once per 4 tokens; for prefill that decoding
// dominates. Here the weights are decoded once per call into a packed panel and reused by every
// token:
//  * panel = 32 output rows × a chunk of 512 inputs, stored as [input pair][row] dwords (two
//    bf16 of one row per dword: the operand layout of VDPBF16PS with one output row per lane),
//    32 KB on the stack. Pairs follow the activations' private storage order (lin8 / lin4
//    order), so the activation pair of a dword is a plain 32-bit broadcast from the prepared
//    row — the activations need no packing at all.
//  * the weight scale is folded into the packed bf16 values by adding (e - 127) to the exponent
//    field of every non-zero value: exact (a power-of-two scaling of a bf16 value that stays
//    normal), checked up front from the scale codes (fp8: 10 <= e <= 246, fp4: 2 <= e <= 252;
//    outside that range the tile kernels are used). So every product is still the exact
//    product of the reference's operands; only the fp32 summation order differs (free, §4.4).
//  * micro-kernel: 32 rows × 12 tokens = 24 fp32 accumulators, per input pair two weight loads,
//    12 activation broadcasts and 24 VDPBF16PS. Partial sums of a chunk are carried in y
//    (fp32) between chunks; the last chunk rounds to bf16.
//  * gemm_bf16 (the compressors', the indexer's and the gate's products) runs on the same
//    micro-kernel: its panel is a transposed copy of the bf16 rows, and its fp32 activations
//    are converted to bf16 pairs per token group and chunk (Bf16Acts, exact: they hold bf16
//    values); its outputs stay fp32. Before, each token re-read the whole matrix.
constexpr int64_t kGemmMinTokens = 8;
constexpr int     kPanelRows     = 32;
constexpr int64_t kPanelChunk    = 512;  // inputs per packed chunk (multiple of 128)
constexpr int     kTokenGroup    = 12;

struct alignas(64) Panel {
    uint32_t w[kPanelChunk / 2][kPanelRows];
};

// Adds the per-word exponent offset `off` (words) to every non-zero bf16 magnitude of v.
inline __m512i fold_scale(__m512i v, __m512i off) {
    const __mmask32 nz = _mm512_test_epi16_mask(v, _mm512_set1_epi16(0x7FFF));
    return _mm512_mask_add_epi16(v, nz, v, off);
}

// Transposes 16 rows × 16 pairs (r[i] = row i) and stores pair j of the 16 rows at
// panel->w[p0 + j][row0 .. row0+15].
inline void store_pairs(Panel * panel, int64_t p0, int row0, __m512i r[16]) {
    transpose16_epi32(r);
    for (int j = 0; j < 16; ++j) _mm512_store_si512(&panel->w[p0 + j][row0], r[j]);
}

// Packs rows [n, n + rows) (rows <= 32; missing rows are zero) and inputs [k0, k0 + kc) of an
// FP8 matrix.
inline void pack_fp8(Panel * panel, const Fp8Mat & w, int64_t n, int rows, int64_t k0, int64_t kc) {
    const E4m3Lut lut = load_e4m3_lut();
    const int64_t K = w.K, nb = K / 128;
    for (int half = 0; half < 2; ++half) {
        const int64_t nh = n + 16 * half;
        for (int64_t g = 0; g < kc; g += 64) {
            const int64_t k = k0 + g;
            __m512i       ra[16], rb[16];
            for (int i = 0; i < 16; ++i) {
                if (16 * half + i < rows) {
                    const int     e   = w.scale[((nh + i) / 128) * nb + k / 128];
                    const __m512i off = _mm512_set1_epi16(static_cast<short>((e - 127) * 128));
                    decode_e4m3(lut, _mm512_loadu_si512(w.w + (nh + i) * K + k), ra[i], rb[i]);
                    ra[i] = fold_scale(ra[i], off);
                    rb[i] = fold_scale(rb[i], off);
                } else {
                    ra[i] = rb[i] = _mm512_setzero_si512();
                }
            }
            store_pairs(panel, g / 2, 16 * half, ra);       // storage pairs 0..15 of the 64
            store_pairs(panel, g / 2 + 16, 16 * half, rb);  // pairs 16..31
        }
    }
}

// The same for FP4, transposed before decoding: per 128 inputs a row is 16 dwords, dword i
// holding the weight words 2i and 2i+1, which decode (decode_e2m1, nibble j of each word) to
// pair 16j + i of the lin4 order in every one of the four registers' lane i. So one 16×16
// transpose of the packed bytes gives register i = dword i of 16 rows, and decoding it gives
// panel rows 16j + i directly (lane = row): 64 shuffles per 16 rows × 128 inputs instead of
// the 256 that transposing the four decoded registers took. Dword i lies in 32-input chunk i/4,
// whose scale differs per row (lane).
inline void pack_fp4(Panel * panel, const Fp4Mat & w, int64_t n, int rows, int64_t k0, int64_t kc) {
    const __m512i lut = load_e2m1_lut();
    const int64_t K = w.K, nc = K / 32;
    for (int half = 0; half < 2; ++half) {
        const int64_t nh = n + 16 * half;
        const int     nr = rows - 16 * half;  // valid rows of this half (may be <= 0)
        for (int64_t g = 0; g < kc; g += 128) {
            const int64_t        k = k0 + g;
            __m512i              r[16];
            alignas(64) uint32_t off[4][16] = {};  // chunk c, row: (e - 127) in both words
            for (int i = 0; i < 16; ++i) {
                if (i < nr) {
                    r[i]              = _mm512_loadu_si512(w.w + (nh + i) * (K / 2) + k / 2);
                    const uint8_t * s = w.scale + (nh + i) * nc + k / 32;
                    for (int c = 0; c < 4; ++c)
                        off[c][i] = static_cast<uint16_t>((s[c] - 127) * 128) * 0x00010001u;
                } else {
                    r[i] = _mm512_setzero_si512();
                }
            }
            transpose16_epi32(r);
            for (int i = 0; i < 16; ++i) {
                const __m512i o = _mm512_load_si512(off[i / 4]);
                __m512i       d[4];
                decode_e2m1(lut, r[i], d);
                for (int j = 0; j < 4; ++j)
                    _mm512_store_si512(&panel->w[g / 2 + 16 * j + i][16 * half],
                                       fold_scale(d[j], o));
            }
        }
    }
}

// bf16 weights need no decoding: the panel is the rows' pairs in natural order, transposed.
// The caller guarantees kc % 32 == 0.
struct Bf16Mat {
    const uint16_t * w;
    int64_t          ldw, K;
};
inline void pack_bf16(Panel * panel, const Bf16Mat & w, int64_t n, int rows, int64_t k0,
                      int64_t kc) {
    for (int half = 0; half < 2; ++half)
        for (int64_t g = 0; g < kc; g += 32) {
            __m512i r[16];
            for (int i = 0; i < 16; ++i)
                r[i] = 16 * half + i < rows
                           ? _mm512_loadu_si512(w.w + (n + 16 * half + i) * w.ldw + k0 + g)
                           : _mm512_setzero_si512();
            store_pairs(panel, g / 2, 16 * half, r);
        }
}

// acc[t][h] (rows 16h..16h+15 of the panel, token t) over np pairs of the panel; x[t] points
// at the first activation pair of the chunk (private storage order).
template <int TG>
inline void gemm_micro(const Panel * panel, int64_t np, const uint16_t * const * x,
                       __m512 (&acc)[kTokenGroup][2]) {
    const int32_t * xs[TG];
    for (int t = 0; t < TG; ++t) xs[t] = reinterpret_cast<const int32_t *>(x[t]);
    for (int64_t p = 0; p < np; ++p) {
        const __m512i w0 = _mm512_load_si512(&panel->w[p][0]);
        const __m512i w1 = _mm512_load_si512(&panel->w[p][16]);
        for (int t = 0; t < TG; ++t) {
            const __m512i xb = _mm512_set1_epi32(xs[t][p]);
            acc[t][0]        = dp(acc[t][0], w0, xb);
            acc[t][1]        = dp(acc[t][1], w1, xb);
        }
    }
}

// Where the micro-kernel's activation pairs come from. `rows<TG>` points x[t] at the first
// pair of the chunk [k0, k0 + kc) of token t0 + t, in the panel's pair order.
//  * PreparedActs: act_quant's private bf16 rows (lin8 / lin4 order); outputs are rounded to
//    bf16 like the tile kernels'.
//  * Bf16Acts: bf16-valued fp32 rows (gemm_bf16's contract), converted (exactly) per token
//    group and chunk into a buffer on the caller's stack; outputs stay fp32 like gemm_bf16's.
struct PreparedActs {
    const uint8_t *       qa;
    int64_t               K, offset;  // offset: lin4's storage order follows lin8's (K words)
    static constexpr bool kRound = true;
    template <int TG>
    void rows(const uint16_t ** x, int64_t t0, int64_t k0, int64_t) const {
        for (int t = 0; t < TG; ++t)
            x[t] = reinterpret_cast<const uint16_t *>(qa_private(qa_row(qa, K, t0 + t), K)) +
                   offset + k0;
    }
};
struct Bf16Acts {
    const float * x;
    int64_t       ldx;
    uint16_t (*buf)[kPanelChunk];  // kTokenGroup rows
    static constexpr bool kRound = false;
    template <int TG>
    void rows(const uint16_t ** xp, int64_t t0, int64_t k0, int64_t kc) const {
        for (int t = 0; t < TG; ++t) {
            const float * src = x + (t0 + t) * ldx + k0;
            for (int64_t k = 0; k < kc; k += 32)
                _mm512_store_si512(buf[t] + k,
                                   (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16),
                                                                _mm512_loadu_ps(src + k)));
            xp[t] = buf[t];
        }
    }
};

// Runs the micro-kernel for tokens [t0, t0 + TG) over one packed chunk; y carries the fp32
// partial sums of rows [n, n + rows) between chunks.
template <int TG, class Acts>
void gemm_group(float * y, int64_t ldy, const Panel * panel, const Acts & acts, int64_t k0,
                int64_t kc, int64_t t0, int64_t n, int rows, bool first, bool last) {
    const uint16_t * x[TG];
    acts.template rows<TG>(x, t0, k0, kc);
    const __mmask16 m0 = rows >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << rows) - 1u);
    const __mmask16 m1 = rows >= 32   ? 0xFFFF
                         : rows <= 16 ? 0
                                      : static_cast<__mmask16>((1u << (rows - 16)) - 1u);
    __m512          acc[kTokenGroup][2];
    for (int t = 0; t < TG; ++t) {
        float * yt = y + (t0 + t) * ldy + n;
        acc[t][0]  = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m0, yt);
        acc[t][1]  = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m1, yt + 16);
    }
    gemm_micro<TG>(panel, kc / 2, x, acc);
    for (int t = 0; t < TG; ++t) {
        float * yt = y + (t0 + t) * ldy + n;
        __m512  a0 = acc[t][0], a1 = acc[t][1];
        if (Acts::kRound && last) {
            a0 = elt_round_bf16(batch_f(a0));
            a1 = elt_round_bf16(batch_f(a1));
        }
        _mm512_mask_storeu_ps(yt, m0, a0);
        _mm512_mask_storeu_ps(yt + 16, m1, a1);
    }
}

// The weight bytes of inputs [k0, k0 + kc) of row n (for prefetch_chunk).
inline const uint8_t * chunk_bytes(const Fp8Mat & w, int64_t n, int64_t k0, int64_t kc,
                                   int64_t * len) {
    *len = kc;
    return w.w + n * w.K + k0;
}
inline const uint8_t * chunk_bytes(const Fp4Mat & w, int64_t n, int64_t k0, int64_t kc,
                                   int64_t * len) {
    *len = kc / 2;
    return w.w + n * (w.K / 2) + k0 / 2;
}
inline const uint8_t * chunk_bytes(const Bf16Mat & w, int64_t n, int64_t k0, int64_t kc,
                                   int64_t * len) {
    *len = 2 * kc;
    return reinterpret_cast<const uint8_t *>(w.w + n * w.ldw + k0);
}
// Asks for the weights the next pack will read while the micro-kernel works on this chunk:
// the packers read 16-32 rows a few lines at a time, a pattern the hardware prefetcher does not
// follow, so without this the pack waited for DRAM (about 60 % of its samples on one load).
template <class Mat>
void prefetch_chunk(const Mat & w, int64_t n, int rows, int64_t k0, int64_t kc) {
    for (int r = 0; r < rows; ++r) {
        int64_t         len = 0;
        const uint8_t * p   = chunk_bytes(w, n + r, k0, kc, &len);
        for (int64_t b = 0; b < len; b += 64)
            _mm_prefetch(reinterpret_cast<const char *>(p + b), _MM_HINT_T0);
    }
}

template <class Mat, class Pack, class Acts>
void gemm_packed(float * y, int64_t ldy, const Mat & w, const Acts & acts, int64_t T, int64_t n0,
                 int64_t n1, Pack pack) {
    const int64_t K         = w.K;
    const auto    rows_from = [&](int64_t n) {
        return static_cast<int>(n1 - n < kPanelRows ? n1 - n : kPanelRows);
    };
    const auto chunk_from = [&](int64_t k0) { return K - k0 < kPanelChunk ? K - k0 : kPanelChunk; };
    Panel      panel;
    for (int64_t n = n0; n < n1; n += kPanelRows) {
        const int rows = rows_from(n);
        for (int64_t k0 = 0; k0 < K; k0 += kPanelChunk) {
            const int64_t kc = chunk_from(k0);
            pack(&panel, w, n, rows, k0, kc);
            // The next chunk of these rows, or the first of the next rows: its rows are asked
            // for a slice per token group, spread over the micro-kernel's run.
            int64_t pn = n, pk = k0 + kc;
            int     prows = rows;
            if (pk >= K) {
                pn    = n + kPanelRows;
                pk    = 0;
                prows = pn < n1 ? rows_from(pn) : 0;
            }
            const int64_t ng    = (T + kTokenGroup - 1) / kTokenGroup;
            const bool    first = k0 == 0, last = k0 + kc == K;
            for (int64_t t0 = 0; t0 < T; t0 += kTokenGroup) {
                const int64_t tg = T - t0 < kTokenGroup ? T - t0 : kTokenGroup;
                if (prows > 0) {
                    const int64_t gi = t0 / kTokenGroup;
                    const int     r0 = static_cast<int>(gi * prows / ng),
                              r1     = static_cast<int>((gi + 1) * prows / ng);
                    if (r1 > r0) prefetch_chunk(w, pn + r0, r1 - r0, pk, chunk_from(pk));
                }
                switch (tg) {
#define DSV4_GROUP_CASE(G) \
    case G: gemm_group<G>(y, ldy, &panel, acts, k0, kc, t0, n, rows, first, last); break;
                    DSV4_GROUP_CASE(1)
                    DSV4_GROUP_CASE(2)
                    DSV4_GROUP_CASE(3)
                    DSV4_GROUP_CASE(4)
                    DSV4_GROUP_CASE(5)
                    DSV4_GROUP_CASE(6)
                    DSV4_GROUP_CASE(7)
                    DSV4_GROUP_CASE(8)
                    DSV4_GROUP_CASE(9)
                    DSV4_GROUP_CASE(10)
                    DSV4_GROUP_CASE(11)
                    default: DSV4_GROUP_CASE(12)
#undef DSV4_GROUP_CASE
                }
            }
        }
    }
}

// Whether every weight scale used by rows [n0, n1) can be folded into bf16 exactly.
inline bool foldable_fp8(const Fp8Mat & w, int64_t n0, int64_t n1) {
    const int64_t nb = w.K / 128;
    for (int64_t rb = n0 / 128; rb <= (n1 - 1) / 128; ++rb)
        for (int64_t b = 0; b < nb; ++b) {
            const int e = w.scale[rb * nb + b];
            if (e < 10 || e > 246) return false;
        }
    return true;
}
inline bool foldable_fp4(const Fp4Mat & w, int64_t n0, int64_t n1) {
    const int64_t nc = w.K / 32;
    for (int64_t i = n0 * nc; i < n1 * nc; ++i)
        if (w.scale[i] < 2 || w.scale[i] > 252) return false;
    return true;
}

#else
// =============================================================================================
// AVX2 + FMA + F16C path
// =============================================================================================

// Private layout: K fp32 values in natural order, exactly what the scalar table writes.
void act_quant(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
        uint8_t * row = qa + t * qact_row_bytes(K);
        quant_row_e4m3(x + t * ldx, K, row + qact_codes_offset(K),
                       reinterpret_cast<float *>(row + qact_scales_offset(K)),
                       reinterpret_cast<float *>(qa_private(row, K)));
    }
}
void act_plain(uint8_t * qa, const float * x, int64_t ldx, int64_t K, int64_t t0, int64_t t1) {
    scalar::act_plain(qa, x, ldx, K, t0, t1);
}

// 16 e4m3 bytes -> 16 floats, each the value times 2^-8 (exact; fp16 bit trick).
// Sign-extended, each word is s…s s eeee mmm; shifted left by 7 the sign lands in bit 15 and
// the magnitude in bits 13..7, with one more copy of the sign in bit 14, cleared by the mask.
inline void decode_e4m3_16(const uint8_t * p, __m256 & a, __m256 & b) {
    const __m256i v = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    const __m256i h =
        _mm256_and_si256(_mm256_slli_epi16(v, 7), _mm256_set1_epi16(static_cast<short>(0xBFFF)));
    a = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    b = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}
inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s        = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s        = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <int R, int TT>
void lin8_tile(float * y, int64_t ldy, const Fp8Mat & w, const uint8_t * qa, int64_t t0,
               const int64_t * rows) {
    const int64_t   K = w.K, nb = K / 128;
    const uint8_t * wr[R];
    const uint8_t * sr[R];
    for (int r = 0; r < R; ++r) {
        wr[r] = w.w + rows[r] * K;
        sr[r] = w.scale + (rows[r] / 128) * nb;
    }
    const float * xp[TT];
    for (int t = 0; t < TT; ++t)
        xp[t] = reinterpret_cast<const float *>(qa_private(qa_row(qa, K, t0 + t), K));
    __m256 acc[R][TT];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m256 p[R][TT];
        for (int r = 0; r < R; ++r)
            for (int t = 0; t < TT; ++t) p[r][t] = _mm256_setzero_ps();
        for (int64_t k = b * 128; k < b * 128 + 128; k += 16) {
            for (int r = 0; r < R; ++r) {  // each row decoded and used at once (16 registers)
                __m256 wa, wb;
                if ((k & 63) == 0) prefetch_stream(wr[r] + k);
                decode_e4m3_16(wr[r] + k, wa, wb);
                for (int t = 0; t < TT; ++t)
                    p[r][t] =
                        _mm256_fmadd_ps(wb, _mm256_loadu_ps(xp[t] + k + 8),
                                        _mm256_fmadd_ps(wa, _mm256_loadu_ps(xp[t] + k), p[r][t]));
            }
        }
        for (int r = 0; r < R; ++r) {
            const __m256 s = _mm256_mul_ps(
                _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(kE8m0.bits[sr[r][b]]))),
                _mm256_set1_ps(256.0f));
            for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_fmadd_ps(p[r][t], s, acc[r][t]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t)
            y[(t0 + t) * ldy + rows[r]] = round_bf16_local(hsum256(acc[r][t]));
}

// 16 FP4 bytes (32 inputs) -> 4 × 8 floats, each twice the e2m1 value (small integers).
inline void decode_e2m1_32(const uint8_t * p, __m256 d[4]) {
    const __m128i tab = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i b   = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    const __m128i nib = _mm_set1_epi8(0x0F);
    const __m128i lo  = _mm_shuffle_epi8(tab, _mm_and_si128(b, nib));
    const __m128i hi  = _mm_shuffle_epi8(tab, _mm_and_si128(_mm_srli_epi16(b, 4), nib));
    const __m128i e0  = _mm_unpacklo_epi8(lo, hi);  // inputs 0..15 in order
    const __m128i e1  = _mm_unpackhi_epi8(lo, hi);  // inputs 16..31
    d[0]              = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(e0));
    d[1]              = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(e0, 8)));
    d[2]              = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(e1));
    d[3]              = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(e1, 8)));
}

template <int R, int TT>
void lin4_tile(float * y, int64_t ldy, const Fp4Mat & w, const uint8_t * qa, int64_t t0,
               const int64_t * rows) {
    const int64_t   K = w.K, nc = K / 32;
    const uint8_t * wr[R];
    const uint8_t * sr[R];
    for (int r = 0; r < R; ++r) {
        wr[r] = w.w + rows[r] * (K / 2);
        sr[r] = w.scale + rows[r] * nc;
    }
    const float * xp[TT];
    for (int t = 0; t < TT; ++t)
        xp[t] = reinterpret_cast<const float *>(qa_private(qa_row(qa, K, t0 + t), K));
    __m256 acc[R][TT];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int64_t c = 0; c < nc; ++c) {
        for (int r = 0; r < R; ++r) {  // each row decoded and used at once (16 registers)
            __m256 d[4];
            if ((c & 3) == 0) {
                prefetch_stream(wr[r] + c * 16);
                prefetch_stream<kPrefetchQ / 16>(sr[r] + c);  // the row's scales, as far ahead
            }
            decode_e2m1_32(wr[r] + c * 16, d);
            const __m256 s = _mm256_mul_ps(
                _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(kE8m0.bits[sr[r][c]]))),
                _mm256_set1_ps(0.5f));
            for (int t = 0; t < TT; ++t) {
                const float * x = xp[t] + c * 32;
                __m256        p = _mm256_mul_ps(d[0], _mm256_loadu_ps(x));
                p               = _mm256_fmadd_ps(d[1], _mm256_loadu_ps(x + 8), p);
                p               = _mm256_fmadd_ps(d[2], _mm256_loadu_ps(x + 16), p);
                p               = _mm256_fmadd_ps(d[3], _mm256_loadu_ps(x + 24), p);
                acc[r][t]       = _mm256_fmadd_ps(p, s, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t)
            y[(t0 + t) * ldy + rows[r]] = round_bf16_local(hsum256(acc[r][t]));
}

inline __m256 widen_bf16(const uint16_t * p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))), 16));
}

// Rows rows[0..R) of one token, one accumulator chain per row (the same sequence whatever R).
template <int R>
void gemm_bf16_rows(float * y, const uint16_t * w, int64_t ldw, const float * x, int64_t K,
                    const int64_t * rows) {
    const uint16_t * wr[R];
    __m256           acc[R];
    for (int r = 0; r < R; ++r) {
        wr[r]  = w + rows[r] * ldw;
        acc[r] = _mm256_setzero_ps();
    }
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        const __m256 xv = _mm256_loadu_ps(x + k);
        for (int r = 0; r < R; ++r) {
            if ((k & 31) == 0)
                prefetch_stream<kPrefetchB>(reinterpret_cast<const uint8_t *>(wr[r] + k));
            acc[r] = _mm256_fmadd_ps(widen_bf16(wr[r] + k), xv, acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) {
        float s = hsum256(acc[r]);
        for (int64_t kk = k; kk < K; ++kk) {
            uint16_t bits;
            __builtin_memcpy(&bits, wr[r] + kk, 2);
            s += x[kk] * f32_from_u32(static_cast<uint32_t>(bits) << 16);
        }
        y[rows[r]] = s;
    }
}
#endif

// ---- drivers: tile the [n0, n1) × [0, T) output block ------------------------------------
// Tokens go in groups of up to 4 (a decoded weight row is reused by every token of the group).
// One token (decode): kStreams rows in lockstep, one from each contiguous part of the range
// (see "weight streams"); more tokens: 2-row tiles over kTileStreams parts (the accumulators of
// R × TT outputs must fit the registers).
// Decode (one token) on the AVX-512 BF16 path: rows that do not start on a cache line are read
// as aligned lines ("rows that do not start on a cache line" above). Elsewhere a Realign is
// never made and `ra` is null.
#if !(defined(__AVX512BF16__) && defined(__AVX512VBMI__))
struct Realign {};
#endif
struct Lin8Tile {
    static constexpr bool kRealign = true;
    template <int R, int TT, bool RA>
    static void run(float * y, int64_t ldy, const Fp8Mat & w, const uint8_t * qa, int64_t t0,
                    const int64_t * rows, [[maybe_unused]] const Realign * ra) {
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
        lin8_tile<R, TT, RA>(y, ldy, w, qa, t0, rows, ra);
#else
        lin8_tile<R, TT>(y, ldy, w, qa, t0, rows);
#endif
    }
};
struct Lin4Tile {
    static constexpr bool kRealign = false;  // see lin4_tile
    template <int R, int TT, bool RA>
    static void run(float * y, int64_t ldy, const Fp4Mat & w, const uint8_t * qa, int64_t t0,
                    const int64_t * rows, [[maybe_unused]] const Realign * ra) {
        lin4_tile<R, TT>(y, ldy, w, qa, t0, rows);
    }
};
template <class Tile, int TT, bool RA, class Mat>
void tiles_tt(float * y, int64_t ldy, const Mat & w, const uint8_t * qa, int64_t t0, int64_t n0,
              int64_t n1, const Realign * ra) {
    constexpr int S = TT == 1 ? kStreams : kTileStreams;
    for_row_streams<S>(
        n0, n1,
        [&](const int64_t * rows) { Tile::template run<S, TT, RA>(y, ldy, w, qa, t0, rows, ra); },
        [&](int64_t n) { Tile::template run<1, TT, RA>(y, ldy, w, qa, t0, &n, ra); });
}
template <class Tile, class Mat>
void tiles(float * y, int64_t ldy, const Mat & w, const uint8_t * qa, int64_t T, int64_t n0,
           int64_t n1) {
    for (int64_t t0 = 0; t0 < T; t0 += 4) {
        switch (T - t0) {
            case 1:
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
                if (const int64_t m = line_offset(w.w); Tile::kRealign && m != 0) {
                    const Realign ra = make_realign(m);  // rows are whole lines: same offset
                    tiles_tt<Tile, 1, true>(y, ldy, w, qa, t0, n0, n1, &ra);
                    break;
                }
#endif
                tiles_tt<Tile, 1, false>(y, ldy, w, qa, t0, n0, n1, nullptr);
                break;
            case 2: tiles_tt<Tile, 2, false>(y, ldy, w, qa, t0, n0, n1, nullptr); break;
            case 3: tiles_tt<Tile, 3, false>(y, ldy, w, qa, t0, n0, n1, nullptr); break;
            default: tiles_tt<Tile, 4, false>(y, ldy, w, qa, t0, n0, n1, nullptr); break;
        }
    }
}
inline void lin8_tiles(float * y, int64_t ldy, const Fp8Mat & w, const uint8_t * qa, int64_t T,
                       int64_t n0, int64_t n1) {
    tiles<Lin8Tile>(y, ldy, w, qa, T, n0, n1);
}
inline void lin4_tiles(float * y, int64_t ldy, const Fp4Mat & w, const uint8_t * qa, int64_t T,
                       int64_t n0, int64_t n1) {
    tiles<Lin4Tile>(y, ldy, w, qa, T, n0, n1);
}

#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
void lin8(float * y, int64_t ldy, const Fp8Mat & w, const uint8_t * qa, int64_t T, int64_t n0,
          int64_t n1) {
    if (T >= kGemmMinTokens && n1 > n0 && foldable_fp8(w, n0, n1))
        gemm_packed(y, ldy, w, PreparedActs{qa, w.K, 0}, T, n0, n1, pack_fp8);
    else
        lin8_tiles(y, ldy, w, qa, T, n0, n1);
}
void lin4(float * y, int64_t ldy, const Fp4Mat & w, const uint8_t * qa, int64_t T, int64_t n0,
          int64_t n1) {
    if (T >= kGemmMinTokens && n1 > n0 && foldable_fp4(w, n0, n1))
        gemm_packed(y, ldy, w, PreparedActs{qa, w.K, w.K}, T, n0, n1, pack_fp4);
    else
        lin4_tiles(y, ldy, w, qa, T, n0, n1);
}
#else
void lin8(float * y, int64_t ldy, const Fp8Mat & w, const uint8_t * qa, int64_t T, int64_t n0,
          int64_t n1) {
    lin8_tiles(y, ldy, w, qa, T, n0, n1);
}
void lin4(float * y, int64_t ldy, const Fp4Mat & w, const uint8_t * qa, int64_t T, int64_t n0,
          int64_t n1) {
    lin4_tiles(y, ldy, w, qa, T, n0, n1);
}
#endif

void gemm_bf16(float * y, int64_t ldy, const uint16_t * w, int64_t ldw, const float * x,
               int64_t ldx, int64_t K, int64_t T, int64_t n0, int64_t n1) {
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
    if (T >= kGemmMinTokens && n1 > n0 && K % 32 == 0) {  // prefill: the packed GEMM
        alignas(64) uint16_t xbuf[kTokenGroup][kPanelChunk];
        gemm_packed(y, ldy, Bf16Mat{w, ldw, K}, Bf16Acts{x, ldx, xbuf}, T, n0, n1, pack_bf16);
        return;
    }
    // Rows that are whole lines apart and do not start on one: read as aligned lines.
    if (const int64_t m = line_offset(w + n0 * ldw); m != 0 && (ldw * 2) % 64 == 0 && K >= 32) {
        const Realign ra = make_realign(m);
        for (int64_t t = 0; t < T; ++t)
            for_row_streams<kStreams>(
                n0, n1,
                [&](const int64_t * rows) {
                    gemm_bf16_rows<kStreams, true>(y + t * ldy, w, ldw, x + t * ldx, K, rows, &ra);
                },
                [&](int64_t n) {
                    gemm_bf16_rows<1, true>(y + t * ldy, w, ldw, x + t * ldx, K, &n, &ra);
                });
        return;
    }
#endif
    for (int64_t t = 0; t < T; ++t)  // one token at a time, its rows as kStreams streams
        for_row_streams<kStreams>(
            n0, n1,
            [&](const int64_t * rows) {
                gemm_bf16_rows<kStreams>(y + t * ldy, w, ldw, x + t * ldx, K, rows);
            },
            [&](int64_t n) { gemm_bf16_rows<1>(y + t * ldy, w, ldw, x + t * ldx, K, &n); });
}

void gemm_f32(float * y, int64_t ldy, const float * w, int64_t ldw, const float * x, int64_t ldx,
              int64_t K, int64_t T, int64_t n0, int64_t n1) {
    constexpr int R = kLanes >= 16 ? 2 : 1, TT = 2;  // 16 / 8 accumulators (32 / 16 registers)
    int64_t       t = 0;
    for (; t + TT <= T; t += TT) {
        int64_t n = n0;
        for (; n + R <= n1; n += R)
            dot_f32_block<R, TT>(y + t * ldy + n, ldy, w + n * ldw, ldw, x + t * ldx, ldx, K);
        for (; n < n1; ++n)
            dot_f32_block<1, TT>(y + t * ldy + n, ldy, w + n * ldw, ldw, x + t * ldx, ldx, K);
    }
    for (; t < T; ++t)
        for (int64_t n = n0; n < n1; ++n) y[t * ldy + n] = dot_f32(w + n * ldw, x + t * ldx, K);
}

// Benchmark probe: 12 independent FMA chains (enough to cover FMA latency × pipes).
double fma_probe(int64_t iters) {
    using B = batch_f;
    B       acc[12];
    const B m(0.999999f), a(1e-7f);
    for (int i = 0; i < 12; ++i) acc[i] = B(static_cast<float>(i));
    for (int64_t it = 0; it < iters; ++it)
        for (int i = 0; i < 12; ++i) acc[i] = xsimd::fma(acc[i], m, a);
    B s = acc[0];
    for (int i = 1; i < 12; ++i) s = s + acc[i];
    volatile float sink = xsimd::hadd(s);
    (void)sink;
    return static_cast<double>(iters) * 12 * static_cast<double>(B::size) * 2;
}
