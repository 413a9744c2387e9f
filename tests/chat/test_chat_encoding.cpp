// encode_messages() and messages_from_json(): DeepSeek's four official gold pairs byte for byte,
// then one case per rule of the V4 chat format (docs/v4-spec.md §6.2 / encoding_dsv4.py). The
// expected strings of the rule cases were written by hand from the rules (and agree with the
// official Python, which was run on the same inputs while writing them).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "chat/chat_test_util.hpp"
#include "dsv4/chat.hpp"

using dsv4::ChatMessage;
using dsv4::EncodeOptions;
using dsv4::ReasoningEffort;
using dsv4::ThinkingMode;
using dsv4::ToolCall;
using namespace dsv4::test;

namespace {

std::string encode_json(const std::string & json, EncodeOptions opt = {}) {
    auto msgs = dsv4::messages_from_json(json);
    INFO("messages_from_json: " << msgs.status().to_string());
    REQUIRE(msgs.ok());
    auto out = dsv4::encode_messages(*msgs, opt);
    INFO("encode_messages: " << out.status().to_string());
    REQUIRE(out.ok());
    return *out;
}

dsv4::Status encode_error(const std::string & json, EncodeOptions opt = {}) {
    auto msgs = dsv4::messages_from_json(json);
    if (!msgs.ok()) {
        return msgs.status();
    }
    auto out = dsv4::encode_messages(*msgs, opt);
    INFO("unexpected success: " << (out.ok() ? *out : std::string()));
    REQUIRE_FALSE(out.ok());
    return out.status();
}

EncodeOptions thinking() {
    EncodeOptions o;
    o.thinking_mode = ThinkingMode::thinking;
    return o;
}

// The tools section of the system prompt (text of the official TOOLS_TEMPLATE), around the
// schemas.
const std::string kToolsHead =
    "## Tools\n\nYou have access to a set of tools to help answer the user's question. You can "
    "invoke tools by writing a \"<｜DSML｜tool_calls>\" block like the following:\n\n"
    "<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"$TOOL_NAME\">\n"
    "<｜DSML｜parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE"
    "</｜DSML｜parameter>\n...\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"$TOOL_NAME2\">\n...\n"
    "</｜DSML｜invoke>\n</｜DSML｜tool_calls>\n\nString parameters should be specified as is and "
    "set `string=\"true\"`. For all other types (numbers, booleans, arrays, objects), pass the "
    "value in JSON format and set `string=\"false\"`.\n\nIf thinking_mode is enabled (triggered "
    "by <think>), you MUST output your complete reasoning inside <think>...</think> BEFORE any "
    "tool calls or final response.\n\nOtherwise, output directly after </think> with tool calls "
    "or final response.\n\n### Available Tool Schemas\n\n";
const std::string kToolsTail =
    "\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke "
    "tool calls.\n";

const std::string kMaxEffort =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\nYou MUST be very thorough "
    "in your thinking and comprehensively decompose the problem to resolve the root cause, "
    "rigorously stress-testing your logic against all potential paths, edge cases, and "
    "adversarial scenarios.\nExplicitly write out your entire deliberation process, documenting "
    "every intermediate step, considered alternative, and rejected hypothesis to ensure "
    "absolutely no assumption is left unchecked.\n\n";

std::string param(const std::string & k, bool is_str, const std::string & v) {
    return "<｜DSML｜parameter name=\"" + k + "\" string=\"" + (is_str ? "true" : "false") + "\">" +
           v + "</｜DSML｜parameter>";
}

std::string invoke(const std::string & name, const std::string & params) {
    return "<｜DSML｜invoke name=\"" + name + "\">\n" + params + "\n</｜DSML｜invoke>";
}

std::string calls(const std::string & invokes) {
    return "\n\n<｜DSML｜tool_calls>\n" + invokes + "\n</｜DSML｜tool_calls>";
}

}  // namespace

// ---- the official gold pairs -------------------------------------------------------------------

