// Offline tokenizer tests (label `unit`): a hand-written byte-level tokenizer.json whose
// expected ids follow by hand from the BPE rules (lowest merge rank first, leftmost among equal
// ranks), HF's documented Split behaviours, added-token matching, the GPT-2 regex, invalid
// UTF-8 (expected replacements are Python's bytes.decode(errors="replace")), the streaming
// decoder, thread safety, and one test per loader error path.
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "dsv4/tokenizer.hpp"
#include "tokenizer/regex.hpp"
#include "tokenizer/utf8.hpp"

using dsv4::Errc;
using V = std::vector<int32_t>;

namespace {

// Vocabulary in the GPT-2 alphabet ("Ġ" is the space byte). Merge ranks are their positions.
const char * kVocab = R"({"a":0,"b":1,"c":2,"d":3,"Ġ":4,"!":5,"1":6,"2":7,"3":8,"ab":9,"bc":10,
  "abc":11,"Ġa":12,"cd":13,"aa":14,"12":15,"X":16,"Y":17,"Z":18,"-":19,"a-":23,"-b":24,"--":25,
  "-c":26})";
const char * kMergesStr = R"(["a b","b c","ab c","Ġ a","c d","a a","1 2","a -","- b","- -","- c"])";
const char * kMergesArr = R"([["a","b"],["b","c"],["ab","c"],["Ġ","a"],["c","d"],["a","a"],
  ["1","2"],["a","-"],["-","b"],["-","-"],["-","c"]])";

const char * kDefaultPre = R"({"type":"Sequence","pretokenizers":[
  {"type":"Split","pattern":{"Regex":"\\p{N}{1,3}"},"behavior":"Isolated","invert":false},
  {"type":"Split","pattern":{"Regex":" ?\\p{L}+"},"behavior":"Isolated","invert":false},
  {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]})";

const char * kAdded = R"([
  {"id":50,"content":"[A]","special":true,"normalized":false},
  {"id":51,"content":"[A][B]","special":false,"normalized":false},
  {"id":52,"content":"XY","special":false,"normalized":true},
  {"id":53,"content":"YZ","special":false,"normalized":false},
  {"id":54,"content":"[M]","special":false,"normalized":false,"lstrip":true,"rstrip":true},
  {"id":55,"content":"dd","special":false,"normalized":false,"single_word":true},
  {"id":56,"content":"[N]","special":false,"normalized":false}])";

std::string mini_json(const std::string & pre = kDefaultPre, const std::string & added = kAdded,
                      const std::string & merges = kMergesStr) {
    return std::string(R"({"version":"1.0","truncation":null,"padding":null,"added_tokens":)") +
           added + R"(,"normalizer":{"type":"Sequence","normalizers":[]},"pre_tokenizer":)" + pre +
           R"(,"post_processor":{"type":"ByteLevel","add_prefix_space":true},)" +
           R"("decoder":{"type":"ByteLevel"},"model":{"type":"BPE","dropout":null,)" +
           R"("unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,)" +
           R"("fuse_unk":false,"byte_fallback":false,"vocab":)" + kVocab + R"(,"merges":)" +
           merges + "}}";
}

dsv4::Tokenizer make(const std::string & json) {
    auto r = dsv4::Tokenizer::from_json(json, "mini.json");
    INFO(r.status().to_string());
    REQUIRE(r.ok());
    return r.value();
}

V enc(const dsv4::Tokenizer & t, const std::string & s) {
    auto r = t.encode(s);
    INFO(r.status().to_string());
    REQUIRE(r.ok());
    return r.value();
}

