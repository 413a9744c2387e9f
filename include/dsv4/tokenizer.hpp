// Byte-level BPE tokenizer read from a Hugging Face `tokenizer.json` (DeepSeek-V4, V3 and other
// files of the same format: model "BPE" over the GPT-2 byte alphabet). See docs/tokenizer.md for
// what is supported and how the behaviour matches Hugging Face `tokenizers`.
//
// Threading: a Tokenizer is immutable after load. Copies are cheap (they share one read-only
// state through a shared_ptr) and every const member function may be called from any number of
// threads at once. A TokenStreamDecoder is a small mutable object: one per stream/thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dsv4/export.hpp"
#include "dsv4/status.hpp"

namespace dsv4 {

class DSV4_API Tokenizer {
  public:
    // Reads and validates a tokenizer.json. Errc::file_not_found / io_error for the file,
    // invalid_model for malformed JSON or inconsistent content (the message names the file and
    // the JSON key, e.g. "model.merges[17]"), unsupported_model for well-formed features this
    // implementation does not provide (the message names the component type, e.g.
    // "normalizer type 'NFC'").
    static Result<Tokenizer> load(const std::string & tokenizer_json_path);
    // Same from JSON text in memory; `origin_name` stands for the file name in messages.
    static Result<Tokenizer> from_json(std::string_view json,
                                       std::string_view origin_name = "tokenizer.json");

    // Text -> ids, as Hugging Face `encode(text, add_special_tokens=False)`: added tokens
    // (special or not) found in the text become their ids, everything else goes through the
    // pre-tokenizer and BPE. Nothing is prepended or appended (no BOS). Input that is not valid
    // UTF-8 is first repaired: every maximal invalid subsequence becomes U+FFFD (as Python's
    // bytes.decode("utf-8", errors="replace")). Fails only when the regex engine gives up on a
    // pathological pattern/input pair (PCRE2 match or depth limit): Errc::invalid_argument.
    Result<std::vector<int32_t>> encode(std::string_view utf8) const;

    // Ids -> text (the ByteLevel decoder: token bytes concatenated, then invalid UTF-8 replaced
    // by U+FFFD). An id outside the vocabulary is Errc::invalid_argument naming its position.
    // skip_special drops tokens flagged "special" in added_tokens.
    Result<std::string> decode(const int32_t * ids, size_t n, bool skip_special = false) const;
    Result<std::string> decode(const std::vector<int32_t> & ids, bool skip_special = false) const {
        return decode(ids.data(), ids.size(), skip_special);
    }

    // The raw bytes one token stands for (may be an incomplete UTF-8 sequence).
    Result<std::string> token_to_piece(int32_t id) const;
    // Id of a token given as it is spelled in tokenizer.json (an added token's content such as
    // "<｜end▁of▁sentence｜>", or a vocab key such as "Ġthe"); -1 when there is none.
    int32_t token_id(std::string_view token_string) const;
    // Whether `id` is an added token flagged special (false for unknown ids).
    bool is_special(int32_t id) const;
    // One past the largest id (vocab and added tokens): 129280 for DeepSeek-V4.
    int32_t vocab_size() const;
    // "<｜begin▁of▁sentence｜>" / "<｜end▁of▁sentence｜>" when present, else -1. For other
    // families ask token_id() with the model's own names.
    int32_t bos_id() const;
    int32_t eos_id() const;

    Tokenizer(const Tokenizer &)             = default;
    Tokenizer(Tokenizer &&) noexcept         = default;
    Tokenizer & operator=(const Tokenizer &) = default;
    Tokenizer & operator=(Tokenizer &&)      = default;
    ~Tokenizer();

    struct Impl;

  private:
    friend class TokenStreamDecoder;
    explicit Tokenizer(std::shared_ptr<const Impl> impl);
    std::shared_ptr<const Impl> impl_;
};

// Incremental detokenizer for streaming generation: push ids one at a time, get back only
// complete UTF-8 text. Bytes of a character split across tokens are held back until the
// character is complete; bytes that can never form a valid character come out as U+FFFD right
// away. Concatenating every push() result and flush() gives exactly decode(all ids).
class DSV4_API TokenStreamDecoder {
  public:
    explicit TokenStreamDecoder(Tokenizer tokenizer, bool skip_special = false);

    // Text completed by this token (possibly empty). Unknown id: Errc::invalid_argument, and the
    // decoder state is unchanged.
    Result<std::string> push(int32_t id);
    // The same, appending the completed text to `out` (nothing is allocated when `out` and the
    // decoder have enough capacity: the generation loop's form). Unknown id:
    // Errc::invalid_argument, nothing appended, state unchanged.
    Status push(int32_t id, std::string & out);
    // The held-back tail as HF would decode it (an incomplete sequence becomes U+FFFD); resets.
    std::string flush();
    // Drops any held-back bytes.
    void reset() noexcept { pending_.clear(); }
    // Number of bytes currently held back (0..3).
    size_t pending_bytes() const noexcept { return pending_.size(); }

  private:
    Tokenizer   tokenizer_;
    bool        skip_special_;
    std::string pending_;
};

}  // namespace dsv4
