// JSON in and out with Python's `json` module semantics (see json_value.hpp). simdjson's
// On-Demand API tokenises the text, unescapes strings and checks UTF-8 and structure; the
// Python-specific parts (number literals kept as written, NaN/Infinity, duplicate keys, the BOM
// and digit-limit rules) are handled here on the raw tokens.
#include "chat/json_value.hpp"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace dsv4::chat {

namespace od = simdjson::ondemand;

const JsonValue * JsonValue::find(std::string_view key) const noexcept {
    if (type != Type::object) {
        return nullptr;
    }
    for (size_t i = 0; i < keys.size(); ++i) {
        if (keys[i] == key) {
            return &items[i];
        }
    }
    return nullptr;
}

bool JsonValue::truthy() const noexcept {
    switch (type) {
        case Type::null: return false;
        case Type::boolean: return boolean;
        case Type::integer: return text != "0";
        case Type::floating: return number != 0.0;  // NaN is truthy, as in Python
        case Type::string: return !text.empty();
        case Type::array:
        case Type::object: return !items.empty();
    }
    return false;
}

JsonValue JsonValue::make_string(std::string s) {
    JsonValue v;
    v.type = Type::string;
    v.text = std::move(s);
    return v;
}

const char * json_type_name(JsonValue::Type t) noexcept {
    switch (t) {
        case JsonValue::Type::null: return "null";
        case JsonValue::Type::boolean: return "boolean";
        case JsonValue::Type::integer:
        case JsonValue::Type::floating: return "number";
        case JsonValue::Type::string: return "string";
        case JsonValue::Type::array: return "array";
        case JsonValue::Type::object: return "object";
    }
    return "unknown";
}

size_t find_invalid_utf8(std::string_view s) noexcept {
    const auto * p = reinterpret_cast<const unsigned char *>(s.data());
    const size_t n = s.size();
    size_t       i = 0;
    while (i < n) {
        const unsigned c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t   len = 0;
        uint32_t cp  = 0;
        uint32_t min = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp  = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp  = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp  = c & 0x07;
            min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len) {
            return i;
        }
        for (size_t k = 1; k < len; ++k) {
            const unsigned cc = p[i + k];
            if ((cc & 0xC0) != 0x80) {
                return i;
            }
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return i;
        }
        i += len;
    }
    return std::string_view::npos;
}

// ---- output ------------------------------------------------------------------------------------

void dump_json_string(std::string_view s, std::string & out) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    size_t run = 0;  // start of the pending run of bytes copied as they are
    for (size_t i = 0; i < s.size(); ++i) {
        const auto   c   = static_cast<unsigned char>(s[i]);
        const char * esc = nullptr;
        switch (c) {
            case '"': esc = "\\\""; break;
            case '\\': esc = "\\\\"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            default: break;
        }
        if (esc == nullptr && c >= 0x20) {
            continue;
        }
        out.append(s.data() + run, i - run);
        run = i + 1;
        if (esc != nullptr) {
            out += esc;
        } else {
            const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
            out.append(u, sizeof u);
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

std::string python_float_repr(double v) {
    if (std::isnan(v)) {
        return "NaN";
    }
    if (std::isinf(v)) {
        return v > 0 ? "Infinity" : "-Infinity";
    }
    if (v == 0.0) {
        return std::signbit(v) ? "-0.0" : "0.0";
    }
    // Shortest round-trip digits (the same digits as Python's repr), then Python's layout.
    char             buf[64];
    auto             r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));  // [-]d[.ddd]e(+|-)XX
    std::string      out;
    if (!sci.empty() && sci[0] == '-') {
        out += '-';
        sci.remove_prefix(1);
    }
    const size_t e_pos = sci.find('e');
    std::string  digits;
    for (char ch : sci.substr(0, e_pos)) {
        if (ch != '.') {
            digits += ch;
        }
    }
    int exp10 = 0;
    std::from_chars(sci.data() + e_pos + (sci[e_pos + 1] == '+' ? 2 : 1), sci.data() + sci.size(),
                    exp10);
    const int ndig = static_cast<int>(digits.size());
    if (exp10 >= -5 + 1 && exp10 < 16) {  // repr uses positional notation for 1e-4 <= |v| < 1e16
        const int decpt = exp10 + 1;      // digits before the decimal point
        if (decpt <= 0) {
            out += "0.";
            out.append(static_cast<size_t>(-decpt), '0');
            out += digits;
        } else if (decpt < ndig) {
            out.append(digits, 0, static_cast<size_t>(decpt));
            out += '.';
            out.append(digits, static_cast<size_t>(decpt), std::string::npos);
        } else {
            out += digits;
            out.append(static_cast<size_t>(decpt - ndig), '0');
            out += ".0";
        }
    } else {
        out += digits[0];
        if (ndig > 1) {
            out += '.';
            out.append(digits, 1, std::string::npos);
        }
        out += exp10 < 0 ? "e-" : "e+";
        const int a = exp10 < 0 ? -exp10 : exp10;
        if (a < 10) {
            out += '0';
        }
        out += std::to_string(a);
    }
    return out;
}

