#include "model/attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "dsv4/ref/formats.hpp"
#include "dsv4/ref/ops.hpp"
#include "model/linear.hpp"
#include "model/scratch.hpp"
#include "threading/parallel.hpp"

namespace dsv4::model {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

uint16_t bits(float v) {
    return ref::f32_to_bf16(v);
}  // v holds a bf16 value: exact

// Scratch of one attention call, carved from one buffer (Carver measures when base is null).
struct Buffers {
    float *           qr, *q, *kv, *z;
    uint8_t *         qa;
    float *           ca, *cg;          // main compressor projections [T, coff*hd]
    float *           ia, *ig;          // indexer compressor projections [T, 2*ihd]
    float *           iq, *iw;          // indexer q [T, ih*ihd], weights [T, ih]
    float *           pooled;           // [max(coff*hd, 2*ihd)]
    float *           scores;           // [n_ctx/4 + 1]
    uint32_t *        topk_tmp;         // [2·(n_ctx/4 + 1)] selection scratch
    int32_t *         sel;              // [index_topk]
    const uint16_t ** rows;             // [window + max compressed entries]
    float *           head_acc;         // [n_heads, attn_scratch_floats(head_dim)]
    float *           freqs, *cs, *sn;  // [rd/2] each
};

Buffers carve(Carver & c, const ModelConfig & cfg, int64_t T, int64_t n_ctx) {
    const int64_t hd = cfg.head_dim, ql = cfg.q_lora_rank, H = cfg.n_heads;
    const int64_t G = cfg.o_groups, OL = cfg.o_lora_rank, K_oa = cfg.wo_a_in();
    const int64_t ihd = cfg.index_head_dim, ih = cfg.index_n_heads;
    using kernels::qact_row_bytes;
    const int64_t qa_bytes = std::max({T * qact_row_bytes(cfg.dim), T * qact_row_bytes(ql),
                                       T * G * qact_row_bytes(K_oa), T * qact_row_bytes(G * OL)});
    int64_t max_entries    = cfg.window_size + std::max<int64_t>(cfg.index_topk, n_ctx / 128 + 1);
    Buffers b;
    b.qr       = c.take<float>(T * ql);
    b.q        = c.take<float>(T * H * hd);
    b.kv       = c.take<float>(T * hd);
    b.z        = c.take<float>(T * G * OL);
    b.qa       = c.take<uint8_t>(qa_bytes);
    b.ca       = c.take<float>(T * 2 * hd);
    b.cg       = c.take<float>(T * 2 * hd);
    b.ia       = c.take<float>(T * 2 * ihd);
    b.ig       = c.take<float>(T * 2 * ihd);
    b.iq       = c.take<float>(T * ih * ihd);
    b.iw       = c.take<float>(T * ih);
    b.pooled   = c.take<float>(std::max(2 * hd, 2 * ihd));
    b.scores   = c.take<float>(n_ctx / 4 + 1);
    b.topk_tmp = c.take<uint32_t>(2 * (n_ctx / 4 + 1));
    b.sel      = c.take<int32_t>(cfg.index_topk);
    b.rows     = c.take<const uint16_t *>(max_entries);
    b.head_acc = c.take<float>(H * kernels::attn_scratch_floats(hd));
    b.freqs    = c.take<float>(cfg.rope_head_dim / 2);
    b.cs       = c.take<float>(cfg.rope_head_dim / 2);
    b.sn       = c.take<float>(cfg.rope_head_dim / 2);
    return b;
}

// Numerics seam (Numerics::q_norm_bf16 = false): the per-head q normalisation (the kernels'
// q_norm_bf16, spec §3.5 step 3) in fp32, one rounding.
void q_head_rms_f32(float * q, int64_t n, float eps) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) sum += q[i] * q[i];
    const float rs = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
    for (int64_t i = 0; i < n; ++i) q[i] = ref::round_bf16(q[i] * rs);
}

// RoPE tables for one position.
void cos_sin_at(const Buffers & b, int64_t half, int64_t pos) {
    ref::rope_cos_sin(b.cs, b.sn, b.freqs, half, pos);
}

