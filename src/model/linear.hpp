// Threaded wrappers around the kernel table's linear kernels: every product of the forward pass
// goes through these, so thread partitioning (static, grain-aligned, deterministic) is decided
// in one place.
#pragma once

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

// y[t·ldy + n] for n in [n0, n1), t < T. Rows are split in multiples of 16 (two 8-row tiles).
inline void lin8_rows(const Ctx & c, float * y, int64_t ldy, const kernels::Fp8Mat & w,
                      const uint8_t * qa, int64_t T, int64_t n0, int64_t n1) {
    threading::parallel_for(c.n_threads, n1 - n0, 16, [&](int64_t a, int64_t b) {
        c.k->lin8(y, ldy, w, qa, T, n0 + a, n0 + b);
    });
}
inline void lin8_all(const Ctx & c, float * y, int64_t ldy, const kernels::Fp8Mat & w,
                     const uint8_t * qa, int64_t T) {
    lin8_rows(c, y, ldy, w, qa, T, 0, w.N);
}

// fp32 y[t·ldy + n] = W_bf16[n] · x_t for all n < N (x holds bf16 values).
inline void gemm_bf16_all(const Ctx & c, float * y, int64_t ldy, const uint16_t * w, int64_t N,
                          int64_t K, const float * x, int64_t ldx, int64_t T) {
    threading::parallel_for(c.n_threads, N, 16, [&](int64_t a, int64_t b) {
        c.k->gemm_bf16(y, ldy, w, K, x, ldx, K, T, a, b);
    });
}

}  // namespace dsv4::model