void dump_json(const JsonValue & v, std::string & out) {
    switch (v.type) {
        case JsonValue::Type::null: out += "null"; return;
        case JsonValue::Type::boolean: out += v.boolean ? "true" : "false"; return;
        case JsonValue::Type::integer: out += v.text; return;
        case JsonValue::Type::floating: out += python_float_repr(v.number); return;
        case JsonValue::Type::string: dump_json_string(v.text, out); return;
        case JsonValue::Type::array:
            out += '[';
            for (size_t i = 0; i < v.items.size(); ++i) {
                if (i != 0) {
                    out += ", ";
                }
                dump_json(v.items[i], out);
            }
            out += ']';
            return;
        case JsonValue::Type::object:
            out += '{';
            for (size_t i = 0; i < v.items.size(); ++i) {
                if (i != 0) {
                    out += ", ";
                }
                dump_json_string(v.keys[i], out);
                out += ": ";
                dump_json(v.items[i], out);
            }
            out += '}';
            return;
    }
}

std::string dump_json(const JsonValue & value) {
    std::string out;
    dump_json(value, out);
    return out;
}

// ---- input -------------------------------------------------------------------------------------

namespace {

// Python's int() refuses decimal strings longer than this (sys.int_info.default_max_str_digits,
// Python >= 3.11), so json.loads fails on such integer literals.
constexpr size_t kPythonMaxIntDigits = 4300;

bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Checks t against the JSON number grammar; is_float is set when it has a fraction or exponent
// (Python's json makes those floats, the others ints).
bool scan_number(std::string_view t, bool & is_float) {
    size_t i = 0;
    size_t n = t.size();
    is_float = false;
    if (i < n && t[i] == '-') {
        ++i;
    }
    if (i >= n) {
        return false;
    }
    if (t[i] == '0') {
        ++i;
    } else if (t[i] >= '1' && t[i] <= '9') {
        while (i < n && is_digit(t[i])) {
            ++i;
        }
    } else {
        return false;
    }
    if (i < n && t[i] == '.') {
        is_float = true;
        ++i;
        if (i >= n || !is_digit(t[i])) {
            return false;
        }
        while (i < n && is_digit(t[i])) {
            ++i;
        }
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        is_float = true;
        ++i;
        if (i < n && (t[i] == '+' || t[i] == '-')) {
            ++i;
        }
        if (i >= n || !is_digit(t[i])) {
            return false;
        }
        while (i < n && is_digit(t[i])) {
            ++i;
        }
    }
    return i == n;
}

// float(t) as Python computes it for a valid JSON float literal: correctly rounded, overflow to
// +-inf and underflow to +-0.0.
double float_value(std::string_view t) {
    double v = 0.0;
    auto   r = std::from_chars(t.data(), t.data() + t.size(), v);
    if (r.ec == std::errc()) {
        return v;
    }
    // Out of range: decide by the decimal exponent of the first non-zero digit.
    const bool neg  = !t.empty() && t[0] == '-';
    size_t     i    = neg ? 1 : 0;
    int64_t    lead = std::numeric_limits<int64_t>::min();  // exponent of the first non-zero digit
    int64_t    int_digits = 0;
    for (; i < t.size() && is_digit(t[i]); ++i) {
        if (lead == std::numeric_limits<int64_t>::min() && t[i] != '0') {
            lead = -int_digits;  // fixed up below once the integer length is known
        }
        ++int_digits;
    }
    if (lead != std::numeric_limits<int64_t>::min()) {
        lead += int_digits - 1;
    }
    if (i < t.size() && t[i] == '.') {
        ++i;
        for (int64_t k = 1; i < t.size() && is_digit(t[i]); ++i, ++k) {
            if (lead == std::numeric_limits<int64_t>::min() && t[i] != '0') {
                lead = -k;
            }
        }
    }
    int64_t exp10 = 0;
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
        ++i;
        bool eneg = false;
        if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
            eneg = t[i] == '-';
            ++i;
        }
        for (; i < t.size() && is_digit(t[i]); ++i) {
            exp10 = std::min<int64_t>(exp10 * 10 + (t[i] - '0'), int64_t{1} << 40);
        }
        if (eneg) {
            exp10 = -exp10;
        }
    }
    if (lead == std::numeric_limits<int64_t>::min()) {
        return neg ? -0.0 : 0.0;
    }
    const bool   overflow = lead + exp10 > 0;
    const double mag      = overflow ? std::numeric_limits<double>::infinity() : 0.0;
    return neg ? -mag : mag;
}

