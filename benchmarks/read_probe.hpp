// The streaming-read bandwidth that GEMV results are compared against, shared by
// dsv4-bench-kernels and dsv4-bench (benchmarks only, not library code).
//
// It has to be the most the machine delivers to plain reading code, or a "percentage of the
// bus" flatters the kernels. Measured on the 2-core Zen 5 VM (docs/performance.md, "The read
// probe"), the access pattern and the page size matter more than the instruction set:
//  * one ascending stream per thread beats 8 interleaved streams (the pattern of a tile of
//    rows) by up to 25 %, once each stream is software-prefetched 4 KB ahead;
//  * 2 MB pages beat 4 KB pages by 15-25 % (no page walk every 4 KB, and the hardware
//    prefetcher does not stop at each 4 KB boundary).
//  * a few long streams per thread read in lockstep beat one stream: with 4 contiguous parts
//    per thread (no software prefetch), 59-65 GB/s with 2 threads where one stream reads 48-50,
//    and 38-40 with one thread where one stream reads 25-28.
// So the buffer is anonymous memory with MADV_HUGEPAGE (what dsv4 itself uses for weights
// loaded with WeightLoad::read), and the result is the best, over 5 passes each, of five
// readers: 8 interleaved streams, one stream prefetched with the T0 and with the NTA hint, and
// 4 lockstep streams without and with an NTA prefetch.
// Every pass reads the whole buffer once (memory far beyond any cache), each thread its own
// contiguous part.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "threading/parallel.hpp"

namespace dsv4::bench {

// Anonymous, 64-byte aligned (page aligned) memory with transparent huge pages requested;
// null if the mapping fails. Contents are zero until written.
class HugeBuf {
  public:
    explicit HugeBuf(size_t bytes) : size_(bytes) {
        void * p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return;
        madvise(p, bytes, MADV_HUGEPAGE);  // best effort: THP may be off
        p_ = static_cast<uint8_t *>(p);
    }
    ~HugeBuf() {
        if (p_) munmap(p_, size_);
    }
    HugeBuf(const HugeBuf &)             = delete;
    HugeBuf & operator=(const HugeBuf &) = delete;
    uint8_t * data() const { return p_; }
    size_t    size() const { return size_; }

  private:
    size_t    size_ = 0;
    uint8_t * p_    = nullptr;
};

namespace probe_detail {

constexpr int kLanes = 16;  // floats per accumulator row: the compiler vectorises the adds

// n floats as 8 interleaved streams (8 equal parts read side by side).
inline float sum_interleaved(const float * p, int64_t n) {
    constexpr int kStreams              = 8;
    const int64_t m                     = n / kStreams / kLanes * kLanes;
    float         acc[kStreams][kLanes] = {};
    for (int64_t i = 0; i < m; i += kLanes)
        for (int s = 0; s < kStreams; ++s)
            for (int l = 0; l < kLanes; ++l) acc[s][l] += p[s * m + i + l];
    float sum = 0.0f;
    for (auto & a : acc)
        for (float v : a) sum += v;
    return sum;
}

// n floats as one ascending stream, each 256-byte step prefetching the line 4 KB ahead with
// hint H (3 = T0, 0 = NTA).
template <int H>
inline float sum_sequential(const float * p, int64_t n) {
    constexpr int kAcc              = 4;
    const int64_t m                 = n / (kAcc * kLanes) * (kAcc * kLanes);
    float         acc[kAcc][kLanes] = {};
    for (int64_t i = 0; i < m; i += kAcc * kLanes) {
        if (i + 1024 < m) {
            __builtin_prefetch(p + i + 1024, 0, H);
            __builtin_prefetch(p + i + 1024 + 16, 0, H);
            __builtin_prefetch(p + i + 1024 + 32, 0, H);
            __builtin_prefetch(p + i + 1024 + 48, 0, H);
        }
        for (int a = 0; a < kAcc; ++a)
            for (int l = 0; l < kLanes; ++l) acc[a][l] += p[i + a * kLanes + l];
    }
    float sum = 0.0f;
    for (auto & a : acc)
        for (float v : a) sum += v;
    return sum;
}

// n floats as 4 contiguous parts read in lockstep (64 floats of each part in turn): several
// long streams at once, the pattern of the decode kernels (linear-inl.hpp, "weight streams").
// H < 0: no software prefetch; else each part is prefetched 2 KB ahead with hint H.
template <int H>
inline float sum_lockstep(const float * p, int64_t n) {
    constexpr int kParts              = 4;
    const int64_t m                   = n / kParts / (4 * kLanes) * (4 * kLanes);
    float         acc[kParts][kLanes] = {};
    for (int64_t i = 0; i < m; i += 4 * kLanes)
        for (int s = 0; s < kParts; ++s) {
            const float * q = p + s * m + i;
            if constexpr (H >= 0) __builtin_prefetch(q + 512, 0, H);
            for (int a = 0; a < 4; ++a)
                for (int l = 0; l < kLanes; ++l) acc[s][l] += q[a * kLanes + l];
        }
    float sum = 0.0f;
    for (auto & a : acc)
        for (float v : a) sum += v;
    return sum;
}

inline double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace probe_detail

// Best streaming-read rate in GB/s with `threads` threads over `buf` (written here first so
// its pages exist). 0 if the buffer is missing.
inline double measure_read_bw(int threads, const HugeBuf & buf) {
    using namespace probe_detail;
    if (!buf.data()) return 0.0;
    auto *        f = reinterpret_cast<float *>(buf.data());
    const int64_t n = static_cast<int64_t>(buf.size() / sizeof(float));
    for (int64_t i = 0; i < n; i += 1024) f[i] = static_cast<float>(i & 1023) * 0x1p-10f;
    double         best  = 0.0;
    volatile float sink  = 0.0f;
    const int64_t  grain = int64_t{1} << 20;
    for (int reader = 0; reader < 5; ++reader)
        for (int rep = 0; rep < 5; ++rep) {
            float        part[64] = {};
            const double t0       = now_s();
            threading::parallel_for(threads, n, grain, [&](int64_t b, int64_t e) {
                const float * q = f + b;
                const float   s = reader == 0   ? sum_interleaved(q, e - b)
                                  : reader == 1 ? sum_sequential<3>(q, e - b)
                                  : reader == 2 ? sum_sequential<0>(q, e - b)
                                  : reader == 3 ? sum_lockstep<-1>(q, e - b)
                                                : sum_lockstep<0>(q, e - b);
                part[(b / grain) % 64] += s;
            });
            const double dt = now_s() - t0;
            for (float v : part) sink = sink + v;
            best = std::max(best, static_cast<double>(buf.size()) / dt / 1e9);
        }
    return best;
}

}  // namespace dsv4::bench