// One decode-style compressor step at position p (spec §3.6, reference mechanics): stores the
// projections a (values) and g (scores incl. ape) and, when p completes a block, pools it into
// `pooled` [d] and returns true.
bool compressor_step(CompressorState & s, int ratio, int64_t d, int64_t p, const float * a,
                     const float * g, float * pooled) {
    const bool    overlap = ratio == 4;
    const int64_t cols    = s.cols;
    const int64_t slot    = (overlap ? ratio : 0) + p % ratio;
    std::memcpy(s.kv + slot * cols, a, sizeof(float) * cols);
    std::memcpy(s.score + slot * cols, g, sizeof(float) * cols);
    if ((p + 1) % ratio != 0) return false;
    const int64_t n = overlap ? 2 * ratio : ratio;
    for (int64_t i = 0; i < d; ++i) {
        // Entry j: overlap → rows 0..r-1 first half (previous block), rows r..2r-1 second half.
        auto kv_at = [&](int64_t j) {
            return overlap ? (j < ratio ? s.kv[j * cols + i] : s.kv[j * cols + d + i])
                           : s.kv[j * cols + i];
        };
        auto sc_at = [&](int64_t j) {
            return overlap ? (j < ratio ? s.score[j * cols + i] : s.score[j * cols + d + i])
                           : s.score[j * cols + i];
        };
        float m = kNegInf;
        for (int64_t j = 0; j < n; ++j) m = std::max(m, sc_at(j));
        float sum = 0.0f;
        for (int64_t j = 0; j < n; ++j) sum += std::exp(sc_at(j) - m);
        float u = 0.0f;
        for (int64_t j = 0; j < n; ++j) u += kv_at(j) * (std::exp(sc_at(j) - m) / sum);
        pooled[i] = u;
    }
    if (overlap) {  // the current block becomes the previous one
        std::memcpy(s.kv, s.kv + ratio * cols, sizeof(float) * ratio * cols);
        std::memcpy(s.score, s.score + ratio * cols, sizeof(float) * ratio * cols);
    }
    return true;
}

// Pooled block → stored row (spec §3.6): bf16 → RMSNorm → RoPE at c·ratio → FP8 sim of the
// nope dims (main) or Hadamard + FP4 sim (indexer).
void finalize_block(const Ctx & ctx, const CompressorWeights & w, const Buffers & b, bool indexer,
                    int64_t c, float * u, uint16_t * dst) {
    const ModelConfig & cfg = *ctx.cfg;
    const int64_t       d = w.d, rd = cfg.rope_head_dim;
    for (int64_t i = 0; i < d; ++i) u[i] = ref::round_bf16(u[i]);
    ctx.k->rmsnorm_bf16(u, u, w.norm, d, static_cast<float>(cfg.norm_eps));
    const bool at_end = ctx.num.compressed_rope == Numerics::CompressedRope::block_end;
    cos_sin_at(b, rd / 2, c * w.ratio + (at_end ? w.ratio - 1 : 0));
    ctx.k->rope(u, d, rd, b.cs, b.sn, false);
    if (indexer) {
        ctx.k->hadamard(u, d);
        ctx.k->fp4sim(u, d);
    } else {
        ctx.k->fp8sim(u, d - rd, 64);
    }
    for (int64_t i = 0; i < d; ++i) dst[i] = bits(u[i]);
}

// The sparse-attention kernel's sink and output rule: the faithful engine is the default
// AttnRule; anything else is the Numerics seam.
kernels::AttnRule sink_rule(const Numerics & num) {
    kernels::AttnRule r;
    r.sink_in_denominator = num.sink != Numerics::Sink::dropped;
    r.sink_in_max         = num.sink == Numerics::Sink::in_max;
    r.round_out           = num.round_attn_out;
    return r;
}

