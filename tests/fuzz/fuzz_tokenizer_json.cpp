// libFuzzer target for the tokenizer.json loader: any byte string must give a Tokenizer or a
// Status with a message (never a crash or sanitizer report), and an accepted tokenizer must be
// safe to use: it encodes a fixed mixed-script text and decodes the ids back.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dsv4/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string_view text(reinterpret_cast<const char *>(data), size);
    auto                   r = dsv4::Tokenizer::from_json(text, "fuzz/tokenizer.json");
    if (!r.ok()) {
        if (r.status().message().empty()) __builtin_trap();
        return 0;
    }
    const dsv4::Tokenizer & t = r.value();
    auto ids = t.encode("Hello, world!  12345 \xE4\xBD\xA0\xE5\xA5\xBD\r\n\tx\xFF");
    if (ids.ok()) {
        auto back = t.decode(*ids);
        if (!back.ok()) __builtin_trap();  // encode only produces valid ids
    }
    (void)t.decode(std::vector<int32_t>{0, 1, -1, t.vocab_size()});
    (void)t.token_id("<unk>");
    return 0;
}
