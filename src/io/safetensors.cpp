// Safetensors reader. The format, as validated here:
//
//  1. Bytes [0, 8): N, the header length, an unsigned 64-bit little-endian integer.
//     0 < N <= file_size - 8 and N <= kMaxHeaderBytes (100 MiB).
//  2. Bytes [8, 8 + N): the header, UTF-8 JSON; a single object (trailing whitespace, which
//     writers use as padding, is allowed).
//  3. Each member of that object is one tensor, `name -> {"dtype": str, "shape": [ints],
//     "data_offsets": [begin, end]}`, except the optional key "__metadata__", whose value must be
//     an object (its string -> string content is not used). Names are non-empty and unique;
//     unknown extra fields of a tensor entry are ignored, repeated fields are an error.
//  4. dtype is one of the tags of DType (BOOL, U8, I8, F8_E4M3, F8_E5M2, F8_E8M0, I16, U16,
//     F16, BF16, I32, U32, F32, I64, U64, F64). Packed FP4 is stored as I8, one byte per
//     stored element; the shape is the stored shape.
//  5. shape is an array of non-negative integers (empty = scalar, one element); the element
//     count and the byte count must fit in 63 bits.
//  6. data_offsets is [begin, end], two non-negative integers, begin <= end, relative to the
//     start of the data region [8 + N, file_size); end <= file_size - 8 - N and
//     end - begin == numel * dtype_size.
//  7. The byte ranges of different tensors do not overlap. They need not be sorted, and gaps
//     (bytes that belong to no tensor) are allowed.
//  8. Tensor data is C-contiguous little-endian; nothing is aligned, so views may be unaligned.
//
// The checkpoint directory adds model.safetensors.index.json:
// {"metadata": {"total_size": n}, "weight_map": {tensor: shard_file_name}}.
#include "io/safetensors.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <new>
#include <unordered_map>
#include <unordered_set>

namespace dsv4::io {
namespace {

namespace dom = simdjson::dom;

struct DTypeDesc {
    DType        tag;
    const char * name;
    uint32_t     size;
};

constexpr DTypeDesc kDTypes[kDTypeCount] = {
    {DType::BOOL, "BOOL", 1},       {DType::U8, "U8", 1},           {DType::I8, "I8", 1},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1}, {DType::F8_E8M0, "F8_E8M0", 1},
    {DType::I16, "I16", 2},         {DType::U16, "U16", 2},         {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},       {DType::I32, "I32", 4},         {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},         {DType::I64, "I64", 8},         {DType::U64, "U64", 8},
    {DType::F64, "F64", 8},
};

// A name quoted for a message: printable ASCII kept, everything else \xNN, long names cut.
std::string qname(std::string_view s) {
    constexpr size_t kMax = 160;
    std::string      out  = "'";
    size_t           n    = 0;
    for (const char c : s) {
        if (++n > kMax) {
            out += "...";
            break;
        }
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f && c != '\'' && c != '\\') {
            out += c;
        } else {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[u >> 4];
            out += kHex[u & 15];
        }
    }
    out += "'";
    return out;
}

