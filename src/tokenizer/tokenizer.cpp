// The encode/decode pipeline of dsv4::Tokenizer, in Hugging Face `tokenizers` order:
//   1. added tokens with normalized = false are cut out of the raw text (leftmost-longest);
//   2. the remaining text pieces are normalised (no-op: only empty normalizers load) and
//      added tokens with normalized = true are cut out of them;
//   3. each remaining piece goes through the pre-tokenizer steps (Split / Digits / ByteLevel),
//      each step re-splitting every piece produced by the previous one;
//   4. each final piece is BPE-encoded over its bytes.
#include <algorithm>
#include <cstdio>
#include <deque>
#include <utility>

#include "dsv4/tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"

namespace dsv4 {

namespace tok {

// ---- TokenMatcher -------------------------------------------------------------------------------

void TokenMatcher::add(std::string_view s, int32_t token_index) {
    if (s.empty()) return;
    int32_t node = 0;
    for (const char ch : s) {
        const auto     b   = static_cast<uint8_t>(ch);
        const uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
        const auto     it  = edges_.find(key);
        if (it != edges_.end()) {
            node = it->second;
        } else {
            const auto child = static_cast<int32_t>(nodes_.size());
            nodes_.push_back(Node{});
            edges_.emplace(key, child);
            node = child;
        }
    }
    first_[static_cast<uint8_t>(s[0])]      = true;
    nodes_[static_cast<size_t>(node)].token = token_index;
}

int32_t TokenMatcher::longest_at(std::string_view s, size_t at, size_t & len) const noexcept {
    int32_t node = 0, best = -1;
    for (size_t i = at; i < s.size(); ++i) {
        const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(s[i]);
        const auto     it  = edges_.find(key);
        if (it == edges_.end()) break;
        node = it->second;
        if (nodes_[static_cast<size_t>(node)].token >= 0) {
            best = nodes_[static_cast<size_t>(node)].token;
            len  = i + 1 - at;
        }
    }
    return best;
}

namespace {

struct Segment {
    uint32_t begin, end;
    int32_t  id;  // added token id, or -1 for text
};

// Unicode White_Space (Rust char::is_whitespace / regex \s, used by HF for lstrip/rstrip).
bool is_white_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

// Code point starting at s[i] (s valid UTF-8).
uint32_t cp_at(std::string_view s, size_t i, uint32_t & len) {
    const Utf8Step st =
        utf8_step(reinterpret_cast<const unsigned char *>(s.data()) + i, s.size() - i);
    len = st.len;
    return st.cp;
}

// Code point ending just before s[i] (i > 0, s valid UTF-8).
uint32_t cp_before(std::string_view s, size_t i, uint32_t & len) {
    size_t j = i - 1;
    while (j > 0 && (static_cast<uint8_t>(s[j]) & 0xC0) == 0x80) --j;
    return cp_at(s, j, len);
}

// Word character for single_word added tokens. HF uses Rust regex \w (Alphabetic, M, Nd, Pc,
// Join_Control); PCRE2 has no Alphabetic property, so L and Nl stand in for it.
bool is_word_cp(uint32_t cp) {
    if (cp < 0x80) {
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               cp == '_';
    }
    static const std::shared_ptr<const Regex> re = [] {
        auto r = Regex::compile("[\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]", "word");
        return r.ok() ? r.value() : nullptr;
    }();
    if (!re) return false;
    std::string ch;
    utf8_append(ch, cp);
    MatchScratch                               scratch;
    std::vector<std::pair<uint32_t, uint32_t>> m;
    return re->find_all(ch, scratch, m).ok() && !m.empty();
}

// HF AddedVocabulary::find_matches on text[begin, end): appends text and token segments.
void split_added(const Tokenizer::Impl & im, const TokenMatcher & matcher, std::string_view text,
                 uint32_t begin, uint32_t end, std::vector<Segment> & out) {
    const std::string_view sentence     = text.substr(0, end);
    size_t                 start_offset = begin;
    size_t                 i            = begin;
    while (i < end) {
        if (!matcher.can_start(static_cast<uint8_t>(text[i]))) {
            ++i;
            continue;
        }
        size_t        len = 0;
        const int32_t ti  = matcher.longest_at(sentence, i, len);
        if (ti < 0) {
            ++i;
            continue;
        }
        const AddedToken & t = im.added[static_cast<size_t>(ti)];
        size_t             s = i, e = i + len;
        i           = e;
        uint32_t cl = 0;
        if (t.single_word) {
            const bool word_before = s > begin && is_word_cp(cp_before(sentence, s, cl));
            const bool word_after  = e < end && is_word_cp(cp_at(sentence, e, cl));
            if (word_before || word_after) continue;  // discarded; scanning resumes after it
        }
        if (t.lstrip) {
            size_t ns = s;
            while (ns > begin && is_white_space(cp_before(sentence, ns, cl))) ns -= cl;
            s = std::max(ns, start_offset);
        }
        if (t.rstrip) {
            while (e < end && is_white_space(cp_at(sentence, e, cl))) e += cl;
            i = e;
        }
        if (start_offset < s) {
            out.push_back({static_cast<uint32_t>(start_offset), static_cast<uint32_t>(s), -1});
        }
        out.push_back({static_cast<uint32_t>(s), static_cast<uint32_t>(e), t.id});
        start_offset = e;
    }
    if (start_offset < end) out.push_back({static_cast<uint32_t>(start_offset), end, -1});
}

struct EncodeScratch {
    MatchScratch                               match;
    BpeScratch                                 bpe;
    std::vector<std::pair<uint32_t, uint32_t>> matches;
    struct Part {
        uint32_t begin, end;
        bool     is_match;
    };
    std::vector<Part>             parts;
    std::vector<std::string_view> pieces, next;
    std::deque<std::string>       arena;  // pieces that are not views of the input
};

// HF NormalizedString::split: the match/gap list of `piece`, then the delimiter behaviour;
// appends the non-empty resulting pieces.
Status split_piece(const PreStep & step, std::string_view piece, EncodeScratch & s,
                   std::vector<std::string_view> & out) {
    s.matches.clear();
    if (step.kind == PreStep::split_string) {
        if (step.literal.empty()) {
            out.push_back(piece);
            return Status();
        }
        for (size_t p = piece.find(step.literal); p != std::string_view::npos;
             p        = piece.find(step.literal, p + step.literal.size())) {
            s.matches.emplace_back(static_cast<uint32_t>(p),
                                   static_cast<uint32_t>(p + step.literal.size()));
        }
    } else if (Status st = step.regex->find_all(piece, s.match, s.matches); !st.ok()) {
        return st;
    }

    const auto n = static_cast<uint32_t>(piece.size());
    if (step.behavior == SplitBehavior::isolated) {  // the common case, without the part list
        uint32_t prev = 0;
        for (const auto & [b, e] : s.matches) {
            if (prev < b) out.push_back(piece.substr(prev, b - prev));
            if (b < e) out.push_back(piece.substr(b, e - b));
            prev = e;
        }
        if (prev < n) out.push_back(piece.substr(prev));
        return Status();
    }

    auto & parts = s.parts;
    parts.clear();
    uint32_t prev = 0;
    for (const auto & [b, e] : s.matches) {
        if (prev != b) parts.push_back({prev, b, step.invert});
        parts.push_back({b, e, !step.invert});
        prev = e;
    }
    if (prev != n) parts.push_back({prev, n, step.invert});

    // (begin, end, remove) after the behaviour.
    struct Out {
        uint32_t begin, end;
        bool     remove;
    };
    std::vector<Out> res;
    bool             previous_match = false;
    switch (step.behavior) {
        case SplitBehavior::isolated:
        case SplitBehavior::removed:
            for (const auto & p : parts) {
                res.push_back(
                    {p.begin, p.end, step.behavior == SplitBehavior::removed && p.is_match});
            }
            break;
        case SplitBehavior::contiguous:
            for (const auto & p : parts) {
                if (p.is_match == previous_match && !res.empty()) {
                    res.back().end = p.end;
                } else {
                    res.push_back({p.begin, p.end, false});
                }
                previous_match = p.is_match;
            }
            break;
        case SplitBehavior::merged_with_previous:
            for (const auto & p : parts) {
                if (p.is_match && !previous_match && !res.empty()) {
                    res.back().end = p.end;
                } else {
                    res.push_back({p.begin, p.end, false});
                }
                previous_match = p.is_match;
            }
            break;
        case SplitBehavior::merged_with_next:
            for (size_t k = parts.size(); k-- > 0;) {
                const auto & p = parts[k];
                if (p.is_match && !previous_match && !res.empty()) {
                    res.back().begin = p.begin;
                } else {
                    res.push_back({p.begin, p.end, false});
                }
                previous_match = p.is_match;
            }
            std::reverse(res.begin(), res.end());
            break;
    }
    for (const Out & o : res) {
        if (!o.remove && o.begin < o.end) out.push_back(piece.substr(o.begin, o.end - o.begin));
    }
    return Status();
}

Status encode_text(const Tokenizer::Impl & im, std::string_view text, EncodeScratch & s,
                   std::vector<int32_t> & ids) {
    s.pieces.clear();
    s.pieces.push_back(text);
    for (const PreStep & step : im.steps) {
        if (step.kind == PreStep::byte_level && !step.add_prefix_space && !step.regex) continue;
        s.next.clear();
        for (std::string_view piece : s.pieces) {
            if (step.kind == PreStep::byte_level) {
                if (step.add_prefix_space && piece.front() != ' ') {
                    s.arena.emplace_back();
                    s.arena.back().reserve(piece.size() + 1);
                    s.arena.back() += ' ';
                    s.arena.back() += piece;
                    piece = s.arena.back();
                }
                if (!step.regex) {
                    s.next.push_back(piece);
                    continue;
                }
                // The GPT-2 regex, Isolated (a byte_level step's behavior is isolated).
                if (Status st = split_piece(step, piece, s, s.next); !st.ok()) return st;
                continue;
            }
            if (Status st = split_piece(step, piece, s, s.next); !st.ok()) return st;
        }
        std::swap(s.pieces, s.next);
    }
    for (std::string_view piece : s.pieces) im.bpe.encode(piece, ids, s.bpe);
    return Status();
}

}  // namespace

}  // namespace tok

// ---- Tokenizer ----------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::from_json(std::string_view json, std::string_view origin_name) {
    auto r = tok::parse_tokenizer_json(json, origin_name);
    if (!r.ok()) return r.status();
    return Tokenizer(std::move(r.value()));
}

