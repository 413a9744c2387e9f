// Read-only view of a whole file, either memory-mapped (the default: checkpoints are far larger
// than we want to copy) or read into an owned anonymous mapping (for filesystems without mmap,
// for tests, and for huge-page-backed weights). Tensor views point straight into this memory, so
// the bytes never move for the lifetime of the object, including across moves.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dsv4/status.hpp"

namespace dsv4::io {

// Read mode with placement: file bytes [src, src + len) go to offset dst of the buffer.
struct FilePart {
    uint64_t src = 0, len = 0, dst = 0;
};

class MappedFile {
  public:
    // Maps (use_mmap) or reads `path` in full. Errors: Errc::file_not_found when the path does not
    // exist, Errc::io_error for anything else (not a regular file, permission, read or mmap
    // failure); messages name the path and the system error. Zero-length files are fine: size()
    // is 0 and data() is a valid, non-null pointer to no bytes.
    //
    // Caveat of mmap: if another process truncates the file while it is mapped, touching the lost
    // pages raises SIGBUS. Checkpoints are treated as immutable while loaded.
    //
    // refresh_cache (mmap only): if the file's page cache holds it in small folios — as after
    // the file was written, e.g. downloaded — and the filesystem would re-read it in 2 MiB
    // folios, drop the file's clean cached pages so that the mapping faults them back in 2 MiB
    // folios, each mapped by one PMD entry (decode streams every weight once per token; small
    // pages cost it 10-30 %, docs/embedding.md "Memory"). Checked on up to 8 cached 2 MiB
    // samples; a filesystem that cannot do better, a cold cache, or an unreadable
    // /proc/self/smaps leave the cache alone. The next reads of the file come from the disk.
    static Result<MappedFile> open(const std::string & path, bool use_mmap = true,
                                   bool refresh_cache = false);

    // Read mode with a layout chosen by the caller: a fresh anonymous mapping of `bytes` bytes
    // (huge pages requested, read-only once filled) holding each part of the file at its dst;
    // bytes outside the parts are zero. size() is `bytes`, data() is not the file image. Used to
    // give every tensor a 64-byte aligned start (safetensors offsets are not aligned). A part
    // outside the file or the buffer is Errc::invalid_argument; errors as open() otherwise.
    static Result<MappedFile> read_parts(const std::string & path, uint64_t bytes,
                                         const std::vector<FilePart> & parts);

    // The first min(n, file size) bytes of `path`; *file_size (if given) gets the file's size.
    static Result<std::vector<uint8_t>> read_prefix(const std::string & path, uint64_t n,
                                                    uint64_t * file_size = nullptr);

    MappedFile() = default;
    MappedFile(MappedFile && other) noexcept;
    MappedFile & operator=(MappedFile && other) noexcept;
    MappedFile(const MappedFile &)             = delete;
    MappedFile & operator=(const MappedFile &) = delete;
    ~MappedFile();

    const uint8_t *     data() const noexcept { return data_; }
    uint64_t            size() const noexcept { return size_; }
    const std::string & path() const noexcept { return path_; }
    bool                is_mapped() const noexcept { return mapped_; }
    // open() dropped the file's small-folio page cache (refresh_cache).
    bool cache_refreshed() const noexcept { return refreshed_; }

  private:
    void release() noexcept;

    std::string     path_;
    const uint8_t * data_      = nullptr;
    uint64_t        size_      = 0;
    bool            mapped_    = false;  // data_ is the file mapped (mmap of the file)
    bool            anon_      = false;  // data_ is an anonymous mapping holding the file's bytes
    bool            refreshed_ = false;
};

// One field of one mapping's block in /proc/<pid>/smaps text, fed one line at a time (without
// the newline): the value of `key` (e.g. "FilePmdMapped") in the block of the mapping that
// starts at address `start`. Any text is accepted; what is not understood is skipped.
class SmapsField {
  public:
    SmapsField(uintptr_t start, std::string_view key) : start_(start), key_(key) {}
    // Returns true once the answer is known (the field was found, or the mapping's block ended
    // without it): no more lines are needed.
    bool line(std::string_view text);
    // The value in kB, or -1 if the mapping or its field was not seen (or did not parse).
    int64_t kb() const noexcept { return kb_; }

  private:
    uintptr_t        start_;
    std::string_view key_;
    bool             inside_ = false, done_ = false;
    int64_t          kb_ = -1;
};

// Bytes of the mapping that starts at `start` mapped with PMD (2 MiB) entries onto file pages
// (FilePmdMapped in /proc/self/smaps), or -1 where that cannot be read.
int64_t file_pmd_mapped(const void * start);

// Thread-safe text of an errno value, for messages.
std::string errno_text(int err);

}  // namespace dsv4::io