// Every byte b is token id b, no merges: encode() shows the exact bytes BPE receives.
std::string bytes_json() {
    std::string vocab = "{";
    for (int b = 0; b < 256; ++b) {
        if (b) vocab += ",";
        std::string s = dsv4::tok::byte_level_map(std::string(1, static_cast<char>(b)));
        if (s == "\"" || s == "\\") s = "\\" + s;
        vocab += "\"" + s + "\":" + std::to_string(b);
    }
    vocab += "}";
    return R"({"added_tokens":[{"id":256,"content":"<s>","special":true}],"normalizer":null,)"
           R"("pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":false},)"
           R"("decoder":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":)" +
           vocab + R"(,"merges":[]}})";
}

V bytes_of(const std::string & s) {
    V v;
    for (const char c : s) v.push_back(static_cast<uint8_t>(c));
    return v;
}

}  // namespace

TEST_CASE("BPE: rank order, leftmost on ties, hand-derived ids", "[tokenizer]") {
    for (const char * merges : {kMergesStr, kMergesArr}) {
        const auto t = make(mini_json(kDefaultPre, kAdded, merges));
        CHECK(enc(t, "abc") == V{11});     // a b c -> ab c (r0) -> abc (r2)
        CHECK(enc(t, "bcd") == V{10, 3});  // b c (r1) beats c d (r4); no "bc d"
        CHECK(enc(t, "aaa") == V{14, 0});  // two "a a" (r5): the leftmost merges first
        CHECK(enc(t, " ab") == V{4, 9});   // "a b" (r0) before "Ġ a" (r3)
        CHECK(enc(t, " a") == V{12});
        CHECK(enc(t, "abcd") == V{11, 3});  // ab (r0), abc (r2); "c d" lost its c
        CHECK(enc(t, "123") == V{15, 8});
        CHECK(enc(t, "") == V{});
    }
}

TEST_CASE("tokenizer: vocabulary queries and decode", "[tokenizer]") {
    const auto t = make(mini_json());
    CHECK(t.vocab_size() == 57);
    CHECK(t.token_id("Ġa") == 12);
    CHECK(t.token_id("[A][B]") == 51);
    CHECK(t.token_id("nope") == -1);
    CHECK(*t.token_to_piece(12) == " a");
    CHECK(*t.token_to_piece(50) == "[A]");
    CHECK(t.is_special(50));
    CHECK_FALSE(t.is_special(51));
    CHECK(t.bos_id() == -1);
    CHECK(*t.decode(V{12, 50, 13}) == " a[A]cd");
    CHECK(*t.decode(V{12, 50, 13}, /*skip_special=*/true) == " acd");
    auto bad = t.decode(V{12, 20, 13});  // 20 is a hole in the id space
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().code() == Errc::invalid_argument);
    CHECK(bad.status().message().find("token id 20 at position 1") != std::string::npos);
    CHECK_FALSE(t.decode(V{-1}).ok());
    CHECK_FALSE(t.decode(V{57}).ok());
    CHECK_FALSE(t.token_to_piece(99).ok());
}

TEST_CASE("added tokens: longest match, two-stage matching, strip, single_word", "[tokenizer]") {
    const auto t = make(mini_json());
    CHECK(enc(t, "[A][B][A]") == V{51, 50});
    CHECK(enc(t, "a[A]b") == V{0, 50, 1});
    // normalized=false tokens are cut first (HF), so "YZ" wins over the earlier "XY".
    CHECK(enc(t, "XYZ") == V{16, 53});
    CHECK(enc(t, "XYa") == V{52, 0});
    // lstrip/rstrip swallow the whitespace around the token; without them it stays.
    CHECK(enc(t, "a [M] b") == V{0, 54, 1});
    CHECK(enc(t, "a [N] b") == V{0, 4, 56, 4, 1});
    // single_word: not inside a word.
    CHECK(enc(t, " dd!") == V{4, 55, 5});
    CHECK(enc(t, "add") == V{0, 3, 3});
}