std::string shape_str(const std::vector<int64_t> & shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

// A JSON integer >= 0 (int64 or uint64 on simdjson's tape). Doubles (1.0, 1e3) are rejected.
enum class IntKind { ok, negative, not_integer };
IntKind get_nonneg(dom::element e, uint64_t & out) {
    switch (e.type()) {
        case dom::element_type::INT64: {
            int64_t v = 0;
            if (e.get_int64().get(v) != simdjson::SUCCESS) return IntKind::not_integer;
            if (v < 0) return IntKind::negative;
            out = static_cast<uint64_t>(v);
            return IntKind::ok;
        }
        case dom::element_type::UINT64: {
            uint64_t v = 0;
            if (e.get_uint64().get(v) != simdjson::SUCCESS) return IntKind::not_integer;
            out = v;
            return IntKind::ok;
        }
        default: return IntKind::not_integer;
    }
}

// simdjson needs SIMDJSON_PADDING readable bytes after the document.
std::vector<uint8_t> padded_copy(const uint8_t * bytes, uint64_t n) {
    std::vector<uint8_t> buf(static_cast<size_t>(n) + simdjson::SIMDJSON_PADDING, uint8_t{0});
    if (n) std::memcpy(buf.data(), bytes, static_cast<size_t>(n));
    return buf;
}

Status bad(std::string_view file, const std::string & what) {
    return Status(Errc::invalid_model, std::string(file) + ": " + what);
}

struct Range {
    uint64_t begin, end;
    size_t   index;
};

// `file` holds the first `avail` bytes of a file of file_size bytes: the whole file (tensor data
// pointers set), or at least its header (data pointers left null, for a caller that places the
// tensor bytes itself).
Result<std::vector<TensorInfo>> parse_impl(const uint8_t * file, uint64_t avail, uint64_t file_size,
                                           std::string_view fname) {
    if (file == nullptr && avail != 0) {
        return Status(Errc::invalid_argument, std::string(fname) + ": null buffer");
    }
    if (file_size < 8) {
        return bad(fname, "file is " + std::to_string(file_size) +
                              " bytes, too small for the 8-byte safetensors header length");
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | file[i];
    if (n == 0) return bad(fname, "safetensors header length is 0");
    if (n > kMaxHeaderBytes) {
        return bad(fname, "safetensors header length " + std::to_string(n) +
                              " bytes exceeds the limit of " + std::to_string(kMaxHeaderBytes) +
                              " bytes (100 MiB); not a safetensors file or corrupt");
    }
    if (n > file_size - 8) {
        return bad(fname, "safetensors header length " + std::to_string(n) +
                              " bytes runs past the end of the file (" + std::to_string(file_size) +
                              " bytes); truncated or corrupt");
    }
    const uint64_t data_start = 8 + n;
    const uint64_t data_size  = file_size - data_start;
    if (avail < data_start) {
        return Status(Errc::invalid_argument,
                      std::string(fname) + ": only " + std::to_string(avail) + " of the " +
                          std::to_string(data_start) + " header bytes were given to the parser");
    }
    const bool whole = avail == file_size;

    const std::vector<uint8_t> json = padded_copy(file + 8, n);
    dom::parser                parser;
    dom::element               doc;
    if (auto err = parser.parse(json.data(), static_cast<size_t>(n), false).get(doc);
        err != simdjson::SUCCESS) {
        if (err == simdjson::MEMALLOC) throw std::bad_alloc();
        return bad(fname, std::string("malformed JSON in safetensors header: ") +
                              simdjson::error_message(err));
    }
    dom::object root;
    if (doc.get_object().get(root) != simdjson::SUCCESS) {
        return bad(fname, "safetensors header is not a JSON object");
    }

    std::vector<TensorInfo>              out;
    std::unordered_set<std::string_view> seen;  // views into the parser's string buffer
    bool                                 have_meta = false;
    for (dom::key_value_pair kv : root) {
        const std::string_view name = kv.key;
        if (name == "__metadata__") {
            if (have_meta) return bad(fname, "header key '__metadata__' appears twice");
            have_meta = true;
            if (kv.value.type() != dom::element_type::OBJECT) {
                return bad(fname, "header key '__metadata__' is not a JSON object");
            }
            continue;
        }
        const std::string t = "tensor " + qname(name) + ": ";
        if (name.empty()) return bad(fname, "a tensor has an empty name");
        if (!seen.insert(name).second) return bad(fname, "duplicate tensor " + qname(name));

        dom::object entry;
        if (kv.value.get_object().get(entry) != simdjson::SUCCESS) {
            return bad(fname, t + "entry is not a JSON object");
        }
        std::optional<dom::element> e_dtype, e_shape, e_offsets;
        for (dom::key_value_pair f : entry) {
            std::optional<dom::element> * slot = nullptr;
            if (f.key == "dtype")
                slot = &e_dtype;
            else if (f.key == "shape")
                slot = &e_shape;
            else if (f.key == "data_offsets")
                slot = &e_offsets;
            else
                continue;  // unknown fields are ignored
            if (slot->has_value()) {
                return bad(fname, t + "field " + qname(f.key) + " appears twice");
            }
            *slot = f.value;
        }
        if (!e_dtype) return bad(fname, t + "missing field 'dtype'");
        if (!e_shape) return bad(fname, t + "missing field 'shape'");
        if (!e_offsets) return bad(fname, t + "missing field 'data_offsets'");

        TensorInfo info;
        info.name = std::string(name);

        std::string_view dtype_s;
        if (e_dtype->get_string().get(dtype_s) != simdjson::SUCCESS) {
            return bad(fname, t + "'dtype' is not a string");
        }
        const std::optional<DType> dt = dtype_from_name(dtype_s);
        if (!dt) return bad(fname, t + "unknown dtype " + qname(dtype_s));
        info.dtype = *dt;

        dom::array shape_a;
        if (e_shape->get_array().get(shape_a) != simdjson::SUCCESS) {
            return bad(fname, t + "'shape' is not an array");
        }
        uint64_t numel = 1;
        size_t   dim   = 0;
        for (dom::element d : shape_a) {
            uint64_t   v = 0;
            const auto k = get_nonneg(d, v);
            if (k == IntKind::negative) {
                return bad(fname, t + "shape[" + std::to_string(dim) + "] is negative");
            }
            if (k != IntKind::ok) {
                return bad(fname, t + "shape[" + std::to_string(dim) + "] is not an integer");
            }
            if (v > static_cast<uint64_t>(INT64_MAX)) {
                return bad(fname, t + "shape[" + std::to_string(dim) + "] = " + std::to_string(v) +
                                      " is too large");
            }
            info.shape.push_back(static_cast<int64_t>(v));
            ++dim;
        }
        // Product with overflow check; a zero dimension makes the count 0 whatever the rest.
        bool overflow = false;
        for (const int64_t d : info.shape) {
            uint64_t p = 0;
            if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &p)) overflow = true;
            numel = p;
        }
        if (std::find(info.shape.begin(), info.shape.end(), 0) != info.shape.end()) {
            overflow = false;
            numel    = 0;
        }
        if (overflow || numel > static_cast<uint64_t>(INT64_MAX)) {
            return bad(fname, t + "shape " + shape_str(info.shape) + " has too many elements");
        }
        uint64_t need = 0;
        if (__builtin_mul_overflow(numel, uint64_t{dtype_size(info.dtype)}, &need) ||
            need > static_cast<uint64_t>(INT64_MAX)) {
            return bad(fname, t + "shape " + shape_str(info.shape) + " of " +
                                  dtype_name(info.dtype) + " is too many bytes");
        }

        dom::array off_a;
        if (e_offsets->get_array().get(off_a) != simdjson::SUCCESS) {
            return bad(fname, t + "'data_offsets' is not an array");
        }
        uint64_t offs[2] = {0, 0};
        size_t   n_off   = 0;
        for (dom::element o : off_a) {
            if (n_off >= 2) {
                n_off = 3;
                break;
            }
            if (get_nonneg(o, offs[n_off]) != IntKind::ok) {
                return bad(fname, t + "data_offsets[" + std::to_string(n_off) +
                                      "] is not a non-negative integer");
            }
            ++n_off;
        }
        if (n_off != 2) {
            return bad(fname, t + "'data_offsets' must have exactly 2 elements [begin, end]");
        }
        const std::string offs_s =
            "data_offsets [" + std::to_string(offs[0]) + ", " + std::to_string(offs[1]) + "]";
        if (offs[0] > offs[1]) return bad(fname, t + offs_s + " has begin > end");
        if (offs[1] > data_size) {
            return bad(fname, t + offs_s + " ends beyond the data region (" +
                                  std::to_string(data_size) + " bytes); truncated file?");
        }
        if (offs[1] - offs[0] != need) {
            return bad(fname, t + "size mismatch: " + dtype_name(info.dtype) + " " +
                                  shape_str(info.shape) + " needs " + std::to_string(need) +
                                  " bytes but " + offs_s + " span " +
                                  std::to_string(offs[1] - offs[0]));
        }
        info.offset     = data_start + offs[0];
        info.nbytes     = need;
        info.data       = whole ? file + info.offset : nullptr;
        info.file_index = 0;
        out.push_back(std::move(info));
    }

    // Non-overlap: sort non-empty ranges by begin; each must start at or after the previous end.
    std::vector<Range> ranges;
    ranges.reserve(out.size());
    for (size_t i = 0; i < out.size(); ++i) {
        if (out[i].nbytes) ranges.push_back({out[i].offset, out[i].offset + out[i].nbytes, i});
    }
    std::sort(ranges.begin(), ranges.end(), [](const Range & a, const Range & b) {
        return a.begin != b.begin ? a.begin < b.begin : a.index < b.index;
    });
    for (size_t i = 1; i < ranges.size(); ++i) {
        if (ranges[i].begin < ranges[i - 1].end) {
            const TensorInfo & a = out[ranges[i - 1].index];
            const TensorInfo & b = out[ranges[i].index];
            return bad(fname, "tensor " + qname(b.name) + " overlaps tensor " + qname(a.name) +
                                  " (data_offsets ranges intersect)");
        }
    }
    return out;
}

