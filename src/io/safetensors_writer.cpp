// SafetensorsWriter: builds the header JSON by hand (deterministic key order and spacing) and
// streams header + tensor bytes to disk with POSIX stdio, reporting every failure as a Status.
#include "io/safetensors_writer.hpp"

#include "io/mapped_file.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <unordered_set>

namespace dsv4::io {
namespace {

Status io_fail(const std::string & what, const std::string & path, int err) {
    return Status(Errc::io_error, "cannot " + what + " '" + path + "': " + errno_text(err));
}

// Writes chunks to a FILE*, closing it on every path.
class OutFile {
  public:
    explicit OutFile(std::string path) : path_(std::move(path)) {}
    OutFile(const OutFile &)             = delete;
    OutFile & operator=(const OutFile &) = delete;
    ~OutFile() {
        if (f_) std::fclose(f_);
    }
    Status open() {
        f_ = std::fopen(path_.c_str(), "wb");
        if (!f_) return io_fail("create", path_, errno);
        return {};
    }
    Status put(const void * p, size_t n) {
        if (n && std::fwrite(p, 1, n, f_) != n) return io_fail("write", path_, errno);
        return {};
    }
    Status close() {
        std::FILE * f = f_;
        f_            = nullptr;
        if (std::fclose(f) != 0) return io_fail("write", path_, errno);
        return {};
    }

  private:
    std::string path_;
    std::FILE * f_ = nullptr;
};

}  // namespace

void append_json_string(std::string & out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (u < 0x20) {
                    out += "\\u00";
                    out += kHex[u >> 4];
                    out += kHex[u & 15];
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

void SafetensorsWriter::add(std::string name, DType dtype, std::vector<int64_t> shape,
                            std::vector<uint8_t> bytes) {
    const uint64_t size = bytes.size();
    tensors_.push_back({std::move(name), dtype, std::move(shape), std::move(bytes), false, size});
}

void SafetensorsWriter::add_deferred(std::string name, DType dtype, std::vector<int64_t> shape) {
    uint64_t n = dtype_size(dtype);
    for (const int64_t d : shape)
        if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) n = UINT64_MAX;
    tensors_.push_back({std::move(name), dtype, std::move(shape), {}, true, n});
}

void SafetensorsWriter::add(std::string name, DType dtype, std::vector<int64_t> shape,
                            const void * data, uint64_t size) {
    const auto * p = static_cast<const uint8_t *>(data);
    add(std::move(name), dtype, std::move(shape),
        size ? std::vector<uint8_t>(p, p + size) : std::vector<uint8_t>());
}

void SafetensorsWriter::add_metadata(std::string key, std::string value) {
    metadata_.emplace_back(std::move(key), std::move(value));
}

uint64_t SafetensorsWriter::payload_bytes() const noexcept {
    uint64_t n = 0;
    for (const Entry & e : tensors_) n += e.size;
    return n;
}

Status SafetensorsWriter::validate() const {
    std::unordered_set<std::string_view> names;
    for (const Entry & e : tensors_) {
        const std::string t = "tensor '" + e.name + "': ";
        if (e.name.empty()) return Status(Errc::invalid_argument, "a tensor has an empty name");
        if (e.name == "__metadata__") {
            return Status(Errc::invalid_argument, "tensor name '__metadata__' is reserved");
        }
        if (!simdjson::validate_utf8(e.name.data(), e.name.size())) {
            return Status(Errc::invalid_argument, t + "name is not valid UTF-8");
        }
        if (!names.insert(e.name).second) {
            return Status(Errc::invalid_argument, "duplicate tensor '" + e.name + "'");
        }
        if (dtype_size(e.dtype) == 0) return Status(Errc::invalid_argument, t + "bad dtype");
        uint64_t numel = 1;
        for (const int64_t d : e.shape) {
            if (d < 0) return Status(Errc::invalid_argument, t + "negative dimension");
        }
        const bool has_zero = std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end();
        for (const int64_t d : e.shape) {
            if (has_zero) {
                numel = 0;
                break;
            }
            if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel) ||
                numel > static_cast<uint64_t>(INT64_MAX)) {
                return Status(Errc::invalid_argument, t + "shape overflows");
            }
        }
        uint64_t need = 0;
        if (__builtin_mul_overflow(numel, uint64_t{dtype_size(e.dtype)}, &need) || need != e.size) {
            return Status(Errc::invalid_argument,
                          t + "has " + std::to_string(e.size) + " bytes, shape and dtype " +
                              dtype_name(e.dtype) + " need " + std::to_string(need));
        }
    }
    for (const auto & [k, v] : metadata_) {
        if (!simdjson::validate_utf8(k.data(), k.size()) ||
            !simdjson::validate_utf8(v.data(), v.size())) {
            return Status(Errc::invalid_argument, "metadata entry '" + k + "' is not valid UTF-8");
        }
    }
    return {};
}

