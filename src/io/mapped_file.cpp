// MappedFile: POSIX open/fstat/mmap (or read) with every failure turned into a Status.
#include "io/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

namespace dsv4::io {
namespace {

// data() of an empty file points here, so callers never see a null pointer.
constexpr uint8_t kEmpty[1] = {0};

}  // namespace

std::string errno_text(int err) {
    char buf[256] = {};
    // GNU strerror_r may return a static string instead of filling buf; handle both flavours.
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    const char * s = strerror_r(err, buf, sizeof(buf));
    return s ? std::string(s) : std::string("errno ") + std::to_string(err);
#else
    if (strerror_r(err, buf, sizeof(buf)) != 0) return "errno " + std::to_string(err);
    return std::string(buf);
#endif
}

namespace {

class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd &)             = delete;
    Fd & operator=(const Fd &) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

  private:
    int fd_;
};

// Opens `path` read-only and checks that it is a regular file whose size fits in size_t.
Status open_regular(const std::string & path, int * fd_out, uint64_t * size_out) {
    int fd_raw;
    do {
        fd_raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // no hang on a FIFO
    } while (fd_raw < 0 && errno == EINTR);
    if (fd_raw < 0) {
        const int err = errno;
        if (err == ENOENT || err == ENOTDIR) {
            return Status(Errc::file_not_found, "file not found: '" + path + "'");
        }
        return Status(Errc::io_error, "cannot open '" + path + "': " + errno_text(err));
    }
    Fd fd(fd_raw);

    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return Status(Errc::io_error, "cannot stat '" + path + "': " + errno_text(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return Status(Errc::io_error, "'" + path + "' is not a regular file");
    }
    if (st.st_size < 0) {
        return Status(Errc::io_error, "'" + path + "' reports a negative size");
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > static_cast<uint64_t>(SIZE_MAX)) {
        return Status(Errc::io_error, "'" + path + "' is too large to map on this platform");
    }
    *fd_out   = fd.release();
    *size_out = size;
    return Status();
}

// Reads file bytes [offset, offset + n) into dst (pread, so parts may come in any order).
Status read_exact(int fd, const std::string & path, uint64_t offset, uint64_t n, uint8_t * dst) {
    uint64_t done = 0;
    while (done < n) {
        const uint64_t chunk = std::min<uint64_t>(n - done, uint64_t{1} << 30);
        const ssize_t  r =
            ::pread(fd, dst + done, static_cast<size_t>(chunk), static_cast<off_t>(offset + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return Status(Errc::io_error, "cannot read '" + path + "': " + errno_text(errno));
        }
        if (r == 0) {
            return Status(Errc::io_error, "'" + path + "' shrank while being read (no bytes at " +
                                              std::to_string(offset + done) + ")");
        }
        done += static_cast<uint64_t>(r);
    }
    return Status();
}

// Maps `size` bytes of `fd` read-only at an address that is a multiple of 2 MiB, and asks for
// transparent huge pages on it. Where the kernel keeps the file's page cache in 2 MiB folios
// (Linux 6.x filesystems with large folios, e.g. ext4 from 6.16 and xfs), a fault then maps a
// whole 2 MiB folio with one PMD entry, as read mode's anonymous huge pages are: decode streams
// every weight once per token, and with 4 KiB entries it pays a page walk every 4 KiB and the
// hardware prefetcher stops at every 4 KiB boundary (measured: docs/performance.md, "mmap
// with 2 MiB mappings"). A PMD entry needs the virtual address and the file offset congruent
// modulo 2 MiB; the file is mapped from offset 0, so the address must be 2 MiB aligned, which
// mmap(nullptr, ...) does not promise for files. MADV_HUGEPAGE on a file mapping also makes a
// fault on a page not yet cached read the surrounding 2 MiB as one folio. Both are hints: a
// kernel or filesystem without them maps 4 KiB pages as before. MAP_FAILED on failure (errno
// set by mmap).
void * map_file_aligned(int fd, size_t size) {
    constexpr size_t kAlign = size_t{2} << 20;
    const long       pg     = ::sysconf(_SC_PAGESIZE);
    const size_t     page   = pg > 0 ? static_cast<size_t>(pg) : 4096;
    void *           p      = MAP_FAILED;
    if (size >= kAlign && size <= SIZE_MAX - 2 * kAlign && kAlign % page == 0) {
        // Reserve size + 2 MiB of address space, place the file at the first aligned address
        // inside it, and give back the unused head and tail.
        const size_t span = size + kAlign;
        void *       r =
            ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r != MAP_FAILED) {
            const auto base = reinterpret_cast<uintptr_t>(r);
            const auto at   = (base + kAlign - 1) & ~(uintptr_t{kAlign} - 1);
            p = ::mmap(reinterpret_cast<void *>(at), size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd,
                       0);
            if (p == MAP_FAILED) {
                ::munmap(r, span);  // and try the plain mapping below
            } else {
                const uintptr_t used = at + (size + page - 1) / page * page, end = base + span;
                if (at > base) ::munmap(r, at - base);
                if (end > used) ::munmap(reinterpret_cast<void *>(used), end - used);
            }
        }
    }
    if (p == MAP_FAILED) p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
#ifdef MADV_HUGEPAGE
    if (p != MAP_FAILED && size >= kAlign) (void)::madvise(p, size, MADV_HUGEPAGE);
#endif
    return p;
}

// Whole 2 MiB pieces of the file sampled by refresh_small_folios.
constexpr size_t kFolio   = size_t{2} << 20;
constexpr int    kSamples = 8;

void touch(const uint8_t * p) {
    (void)*static_cast<const volatile uint8_t *>(p);
}

// MappedFile::open's refresh_cache, for a file of `size` bytes mapped read-only (MAP_PRIVATE)
// at `map`, 2 MiB aligned, with MADV_HUGEPAGE. Returns true if the page cache was dropped.
//
// Linux builds a file's page cache from folios of the size its writer or reader asked for:
// reading a cold file through a MADV_HUGEPAGE mapping (or large reads) gives 2 MiB folios on
// filesystems that support large folios, while a file just written by small writes (a
// download) sits in 4 KiB folios, which a mapping can only map page by page (and
// MADV_COLLAPSE does not work for files on common kernels). Clean pages that no process has
// mapped are dropped by POSIX_FADV_DONTNEED; a later fault on the MADV_HUGEPAGE mapping then
// reads 2 MiB folios again. Steps: (1) sample up to 8 whole 2 MiB pieces that are fully cached
// (mincore) — none: the cache is cold and faults will read 2 MiB folios anyway; (2) fault one
// byte of each and read FilePmdMapped: all PMD-mapped means the cache is fine; (3) otherwise
// write back dirty pages (fdatasync: they cannot be dropped), drop one sample and fault it
// again: if it now comes back PMD-mapped the filesystem can do it, so (4) unmap our pages and
// drop the whole file's cache; if not, leave the cache as it is (re-reading would not help).
bool refresh_small_folios(int fd, uint8_t * map, size_t size) {
    const long   pg   = ::sysconf(_SC_PAGESIZE);
    const size_t page = pg > 0 ? static_cast<size_t>(pg) : 4096;
    if (size < kFolio || reinterpret_cast<uintptr_t>(map) % kFolio != 0 || kFolio % page != 0)
        return false;
    const size_t  pieces = size / kFolio;
    const int     n      = static_cast<int>(std::min<size_t>(pieces, kSamples));
    size_t        cached[kSamples];
    int           nc = 0;
    unsigned char vec[kFolio / 4096];  // pages of one piece (page >= 4 KiB)
    for (int j = 0; j < n; ++j) {
        const size_t c = static_cast<size_t>(j) * pieces / static_cast<size_t>(n);
        if (::mincore(map + c * kFolio, kFolio, vec) != 0) return false;
        bool all = true;
        for (size_t i = 0; i < kFolio / page; ++i) all = all && (vec[i] & 1) != 0;
        if (all) cached[nc++] = c;
    }
    if (nc == 0) return false;
    for (int j = 0; j < nc; ++j) touch(map + cached[j] * kFolio);
    const int64_t pmd = file_pmd_mapped(map);
    if (pmd < 0 || pmd >= static_cast<int64_t>(nc * kFolio)) return false;
    if (::fdatasync(fd) != 0) return false;
    if (::madvise(map, size, MADV_DONTNEED) != 0) return false;
    const off_t at = static_cast<off_t>(cached[0] * kFolio);
    if (::posix_fadvise(fd, at, static_cast<off_t>(kFolio), POSIX_FADV_DONTNEED) != 0) return false;
    touch(map + cached[0] * kFolio);
    if (file_pmd_mapped(map) < static_cast<int64_t>(kFolio)) return false;
    (void)::madvise(map, size, MADV_DONTNEED);
    return ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
}

}  // namespace

