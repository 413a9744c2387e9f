// parse_completion(): the completions cut out of the official gold outputs 1 and 2 (as the
// official test_encoding_dsv4.py does), tool-call parsing, the reference's exact-format rules
// and every malformed-input error (each a clear Errc::invalid_argument with a byte offset).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "chat/chat_test_util.hpp"
#include "dsv4/chat.hpp"

using dsv4::ParsedCompletion;
using dsv4::ThinkingMode;
using namespace dsv4::test;

namespace {

ParsedCompletion parse_ok(const std::string & text, ThinkingMode mode) {
    auto r = dsv4::parse_completion(text, mode);
    INFO("text: " << text << "\nstatus: " << r.status().to_string());
    REQUIRE(r.ok());
    return *r;
}

std::string parse_err(const std::string & text, ThinkingMode mode) {
    auto r = dsv4::parse_completion(text, mode);
    INFO("text: " << text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == dsv4::Errc::invalid_argument);
    CHECK_THAT(r.status().message(), Catch::Contains("completion text, byte "));
    return r.status().message();
}

const ThinkingMode kThinking = ThinkingMode::thinking;
const ThinkingMode kChat     = ThinkingMode::chat;

const std::string kCallsOpen  = "\n\n<｜DSML｜tool_calls>\n";
const std::string kCallsClose = "</｜DSML｜tool_calls>";

}  // namespace

TEST_CASE("parse_completion: completions cut from the official gold outputs", "[chat][gold]") {
    if (!encoding_gold_available()) {
        return;
    }
    const auto        dir    = encoding_gold_dir();
    const std::string marker = kAsst + kThink;

    // Case 1: first assistant turn (a tool call), up to the next user turn; and the last turn.
    const std::string out1  = read_text_file(dir / "test_output_1.txt");
    const size_t      first = out1.find(marker) + marker.size();
    const size_t      end   = out1.find(kUser, first);
    REQUIRE(end != std::string::npos);
    ParsedCompletion tc = parse_ok(out1.substr(first, end - first), kThinking);
    CHECK(tc.reasoning_content ==
          "The user wants to know the weather in Beijing. I should use the get_weather tool.");
    CHECK(tc.content.empty());
    REQUIRE(tc.tool_calls.size() == 1);
    CHECK(tc.tool_calls[0].name == "get_weather");
    CHECK(tc.tool_calls[0].arguments == R"({"location": "Beijing", "unit": "celsius"})");
    CHECK(tc.ended_with_eos);

    const size_t     last = out1.rfind(marker) + marker.size();
    ParsedCompletion fin  = parse_ok(out1.substr(last), kThinking);
    CHECK(fin.reasoning_content == "Got the weather data. Let me format a nice response.");
    CHECK(fin.content.find("22°C") != std::string::npos);
    CHECK(fin.tool_calls.empty());

    // Case 2: the last turn.
    const std::string out2   = read_text_file(dir / "test_output_2.txt");
    ParsedCompletion  final2 = parse_ok(out2.substr(out2.rfind(marker) + marker.size()), kThinking);
    CHECK(final2.reasoning_content == "The user asks about the capital of France. It is Paris.");
    CHECK(final2.content == "The capital of France is Paris.");
    CHECK(final2.tool_calls.empty());
}

TEST_CASE("parse_completion: plain answers", "[chat][parse]") {
    ParsedCompletion p = parse_ok("Simple arithmetic.</think>2 + 2 = 4." + kEos, kThinking);
    CHECK(p.reasoning_content == "Simple arithmetic.");
    CHECK(p.content == "2 + 2 = 4.");
    CHECK(p.tool_calls.empty());

    p = parse_ok("hello" + kEos, kChat);
    CHECK(p.reasoning_content.empty());
    CHECK(p.content == "hello");

    p = parse_ok("</think>" + kEos, kThinking);
    CHECK(p.reasoning_content.empty());
    CHECK(p.content.empty());

    // to_message() gives the assistant message to append to the conversation.
    const dsv4::ChatMessage m = parse_ok("r</think>a" + kEos, kThinking).to_message();
    CHECK(m.role == "assistant");
    CHECK(m.content == "a");
    CHECK(m.reasoning_content == "r");
}

