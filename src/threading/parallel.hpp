// parallel_for: the one place where dsv4 starts worker threads (OpenMP, or the std::thread pool
// of threading/pool.hpp when built with DSV4_OPENMP=OFF).
//
// Why it looks like this (docs/embedding.md, house-style §4.5):
//  * parallel_for: static contiguous chunks, one per thread — no shared counter, and each
//    thread's part is one contiguous stretch;
//  * parallel_for_dynamic: chunks of a size the caller picks, handed out in order from a shared
//    counter, for the big decode products. Every weight row costs the same, but the threads do
//    not read equally fast: on the 2-vCPU VM one vCPU reads 1.2-1.5x faster than the other,
//    and which one changes within seconds (docs/performance.md), so a static split leaves the
//    faster thread idle at the end of every product. Callers give each output
//    element to exactly one call whose result does not depend on the chunk it lies in, so the
//    output is bit-identical whatever the timing, thread count or backend;
//  * an explicit thread count per call (`num_threads` clause), never omp_set_num_threads():
//    that would change the host application's OpenMP settings;
//  * nested calls (already inside a parallel region) and small jobs run serially on the
//    calling thread, so kernels may call parallel_for without oversubscribing;
//  * chunk boundaries are multiples of `grain` so a kernel that works on blocks of rows (e.g.
//    128-row FP8 scale blocks) never has a block split across threads;
//  * with_team: a forward call opens one OpenMP region and posts each of its products to the
//    region's threads, instead of a fork and a join per product.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <type_traits>

#if defined(DSV4_HAVE_OPENMP)
#include <omp.h>
#endif
#include "threading/pool.hpp"

