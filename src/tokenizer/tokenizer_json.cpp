// tokenizer.json -> Tokenizer::Impl. simdjson DOM with error codes only (nothing throws). Every
// error names the file and the JSON key (with array indices) at fault; features that are valid
// Hugging Face configuration but not implemented here are Errc::unsupported_model naming the
// component type.
#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>

#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"

namespace dsv4::tok {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// Ids above this are refused (real vocabularies stay far below; bounds the decode table).
constexpr int64_t kMaxId = int64_t{1} << 22;

// The GPT-2 pre-tokenizer regex (ByteLevel with use_regex = true).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

#define DSV4_TOK_TRY(expr)           \
    do {                             \
        ::dsv4::Status st_ = (expr); \
        if (!st_.ok()) return st_;   \
    } while (0)

std::string render(const element & v) {
    std::string      s    = simdjson::minify(v);
    constexpr size_t kMax = 64;
    if (s.size() > kMax) {
        s.resize(kMax - 3);
        s += "...";
    }
    return s;
}

std::string quote(std::string_view s) {
    constexpr size_t kMax = 60;
    std::string      out  = "\"";
    for (size_t i = 0; i < s.size() && i < kMax; ++i) {
        const auto ch = static_cast<unsigned char>(s[i]);
        if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", ch);
            out += buf;
        } else {
            out += static_cast<char>(ch);
        }
    }
    if (s.size() > kMax) out += "...";
    return out + "\"";
}

std::string idx(const std::string & key, size_t i) {
    return key + "[" + std::to_string(i) + "]";
}

class Ctx {
  public:
    explicit Ctx(std::string src) : src_(std::move(src)) {}

    Status invalid(const std::string & key, const std::string & msg) const {
        return Status(Errc::invalid_model, src_ + ": key '" + key + "': " + msg);
    }
    Status wrong_type(const std::string & key, std::string_view expected, const element & v) const {
        return invalid(key, "expected " + std::string(expected) + ", got " + render(v));
    }
    Status unsupported(const std::string & key, const std::string & msg) const {
        return Status(Errc::unsupported_model, src_ + ": key '" + key + "': " + msg);
    }
    // A Status from a helper, re-issued with the file and key in front of its message.
    Status at(const std::string & key, const Status & st) const {
        return Status(st.code(), src_ + ": key '" + key + "': " + st.message());
    }
    Status missing(const std::string & key) const {
        return Status(Errc::invalid_model, src_ + ": missing required key '" + key + "'");
    }