TEST_CASE("chat encoding: official gold pairs byte for byte", "[chat][gold]") {
    if (!encoding_gold_available()) {
        return;
    }
    const auto dir = encoding_gold_dir();
    // Case 1 is {"tools": [...], "messages": [...]} (tools go to messages[0]); thinking mode.
    // 2 and 3: thinking mode; 4: chat mode.
    const ThinkingMode modes[] = {ThinkingMode::thinking, ThinkingMode::thinking,
                                  ThinkingMode::thinking, ThinkingMode::chat};
    for (int n = 1; n <= 4; ++n) {
        INFO("gold case " << n);
        const std::string input =
            read_text_file(dir / ("test_input_" + std::to_string(n) + ".json"));
        const std::string gold =
            read_text_file(dir / ("test_output_" + std::to_string(n) + ".txt"));
        REQUIRE_FALSE(gold.empty());
        EncodeOptions opt;
        opt.thinking_mode     = modes[n - 1];
        const std::string got = encode_json(input, opt);
        if (got != gold) {
            size_t i = 0;
            while (i < got.size() && i < gold.size() && got[i] == gold[i]) {
                ++i;
            }
            FAIL("first difference at byte "
                 << i << "\n  got:  " << got.substr(i > 40 ? i - 40 : 0, 120)
                 << "\n  gold: " << gold.substr(i > 40 ? i - 40 : 0, 120));
        }
        CHECK(got == gold);
    }
}

TEST_CASE("chat encoding: the official test's checks on the gold outputs", "[chat][gold]") {
    if (!encoding_gold_available()) {
        return;
    }
    const auto        dir  = encoding_gold_dir();
    const std::string out2 = read_text_file(dir / "test_output_2.txt");
    // drop_thinking removed the first assistant turn's reasoning.
    CHECK(out2.find("The user said hello") == std::string::npos);
}

// ---- BOS, context, reasoning effort ------------------------------------------------------------

TEST_CASE("chat encoding: BOS only at the start of a conversation", "[chat][encode]") {
    const std::string msgs = R"([{"role": "user", "content": "hi"}])";
    CHECK(encode_json(msgs) == kBos + kUser + "hi" + kAsst + kEndThink);

    EncodeOptions no_bos;
    no_bos.add_default_bos_token = false;
    CHECK(encode_json(msgs, no_bos) == kUser + "hi" + kAsst + kEndThink);

    // With context the prompt continues an earlier one: no BOS, context not rendered.
    EncodeOptions ctx;
    ctx.context = {ChatMessage::system("S"), ChatMessage::user("q1"), ChatMessage::assistant("a1")};
    CHECK(encode_json(R"([{"role": "user", "content": "q2"}])", ctx) ==
          kUser + "q2" + kAsst + kEndThink);

    // An empty conversation is just BOS.
    CHECK(encode_json("[]") == kBos);
}

TEST_CASE("chat encoding: reasoning_effort max prefix", "[chat][encode]") {
    const std::string msgs = R"([{"role": "user", "content": "hi"}])";
    EncodeOptions     opt  = thinking();
    opt.reasoning_effort   = ReasoningEffort::max;
    CHECK(encode_json(msgs, opt) == kBos + kMaxEffort + kUser + "hi" + kAsst + kThink);
    // high changes nothing; max does nothing in chat mode or when index 0 is context.
    opt.reasoning_effort = ReasoningEffort::high;
    CHECK(encode_json(msgs, opt) == kBos + kUser + "hi" + kAsst + kThink);
    EncodeOptions chat;
    chat.reasoning_effort = ReasoningEffort::max;
    CHECK(encode_json(msgs, chat) == kBos + kUser + "hi" + kAsst + kEndThink);
    opt.reasoning_effort = ReasoningEffort::max;
    opt.context          = {ChatMessage::system("S")};
    CHECK(encode_json(msgs, opt) == kUser + "hi" + kAsst + kThink);
}

// ---- thinking and drop_thinking ----------------------------------------------------------------

