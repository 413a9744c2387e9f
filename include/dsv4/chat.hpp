// DeepSeek-V4 chat encoding: a conversation (OpenAI-style messages) becomes the prompt text the
// model reads, and the text the model writes for one assistant turn becomes a structured message
// again. The rules are those of DeepSeek's reference `encoding/encoding_dsv4.py` (no Jinja
// template exists for V4); docs/chat-encoding.md lists them and the few places where this
// implementation deliberately differs (it rejects inputs the reference would render as Python's
// `None` or a Python repr).
//
// Everything here produces and consumes UTF-8 strings; tokenising the prompt is the tokenizer's
// job. Nothing throws: errors come back as Errc::invalid_argument with a message that names the
// message index and field (encoding) or the byte offset (parsing).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dsv4/export.hpp"
#include "dsv4/status.hpp"

namespace dsv4 {

// The special tokens of the V4 chat format, as text.
namespace chat_tokens {
inline constexpr std::string_view bos             = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view eos             = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view think_start     = "<think>";
inline constexpr std::string_view think_end       = "</think>";
inline constexpr std::string_view dsml            = "｜DSML｜";
inline constexpr std::string_view user            = "<｜User｜>";
inline constexpr std::string_view assistant       = "<｜Assistant｜>";
inline constexpr std::string_view latest_reminder = "<｜latest_reminder｜>";
}  // namespace chat_tokens

// "chat": the assistant turn opens with `</think>` and the model answers directly.
// "thinking": the turn opens with `<think>`; the model writes its reasoning, `</think>`, then the
// answer.
enum class ThinkingMode { chat, thinking };

// `max` prefixes the prompt with DeepSeek's "Reasoning Effort: Absolute maximum …" block (only in
// thinking mode, and only when there are no context messages); `high` and `none` change nothing.
enum class ReasoningEffort { none, high, max };

DSV4_API const char * thinking_mode_name(ThinkingMode mode) noexcept;  // "chat", "thinking"
DSV4_API const char * reasoning_effort_name(
    ReasoningEffort effort) noexcept;  // "none", "high", "max"

// One call of a tool by the assistant (OpenAI `tool_calls[i]`).
struct ToolCall {
    std::string id;    // `id` (or `function.id`); only used to order the tool results that follow
    std::string name;  // `function.name`
    // `function.arguments`: normally the JSON text of an object, rendered as one DSML parameter
    // per key. Text that is not valid JSON becomes a single string parameter named "arguments";
    // valid JSON that is not an object is an error.
    std::string arguments;
    // Set by messages_from_json when `arguments` was a JSON value rather than a string; then
    // `arguments` holds that value's JSON text and it renders, as the reference does, as a single
    // non-string parameter named "arguments".
    bool arguments_is_value = false;
};

// One element of a tool message's content when that content is a list: type "text" renders its
// text, any other type renders as "[Unsupported <type>]".
struct ContentPart {
    std::string type = "text";
    std::string text;
};

// One message of the conversation. `role` is "system", "developer", "user", "assistant", "tool"
// or "latest_reminder" (any other role is an error when it has to be rendered).
struct ChatMessage {
    std::string role;
    std::string content;
    // Tool messages only: a list content (OpenAI content parts). When set, `content` is unused.
    std::optional<std::vector<ContentPart>> content_parts;
    std::string           reasoning_content;  // assistant: the thinking text (without tags)
    std::vector<ToolCall> tool_calls;         // assistant
    std::string           tool_call_id;       // tool: the id of the call this answers
    // system / developer: the tools offered, one JSON text each, either in OpenAI form
    // (`{"type": "function", "function": {...}}`, the `function` object is rendered) or the
    // function schema itself. Key order is kept in the rendered schema.
    std::vector<std::string> tools;
    // system / developer: a JSON value (normally a JSON schema) the reply must follow; empty or a
    // falsy JSON value ({}, "", 0, false, null) means none.
    std::string response_format;
    // Quick-instruction task: "action", "query", "authority", "domain", "title" or "read_url".
    std::optional<std::string> task;
    bool                       wo_eos = false;  // assistant: leave the closing EOS off

