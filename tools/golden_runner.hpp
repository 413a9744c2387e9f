// Runs every check a golden directory describes (manifest.json + golden.safetensors, the format
// of ../shared/golden): end-to-end logits for prefill, teacher-forced decode, greedy and
// token-by-token ("scratch") runs, the MTP block, and sublayer checks for the recorded layers.
// Shapes, token counts and recorded layers are read from the files, never assumed.
// Used by the dsv4-golden tool and by the golden test.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "dsv4/status.hpp"
#include "dsv4/system.hpp"
#include "kernels/kernel_table.hpp"
#include "model/context.hpp"

namespace dsv4::golden {

struct Check {
    std::string name;
    bool        pass = false;
    std::string detail;       // measured values and tolerances
    double      value = NAN;  // the main measured value (sublayer checks: relative RMS)
};

struct Options {
    CpuArch arch           = CpuArch::automatic;
    int     n_threads      = 1;
    bool    run_scratch    = true;  // the token-by-token run (the slowest part)
    bool    run_end_to_end = true;  // prefill/decode/greedy/MTP runs (false: sublayers only)
    // Test-only seams: run with this kernel table instead of the dispatched one, and/or with
    // near-miss numerics (model/context.hpp) — tests switch single numerics off and expect
    // checks to fail.
    const kernels::KernelTable * table_override = nullptr;
    model::Numerics              numerics{};
};

struct Report {
    std::vector<Check>           checks;
    CpuArch                      arch  = CpuArch::scalar;  // resolved from Options::arch
    const kernels::KernelTable * table = nullptr;          // the table the forward pass ran
};

// Runs the checks; a non-ok Status means the directory could not be used at all.
Result<Report> run(const std::string & dir, const Options & opt);

}  // namespace dsv4::golden
