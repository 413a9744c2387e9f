// MoE feed-forward (spec §3.10; the official model.py Gate / Expert / MoE classes, current
// revision: the shared expert clamps too).
//
// Stages of one call (T tokens, k = n_activated_experts, E = n_routed_experts):
//   1. gate logits z = W_gate · x (gemm_bf16, fp32) and the FP8 activation rows of x (act_quant,
//      once for all experts and the shared expert);
//   2. scores, selection, weights; the routing as "slots": slot s is one (expert, token) pair,
//      ordered by expert ascending, then token ascending (torch.where's order). The shared
//      expert is a last "group" whose slots are all T tokens;
//   3. [parallel] per (group, block of w1/w3 output rows): gate/up products for the group's
//      tokens, then the clamped SwiGLU × routing weight and the bf16 rounding of those elements;
//   4. [parallel] act_quant of every slot's bf16(h) row;
//   5. [parallel] per (group, block of w2 output rows): the w2 products;
//   6. [parallel over columns] y = Σ_e out_e (expert ascending) + shared, out = bf16(y).
// Every output element is computed by exactly one thread with a computation that does not
// depend on which rows/tokens share its kernel call, so results do not depend on the thread
// count or on timing (see split_rows; items go to free threads, each item to exactly one).
#include "model/moe.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "dsv4/ref/formats.hpp"
#include "model/linear.hpp"
#include "model/scratch.hpp"
#include "threading/parallel.hpp"
#include "util/assert.hpp"

namespace dsv4::model {
namespace {

using kernels::qact_row_bytes;

constexpr int64_t kRowQuantum     = 16;  // row blocks of the expert products: multiples of this
constexpr int64_t kItemsPerThread = 8;   // work items per thread and stage (load balance)

// One routed expert with at least one token, or the shared expert (expert == -1).
struct Group {
    int32_t         expert = -1;
    int64_t         slot0  = 0;        // first row in the per-slot buffers
    int64_t         ntok   = 0;        // tokens (= consecutive slots)
    const uint8_t * qa     = nullptr;  // ntok prepared rows of x, contiguous
    int64_t         rows_a = 0;        // w1/w3 output rows per work item
    int64_t         rows_c = 0;        // w2 output rows per work item
};

// The scratch arrays of one call for T tokens, carved in this order (model/scratch.hpp).
struct Buffers {
    float *   scores;    // [T, E] gate logits, then scores
    float *   biased;    // [T, E] scores + bias (non-hash blocks)
    uint8_t * mask;      // [E] top-k selection marks
    int32_t * ids;       // [T, k] selected experts
    float *   wts;       // [T, k] routing weights
    int64_t * count;     // [E + 1] slot counts, then offsets
    int32_t * slot_tok;  // [T·k] token of each routed slot
    float *   slot_w;    // [T·k] routing weight of each routed slot
    Group *   groups;    // [E + 1] active experts, then the shared expert
    int64_t * pref_a;    // [E + 2] work-item prefix sums, w1/w3 stage
    int64_t * pref_c;    // [E + 2] work-item prefix sums, w2 stage
    uint8_t * qx;        // [T] prepared rows of x (dim)
    uint8_t * qg;        // [T·k] gathered prepared rows of x (T > 1 only)
    float *   G;         // [T·k + T, inter] w1 outputs, then bf16(h)
    float *   U;         // [T·k + T, inter] w3 outputs (stage 3 only)
    uint8_t * qh;        // [T·k + T] prepared rows of bf16(h) (inter)
    float *   O;         // [T·k + T, dim] w2 outputs (stage 5 on): shares U's memory
};

Buffers carve(Carver & c, const ModelConfig & cfg, int64_t T) {
    const int64_t E = cfg.n_routed_experts, k = cfg.n_activated_experts;
    const int64_t D = cfg.dim, I = cfg.moe_inter_dim;
    const int64_t slots = T * k;      // routed (expert, token) pairs: exactly k per token
    const int64_t rows  = slots + T;  // + the shared expert's T rows
    Buffers       b{};
    b.scores   = c.take<float>(T * E);
    b.biased   = c.take<float>(T * E);
    b.mask     = c.take<uint8_t>(E);
    b.ids      = c.take<int32_t>(slots);
    b.wts      = c.take<float>(slots);
    b.count    = c.take<int64_t>(E + 1);
    b.slot_tok = c.take<int32_t>(slots);
    b.slot_w   = c.take<float>(slots);
    b.groups   = c.take<Group>(E + 1);
    b.pref_a   = c.take<int64_t>(E + 2);
    b.pref_c   = c.take<int64_t>(E + 2);
    b.qx       = c.take<uint8_t>(T * qact_row_bytes(D));
    b.qg       = c.take<uint8_t>(T > 1 ? slots * qact_row_bytes(D) : 0);
    b.G        = c.take<float>(rows * I);
    b.qh       = c.take<uint8_t>(rows * qact_row_bytes(I));
    b.U        = c.take<float>(rows * std::max(I, D));
    b.O        = b.U;
    return b;
}

// Selection (non-hash blocks): the k largest biased scores, in descending order (torch.topk's
// sorted output). Exact ties go to the lower expert index (strict '>' in an ascending scan);
// the GPU's tie order is unspecified (spec §8.2). A NaN score is never preferred over a number.
void select_topk(const float * b, int64_t E, int64_t k, uint8_t * mask, int32_t * ids) {
    std::memset(mask, 0, static_cast<size_t>(E));
    for (int64_t j = 0; j < k; ++j) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; ++e) {
            if (mask[e]) continue;
            if (best < 0 || b[e] > b[best] || (std::isnan(b[best]) && !std::isnan(b[e]))) best = e;
        }
        mask[best] = 1;
        ids[j]     = static_cast<int32_t>(best);
    }
}

