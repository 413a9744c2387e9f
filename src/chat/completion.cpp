// parse_completion(): the reference's parse_message_from_completion_text / parse_tool_calls,
// step for step, on byte offsets. The two regular expressions of the reference are matched by
// hand with Python `re` semantics:
//   invoke header   ^\s*name="(.*?)">\n$                        (DOTALL; \s = str.isspace)
//   parameter       ^ name="(.*?)" string="(true|false)">(.*?)<$  (DOTALL)
// where `$` (no MULTILINE) matches at the end or before a final "\n", so a header may end with
// ">\n\n" and a parameter with "<\n".
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "chat/json_value.hpp"
#include "dsv4/chat.hpp"

namespace dsv4 {

namespace {

namespace tok = chat_tokens;

constexpr std::string_view kToolCallsStart = "\n\n<｜DSML｜tool_calls";
constexpr std::string_view kToolCallsEnd   = "</｜DSML｜tool_calls>";
constexpr std::string_view kInvokeOpen     = "<｜DSML｜invoke";
constexpr std::string_view kInvokeClose    = "</｜DSML｜invoke";
constexpr std::string_view kParamOpen      = "<｜DSML｜parameter";
constexpr std::string_view kParamClose     = "/｜DSML｜parameter";

// The result of reading from `begin` up to the earliest of some stop strings (_read_until_stop).
struct Read {
    std::string_view text;        // what was read
    size_t           begin = 0;   // its offset
    int              which = -1;  // index of the stop string found, -1 when none
    size_t           next  = 0;   // offset after the stop string (the end when none)
};

// Reads a text front to back as _read_until_stop does. The position found for each stop string
// is remembered and reused while it is still ahead of the reading offset, so that a text made
// of many short blocks is scanned in linear rather than quadratic time.
class Scanner {
  public:
    explicit Scanner(std::string_view s) : s_(s) {}

    std::string_view text() const noexcept { return s_; }

    // The text from `from` up to the earliest of `stops` (ties: the first listed).
    Read read_until(size_t from, std::initializer_list<std::string_view> stops) {
        size_t best  = std::string_view::npos;
        int    which = -1;
        int    k     = 0;
        for (std::string_view stop : stops) {
            const size_t pos = find(stop, from);
            if (pos != std::string_view::npos && (best == std::string_view::npos || pos < best)) {
                best  = pos;
                which = k;
            }
            ++k;
        }
        Read r;
        r.begin = from;
        r.which = which;
        if (which < 0) {
            r.text = s_.substr(from);
            r.next = s_.size();
        } else {
            r.text = s_.substr(from, best - from);
            r.next = best + stops.begin()[which].size();
        }
        return r;
    }

  private:
    struct Found {
        std::string_view stop;
        size_t           from = 0;  // searched from here ...
        size_t           pos  = 0;  // ... and found it here (npos: not at all)
    };

    size_t find(std::string_view stop, size_t from) {
        for (Found & f : found_) {
            if (f.stop == stop) {
                if (f.from > from || (f.pos != std::string_view::npos && f.pos < from)) {
                    f.from = from;
                    f.pos  = s_.find(stop, from);
                }
                return f.pos;
            }
        }
        found_.push_back(Found{stop, from, s_.find(stop, from)});
        return found_.back().pos;
    }

