// UTF-8 scanning with the Unicode "maximal subpart" replacement rule (the rule of Python's
// bytes.decode(errors="replace"), Rust's String::from_utf8_lossy and the WHATWG decoder), and
// the GPT-2 byte <-> character table that byte-level BPE vocabularies are spelled in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsv4::tok {

// One step of decoding at the start of `p[0..n)` (n >= 1):
//   kind == valid      a well-formed character of `len` bytes, code point `cp`;
//   kind == invalid    `len` bytes (1..3) form a maximal invalid subpart: one U+FFFD;
//   kind == truncated  all `len` == n remaining bytes are a well-formed but unfinished prefix.
struct Utf8Step {
    enum Kind : uint8_t { valid, invalid, truncated };
    Kind     kind = invalid;
    uint32_t len  = 1;
    uint32_t cp   = 0;
};
Utf8Step utf8_step(const unsigned char * p, size_t n) noexcept;

// True when every byte sequence is well-formed UTF-8.
bool utf8_is_valid(std::string_view s) noexcept;

// Appends `s` to `out`, replacing each maximal invalid subpart, and an unfinished sequence at
// the end, by U+FFFD.
void utf8_append_lossy(std::string & out, std::string_view s);

// Appends the UTF-8 encoding of `cp` (must be a valid scalar value).
void utf8_append(std::string & out, uint32_t cp);

// The 256-character GPT-2 alphabet: printable Latin-1 bytes stand for themselves, the other 68
// bytes (controls, space, DEL, NBSP, soft hyphen, ...) map to U+0100.. in byte order.
uint32_t byte_to_char(uint8_t b) noexcept;
// Inverse of byte_to_char: the byte a character stands for, or -1.
int char_to_byte(uint32_t cp) noexcept;

// `token` (a vocab key, valid UTF-8) read as GPT-2 alphabet characters: true and the raw bytes
// in `bytes` when every character is in the alphabet; false otherwise (bytes left unspecified).
bool byte_level_unmap(std::string_view token, std::string & bytes);
// Raw bytes -> GPT-2 alphabet spelling.
std::string byte_level_map(std::string_view bytes);

}  // namespace dsv4::tok
