#include "threading/pool.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DSV4_CPU_RELAX() _mm_pause()
#else
#define DSV4_CPU_RELAX() ((void)0)
#endif

namespace dsv4::threading {

namespace {

thread_local bool t_in_job = false;

// Spin iterations before parking (a pause is ~10–50 ns: roughly 20–100 µs in all).
constexpr int kSpin = 2000;

// Sets t_in_job for a scope and restores it.
struct InJob {
    bool saved = t_in_job;
    InJob() { t_in_job = true; }
    ~InJob() { t_in_job = saved; }
};

}  // namespace

bool in_job() noexcept {
    return t_in_job;
}

void JobBoard::run(int parts, PartFn fn, int workers) {
    job_   = fn;
    parts_ = parts;
    remaining_.store(workers, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_acq_rel);  // publishes job_ and parts_
    generation_.notify_all();
    {
        InJob scope;
        fn.call(fn.ctx, 0);
    }
    for (int spin = 0;; ++spin) {
        const int left = remaining_.load(std::memory_order_acquire);
        if (left == 0) break;
        if (spin < kSpin)
            DSV4_CPU_RELAX();
        else
            remaining_.wait(left, std::memory_order_acquire);
    }
}

void JobBoard::serve(int index, uint64_t seen) {
    InJob scope;
    for (;;) {
        uint64_t g = generation_.load(std::memory_order_acquire);
        for (int spin = 0; g == seen; ++spin) {
            if (spin < kSpin)
                DSV4_CPU_RELAX();
            else
                generation_.wait(seen, std::memory_order_acquire);
            g = generation_.load(std::memory_order_acquire);
        }
        seen = g;
        if (stop_.load(std::memory_order_acquire)) return;
        if (index < parts_) job_.call(job_.ctx, index);
        if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
    }
}

void JobBoard::stop() {
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    generation_.notify_all();
}

namespace {

class Pool {
  public:
    ~Pool() {
        {
            std::lock_guard<std::mutex> lock(grow_);
            board_.stop();
        }
        for (auto & t : workers_) t.join();
    }

    bool run(int parts, PartFn fn) {
        std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
        if (!busy.owns_lock()) return false;
        ensure_workers(parts - 1);
        board_.run(parts, fn, n_workers_);
        return true;
    }

  private:
    void ensure_workers(int n) {
        std::lock_guard<std::mutex> lock(grow_);
        while (static_cast<int>(workers_.size()) < n) {
            const int      index = static_cast<int>(workers_.size()) + 1;  // part handled
            const uint64_t seen  = board_.generation();
            workers_.emplace_back([this, index, seen] { board_.serve(index, seen); });
        }
        n_workers_ = static_cast<int>(workers_.size());
    }

    std::mutex               busy_;  // one job at a time
    std::mutex               grow_;
    std::vector<std::thread> workers_;
    JobBoard                 board_;
    int                      n_workers_ = 0;
};

Pool & pool() {
    static Pool p;
    return p;
}

}  // namespace

bool pool_run(int parts, PartFn fn) {
    if (parts <= 1) {
        fn.call(fn.ctx, 0);
        return true;
    }
    return pool().run(parts, fn);
}

}  // namespace dsv4::threading