TEST_CASE("Split behaviours (HF NormalizedString::split semantics)", "[tokenizer]") {
    // "a-b--c" split on "-"; merges "a -", "- b", "- -", "- c" reveal the piece boundaries.
    auto with = [](const char * behavior, bool invert, bool regex) {
        const std::string pat = regex ? R"({"Regex":"-"})" : R"({"String":"-"})";
        return make(mini_json(std::string(R"({"type":"Sequence","pretokenizers":[{"type":"Split",)"
                                          R"("pattern":)") +
                                  pat + R"(,"behavior":")" + behavior + R"(","invert":)" +
                                  (invert ? "true" : "false") +
                                  R"(},{"type":"ByteLevel","add_prefix_space":false,)"
                                  R"("use_regex":false}]})",
                              "[]"));
    };
    for (const bool regex : {false, true}) {
        CHECK(enc(with("Isolated", false, regex), "a-b--c") == V{0, 19, 1, 19, 19, 2});
        CHECK(enc(with("Removed", false, regex), "a-b--c") == V{0, 1, 2});
        CHECK(enc(with("MergedWithPrevious", false, regex), "a-b--c") == V{23, 1, 19, 19, 2});
        CHECK(enc(with("MergedWithNext", false, regex), "a-b--c") == V{0, 24, 19, 26});
        CHECK(enc(with("Contiguous", false, regex), "a-b--c") == V{0, 19, 1, 25, 2});
        CHECK(enc(with("Removed", true, regex), "a-b--c") == V{19, 19, 19});
    }
}

TEST_CASE("ByteLevel pre-tokenizer: GPT-2 regex with look-ahead, add_prefix_space", "[tokenizer]") {
    const auto plain = make(mini_json(
        R"({"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true})"));
    // "ab", " " (\s+(?!\S) leaves the last space to the word), " cd"
    CHECK(enc(plain, "ab  cd") == V{9, 4, 4, 13});
    const auto prefix = make(mini_json(R"({"type":"ByteLevel","add_prefix_space":true})"));
    CHECK(enc(prefix, "ab") == V{4, 9});
    CHECK(enc(prefix, " ab") == V{4, 9});
}

TEST_CASE("Digits pre-tokenizer", "[tokenizer]") {
    auto digits = [](bool individual) {
        return make(
            mini_json(std::string(R"({"type":"Sequence","pretokenizers":[{"type":"Digits",)"
                                  R"("individual_digits":)") +
                      (individual ? "true" : "false") +
                      R"(},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]})"));
    };
    CHECK(enc(digits(true), "123") == V{6, 7, 8});
    CHECK(enc(digits(false), "123") == V{15, 8});
    CHECK(enc(digits(false), "a12") == V{0, 15});
}

TEST_CASE("regex: Oniguruma/HF semantics of \\s on PCRE2", "[tokenizer]") {
    auto re = dsv4::tok::Regex::compile("\\s+", "test");
    REQUIRE(re.ok());
    auto count = [&](const std::string & s) {
        dsv4::tok::MatchScratch                    scratch;
        std::vector<std::pair<uint32_t, uint32_t>> m;
        REQUIRE(re.value()->find_all(s, scratch, m).ok());
        return m.size();
    };
    CHECK(count("\xC2\x85") == 1);      // U+0085 NEL: White_Space
    CHECK(count("\xE3\x80\x80") == 1);  // U+3000
    CHECK(count("\xE1\xA0\x8E") == 0);  // U+180E: PCRE2's \s takes it, Unicode White_Space not
    CHECK(count("\xEF\xBB\xBF") == 0);  // U+FEFF
    CHECK(count("\x1C") == 0);
    CHECK(dsv4::tok::translate_oniguruma_pattern("[^\\s\\p{L}]\\S") ==
          "[^\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
          "\\x{202F}\\x{205F}\\x{3000}\\p{L}][^\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-"
          "\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]");
    CHECK(dsv4::tok::translate_oniguruma_pattern("[]s]\\\\s\\Q\\s\\E") == "[]s]\\\\s\\Q\\s\\E");
}