class Reader {
  public:
    Reader(const char * base, size_t size, std::string_view what, od::document * doc = nullptr)
        : base_(base), size_(size), what_(what), doc_(doc) {}

    // `at` is where the problem is; nullptr: where simdjson's iterator stopped.
    Status fail(const char * at, std::string_view reason) const {
        if (at == nullptr && doc_ != nullptr) {
            const char * loc = nullptr;
            if (!doc_->current_location().get(loc)) {
                at = loc;
            }
        }
        size_t off = size_;
        if (at != nullptr && at >= base_ && at <= base_ + size_) {
            off = static_cast<size_t>(at - base_);
        }
        std::string msg(what_);
        msg += ": invalid JSON at byte ";
        msg += std::to_string(off);
        msg += ": ";
        msg += reason;
        return Status(Errc::invalid_argument, std::move(msg));
    }

    Status fail(const char * at, simdjson::error_code e) const {
        return fail(at, simdjson::error_message(e));
    }

    Status value(od::value & v, JsonValue & out, int depth) {
        std::string_view raw = v.raw_json_token();
        const char *     at  = raw.data();
        while (!raw.empty() && is_json_space(raw.back())) {
            raw.remove_suffix(1);
        }
        if (raw.empty()) {
            return fail(at, "expecting a value");
        }
        switch (raw[0]) {
            case '{': return object(v, out, depth + 1, at);
            case '[': return array(v, out, depth + 1, at);
            case '"': {
                std::string_view s;
                if (auto e = v.get_string().get(s)) {
                    return fail(at, e);
                }
                out.type = JsonValue::Type::string;
                out.text.assign(s.data(), s.size());
                return Status();
            }
            default: break;
        }
        if (raw == "true" || raw == "false") {
            out.type    = JsonValue::Type::boolean;
            out.boolean = raw == "true";
            return Status();
        }
        if (raw == "null") {
            out.type = JsonValue::Type::null;
            return Status();
        }
        if (raw == "NaN" || raw == "Infinity" || raw == "-Infinity") {
            out.type   = JsonValue::Type::floating;
            out.number = raw == "NaN"        ? std::numeric_limits<double>::quiet_NaN()
                         : raw == "Infinity" ? std::numeric_limits<double>::infinity()
                                             : -std::numeric_limits<double>::infinity();
            return Status();
        }
        bool is_float = false;
        if (!scan_number(raw, is_float)) {
            return fail(at, "expecting a value");
        }
        if (is_float) {
            out.type   = JsonValue::Type::floating;
            out.number = float_value(raw);
            return Status();
        }
        const size_t ndigits = raw.size() - (raw[0] == '-' ? 1 : 0);
        if (ndigits > kPythonMaxIntDigits) {
            return fail(at, "integer literal longer than 4300 digits (Python's int limit)");
        }
        out.type = JsonValue::Type::integer;
        out.text = raw == "-0" ? std::string("0") : std::string(raw);
        return Status();
    }