Result<std::string> SafetensorsWriter::header() const {
    try {
        if (Status s = validate(); !s.ok()) return s;
        std::string h     = "{";
        bool        first = true;
        if (!metadata_.empty()) {
            h += "\"__metadata__\":{";
            for (size_t i = 0; i < metadata_.size(); ++i) {
                if (i) h += ',';
                append_json_string(h, metadata_[i].first);
                h += ':';
                append_json_string(h, metadata_[i].second);
            }
            h += '}';
            first = false;
        }
        uint64_t offset = 0;
        for (const Entry & e : tensors_) {
            if (!first) h += ',';
            first = false;
            append_json_string(h, e.name);
            h += ":{\"dtype\":\"";
            h += dtype_name(e.dtype);
            h += "\",\"shape\":[";
            for (size_t i = 0; i < e.shape.size(); ++i) {
                if (i) h += ',';
                h += std::to_string(e.shape[i]);
            }
            h += "],\"data_offsets\":[";
            h += std::to_string(offset);
            h += ',';
            offset += e.size;
            h += std::to_string(offset);
            h += "]}";
        }
        h += '}';
        while (h.size() % 8 != 0) h += ' ';
        return h;
    } catch (const std::bad_alloc &) {
        return Status(Errc::out_of_memory, "out of memory building a safetensors header");
    }
}

Result<std::vector<uint8_t>> SafetensorsWriter::serialize() const {
    for (const Entry & e : tensors_)
        if (e.deferred)
            return Status(Errc::invalid_argument,
                          "tensor '" + e.name + "' is deferred: use write(path, fill)");
    Result<std::string> h = header();
    if (!h) return h.status();
    try {
        std::vector<uint8_t> out;
        out.reserve(8 + h->size() + payload_bytes());
        const uint64_t n = h->size();
        for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
        out.insert(out.end(), h->begin(), h->end());
        for (const Entry & e : tensors_) out.insert(out.end(), e.bytes.begin(), e.bytes.end());
        return out;
    } catch (const std::bad_alloc &) {
        return Status(Errc::out_of_memory, "out of memory serialising a safetensors file");
    }
}

Status SafetensorsWriter::write(const std::string & path) const {
    return write(path, nullptr);
}

Status SafetensorsWriter::write(const std::string & path, const FillFn & fill) const {
    for (const Entry & e : tensors_)
        if (e.deferred && !fill)
            return Status(Errc::invalid_argument,
                          "tensor '" + e.name + "' is deferred but no fill function was given");
    Result<std::string> h = header();
    if (!h) return h.status();
    OutFile f(path);
    if (Status s = f.open(); !s.ok()) return s;
    uint8_t        len[8];
    const uint64_t n = h->size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
    if (Status s = f.put(len, 8); !s.ok()) return s;
    if (Status s = f.put(h->data(), h->size()); !s.ok()) return s;
    std::vector<uint8_t> buf;
    for (size_t i = 0; i < tensors_.size(); ++i) {
        const Entry & e = tensors_[i];
        if (!e.deferred) {
            if (Status s = f.put(e.bytes.data(), e.bytes.size()); !s.ok()) return s;
            continue;
        }
        try {
            buf.resize(e.size);
        } catch (const std::bad_alloc &) {
            return Status(Errc::out_of_memory, "cannot buffer tensor '" + e.name + "'");
        }
        if (Status s = fill(i, buf.data(), e.size); !s.ok()) return s;
        if (Status s = f.put(buf.data(), e.size); !s.ok()) return s;
    }
    return f.close();
}

Status write_index_json(const std::string &                                      path,
                        const std::vector<std::pair<std::string, std::string>> & name_to_shard,
                        uint64_t                                                 total_size) {
    std::string j;
    try {
        j = "{\n  \"metadata\": {\n    \"total_size\": " + std::to_string(total_size) +
            "\n  },\n  \"weight_map\": {";
        for (size_t i = 0; i < name_to_shard.size(); ++i) {
            const auto & [name, shard] = name_to_shard[i];
            if (!simdjson::validate_utf8(name.data(), name.size()) ||
                !simdjson::validate_utf8(shard.data(), shard.size())) {
                return Status(Errc::invalid_argument,
                              "index entry for tensor '" + name + "' is not valid UTF-8");
            }
            j += i ? ",\n    " : "\n    ";
            append_json_string(j, name);
            j += ": ";
            append_json_string(j, shard);
        }
        j += name_to_shard.empty() ? "}\n}\n" : "\n  }\n}\n";
    } catch (const std::bad_alloc &) {
        return Status(Errc::out_of_memory, "out of memory building " + path);
    }
    OutFile f(path);
    if (Status s = f.open(); !s.ok()) return s;
    if (Status s = f.put(j.data(), j.size()); !s.ok()) return s;
    return f.close();
}

}  // namespace dsv4::io
