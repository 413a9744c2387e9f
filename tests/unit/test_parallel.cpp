#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
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

TEST_CASE("parallel_for runs the parts on distinct threads", "[parallel]") {
    std::mutex                mu;
    std::set<std::thread::id> ids;
    std::atomic<int>          arrived{0};
    dsv4::threading::parallel_for(2, 2, 1, [&](int64_t, int64_t) {
        {
            std::lock_guard<std::mutex> lock(mu);
            ids.insert(std::this_thread::get_id());
        }
        // Both parts must be in flight at once (a serial run would wait here forever, so
        // bound the wait and let the size check fail instead).
        ++arrived;
        for (int i = 0; i < 2000000 && arrived.load() < 2; ++i) std::this_thread::yield();
    });
    CHECK(ids.size() == 2);
}

TEST_CASE("parallel_for from several host threads at once: every call complete", "[parallel]") {
    // With the std::thread pool one caller gets the pool and the others run serially; with
    // OpenMP each host thread gets its own team. Either way every call must cover its range.
    std::vector<std::thread> th;
    std::atomic<int>         bad{0};
    for (int c = 0; c < 4; ++c)
        th.emplace_back([&] {
            for (int rep = 0; rep < 50; ++rep) {
                std::vector<std::atomic<int>> hits(1000);
                dsv4::threading::parallel_for(2, 1000, 7, [&](int64_t b, int64_t e) {
                    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
                });
                for (auto & h : hits)
                    if (h.load() != 1) ++bad;
            }
        });
    for (auto & t : th) t.join();
    CHECK(bad.load() == 0);
}

TEST_CASE("parallel_for_dynamic visits every index once, in grain-aligned chunks", "[parallel]") {
    for (int threads : {1, 2, 4}) {
        for (int64_t n : {1, 5, 257, 10000}) {
            for (int64_t grain : {1, 16}) {
                for (int64_t chunk : {1, 16, 300, 20000}) {
                    std::vector<std::atomic<int>> hits(n);
                    std::atomic<int>              bad{0};
                    const int64_t                 max_chunk = (chunk + grain - 1) / grain * grain;
                    dsv4::threading::parallel_for_dynamic(
                        threads, n, grain, chunk, [&](int64_t b, int64_t e) {
                            // A call is one chunk (grain-aligned start, at most max_chunk long,
                            // a multiple of grain unless it ends the range), or the whole range
                            // when run serially.
                            const bool whole = b == 0 && e == n;
                            if (!whole && (b % grain != 0 || e <= b || e - b > max_chunk ||
                                           (e != n && (e - b) % grain != 0)))
                                ++bad;
                            for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
                        });
                    CHECK(bad.load() == 0);
                    for (int64_t i = 0; i < n; ++i) REQUIRE(hits[i].load() == 1);
                }
            }
        }
    }
    // Nested inside a parallel region: serial on the calling thread, still complete.
    std::atomic<int64_t> total{0};
    parallel_for(2, 2, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
            dsv4::threading::parallel_for_dynamic(
                2, 100, 1, 7, [&](int64_t cb, int64_t ce) { total += ce - cb; });
    });
    CHECK(total.load() == 200);
}

// Both parts of a 2-part call in flight at once, on two threads: a serial run (one part after
// the other on one thread) waits out the bounded spin and fails the check.
static void check_two_parts_concurrent(bool dynamic) {
    std::mutex                mu;
    std::set<std::thread::id> ids;
    std::atomic<int>          arrived{0};
    const auto                part = [&](int64_t, int64_t) {
        {
            std::lock_guard<std::mutex> lock(mu);
            ids.insert(std::this_thread::get_id());
        }
        ++arrived;
        for (int i = 0; i < 2000000 && arrived.load() < 2; ++i) std::this_thread::yield();
    };
    if (dynamic)
        dsv4::threading::parallel_for_dynamic(2, 2, 1, 1, part);
    else
        dsv4::threading::parallel_for(2, 2, 1, part);
    CHECK(ids.size() == 2);
}

TEST_CASE("with_team: the calls of the body run on the team, in parallel and complete",
          "[parallel]") {
    // The team's region is open around the body, yet the body's calls must not be taken for
    // nested ones (serial): each still splits across the threads, many times over.
    const std::thread::id caller = std::this_thread::get_id();
    bool                  ran    = false;
    dsv4::threading::with_team(2, [&] {
        ran = true;
        CHECK(std::this_thread::get_id() == caller);  // the body runs on the calling thread
        CHECK_FALSE(dsv4::threading::in_parallel());
        check_two_parts_concurrent(false);
        check_two_parts_concurrent(true);
        for (int rep = 0; rep < 200; ++rep) {
            const int64_t                 n = 1 + rep * 37;
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            if (rep % 2)
                parallel_for(2, n, 16, [&](int64_t b, int64_t e) {
                    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
                });
            else
                dsv4::threading::parallel_for_dynamic(2, n, 16, 64, [&](int64_t b, int64_t e) {
                    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
                });
            for (auto & h : hits) REQUIRE(h.load() == 1);
        }
        // Inside a part, a call is nested: serial over its whole range.
        std::atomic<int> inner_whole{0};
        parallel_for(2, 2, 1, [&](int64_t, int64_t) {
            CHECK(dsv4::threading::in_parallel());
            parallel_for(2, 100, 1, [&](int64_t b, int64_t e) {
                if (b == 0 && e == 100) ++inner_whole;
            });
        });
        CHECK(inner_whole.load() == 2);
        // A team inside the body reuses this one: its calls still run in parallel.
        dsv4::threading::with_team(2, [&] { check_two_parts_concurrent(false); });
    });
    CHECK(ran);
    CHECK_FALSE(dsv4::threading::in_parallel());
    check_two_parts_concurrent(false);  // and after the team, as before
}

TEST_CASE("with_team: an exception from the body ends the team and reaches the caller",
          "[parallel]") {
    bool caught = false;
    try {
        dsv4::threading::with_team(2, [&] {
            parallel_for(2, 10, 1, [](int64_t, int64_t) {});
            throw std::runtime_error("stop");
        });
    } catch (const std::runtime_error & e) {
        caught = std::string(e.what()) == "stop";
    }
    CHECK(caught);
    check_two_parts_concurrent(true);
}

TEST_CASE("with_team from several host threads at once: each gets its own team", "[parallel]") {
    std::vector<std::thread> th;
    std::atomic<int>         bad{0};
    for (int c = 0; c < 3; ++c)
        th.emplace_back([&] {
            dsv4::threading::with_team(2, [&] {
                for (int rep = 0; rep < 50; ++rep) {
                    std::vector<std::atomic<int>> hits(1000);
                    dsv4::threading::parallel_for_dynamic(2, 1000, 7, 100,
                                                          [&](int64_t b, int64_t e) {
                                                              for (int64_t i = b; i < e; ++i)
                                                                  hits[static_cast<size_t>(i)]++;
                                                          });
                    for (auto & h : hits)
                        if (h.load() != 1) ++bad;
                }
            });
        });
    for (auto & t : th) t.join();
    CHECK(bad.load() == 0);
}