Result<SafetensorsIndex> parse_index_impl(const uint8_t * bytes, uint64_t size,
                                          std::string_view fname) {
    if (bytes == nullptr && size != 0) {
        return Status(Errc::invalid_argument, std::string(fname) + ": null buffer");
    }
    if (size > kMaxHeaderBytes) {
        return bad(fname, "index is " + std::to_string(size) + " bytes, over the 100 MiB limit");
    }
    const std::vector<uint8_t> json = padded_copy(bytes, size);
    dom::parser                parser;
    dom::element               doc;
    if (auto err = parser.parse(json.data(), static_cast<size_t>(size), false).get(doc);
        err != simdjson::SUCCESS) {
        if (err == simdjson::MEMALLOC) throw std::bad_alloc();
        return bad(fname, std::string("malformed JSON: ") + simdjson::error_message(err));
    }
    dom::object root;
    if (doc.get_object().get(root) != simdjson::SUCCESS) {
        return bad(fname, "index is not a JSON object");
    }
    SafetensorsIndex            idx;
    std::optional<dom::element> meta, wmap;
    for (dom::key_value_pair kv : root) {
        std::optional<dom::element> * slot = nullptr;
        if (kv.key == "metadata")
            slot = &meta;
        else if (kv.key == "weight_map")
            slot = &wmap;
        else
            continue;
        if (slot->has_value()) return bad(fname, "key " + qname(kv.key) + " appears twice");
        *slot = kv.value;
    }
    if (meta) {
        dom::object m;
        if (meta->get_object().get(m) != simdjson::SUCCESS) {
            return bad(fname, "key 'metadata' is not a JSON object");
        }
        dom::element ts;
        if (m["total_size"].get(ts) == simdjson::SUCCESS) {
            uint64_t v = 0;
            if (get_nonneg(ts, v) == IntKind::ok) idx.total_size = v;  // informational only
        }
    }
    if (!wmap) return bad(fname, "missing key 'weight_map'");
    dom::object wm;
    if (wmap->get_object().get(wm) != simdjson::SUCCESS) {
        return bad(fname, "key 'weight_map' is not a JSON object");
    }
    std::unordered_set<std::string_view> seen;
    for (dom::key_value_pair kv : wm) {
        if (kv.key.empty()) return bad(fname, "weight_map has an empty tensor name");
        if (!seen.insert(kv.key).second) {
            return bad(fname, "weight_map lists tensor " + qname(kv.key) + " twice");
        }
        std::string_view shard;
        if (kv.value.get_string().get(shard) != simdjson::SUCCESS) {
            return bad(fname, "weight_map entry for tensor " + qname(kv.key) + " is not a string");
        }
        if (shard.empty() || shard == "." || shard == ".." ||
            shard.find_first_of(std::string_view("/\\\0", 3)) != std::string_view::npos) {
            return bad(fname, "weight_map entry for tensor " + qname(kv.key) + " names shard " +
                                  qname(shard) +
                                  ", which is not a plain file name in the checkpoint directory");
        }
        idx.weight_map.emplace_back(std::string(kv.key), std::string(shard));
    }
    if (idx.weight_map.empty()) return bad(fname, "'weight_map' is empty");
    return idx;
}

