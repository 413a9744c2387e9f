// The read-only state behind dsv4::Tokenizer, built by the tokenizer.json loader
// (tokenizer_json.cpp) and used by the encode/decode pipeline (tokenizer.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dsv4/tokenizer.hpp"
#include "tokenizer/bpe.hpp"
#include "tokenizer/regex.hpp"

namespace dsv4::tok {

struct AddedToken {
    std::string content;
    int32_t     id          = -1;
    bool        special     = false;
    bool        normalized  = true;
    bool        single_word = false;
    bool        lstrip      = false;
    bool        rstrip      = false;
};

// Leftmost-longest exact matching of a set of strings (a byte trie), as HF's Aho-Corasick
// automaton with MatchKind::LeftmostLongest.
class TokenMatcher {
  public:
    void add(std::string_view s, int32_t token_index);
    bool empty() const noexcept { return nodes_.size() <= 1; }
    // Longest token starting at s[at]; token index and its length, or -1.
    int32_t longest_at(std::string_view s, size_t at, size_t & len) const noexcept;
    // Whether byte b can start a token (fast skip).
    bool can_start(uint8_t b) const noexcept { return first_[b]; }

  private:
    struct Node {
        int32_t token = -1;
    };
    std::vector<Node>                     nodes_{Node{}};
    std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child
    bool                                  first_[256] = {};
};

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

struct PreStep {
    enum Kind { split_regex, split_string, byte_level } kind = split_regex;
    std::shared_ptr<const Regex> regex;    // split_regex (also byte_level with use_regex)
    std::string                  literal;  // split_string
    SplitBehavior                behavior         = SplitBehavior::isolated;
    bool                         invert           = false;
    bool                         add_prefix_space = false;  // byte_level
};

}  // namespace dsv4::tok

namespace dsv4 {

struct Tokenizer::Impl {
    std::string origin;

    tok::BpeModel    bpe;
    tok::StringIdMap vocab;  // spelling in tokenizer.json -> id (model.vocab)

    std::vector<tok::AddedToken> added;             // in file order
    tok::StringIdMap             added_by_content;  // content -> id
    tok::TokenMatcher            raw_matcher;       // added tokens with normalized = false
    tok::TokenMatcher            norm_matcher;      // normalized = true (no normalizer: same text)

    std::vector<tok::PreStep> steps;  // pre-tokenizer; ends with the ByteLevel step

    // Decoding: bytes of every id, [piece_off[id], piece_off[id + 1]) in piece_bytes.
    std::vector<uint32_t>    piece_off;
    std::string              piece_bytes;
    std::vector<uint8_t>     id_flags;  // kPresent | kSpecial
    static constexpr uint8_t kPresent = 1, kSpecial = 2;

    int32_t vocab_size = 0;
    int32_t bos        = -1;
    int32_t eos        = -1;

    bool valid_id(int32_t id) const noexcept {
        return id >= 0 && id < vocab_size && (id_flags[static_cast<size_t>(id)] & kPresent);
    }
    std::string_view piece(int32_t id) const noexcept {
        const auto i = static_cast<size_t>(id);
        return std::string_view(piece_bytes).substr(piece_off[i], piece_off[i + 1] - piece_off[i]);
    }
};

namespace tok {
// tokenizer_json.cpp: the whole loader.
Result<std::shared_ptr<const Tokenizer::Impl>> parse_tokenizer_json(std::string_view json,
                                                                    std::string_view origin);
}  // namespace tok

}  // namespace dsv4
