// What every forward-pass module needs: the validated config, the chosen kernel table and the
// thread count. Modules never allocate on the hot path: they take scratch memory sized up
// front by their *_scratch_floats() functions.
#pragma once

#include <cstdint>

#include "kernels/kernel_table.hpp"
#include "model/config.hpp"

namespace dsv4::model {

// Optional observer of intermediate values (tests and dsv4-golden). Every hook has an empty
// default; the forward pass calls them only when a probe is installed.
class ForwardProbe {
  public:
    virtual ~ForwardProbe() = default;
    // A [rows, cols] activation of block `layer` for the tokens of the current call, by name:
    // "block_in" (rows × hc·dim), "attn_in", "attn_out", "ffn_in", "ffn_out", "h_final".
    virtual void tensor(int layer, const char * name, const float * data, int64_t rows,
                        int64_t cols) {
        (void)layer, (void)name, (void)data, (void)rows, (void)cols;
    }
    // A compressed row as stored (bf16 values): main compressor (indexer = false) or the
    // indexer's compressor, block index `block`.
    virtual void compressed(int layer, bool indexer, int64_t block, const float * row, int64_t d) {
        (void)layer, (void)indexer, (void)block, (void)row, (void)d;
    }
    // The indexer's selection for the token at `pos`: block ids in selection order.
    virtual void indexer_topk(int layer, int64_t pos, const int32_t * blocks, int64_t n) {
        (void)layer, (void)pos, (void)blocks, (void)n;
    }
};

struct Ctx {
    const ModelConfig *          cfg       = nullptr;
    const kernels::KernelTable * k         = nullptr;
    int                          n_threads = 1;
    ForwardProbe *               probe     = nullptr;
};

// Activations between modules are fp32 arrays holding bf16 values wherever the reference holds
// bf16 tensors (the "bf16 values" convention of include/dsv4/ref), row-major [T, width].

}  // namespace dsv4::model
