// Threaded wrappers around the kernel table's linear kernels: every product of the forward pass
// but the MoE's expert items (moe.cpp) goes through these, so thread partitioning (chunks from a
// shared counter, grain-aligned; results independent of the partition) is decided in one place.
#pragma once

#include <algorithm>
#include <cstdint>

#include "model/context.hpp"
#include "threading/parallel.hpp"

namespace dsv4::model {

// Prepared-activation rows (kernel_table.hpp) for T rows of K bf16 values, quantised (act_quant).
// qa must be 64-byte aligned with T·qact_row_bytes(K) bytes.
inline void prep_quant(const Ctx & c, uint8_t * qa, const float * x, int64_t ldx, int64_t K,
                       int64_t T) {
    threading::parallel_for(c.n_threads, T, 1,
                            [&](int64_t t0, int64_t t1) { c.k->act_quant(qa, x, ldx, K, t0, t1); });
}

// Products are split into chunks of about kChunkBytes of weights, handed to whichever thread is
// free (threading::parallel_for_dynamic: the memory behind a matrix is not equally fast
// everywhere on a VM). A chunk is 4 long weight streams inside the kernel (linear-inl.hpp), so
// it should not be small while much work is left (below ~1 MB the stream start-up shows); the
// last chunks shrink down to 16 rows so the threads finish together. Every row is computed
// alone, so chunk boundaries (multiples of 16 rows) do not change any result.
constexpr int64_t kChunkBytes = int64_t{2} << 20;
inline int64_t    chunk_rows(int64_t row_bytes) {
       return std::max<int64_t>(1, kChunkBytes / std::max<int64_t>(row_bytes, 1));
}

// y[t·ldy + n] for n in [n0, n1), t < T.
inline void lin8_rows(const Ctx & c, float * y, int64_t ldy, const kernels::Fp8Mat & w,
                      const uint8_t * qa, int64_t T, int64_t n0, int64_t n1) {
    threading::parallel_for_dynamic(
        c.n_threads, n1 - n0, 16, chunk_rows(w.K),
        [&](int64_t a, int64_t b) { c.k->lin8(y, ldy, w, qa, T, n0 + a, n0 + b); });
}
inline void lin8_all(const Ctx & c, float * y, int64_t ldy, const kernels::Fp8Mat & w,
                     const uint8_t * qa, int64_t T) {
    lin8_rows(c, y, ldy, w, qa, T, 0, w.N);
}

// A matrix whose N rows form G equal groups, group g multiplying its own T prepared rows
// (qa + g·T·qact_row_bytes(K)): y[t·ldy + n] for all n < N. One parallel region over all rows
// (chunks as lin8_rows), not G short ones with a fork and join each. (V4's wo_a.)
inline void lin8_grouped(const Ctx & c, float * y, int64_t ldy, const kernels::Fp8Mat & w,
                         const uint8_t * qa, int64_t G, int64_t T) {
    const int64_t rows = w.N / G, rb = kernels::qact_row_bytes(w.K);
    threading::parallel_for_dynamic(
        c.n_threads, w.N, 16, chunk_rows(w.K), [&](int64_t n0, int64_t n1) {
            for (int64_t g = n0 / rows; g < G && g * rows < n1; ++g)
                c.k->lin8(y, ldy, w, qa + g * T * rb, T, std::max(n0, g * rows),
                          std::min(n1, (g + 1) * rows));
        });
}

// The same for FP4 weights (lin4); the MoE cuts its expert products into its own work items.
inline void lin4_all(const Ctx & c, float * y, int64_t ldy, const kernels::Fp4Mat & w,
                     const uint8_t * qa, int64_t T) {
    threading::parallel_for_dynamic(
        c.n_threads, w.N, 16, chunk_rows(w.K / 2 + w.K / 32),
        [&](int64_t a, int64_t b) { c.k->lin4(y, ldy, w, qa, T, a, b); });
}

// fp32 y[t·ldy + n] = W_bf16[n] · x_t for all n < N (x holds bf16 values).
inline void gemm_bf16_all(const Ctx & c, float * y, int64_t ldy, const uint16_t * w, int64_t N,
                          int64_t K, const float * x, int64_t ldx, int64_t T) {
    threading::parallel_for_dynamic(
        c.n_threads, N, 16, chunk_rows(2 * K),
        [&](int64_t a, int64_t b) { c.k->gemm_bf16(y, ldy, w, K, x, ldx, K, T, a, b); });
}

// One product of a fused group (run_rows): y[t·ldy + n] for its N output rows, either FP8
// weights × prepared activations (lin8) or bf16 weights × bf16-valued fp32 x (gemm_bf16).
struct RowJob {
    float *                 y   = nullptr;
    int64_t                 ldy = 0, N = 0, T = 0;
    const kernels::Fp8Mat * w8  = nullptr;  // lin8 when set
    const uint8_t *         qa  = nullptr;
    const uint16_t *        wb  = nullptr;  // gemm_bf16 otherwise
    const float *           x   = nullptr;
    int64_t                 ldx = 0, K = 0;

    static RowJob lin8(float * y, int64_t ldy, const kernels::Fp8Mat & w, const uint8_t * qa,
                       int64_t T) {
        RowJob j;
        j.y = y, j.ldy = ldy, j.N = w.N, j.T = T, j.w8 = &w, j.qa = qa;
        return j;
    }
    static RowJob bf16(float * y, int64_t ldy, const uint16_t * w, int64_t N, int64_t K,
                       const float * x, int64_t ldx, int64_t T) {
        RowJob j;
        j.y = y, j.ldy = ldy, j.N = N, j.T = T, j.wb = w, j.x = x, j.ldx = ldx, j.K = K;
        return j;
    }
};

// Independent products in ONE parallel region: the output rows of all jobs, concatenated, are
// cut into chunks (as lin8_rows, sized by the widest row) and each chunk runs its part of every
// job it overlaps, in order. For decode this replaces several short regions — each a fork, a
// join and a cold start of the weight streams — by one. Each output row is still computed
// whole by one call with the same kernel, so the results do not depend on the grouping.
inline void run_rows(const Ctx & c, const RowJob * jobs, int n_jobs) {
    int64_t total = 0, row_bytes = 1;
    for (int i = 0; i < n_jobs; ++i) {
        total += jobs[i].N;
        row_bytes = std::max(row_bytes, jobs[i].w8 ? jobs[i].w8->K : 2 * jobs[i].K);
    }
    threading::parallel_for_dynamic(
        c.n_threads, total, 16, chunk_rows(row_bytes), [&](int64_t a, int64_t b) {
            int64_t off = 0;
            for (int i = 0; i < n_jobs; ++i) {
                const RowJob & j  = jobs[i];
                const int64_t  n0 = std::max<int64_t>(a - off, 0),
                              n1  = std::min<int64_t>(b - off, j.N);
                if (n0 < n1) {
                    if (j.w8)
                        c.k->lin8(j.y, j.ldy, *j.w8, j.qa, j.T, n0, n1);
                    else
                        c.k->gemm_bf16(j.y, j.ldy, j.wb, j.K, j.x, j.ldx, j.K, j.T, n0, n1);
                }
                off += j.N;
            }
        });
}

}  // namespace dsv4::model
