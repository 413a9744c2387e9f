// libFuzzer target for config.json parsing: any byte string must give a ModelConfig or a Status
// (never a crash or sanitizer report), and an accepted config must be safe to use: its layer
// schedule, derived constants, KV sizes and (when small enough) its inventory are computed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/config.hpp"
#include "model/inventory.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string_view text(reinterpret_cast<const char *>(data), size);
    auto                   r = dsv4::model::parse_config(text, "fuzz/config.json");
    if (!r.ok()) {
        if (r.status().message().empty()) __builtin_trap();
        return 0;
    }
    const dsv4::model::ModelConfig & c      = r.value();
    const auto                       layers = c.layers();
    if (layers.size() != static_cast<size_t>(c.n_blocks())) __builtin_trap();
    volatile double sink = c.softmax_scale() + c.indexer_scale() + static_cast<double>(c.wo_a_in());
    sink                 = sink + dsv4::model::kv_cache_bytes_per_token(c);
    sink =
        sink + static_cast<double>(dsv4::model::kv_cache_size(c, int64_t{1} << 20, true).total());
    (void)sink;
    // The inventory grows with blocks x experts; bound the work per input.
    if (static_cast<int64_t>(c.n_blocks()) * c.n_routed_experts <= 4096) {
        const auto inv = dsv4::model::expected_tensors(c);
        if (inv.empty()) __builtin_trap();
        (void)dsv4::model::payload_bytes(inv);
    }
    return 0;
}
