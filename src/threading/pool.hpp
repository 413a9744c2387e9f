// The std::thread worker pool behind parallel_for when dsv4 is built without OpenMP
// (DSV4_OPENMP=OFF), and the reason that option exists for embedders: unlike an OpenMP
// runtime, its idle policy is ours. Workers spin briefly after a job (the next GEMV of a
// decode step follows within microseconds), then park on a futex (std::atomic::wait), so a
// host's render or audio thread gets the core back about 100 µs after generation stops.
//
// One process-wide pool serves one job at a time. A caller that finds it busy (another
// Session generating on another thread) runs its job serially on its own thread instead of
// queueing or oversubscribing the cores.
#pragma once

#include <cstdint>

namespace dsv4::threading {

// A non-owning callable reference: job(part) for part in [0, parts).
struct PartFn {
    void * ctx;
    void (*call)(void * ctx, int part);
};

// Runs fn for parts 0..parts-1 (part 0 on the calling thread) and returns when all are done.
// Returns false, having run nothing, when the pool is busy with another caller's job.
bool pool_run(int parts, PartFn fn);

// True on a pool worker, and on a caller while it runs its part 0 (nested calls run serially).
bool pool_in_job() noexcept;

}  // namespace dsv4::threading
