// Helpers for the chat-encoding tests: the special tokens spelled out, file reading, and the
// location of DeepSeek's official gold pairs (read in place from ../shared; never copied into
// the repository).
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace dsv4::test {

// Special tokens, written out here (not taken from the library) so that a typo there fails.
inline const std::string kBos      = "<｜begin▁of▁sentence｜>";
inline const std::string kEos      = "<｜end▁of▁sentence｜>";
inline const std::string kUser     = "<｜User｜>";
inline const std::string kAsst     = "<｜Assistant｜>";
inline const std::string kThink    = "<think>";
inline const std::string kEndThink = "</think>";
inline const std::string kReminder = "<｜latest_reminder｜>";

inline std::string read_text_file(const std::filesystem::path & p) {
    std::ifstream     f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The folder with test_input_N.json / test_output_N.txt: $DSV4_ENCODING_GOLD_DIR, else
// <source>/../shared/golden/encoding.
inline std::filesystem::path encoding_gold_dir() {
    if (const char * env = std::getenv("DSV4_ENCODING_GOLD_DIR"); env != nullptr && *env != 0) {
        return env;
    }
    return std::filesystem::path(DSV4_SOURCE_DIR) / ".." / "shared" / "golden" / "encoding";
}

// True when the gold pairs are there. Otherwise the test is skipped with a warning, or fails
// when the environment variable CI is set (CI must always run the gold comparison).
inline bool encoding_gold_available() {
    const std::filesystem::path dir = encoding_gold_dir();
    bool                        all = true;
    for (int n = 1; n <= 4; ++n) {
        all = all && std::filesystem::exists(dir / ("test_input_" + std::to_string(n) + ".json")) &&
              std::filesystem::exists(dir / ("test_output_" + std::to_string(n) + ".txt"));
    }
    if (all) {
        return true;
    }
    const std::string msg = "official encoding gold pairs not found in " + dir.string() +
                            " (set DSV4_ENCODING_GOLD_DIR to the folder holding "
                            "test_input_{1..4}.json / test_output_{1..4}.txt)";
    if (std::getenv("CI") != nullptr) {
        FAIL(msg);
    }
    WARN(msg + " -- skipping");
    return false;
}

}  // namespace dsv4::test