Result<Tokenizer> Tokenizer::load(const std::string & path) {
    std::FILE * f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return Status(Errc::file_not_found, "cannot open tokenizer file '" + path + "'");
    }
    std::string data;
    char        buf[1 << 16];
    bool        failed = false;
    for (;;) {
        const size_t n = std::fread(buf, 1, sizeof buf, f);
        data.append(buf, n);
        if (n < sizeof buf) {
            failed = std::ferror(f) != 0;
            break;
        }
        if (data.size() > (size_t{1} << 30)) {
            std::fclose(f);
            return Status(Errc::invalid_model, "tokenizer file '" + path +
                                                   "' is larger than 1 GiB; not a tokenizer.json");
        }
    }
    std::fclose(f);
    if (failed) return Status(Errc::io_error, "read error on tokenizer file '" + path + "'");
    return from_json(data, path);
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view utf8) const {
    const Impl & im = *impl_;
    std::string  repaired;
    if (!tok::utf8_is_valid(utf8)) {
        tok::utf8_append_lossy(repaired, utf8);
        utf8 = repaired;
    }
    if (utf8.size() >= UINT32_MAX) {
        return Status(Errc::invalid_argument, "encode: input of " + std::to_string(utf8.size()) +
                                                  " bytes is larger than 4 GiB");
    }
    std::vector<int32_t> ids;
    ids.reserve(utf8.size() / 3 + 8);

    std::vector<tok::Segment> raw, segs;
    const auto                n = static_cast<uint32_t>(utf8.size());
    if (im.raw_matcher.empty()) {
        raw.push_back({0, n, -1});
    } else {
        tok::split_added(im, im.raw_matcher, utf8, 0, n, raw);
    }
    if (im.norm_matcher.empty()) {
        segs = std::move(raw);
    } else {
        for (const tok::Segment & sg : raw) {
            if (sg.id >= 0) {
                segs.push_back(sg);
            } else {
                tok::split_added(im, im.norm_matcher, utf8, sg.begin, sg.end, segs);
            }
        }
    }

    tok::EncodeScratch scratch;
    for (const tok::Segment & sg : segs) {
        if (sg.id >= 0) {
            ids.push_back(sg.id);
            continue;
        }
        const std::string_view text = utf8.substr(sg.begin, sg.end - sg.begin);
        if (Status st = tok::encode_text(im, text, scratch, ids); !st.ok()) return st;
        scratch.arena.clear();
    }
    return ids;
}

