// Writes safetensors files (and the sharded-checkpoint index) for tests and for the random-model
// generator. Output is deterministic: tensors and JSON keys in insertion order, data regions
// packed back to back in the same order, header padded with spaces to a multiple of 8 bytes as
// the Hugging Face library does.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dsv4/status.hpp"
#include "io/safetensors.hpp"

namespace dsv4::io {

// Appends `s` to `out` as a JSON string literal (quotes included). '"', '\\' and control
// characters are escaped; other bytes (UTF-8) are copied as they are.
void append_json_string(std::string & out, std::string_view s);

class SafetensorsWriter {
  public:
    // Queues a tensor; `bytes` are its little-endian C-contiguous contents. Validation happens in
    // write()/serialize() (name non-empty, valid UTF-8 and unique, bytes == numel * dtype size).
    void add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
    void add(std::string name, DType dtype, std::vector<int64_t> shape, const void * data,
             uint64_t size);
    // Queues a tensor whose bytes are produced only when the file is written, by the fill
    // callback given to write(): a multi-GB checkpoint then needs one tensor in memory at a time.
    void add_deferred(std::string name, DType dtype, std::vector<int64_t> shape);
    // A "__metadata__" entry (string -> string), written first if any was set.
    void add_metadata(std::string key, std::string value);

    size_t tensor_count() const noexcept { return tensors_.size(); }
    // Sum of the tensors' byte sizes (the data region's size).
    uint64_t payload_bytes() const noexcept;

    // The header JSON exactly as written (including padding spaces), or an invalid_argument error.
    Result<std::string> header() const;
    // The whole file in memory.
    Result<std::vector<uint8_t>> serialize() const;
    // Writes the file (replacing it). Errors: invalid_argument for bad tensors, io_error naming
    // the path and the system error.
    Status write(const std::string & path) const;
    // Fills deferred tensor `index` (insertion order among all tensors) into `dst` (nbytes).
    using FillFn = std::function<Status(size_t index, uint8_t * dst, uint64_t nbytes)>;
    // As write(), calling `fill` for every deferred tensor (serialize() rejects deferred ones).
    Status write(const std::string & path, const FillFn & fill) const;

  private:
    struct Entry {
        std::string          name;
        DType                dtype;
        std::vector<int64_t> shape;
        std::vector<uint8_t> bytes;
        bool                 deferred = false;
        uint64_t             size     = 0;  // bytes.size(), or the deferred tensor's size
    };
    Status validate() const;

    std::vector<Entry>                               tensors_;
    std::vector<std::pair<std::string, std::string>> metadata_;
};

// Writes model.safetensors.index.json: {"metadata": {"total_size": total_size},
// "weight_map": {name: shard, ...}} in the given order, indented like the HF library.
Status write_index_json(const std::string &                                      path,
                        const std::vector<std::pair<std::string, std::string>> & name_to_shard,
                        uint64_t                                                 total_size);

}  // namespace dsv4::io