TEST_CASE("chat encoding: drop_thinking", "[chat][encode]") {
    const std::string conv = R"([
        {"role": "system", "content": "S"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
        {"role": "user", "content": "q2"}])";
    // Dropped: the earlier turn opens with </think> and loses its reasoning.
    CHECK(encode_json(conv, thinking()) == kBos + "S" + kUser + "q1" + kAsst + kEndThink + "a1" +
                                               kEos + kUser + "q2" + kAsst + kThink);
    // Kept: every user turn opens <think>, every assistant turn has reasoning</think>.
    EncodeOptions keep = thinking();
    keep.drop_thinking = false;
    CHECK(encode_json(conv, keep) == kBos + "S" + kUser + "q1" + kAsst + kThink + "r1" + kEndThink +
                                         "a1" + kEos + kUser + "q2" + kAsst + kThink);
    // The last assistant turn (after the last user message) keeps its reasoning.
    CHECK(encode_json(R"([{"role": "user", "content": "q"},
                          {"role": "assistant", "content": "a", "reasoning_content": "r"}])",
                      thinking()) ==
          kBos + kUser + "q" + kAsst + kThink + "r" + kEndThink + "a" + kEos);
    // Chat mode never renders reasoning.
    CHECK(encode_json(R"([{"role": "user", "content": "q"},
                          {"role": "assistant", "content": "a", "reasoning_content": "r"}])") ==
          kBos + kUser + "q" + kAsst + kEndThink + "a" + kEos);
}

TEST_CASE("chat encoding: tools force drop_thinking off", "[chat][encode]") {
    const std::string schema = R"({"name": "f", "parameters": {"type": "object"}})";
    const std::string conv   = R"([
        {"role": "system", "content": "S",
         "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
        {"role": "user", "content": "q2"}])";
    CHECK(encode_json(conv, thinking()) == kBos + "S\n\n" + kToolsHead + schema + kToolsTail +
                                               kUser + "q1" + kAsst + kThink + "r1" + kEndThink +
                                               "a1" + kEos + kUser + "q2" + kAsst + kThink);
    // Tools on a user message are dropped when messages are merged, so they do not count.
    CHECK(encode_json(R"([
        {"role": "user", "content": "q1", "tools": [{"type": "function", "function": {"name": "f"}}]},
        {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
        {"role": "user", "content": "q2"}])",
                      thinking()) ==
          kBos + kUser + "q1" + kAsst + kEndThink + "a1" + kEos + kUser + "q2" + kAsst + kThink);
}

TEST_CASE("chat encoding: context with drop_thinking counts each list after dropping",
          "[chat][encode]") {
    EncodeOptions opt = thinking();
    opt.context       = {ChatMessage::user("q1"), ChatMessage::assistant("a1", "r1")};
    CHECK(encode_json(R"([{"role": "user", "content": "q2"}])", opt) ==
          kUser + "q2" + kAsst + kThink);
    // Reference quirk: a developer message ending the context is kept when the context is
    // dropped on its own but removed from the full list, so one message less is rendered.
    opt.context = {ChatMessage::user("q1"), ChatMessage::developer("d1")};
    CHECK(encode_json(R"([{"role": "user", "content": "q2"}])", opt).empty());
}

// ---- roles -------------------------------------------------------------------------------------

TEST_CASE("chat encoding: system, developer and response_format", "[chat][encode]") {
    CHECK(encode_json(R"([{"role": "system", "content": "S",
                           "response_format": {"type": "json_object", "x": 1.0}},
                          {"role": "user", "content": "u"}])") ==
          kBos +
              "S\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema "
              "to reply:\n{\"type\": \"json_object\", \"x\": 1.0}" +
              kUser + "u" + kAsst + kEndThink);
    // A falsy response_format ({} here) adds nothing; a null system content is "".
    CHECK(encode_json(R"([{"role": "system", "content": null, "response_format": {}},
                          {"role": "user", "content": "u"}])") ==
          kBos + kUser + "u" + kAsst + kEndThink);
    // Developer: rendered as a user turn, with its tools and response format.
    CHECK(encode_json(R"([{"role": "developer", "content": "D",
                           "tools": [{"type": "function", "function": {"name": "g"}}],
                           "response_format": "text"}])",
                      thinking()) ==
          kBos + kUser + "D\n\n" + kToolsHead + R"({"name": "g"})" + kToolsTail +
              "\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to "
              "reply:\n\"text\"" +
              kAsst + kThink);
    // Tools given in the C++ API as the bare function schema render the same.
    ChatMessage sys = ChatMessage::system("");
    sys.tools       = {R"({"name":"g"})"};
    auto out        = dsv4::encode_messages({sys});
    REQUIRE(out.ok());
    CHECK(*out == kBos + "\n\n" + kToolsHead + R"({"name": "g"})" + kToolsTail);

    auto st = encode_error(R"([{"role": "developer", "content": ""}])");
    CHECK(st.code() == dsv4::Errc::invalid_argument);
    CHECK(st.message().find("messages[0]") != std::string::npos);
    CHECK(st.message().find("developer") != std::string::npos);
}

