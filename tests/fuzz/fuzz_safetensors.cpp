// libFuzzer target for the safetensors header parser and the index JSON parser: any byte string
// must yield a tensor list or a Status, never a crash, sanitizer report or out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    auto r = dsv4::io::parse_safetensors(data, size, "fuzz.safetensors");
    if (r.ok()) {
        // Touch every tensor's first and last byte: the views must lie inside the input.
        volatile uint8_t sink = 0;
        for (const auto & t : r.value()) {
            if (t.nbytes) sink = static_cast<uint8_t>(sink ^ t.data[0] ^ t.data[t.nbytes - 1]);
            if (t.offset + t.nbytes > size || t.numel() < 0) __builtin_trap();
        }
        (void)sink;
    }
    auto idx = dsv4::io::parse_safetensors_index(data, size, "fuzz.index.json");
    (void)idx;
    return 0;
}
