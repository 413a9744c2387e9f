// dsv4-make-model: writes a random-weight DeepSeek-V4 checkpoint in the official format.
//   dsv4-make-model --preset tiny|flash-mini --out DIR [--seed N] [--config FILE]
//                   [--shard-mb N] [--threads N]
// --config takes any config.json instead of a preset.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "model/config.hpp"
#include "model/inventory.hpp"
#include "model/make_model.hpp"

namespace {
int usage() {
    std::fprintf(stderr,
                 "usage: dsv4-make-model (--preset NAME | --config FILE) --out DIR [--seed N]\n"
                 "                       [--shard-mb N] [--threads N]\n"
                 "presets: tiny, flash-mini\n");
    return 2;
}
}  // namespace

int main(int argc, char ** argv) {
    std::string                   preset, config, out;
    dsv4::model::MakeModelOptions opt;
    opt.n_threads    = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    bool shard_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a    = argv[i];
        const char *      next = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--preset" && next)
            preset = argv[++i];
        else if (a == "--config" && next)
            config = argv[++i];
        else if (a == "--out" && next)
            out = argv[++i];
        else if (a == "--seed" && next)
            opt.seed = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--shard-mb" && next) {
            opt.shard_bytes = std::strtoull(argv[++i], nullptr, 10) << 20;
            shard_given     = true;
        } else if (a == "--threads" && next)
            opt.n_threads = std::atoi(argv[++i]);
        else
            return usage();
    }
    if (out.empty() || preset.empty() == config.empty()) return usage();
    dsv4::Result<dsv4::model::ModelConfig> cfg =
        preset.empty() ? dsv4::model::load_config(config) : dsv4::model::preset_config(preset);
    if (!cfg.ok()) {
        std::fprintf(stderr, "dsv4-make-model: %s\n", cfg.status().to_string().c_str());
        return 1;
    }
    if (!shard_given && preset == "tiny") opt.shard_bytes = uint64_t{4} << 20;  // exercise shards
    const auto     inv   = dsv4::model::expected_tensors(*cfg);
    const uint64_t bytes = dsv4::model::payload_bytes(inv);
    std::fprintf(stderr, "writing %zu tensors, %.1f MiB, seed %llu -> %s\n", inv.size(),
                 bytes / 1048576.0, static_cast<unsigned long long>(opt.seed), out.c_str());
    const dsv4::Status st = dsv4::model::write_random_model(*cfg, out, opt);
    if (!st.ok()) {
        std::fprintf(stderr, "dsv4-make-model: %s\n", st.to_string().c_str());
        return 1;
    }
    return 0;
}
