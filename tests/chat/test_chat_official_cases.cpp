// Random conversations, completions and JSON texts with the results of DeepSeek's official
// encoding_dsv4.py and Python's json module (tests/chat/data/official_cases.json, written by
// tests/chat/data/make_official_cases.py; none of its expected values come from dsv4).
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "chat/chat_test_util.hpp"
#include "chat/json_value.hpp"
#include "dsv4/chat.hpp"

using dsv4::chat::JsonValue;

namespace {

const JsonValue & load_cases() {
    static const JsonValue cases = [] {
        const auto path = std::filesystem::path(DSV4_SOURCE_DIR) / "tests" / "chat" / "data" /
                          "official_cases.json";
        auto r = dsv4::chat::parse_json(dsv4::test::read_text_file(path), path.string());
        INFO(r.status().to_string());
        REQUIRE(r.ok());
        return r.value();
    }();
    return cases;
}

const JsonValue & member(const JsonValue & obj, const char * key) {
    const JsonValue * v = obj.find(key);
    INFO("missing key " << key);
    REQUIRE(v != nullptr);
    return *v;
}

}  // namespace

TEST_CASE("official cases: encode_messages", "[chat][official]") {
    const JsonValue & cases = member(load_cases(), "encode");
    REQUIRE(cases.items.size() >= 100);
    size_t errors = 0;
    for (size_t i = 0; i < cases.items.size(); ++i) {
        const JsonValue & c             = cases.items[i];
        const std::string messages_json = dsv4::chat::dump_json(member(c, "messages"));
        INFO("case " << i << ": " << messages_json);
        const JsonValue &   o = member(c, "options");
        dsv4::EncodeOptions opt;
        opt.thinking_mode         = member(o, "thinking_mode").text == "thinking"
                                        ? dsv4::ThinkingMode::thinking
                                        : dsv4::ThinkingMode::chat;
        opt.drop_thinking         = member(o, "drop_thinking").boolean;
        opt.add_default_bos_token = member(o, "add_default_bos_token").boolean;
        const JsonValue & effort  = member(o, "reasoning_effort");
        opt.reasoning_effort      = effort.is_null()       ? dsv4::ReasoningEffort::none
                                    : effort.text == "max" ? dsv4::ReasoningEffort::max
                                                           : dsv4::ReasoningEffort::high;
        dsv4::Status failure;
        if (const JsonValue & ctx = member(c, "context"); !ctx.is_null()) {
            auto parsed = dsv4::messages_from_json(dsv4::chat::dump_json(ctx));
            if (parsed.ok()) {
                opt.context = std::move(parsed.value());
            } else {
                failure = parsed.status();
            }
        }
        auto msgs = dsv4::messages_from_json(messages_json);
        if (failure.ok() && !msgs.ok()) {
            failure = msgs.status();
        }
        std::string got;
        if (failure.ok()) {
            auto r = dsv4::encode_messages(*msgs, opt);
            if (r.ok()) {
                got = *r;
            } else {
                failure = r.status();
            }
        }
        if (const JsonValue * err = c.find("error")) {
            INFO("reference error: " << err->text);
            CHECK_FALSE(failure.ok());
            ++errors;
        } else {
            INFO("dsv4 error: " << failure.to_string());
            REQUIRE(failure.ok());
            CHECK(got == member(c, "expected").text);
        }
    }
    CHECK(errors > 0);  // the set exercises the reference's rejections too
}

TEST_CASE("official cases: parse_completion", "[chat][official]") {
    const JsonValue & cases = member(load_cases(), "parse");
    REQUIRE(cases.items.size() >= 100);
    for (size_t i = 0; i < cases.items.size(); ++i) {
        const JsonValue & c    = cases.items[i];
        const std::string text = member(c, "text").text;
        INFO("case " << i << ": " << text);
        const auto mode = member(c, "thinking_mode").text == "thinking"
                              ? dsv4::ThinkingMode::thinking
                              : dsv4::ThinkingMode::chat;
        auto       r    = dsv4::parse_completion(text, mode);
        if (const JsonValue * err = c.find("error")) {
            INFO("reference error: " << err->text);
            CHECK_FALSE(r.ok());
            continue;
        }
        INFO("dsv4 error: " << r.status().to_string());
        REQUIRE(r.ok());
        const JsonValue & e = member(c, "expected");
        CHECK(r->reasoning_content == member(e, "reasoning_content").text);
        CHECK(r->content == member(e, "content").text);
        const JsonValue & calls = member(e, "tool_calls");
        REQUIRE(r->tool_calls.size() == calls.items.size());
        for (size_t k = 0; k < calls.items.size(); ++k) {
            CHECK(r->tool_calls[k].name == calls.items[k].items.at(0).text);
            CHECK(r->tool_calls[k].arguments == calls.items[k].items.at(1).text);
        }
    }
}

TEST_CASE("official cases: Python json round trips", "[chat][official][json]") {
    const JsonValue & cases = member(load_cases(), "json");
    REQUIRE(cases.items.size() >= 100);
    for (size_t i = 0; i < cases.items.size(); ++i) {
        const JsonValue & c     = cases.items[i];
        const std::string input = member(c, "input").text;
        INFO("case " << i << ": " << input);
        auto              r   = dsv4::chat::parse_json(input, "case");
        const JsonValue & exp = member(c, "expected");
        if (exp.is_null()) {
            CHECK_FALSE(r.ok());
        } else {
            INFO(r.status().to_string());
            REQUIRE(r.ok());
            CHECK(dsv4::chat::dump_json(*r) == exp.text);
        }
    }
}