// Numerics seam for the grouped wo_a product: z[t, g·OL + k] = Σ_d o[t, g·K + d] · W[g·OL + k, d]
// with the exactly dequantised FP8 weight, fp32 accumulation in ascending d, o as it is (bf16 or
// not), z rounded to bf16 only if `round`. (The kernels' act_plain requires bf16 inputs.)
void wo_a_f32(const Ctx & ctx, const kernels::Fp8Mat & w, const float * o, int64_t T, float * z,
              bool round) {
    const ModelConfig & cfg = *ctx.cfg;
    const int64_t       H = cfg.n_heads, hd = cfg.head_dim, G = cfg.o_groups, OL = cfg.o_lora_rank;
    const int64_t       K = cfg.wo_a_in(), nsb = (w.K + 127) / 128;
    threading::parallel_for(ctx.n_threads, G * OL, 16, [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
            const int64_t   g   = n / OL;
            const auto &    tab = ref::e4m3_table();
            const uint8_t * wr  = w.w + n * w.K;
            for (int64_t t = 0; t < T; ++t) {
                const float * x   = o + t * H * hd + g * K;
                float         acc = 0.0f;
                for (int64_t d0 = 0; d0 < K; d0 += 128) {
                    const float   sw = ref::e8m0_to_f32(w.scale[(n / 128) * nsb + d0 / 128]);
                    const int64_t d1 = std::min(K, d0 + 128);
                    for (int64_t d = d0; d < d1; ++d) acc += x[d] * (tab[wr[d]] * sw);
                }
                z[t * G * OL + n] = round ? ref::round_bf16(acc) : acc;
            }
        }
    });
}

}  // namespace

