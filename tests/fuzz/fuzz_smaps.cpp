// libFuzzer target for the /proc/self/smaps line scanner (io::SmapsField): any text, cut at
// newlines, must give a value >= -1 and never a crash or sanitizer report. The first 8 bytes
// choose the mapping start searched for, so inputs can name an address of their own text.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "io/mapped_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    uint64_t start = 0;
    if (size >= 8) {
        std::memcpy(&start, data, 8);
        data += 8;
        size -= 8;
    }
    const std::string_view text(reinterpret_cast<const char *>(data), size);
    dsv4::io::SmapsField   field(static_cast<uintptr_t>(start), "FilePmdMapped");
    size_t                 b    = 0;
    bool                   done = false;
    for (size_t e = 0; e <= text.size() && !done; ++e) {
        if (e < text.size() && text[e] != '\n') continue;
        done = field.line(text.substr(b, e - b));
        b    = e + 1;
    }
    if (field.kb() < -1) __builtin_trap();
    if (done && !field.line("FilePmdMapped: 1 kB")) __builtin_trap();  // stays done
    return 0;
}