TEST_CASE("invalid UTF-8 input is repaired like Python's errors='replace'", "[tokenizer]") {
    const auto        t   = make(bytes_json());
    const std::string rep = "\xEF\xBF\xBD";
    CHECK(enc(t,
              "a\xFF"
              "b") == bytes_of("a" + rep + "b"));
    CHECK(enc(t, "\xE4\xBD") == bytes_of(rep));
    CHECK(enc(t, "\xED\xA0\x80") == bytes_of(rep + rep + rep));
    CHECK(enc(t,
              "\xF0\x9F\x98"
              "a") == bytes_of(rep + "a"));
    CHECK(enc(t, "\xC0\xAF") == bytes_of(rep + rep));
    CHECK(enc(t, "\xF4\x90\x80\x80") == bytes_of(rep + rep + rep + rep));
    CHECK(enc(t, std::string("a\0b", 3)) == V{'a', 0, 'b'});
    CHECK(enc(t, "x<s>y") == V{'x', 256, 'y'});
    // decode of byte tokens that do not form UTF-8: U+FFFD per maximal subpart
    CHECK(*t.decode(V{0xE4, 0xBD, 'a', 0xFF}) == rep + "a" + rep);
}

TEST_CASE("stream decoder never emits a split UTF-8 sequence", "[tokenizer]") {
    const auto               t = make(bytes_json());
    dsv4::TokenStreamDecoder d(t);
    CHECK(*d.push(0xE4) == "");
    CHECK(d.pending_bytes() == 1);
    CHECK(*d.push(0xBD) == "");
    CHECK(*d.push(0xA0) == "\xE4\xBD\xA0");  // 你
    CHECK(*d.push(0xF0) == "");
    CHECK(*d.push(0x9F) == "");
    CHECK(*d.push(0x98) == "");
    CHECK(*d.push(0x80) == "\xF0\x9F\x98\x80");  // 😀
    CHECK(*d.push(0xFF) == "\xEF\xBF\xBD");      // can never be valid: out at once
    CHECK(*d.push(0xE4) == "");
    CHECK(*d.push('A') ==
          "\xEF\xBF\xBD"
          "A");  // the held byte turned out invalid
    CHECK(*d.push(0xE4) == "");
    CHECK(*d.push(0xBD) == "");
    CHECK_FALSE(d.push(9999).ok());
    CHECK(d.pending_bytes() == 2);
    CHECK(d.flush() == "\xEF\xBF\xBD");  // unfinished at the end: one U+FFFD, as decode()
    CHECK(d.pending_bytes() == 0);

    // Any split of any byte sequence: the pieces concatenate to decode(all), and every piece
    // is valid UTF-8.
    uint32_t x = 12345;
    for (int trial = 0; trial < 200; ++trial) {
        V ids;
        for (int i = 0; i < 40; ++i) {
            x                = x * 1664525u + 1013904223u;
            const uint32_t r = x >> 24;
            // Mostly pieces of real multi-byte characters, sometimes noise.
            static const uint8_t kBytes[] = {0xE4, 0xBD, 0xA0, 0xF0, 0x9F, 0x98,
                                             0x80, 'a',  0xC3, 0xA9, 0xFF, 0xED};
            ids.push_back(kBytes[r % sizeof kBytes]);
        }
        dsv4::TokenStreamDecoder sd(t);
        std::string              streamed;
        for (const int32_t id : ids) {
            const std::string piece = *sd.push(id);
            CHECK(dsv4::tok::utf8_is_valid(piece));
            streamed += piece;
        }
        streamed += sd.flush();
        CHECK(streamed == *t.decode(ids));
    }
}

