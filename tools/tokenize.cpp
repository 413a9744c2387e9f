// dsv4-tokenize: text <-> token ids with a tokenizer.json.
//   dsv4-tokenize --tokenizer tokenizer.json            < text   -> "id id id ...\n"
//   dsv4-tokenize --tokenizer tokenizer.json --decode   < ids    -> text
//   dsv4-tokenize --unicode-version                              -> Unicode version of the regexes
// Exit status: 0 on success, 1 on bad input (unreadable tokenizer, malformed ids), 2 on usage.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dsv4/tokenizer.hpp"
#include "tokenizer/regex.hpp"

namespace {

int usage(const char * msg) {
    if (msg != nullptr) std::fprintf(stderr, "dsv4-tokenize: %s\n", msg);
    std::fprintf(stderr,
                 "usage: dsv4-tokenize --tokenizer FILE [--decode]   (reads stdin)\n"
                 "       dsv4-tokenize --unicode-version\n"
                 "  encodes UTF-8 text from stdin to space-separated ids on one line, or with\n"
                 "  --decode reads whitespace-separated ids and writes the text.\n");
    return 2;
}

bool read_stdin(std::string & out) {
    char buf[1 << 16];
    for (;;) {
        const size_t n = std::fread(buf, 1, sizeof buf, stdin);
        out.append(buf, n);
        if (n < sizeof buf) return std::ferror(stdin) == 0;
    }
}

}  // namespace

int main(int argc, char ** argv) {
    std::string path;
    bool        decode = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--tokenizer" && i + 1 < argc) {
            path = argv[++i];
        } else if (a == "--decode") {
            decode = true;
        } else if (a == "--unicode-version") {
            std::printf("%s\n", dsv4::tok::regex_unicode_version().c_str());
            return 0;
        } else if (a == "-h" || a == "--help") {
            usage(nullptr);
            return 0;
        } else {
            return usage(("unknown or incomplete argument '" + a + "'").c_str());
        }
    }
    if (path.empty()) return usage("--tokenizer FILE is required");

    dsv4::Result<dsv4::Tokenizer> tok = dsv4::Tokenizer::load(path);
    if (!tok.ok()) {
        std::fprintf(stderr, "dsv4-tokenize: %s\n", tok.status().to_string().c_str());
        return 1;
    }
    std::string input;
    if (!read_stdin(input)) {
        std::fprintf(stderr, "dsv4-tokenize: error reading stdin\n");
        return 1;
    }

    if (!decode) {
        dsv4::Result<std::vector<int32_t>> ids = tok->encode(input);
        if (!ids.ok()) {
            std::fprintf(stderr, "dsv4-tokenize: %s\n", ids.status().to_string().c_str());
            return 1;
        }
        std::string line;
        line.reserve(ids->size() * 7);
        for (size_t i = 0; i < ids->size(); ++i) {
            if (i) line += ' ';
            line += std::to_string((*ids)[i]);
        }
        line += '\n';
        std::fwrite(line.data(), 1, line.size(), stdout);
        return std::fflush(stdout) == 0 ? 0 : 1;
    }

    std::vector<int32_t> ids;
    const char *         p     = input.c_str();
    size_t               count = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',') ++p;
        if (*p == '\0') break;
        char * end   = nullptr;
        errno        = 0;
        const long v = std::strtol(p, &end, 10);
        if (end == p || errno != 0 || v < INT32_MIN || v > INT32_MAX ||
            (*end != '\0' && std::strchr(" \t\n\r,", *end) == nullptr)) {
            std::fprintf(stderr,
                         "dsv4-tokenize: --decode: item %zu is not an integer id: '%.20s'\n", count,
                         p);
            return 1;
        }
        ids.push_back(static_cast<int32_t>(v));
        ++count;
        p = end;
    }
    if (p != input.c_str() + input.size()) {
        std::fprintf(stderr, "dsv4-tokenize: --decode: NUL byte in the input\n");
        return 1;
    }
    dsv4::Result<std::string> text = tok->decode(ids);
    if (!text.ok()) {
        std::fprintf(stderr, "dsv4-tokenize: %s\n", text.status().to_string().c_str());
        return 1;
    }
    std::fwrite(text->data(), 1, text->size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
}
