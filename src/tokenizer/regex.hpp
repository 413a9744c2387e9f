// PCRE2 (8-bit, UTF + UCP, JIT) behind a small interface, configured to behave like the
// Oniguruma engine Hugging Face `tokenizers` uses for tokenizer.json patterns:
//  * `\s` / `\S` mean Unicode White_Space (PCRE2's UCP `\s` also takes U+180E and misses
//    nothing else), `\h` means a hex digit (Oniguruma), not horizontal space (PCRE2);
//  * `^` and `$` match at line starts/ends (Oniguruma's Ruby syntax; PCRE2_MULTILINE);
//  * matches are iterated like Rust's find_iter: an empty match directly after the previous
//    match is skipped, and after an empty match the search resumes one character later.
// PCRE2 headers stay inside src/tokenizer/regex.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dsv4/status.hpp"

namespace dsv4::tok {

// Per-call matching state (PCRE2 match data and context). Not shareable between threads;
// cheap enough to create once per encode() call.
class MatchScratch {
  public:
    MatchScratch();
    ~MatchScratch();
    MatchScratch(const MatchScratch &)             = delete;
    MatchScratch & operator=(const MatchScratch &) = delete;

    struct State;
    State * state() noexcept { return state_.get(); }

  private:
    std::unique_ptr<State> state_;
};

class Regex {
  public:
    // Compiles an Oniguruma-syntax tokenizer.json pattern. invalid_model with PCRE2's message
    // and the offset on a syntax error; messages start with `where` (e.g. "key 'x': ").
    static Result<std::shared_ptr<const Regex>> compile(std::string_view    pattern,
                                                        const std::string & where);
    ~Regex();
    Regex(const Regex &)             = delete;
    Regex & operator=(const Regex &) = delete;

    // Appends to `out` the [begin, end) byte ranges of all matches in `subject` (valid UTF-8),
    // empty matches included. Fails (invalid_argument) only if PCRE2 hits a resource limit.
    Status find_all(std::string_view subject, MatchScratch & scratch,
                    std::vector<std::pair<uint32_t, uint32_t>> & out) const;

    const std::string & pattern() const noexcept { return pattern_; }

  private:
    Regex()           = default;
    void *      code_ = nullptr;  // pcre2_code_8 *
    bool        jit_  = false;
    std::string pattern_;
};

// The pattern actually handed to PCRE2 (exposed for tests).
std::string translate_oniguruma_pattern(std::string_view pattern);

// Unicode version of the PCRE2 character tables, e.g. "14.0.0".
std::string regex_unicode_version();

}  // namespace dsv4::tok
