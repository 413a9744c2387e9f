// Persistent workers fed jobs by one owner thread, two ways:
//  * the std::thread pool behind parallel_for when dsv4 is built without OpenMP
//    (DSV4_OPENMP=OFF), and the reason that option exists for embedders: unlike an OpenMP
//    runtime, its idle policy is ours;
//  * the job board of an OpenMP team (threading::with_team, parallel.hpp): the threads of one
//    long-lived OpenMP parallel region serving the jobs of a whole forward call.
// Both use JobBoard: workers spin briefly after a job (the next GEMV of a decode step follows
// within microseconds), then park on a futex (std::atomic::wait), so a host's render or audio
// thread gets the core back about 100 µs after generation stops.
//
// One process-wide pool serves one job at a time. A caller that finds it busy (another
// Session generating on another thread) runs its job serially on its own thread instead of
// queueing or oversubscribing the cores.
#pragma once

#include <atomic>
#include <cstdint>

namespace dsv4::threading {

// A non-owning callable reference: job(part) for part in [0, parts).
struct PartFn {
    void * ctx;
    void (*call)(void * ctx, int part);
};

// True on a worker (pool or team), and on an owner while it runs its part 0: parallel_for
// called there runs serially.
bool in_job() noexcept;

// One owner posts jobs, n workers (indices 1..n) serve them. Every worker acknowledges every
// job (the idle ones at once), so no worker can still be reading a job when the next one
// replaces it, and a worker that starts late still sees the job posted before it started.
class JobBoard {
  public:
    // Owner: runs fn for parts 0..parts-1 (part 0 on the calling thread) with `workers`
    // workers serving, and returns when all are done.
    void run(int parts, PartFn fn, int workers);
    // Worker `index` >= 1: serves jobs posted after generation `seen` until stop().
    void     serve(int index, uint64_t seen);
    void     stop();
    uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

  private:
    std::atomic<uint64_t> generation_{0};
    std::atomic<int>      remaining_{0};
    std::atomic<bool>     stop_{false};
    PartFn                job_{nullptr, nullptr};
    int                   parts_ = 0;
};

// Runs fn for parts 0..parts-1 (part 0 on the calling thread) and returns when all are done.
// Returns false, having run nothing, when the pool is busy with another caller's job.
bool pool_run(int parts, PartFn fn);

}  // namespace dsv4::threading