// Rows per work item for a product with N output rows whose per-row cost is `row_cost`, so that
// items cost about `target` each: the nearest whole number of items, of equal size (a multiple
// of kRowQuantum; the last item takes the remainder, or all N rows). Equal items: a rounded-up
// item size would leave a sliver item (e.g. 976 + 976 + 96 rows) whose weight streams are too
// short to reach full speed.
int64_t split_rows(int64_t N, double row_cost, double target) {
    if (!(target > 0.0) || row_cost <= 0.0 || N <= kRowQuantum) return N;
    const double want =
        std::min(static_cast<double>(N) * row_cost / target, static_cast<double>(N));
    const int64_t items = std::clamp<int64_t>(std::llround(want), 1, N / kRowQuantum);
    int64_t       r     = (N + items - 1) / items;
    r                   = (r + kRowQuantum - 1) / kRowQuantum * kRowQuantum;
    return std::min(r, N);
}

// Heuristic cost of one output row of a product with K inputs over ntok tokens: the weight
// bytes (read once per row, the decode bottleneck) plus the multiply-adds (the kernels reuse a
// decoded row for up to 4 tokens, so ~K/4 per token relative to the weight decode).
double row_cost(int64_t K, int64_t ntok, bool fp8) {
    const double wbytes = fp8 ? static_cast<double>(K) : static_cast<double>(K) / 2.0 + K / 32.0;
    return wbytes + static_cast<double>(K) * static_cast<double>(ntok) / 4.0;
}

}  // namespace

int64_t moe_scratch_bytes(const ModelConfig & cfg, int64_t T) {
    Carver c(nullptr);
    carve(c, cfg, std::max<int64_t>(T, 1));
    return c.used();
}