Status oom(std::string_view what) {
    return Status(Errc::out_of_memory, "out of memory while " + std::string(what));
}

}  // namespace

uint32_t dtype_size(DType t) noexcept {
    const auto i = static_cast<size_t>(t);
    return i < static_cast<size_t>(kDTypeCount) ? kDTypes[i].size : 0;
}

const char * dtype_name(DType t) noexcept {
    const auto i = static_cast<size_t>(t);
    return i < static_cast<size_t>(kDTypeCount) ? kDTypes[i].name : "?";
}

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
    for (const DTypeDesc & d : kDTypes) {
        if (name == d.name) return d.tag;
    }
    return std::nullopt;
}

int64_t TensorInfo::numel() const noexcept {
    // A zero dimension makes the product 0 even when the others would overflow; otherwise the
    // parser has checked that the product fits.
    for (const int64_t d : shape) {
        if (d == 0) return 0;
    }
    int64_t n = 1;
    for (const int64_t d : shape) n *= d;
    return n;
}

Result<std::vector<TensorInfo>> parse_safetensors(const uint8_t * file_bytes, uint64_t file_size,
                                                  std::string_view file_name) {
    try {
        return parse_impl(file_bytes, file_size, file_size, file_name);
    } catch (const std::bad_alloc &) {
        return oom("parsing the safetensors header of " + std::string(file_name));
    }
}

