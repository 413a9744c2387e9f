// Helpers shared by the test executables.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <string>

namespace dsv4::test {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        static std::atomic<int> counter{0};
        std::random_device      rd;
        path = std::filesystem::temp_directory_path() /
               ("dsv4-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
                std::to_string(rd()));
        std::filesystem::create_directories(path);
    }
    TempDir(const TempDir &)             = delete;
    TempDir & operator=(const TempDir &) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string & name) const { return (path / name).string(); }
};

}  // namespace dsv4::test