TEST_CASE("chat encoding: user merging and latest_reminder", "[chat][encode]") {
    // Consecutive user messages are merged into one turn, joined by a blank line.
    CHECK(encode_json(R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])") ==
          kBos + kUser + "a\n\nb" + kAsst + kEndThink);
    // latest_reminder between system and user (as in gold case 3/4).
    CHECK(encode_json(R"([{"role": "system", "content": "S"},
                          {"role": "latest_reminder", "content": "2026-01-01"},
                          {"role": "user", "content": "u"}])") ==
          kBos + "S" + kReminder + "2026-01-01" + kUser + "u" + kAsst + kEndThink);
    // A user turn followed by a latest_reminder still gets its assistant opener.
    CHECK(encode_json(R"([{"role": "user", "content": "u"},
                          {"role": "latest_reminder", "content": "R"}])") ==
          kBos + kUser + "u" + kAsst + kEndThink + kReminder + "R");
    // wo_eos leaves the assistant turn open.
    CHECK(encode_json(R"([{"role": "user", "content": "u"},
                          {"role": "assistant", "content": "part", "wo_eos": true}])") ==
          kBos + kUser + "u" + kAsst + kEndThink + "part");
}

TEST_CASE("chat encoding: unknown roles", "[chat][encode]") {
    auto st =
        encode_error(R"([{"role": "foo", "content": "x"}, {"role": "user", "content": "u"}])");
    CHECK(st.message().find("unknown role \"foo\"") != std::string::npos);
    CHECK(st.message().find("messages[0]") != std::string::npos);
    // ... but in thinking mode with dropping, a message before the last user turn is dropped
    // before it is rendered (as in the reference).
    CHECK(encode_json(R"([{"role": "foo", "content": "x"}, {"role": "user", "content": "u"}])",
                      thinking()) == kBos + kUser + "u" + kAsst + kThink);
    // "tool" messages are merged into user turns; direct_search_results is not renderable.
    st = encode_error(R"([{"role": "user", "content": "u"}, {"role": "direct_search_results"}])");
    CHECK_THAT(st.message(),
               Catch::Contains("messages[1]: unknown role \"direct_search_results\""));
}

// ---- tool calls and tool results ---------------------------------------------------------------

TEST_CASE("chat encoding: tool-call arguments", "[chat][encode]") {
    const std::string conv = R"([
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments":
             "{\"city\": \"Paris\", \"n\": 3, \"f\": 1.5e-7, \"ok\": true, \"x\": null, \"o\": {\"b\": 1, \"a\": [1, \"\\u00e9\"]}, \"s\": \"q\\\"\\n\"}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "not json {"}},
            {"id": "c3", "type": "function", "function": {"name": "h", "arguments": {"a": 1, "b": [2.50]}}},
            {"id": "c4", "type": "function", "function": {"name": "k", "arguments": "{\"a\": 1, \"b\": 2, \"a\": \"3\"}"}},
            {"id": "c5", "type": "function", "function": {"name": "e", "arguments": "{}"}}
        ]}])";
    const std::string expected =
        kBos + kUser + "q" + kAsst + kEndThink +
        calls(invoke("f", param("city", true, "Paris") + "\n" + param("n", false, "3") + "\n" +
                              param("f", false, "1.5e-07") + "\n" + param("ok", false, "true") +
                              "\n" + param("x", false, "null") + "\n" +
                              param("o", false, "{\"b\": 1, \"a\": [1, \"é\"]}") + "\n" +
                              param("s", true, "q\"\n")) +
              "\n" + invoke("g", param("arguments", true, "not json {")) + "\n" +
              invoke("h", param("arguments", false, "{\"a\": 1, \"b\": [2.5]}")) + "\n" +
              invoke("k", param("a", true, "3") + "\n" + param("b", false, "2")) + "\n" +
              invoke("e", "")) +
        kEos;
    CHECK(encode_json(conv) == expected);

    // Valid JSON that is not an object is an error of the reference (no .items()).
    auto st = encode_error(R"([{"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}]}])");
    CHECK(st.message().find("messages[0].tool_calls[0].function.arguments") != std::string::npos);
    CHECK(st.message().find("not an object") != std::string::npos);

    // The same through the C++ API.
    ChatMessage a = ChatMessage::assistant("ok");
    a.tool_calls  = {ToolCall{"id1", "f", R"({"q":"x"})", false}};
    auto out      = dsv4::encode_messages({a});
    REQUIRE(out.ok());
    CHECK(*out == kBos + "ok" + calls(invoke("f", param("q", true, "x"))) + kEos);
}