Result<SafetensorsIndex> parse_safetensors_index(const uint8_t * bytes, uint64_t size,
                                                 std::string_view file_name) {
    try {
        return parse_index_impl(bytes, size, file_name);
    } catch (const std::bad_alloc &) {
        return oom("parsing " + std::string(file_name));
    }
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string & path, bool use_mmap,
                                              bool refresh_cache) {
    try {
        SafetensorsFile f;
        if (use_mmap) {
            Result<MappedFile> mf = MappedFile::open(path, true, refresh_cache);
            if (!mf) return mf.status();
            f.file_                           = std::move(*mf);
            f.size_                           = f.file_.size();
            Result<std::vector<TensorInfo>> t = parse_safetensors(f.file_.data(), f.size_, path);
            if (!t) return t.status();
            f.tensors_ = std::move(*t);
            return f;
        }
        // Read mode: parse the header, then read each tensor to a kTensorAlign-aligned place
        // (file offsets are not aligned: a 64-byte SIMD load of a tensor's row would straddle
        // two cache lines, which costs the decode GEMVs a quarter of their speed,
        // docs/performance.md). Tensors keep file order; gaps in the file are not read.
        uint64_t                     size = 0;
        Result<std::vector<uint8_t>> hdr  = MappedFile::read_prefix(path, 8, &size);
        if (!hdr) return hdr.status();
        uint64_t n = 0;
        for (size_t i = hdr->size(); i-- > 0;) n = (n << 8) | (*hdr)[i];
        if (hdr->size() == 8 && n <= kMaxHeaderBytes &&
            n <= size - 8) {  // else parse_impl says why
            hdr = MappedFile::read_prefix(path, 8 + n, &size);
            if (!hdr) return hdr.status();
            if (hdr->size() < 8 + n)
                return Status(Errc::io_error, path + ": the file shrank while being read");
        }
        Result<std::vector<TensorInfo>> t = parse_impl(hdr->data(), hdr->size(), size, path);
        if (!t) return t.status();
        std::vector<size_t> order(t->size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return (*t)[a].offset != (*t)[b].offset ? (*t)[a].offset < (*t)[b].offset : a < b;
        });
        std::vector<FilePart> parts;
        std::vector<uint64_t> dst(t->size(), 0);
        uint64_t              end = 0;
        for (const size_t i : order) {
            const TensorInfo & ti = (*t)[i];
            if (!ti.nbytes) continue;
            dst[i] = (end + kTensorAlign - 1) / kTensorAlign * kTensorAlign;
            parts.push_back({ti.offset, ti.nbytes, dst[i]});
            end = dst[i] + ti.nbytes;
        }
        Result<MappedFile> mf = MappedFile::read_parts(path, end, parts);
        if (!mf) return mf.status();
        f.file_ = std::move(*mf);
        f.size_ = size;
        for (size_t i = 0; i < t->size(); ++i) (*t)[i].data = f.file_.data() + dst[i];
        f.tensors_ = std::move(*t);
        return f;
    } catch (const std::bad_alloc &) {
        return oom("opening " + path);
    }
}

