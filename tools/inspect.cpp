// dsv4-inspect: loads and validates a checkpoint directory and prints what it holds.
//   dsv4-inspect DIR [--verify] [--no-mmap]
// Prints the config summary, tensor count, payload bytes by dtype, the memory needed to load,
// and KV-cache bytes per context token. --verify reads every byte and counts NaN/Inf codes.
// Exit status: 0 ok; 1 invalid checkpoint (the error names the file and tensor or key);
// 2 usage; 3 --verify found non-finite values.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "io/safetensors.hpp"
#include "model/config.hpp"
#include "model/inventory.hpp"
#include "model/weights.hpp"

namespace {
double mib(uint64_t b) {
    return static_cast<double>(b) / 1048576.0;
}
}  // namespace

int main(int argc, char ** argv) {
    std::string dir;
    bool        verify = false, use_mmap = true;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--verify")
            verify = true;
        else if (a == "--no-mmap")
            use_mmap = false;
        else if (!a.empty() && a[0] != '-' && dir.empty())
            dir = a;
        else {
            std::fprintf(stderr, "usage: dsv4-inspect DIR [--verify] [--no-mmap]\n");
            return 2;
        }
    }
    if (dir.empty()) {
        std::fprintf(stderr, "usage: dsv4-inspect DIR [--verify] [--no-mmap]\n");
        return 2;
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto cfg      = dsv4::model::load_config((std::filesystem::path(dir) / "config.json").string());
    if (!cfg.ok()) {
        std::fprintf(stderr, "dsv4-inspect: %s\n", cfg.status().to_string().c_str());
        return 1;
    }
    auto store = dsv4::io::TensorStore::open_dir(dir, use_mmap);
    if (!store.ok()) {
        std::fprintf(stderr, "dsv4-inspect: %s\n", store.status().to_string().c_str());
        return 1;
    }
    dsv4::detail::Logger log([](dsv4::LogLevel, std::string_view m) {
        std::fprintf(stderr, "dsv4-inspect: warning: %.*s\n", static_cast<int>(m.size()), m.data());
    });
    auto                 weights = dsv4::model::bind_weights(*cfg, *store, log);
    if (!weights.ok()) {
        std::fprintf(stderr, "dsv4-inspect: %s\n", weights.status().to_string().c_str());
        return 1;
    }
    const double load_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

    const dsv4::model::ModelConfig & c     = *cfg;
    int                              n_swa = 0, n_csa = 0, n_hca = 0;
    for (int l = 0; l < c.n_layers; ++l) {
        const auto k = c.attn_kind(l);
        n_swa += k == dsv4::model::AttnKind::swa;
        n_csa += k == dsv4::model::AttnKind::csa;
        n_hca += k == dsv4::model::AttnKind::hca;
    }
    std::printf("checkpoint   %s\n", dir.c_str());
    std::printf(
        "model        dim %d, %d layers (%d SWA, %d CSA, %d HCA; %d hash-routed) + %d MTP\n", c.dim,
        c.n_layers, n_swa, n_csa, n_hca, c.n_hash_layers, c.n_mtp_layers);
    std::printf(
        "attention    %d heads x %d (rope %d), q_lora %d, %d x %d output groups, window %d\n",
        c.n_heads, c.head_dim, c.rope_head_dim, c.q_lora_rank, c.o_groups, c.o_lora_rank,
        c.window_size);
    std::printf("indexer      %d heads x %d, top-k %d\n", c.index_n_heads, c.index_head_dim,
                c.index_topk);
    std::printf("moe          %d routed experts (top %d, %s, scale %g) + %d shared, width %d\n",
                c.n_routed_experts, c.n_activated_experts,
                dsv4::model::score_func_name(c.score_func), c.route_scale, c.n_shared_experts,
                c.moe_inter_dim);
    std::printf("vocab        %d (bos %d, eos %d)\n", c.vocab_size, c.bos_token_id,
                c.eos_token_id());

    std::map<std::string, std::pair<uint64_t, uint64_t>> by_dtype;  // count, bytes
    for (const auto & t : store->tensors()) {
        auto & e = by_dtype[dsv4::io::dtype_name(t.dtype)];
        e.first += 1;
        e.second += t.nbytes;
    }
    std::printf("tensors      %zu in %zu file(s), payload %.1f MiB (%llu bytes)\n",
                store->tensors().size(), store->file_count(), mib(store->payload_bytes()),
                static_cast<unsigned long long>(store->payload_bytes()));
    for (const auto & [name, e] : by_dtype)
        std::printf("  %-9s %8llu tensors %12.1f MiB\n", name.c_str(),
                    static_cast<unsigned long long>(e.first), mib(e.second));
    std::printf("memory       %.1f MiB %s in place + %.1f MiB converted at load\n",
                mib(weights->mapped_bytes), use_mmap ? "mapped" : "read",
                mib(weights->copied_bytes));
    const auto fixed = dsv4::model::kv_cache_size(c, 0, true);
    std::printf(
        "kv cache     %.1f bytes per context token + %.1f MiB per session (window, "
        "compressor state)\n",
        dsv4::model::kv_cache_bytes_per_token(c), mib(fixed.total()));
    std::printf("load         %.1f ms (parse, map, validate, bind)\n", load_ms);

    if (verify) {
        const auto r = dsv4::model::verify_tensors(*store);
        std::printf(
            "verify       %.1f MiB read (checksum %016llx): %llu NaN scale codes, %llu NaN "
            "e4m3 codes, %llu non-finite f32, %llu non-finite bf16\n",
            mib(r.bytes_scanned), static_cast<unsigned long long>(r.checksum),
            static_cast<unsigned long long>(r.nan_scale_codes),
            static_cast<unsigned long long>(r.nan_e4m3_codes),
            static_cast<unsigned long long>(r.nonfinite_f32),
            static_cast<unsigned long long>(r.nonfinite_bf16));
        for (const auto & name : r.offenders)
            std::printf("  non-finite values in %s\n", name.c_str());
        if (!r.offenders.empty()) return 3;
    }
    return 0;
}
