// libFuzzer target for encode() on arbitrary bytes, with a small built-in byte-level tokenizer
// (all 256 byte tokens, a few merges, added tokens, DeepSeek-V3's pre-tokenizer regexes).
// Properties: encode never fails on this tokenizer, decode(encode(x)) is x with invalid UTF-8
// replaced by U+FFFD, and the stream decoder yields the same text in valid UTF-8 pieces.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dsv4/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace {

std::string json_string(const std::string & s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

const dsv4::Tokenizer & tokenizer() {
    static const dsv4::Tokenizer t = [] {
        std::string vocab = "{";
        for (int b = 0; b < 256; ++b) {
            vocab += json_string(dsv4::tok::byte_level_map(std::string(1, static_cast<char>(b)))) +
                     ":" + std::to_string(b) + ",";
        }
        const char * merged[][2] = {{"Ġ", "t"},   {"h", "e"}, {"Ġt", "he"}, {"i", "n"}, {"Ġ", "Ġ"},
                                    {"ĠĠ", "ĠĠ"}, {"1", "2"}, {"Ċ", "Ċ"},   {"ä", "½"}};
        std::string merges       = "[";
        int         id           = 256;
        for (const auto & m : merged) {
            vocab += json_string(std::string(m[0]) + m[1]) + ":" + std::to_string(id++) + ",";
            merges += std::string(merges.size() > 1 ? "," : "") + "[" + json_string(m[0]) + "," +
                      json_string(m[1]) + "]";
        }
        vocab.back() = '}';
        merges += "]";
        const std::string json =
            std::string(R"({"added_tokens":[)") +
            R"({"id":300,"content":"<|end|>","special":true,"normalized":false},)" +
            R"({"id":301,"content":"<think>","special":false,"normalized":true},)" +
            R"({"id":302,"content":"[M]","lstrip":true,"rstrip":true},)" +
            R"({"id":303,"content":"ab","single_word":true}],)" +
            R"("normalizer":{"type":"Sequence","normalizers":[]},)" +
            R"("pre_tokenizer":{"type":"Sequence","pretokenizers":[)" +
            R"({"type":"Split","pattern":{"Regex":"\\p{N}{1,3}"},"behavior":"Isolated"},)" +
            R"({"type":"Split","pattern":{"Regex":"[一-龥぀-ゟ゠-ヿ]+"},"behavior":"Isolated"},)" +
            R"({"type":"Split","pattern":{"Regex":"[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated"},)" +
            R"({"type":"Split","pattern":{"String":"--"},"behavior":"MergedWithNext"},)" +
            R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":true}]},)" +
            R"("decoder":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":)" + vocab +
            R"(,"merges":)" + merges + "}}";
        auto r = dsv4::Tokenizer::from_json(json, "fuzz-builtin.json");
        if (!r.ok()) __builtin_trap();
        return r.value();
    }();
    return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string_view  text(reinterpret_cast<const char *>(data), size);
    const dsv4::Tokenizer & t   = tokenizer();
    auto                    ids = t.encode(text);
    if (!ids.ok()) __builtin_trap();
    auto back = t.decode(*ids);
    if (!back.ok()) __builtin_trap();
    // Only the strip flags of "[M]" may change the text.
    std::string repaired;
    dsv4::tok::utf8_append_lossy(repaired, text);
    if (repaired.find("[M]") == std::string::npos && *back != repaired) __builtin_trap();
    dsv4::TokenStreamDecoder sd(t);
    std::string              streamed;
    for (const int32_t id : *ids) {
        auto piece = sd.push(id);
        if (!piece.ok() || !dsv4::tok::utf8_is_valid(*piece)) __builtin_trap();
        streamed += *piece;
    }
    streamed += sd.flush();
    if (streamed != *back) __builtin_trap();
    return 0;
}