namespace {

// Order-preserving key of a score: a larger score has a larger key. NaN ranks as -inf, and -0
// as +0 (equal as floats, so the lower block index must win the tie).
inline uint32_t score_key(float f) {
    if (f != f) f = -std::numeric_limits<float>::infinity();
    if (f == 0.0f) f = 0.0f;
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace

void topk_desc(const float * scores, int64_t n, int64_t k, int32_t * out, uint32_t * tmp) {
    // O(n) radix select of the k-th largest key, 11 + 11 + 10 bits from the top, then one pass
    // for the keys above it and the lowest-index ties at it, then a sort of the k chosen.
    // (An insertion-ordered list is O(n·k) when scores rise with the block index — recent
    // blocks often score higher — ~9 ms per CSA layer and token at 128k; std::nth_element on
    // the floats took 0.22 ms at n = 32768, a radix select about a quarter of that.)
    // Order: higher score first, equal scores → lower index first; NaN ranks as -inf.
    k = std::min(k, n);
    if (k <= 0) return;
    uint32_t * keys = tmp;      // [n] every key
    uint32_t * cand = tmp + n;  // [n] the keys still in play after the first pass
    for (int64_t c = 0; c < n; ++c) keys[c] = score_key(scores[c]);

    // Pass 1 over all keys, four interleaved histograms (runs of equal buckets would otherwise
    // serialise on one counter).
    uint32_t h4[4][2048] = {};
    int64_t  c           = 0;
    for (; c + 4 <= n; c += 4)
        for (int j = 0; j < 4; ++j) ++h4[j][keys[c + j] >> 21];
    for (; c < n; ++c) ++h4[0][keys[c] >> 21];
    uint32_t hist[2048];
    for (int b = 0; b < 2048; ++b) hist[b] = h4[0][b] + h4[1][b] + h4[2][b] + h4[3][b];
    // In every pass the keys matching the prefix number at least `need`; take the highest
    // bucket at which the count from the top reaches need.
    int64_t    need   = k;
    const auto choose = [&](int n_buckets) {
        int64_t above = 0;
        int     b     = n_buckets - 1;
        while (above + hist[b] < need) above += hist[b--];
        need -= above;
        return static_cast<uint32_t>(b);
    };
    uint32_t prefix = choose(2048) << 21;
    int64_t  nc     = 0;
    for (int64_t i = 0; i < n; ++i)
        if ((keys[i] >> 21) == (prefix >> 21)) cand[nc++] = keys[i];
    // Passes 2 and 3 over the candidates only.
    std::fill(hist, hist + 2048, 0u);
    for (int64_t i = 0; i < nc; ++i) ++hist[(cand[i] >> 10) & 2047u];
    prefix |= choose(2048) << 10;
    std::fill(hist, hist + 1024, 0u);
    for (int64_t i = 0; i < nc; ++i)
        if ((cand[i] >> 10) == (prefix >> 10)) ++hist[cand[i] & 1023u];
    const uint32_t thr = prefix | choose(1024);  // the k-th largest key; `need` ties at it go in

    int64_t m = 0, ties = need;
    for (int64_t i = 0; i < n && m < k; ++i) {
        const uint32_t v = keys[i];
        if (v > thr || (v == thr && ties-- > 0)) out[m++] = static_cast<int32_t>(i);
    }
    std::sort(out, out + k, [&](int32_t a, int32_t b) {
        return keys[a] > keys[b] || (keys[a] == keys[b] && a < b);
    });
}

int64_t attn_scratch_bytes(const ModelConfig & cfg, int64_t T, int64_t n_ctx) {
    Carver c(nullptr);
    carve(c, cfg, T, n_ctx);
    return c.used();
}

void attention_forward(const Ctx & ctx, const BlockWeights & bw, LayerKv & kv, const float * x,
                       int64_t start_pos, int64_t T, float * out, uint8_t * scratch) {
    const ModelConfig &      cfg = *ctx.cfg;
    const AttentionWeights & a   = bw.attn;
    const int64_t dim = cfg.dim, hd = cfg.head_dim, rd = cfg.rope_head_dim, H = cfg.n_heads;
    const int64_t ql = cfg.q_lora_rank, G = cfg.o_groups, OL = cfg.o_lora_rank;
    const int64_t W = cfg.window_size, ratio = bw.desc.ratio;
    const int64_t ihd = cfg.index_head_dim, ih = cfg.index_n_heads;
    const float   eps = static_cast<float>(cfg.norm_eps);
    Carver        cv(scratch);
    const Buffers b = carve(cv, cfg, T, kv.n_ctx);

    RopeParams rp = bw.desc.rope;
    if (ctx.num.yarn != Numerics::Yarn::compressed_only) {  // Numerics seam
        rp.yarn   = ctx.num.yarn == Numerics::Yarn::all_layers && cfg.original_seq_len > 0;
        rp.factor = cfg.rope_factor;
        rp.original_seq_len = cfg.original_seq_len;
        rp.beta_fast        = cfg.beta_fast;
        rp.beta_slow        = cfg.beta_slow;
    }
    ref::rope_freqs(b.freqs, rd, static_cast<float>(rp.base), rp.yarn, rp.original_seq_len,
                    static_cast<float>(rp.factor), static_cast<float>(rp.beta_fast),
                    static_cast<float>(rp.beta_slow));

    // ---- 1. batched projections --------------------------------------------------------
    // Products sharing an input run as one parallel region each (run_rows, linear.hpp).
    prep_quant(ctx, b.qa, x, dim, dim, T);
    {
        const RowJob jobs[] = {RowJob::lin8(b.qr, ql, a.wq_a, b.qa, T),
                               RowJob::lin8(b.kv, hd, a.wkv, b.qa, T)};
        run_rows(ctx, jobs, 2);
    }
    for (int64_t t = 0; t < T; ++t) {
        ctx.k->rmsnorm_bf16(b.qr + t * ql, b.qr + t * ql, a.q_norm, ql, eps);
        float * k = b.kv + t * hd;
        ctx.k->rmsnorm_bf16(k, k, a.kv_norm, hd, eps);
        cos_sin_at(b, rd / 2, start_pos + t);
        ctx.k->rope(k, hd, rd, b.cs, b.sn, false);
        ctx.k->fp8sim(k, hd - rd, 64);
    }
    prep_quant(ctx, b.qa, b.qr, ql, ql, T);
    {
        const RowJob jobs[] = {RowJob::lin8(b.q, H * hd, a.wq_b, b.qa, T),
                               RowJob::lin8(b.iq, ih * ihd, a.indexer.wq_b, b.qa, T)};
        run_rows(ctx, jobs, a.has_indexer ? 2 : 1);
    }
    threading::parallel_for(ctx.n_threads, T, 1, [&](int64_t t0, int64_t t1) {
        alignas(64) float lc[kMaxHeadDim / 2], ls[kMaxHeadDim / 2];  // this thread's RoPE table
        for (int64_t t = t0; t < t1; ++t) {
            ref::rope_cos_sin(lc, ls, b.freqs, rd / 2, start_pos + t);
            if (ctx.num.q_norm_bf16)
                ctx.k->q_norm_bf16(b.q + t * H * hd, H, hd, eps);
            else
                for (int64_t h = 0; h < H; ++h) q_head_rms_f32(b.q + (t * H + h) * hd, hd, eps);
            ctx.k->rope_heads(b.q + t * H * hd, H, hd, hd, rd, lc, ls, false);
            if (a.has_indexer) {
                float * iq = b.iq + t * ih * ihd;
                ctx.k->rope_heads(iq, ih, ihd, ihd, rd, lc, ls, false);
                for (int64_t h = 0; h < ih; ++h) {
                    ctx.k->hadamard(iq + h * ihd, ihd);
                    ctx.k->fp4sim(iq + h * ihd, ihd);
                }
            }
        }
    });
    const int64_t coff = ratio == 4 ? 2 : 1;
    {  // the compressors' and the indexer's bf16 products of x, one region
        RowJob jobs[5];
        int    n = 0;
        if (a.has_compressor) {
            const CompressorWeights & c = a.compressor;
            jobs[n++] = RowJob::bf16(b.ca, coff * hd, c.wkv.w, coff * hd, dim, x, dim, T);
            jobs[n++] = RowJob::bf16(b.cg, coff * hd, c.wgate.w, coff * hd, dim, x, dim, T);
        }
        if (a.has_indexer) {
            const CompressorWeights & c = a.indexer.compressor;
            jobs[n++] = RowJob::bf16(b.ia, 2 * ihd, c.wkv.w, 2 * ihd, dim, x, dim, T);
            jobs[n++] = RowJob::bf16(b.ig, 2 * ihd, c.wgate.w, 2 * ihd, dim, x, dim, T);
            jobs[n++] = RowJob::bf16(b.iw, ih, a.indexer.weights_proj.w, ih, dim, x, dim, T);
        }
        run_rows(ctx, jobs, n);
    }
    if (a.has_indexer) {
        const float scale = static_cast<float>(cfg.indexer_scale());
        if (ctx.num.round_index_scores) {
            for (int64_t i = 0; i < T * ih; ++i)
                b.iw[i] = ref::round_bf16(ref::round_bf16(b.iw[i]) * scale);
        } else {
            for (int64_t i = 0; i < T * ih; ++i) b.iw[i] *= scale;
        }
    }

    // ---- 2. token by token: compressors, indexer, window, attention ---------------------
    const float             scale = static_cast<float>(cfg.softmax_scale());
    const kernels::AttnRule rule  = sink_rule(ctx.num);
    for (int64_t t = 0; t < T; ++t) {
        const int64_t p     = start_pos + t;
        int64_t       n_sel = 0;
        // A rollback checkpoint inside this call (KvCheckpoint::arm): the state before p.
        if (kv.capture != nullptr && p == kv.capture_pos) kv.capture->capture_layer(kv);
        if (a.has_indexer) {
            const CompressorWeights & c = a.indexer.compressor;
            float *                   g = b.ig + t * 2 * ihd;
            for (int64_t i = 0; i < 2 * ihd; ++i) g[i] += c.ape[(p % 4) * 2 * ihd + i];
            if (compressor_step(kv.indexer, 4, ihd, p, b.ia + t * 2 * ihd, g, b.pooled)) {
                const int64_t blk = p / 4;
                finalize_block(ctx, c, b, true, blk, b.pooled, kv.index_keys + blk * ihd);
                if (ctx.probe) ctx.probe->compressed(bw.desc.id, true, blk, b.pooled, ihd);
            }
            // Index scores of the complete blocks (spec §3.7 step 4), parallel over blocks.
            const int64_t navail = (p + 1) / 4;
            const float * qi     = b.iq + t * ih * ihd;
            const float * wt     = b.iw + t * ih;
            const bool    round  = ctx.num.round_index_scores;  // false: Numerics seam
            // Chunks from a shared counter (the vCPUs differ in speed, linear.hpp): each score
            // is computed alone, so the chunking does not change any bit.
            threading::parallel_for_dynamic(
                ctx.n_threads, navail, 64, 1024, [&](int64_t c0, int64_t c1) {
                    ctx.k->index_scores(b.scores, qi, wt, kv.index_keys, ih, ihd, c0, c1, round);
                });
            n_sel = std::min<int64_t>(cfg.index_topk, navail);
            topk_desc(b.scores, navail, n_sel, b.sel, b.topk_tmp);
            if (ctx.probe) ctx.probe->indexer_topk(bw.desc.id, p, b.sel, n_sel, b.scores, navail);
        }
        uint16_t * slot = kv.window + (p % W) * hd;
        for (int64_t i = 0; i < hd; ++i) slot[i] = bits(b.kv[t * hd + i]);
        if (a.has_compressor) {
            const CompressorWeights & c = a.compressor;
            float *                   g = b.cg + t * coff * hd;
            for (int64_t i = 0; i < coff * hd; ++i) g[i] += c.ape[(p % ratio) * coff * hd + i];
            if (compressor_step(kv.main, static_cast<int>(ratio), hd, p, b.ca + t * coff * hd, g,
                                b.pooled)) {
                const int64_t blk = p / ratio;
                finalize_block(ctx, c, b, false, blk, b.pooled, kv.comp + blk * hd);
                if (ctx.probe) ctx.probe->compressed(bw.desc.id, false, blk, b.pooled, hd);
            }
        }
        // Index list in the reference's order and widths (prefill: window width min(T, W);
        // decode: W with -1 padding), then the compressed entries.
        int64_t       n     = 0;
        const int64_t width = start_pos == 0 ? std::min(T, W) : W;
        const int64_t base  = std::max<int64_t>(0, p - (W - 1));
        for (int64_t j = 0; j < width; ++j) {
            const int64_t pos = base + j;
            b.rows[n++]       = pos <= p ? kv.window + (pos % W) * hd : nullptr;
        }
        if (ratio == 4) {
            for (int64_t j = 0; j < n_sel; ++j) b.rows[n++] = kv.comp + int64_t(b.sel[j]) * hd;
        } else if (ratio == 128) {
            for (int64_t blk = 0; blk < (p + 1) / 128; ++blk) b.rows[n++] = kv.comp + blk * hd;
        }
        float *       qt = b.q + t * H * hd;
        const int64_t hs = kernels::attn_scratch_floats(hd);
        threading::parallel_for(ctx.n_threads, H, 1, [&](int64_t h0, int64_t h1) {
            // o overwrites q of these heads (the kernel reads each q before writing any output)
            ctx.k->sparse_attn(qt, qt, hd, a.attn_sink, b.rows, n, hd, scale, rule, h0, h1,
                               b.head_acc + h0 * hs);
        });
    }

    // ---- 3. inverse RoPE, grouped output projection --------------------------------------
    for (int64_t t = 0; t < T; ++t) {
        cos_sin_at(b, rd / 2, start_pos + t);
        ctx.k->rope_heads(b.q + t * H * hd, H, hd, hd, rd, b.cs, b.sn, true);
    }
    const int64_t K_oa = cfg.wo_a_in();
    if (ctx.num.round_attn_out && ctx.num.round_wo_a) {
        // Every group's activations prepared at once (group g's T rows from g·T·rb), then one
        // parallel region over all G·OL output rows (lin8_grouped).
        const int64_t rb = kernels::qact_row_bytes(K_oa);
        threading::parallel_for(ctx.n_threads, G * T, 1, [&](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i) {
                const int64_t g = i / T, t = i % T;
                ctx.k->act_plain(b.qa + g * T * rb, b.q + g * K_oa, H * hd, K_oa, t, t + 1);
            }
        });
        lin8_grouped(ctx, b.z, G * OL, a.wo_a, b.qa, G, T);
    } else {
        wo_a_f32(ctx, a.wo_a, b.q, T, b.z, ctx.num.round_wo_a);  // Numerics seam
    }
    prep_quant(ctx, b.qa, b.z, G * OL, G * OL, T);
    lin8_all(ctx, out, dim, a.wo_b, b.qa, T);
}

}  // namespace dsv4::model
