// dsv4-golden: runs every check of a golden directory (manifest.json + golden.safetensors next
// to a checkpoint, the format of ../shared/golden) and prints one line per check with its
// measured error and tolerance. Exit status 0 only if all checks pass.
//   dsv4-golden DIR [--threads N] [--arch NAME] [--no-scratch]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "golden_runner.hpp"

int main(int argc, char ** argv) {
    std::string           dir;
    dsv4::golden::Options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--threads" && i + 1 < argc)
            opt.n_threads = std::atoi(argv[++i]);
        else if (a == "--arch" && i + 1 < argc) {
            auto r = dsv4::parse_cpu_arch(argv[++i]);
            if (!r.ok()) {
                std::fprintf(stderr, "dsv4-golden: %s\n", r.status().to_string().c_str());
                return 2;
            }
            opt.arch = *r;
        } else if (a == "--no-scratch")
            opt.run_scratch = false;
        else if (!a.empty() && a[0] != '-' && dir.empty())
            dir = a;
        else {
            std::fprintf(stderr,
                         "usage: dsv4-golden DIR [--threads N] [--arch NAME] [--no-scratch]\n");
            return 2;
        }
    }
    if (dir.empty()) {
        std::fprintf(stderr, "usage: dsv4-golden DIR [--threads N] [--arch NAME] [--no-scratch]\n");
        return 2;
    }
    auto r = dsv4::golden::run(dir, opt);
    if (!r.ok()) {
        std::fprintf(stderr, "dsv4-golden: %s\n", r.status().to_string().c_str());
        return 1;
    }
    std::printf("kernel table: %s\n", r->table ? r->table->name : "?");
    int failed = 0;
    for (const auto & c : r->checks) {
        std::printf("%s  %-58s %s\n", c.pass ? "PASS" : "FAIL", c.name.c_str(), c.detail.c_str());
        failed += !c.pass;
    }
    std::printf("%zu passed, %d failed\n", r->checks.size() - failed, failed);
    return failed ? 1 : 0;
}