TEST_CASE("encode is thread-safe on a shared tokenizer", "[tokenizer]") {
    const auto               t    = make(mini_json());
    const std::string        text = "abc bcd aaa [A][B] 123 a [M] b XYZ";
    const V                  want = enc(t, text);
    std::vector<int>         ok(4, 0);
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k) {
        threads.emplace_back([&, k] {
            const dsv4::Tokenizer copy = t;  // copies share the state
            int                   good = 0;
            for (int i = 0; i < 500; ++i) {
                auto r = copy.encode(text);
                good += r.ok() && r.value() == want;
            }
            ok[static_cast<size_t>(k)] = good;
        });
    }
    for (auto & th : threads) th.join();
    for (const int g : ok) CHECK(g == 500);
}

// ---- loader errors ------------------------------------------------------------------------------

namespace {

void expect_error(const std::string & json, Errc code, const std::string & needle) {
    auto r = dsv4::Tokenizer::from_json(json, "bad.json");
    INFO("expected " << dsv4::errc_name(code) << " mentioning '" << needle << "'");
    REQUIRE_FALSE(r.ok());
    INFO("got: " << r.status().to_string());
    CHECK(r.status().code() == code);
    CHECK(r.status().message().find("bad.json") != std::string::npos);
    CHECK(r.status().message().find(needle) != std::string::npos);
}

std::string replace(std::string s, const std::string & from, const std::string & to) {
    const size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
    return s;
}

}  // namespace

