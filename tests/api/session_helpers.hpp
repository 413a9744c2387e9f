// Helpers shared by the Session test executables (tests/api).
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "dsv4/dsv4.hpp"

namespace dsv4::test {

// The golden-a model (tests/data/golden-a), loaded once per test executable, 2 threads.
inline const Model & golden_model() {
    static Model m = [] {
        LoadOptions o;
        o.n_threads = 2;
        auto r      = Model::load(std::string(DSV4_TEST_DATA_DIR) + "/golden-a", o);
        REQUIRE(r.ok());
        return std::move(r).value();
    }();
    return m;
}

// Greedy decoding of at most n tokens.
inline GenerateOptions greedy(int32_t n) {
    GenerateOptions o;
    o.max_tokens           = n;
    o.sampling.temperature = 0.0f;
    return o;
}

// generate_tokens with a callback that collects the generated ids; the call must succeed.
inline std::vector<int32_t> run_tokens(Session & s, const std::vector<int32_t> & prompt,
                                       const GenerateOptions & o, GenerateStats * stats = nullptr) {
    std::vector<int32_t> out;
    auto                 r = s.generate_tokens(prompt, o, [&](const TokenEvent & e) {
        out.push_back(e.token);
        return Control::proceed;
    });
    REQUIRE(r.ok());
    if (stats) *stats = r->stats;
    return out;
}

}  // namespace dsv4::test
