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
//  * the two vCPUs of the VM read at different rates (the faster one by up to 1.5x, which one
//    changes within seconds), so a static split waits for the slower one: 8 MB chunks handed
//    out from a shared counter, as the kernels' own chunks are, read 2-7 % faster.
// So the buffer is anonymous memory with MADV_HUGEPAGE (what dsv4 itself uses for weights
// loaded with WeightLoad::read), and the result is the best, over 5 passes each, of seven
// readers: with each thread reading one contiguous half, 8 interleaved streams, one stream
// prefetched with the T0 and with the NTA hint, and 4 lockstep streams without and with an NTA
// prefetch; and the two lockstep readers again over 8 MB chunks taken by whichever thread is
// free. Every pass reads the whole buffer once (memory far beyond any cache).
// The best of 25 passes is the top of the host's noise, and this VM's bandwidth drifts by ±20 %
// within minutes, so a probe taken before or after a measurement describes other minutes than
// the measurement's. read_pass() is one pass of one reader: dsv4-bench interleaves passes of the
// best reader with the decode steps it times ("paired" probe), so both rates average the same
// minutes.
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

constexpr int     kReaders    = 7;                 // the patterns listed at the top
constexpr int64_t kChunkBytes = int64_t{8} << 20;  // readers 5 and 6: dynamic chunks

// The benchmarks are compiled for the baseline ISA (SSE2), where the compiler's code for these
// loops reads far below the bus (the chunked lockstep readers at 24-30 GB/s with 2 threads
// where AVX-512 code reads 74-80): the probe must be the best plain reading code for this CPU,
// so the readers are compiled for AVX-512, AVX2 and the baseline, picked at load time by the
// toolchain's function multiversioning (GCC/clang target_clones, ELF ifunc).
#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define DSV4_PROBE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DSV4_PROBE_CLONES
#endif

// n floats from p by reader 0..6 (5 and 6 read like 3 and 4; they differ in the split).
DSV4_PROBE_CLONES inline float read_block(int reader, const float * p, int64_t n) {
    switch (reader) {
        case 0: return sum_interleaved(p, n);
        case 1: return sum_sequential<3>(p, n);
        case 2: return sum_sequential<0>(p, n);
        case 3:
        case 5: return sum_lockstep<-1>(p, n);
        default: return sum_lockstep<0>(p, n);
    }
}

// Writes every page of `buf` (so its pages exist before a pass is timed).
inline void touch(const HugeBuf & buf) {
    auto *        f = reinterpret_cast<float *>(buf.data());
    const int64_t n = static_cast<int64_t>(buf.size() / sizeof(float));
    for (int64_t i = 0; i < n; i += 1024) f[i] = static_cast<float>(i & 1023) * 0x1p-10f;
}

}  // namespace probe_detail

// One pass of reader `reader` (0 .. kReaders-1) over the whole of `buf` with `threads`
// threads; GB/s. The buffer must have been written before (as measure_read_bw does): a first
// touch would time page faults.
inline double read_pass(int threads, const HugeBuf & buf, int reader) {
    using namespace probe_detail;
    if (!buf.data()) return 0.0;
    const auto *   f        = reinterpret_cast<const float *>(buf.data());
    const int64_t  n        = static_cast<int64_t>(buf.size() / sizeof(float));
    const int64_t  grain    = int64_t{1} << 20;
    const int64_t  chunk    = kChunkBytes / static_cast<int64_t>(sizeof(float));
    float          part[64] = {};
    volatile float sink     = 0.0f;
    const double   t0       = now_s();
    if (reader >= 5) {
        threading::parallel_for_dynamic(threads, n, chunk, chunk, [&](int64_t b, int64_t e) {
            part[(b / chunk) % 64] += read_block(reader, f + b, e - b);
        });
    } else {
        threading::parallel_for(threads, n, grain, [&](int64_t b, int64_t e) {
            part[(b / grain) % 64] += read_block(reader, f + b, e - b);
        });
    }
    const double dt = now_s() - t0;
    for (float v : part) sink = sink + v;
    return static_cast<double>(buf.size()) / dt / 1e9;
}

// Paired probe (dsv4-bench, dsv4-bench-kernels): one timed pass of `reader`, after an untimed
// one (the first pass after other work reads 3-5 % slower, and the probe is meant to give the
// sustained rate), added to *bytes and *secs.
inline void paired_pass(int threads, const HugeBuf & buf, int reader, double * bytes,
                        double * secs) {
    if (!buf.data()) return;
    (void)read_pass(threads, buf, reader);
    const double gbps = read_pass(threads, buf, reader);
    if (!(gbps > 0)) return;
    *bytes += static_cast<double>(buf.size());
    *secs += static_cast<double>(buf.size()) / (gbps * 1e9);
}

// Best streaming-read rate in GB/s with `threads` threads over `buf` (written here first so
// its pages exist): the best of 5 passes of each of the kReaders readers. *best_reader (if given)
// gets the reader that reached it. 0 if the buffer is missing.
inline double measure_read_bw(int threads, const HugeBuf & buf, int * best_reader = nullptr) {
    if (!buf.data()) return 0.0;
    probe_detail::touch(buf);
    double best = 0.0;
    for (int reader = 0; reader < probe_detail::kReaders; ++reader)
        for (int rep = 0; rep < 5; ++rep) {
            const double gbps = read_pass(threads, buf, reader);
            if (gbps > best) {
                best = gbps;
                if (best_reader) *best_reader = reader;
            }
        }
    return best;
}

}  // namespace dsv4::bench