    std::string_view   s_;
    std::vector<Found> found_;
};

// Up to 48 bytes of s, quoted, with newlines and control bytes escaped, cut on a UTF-8 boundary.
std::string quote(std::string_view s) {
    constexpr size_t kMax = 48;
    std::string      out  = "\"";
    size_t           i    = 0;
    for (; i < s.size() && i < kMax; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\n') {
            out += "\\n";
        } else if (c < 0x20 || c == '"' || c == '\\') {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (i < s.size()) {
        while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) {
            out.pop_back();  // drop a cut multi-byte sequence: continuation bytes ...
        }
        if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) {
            out.pop_back();  // ... and its lead byte
        }
        out += "...";
    }
    out += '"';
    return out;
}

Status bad_at(size_t offset, const std::string & what) {
    return Status(Errc::invalid_argument,
                  "completion text, byte " + std::to_string(offset) + ": " + what);
}

// Python's str.isspace(), i.e. what `\s` matches in a str pattern.
bool is_python_space(uint32_t cp) {
    switch (cp) {
        case 0x09:
        case 0x0A:
        case 0x0B:
        case 0x0C:
        case 0x0D:
        case 0x1C:
        case 0x1D:
        case 0x1E:
        case 0x1F:
        case 0x20:
        case 0x85:
        case 0xA0:
        case 0x1680:
        case 0x2028:
        case 0x2029:
        case 0x202F:
        case 0x205F:
        case 0x3000: return true;
        default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

// Decodes the (valid) UTF-8 sequence at s[i]; returns its length.
size_t decode_utf8(std::string_view s, size_t i, uint32_t & cp) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t     len;
    if (c < 0x80) {
        cp = c;
        return 1;
    }
    if (c < 0xE0) {
        cp  = c & 0x1F;
        len = 2;
    } else if (c < 0xF0) {
        cp  = c & 0x0F;
        len = 3;
    } else {
        cp  = c & 0x07;
        len = 4;
    }
    for (size_t k = 1; k < len && i + k < s.size(); ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    }
    return len;
}

bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// ^\s*name="(.*?)">\n$ : the tool name, or nullopt.
std::optional<std::string_view> match_invoke_header(std::string_view c) {
    size_t p = 0;
    while (p < c.size()) {
        uint32_t     cp  = 0;
        const size_t len = decode_utf8(c, p, cp);
        if (!is_python_space(cp)) {
            break;
        }
        p += len;
    }
    if (c.substr(p, 6) != "name=\"") {
        return std::nullopt;
    }
    const size_t begin = p + 6;
    // The name is lazy: the first end after which `">\n` and then `$` match.
    if (ends_with(c, "\">\n\n") && c.size() - 4 >= begin) {
        return c.substr(begin, c.size() - 4 - begin);
    }
    if (ends_with(c, "\">\n") && c.size() - 3 >= begin) {
        return c.substr(begin, c.size() - 3 - begin);
    }
    return std::nullopt;
}

struct Param {
    std::string_view name;
    bool             is_string = false;
    std::string_view value;
};

// ^ name="(.*?)" string="(true|false)">(.*?)<$ : the parameter, or nullopt.
std::optional<Param> match_param(std::string_view c) {
    constexpr std::string_view kHead  = " name=\"";
    constexpr std::string_view kTrue  = "\" string=\"true\">";
    constexpr std::string_view kFalse = "\" string=\"false\">";
    if (c.substr(0, kHead.size()) != kHead) {
        return std::nullopt;
    }
    // The value ends at the '<' followed by the end (or by a final "\n").
    size_t value_end;
    if (ends_with(c, "<\n")) {
        value_end = c.size() - 2;
    } else if (ends_with(c, "<")) {
        value_end = c.size() - 1;
    } else {
        return std::nullopt;
    }
    // The name is lazy: the first end at which the rest of the pattern matches.
    for (size_t q = kHead.size(); q < c.size(); ++q) {
        if (c[q] != '"') {
            continue;
        }
        for (bool is_string : {true, false}) {
            const std::string_view lit = is_string ? kTrue : kFalse;
            if (c.substr(q, lit.size()) == lit && q + lit.size() <= value_end) {
                return Param{c.substr(kHead.size(), q - kHead.size()), is_string,
                             c.substr(q + lit.size(), value_end - q - lit.size())};
            }
        }
    }
    return std::nullopt;
}

// parse_tool_calls from offset i (just after "\n\n<｜DSML｜tool_calls"); i ends after the block.
Status parse_tool_calls(Scanner & in, size_t & i, std::vector<ToolCall> & calls) {
    const std::string_view s = in.text();
    while (i < s.size()) {
        Read r = in.read_until(i, {kInvokeOpen, kToolCallsEnd});
        if (r.text != ">\n") {
            return bad_at(r.begin, "tool calls: expected \">\\n\" before the next " +
                                       std::string(kInvokeOpen) + " or " +
                                       std::string(kToolCallsEnd) + ", found " + quote(r.text));
        }
        i = r.next;
        if (r.which == 1) {
            break;
        }
        if (r.which < 0) {
            return bad_at(s.size(),
                          "tool calls: the text ends without " + std::string(kToolCallsEnd));
        }

        r = in.read_until(i, {kParamOpen, kInvokeClose});

        const std::optional<std::string_view> name = match_invoke_header(r.text);
        if (!name) {
            return bad_at(r.begin, "tool call: expected ` name=\"NAME\">\\n` after " +
                                       std::string(kInvokeOpen) + ", found " + quote(r.text));
        }
        i = r.next;

        std::vector<Param>                   params;
        std::unordered_set<std::string_view> names;
        int                                  stop = r.which;
        while (stop == 0) {  // "<｜DSML｜parameter"
            r = in.read_until(i, {kParamClose});

            const std::optional<Param> p = match_param(r.text);
            if (!p) {
                return bad_at(r.begin,
                              "tool call \"" + std::string(*name) +
                                  "\": expected ` name=\"KEY\" string=\"true|false\">VALUE<` "
                                  "before " +
                                  std::string(kParamClose) + ", found " + quote(r.text));
            }
            if (!names.insert(p->name).second) {
                return bad_at(r.begin, "tool call \"" + std::string(*name) +
                                           "\": duplicate parameter name \"" +
                                           std::string(p->name) + "\"");
            }
            params.push_back(*p);
            i = r.next;
            r = in.read_until(i, {kParamOpen, kInvokeClose});
            if (r.text != ">\n") {
                return bad_at(r.begin, "tool call \"" + std::string(*name) +
                                           "\": expected \">\\n\" after a parameter, found " +
                                           quote(r.text));
            }
            i    = r.next;
            stop = r.which;
        }

        // decode_dsml_to_arguments: string="true" values are JSON-quoted, others go in as written.
        ToolCall call;
        call.name      = std::string(*name);
        call.arguments = "{";
        for (size_t k = 0; k < params.size(); ++k) {
            if (k != 0) {
                call.arguments += ", ";
            }
            chat::dump_json_string(params[k].name, call.arguments);
            call.arguments += ": ";
            if (params[k].is_string) {
                chat::dump_json_string(params[k].value, call.arguments);
            } else {
                call.arguments += params[k].value;
            }
        }
        call.arguments += "}";
        calls.push_back(std::move(call));
    }
    return Status();
}

}  // namespace

Result<ParsedCompletion> parse_completion(std::string_view text, ThinkingMode mode) {
    const size_t bad_utf8 = chat::find_invalid_utf8(text);
    if (bad_utf8 != std::string_view::npos) {
        return bad_at(bad_utf8, "not valid UTF-8");
    }
    Scanner          in(text);
    ParsedCompletion out;
    size_t           i = 0;
    std::string_view reasoning;  // starts at byte 0

    if (mode == ThinkingMode::thinking) {
        const Read r = in.read_until(0, {tok::think_end, kToolCallsStart});
        if (r.which != 0) {
            return bad_at(r.which < 0 ? text.size() : r.next - kToolCallsStart.size(),
                          "thinking mode: missing </think> (the reasoning must be closed before "
                          "the answer or any tool call)");
        }
        reasoning = r.text;
        i         = r.next;
    }

    const Read             body       = in.read_until(i, {tok::eos, kToolCallsStart});
    const std::string_view content    = body.text;
    const size_t           content_at = body.begin;
    if (body.which < 0) {
        return bad_at(text.size(), "missing the EOS token " + std::string(tok::eos) +
                                       " at the end of the completion");
    }
    i = body.next;
    if (body.which == 1) {
        if (Status st = parse_tool_calls(in, i, out.tool_calls); !st.ok()) {
            return st;
        }
        const Read tail = in.read_until(i, {tok::eos});
        if (!tail.text.empty()) {
            return bad_at(tail.begin, "unexpected text after " + std::string(kToolCallsEnd) +
                                          " (only the EOS token may follow): " + quote(tail.text));
        }
        i                  = tail.next;
        out.ended_with_eos = tail.which == 0;
    }
    if (i != text.size()) {
        return bad_at(i, "unexpected text after the EOS token: " + quote(text.substr(i)));
    }

    for (std::string_view sp : {tok::bos, tok::eos, tok::think_start, tok::think_end, tok::dsml}) {
        const size_t in_content = content.find(sp);
        if (in_content != std::string_view::npos) {
            return bad_at(content_at + in_content,
                          "special token " + std::string(sp) + " inside the content");
        }
        const size_t in_reasoning = reasoning.find(sp);
        if (in_reasoning != std::string_view::npos) {
            return bad_at(in_reasoning,
                          "special token " + std::string(sp) + " inside the reasoning");
        }
    }
    out.reasoning_content = std::string(reasoning);
    out.content           = std::string(content);
    return out;
}

}  // namespace dsv4