TEST_CASE("chat encoding: tool results merged and sorted by call order", "[chat][encode]") {
    // Results arrive as c3, (user text), c1, unknown id, c2: the tool_result blocks are reordered
    // by call position (unknown -> 0, stable), the text block stays where it is.
    const std::string conv = R"([
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            {"id": "c3", "type": "function", "function": {"name": "h", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c3", "content": "R3"},
        {"role": "user", "content": "mid"},
        {"role": "tool", "tool_call_id": "c1", "content": "R1"},
        {"role": "tool", "tool_call_id": "zz", "content": "RZ"},
        {"role": "tool", "tool_call_id": "c2", "content": "R2"}])";
    CHECK(encode_json(conv) ==
          kBos + kUser + "q" + kAsst + kEndThink +
              calls(invoke("f", "") + "\n" + invoke("g", "") + "\n" + invoke("h", "")) + kEos +
              kUser +
              "<tool_result>R1</tool_result>\n\nmid\n\n<tool_result>RZ</tool_result>\n\n"
              "<tool_result>R2</tool_result>\n\n<tool_result>R3</tool_result>" +
              kAsst + kEndThink);
}

TEST_CASE("chat encoding: tool result content parts", "[chat][encode]") {
    CHECK(encode_json(R"([{"role": "tool", "tool_call_id": "c", "content": [
                            {"type": "text", "text": "a"},
                            {"type": "image_url", "image_url": {"url": "u"}},
                            {"text": "no type"},
                            {"type": "text"}]}])") ==
          kBos + kUser +
              "<tool_result>a\n\n[Unsupported image_url]\n\n[Unsupported None]\n\n</tool_result>" +
              kAsst + kEndThink);
    // A tool message with no content renders an empty result.
    CHECK(encode_json(R"([{"role": "tool"}])") ==
          kBos + kUser + "<tool_result></tool_result>" + kAsst + kEndThink);
}

// ---- tasks -------------------------------------------------------------------------------------

TEST_CASE("chat encoding: quick-instruction tasks", "[chat][encode]") {
    // action: assistant opener, think token of the mode, then <｜action｜>.
    const std::string action = R"([{"role": "user", "content": "u", "task": "action"}])";
    CHECK(encode_json(action) == kBos + kUser + "u" + kAsst + kEndThink + "<｜action｜>");
    CHECK(encode_json(action, thinking()) == kBos + kUser + "u" + kAsst + kThink + "<｜action｜>");
    // Other tasks: the token right after the message.
    for (const char * t : {"query", "authority", "domain", "read_url"}) {
        CHECK(encode_json(std::string(R"([{"role": "user", "content": "u", "task": ")") + t +
                          "\"}]") == kBos + kUser + "u<｜" + t + "｜>");
    }
    // title on an assistant message: after its EOS.
    CHECK(encode_json(R"([{"role": "user", "content": "u"},
                          {"role": "assistant", "content": "a", "task": "title"}])") ==
          kBos + kUser + "u" + kAsst + kEndThink + "a" + kEos + "<｜title｜>");
    // The answer to a task turn has no thinking part, even in thinking mode.
    CHECK(encode_json(R"([{"role": "user", "content": "u", "task": "action"},
                          {"role": "assistant", "content": "Search"}])",
                      thinking()) ==
          kBos + kUser + "u" + kAsst + kThink + "<｜action｜>Search" + kEos);
    // A user message with a task is not merged with the next user message; its task is only
    // checked when its transition is rendered (not here: a user message follows).
    CHECK(encode_json(R"([{"role": "user", "content": "u1", "task": "bogus"},
                          {"role": "user", "content": "u2"}])") ==
          kBos + kUser + "u1" + kUser + "u2" + kAsst + kEndThink);
    auto st = encode_error(R"([{"role": "user", "content": "u", "task": "bogus"}])");
    CHECK(st.message().find("invalid task \"bogus\"") != std::string::npos);
    // A user message merged into a tool-result turn loses its task (reference behaviour).
    CHECK(encode_json(R"([{"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "R"},
        {"role": "user", "content": "u2", "task": "query"}])") ==
          kBos + kUser + "q" + kAsst + kEndThink + calls(invoke("f", "")) + kEos + kUser +
              "<tool_result>R</tool_result>\n\nu2" + kAsst + kEndThink);
}

