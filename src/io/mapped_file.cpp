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

  private:
    int fd_;
};

}  // namespace

Result<MappedFile> MappedFile::open(const std::string & path, bool use_mmap) {
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

    MappedFile f;
    f.path_ = path;
    f.size_ = size;
    f.data_ = kEmpty;
    if (size == 0) return f;  // mmap of length 0 is an error; nothing to read either

    if (use_mmap) {
        void * p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
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
        return f;
    }

    // Read mode: the bytes go into an anonymous mapping rather than the C++ heap, so that Linux
    // can back it with transparent huge pages (MADV_HUGEPAGE; only a hint). Decode streams the
    // whole weight set once per token, and 2 MB pages take the TLB misses out of that stream
    // (docs/performance.md: flash-mini decode, mmap of the page cache vs read).
    void * p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return Status(Errc::out_of_memory,
                      "cannot allocate " + std::to_string(size) + " bytes to read '" + path + "'");
    }
#ifdef MADV_HUGEPAGE
    (void)::madvise(p, static_cast<size_t>(size), MADV_HUGEPAGE);
#endif
    f.data_        = static_cast<const uint8_t *>(p);
    f.anon_        = true;  // from here on f's destructor unmaps it, on every return path
    uint8_t * buf  = static_cast<uint8_t *>(p);
    uint64_t  done = 0;
    while (done < size) {
        const uint64_t chunk = std::min<uint64_t>(size - done, uint64_t{1} << 30);
        const ssize_t  n     = ::read(fd.get(), buf + done, static_cast<size_t>(chunk));
        if (n < 0) {
            if (errno == EINTR) continue;
            return Status(Errc::io_error, "cannot read '" + path + "': " + errno_text(errno));
        }
        if (n == 0) {
            return Status(Errc::io_error, "'" + path + "' shrank while being read (got " +
                                              std::to_string(done) + " of " + std::to_string(size) +
                                              " bytes)");
        }
        done += static_cast<uint64_t>(n);
    }
    (void)::mprotect(p, static_cast<size_t>(size), PROT_READ);  // weights are read-only
    return f;
}

MappedFile::MappedFile(MappedFile && other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)),
      anon_(std::exchange(other.anon_, false)) {}

MappedFile & MappedFile::operator=(MappedFile && other) noexcept {
    if (this != &other) {
        release();
        path_   = std::move(other.path_);
        data_   = std::exchange(other.data_, nullptr);
        size_   = std::exchange(other.size_, 0);
        mapped_ = std::exchange(other.mapped_, false);
        anon_   = std::exchange(other.anon_, false);
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
