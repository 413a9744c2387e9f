// UTF-8 well-formedness follows Unicode Table 3-7; the replacement rule is "maximal subpart":
// a lead byte plus as many following bytes as can still start a well-formed sequence are
// replaced by a single U+FFFD, then decoding resumes at the first byte that broke the sequence.
#include "tokenizer/utf8.hpp"

#include <array>

namespace dsv4::tok {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

struct ByteTables {
    std::array<uint32_t, 256> to_char{};
    std::array<int16_t, 512>  to_byte{};  // indexed by code point; the alphabet is below U+0200
};

ByteTables make_tables() {
    ByteTables t;
    t.to_byte.fill(-1);
    uint32_t extra = 0;
    for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        const uint32_t cp    = printable ? static_cast<uint32_t>(b) : 256 + extra++;
        t.to_char[static_cast<size_t>(b)] = cp;
        t.to_byte[cp]                     = static_cast<int16_t>(b);
    }
    return t;
}

const ByteTables & tables() {
    static const ByteTables t = make_tables();
    return t;
}

}  // namespace

Utf8Step utf8_step(const unsigned char * p, size_t n) noexcept {
    Utf8Step      s;
    const uint8_t b0 = p[0];
    if (b0 < 0x80) {
        s.kind = Utf8Step::valid;
        s.cp   = b0;
        return s;
    }
    uint32_t need = 0;              // continuation bytes
    uint8_t  lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    uint32_t cp = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
        cp   = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        cp   = b0 & 0x0Fu;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        cp   = b0 & 0x07u;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return s;  // 0x80..0xC1, 0xF5..0xFF: never a lead byte
    }
    uint32_t i = 1;
    for (; i <= need; ++i) {
        if (i >= n) {
            s.kind = Utf8Step::truncated;
            s.len  = i;
            return s;
        }
        const uint8_t c   = p[i];
        const uint8_t min = i == 1 ? lo : 0x80;
        const uint8_t max = i == 1 ? hi : 0xBF;
        if (c < min || c > max) {
            s.len = i;  // invalid, maximal subpart of i bytes
            return s;
        }
        cp = (cp << 6) | (c & 0x3Fu);
    }
    s.kind = Utf8Step::valid;
    s.len  = need + 1;
    s.cp   = cp;
    return s;
}

bool utf8_is_valid(std::string_view s) noexcept {
    const auto * p = reinterpret_cast<const unsigned char *>(s.data());
    const size_t n = s.size();
    size_t       i = 0;
    while (i < n) {
        // ASCII fast path, 8 bytes at a time.
        while (i + 8 <= n) {
            uint64_t w = 0;
            for (int k = 0; k < 8; ++k) w |= static_cast<uint64_t>(p[i + k]) << (8 * k);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (p[i] < 0x80) {
            ++i;
            continue;
        }
        const Utf8Step st = utf8_step(p + i, n - i);
        if (st.kind != Utf8Step::valid) return false;
        i += st.len;
    }
    return true;
}

void utf8_append_lossy(std::string & out, std::string_view s) {
    const auto * p     = reinterpret_cast<const unsigned char *>(s.data());
    const size_t n     = s.size();
    size_t       i     = 0;
    size_t       clean = 0;  // start of the pending run of valid bytes
    while (i < n) {
        if (p[i] < 0x80) {
            ++i;
            continue;
        }
        const Utf8Step st = utf8_step(p + i, n - i);
        if (st.kind == Utf8Step::valid) {
            i += st.len;
            continue;
        }
        out.append(s.data() + clean, i - clean);
        out.append(kReplacement);
        i += st.len;
        clean = i;
    }
    out.append(s.data() + clean, n - clean);
}

void utf8_append(std::string & out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

uint32_t byte_to_char(uint8_t b) noexcept {
    return tables().to_char[b];
}

int char_to_byte(uint32_t cp) noexcept {
    return cp < tables().to_byte.size() ? tables().to_byte[cp] : -1;
}

bool byte_level_unmap(std::string_view token, std::string & bytes) {
    bytes.clear();
    const auto * p = reinterpret_cast<const unsigned char *>(token.data());
    const size_t n = token.size();
    size_t       i = 0;
    while (i < n) {
        const Utf8Step st = utf8_step(p + i, n - i);
        if (st.kind != Utf8Step::valid) return false;
        const int b = char_to_byte(st.cp);
        if (b < 0) return false;
        bytes.push_back(static_cast<char>(b));
        i += st.len;
    }
    return true;
}

std::string byte_level_map(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) utf8_append(out, byte_to_char(static_cast<uint8_t>(c)));
    return out;
}

}  // namespace dsv4::tok
