// The DeepSeek-V4 added-token table (1283 entries, ids 0-2 and 128000-129279), generated from
// the rules of docs/v4-spec.md §6.1, and a helper that turns DeepSeek-V3's tokenizer.json into
// a V4 one by replacing its added_tokens array (vocab, merges, pre-tokenizer are the same).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace dsv4_test {

struct AddedTokenSpec {
    int32_t     id;
    std::string content;
    bool        special;
};

// "<｜" + words joined by "▁" + "｜>" ("begin of sentence" -> "<｜begin▁of▁sentence｜>").
inline std::string fw(const std::string & words) {
    std::string inner;
    for (const char c : words) {
        if (c == ' ') {
            inner += "\xE2\x96\x81";  // U+2581
        } else {
            inner += c;
        }
    }
    return "<\xEF\xBD\x9C" + inner + "\xEF\xBD\x9C>";  // U+FF5C on both sides
}

inline std::vector<AddedTokenSpec> v4_added_tokens() {
    std::vector<AddedTokenSpec> t;
    auto                        add = [&](int32_t id, const std::string & content, bool special) {
        t.push_back({id, content, special});
    };
    add(0, fw("begin of sentence"), true);
    add(1, fw("end of sentence"), true);
    add(2, fw(" pad "), true);
    for (int n = 0; n < 800; ++n) add(128000 + n, fw("place holder no " + std::to_string(n)), true);
    int32_t id    = 128800;
    auto    named = [&](const std::vector<std::string> & words, bool special = false) {
        for (const std::string & w : words) add(id++, fw(w), special);
    };
    named({"fim hole", "fim begin", "fim end", "User", "Assistant"});
    add(id++, "<|EOT|>", true);  // ASCII pipes
    named({"tool calls begin", "tool calls end", "tool call begin", "tool call end",
           "tool outputs begin", "tool outputs end", "tool output begin", "tool output end",
           "tool sep"});
    named({"begin of repo name", "end of repo name", "begin of file name", "end of file name",
           "begin of file", "end of file"});
    add(id++, "<think>", false);
    add(id++, "</think>", false);
    named({"place holder for copy", "place holder for pointer replace"});
    add(id++,
        "\xEF\xBD\x9C"
        "DSML"
        "\xEF\xBD\x9C",
        false);  // no angle brackets
    named({"begin sys", "end sys", "latest_reminder", "action", "query", "authority", "domain",
           "task", "political", "entity", "title", "safety", "answer", "search"});
    add(id++, "<dsml:", false);
    add(id++, "</dsml:", false);
    named({"search begin", "search end", "extracted_url", "read_url", "end_of_query"});
    for (int n = 21; n <= 435; ++n) {
        char buf[48];
        std::snprintf(buf, sizeof buf, "<|place_holder_mm_span_%04d|>", n);
        add(id++, buf, true);
    }
    named({"rl_image_pad", "rl_image_start", "image2"});
    add(id++, "<\xEF\xBD\x9C/table>\xEF\xBD\x9C", false);  // spelled so in the spec's table
    named({"table", "/td", "td", "/tr", "tr", "/polygon", "polygon", "/point", "point", "/box",
           "box", "/ref", "ref", "image"});
    return t;
}

inline std::string json_escape(const std::string & s) {
    std::string out;
    for (const char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

inline std::string added_tokens_json(const std::vector<AddedTokenSpec> & tokens) {
    std::string out = "[";
    for (size_t i = 0; i < tokens.size(); ++i) {
        const AddedTokenSpec & a = tokens[i];
        if (i) out += ",";
        out += "{\"id\":" + std::to_string(a.id) + ",\"content\":\"" + json_escape(a.content) +
               "\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":" +
               (a.special ? "false" : "true") + ",\"special\":" + (a.special ? "true" : "false") +
               "}";
    }
    return out + "]";
}

// `json` with the value of its top-level "added_tokens" array replaced by `array_json`; empty
// string if the key is not found.
inline std::string replace_added_tokens(const std::string & json, const std::string & array_json) {
    const size_t key = json.find("\"added_tokens\"");
    if (key == std::string::npos) return {};
    const size_t open = json.find('[', key);
    if (open == std::string::npos) return {};
    int  depth     = 0;
    bool in_string = false;
    for (size_t i = open; i < json.size(); ++i) {
        const char c = json[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[') {
            ++depth;
        } else if (c == ']' && --depth == 0) {
            return json.substr(0, open) + array_json + json.substr(i + 1);
        }
    }
    return {};
}

}  // namespace dsv4_test