Result<std::string> Tokenizer::decode(const int32_t * ids, size_t n, bool skip_special) const {
    const Impl & im = *impl_;
    std::string  bytes;
    for (size_t i = 0; i < n; ++i) {
        const int32_t id = ids[i];
        if (!im.valid_id(id)) {
            return Status(Errc::invalid_argument,
                          "decode: token id " + std::to_string(id) + " at position " +
                              std::to_string(i) + " is not in the vocabulary of " + im.origin +
                              " (size " + std::to_string(im.vocab_size) + ")");
        }
        if (skip_special && (im.id_flags[static_cast<size_t>(id)] & Impl::kSpecial)) continue;
        bytes += im.piece(id);
    }
    if (tok::utf8_is_valid(bytes)) return bytes;
    std::string out;
    tok::utf8_append_lossy(out, bytes);
    return out;
}

Result<std::string> Tokenizer::token_to_piece(int32_t id) const {
    if (!impl_->valid_id(id)) {
        return Status(Errc::invalid_argument, "token id " + std::to_string(id) +
                                                  " is not in the vocabulary of " + impl_->origin);
    }
    return std::string(impl_->piece(id));
}

int32_t Tokenizer::token_id(std::string_view token_string) const {
    const auto a = impl_->added_by_content.find(token_string);
    if (a != impl_->added_by_content.end()) return a->second;
    const auto v = impl_->vocab.find(token_string);
    return v == impl_->vocab.end() ? -1 : v->second;
}