    // Member `name` of `obj` (path `key`); nullopt when absent or null.
    static std::optional<element> find(const object & obj, std::string_view name) {
        element v;
        if (obj.at_key(name).get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
        return v;
    }

    Status get_object(const element & v, const std::string & key, object & out) const {
        if (v.get_object().get(out) != simdjson::SUCCESS) return wrong_type(key, "an object", v);
        return Status();
    }
    Status get_array(const element & v, const std::string & key, array & out) const {
        if (v.get_array().get(out) != simdjson::SUCCESS) return wrong_type(key, "an array", v);
        return Status();
    }
    Status get_string(const element & v, const std::string & key, std::string_view & out) const {
        if (v.get_string().get(out) != simdjson::SUCCESS) return wrong_type(key, "a string", v);
        return Status();
    }
    Status get_id(const element & v, const std::string & key, int32_t & out) const {
        int64_t x = -1;
        if (v.type() == element_type::INT64) {
            if (v.get_int64().get(x) != simdjson::SUCCESS) return wrong_type(key, "an integer", v);
        } else if (v.type() == element_type::UINT64) {
            x = kMaxId;  // certainly too large
        } else {
            return wrong_type(key, "a non-negative integer id", v);
        }
        if (x < 0) return invalid(key, "id " + std::to_string(x) + " is negative");
        if (x >= kMaxId) {
            return unsupported(key, "id " + render(v) + " exceeds the supported maximum " +
                                        std::to_string(kMaxId - 1));
        }
        out = static_cast<int32_t>(x);
        return Status();
    }
    // Optional boolean member (absent or null -> `dflt`).
    Status opt_bool(const object & obj, const std::string & prefix, std::string_view name,
                    bool dflt, bool & out) const {
        out          = dflt;
        const auto v = find(obj, name);
        if (!v) return Status();
        if (v->get_bool().get(out) != simdjson::SUCCESS) {
            return wrong_type(prefix + std::string(name), "true or false", *v);
        }
        return Status();
    }
    // Required string member.
    Status req_string(const object & obj, const std::string & prefix, std::string_view name,
                      std::string_view & out) const {
        const auto v = find(obj, name);
        if (!v) return missing(prefix + std::string(name));
        return get_string(*v, prefix + std::string(name), out);
    }

  private:
    std::string src_;
};

// ---- normalizer ---------------------------------------------------------------------------------

Status check_normalizer(const Ctx & c, const element & v, const std::string & key) {
    object obj;
    DSV4_TOK_TRY(c.get_object(v, key, obj));
    std::string_view type;
    DSV4_TOK_TRY(c.req_string(obj, key + ".", "type", type));
    if (type != "Sequence") {
        return c.unsupported(key + ".type", "normalizer type '" + std::string(type) +
                                                "' is not supported (only no normalizer or an "
                                                "empty Sequence)");
    }
    const auto list = Ctx::find(obj, "normalizers");
    if (!list) return c.missing(key + ".normalizers");
    array arr;
    DSV4_TOK_TRY(c.get_array(*list, key + ".normalizers", arr));
    size_t i = 0;
    for (element e : arr) DSV4_TOK_TRY(check_normalizer(c, e, idx(key + ".normalizers", i++)));
    return Status();
}

// ---- pre-tokenizer ------------------------------------------------------------------------------

Status parse_behavior(const Ctx & c, const object & obj, const std::string & key,
                      SplitBehavior & out) {
    std::string_view b;
    DSV4_TOK_TRY(c.req_string(obj, key + ".", "behavior", b));
    if (b == "Isolated") {
        out = SplitBehavior::isolated;
    } else if (b == "Removed") {
        out = SplitBehavior::removed;
    } else if (b == "MergedWithPrevious") {
        out = SplitBehavior::merged_with_previous;
    } else if (b == "MergedWithNext") {
        out = SplitBehavior::merged_with_next;
    } else if (b == "Contiguous") {
        out = SplitBehavior::contiguous;
    } else {
        return c.invalid(key + ".behavior", "unknown split behavior " + quote(b));
    }
    return Status();
}

Status parse_pre_tokenizer(const Ctx & c, const element & v, const std::string & key,
                           std::vector<PreStep> & steps) {
    object obj;
    DSV4_TOK_TRY(c.get_object(v, key, obj));
    std::string_view type;
    DSV4_TOK_TRY(c.req_string(obj, key + ".", "type", type));
    if (type == "Sequence") {
        const auto list = Ctx::find(obj, "pretokenizers");
        if (!list) return c.missing(key + ".pretokenizers");
        array arr;
        DSV4_TOK_TRY(c.get_array(*list, key + ".pretokenizers", arr));
        size_t i = 0;
        for (element e : arr) {
            DSV4_TOK_TRY(parse_pre_tokenizer(c, e, idx(key + ".pretokenizers", i++), steps));
        }
        return Status();
    }
    PreStep step;
    if (type == "Split") {
        const auto pat = Ctx::find(obj, "pattern");
        if (!pat) return c.missing(key + ".pattern");
        object pobj;
        DSV4_TOK_TRY(c.get_object(*pat, key + ".pattern", pobj));
        const auto rx  = Ctx::find(pobj, "Regex");
        const auto str = Ctx::find(pobj, "String");
        if (rx && str) return c.invalid(key + ".pattern", "has both 'Regex' and 'String'");
        if (rx) {
            std::string_view p;
            DSV4_TOK_TRY(c.get_string(*rx, key + ".pattern.Regex", p));
            auto re = Regex::compile(p, "");
            if (!re.ok()) return c.at(key + ".pattern.Regex", re.status());
            step.kind  = PreStep::split_regex;
            step.regex = std::move(re.value());
        } else if (str) {
            std::string_view s;
            DSV4_TOK_TRY(c.get_string(*str, key + ".pattern.String", s));
            step.kind    = PreStep::split_string;
            step.literal = std::string(s);
        } else {
            return c.missing(key + ".pattern.Regex");
        }
        DSV4_TOK_TRY(parse_behavior(c, obj, key, step.behavior));
        DSV4_TOK_TRY(c.opt_bool(obj, key + ".", "invert", false, step.invert));
    } else if (type == "Digits") {
        bool individual = false;
        DSV4_TOK_TRY(c.opt_bool(obj, key + ".", "individual_digits", false, individual));
        // Rust char::is_numeric is General_Category N; runs merge unless individual_digits.
        auto re = Regex::compile(individual ? "\\p{N}" : "\\p{N}+", "");
        if (!re.ok()) return c.at(key, re.status());
        step.kind  = PreStep::split_regex;
        step.regex = std::move(re.value());
    } else if (type == "ByteLevel") {
        bool use_regex = true;
        bool trim      = true;
        DSV4_TOK_TRY(c.opt_bool(obj, key + ".", "add_prefix_space", true, step.add_prefix_space));
        DSV4_TOK_TRY(c.opt_bool(obj, key + ".", "use_regex", true, use_regex));
        DSV4_TOK_TRY(c.opt_bool(obj, key + ".", "trim_offsets", true, trim));  // offsets only
        step.kind = PreStep::byte_level;
        if (use_regex) {
            auto re = Regex::compile(kGpt2Pattern, "");
            if (!re.ok()) return c.at(key, re.status());
            step.regex = std::move(re.value());
        }
    } else {
        return c.unsupported(key + ".type", "pre-tokenizer type '" + std::string(type) +
                                                "' is not supported (Sequence, Split, Digits "
                                                "and ByteLevel are)");
    }
    steps.push_back(std::move(step));
    return Status();
}

// ---- decoder ------------------------------------------------------------------------------------

Status check_decoder(const Ctx & c, const element & v, const std::string & key, int & byte_levels) {
    object obj;
    DSV4_TOK_TRY(c.get_object(v, key, obj));
    std::string_view type;
    DSV4_TOK_TRY(c.req_string(obj, key + ".", "type", type));
    if (type == "ByteLevel") {
        ++byte_levels;
        return Status();
    }
    if (type == "Sequence") {
        const auto list = Ctx::find(obj, "decoders");
        if (!list) return c.missing(key + ".decoders");
        array arr;
        DSV4_TOK_TRY(c.get_array(*list, key + ".decoders", arr));
        size_t i = 0;
        for (element e : arr) {
            DSV4_TOK_TRY(check_decoder(c, e, idx(key + ".decoders", i++), byte_levels));
        }
        return Status();
    }
    return c.unsupported(key + ".type", "decoder type '" + std::string(type) +
                                            "' is not supported (only ByteLevel)");
}

// ---- model --------------------------------------------------------------------------------------

// "a b" legacy merge -> (a, b): the split at the one space, or, when a token itself contains
// spaces, the unique split whose both halves are vocabulary tokens.
bool split_legacy_merge(std::string_view m, const StringIdMap & vocab, std::string_view & a,
                        std::string_view & b) {
    size_t found = 0;
    for (size_t p = m.find(' '); p != std::string_view::npos; p = m.find(' ', p + 1)) {
        const std::string_view l = m.substr(0, p), r = m.substr(p + 1);
        if (vocab.find(l) != vocab.end() && vocab.find(r) != vocab.end()) {
            a = l;
            b = r;
            ++found;
        }
    }
    return found == 1;
}

Status parse_model(const Ctx & c, const element & v, Tokenizer::Impl & impl,
                   int32_t & max_vocab_id) {
    object obj;
    DSV4_TOK_TRY(c.get_object(v, "model", obj));
    if (const auto t = Ctx::find(obj, "type")) {
        std::string_view type;
        DSV4_TOK_TRY(c.get_string(*t, "model.type", type));
        if (type != "BPE") {
            return c.unsupported("model.type", "model type '" + std::string(type) +
                                                   "' is not supported (only byte-level BPE)");
        }
    } else if (!Ctx::find(obj, "merges")) {
        return c.missing("model.type");
    }

    // Options.
    if (const auto d = Ctx::find(obj, "dropout")) {
        double p = 0;
        if (d->get_double().get(p) != simdjson::SUCCESS) {
            return c.wrong_type("model.dropout", "a number or null", *d);
        }
        if (p != 0.0) {
            return c.unsupported("model.dropout", "BPE dropout " + render(*d) +
                                                      " is not supported (encoding would not be "
                                                      "deterministic)");
        }
    }
    for (const char * k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (const auto e = Ctx::find(obj, k)) {
            std::string_view s;
            DSV4_TOK_TRY(c.get_string(*e, std::string("model.") + k, s));
            if (!s.empty()) {
                return c.unsupported(std::string("model.") + k,
                                     quote(s) + " is not supported by byte-level BPE");
            }
        }
    }
    bool byte_fallback = false;
    DSV4_TOK_TRY(c.opt_bool(obj, "model.", "byte_fallback", false, byte_fallback));
    if (byte_fallback) {
        return c.unsupported("model.byte_fallback",
                             "byte_fallback = true is not supported "
                             "(byte-level BPE covers every byte)");
    }
    DSV4_TOK_TRY(c.opt_bool(obj, "model.", "fuse_unk", false, impl.bpe.fuse_unk));
    DSV4_TOK_TRY(c.opt_bool(obj, "model.", "ignore_merges", false, impl.bpe.ignore_merges));

    // Vocabulary.
    const auto vv = Ctx::find(obj, "vocab");
    if (!vv) return c.missing("model.vocab");
    object vocab;
    DSV4_TOK_TRY(c.get_object(*vv, "model.vocab", vocab));
    std::vector<std::pair<std::string_view, int32_t>> entries;
    max_vocab_id = -1;
    for (simdjson::dom::key_value_pair kv : vocab) {
        int32_t id = -1;
        DSV4_TOK_TRY(c.get_id(kv.value, "model.vocab." + quote(kv.key), id));
        entries.emplace_back(kv.key, id);
        max_vocab_id = std::max(max_vocab_id, id);
    }
    std::vector<int32_t> owner(static_cast<size_t>(max_vocab_id + 1), -1);
    impl.vocab.reserve(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto [tok, id] = entries[i];
        if (!impl.vocab.emplace(std::string(tok), id).second) {
            return c.invalid("model.vocab", "token " + quote(tok) + " appears twice");
        }
        int32_t & o = owner[static_cast<size_t>(id)];
        if (o >= 0) {
            return c.invalid("model.vocab." + quote(tok),
                             "id " + std::to_string(id) + " is also used by " +
                                 quote(entries[static_cast<size_t>(o)].first));
        }
        o = static_cast<int32_t>(i);
    }

    if (const auto u = Ctx::find(obj, "unk_token")) {
        std::string_view unk;
        DSV4_TOK_TRY(c.get_string(*u, "model.unk_token", unk));
        const auto it = impl.vocab.find(unk);
        if (it == impl.vocab.end()) {
            return c.invalid("model.unk_token", quote(unk) + " is not in model.vocab");
        }
        impl.bpe.unk_id = it->second;
    }

    // Merges.
    const auto mv = Ctx::find(obj, "merges");
    if (!mv) return c.missing("model.merges");
    array merges;
    DSV4_TOK_TRY(c.get_array(*mv, "model.merges", merges));
    impl.bpe.merges.reserve(merges.size());
    std::string joined;
    uint32_t    rank = 0;
    for (element m : merges) {
        const std::string key = idx("model.merges", rank);
        std::string_view  a, b;
        if (m.type() == element_type::STRING) {
            std::string_view s;
            DSV4_TOK_TRY(c.get_string(m, key, s));
            if (!split_legacy_merge(s, impl.vocab, a, b)) {
                if (s.find(' ') == std::string_view::npos) {
                    return c.invalid(key, quote(s) + " is not two tokens separated by a space");
                }
                const size_t sp = s.find(' ');
                a               = s.substr(0, sp);
                b               = s.substr(sp + 1);
            }
        } else if (m.type() == element_type::ARRAY) {
            array pair;
            DSV4_TOK_TRY(c.get_array(m, key, pair));
            if (pair.size() != 2) return c.wrong_type(key, "a pair of tokens", m);
            DSV4_TOK_TRY(c.get_string(pair.at(0).value_unsafe(), key + "[0]", a));
            DSV4_TOK_TRY(c.get_string(pair.at(1).value_unsafe(), key + "[1]", b));
        } else {
            return c.wrong_type(key, "\"a b\" or [\"a\", \"b\"]", m);
        }
        const auto ia = impl.vocab.find(a);
        if (ia == impl.vocab.end())
            return c.invalid(key, "token " + quote(a) + " is not in model.vocab");
        const auto ib = impl.vocab.find(b);
        if (ib == impl.vocab.end())
            return c.invalid(key, "token " + quote(b) + " is not in model.vocab");
        joined.assign(a);
        joined.append(b);
        const auto ij = impl.vocab.find(joined);
        if (ij == impl.vocab.end()) {
            return c.invalid(key, "merged token " + quote(joined) + " is not in model.vocab");
        }
        impl.bpe.merges.insert(ia->second, ib->second, rank, ij->second);
        ++rank;
    }

    // Byte-level view of the vocabulary.
    std::string bytes;
    for (int b = 0; b < 256; ++b) {
        const char ch = static_cast<char>(b);
        const auto it = impl.vocab.find(byte_level_map(std::string_view(&ch, 1)));
        impl.bpe.byte_ids[static_cast<size_t>(b)] = it == impl.vocab.end() ? -1 : it->second;
    }
    if (impl.bpe.ignore_merges) {
        for (const auto & [tok, id] : impl.vocab) {
            if (byte_level_unmap(tok, bytes)) impl.bpe.by_bytes.emplace(bytes, id);
        }
    }
    return Status();
}

Status parse_added_tokens(const Ctx & c, const element & v, Tokenizer::Impl & impl) {
    array arr;
    DSV4_TOK_TRY(c.get_array(v, "added_tokens", arr));
    size_t i = 0;
    for (element e : arr) {
        const std::string key = idx("added_tokens", i++);
        object            obj;
        DSV4_TOK_TRY(c.get_object(e, key, obj));
        AddedToken t;
        const auto idv = Ctx::find(obj, "id");
        if (!idv) return c.missing(key + ".id");
        DSV4_TOK_TRY(c.get_id(*idv, key + ".id", t.id));
        std::string_view content;
        DSV4_TOK_TRY(c.req_string(obj, key + ".", "content", content));
        t.content = std::string(content);
        DSV4_TOK_TRY(c.opt_bool(obj, key + ".", "special", false, t.special));
        DSV4_TOK_TRY(c.opt_bool(obj, key + ".", "normalized", !t.special, t.normalized));
        DSV4_TOK_TRY(c.opt_bool(obj, key + ".", "single_word", false, t.single_word));
        DSV4_TOK_TRY(c.opt_bool(obj, key + ".", "lstrip", false, t.lstrip));
        DSV4_TOK_TRY(c.opt_bool(obj, key + ".", "rstrip", false, t.rstrip));
        if (t.content.empty()) continue;  // HF ignores empty added tokens
        if (!impl.added_by_content.emplace(t.content, t.id).second) {
            return c.invalid(key + ".content", quote(t.content) + " is listed twice");
        }
        impl.added.push_back(std::move(t));
    }
    return Status();
}

Status parse_root(const Ctx & c, const object & root, Tokenizer::Impl & impl) {
    // model
    const auto model = Ctx::find(root, "model");
    if (!model) return c.missing("model");
    int32_t max_id = -1;
    DSV4_TOK_TRY(parse_model(c, *model, impl, max_id));

    // added_tokens
    if (const auto a = Ctx::find(root, "added_tokens"))
        DSV4_TOK_TRY(parse_added_tokens(c, *a, impl));

    // normalizer
    if (const auto n = Ctx::find(root, "normalizer"))
        DSV4_TOK_TRY(check_normalizer(c, *n, "normalizer"));

    // pre_tokenizer: must end with the ByteLevel step (byte-level BPE), which appears once.
    const auto pre = Ctx::find(root, "pre_tokenizer");
    if (!pre) {
        return c.unsupported("pre_tokenizer",
                             "no pre-tokenizer: not a byte-level BPE tokenizer "
                             "(a ByteLevel pre-tokenizer is required)");
    }
    DSV4_TOK_TRY(parse_pre_tokenizer(c, *pre, "pre_tokenizer", impl.steps));
    size_t n_byte_level = 0;
    for (const PreStep & s : impl.steps) n_byte_level += s.kind == PreStep::byte_level;
    if (n_byte_level != 1 || impl.steps.back().kind != PreStep::byte_level) {
        return c.unsupported("pre_tokenizer",
                             "a byte-level BPE needs exactly one ByteLevel pre-tokenizer, as the "
                             "last step (found " +
                                 std::to_string(n_byte_level) + ")");
    }

    // decoder
    const auto dec = Ctx::find(root, "decoder");
    if (!dec) return c.unsupported("decoder", "no decoder: a ByteLevel decoder is required");
    int byte_levels = 0;
    DSV4_TOK_TRY(check_decoder(c, *dec, "decoder", byte_levels));
    if (byte_levels != 1) {
        return c.unsupported(
            "decoder", "expected one ByteLevel decoder, found " + std::to_string(byte_levels));
    }

    // post_processor only adds special tokens around encodings; encode() never does.
    if (const auto pp = Ctx::find(root, "post_processor")) {
        object o;
        DSV4_TOK_TRY(c.get_object(*pp, "post_processor", o));
    }

    // Decode table.
    for (const AddedToken & t : impl.added) max_id = std::max(max_id, t.id);
    if (max_id < 0) return c.invalid("model.vocab", "the vocabulary is empty");
    impl.vocab_size            = max_id + 1;
    const auto               n = static_cast<size_t>(impl.vocab_size);
    std::vector<std::string> pieces(n);
    impl.id_flags.assign(n, 0);
    std::string bytes;
    auto        decode_rule = [&](const std::string & spelling) {
        // HF ByteLevel decoder: the alphabet's bytes when every character is in it, else the
        // token's own UTF-8 bytes.
        return byte_level_unmap(spelling, bytes) ? bytes : spelling;
    };
    for (const auto & [tok, id] : impl.vocab) {
        pieces[static_cast<size_t>(id)] = decode_rule(tok);
        impl.id_flags[static_cast<size_t>(id)] |= Tokenizer::Impl::kPresent;
    }
    for (size_t i = 0; i < impl.added.size(); ++i) {
        const AddedToken & t = impl.added[i];
        const auto         k = static_cast<size_t>(t.id);
        pieces[k]            = decode_rule(t.content);
        impl.id_flags[k]     = static_cast<uint8_t>(Tokenizer::Impl::kPresent |
                                                (t.special ? Tokenizer::Impl::kSpecial : 0));
        (t.normalized ? impl.norm_matcher : impl.raw_matcher)
            .add(t.content, static_cast<int32_t>(i));
    }
    size_t total = 0;
    for (const std::string & p : pieces) total += p.size();
    if (total >= UINT32_MAX) return c.invalid("model.vocab", "token strings exceed 4 GiB");
    impl.piece_off.resize(n + 1);
    impl.piece_bytes.reserve(total);
    for (size_t i = 0; i < n; ++i) {
        impl.piece_off[i] = static_cast<uint32_t>(impl.piece_bytes.size());
        impl.piece_bytes += pieces[i];
    }
    impl.piece_off[n] = static_cast<uint32_t>(impl.piece_bytes.size());

    auto find_added = [&](std::string_view s) {
        const auto it = impl.added_by_content.find(s);
        return it == impl.added_by_content.end() ? -1 : it->second;
    };
    impl.bos = find_added(
        "<\xEF\xBD\x9C"
        "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>");
    impl.eos = find_added(
        "<\xEF\xBD\x9C"
        "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>");
    return Status();
}

#undef DSV4_TOK_TRY

}  // namespace

Result<std::shared_ptr<const Tokenizer::Impl>> parse_tokenizer_json(std::string_view json,
                                                                    std::string_view origin) {
    const Ctx                     c{std::string(origin)};
    const simdjson::padded_string text(json.data(), json.size());
    simdjson::dom::parser         parser;
    element                       root;
    if (const auto err = parser.parse(text).get(root); err != simdjson::SUCCESS) {
        return Status(Errc::invalid_model, std::string(origin) + ": malformed JSON (" +
                                               simdjson::error_message(err) + ")");
    }
    object obj;
    if (root.get_object().get(obj) != simdjson::SUCCESS) {
        return Status(
            Errc::invalid_model,
            std::string(origin) + ": expected a JSON object at top level, got " + render(root));
    }
    auto impl    = std::make_shared<Tokenizer::Impl>();
    impl->origin = std::string(origin);
    if (Status st = parse_root(c, obj, *impl); !st.ok()) return st;
    return std::shared_ptr<const Tokenizer::Impl>(std::move(impl));
}

}  // namespace dsv4::tok