namespace dsv4::threading {

// The OpenMP team a thread owns while it runs the body of with_team (below), else null.
struct Team {
    int      size = 1;  // threads of the region, the owner included
    JobBoard board;
};
inline thread_local Team * t_team = nullptr;

// True when called from inside a dsv4 (or any OpenMP) parallel region — but not on the owner
// of a team outside its jobs: there parallel_for hands its parts to the team.
inline bool in_parallel() noexcept {
    if (in_job()) return true;
#if defined(DSV4_HAVE_OPENMP)
    if (t_team) return false;
    return omp_in_parallel() != 0;
#else
    return false;
#endif
}

// Runs body() with one OpenMP parallel region of n_threads open around it, whose other threads
// serve every parallel_for / parallel_for_dynamic that body makes on this thread (JobBoard:
// a post, a spin, no fork or join per product). For a forward call, whose products follow
// one another within microseconds: a region per product costs its fork, its join and the
// slower thread's late start each time, 5-15 µs per 2-8 MB product here (docs/performance.md,
// "Twelfth session"). The region ends with body, so the threads park as after any OpenMP
// region. Serial (plain body()) with one thread, inside a parallel region, and without OpenMP
// (the std::thread pool already keeps its workers). An exception from body is rethrown here.
template <class Body>
void with_team(int n_threads, Body && body) {
#if defined(DSV4_HAVE_OPENMP)
    if (n_threads <= 1 || in_parallel() || t_team) {  // (an open team serves this body too)
        body();
        return;
    }
    Team               team;
    std::exception_ptr error;
#pragma omp parallel num_threads(n_threads)
    {
        if (omp_get_thread_num() == 0) {
            team.size = omp_get_num_threads();  // the runtime may give fewer than asked
            t_team    = &team;
            try {
                body();
            } catch (...) {
                error = std::current_exception();
            }
            t_team = nullptr;
            team.board.stop();
        } else {
            team.board.serve(omp_get_thread_num(), 0);
        }
    }
    if (error) std::rethrow_exception(error);
#else
    (void)n_threads;
    body();
#endif
}

// Splits [0, n) into at most n_threads contiguous ranges whose boundaries are multiples of
// `grain`, and returns the range of part `i` of `parts` in [*begin, *end).
inline void split_range(int64_t n, int64_t grain, int parts, int i, int64_t * begin,
                        int64_t * end) noexcept {
    grain               = std::max<int64_t>(grain, 1);
    const int64_t units = (n + grain - 1) / grain;
    const int64_t base = units / parts, extra = units % parts;
    const int64_t u0 = i * base + std::min<int64_t>(i, extra);
    const int64_t u1 = u0 + base + (i < extra ? 1 : 0);
    *begin           = std::min(n, u0 * grain);
    *end             = std::min(n, u1 * grain);
}

// Calls fn(begin, end) on disjoint ranges covering [0, n). Runs serially when n_threads <= 1,
// when there is at most one grain of work, or when already inside a parallel region.
template <class Fn>
void parallel_for(int n_threads, int64_t n, int64_t grain, Fn && fn) {
    if (n <= 0) return;
    grain               = std::max<int64_t>(grain, 1);
    const int64_t units = (n + grain - 1) / grain;
    int           nt    = static_cast<int>(std::min<int64_t>(std::max(n_threads, 1), units));
    if (nt <= 1 || in_parallel()) {
        fn(int64_t{0}, n);
        return;
    }
    // The parts as a PartFn for a team or the pool: the same static split as the OpenMP
    // region, so results do not depend on the threading backend.
    struct Ctx {
        std::remove_reference_t<Fn> * fn;
        int64_t                       n, grain;
        int                           parts;
    } ctx{&fn, n, grain, nt};
    const auto run_part = [](void * p, int i) {
        const Ctx & c = *static_cast<const Ctx *>(p);
        int64_t     b = 0, e = 0;
        split_range(c.n, c.grain, c.parts, i, &b, &e);
        if (b < e) (*c.fn)(b, e);
    };
#if defined(DSV4_HAVE_OPENMP)
    if (t_team) {
        ctx.parts = nt = std::min(nt, t_team->size);
        t_team->board.run(nt, PartFn{&ctx, run_part}, t_team->size - 1);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        const int t  = omp_get_thread_num();
        const int nn = omp_get_num_threads();  // the runtime may give fewer than asked
        int64_t   b = 0, e = 0;
        split_range(n, grain, nn, t, &b, &e);
        if (b < e) fn(b, e);
    }
#else
    // A busy pool (another caller's job) means: run serially here.
    if (!pool_run(nt, PartFn{&ctx, run_part})) fn(int64_t{0}, n);
#endif
}

// Calls fn(begin, end) on consecutive chunks of [0, n), each taken by whichever thread is free,
// in ascending order of start. Chunk sizes are multiples of `grain` (the last may be short):
// `chunk` while much work is left, then smaller — about remaining / (2·threads), never below
// grain — so the threads finish together instead of one waiting for another's last big chunk.
// Serial (one call over [0, n)) under the same conditions as parallel_for.
template <class Fn>
void parallel_for_dynamic(int n_threads, int64_t n, int64_t grain, int64_t chunk, Fn && fn) {
    if (n <= 0) return;
    grain               = std::max<int64_t>(grain, 1);
    chunk               = std::max<int64_t>((chunk + grain - 1) / grain * grain, grain);
    const int64_t units = (n + grain - 1) / grain;
    int           nt    = static_cast<int>(std::min<int64_t>(std::max(n_threads, 1), units));
    if (nt <= 1 || in_parallel()) {
        fn(int64_t{0}, n);
        return;
    }
#if defined(DSV4_HAVE_OPENMP)
    if (t_team) nt = std::min(nt, t_team->size);
#endif
    std::atomic<int64_t> next{0};
    const auto           work = [&] {
        int64_t b = next.load(std::memory_order_relaxed);
        while (b < n) {
            const int64_t left = n - b;
            int64_t       size = (left / (2 * nt) + grain - 1) / grain * grain;
            size               = std::min(std::max(size, grain), chunk);
            if (!next.compare_exchange_weak(b, b + size, std::memory_order_relaxed)) continue;
            fn(b, std::min(n, b + size));
            b = next.load(std::memory_order_relaxed);
        }
    };
    using Work = decltype(work);
    const PartFn part{const_cast<void *>(static_cast<const void *>(&work)),
                      [](void * p, int) { (*static_cast<const Work *>(p))(); }};
#if defined(DSV4_HAVE_OPENMP)
    if (t_team) {
        t_team->board.run(nt, part, t_team->size - 1);
        return;
    }
#pragma omp parallel num_threads(nt)
    work();
#else
    if (!pool_run(nt, part)) fn(int64_t{0}, n);
#endif
}

}  // namespace dsv4::threading