bool Tokenizer::is_special(int32_t id) const {
    return impl_->valid_id(id) && (impl_->id_flags[static_cast<size_t>(id)] & Impl::kSpecial);
}

int32_t Tokenizer::vocab_size() const {
    return impl_->vocab_size;
}
int32_t Tokenizer::bos_id() const {
    return impl_->bos;
}
int32_t Tokenizer::eos_id() const {
    return impl_->eos;
}

// ---- TokenStreamDecoder -------------------------------------------------------------------------

TokenStreamDecoder::TokenStreamDecoder(Tokenizer tokenizer, bool skip_special)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special) {
    pending_.reserve(64);  // a held-back tail is at most 3 bytes plus one piece
}

Result<std::string> TokenStreamDecoder::push(int32_t id) {
    std::string out;
    if (Status s = push(id, out); !s.ok()) return s;
    return out;
}

Status TokenStreamDecoder::push(int32_t id, std::string & out) {
    if (skip_special_ && tokenizer_.is_special(id)) return Status();  // (unknown ids are not)
    const std::string_view piece =
        tokenizer_.impl_->valid_id(id) ? tokenizer_.impl_->piece(id) : std::string_view();
    if (!tokenizer_.impl_->valid_id(id))
        return Status(Errc::invalid_argument, "token id " + std::to_string(id) +
                                                  " is not in the vocabulary of " +
                                                  tokenizer_.impl_->origin);
    pending_.append(piece);
    // Emit everything except a well-formed but unfinished sequence at the very end.
    const auto * p    = reinterpret_cast<const unsigned char *>(pending_.data());
    const size_t n    = pending_.size();
    size_t       i    = 0;
    size_t       keep = n;
    while (i < n) {
        const tok::Utf8Step st = tok::utf8_step(p + i, n - i);
        if (st.kind == tok::Utf8Step::truncated) {
            keep = i;
            break;
        }
        i += st.len;
    }
    tok::utf8_append_lossy(out, std::string_view(pending_).substr(0, keep));
    pending_.erase(0, keep);
    return Status();
}

std::string TokenStreamDecoder::flush() {
    std::string out;
    tok::utf8_append_lossy(out, pending_);
    pending_.clear();
    return out;
}

}  // namespace dsv4