    static ChatMessage system(std::string text) { return make("system", std::move(text)); }
    static ChatMessage user(std::string text) { return make("user", std::move(text)); }
    static ChatMessage developer(std::string text) { return make("developer", std::move(text)); }
    static ChatMessage latest_reminder(std::string text) {
        return make("latest_reminder", std::move(text));
    }
    static ChatMessage assistant(std::string text, std::string reasoning = {}) {
        ChatMessage m       = make("assistant", std::move(text));
        m.reasoning_content = std::move(reasoning);
        return m;
    }
    static ChatMessage tool(std::string call_id, std::string text) {
        ChatMessage m  = make("tool", std::move(text));
        m.tool_call_id = std::move(call_id);
        return m;
    }

  private:
    static ChatMessage make(const char * role, std::string text) {
        ChatMessage m;
        m.role    = role;
        m.content = std::move(text);
        return m;
    }
};

struct EncodeOptions {
    ThinkingMode thinking_mode = ThinkingMode::chat;
    // Thinking mode: drop the reasoning of assistant turns before the last user/developer message
    // (and developer messages before it). Forced off when any message carries tools (tools on
    // user and tool messages do not count: the reference drops them when merging).
    bool drop_thinking = true;
    // Start with BOS (only when `context` is empty).
    bool            add_default_bos_token = true;
    ReasoningEffort reasoning_effort      = ReasoningEffort::none;
    // Messages already encoded earlier (a prefix of the conversation): they shape how `messages`
    // render but are not rendered themselves.
    std::vector<ChatMessage> context;
};

// The prompt text for `messages` (the part after `options.context`). In thinking mode the text
// for a conversation that ends with a user turn ends with "<｜Assistant｜><think>".
DSV4_API Result<std::string> encode_messages(const std::vector<ChatMessage> & messages,
                                             const EncodeOptions &            options = {});

// Messages from OpenAI-style JSON: a list of message objects, or an object
// {"messages": [...], "tools": [...]} whose tools are given to messages[0] (the form of DeepSeek's
// test_input_1.json). Fields: role, content (string; a list of parts for tool messages),
// reasoning_content, tool_calls, tool_call_id, tools, response_format, task, wo_eos; others are
// ignored. Field types are checked here, with messages naming the index and field.
DSV4_API Result<std::vector<ChatMessage>> messages_from_json(std::string_view json);

// One assistant turn as written by the model, split into its parts.
struct ParsedCompletion {
    std::string reasoning_content;  // thinking mode: the text before </think>
    std::string content;            // the answer
    // name and arguments; arguments is the JSON object text the reference builds from the DSML
    // parameters: string="true" values are JSON-quoted, other values are inserted as written.
    std::vector<ToolCall> tool_calls;
    // False only when the reference's parser accepts a text that stops inside or right after a
    // tool-call block without the EOS token (see docs/chat-encoding.md); callers that need a
    // finished turn should check it.
    bool ended_with_eos = true;

    ChatMessage to_message() const {
        ChatMessage m = ChatMessage::assistant(content, reasoning_content);
        m.tool_calls  = tool_calls;
        return m;
    }
};

// Parses the completion text of one assistant turn: everything the model wrote after the prompt
// (which ended with "<｜Assistant｜><think>" or "<｜Assistant｜></think>"), including the final
// EOS. Malformed text (missing </think> in thinking mode, no EOS, bad DSML, special tokens inside
// the reasoning or content, …) is an Errc::invalid_argument naming what is wrong and its byte
// offset.
DSV4_API Result<ParsedCompletion> parse_completion(std::string_view text, ThinkingMode mode);

}  // namespace dsv4
