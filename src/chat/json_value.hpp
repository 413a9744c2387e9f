// A small ordered JSON value with Python's `json` semantics, for the chat encoding.
//
// parse_json() reads text the way Python's `json.loads` does (simdjson does the tokenising,
// unescaping and UTF-8 checks): objects keep their key order, a repeated key keeps the position
// of its first occurrence and the value of its last, integers keep their exact digits (any size
// up to Python's 4300-digit limit), NaN / Infinity / -Infinity are accepted, a leading UTF-8 BOM
// is rejected. dump_json() writes what `json.dumps(v, ensure_ascii=False)` writes: separators
// ", " and ": ", only `"`, `\` and control characters escaped (\n \r \t \b \f short, the others
// \u00XX), integers as parsed, floats as Python's repr() (shortest round trip: 1.0, 1e-05,
// 1e+16), NaN / Infinity / -Infinity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dsv4/status.hpp"

namespace dsv4::chat {

class JsonValue {
  public:
    enum class Type : uint8_t { null, boolean, integer, floating, string, array, object };

    Type                     type    = Type::null;
    bool                     boolean = false;
    double                   number  = 0.0;  // floating
    std::string              text;           // string: its UTF-8 value; integer: its digits
    std::vector<JsonValue>   items;          // array elements, or object values
    std::vector<std::string> keys;           // object keys, parallel to items

    bool is_null() const noexcept { return type == Type::null; }
    bool is_string() const noexcept { return type == Type::string; }
    bool is_array() const noexcept { return type == Type::array; }
    bool is_object() const noexcept { return type == Type::object; }

    // Object member by key (nullptr when absent or not an object).
    const JsonValue * find(std::string_view key) const noexcept;
    // Python truthiness: null, false, 0, 0.0, "", [] and {} are false.
    bool truthy() const noexcept;

    static JsonValue make_string(std::string s);
};

// "null", "boolean", "number", "string", "array" or "object".
const char * json_type_name(JsonValue::Type t) noexcept;

// Deepest nesting accepted (arrays/objects); deeper input is an error, never a stack overflow.
inline constexpr int kMaxJsonDepth = 256;

// Parses one JSON document. Errors are Errc::invalid_argument: "<what>: invalid JSON at byte N:
// <reason>".
Result<JsonValue> parse_json(std::string_view text, std::string_view what);

// Python's json.dumps(value, ensure_ascii=False).
std::string dump_json(const JsonValue & value);
void        dump_json(const JsonValue & value, std::string & out);
// json.dumps of one string (input must be valid UTF-8).
void dump_json_string(std::string_view s, std::string & out);
// Python's float repr as json.dumps writes it (NaN / Infinity / -Infinity for the non-finite).
std::string python_float_repr(double v);

// Byte offset of the first invalid UTF-8 sequence in s (overlong forms, surrogates and code
// points above U+10FFFF are invalid), or npos when s is valid.
size_t find_invalid_utf8(std::string_view s) noexcept;

}  // namespace dsv4::chat
