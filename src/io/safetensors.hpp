// Zero-copy safetensors reading: the header parser (pure, fuzzable), one shard (SafetensorsFile)
// and a whole checkpoint directory (TensorStore: single file or shards + index). Every malformed
// input is reported as a Status naming the file and the tensor or key; nothing here crashes,
// aborts or reads outside the file on bad input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dsv4/status.hpp"
#include "io/mapped_file.hpp"

namespace dsv4::io {

// Safetensors dtype tags. Packed FP4 weights are stored with tag I8 (two e2m1 codes per byte).
enum class DType : uint8_t {
    BOOL,
    U8,
    I8,
    F8_E4M3,
    F8_E5M2,
    F8_E8M0,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    I64,
    U64,
    F64,
};
inline constexpr int kDTypeCount = static_cast<int>(DType::F64) + 1;

// Bytes per stored element (1, 2, 4 or 8).
uint32_t dtype_size(DType t) noexcept;
// The safetensors spelling, e.g. "F8_E4M3".
const char * dtype_name(DType t) noexcept;
// Inverse of dtype_name (exact, case-sensitive); nullopt for an unknown tag.
std::optional<DType> dtype_from_name(std::string_view name) noexcept;

struct TensorInfo {
    std::string          name;
    DType                dtype = DType::U8;
    std::vector<int64_t> shape;       // as stored (packed FP4: [out, in/2])
    uint64_t             offset = 0;  // absolute byte offset of the first byte in the file
    uint64_t             nbytes = 0;  // == numel() * dtype_size(dtype)
    // The bytes: into the mapped file (may be unaligned), or, when SafetensorsFile read them,
    // kTensorAlign-aligned in its buffer.
    const uint8_t * data       = nullptr;
    uint32_t        file_index = 0;  // which shard of a TensorStore (0 for a lone file)

    int64_t numel() const noexcept;  // product of shape (1 for a scalar), validated at parse time
};

// Start alignment of every tensor that SafetensorsFile reads into memory (read mode).
inline constexpr uint64_t kTensorAlign = 64;

// Largest header accepted (the JSON part); real V4 shards have a few hundred KiB.
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

// Parses and validates one safetensors file held in memory (file_bytes[0, file_size)). Tensors
// come back in header order with `data` pointing into file_bytes and file_index 0. Every
// failure is Errc::invalid_model with a message starting with file_name and naming the tensor
// or key (Errc::out_of_memory if an allocation fails). Never reads outside [0, file_size).
Result<std::vector<TensorInfo>> parse_safetensors(const uint8_t * file_bytes, uint64_t file_size,
                                                  std::string_view file_name);

// One shard: the file's bytes plus its validated tensor list. Movable; tensor data pointers stay
// valid across moves (they point into the mapping, which never moves).
class SafetensorsFile {
  public:
    // refresh_cache: MappedFile::open's (mmap only).
    static Result<SafetensorsFile> open(const std::string & path, bool use_mmap = true,
                                        bool refresh_cache = false);

    const std::string &             path() const noexcept { return file_.path(); }
    const std::vector<TensorInfo> & tensors() const noexcept { return tensors_; }
    uint64_t                        size() const noexcept { return size_; }  // of the file
    // The mapped file's bytes (mmap mode); in read mode the buffer of placed tensors.
    const uint8_t * bytes() const noexcept { return file_.data(); }
    bool            cache_refreshed() const noexcept { return file_.cache_refreshed(); }
    // Linear search (a shard has at most a few thousand tensors); TensorStore has a hash index.
    const TensorInfo * find(std::string_view name) const noexcept;

  private:
    friend class TensorStore;
    MappedFile              file_;
    uint64_t                size_ = 0;
    std::vector<TensorInfo> tensors_;
};

// Contents of model.safetensors.index.json.
struct SafetensorsIndex {
    std::vector<std::pair<std::string, std::string>> weight_map;  // tensor -> shard, file order
    std::optional<uint64_t>                          total_size;  // metadata.total_size if present
};

// Parses an index JSON held in memory. Validates: top level is an object; "weight_map" is a
// non-empty object of string values; "metadata", if present, is an object whose "total_size",
// if present, is a non-negative integer; tensor names are non-empty and unique; shard names are
// plain file names (non-empty, not "." or "..", no '/', '\\' or NUL: no path traversal).
// Errors: Errc::invalid_model naming file_name and the key.
Result<SafetensorsIndex> parse_safetensors_index(const uint8_t * bytes, uint64_t size,
                                                 std::string_view file_name);

// All tensors of a checkpoint directory.
//
// With model.safetensors.index.json: the index is authoritative. Each distinct shard it names is
// opened once (shards in lexicographic file-name order); every weight_map entry must exist in
// its shard. Tensors present in a shard but absent from the weight map are ignored (invisible),
// so tensors() holds exactly the weight_map entries (shard order, then header order).
// Without an index: model.safetensors, all of its tensors.
class TensorStore {
  public:
    static constexpr const char * kIndexFileName  = "model.safetensors.index.json";
    static constexpr const char * kSingleFileName = "model.safetensors";

    // Errors: Errc::file_not_found for a missing directory, a directory with neither file above,
    // or a shard named by the index but missing on disk (each message names the path);
    // Errc::invalid_model for malformed index/shards; Errc::io_error for unreadable files.
    // refresh_cache: MappedFile::open's, for every shard (mmap only).
    static Result<TensorStore> open_dir(const std::string & dir, bool use_mmap = true,
                                        bool refresh_cache = false);

    const TensorInfo *              find(std::string_view name) const;
    const std::vector<TensorInfo> & tensors() const noexcept { return tensors_; }
    size_t                          file_count() const noexcept { return files_.size(); }
    const SafetensorsFile &         file(size_t i) const { return files_[i]; }
    const std::string &             file_path(size_t i) const { return files_[i].path(); }
    const std::string &             dir() const noexcept { return dir_; }
    // Path of the index, or empty for a single-file checkpoint.
    const std::string & index_path() const noexcept { return index_path_; }
    // Sum of nbytes over tensors().
    uint64_t payload_bytes() const noexcept { return payload_bytes_; }
    // metadata.total_size from the index, if any (informational; not checked).
    std::optional<uint64_t> index_total_size() const noexcept { return index_total_size_; }

  private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    struct Eq {
        using is_transparent = void;
        bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
    };

    std::string                                       dir_;
    std::string                                       index_path_;
    std::vector<SafetensorsFile>                      files_;
    std::vector<TensorInfo>                           tensors_;
    std::unordered_map<std::string, size_t, Hash, Eq> by_name_;  // -> index into tensors_
    uint64_t                                          payload_bytes_ = 0;
    std::optional<uint64_t>                           index_total_size_;
};

}  // namespace dsv4::io