TEST_CASE("parse_completion: tool calls", "[chat][parse]") {
    const std::string text =
        "think</think>Let me check." + kCallsOpen +
        "<｜DSML｜invoke name=\"search\">\n"
        "<｜DSML｜parameter name=\"q\" string=\"true\">say \"hi\"\nnow</｜DSML｜parameter>\n"
        "<｜DSML｜parameter name=\"n\" string=\"false\">5</｜DSML｜parameter>\n"
        "<｜DSML｜parameter name=\"o\" string=\"false\">{\"a\": [1, 2]}</｜DSML｜parameter>\n"
        "</｜DSML｜invoke>\n"
        "<｜DSML｜invoke name=\"noargs\">\n</｜DSML｜invoke>\n" +
        kCallsClose + kEos;
    ParsedCompletion p = parse_ok(text, kThinking);
    CHECK(p.reasoning_content == "think");
    CHECK(p.content == "Let me check.");
    REQUIRE(p.tool_calls.size() == 2);
    CHECK(p.tool_calls[0].name == "search");
    // string="true" values are JSON-quoted (Python escaping), the others are inserted as written.
    CHECK(p.tool_calls[0].arguments == R"({"q": "say \"hi\"\nnow", "n": 5, "o": {"a": [1, 2]}})");
    CHECK(p.tool_calls[1].name == "noargs");
    CHECK(p.tool_calls[1].arguments == "{}");
    CHECK(p.ended_with_eos);

    // An empty tool_calls block is accepted.
    p = parse_ok("x" + kCallsOpen + kCallsClose + kEos, kChat);
    CHECK(p.content == "x");
    CHECK(p.tool_calls.empty());
}

TEST_CASE("parse_completion: reference regex details", "[chat][parse]") {
    // The invoke header allows leading whitespace (Python's \s, Unicode included); `$` also
    // matches before a final newline, so `">\n\n` and `<\n` endings are accepted.
    ParsedCompletion p =
        parse_ok("r</think>" + kCallsOpen + "<｜DSML｜invoke \u3000name=\"f\">\n\n" +
                     "<｜DSML｜parameter name=\"a\" string=\"true\">v<\n/｜DSML｜parameter>\n"
                     "</｜DSML｜invoke>\n" +
                     kCallsClose + kEos,
                 kThinking);
    REQUIRE(p.tool_calls.size() == 1);
    CHECK(p.tool_calls[0].name == "f");
    CHECK(p.tool_calls[0].arguments == R"({"a": "v"})");
    // The parameter name is the shortest that lets the rest of the pattern match.
    p = parse_ok("r</think>" + kCallsOpen + "<｜DSML｜invoke name=\"f\">\n" +
                     "<｜DSML｜parameter name=\"a\" string=\"true\">x\" string=\"false\">y"
                     "</｜DSML｜parameter>\n</｜DSML｜invoke>\n" +
                     kCallsClose + kEos,
                 kThinking);
    REQUIRE(p.tool_calls.size() == 1);
    CHECK(p.tool_calls[0].arguments == R"({"a": "x\" string=\"false\">y"})");
}

TEST_CASE("parse_completion: truncated tool blocks the reference accepts", "[chat][parse]") {
    // The reference's parser returns without error when the text stops inside the tool-call
    // block at some points; ended_with_eos tells such a turn apart.
    ParsedCompletion p = parse_ok("a" + kCallsOpen + kCallsClose, kChat);
    CHECK_FALSE(p.ended_with_eos);
    p = parse_ok("a" + kCallsOpen + "<｜DSML｜invoke name=\"f\">\n" +
                     "<｜DSML｜parameter name=\"k\" string=\"true\">v</｜DSML｜parameter>\n",
                 kChat);
    CHECK_FALSE(p.ended_with_eos);
    REQUIRE(p.tool_calls.size() == 1);
    CHECK(p.tool_calls[0].arguments == R"({"k": "v"})");
    p = parse_ok("a\n\n<｜DSML｜tool_calls", kChat);
    CHECK_FALSE(p.ended_with_eos);
    CHECK(p.tool_calls.empty());
}