  private:
    Status array(od::value & v, JsonValue & out, int depth, const char * at) {
        if (depth > kMaxJsonDepth) {
            return fail(at, "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        }
        od::array arr;
        if (auto e = v.get_array().get(arr)) {
            return fail(at, e);
        }
        out.type = JsonValue::Type::array;
        for (auto el : arr) {
            od::value ev;
            if (auto e = std::move(el).get(ev)) {
                return fail(nullptr, e);
            }
            JsonValue child;
            if (Status st = value(ev, child, depth); !st.ok()) {
                return st;
            }
            out.items.push_back(std::move(child));
        }
        return Status();
    }

    Status object(od::value & v, JsonValue & out, int depth, const char * at) {
        if (depth > kMaxJsonDepth) {
            return fail(at, "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        }
        od::object obj;
        if (auto e = v.get_object().get(obj)) {
            return fail(at, e);
        }
        out.type = JsonValue::Type::object;
        std::unordered_map<std::string, size_t> index;
        for (auto f : obj) {
            od::field field;
            if (auto e = std::move(f).get(field)) {
                return fail(nullptr, e);
            }
            std::string_view key;
            if (auto e = field.unescaped_key().get(key)) {
                return fail(nullptr, e);
            }
            std::string k(key);
            JsonValue   child;
            if (Status st = value(field.value(), child, depth); !st.ok()) {
                return st;
            }
            // A repeated key keeps its first position and takes the last value (a Python dict).
            auto [it, inserted] = index.emplace(k, out.items.size());
            if (inserted) {
                out.keys.push_back(std::move(k));
                out.items.push_back(std::move(child));
            } else {
                out.items[it->second] = std::move(child);
            }
        }
        return Status();
    }

    const char *     base_;
    size_t           size_;
    std::string_view what_;
    od::document *   doc_;
};

}  // namespace

Result<JsonValue> parse_json(std::string_view text, std::string_view what) {
    Reader reader(text.data(), text.size(), what);
    if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF &&
        static_cast<unsigned char>(text[1]) == 0xBB &&
        static_cast<unsigned char>(text[2]) == 0xBF) {
        return reader.fail(text.data(), "unexpected UTF-8 BOM");
    }
    // The text is parsed as the single element of an array, so that scalars, arrays and objects
    // all go through one path and extra values after the first are detected.
    simdjson::padded_string buf(text.size() + 2);
    char *                  d = buf.data();
    if (d == nullptr) {
        return Status(Errc::out_of_memory, std::string(what) + ": cannot allocate " +
                                               std::to_string(text.size()) + " bytes to parse");
    }
    d[0] = '[';
    if (!text.empty()) {
        std::memcpy(d + 1, text.data(), text.size());
    }
    d[text.size() + 1] = ']';
    od::parser   parser;
    od::document doc;
    Reader       wrapped(buf.data() + 1, text.size(), what, &doc);
    if (auto e = parser.iterate(buf).get(doc)) {
        return Reader(buf.data() + 1, text.size(), what).fail(nullptr, e);
    }
    od::array outer;
    if (auto e = doc.get_array().get(outer)) {
        return wrapped.fail(nullptr, e);
    }
    JsonValue result;
    size_t    count = 0;
    for (auto el : outer) {
        od::value v;
        if (auto e = std::move(el).get(v)) {
            return wrapped.fail(nullptr, e);
        }
        if (count == 1) {
            return wrapped.fail(v.raw_json_token().data(), "extra data after the JSON value");
        }
        if (Status st = wrapped.value(v, result, 0); !st.ok()) {
            return st;
        }
        ++count;
    }
    if (count == 0) {
        return wrapped.fail(nullptr, "expecting a value");
    }
    const char * rest = nullptr;
    if (!doc.current_location().get(rest) && rest != nullptr) {
        return wrapped.fail(rest, "extra data after the JSON value");
    }
    return result;
}

}  // namespace dsv4::chat
