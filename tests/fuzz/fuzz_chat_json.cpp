// libFuzzer target for messages_from_json + encode_messages and the Python-compatible JSON
// layer: any byte string must give messages or a Status (never a crash or sanitizer report);
// accepted messages must encode (or fail with a Status) under several option sets; and any
// JSON that parses must dump to text that parses back and dumps identically.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "chat/json_value.hpp"
#include "dsv4/chat.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string_view text(reinterpret_cast<const char *>(data), size);

    // The JSON layer: dump(parse(x)) is a fixed point.
    auto v = dsv4::chat::parse_json(text, "fuzz");
    if (v.ok()) {
        const std::string once  = dsv4::chat::dump_json(*v);
        auto              again = dsv4::chat::parse_json(once, "fuzz-dump");
        if (!again.ok() || dsv4::chat::dump_json(*again) != once) {
            __builtin_trap();
        }
    } else if (v.status().message().empty()) {
        __builtin_trap();
    }

    auto msgs = dsv4::messages_from_json(text);
    if (!msgs.ok()) {
        if (msgs.status().message().empty()) __builtin_trap();
        return 0;
    }
    for (int variant = 0; variant < 4; ++variant) {
        dsv4::EncodeOptions opt;
        opt.thinking_mode = (variant & 1) ? dsv4::ThinkingMode::thinking : dsv4::ThinkingMode::chat;
        opt.drop_thinking = variant != 3;
        opt.reasoning_effort =
            variant == 1 ? dsv4::ReasoningEffort::max : dsv4::ReasoningEffort::none;
        if (variant == 2 && msgs->size() > 1) {
            // Half of the conversation as context.
            opt.context.assign(msgs->begin(), msgs->begin() + static_cast<long>(msgs->size() / 2));
            const std::vector<dsv4::ChatMessage> rest(
                msgs->begin() + static_cast<long>(msgs->size() / 2), msgs->end());
            auto r = dsv4::encode_messages(rest, opt);
            if (!r.ok() && r.status().message().empty()) __builtin_trap();
            continue;
        }
        auto r = dsv4::encode_messages(*msgs, opt);
        if (!r.ok()) {
            if (r.status().code() != dsv4::Errc::invalid_argument) __builtin_trap();
            continue;
        }
        // With BOS on and no context the prompt starts with BOS.
        if (r->rfind(dsv4::chat_tokens::bos, 0) != 0) __builtin_trap();
    }
    return 0;
}