bool SmapsField::line(std::string_view text) {
    if (done_) return true;
    // A mapping's block starts with "start-end perms offset dev inode [path]", addresses in
    // lower-case hex; field lines are "Name:   value kB".
    size_t i = 0;
    while (i < text.size() &&
           ((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
        ++i;
    if (i > 0 && i <= 16 && i < text.size() && text[i] == '-') {
        uintptr_t a = 0;
        for (size_t k = 0; k < i; ++k)
            a = (a << 4) |
                static_cast<uintptr_t>(text[k] <= '9' ? text[k] - '0' : text[k] - 'a' + 10);
        if (inside_) done_ = true;  // our block ended without the field
        inside_ = a == start_;
        return done_;
    }
    if (!inside_ || text.size() <= key_.size() || text.substr(0, key_.size()) != key_ ||
        text[key_.size()] != ':')
        return false;
    done_    = true;
    size_t k = key_.size() + 1;
    while (k < text.size() && text[k] == ' ') ++k;
    int64_t v = 0;
    size_t  d = 0;
    for (; k < text.size() && text[k] >= '0' && text[k] <= '9' && d < 15; ++k, ++d)
        v = v * 10 + (text[k] - '0');
    if (d > 0) kb_ = v;
    return true;
}

int64_t file_pmd_mapped(const void * start) {
    int fd;
    do fd = ::open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return -1;
    Fd         guard(fd);
    SmapsField field(reinterpret_cast<uintptr_t>(start), "FilePmdMapped");
    char       buf[16384];
    size_t     have = 0;  // bytes of an unfinished line at the start of buf
    for (;;) {
        const ssize_t r = ::read(fd, buf + have, sizeof buf - have);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        const size_t end = have + static_cast<size_t>(r);
        size_t       b   = 0;
        for (size_t e = 0; e < end; ++e) {
            if (buf[e] != '\n') continue;
            if (field.line(std::string_view(buf + b, e - b)))
                return field.kb() < 0 ? -1 : field.kb() * 1024;
            b = e + 1;
        }
        have = end - b;
        if (have == sizeof buf) have = 0;  // a line longer than the buffer: skip it
        std::memmove(buf, buf + b, have);
    }
    return field.kb() < 0 ? -1 : field.kb() * 1024;
}

Result<MappedFile> MappedFile::open(const std::string & path, bool use_mmap, bool refresh_cache) {
    if (!use_mmap) {
        int      fd_raw = -1;
        uint64_t size   = 0;
        if (Status s = open_regular(path, &fd_raw, &size); !s.ok()) return s;
        ::close(fd_raw);
        return read_parts(path, size, {FilePart{0, size, 0}});
    }
    int      fd_raw = -1;
    uint64_t size   = 0;
    if (Status s = open_regular(path, &fd_raw, &size); !s.ok()) return s;
    Fd fd(fd_raw);

    MappedFile f;
    f.path_ = path;
    f.size_ = size;
    f.data_ = kEmpty;
    if (size == 0) return f;  // mmap of length 0 is an error

    void * p = map_file_aligned(fd.get(), static_cast<size_t>(size));
    if (p == MAP_FAILED) {
        const int err = errno;
        if (err == ENOMEM) {
            return Status(Errc::out_of_memory, "cannot mmap '" + path + "' (" +
                                                   std::to_string(size) +
                                                   " bytes): " + errno_text(err));
        }
        return Status(Errc::io_error, "cannot mmap '" + path + "': " + errno_text(err));
    }
    f.data_   = static_cast<const uint8_t *>(p);
    f.mapped_ = true;
    if (refresh_cache)
        f.refreshed_ =
            refresh_small_folios(fd.get(), static_cast<uint8_t *>(p), static_cast<size_t>(size));
    return f;
}

Result<MappedFile> MappedFile::read_parts(const std::string & path, uint64_t bytes,
                                          const std::vector<FilePart> & parts) {
    int      fd_raw = -1;
    uint64_t size   = 0;
    if (Status s = open_regular(path, &fd_raw, &size); !s.ok()) return s;
    Fd fd(fd_raw);
    for (const FilePart & pt : parts) {
        if (pt.src > size || pt.len > size - pt.src || pt.dst > bytes || pt.len > bytes - pt.dst) {
            return Status(Errc::invalid_argument,
                          "'" + path + "': part [" + std::to_string(pt.src) + ", +" +
                              std::to_string(pt.len) + ") -> " + std::to_string(pt.dst) +
                              " lies outside the file (" + std::to_string(size) +
                              " bytes) or the buffer (" + std::to_string(bytes) + " bytes)");
        }
    }

    MappedFile f;
    f.path_ = path;
    f.size_ = bytes;
    f.data_ = kEmpty;
    if (bytes == 0) return f;

    // The bytes go into an anonymous mapping rather than the C++ heap, so that Linux can back it
    // with transparent huge pages (MADV_HUGEPAGE; only a hint). Decode streams the whole weight
    // set once per token, and 2 MB pages take the TLB misses out of that stream
    // (docs/performance.md: flash-mini decode, mmap of the page cache vs read).
    void * p = ::mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return Status(Errc::out_of_memory,
                      "cannot allocate " + std::to_string(bytes) + " bytes to read '" + path + "'");
    }
#ifdef MADV_HUGEPAGE
    (void)::madvise(p, static_cast<size_t>(bytes), MADV_HUGEPAGE);
#endif
    f.data_       = static_cast<const uint8_t *>(p);
    f.anon_       = true;  // from here on f's destructor unmaps it, on every return path
    uint8_t * buf = static_cast<uint8_t *>(p);
    for (const FilePart & pt : parts) {
        if (Status s = read_exact(fd.get(), path, pt.src, pt.len, buf + pt.dst); !s.ok()) return s;
    }
    (void)::mprotect(p, static_cast<size_t>(bytes), PROT_READ);  // weights are read-only
    return f;
}

Result<std::vector<uint8_t>> MappedFile::read_prefix(const std::string & path, uint64_t n,
                                                     uint64_t * file_size) {
    int      fd_raw = -1;
    uint64_t size   = 0;
    if (Status s = open_regular(path, &fd_raw, &size); !s.ok()) return s;
    Fd fd(fd_raw);
    if (file_size) *file_size = size;
    try {
        std::vector<uint8_t> out(static_cast<size_t>(std::min(n, size)));
        if (Status s = read_exact(fd.get(), path, 0, out.size(), out.data()); !s.ok()) return s;
        return out;
    } catch (const std::bad_alloc &) {
        return Status(Errc::out_of_memory, "cannot allocate " + std::to_string(std::min(n, size)) +
                                               " bytes to read '" + path + "'");
    }
}

MappedFile::MappedFile(MappedFile && other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)),
      anon_(std::exchange(other.anon_, false)),
      refreshed_(std::exchange(other.refreshed_, false)) {}

MappedFile & MappedFile::operator=(MappedFile && other) noexcept {
    if (this != &other) {
        release();
        path_      = std::move(other.path_);
        data_      = std::exchange(other.data_, nullptr);
        size_      = std::exchange(other.size_, 0);
        mapped_    = std::exchange(other.mapped_, false);
        anon_      = std::exchange(other.anon_, false);
        refreshed_ = std::exchange(other.refreshed_, false);
    }
    return *this;
}

MappedFile::~MappedFile() {
    release();
}

void MappedFile::release() noexcept {
    if ((mapped_ || anon_) && data_ != nullptr) {
        ::munmap(const_cast<uint8_t *>(data_), static_cast<size_t>(size_));
    }
    data_   = nullptr;
    size_   = 0;
    mapped_ = false;
    anon_   = false;
}

}  // namespace dsv4::io
