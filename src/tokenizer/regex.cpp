#include "tokenizer/regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/utf8.hpp"

namespace dsv4::tok {

namespace {

// Unicode White_Space (what Oniguruma's and Rust's `\s` match), as class content.
constexpr std::string_view kWhiteSpace =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";
constexpr std::string_view kHexDigit = "0-9A-Fa-f";

// Patterns longer than this are refused (no tokenizer needs one; bounds compile cost).
constexpr size_t kMaxPatternBytes = 1 << 16;

pcre2_code * as_code(void * p) {
    return static_cast<pcre2_code *>(p);
}

}  // namespace

struct MatchScratch::State {
    pcre2_match_data *    md  = nullptr;
    pcre2_match_context * ctx = nullptr;
};

MatchScratch::MatchScratch() : state_(std::make_unique<State>()) {
    state_->md  = pcre2_match_data_create(1, nullptr);
    state_->ctx = pcre2_match_context_create(nullptr);
}

MatchScratch::~MatchScratch() {
    pcre2_match_data_free(state_->md);
    pcre2_match_context_free(state_->ctx);
}

std::string translate_oniguruma_pattern(std::string_view p) {
    std::string out;
    out.reserve(p.size() + 64);
    const size_t n        = p.size();
    bool         in_class = false;
    size_t       i        = 0;
    while (i < n) {
        const char c = p[i];
        if (c == '\\' && i + 1 < n) {
            const char d = p[i + 1];
            if (d == 'Q') {  // quoted literal run: copy through \E
                const size_t e    = p.find("\\E", i + 2);
                const size_t stop = e == std::string_view::npos ? n : e + 2;
                out.append(p.substr(i, stop - i));
                i = stop;
                continue;
            }
            if (d == 's' || d == 'h') {
                const std::string_view set = d == 's' ? kWhiteSpace : kHexDigit;
                if (in_class) {
                    out.append(set);
                } else {
                    out += '[';
                    out.append(set);
                    out += ']';
                }
                i += 2;
                continue;
            }
            if ((d == 'S' || d == 'H') && !in_class) {
                out += "[^";
                out.append(d == 'S' ? kWhiteSpace : kHexDigit);
                out += ']';
                i += 2;
                continue;
            }
            out += c;
            out += d;
            i += 2;
            continue;
        }
        if (in_class) {
            if (c == '[' && i + 1 < n && p[i + 1] == ':') {  // POSIX class [:name:]
                const size_t e    = p.find(":]", i + 2);
                const size_t stop = e == std::string_view::npos ? n : e + 2;
                out.append(p.substr(i, stop - i));
                i = stop;
                continue;
            }
            if (c == ']') in_class = false;
            out += c;
            ++i;
            continue;
        }
        out += c;
        ++i;
        if (c == '[') {
            in_class = true;
            if (i < n && p[i] == '^') out += p[i++];
            if (i < n && p[i] == ']') out += p[i++];  // a leading ']' is literal
        }
    }
    return out;
}

Result<std::shared_ptr<const Regex>> Regex::compile(std::string_view    pattern,
                                                    const std::string & where) {
    if (pattern.size() > kMaxPatternBytes) {
        return Status(Errc::unsupported_model, where + "regex of " +
                                                   std::to_string(pattern.size()) +
                                                   " bytes exceeds the limit of 65536");
    }
    const std::string translated = translate_oniguruma_pattern(pattern);
    int               err        = 0;
    PCRE2_SIZE        err_off    = 0;
    pcre2_code *      code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err, &err_off, nullptr);
    if (code == nullptr) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return Status(Errc::invalid_model,
                      where + "regex does not compile (" + reinterpret_cast<const char *>(msg) +
                          " at offset " + std::to_string(err_off) + " of the translated pattern)");
    }
    std::shared_ptr<Regex> re(new Regex());
    re->code_    = code;
    re->jit_     = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    re->pattern_ = std::string(pattern);
    return std::shared_ptr<const Regex>(std::move(re));
}

Regex::~Regex() {
    pcre2_code_free(as_code(code_));
}

Status Regex::find_all(std::string_view subject, MatchScratch & scratch,
                       std::vector<std::pair<uint32_t, uint32_t>> & out) const {
    MatchScratch::State * st       = scratch.state();
    const auto *          subj     = reinterpret_cast<PCRE2_SPTR>(subject.data());
    const size_t          n        = subject.size();
    const auto *          u        = reinterpret_cast<const unsigned char *>(subject.data());
    size_t                pos      = 0;
    size_t                last_end = SIZE_MAX;
    while (pos <= n) {
        int rc = pcre2_match(as_code(code_), subj, n, pos, PCRE2_NO_UTF_CHECK, st->md, st->ctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // interpreter: heap frames instead of a stack
            rc = pcre2_match(as_code(code_), subj, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                             st->md, st->ctx);
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return Status(Errc::invalid_argument,
                          "pre-tokenizer regex gave up on the input at byte " +
                              std::to_string(pos) + ": " + reinterpret_cast<const char *>(msg));
        }
        const PCRE2_SIZE * ov = pcre2_get_ovector_pointer(st->md);
        const size_t       s  = ov[0];
        const size_t       e  = ov[1];
        if (s > e || e > n || s < pos) {  // \K tricks; never produced by tokenizer patterns
            return Status(Errc::invalid_argument,
                          "pre-tokenizer regex returned a match that ends before it starts");
        }
        if (s == e && e == last_end) {  // empty match right after the previous one: skip it
            if (e >= n) break;
            pos = e + utf8_step(u + e, n - e).len;
            continue;
        }
        out.emplace_back(static_cast<uint32_t>(s), static_cast<uint32_t>(e));
        last_end = e;
        pos      = e;
    }
    return Status();
}

std::string regex_unicode_version() {
    char buf[64] = {};
    pcre2_config(PCRE2_CONFIG_UNICODE_VERSION, buf);
    return buf;
}

}  // namespace dsv4::tok
