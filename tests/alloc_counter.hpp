// Counting replacements of the global allocation functions for the "decode allocates nothing"
// tests. Include in exactly ONE source file of a test executable (it defines operator new/delete
// and, on glibc without sanitizers, malloc/calloc/realloc); keep such tests in their own
// executables so the replaced operators affect no other test. The counters are shared by every
// thread (OpenMP or pool workers included) and count only while g_armed is true.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace dsv4::test {

inline std::atomic<bool>    g_armed{false};
inline std::atomic<int64_t> g_allocs{0};   // operator new, all forms
inline std::atomic<int64_t> g_mallocs{0};  // C allocations (where interposed)

inline void * counted_alloc(std::size_t n, std::size_t align) {
    if (g_armed.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (n == 0) n = 1;
    if (align <= alignof(std::max_align_t)) return std::malloc(n);
    return std::aligned_alloc(align, (n + align - 1) / align * align);
}

}  // namespace dsv4::test

// C allocations too (the OpenMP runtime allocates with malloc, e.g. a new thread team), where
// glibc lets a program interpose malloc/calloc/realloc over its __libc_* entry points. Not under
// a sanitizer, which owns malloc itself.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define DSV4_TEST_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DSV4_TEST_SANITIZER 1
#endif
#if defined(__GLIBC__) && !defined(DSV4_TEST_SANITIZER)
#define DSV4_TEST_COUNT_MALLOC 1
extern "C" void * __libc_malloc(std::size_t);
extern "C" void * __libc_calloc(std::size_t, std::size_t);
extern "C" void * __libc_realloc(void *, std::size_t);
extern "C" void * malloc(std::size_t n) noexcept {
    if (dsv4::test::g_armed.load(std::memory_order_relaxed))
        dsv4::test::g_mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}
extern "C" void * calloc(std::size_t a, std::size_t n) noexcept {
    if (dsv4::test::g_armed.load(std::memory_order_relaxed))
        dsv4::test::g_mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(a, n);
}
extern "C" void * realloc(void * p, std::size_t n) noexcept {
    if (dsv4::test::g_armed.load(std::memory_order_relaxed))
        dsv4::test::g_mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, n);
}
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void * operator new(std::size_t n) {
    void * p = dsv4::test::counted_alloc(n, 0);
    if (!p) throw std::bad_alloc();
    return p;
}
void * operator new[](std::size_t n) {
    void * p = dsv4::test::counted_alloc(n, 0);
    if (!p) throw std::bad_alloc();
    return p;
}
void * operator new(std::size_t n, const std::nothrow_t &) noexcept {
    return dsv4::test::counted_alloc(n, 0);
}
void * operator new[](std::size_t n, const std::nothrow_t &) noexcept {
    return dsv4::test::counted_alloc(n, 0);
}
void * operator new(std::size_t n, std::align_val_t a) {
    void * p = dsv4::test::counted_alloc(n, static_cast<std::size_t>(a));
    if (!p) throw std::bad_alloc();
    return p;
}
void * operator new[](std::size_t n, std::align_val_t a) {
    void * p = dsv4::test::counted_alloc(n, static_cast<std::size_t>(a));
    if (!p) throw std::bad_alloc();
    return p;
}
void * operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
    return dsv4::test::counted_alloc(n, static_cast<std::size_t>(a));
}
void * operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
    return dsv4::test::counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void * p) noexcept {
    std::free(p);
}
void operator delete[](void * p) noexcept {
    std::free(p);
}
void operator delete(void * p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void * p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void * p, const std::nothrow_t &) noexcept {
    std::free(p);
}
void operator delete[](void * p, const std::nothrow_t &) noexcept {
    std::free(p);
}
void operator delete(void * p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void * p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void * p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void * p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void * p, std::align_val_t, const std::nothrow_t &) noexcept {
    std::free(p);
}
void operator delete[](void * p, std::align_val_t, const std::nothrow_t &) noexcept {
    std::free(p);
}