// ---- messages_from_json errors -----------------------------------------------------------------

TEST_CASE("messages_from_json: shapes and type errors", "[chat][json]") {
    auto msgs =
        dsv4::messages_from_json(R"({"tools": [{"type": "function", "function": {"name": "t"}}],
                                             "messages": [{"role": "system", "content": "S"}],
                                             "model": "ignored"})");
    REQUIRE(msgs.ok());
    REQUIRE(msgs->size() == 1);
    REQUIRE(msgs->at(0).tools.size() == 1);
    CHECK(msgs->at(0).tools[0] == R"({"type": "function", "function": {"name": "t"}})");

    msgs = dsv4::messages_from_json(R"([{"role": "assistant", "tool_calls": [
        {"function": {"id": "fid", "name": "n", "arguments": "{}"}}]}])");
    REQUIRE(msgs.ok());
    CHECK(msgs->at(0).tool_calls.at(0).id == "fid");

    struct Bad {
        const char * json;
        const char * needle;
    };
    const Bad cases[] = {
        {"{\"a\": 1}", "\"messages\""},
        {"[1]", "messages[0]: expected an object"},
        {"[{\"role\": 5}]", "messages[0].role"},
        {"[{\"role\": \"user\", \"content\": null}]", "messages[0].content"},
        {"[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"x\"}]}]",
         "messages[0].content"},
        {"[{\"role\": \"latest_reminder\"}]", "messages[0].content"},
        {"[{\"role\": \"tool\", \"content\": 3}]", "messages[0].content"},
        {"[{\"role\": \"tool\", \"content\": [{\"type\": \"text\", \"text\": 1}]}]",
         "messages[0].content[0].text"},
        {"[{\"role\": \"assistant\", \"tool_calls\": {\"a\": 1}}]", "messages[0].tool_calls"},
        {"[{\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"x\"}]}]",
         "messages[0].tool_calls[0]: missing \"function\""},
        {"[{\"role\": \"assistant\", \"tool_calls\": [{\"function\": {\"arguments\": \"{}\"}}]}]",
         "messages[0].tool_calls[0].function.name"},
        {"[{\"role\": \"assistant\", \"tool_calls\": [{\"function\": {\"name\": \"f\"}}]}]",
         "messages[0].tool_calls[0].function.arguments"},
        {"[{\"role\": \"system\", \"tools\": \"f\"}]", "messages[0].tools"},
        {"[{\"role\": \"system\", \"tools\": [\"f\"]}]", "messages[0].tools[0]"},
        {"[{\"role\": \"user\", \"content\": \"u\", \"task\": 1}]", "messages[0].task"},
        {"{\"tools\": [], \"messages\": []}", "\"messages\" is empty"},
        {"[{\"role\": \"user\", \"content\": \"u\"},]", "invalid JSON at byte"},
    };
    for (const Bad & b : cases) {
        INFO(b.json);
        auto r = dsv4::messages_from_json(b.json);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == dsv4::Errc::invalid_argument);
        CHECK_THAT(r.status().message(), Catch::Contains(b.needle));
    }
}

TEST_CASE("encode_messages: C++ API input checks", "[chat][encode]") {
    ChatMessage u = ChatMessage::user(std::string("bad \xff utf-8"));
    auto        r = dsv4::encode_messages({u});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("messages[0].content: not valid UTF-8"));

    ChatMessage s = ChatMessage::system("S");
    s.tools       = {"{not json"};
    r             = dsv4::encode_messages({s});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("messages[0].tools[0]: invalid JSON"));

    s.tools = {"[1]"};
    r       = dsv4::encode_messages({s});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("expected an object"));

    ChatMessage p   = ChatMessage::user("u");
    p.content_parts = std::vector<dsv4::ContentPart>{};
    r               = dsv4::encode_messages({p});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("only supported for tool messages"));

    EncodeOptions opt;
    opt.context = {ChatMessage::system(std::string("\xc0"))};
    r           = dsv4::encode_messages({ChatMessage::user("u")}, opt);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("context[0].content"));
}