TEST_CASE("parse_completion: malformed text is a clear error", "[chat][parse]") {
    const std::string invoke_f = "<｜DSML｜invoke name=\"f\">\n";
    const std::string p_a = "<｜DSML｜parameter name=\"a\" string=\"true\">1</｜DSML｜parameter>\n";

    // Thinking mode needs </think>, before any tool call.
    CHECK_THAT(parse_err("no end of thinking" + kEos, kThinking),
               Catch::Contains("missing </think>"));
    CHECK_THAT(parse_err("r" + kCallsOpen + kCallsClose + "</think>" + kEos, kThinking),
               Catch::Contains("byte 1: thinking mode: missing </think>"));
    // The text must end with EOS ...
    CHECK_THAT(parse_err("r</think>answer", kThinking), Catch::Contains("missing the EOS token"));
    CHECK_THAT(parse_err("answer", kChat), Catch::Contains("byte 6: missing the EOS token"));
    // ... and nothing may follow it.
    CHECK_THAT(parse_err("a" + kEos + "junk", kChat),
               Catch::Contains("unexpected text after the EOS token: \"junk\""));
    // Nothing but EOS after the tool-call block.
    CHECK_THAT(parse_err("a" + kCallsOpen + kCallsClose + "junk" + kEos, kChat),
               Catch::Contains("unexpected text after </｜DSML｜tool_calls>"));
    CHECK_THAT(parse_err("a" + kCallsOpen + kCallsClose + kEos + kEos, kChat),
               Catch::Contains("unexpected text after the EOS token"));
    // Duplicate parameter names.
    CHECK_THAT(parse_err("a" + kCallsOpen + invoke_f + p_a + p_a + "</｜DSML｜invoke>\n" +
                             kCallsClose + kEos,
                         kChat),
               Catch::Contains("duplicate parameter name \"a\""));
    // Separators must be exactly ">\n".
    CHECK_THAT(parse_err("a\n\n<｜DSML｜tool_calls> \n" + invoke_f + "</｜DSML｜invoke>\n" +
                             kCallsClose + kEos,
                         kChat),
               Catch::Contains("expected \">\\n\""));
    CHECK_THAT(
        parse_err("a" + kCallsOpen + invoke_f +
                      "<｜DSML｜parameter name=\"a\" string=\"true\">1</｜DSML｜parameter> \n"
                      "</｜DSML｜invoke>\n" +
                      kCallsClose + kEos,
                  kChat),
        Catch::Contains("expected \">\\n\" after a parameter"));
    CHECK_THAT(parse_err("a" + kCallsOpen + "<｜DSML｜invoke name=\"f\">" + "</｜DSML｜invoke>\n" +
                             kCallsClose + kEos,
                         kChat),
               Catch::Contains("expected ` name=\"NAME\">\\n`"));
    CHECK_THAT(
        parse_err("a" + kCallsOpen + invoke_f +
                      "<｜DSML｜parameter name=\"a\" string=\"maybe\">1</｜DSML｜parameter>\n"
                      "</｜DSML｜invoke>\n" +
                      kCallsClose + kEos,
                  kChat),
        Catch::Contains("tool call \"f\": expected ` name=\"KEY\""));
    // A block that never closes.
    CHECK_THAT(parse_err("a" + kCallsOpen + invoke_f + "</｜DSML｜invoke>\n", kChat),
               Catch::Contains("ends without </｜DSML｜tool_calls>"));
    // Special tokens inside the content or the reasoning.
    CHECK_THAT(parse_err("<think>x" + kEos, kChat),
               Catch::Contains("byte 0: special token <think> inside the content"));
    CHECK_THAT(parse_err("r</think>a</think>b" + kEos, kThinking),
               Catch::Contains("byte 10: special token </think> inside the content"));
    CHECK_THAT(parse_err("r<think></think>a" + kEos, kThinking),
               Catch::Contains("special token <think> inside the reasoning"));
    CHECK_THAT(parse_err(kBos + "a" + kEos, kChat), Catch::Contains("<｜begin▁of▁sentence｜>"));
    CHECK_THAT(parse_err("a｜DSML｜b" + kEos, kChat), Catch::Contains("special token ｜DSML｜"));
    // Invalid UTF-8 (a completion cut inside a character).
    CHECK_THAT(parse_err("ab\xe6\x97" + kEos, kChat), Catch::Contains("byte 2: not valid UTF-8"));
    // Empty text.
    CHECK_THAT(parse_err("", kChat), Catch::Contains("missing the EOS token"));
}

TEST_CASE("parse_completion: round trip through encode_messages", "[chat][parse]") {
    // An assistant turn rendered by the encoder parses back to the same parts.
    dsv4::ChatMessage a = dsv4::ChatMessage::assistant("Sure.", "plan");
    a.tool_calls        = {
               dsv4::ToolCall{"c1", "lookup", R"({"term": "x\ty", "limit": 3, "exact": false})", false}};
    dsv4::EncodeOptions opt;
    opt.thinking_mode = ThinkingMode::thinking;
    opt.drop_thinking = false;
    auto text         = dsv4::encode_messages({dsv4::ChatMessage::user("q"), a}, opt);
    REQUIRE(text.ok());
    const std::string prefix = kBos + kUser + "q" + kAsst + kThink;
    REQUIRE(text->substr(0, prefix.size()) == prefix);
    ParsedCompletion p = parse_ok(text->substr(prefix.size()), kThinking);
    CHECK(p.reasoning_content == "plan");
    CHECK(p.content == "Sure.");
    REQUIRE(p.tool_calls.size() == 1);
    CHECK(p.tool_calls[0].name == "lookup");
    CHECK(p.tool_calls[0].arguments == R"({"term": "x\ty", "limit": 3, "exact": false})");
}
