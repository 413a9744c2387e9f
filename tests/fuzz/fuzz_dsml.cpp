// libFuzzer target for the completion parser: any byte string, in both thinking modes, must give
// a ParsedCompletion or an Errc::invalid_argument with a message (never a crash or sanitizer
// report), and an accepted completion must satisfy the parser's own guarantees.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dsv4/chat.hpp"

namespace {

void check(std::string_view text, dsv4::ThinkingMode mode) {
    auto r = dsv4::parse_completion(text, mode);
    if (!r.ok()) {
        if (r.status().code() != dsv4::Errc::invalid_argument || r.status().message().empty()) {
            __builtin_trap();
        }
        return;
    }
    // No special token survives in the reasoning or the content.
    for (std::string_view sp :
         {dsv4::chat_tokens::bos, dsv4::chat_tokens::eos, dsv4::chat_tokens::think_start,
          dsv4::chat_tokens::think_end, dsv4::chat_tokens::dsml}) {
        if (r->content.find(sp) != std::string::npos ||
            r->reasoning_content.find(sp) != std::string::npos) {
            __builtin_trap();
        }
    }
    if (mode == dsv4::ThinkingMode::chat && !r->reasoning_content.empty()) {
        __builtin_trap();
    }
    // Only a tool-call block may end without EOS.
    if (!r->ended_with_eos && text.find("\n\n<｜DSML｜tool_calls") == std::string_view::npos) {
        __builtin_trap();
    }
    for (const dsv4::ToolCall & tc : r->tool_calls) {
        if (tc.arguments.empty() || tc.arguments.front() != '{' || tc.arguments.back() != '}') {
            __builtin_trap();
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string_view text(reinterpret_cast<const char *>(data), size);
    check(text, dsv4::ThinkingMode::thinking);
    check(text, dsv4::ThinkingMode::chat);
    return 0;
}