void moe_forward(const Ctx & ctx, const BlockWeights & b, const float * x, const int32_t * tokens,
                 int64_t T, float * out, uint8_t * scratch, const MoeTrace * trace) {
    if (T <= 0) return;
    const ModelConfig &          cfg = *ctx.cfg;
    const kernels::KernelTable & kt  = *ctx.k;
    const MoeWeights &           w   = b.ffn;
    const int64_t                E = cfg.n_routed_experts, k = cfg.n_activated_experts;
    const int64_t                D = cfg.dim, I = cfg.moe_inter_dim;
    const int64_t                rbD = qact_row_bytes(D), rbI = qact_row_bytes(I);
    const int                    nt          = std::max(ctx.n_threads, 1);
    const float                  limit       = static_cast<float>(cfg.swiglu_limit);
    const float                  route_scale = static_cast<float>(cfg.route_scale);
    DSV4_DASSERT(static_cast<int64_t>(w.experts.size()) == E);
    DSV4_DASSERT(w.gate.rows == E && w.gate.cols == D);
    DSV4_DASSERT(reinterpret_cast<uintptr_t>(scratch) % 64 == 0);

    Carver        carver(scratch);
    const Buffers bf       = carve(carver, cfg, T);
    float *       scores   = bf.scores;
    float *       biased   = bf.biased;
    uint8_t *     mask     = bf.mask;
    int32_t *     ids      = bf.ids;
    float *       wts      = bf.wts;
    int64_t *     count    = bf.count;
    int32_t *     slot_tok = bf.slot_tok;
    float *       slot_w   = bf.slot_w;
    Group *       groups   = bf.groups;
    int64_t *     pref_a   = bf.pref_a;
    int64_t *     pref_c   = bf.pref_c;
    uint8_t *     qx       = bf.qx;
    uint8_t *     qg       = bf.qg;
    float *       G        = bf.G;
    float *       U        = bf.U;
    uint8_t *     qh       = bf.qh;
    float *       O        = bf.O;
    const int64_t slots    = T * k;
    const int64_t rows     = slots + T;

    // ---- 1. gate logits (fp32 GEMM of bf16 x with the upcast bf16 weight) and FP8 rows of x --
    gemm_bf16_all(ctx, scores, E, w.gate.w, E, D, x, D, T);
    prep_quant(ctx, qx, x, D, D, T);

    // ---- 2. scores, selection, weights ------------------------------------------------------
    for (int64_t t = 0; t < T; ++t) {
        float * s = scores + t * E;
        switch (cfg.score_func) {
            case ScoreFunc::softmax: kt.softmax(s, E); break;
            case ScoreFunc::sigmoid:
                for (int64_t e = 0; e < E; ++e) {
                    const float den = 1.0f + std::exp(-s[e]);
                    s[e]            = 1.0f / den;
                }
                break;
            case ScoreFunc::sqrtsoftplus: kt.sqrt_softplus(s, s, E); break;
        }
        int32_t * id = ids + t * k;
        if (b.desc.hash) {
            DSV4_DASSERT(tokens != nullptr && tokens[t] >= 0 && tokens[t] < cfg.vocab_size);
            const int32_t * row = w.tid2eid + static_cast<int64_t>(tokens[t]) * k;
            for (int64_t j = 0; j < k; ++j) id[j] = row[j];
        } else {
            float * bs = biased + t * E;
            for (int64_t e = 0; e < E; ++e) bs[e] = s[e] + w.gate_bias[e];
            select_topk(bs, E, k, mask, id);
            if (trace && trace->biased_scores)
                std::memcpy(trace->biased_scores + t * E, bs, static_cast<size_t>(E) * 4);
        }
        // Weights from the un-biased scores; normalised by their sum (ascending j) unless the
        // scores are a softmax; then times route_scale (fp32, as torch's in-place ops).
        float *       wt  = wts + t * k;
        const float * src = s;
        if (!ctx.num.gate_weights_unbiased && !b.desc.hash) src = biased + t * E;  // seam
        float sum = 0.0f;
        for (int64_t j = 0; j < k; ++j) {
            wt[j] = src[id[j]];
            sum += wt[j];
        }
        for (int64_t j = 0; j < k; ++j) {
            if (cfg.score_func != ScoreFunc::softmax) wt[j] = wt[j] / sum;
            wt[j] = wt[j] * route_scale;
        }
    }
    if (trace && trace->indices)
        std::memcpy(trace->indices, ids, static_cast<size_t>(slots) * sizeof(int32_t));
    if (trace && trace->weights)
        std::memcpy(trace->weights, wts, static_cast<size_t>(slots) * sizeof(float));
    if (ctx.probe) ctx.probe->routing(b.desc.id, ids, wts, T, k, b.desc.hash ? nullptr : biased, E);

    // Slots: expert ascending, then token ascending. count[e] becomes the first slot of e.
    std::fill(count, count + E + 1, int64_t{0});
    for (int64_t i = 0; i < slots; ++i) ++count[ids[i] + 1];
    for (int64_t e = 0; e < E; ++e) count[e + 1] += count[e];
    int64_t ng = 0;
    for (int64_t e = 0; e < E; ++e) {
        const int64_t n = count[e + 1] - count[e];
        if (n == 0) continue;
        Group & g = *new (groups + ng++) Group{};
        g.expert  = static_cast<int32_t>(e);
        g.slot0   = count[e];
        g.ntok    = n;
    }
    for (int64_t t = 0; t < T; ++t) {  // fill in token order: ascending within each expert
        for (int64_t j = 0; j < k; ++j) {
            const int64_t s = count[ids[t * k + j]]++;
            slot_tok[s]     = static_cast<int32_t>(t);
            slot_w[s]       = wts[t * k + j];
        }
    }
    // Prepared x rows per group: in place when its tokens are consecutive (always for T = 1),
    // else gathered (the rows are per token, so a copy is exact).
    bool any_gather = false;
    for (int64_t i = 0; i < ng; ++i) {
        Group &       g  = groups[i];
        const int32_t t0 = slot_tok[g.slot0];
        if (slot_tok[g.slot0 + g.ntok - 1] - t0 == g.ntok - 1) {
            g.qa = qx + t0 * rbD;
        } else {
            g.qa       = qg + g.slot0 * rbD;
            any_gather = true;
        }
    }
    {
        Group & g = *new (groups + ng++) Group{};  // the shared expert: all T tokens
        g.expert  = -1;
        g.slot0   = slots;
        g.ntok    = T;
        g.qa      = qx;
    }
    if (any_gather) {
        threading::parallel_for(nt, slots, 16, [&](int64_t s0, int64_t s1) {
            for (int64_t s = s0; s < s1; ++s)
                std::memcpy(qg + s * rbD, qx + slot_tok[s] * rbD, static_cast<size_t>(rbD));
        });
    }

    // Work items: each group's products split into row blocks of about equal cost, handed to
    // whichever thread is free (parallel_for_dynamic: equal cost is not equal time on a VM).
    double cost_a = 0.0, cost_c = 0.0;
    for (int64_t i = 0; i < ng; ++i) {
        const bool fp8 = groups[i].expert < 0;
        cost_a += row_cost(D, groups[i].ntok, fp8) * static_cast<double>(I);
        cost_c += row_cost(I, groups[i].ntok, fp8) * static_cast<double>(D);
    }
    const double parts    = nt > 1 ? static_cast<double>(nt * kItemsPerThread) : 0.0;
    const double target_a = parts > 0 ? cost_a / parts : 0.0;
    const double target_c = parts > 0 ? cost_c / parts : 0.0;
    pref_a[0] = pref_c[0] = 0;
    for (int64_t i = 0; i < ng; ++i) {
        Group &    g   = groups[i];
        const bool fp8 = g.expert < 0;
        g.rows_a       = split_rows(I, row_cost(D, g.ntok, fp8), target_a);
        g.rows_c       = split_rows(D, row_cost(I, g.ntok, fp8), target_c);
        pref_a[i + 1]  = pref_a[i] + (I + g.rows_a - 1) / g.rows_a;
        pref_c[i + 1]  = pref_c[i] + (D + g.rows_c - 1) / g.rows_c;
    }
    const auto group_of = [&](const int64_t * pref, int64_t item) {
        return static_cast<int64_t>(std::upper_bound(pref, pref + ng + 1, item) - pref) - 1;
    };

    // ---- 3. w1/w3 products, clamped SwiGLU × routing weight, bf16(h) -------------------------
    using Clamp              = Numerics::Clamp;
    const Clamp clamp        = ctx.num.swiglu_clamp;
    const bool  weight_early = ctx.num.route_weight_before_w2;
    threading::parallel_for_dynamic(nt, pref_a[ng], 1, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t item = i0; item < i1; ++item) {
            const int64_t gi = group_of(pref_a, item);
            const Group & g  = groups[gi];
            const int64_t n0 = (item - pref_a[gi]) * g.rows_a;
            const int64_t n1 = std::min(I, n0 + g.rows_a);
            float *       gy = G + g.slot0 * I;
            float *       uy = U + g.slot0 * I;
            if (g.expert < 0) {
                kt.lin8(gy, I, w.shared_w1, g.qa, g.ntok, n0, n1);
                kt.lin8(uy, I, w.shared_w3, g.qa, g.ntok, n0, n1);
            } else {
                const ExpertWeights & ew = w.experts[static_cast<size_t>(g.expert)];
                kt.lin4(gy, I, ew.w1, g.qa, g.ntok, n0, n1);
                kt.lin4(uy, I, ew.w3, g.qa, g.ntok, n0, n1);
            }
            for (int64_t t = 0; t < g.ntok; ++t) {
                float *     h  = gy + t * I + n0;
                float *     u  = uy + t * I + n0;
                const float wt = g.expert < 0 || !weight_early ? 1.0f : slot_w[g.slot0 + t];
                if (clamp == Clamp::faithful) {
                    kt.swiglu(h, h, u, n1 - n0, limit, wt);
                } else {  // Numerics seam: the clamp done here, the kernel's switched off
                    const bool none =
                        clamp == Clamp::none || (clamp == Clamp::shared_unclamped && g.expert < 0);
                    if (clamp == Clamp::sides_swapped && limit > 0.0f) {
                        for (int64_t n = 0; n < n1 - n0; ++n) {
                            h[n] = std::clamp(h[n], -limit, limit);
                            u[n] = std::min(u[n], limit);
                        }
                    }
                    kt.swiglu(h, h, u, n1 - n0,
                              none || clamp == Clamp::sides_swapped ? 0.0f : limit, wt);
                }
                for (int64_t n = 0; n < n1 - n0; ++n) h[n] = ref::round_bf16(h[n]);
            }
        }
    });

    // ---- 4. FP8 rows of bf16(h) for w2 ------------------------------------------------------
    threading::parallel_for(nt, rows, 1,
                            [&](int64_t r0, int64_t r1) { kt.act_quant(qh, G, I, I, r0, r1); });

    // ---- 5. w2 products -------------------------------------------------------------------
    threading::parallel_for_dynamic(nt, pref_c[ng], 1, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t item = i0; item < i1; ++item) {
            const int64_t   gi = group_of(pref_c, item);
            const Group &   g  = groups[gi];
            const int64_t   n0 = (item - pref_c[gi]) * g.rows_c;
            const int64_t   n1 = std::min(D, n0 + g.rows_c);
            float *         oy = O + g.slot0 * D;
            const uint8_t * qa = qh + g.slot0 * rbI;
            if (g.expert < 0) {
                kt.lin8(oy, D, w.shared_w2, qa, g.ntok, n0, n1);
            } else {
                kt.lin4(oy, D, w.experts[static_cast<size_t>(g.expert)].w2, qa, g.ntok, n0, n1);
            }
        }
    });

    // ---- 6. y = 0; y[t] += out_e[t] (e ascending); y += shared; out = bf16(y) ----------------
    threading::parallel_for(nt, D, 64, [&](int64_t c0, int64_t c1) {
        for (int64_t t = 0; t < T; ++t) std::fill(out + t * D + c0, out + t * D + c1, 0.0f);
        for (int64_t s = 0; s < slots; ++s) {
            float *       y = out + static_cast<int64_t>(slot_tok[s]) * D;
            const float * o = O + s * D;
            if (weight_early) {
                for (int64_t c = c0; c < c1; ++c) y[c] += o[c];
            } else {  // Numerics seam: the routing weight on w2's output
                for (int64_t c = c0; c < c1; ++c) y[c] += slot_w[s] * o[c];
            }
        }
        for (int64_t t = 0; t < T; ++t) {
            float *       y = out + t * D;
            const float * o = O + (slots + t) * D;
            for (int64_t c = c0; c < c1; ++c) y[c] = ref::round_bf16(y[c] + o[c]);
        }
    });
}

}  // namespace dsv4::model
