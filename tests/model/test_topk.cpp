// The indexer's top-k selection (model::topk_desc) against the rule of spec §8.2 written out
// as a full sort: higher score first, equal scores → lower block index first. The inputs
// include the orders that break naive selections (rising scores, all ties) and NaN.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "model/attention.hpp"

namespace {

std::vector<int32_t> by_full_sort(const std::vector<float> & s, int64_t k) {
    std::vector<int32_t> idx(s.size());
    std::iota(idx.begin(), idx.end(), 0);
    const auto rank = [&](int32_t c) {
        return std::isnan(s[c]) ? -std::numeric_limits<float>::infinity() : s[c];
    };
    std::stable_sort(idx.begin(), idx.end(),
                     [&](int32_t a, int32_t b) { return rank(a) > rank(b); });
    idx.resize(static_cast<size_t>(std::min<int64_t>(k, static_cast<int64_t>(s.size()))));
    return idx;
}

std::vector<int32_t> by_topk(const std::vector<float> & s, int64_t k) {
    std::vector<int32_t> out(
        static_cast<size_t>(std::min<int64_t>(k, static_cast<int64_t>(s.size()))), -1);
    std::vector<uint32_t> tmp(2 * s.size());
    dsv4::model::topk_desc(s.data(), static_cast<int64_t>(s.size()), k, out.data(), tmp.data());
    return out;
}

}  // namespace

TEST_CASE("topk_desc selects and orders as the spec's tie rule", "[unit][topk]") {
    std::mt19937                          rng(7);
    std::uniform_real_distribution<float> u(-4.0f, 4.0f);
    for (int64_t n : {1, 2, 7, 512, 513, 4099}) {
        for (int64_t k : {1, 3, 64, 512, 4099}) {
            if (k > n) continue;
            std::vector<std::vector<float>> cases;
            std::vector<float>              v(static_cast<size_t>(n));
            for (auto & x : v) x = u(rng);
            cases.push_back(v);  // random
            for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.25f;
            cases.push_back(v);  // rising: every score enters the running top-k
            std::reverse(v.begin(), v.end());
            cases.push_back(v);  // falling
            for (auto & x : v) x = 1.5f;
            cases.push_back(v);  // all tied: the k lowest indices, ascending
            for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 7) % 5);
            cases.push_back(v);  // few distinct values, many ties
            for (int64_t i = 0; i < n; i += 3) v[i] = std::numeric_limits<float>::quiet_NaN();
            cases.push_back(v);  // NaN ranks below every number
            for (int64_t i = 0; i < n; ++i)
                v[i] = (i % 3 == 0) ? -0.0f : (i % 3 == 1) ? 0.0f : -static_cast<float>(i % 4);
            cases.push_back(v);  // -0 ties +0 (the lower index first), negatives below
            for (int64_t i = 0; i < n; ++i) {  // 1 + a few ulps: only the low bits differ
                const uint32_t bits = 0x3F800000u + static_cast<uint32_t>((i * 37) % 2500);
                std::memcpy(&v[i], &bits, 4);
            }
            cases.push_back(v);
            for (int64_t i = 0; i < n; ++i)
                v[i] = i % 5 == 0   ? std::numeric_limits<float>::infinity()
                       : i % 5 == 1 ? -std::numeric_limits<float>::infinity()
                                    : u(rng) * 1e-30f;  // infinities, tiny values, subnormal-ish
            cases.push_back(v);
            for (size_t c = 0; c < cases.size(); ++c) {
                DYNAMIC_SECTION("n=" << n << " k=" << k << " case " << c) {
                    CHECK(by_topk(cases[c], k) == by_full_sort(cases[c], k));
                }
            }
        }
    }
}
