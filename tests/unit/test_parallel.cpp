#include <atomic>
#include <catch2/catch.hpp>
#include <vector>

#include "threading/parallel.hpp"

using dsv4::threading::parallel_for;
using dsv4::threading::split_range;

TEST_CASE("split_range covers [0,n) with grain-aligned boundaries", "[parallel]") {
    for (int64_t n : {1, 7, 128, 129, 1000, 4096}) {
        for (int64_t grain : {1, 16, 128}) {
            for (int parts : {1, 2, 3, 8}) {
                int64_t prev_end = 0;
                for (int i = 0; i < parts; ++i) {
                    int64_t b, e;
                    split_range(n, grain, parts, i, &b, &e);
                    CHECK(b == prev_end);
                    CHECK(b <= e);
                    if (e < n) CHECK(e % grain == 0);
                    prev_end = e;
                }
                CHECK(prev_end == n);
            }
        }
    }
}

TEST_CASE("parallel_for visits every index exactly once", "[parallel]") {
    for (int threads : {1, 2, 4}) {
        for (int64_t n : {1, 5, 257, 10000}) {
            std::vector<std::atomic<int>> hits(n);
            parallel_for(threads, n, 16, [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
            });
            for (int64_t i = 0; i < n; ++i) REQUIRE(hits[i].load() == 1);
        }
    }
}

TEST_CASE("nested parallel_for runs serially inside the outer range", "[parallel]") {
    std::atomic<int> inner_calls{0};
    parallel_for(2, 4, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            int calls_here = 0;
            parallel_for(2, 100, 1, [&](int64_t ib, int64_t ie) {
                ++calls_here;
                CHECK(ib == 0);
                CHECK(ie == 100);
            });
            if (dsv4::threading::in_parallel()) CHECK(calls_here == 1);
            inner_calls += calls_here;
        }
    });
    CHECK(inner_calls.load() >= 4);
}