const TensorInfo * SafetensorsFile::find(std::string_view name) const noexcept {
    for (const TensorInfo & t : tensors_) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

const TensorInfo * TensorStore::find(std::string_view name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

Result<TensorStore> TensorStore::open_dir(const std::string & dir, bool use_mmap,
                                          bool refresh_cache) {
    namespace fs = std::filesystem;
    try {
        std::error_code       ec;
        const fs::file_status st = fs::status(dir, ec);
        if (st.type() == fs::file_type::not_found) {
            return Status(Errc::file_not_found,
                          "checkpoint directory '" + dir + "' does not exist");
        }
        if (ec) {
            return Status(Errc::io_error, "cannot access '" + dir + "': " + ec.message());
        }
        if (st.type() != fs::file_type::directory) {
            return Status(Errc::file_not_found, "'" + dir + "' is not a directory");
        }

        TensorStore store;
        store.dir_                   = dir;
        const std::string index_path = (fs::path(dir) / kIndexFileName).string();
        const std::string single     = (fs::path(dir) / kSingleFileName).string();

        if (fs::exists(fs::status(index_path, ec))) {
            Result<MappedFile> raw = MappedFile::open(index_path, /*use_mmap=*/false);
            if (!raw) return raw.status();
            Result<SafetensorsIndex> idx =
                parse_safetensors_index(raw->data(), raw->size(), index_path);
            if (!idx) return idx.status();
            store.index_path_       = index_path;
            store.index_total_size_ = idx->total_size;

            // Distinct shards in name order; remember one tensor of each for messages.
            std::vector<std::string> shards;
            for (const auto & [name, shard] : idx->weight_map) shards.push_back(shard);
            std::sort(shards.begin(), shards.end());
            shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
            std::unordered_map<std::string_view, uint32_t> shard_id;
            for (size_t i = 0; i < shards.size(); ++i) {
                shard_id.emplace(shards[i], static_cast<uint32_t>(i));
            }
            std::vector<std::string_view> example(shards.size());
            for (const auto & [name, shard] : idx->weight_map) {
                std::string_view & e = example[shard_id.at(shard)];
                if (e.empty()) e = name;
            }

            store.files_.reserve(shards.size());
            for (size_t i = 0; i < shards.size(); ++i) {
                const std::string       path = (fs::path(dir) / shards[i]).string();
                Result<SafetensorsFile> f    = SafetensorsFile::open(path, use_mmap, refresh_cache);
                if (!f) {
                    return Status(f.status().code(), index_path + ": shard " + qname(shards[i]) +
                                                         " (holding tensor " + qname(example[i]) +
                                                         "): " + f.status().message());
                }
                for (TensorInfo & t : f->tensors_) t.file_index = static_cast<uint32_t>(i);
                store.files_.push_back(std::move(*f));
            }

            // Every weight_map entry must be in its shard.
            std::vector<std::unordered_map<std::string_view, size_t>> in_shard(shards.size());
            for (size_t i = 0; i < shards.size(); ++i) {
                const auto & ts = store.files_[i].tensors_;
                in_shard[i].reserve(ts.size());
                for (size_t j = 0; j < ts.size(); ++j) in_shard[i].emplace(ts[j].name, j);
            }
            std::unordered_map<std::string_view, uint32_t> wanted;
            wanted.reserve(idx->weight_map.size());
            for (const auto & [name, shard] : idx->weight_map) {
                const uint32_t s = shard_id.at(shard);
                if (!in_shard[s].count(name)) {
                    return Status(Errc::invalid_model, index_path + ": tensor " + qname(name) +
                                                           " is mapped to shard " + qname(shard) +
                                                           " but " + store.files_[s].path() +
                                                           " has no such tensor");
                }
                wanted.emplace(name, s);
            }
            store.tensors_.reserve(idx->weight_map.size());
            for (size_t i = 0; i < shards.size(); ++i) {
                for (const TensorInfo & t : store.files_[i].tensors_) {
                    const auto it = wanted.find(t.name);
                    if (it != wanted.end() && it->second == i) store.tensors_.push_back(t);
                }
            }
        } else if (fs::exists(fs::status(single, ec))) {
            Result<SafetensorsFile> f = SafetensorsFile::open(single, use_mmap, refresh_cache);
            if (!f) return f.status();
            store.tensors_ = f->tensors_;
            store.files_.push_back(std::move(*f));
        } else {
            return Status(Errc::file_not_found, "checkpoint directory '" + dir + "' has neither " +
                                                    kIndexFileName + " nor " + kSingleFileName);
        }

        store.by_name_.reserve(store.tensors_.size());
        for (size_t i = 0; i < store.tensors_.size(); ++i) {
            store.by_name_.emplace(store.tensors_[i].name, i);
            store.payload_bytes_ += store.tensors_[i].nbytes;
        }
        return store;
    } catch (const std::bad_alloc &) {
        return oom("opening checkpoint directory " + dir);
    }
}

}  // namespace dsv4::io