TEST_CASE("loader: every error names the file and the key", "[tokenizer]") {
    const std::string ok = mini_json();
    REQUIRE(dsv4::Tokenizer::from_json(ok).ok());
    const Errc inv = Errc::invalid_model, uns = Errc::unsupported_model;

    expect_error("{", inv, "malformed JSON");
    expect_error("[1,2]", inv, "top level");
    expect_error(R"({"added_tokens":[]})", inv, "'model'");
    // model type
    expect_error(replace(ok, R"("type":"BPE")", R"("type":"WordPiece")"), uns, "WordPiece");
    expect_error(replace(ok, R"("type":"BPE")", R"("type":"Unigram")"), uns, "Unigram");
    expect_error(replace(ok, R"("type":"BPE")", R"("type":7)"), inv, "model.type");
    // vocab
    expect_error(replace(ok, R"("vocab":{)", R"("vocabx":{)"), inv, "model.vocab");
    expect_error(replace(ok, R"("vocab":{)", R"("vocab":[],"v":{)"), inv, "model.vocab");
    expect_error(replace(ok, R"("a":0,)", R"("a":"0",)"), inv, "model.vocab.\"a\"");
    expect_error(replace(ok, R"("a":0,)", R"("a":-1,)"), inv, "negative");
    expect_error(replace(ok, R"("a":0,)", R"("a":0.5,)"), inv, "model.vocab.\"a\"");
    expect_error(replace(ok, R"("a":0,)", R"("a":99999999,)"), uns, "exceeds");
    expect_error(replace(ok, R"("b":1,)", R"("b":0,)"), inv, "also used by");
    // merges
    expect_error(replace(ok, R"("merges":)", R"("mergesx":)"), inv, "model.merges");
    expect_error(replace(ok, R"("merges":[)", R"("merges":{"x":[)") + "}", inv, "model.merges");
    expect_error(replace(ok, R"("a b",)", R"(7,)"), inv, "model.merges[0]");
    expect_error(replace(ok, R"("a b",)", R"("a q",)"), inv, "model.merges[0]");
    expect_error(replace(ok, R"("a b",)", R"("a q",)"), inv, "\"q\" is not in model.vocab");
    expect_error(replace(ok, R"("a b",)", R"("b a",)"), inv, "merged token \"ba\"");
    expect_error(replace(ok, R"("a b",)", R"("ab",)"), inv, "not two tokens");
    expect_error(mini_json(kDefaultPre, kAdded, R"([["a","b","c"]])"), inv, "model.merges[0]");
    expect_error(mini_json(kDefaultPre, kAdded, R"([["a",3]])"), inv, "model.merges[0][1]");
    // model options
    expect_error(replace(ok, R"("unk_token":null)", R"("unk_token":"<unk>")"), inv,
                 "model.unk_token");
    expect_error(replace(ok, R"("dropout":null)", R"("dropout":0.1)"), uns, "model.dropout");
    expect_error(
        replace(ok, R"("continuing_subword_prefix":null)", R"("continuing_subword_prefix":"##")"),
        uns, "continuing_subword_prefix");
    expect_error(replace(ok, R"("byte_fallback":false)", R"("byte_fallback":true)"), uns,
                 "byte_fallback");
    expect_error(replace(ok, R"("fuse_unk":false)", R"("fuse_unk":"no")"), inv, "model.fuse_unk");
    // added tokens
    expect_error(mini_json(kDefaultPre, "{}"), inv, "added_tokens");
    expect_error(mini_json(kDefaultPre, R"([{"content":"x"}])"), inv, "added_tokens[0].id");
    expect_error(mini_json(kDefaultPre, R"([{"id":60}])"), inv, "added_tokens[0].content");
    expect_error(mini_json(kDefaultPre, R"([{"id":60,"content":"x","special":"yes"}])"), inv,
                 "added_tokens[0].special");
    expect_error(mini_json(kDefaultPre, R"([{"id":60,"content":"x"},{"id":61,"content":"x"}])"),
                 inv, "added_tokens[1].content");
    // normalizer
    expect_error(replace(ok, R"({"type":"Sequence","normalizers":[]})", R"({"type":"NFC"})"), uns,
                 "normalizer type 'NFC'");
    expect_error(replace(ok, R"("normalizers":[])", R"("normalizers":[{"type":"Lowercase"}])"), uns,
                 "normalizer.normalizers[0].type");
    expect_error(replace(ok, R"("normalizers":[])", R"("normalizers":3)"), inv,
                 "normalizer.normalizers");
    // pre-tokenizer
    expect_error(mini_json("null"), uns, "pre_tokenizer");
    expect_error(mini_json(R"({"type":"Whitespace"})"), uns, "pre-tokenizer type 'Whitespace'");
    expect_error(mini_json(R"({"pretokenizers":[]})"), inv, "pre_tokenizer.type");
    expect_error(replace(ok, R"("\\p{N}{1,3}")", R"("(\\p{N}")"), inv,
                 "pre_tokenizer.pretokenizers[0].pattern.Regex");
    expect_error(replace(ok, R"({"Regex":"\\p{N}{1,3}"})", R"({"Glob":"*"})"), inv,
                 "pre_tokenizer.pretokenizers[0].pattern.Regex");
    expect_error(replace(ok, R"("behavior":"Isolated")", R"("behavior":"Sideways")"), inv,
                 "pre_tokenizer.pretokenizers[0].behavior");
    expect_error(mini_json(R"({"type":"Split","pattern":{"String":"-"},"behavior":"Isolated"})"),
                 uns, "ByteLevel");
    expect_error(mini_json(R"({"type":"Sequence","pretokenizers":[{"type":"ByteLevel"},)"
                           R"({"type":"Split","pattern":{"String":"-"},"behavior":"Isolated"}]})"),
                 uns, "last step");
    expect_error(replace(ok, R"("use_regex":false)", R"("use_regex":1)"), inv,
                 "pre_tokenizer.pretokenizers[2].use_regex");
    // decoder
    expect_error(replace(ok, R"("decoder":{"type":"ByteLevel"},)", ""), uns, "decoder");
    expect_error(
        replace(ok, R"("decoder":{"type":"ByteLevel"})", R"("decoder":{"type":"WordPiece"})"), uns,
        "decoder type 'WordPiece'");
    // files
    auto missing = dsv4::Tokenizer::load("/nonexistent/tokenizer.json");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().code() == Errc::file_not_found);
    CHECK(missing.status().message().find("/nonexistent/tokenizer.json") != std::string::npos);
}
