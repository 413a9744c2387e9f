// Tests of the safetensors layer: writer -> reader round trips (every dtype, unaligned views),
// single-file and sharded checkpoint directories, the golden checkpoint, and one test per kind
// of malformed input, each checking the error code and that the message names file and tensor.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "io/mapped_file.hpp"
#include "io/safetensors.hpp"
#include "io/safetensors_writer.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using dsv4::Errc;
using dsv4::Result;
using dsv4::Status;
using namespace dsv4::io;

namespace {

using dsv4::test::TempDir;

void write_bytes(const std::string & path, const std::vector<uint8_t> & bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char *>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    REQUIRE(f.good());
}

std::vector<uint8_t> read_bytes(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void write_text(const std::string & path, const std::string & text) {
    write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// 8-byte length (the real one unless overridden) + header + data bytes.
std::vector<uint8_t> raw_file(const std::string & header, size_t data_bytes = 0,
                              std::optional<uint64_t> length = std::nullopt) {
    const uint64_t       n = length.value_or(header.size());
    std::vector<uint8_t> out;
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
    out.insert(out.end(), header.begin(), header.end());
    for (size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<uint8_t>(i * 7 + 1));
    return out;
}

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
    std::mt19937         rng(seed);
    std::vector<uint8_t> v(n);
    for (auto & b : v) b = static_cast<uint8_t>(rng());
    return v;
}

template <class T>
void expect_error(const Result<T> & r, Errc code, std::initializer_list<std::string> needles) {
    REQUIRE_FALSE(r.ok());
    INFO(r.status().to_string());
    CHECK(r.status().code() == code);
    for (const std::string & n : needles) CHECK_THAT(r.status().message(), Catch::Contains(n));
}

// Writes `bytes` as <name> in a temp dir and opens it, both mapped and read.
void expect_bad_file(const std::vector<uint8_t> & bytes, std::initializer_list<std::string> needles,
                     Errc code = Errc::invalid_model) {
    TempDir           dir;
    const std::string name = "bad-case.safetensors";
    write_bytes(dir.file(name), bytes);
    for (const bool mmap : {true, false}) {
        auto r = SafetensorsFile::open(dir.file(name), mmap);
        expect_error(r, code, needles);
        CHECK_THAT(r.status().message(), Catch::Contains(name));
    }
    // Also through the pure parser.
    auto p = parse_safetensors(bytes.data(), bytes.size(), name);
    expect_error(p, code, needles);
}

std::string entry(const std::string & name, const std::string & dtype, const std::string & shape,
                  const std::string & offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
}

}  // namespace

// ---- dtypes, mapping ---------------------------------------------------------------------------

TEST_CASE("dtype names and sizes round trip", "[io]") {
    for (int i = 0; i < kDTypeCount; ++i) {
        const auto t = static_cast<DType>(i);
        REQUIRE(dtype_from_name(dtype_name(t)) == t);
        const uint32_t s = dtype_size(t);
        CHECK((s == 1 || s == 2 || s == 4 || s == 8));
    }
    CHECK(dtype_size(DType::F8_E4M3) == 1);
    CHECK(dtype_size(DType::F8_E8M0) == 1);
    CHECK(dtype_size(DType::I8) == 1);
    CHECK(dtype_size(DType::BF16) == 2);
    CHECK(dtype_size(DType::F32) == 4);
    CHECK(dtype_size(DType::I64) == 8);
    CHECK(dtype_size(DType::I32) == 4);
    CHECK(dtype_size(DType::U8) == 1);
    CHECK_FALSE(dtype_from_name("bf16").has_value());
    CHECK_FALSE(dtype_from_name("").has_value());
}

TEST_CASE("MappedFile maps and reads identically, handles empty files and moves", "[io]") {
    TempDir    dir;
    const auto bytes = pattern(10000, 1);
    write_bytes(dir.file("a.bin"), bytes);
    write_bytes(dir.file("empty.bin"), {});
    for (const bool mmap : {true, false}) {
        auto f = MappedFile::open(dir.file("a.bin"), mmap);
        REQUIRE(f.ok());
        CHECK(f->is_mapped() == mmap);
        REQUIRE(f->size() == bytes.size());
        CHECK(std::memcmp(f->data(), bytes.data(), bytes.size()) == 0);
        CHECK(f->path() == dir.file("a.bin"));
        const uint8_t * p = f->data();
        MappedFile      moved(std::move(*f));
        CHECK(moved.data() == p);
        CHECK(moved.size() == bytes.size());
        MappedFile assigned;
        assigned = std::move(moved);
        CHECK(assigned.data() == p);
        CHECK(std::memcmp(assigned.data(), bytes.data(), bytes.size()) == 0);

        auto e = MappedFile::open(dir.file("empty.bin"), mmap);
        REQUIRE(e.ok());
        CHECK(e->size() == 0);
        CHECK(e->data() != nullptr);
    }
}

// Bytes of address space mapped by this process (/proc/self/maps): a mapping or reservation
// left behind by open/close adds to it.
static uint64_t mapped_bytes() {
    std::ifstream f("/proc/self/maps");
    std::string   line;
    uint64_t      n = 0;
    while (std::getline(f, line)) {
        unsigned long long lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%llx-%llx", &lo, &hi) == 2 && hi > lo) n += hi - lo;
    }
    return n;
}

TEST_CASE("MappedFile maps files of 2 MiB or more at a 2 MiB aligned address", "[io]") {
    // A PMD (2 MiB) page-table entry can map a 2 MiB page-cache folio only where address and
    // file offset agree modulo 2 MiB (mapped_file.cpp, map_file_aligned). The size is not a
    // page multiple, so trimming the reservation's tail must round up to whole pages.
    TempDir      dir;
    const size_t kTwoMiB = size_t{2} << 20;
    const auto   bytes   = pattern(kTwoMiB + 3 * 4096 + 123, 7);
    write_bytes(dir.file("big.bin"), bytes);
    const uint64_t before = mapped_bytes();
    for (int i = 0; i < 20; ++i) {
        auto f = MappedFile::open(dir.file("big.bin"), true);
        REQUIRE(f.ok());
        REQUIRE(f->is_mapped());
        CHECK(reinterpret_cast<uintptr_t>(f->data()) % kTwoMiB == 0);
        REQUIRE(f->size() == bytes.size());
        CHECK(std::memcmp(f->data(), bytes.data(), bytes.size()) == 0);
    }
    // Every open/close gave back the file mapping and the unused parts of its reservation (a
    // leak would add >= 2 MiB per round; 1 MiB of slack for the allocator).
    const uint64_t after = mapped_bytes();
    CHECK(after <= before + (uint64_t{1} << 20));
}

TEST_CASE("SmapsField reads one field of one mapping's smaps block", "[io]") {
    const std::string text =
        "55d4c0a00000-55d4c0c00000 r--p 00000000 fd:00 123   /bin/x\n"
        "Size:               2048 kB\n"
        "FilePmdMapped:         0 kB\n"
        "7f1234400000-7f1234a00000 r--p 00000000 fd:00 456   /m/model.safetensors\n"
        "Size:               6144 kB\n"
        "FilePmdMappedX:       99 kB\n"
        "FilePmdMapped:      4096 kB\n"
        "7f1234a00000-7f1234c00000 ---p 00000000 00:00 0\n"
        "Size:               2048 kB\n"
        "VmFlags: rd mr mw me\n"
        "7f1234c00000-7f1234e00000 r--p 00000000 00:00 0\n"
        "FilePmdMapped:     junk\n";
    auto scan = [&](uintptr_t start, int * lines_read) {
        SmapsField f(start, "FilePmdMapped");
        size_t     b = 0;
        *lines_read  = 0;
        for (size_t e = 0; e < text.size(); ++e) {
            if (text[e] != '\n') continue;
            ++*lines_read;
            if (f.line(std::string_view(text).substr(b, e - b))) break;
            b = e + 1;
        }
        return f.kb();
    };
    int n = 0;
    CHECK(scan(0x7f1234400000, &n) == 4096);  // not the "...X" field nor another block's
    CHECK(n == 7);                            // stopped at the field
    CHECK(scan(0x55d4c0a00000, &n) == 0);
    CHECK(scan(0x7f1234a00000, &n) == -1);  // its block has no such field
    CHECK(n == 11);                         // stopped at the next block's header
    CHECK(scan(0x7f1234c00000, &n) == -1);  // the field does not parse
    CHECK(scan(0x7f1234400001, &n) == -1);  // no block starts there
    CHECK(n == 12);                         // read to the end
}

TEST_CASE(
    "MappedFile refresh_cache: a small-page page cache is dropped when a re-read maps "
    "2 MiB pages",
    "[io]") {
    // A file written in 4 KiB writes (as a download is) sits in the page cache in 4 KiB folios,
    // which a mapping can only map page by page. refresh_cache must drop that cache exactly
    // when re-reading it gives 2 MiB folios (filesystem with large folios), and leave it
    // alone otherwise (tmpfs, older kernels).
    TempDir           dir;
    const size_t      kTwoMiB = size_t{2} << 20;
    const size_t      pieces  = 8;  // whole 2 MiB pieces; plus a partial one
    const auto        bytes   = pattern(pieces * kTwoMiB + 4096 + 17, 11);
    const std::string path    = dir.file("written.bin");
    {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        REQUIRE(fd >= 0);
        for (size_t o = 0; o < bytes.size(); o += 4096) {
            const size_t n = std::min<size_t>(4096, bytes.size() - o);
            REQUIRE(::write(fd, bytes.data() + o, n) == static_cast<ssize_t>(n));
        }
        REQUIRE(::fsync(fd) == 0);
        ::close(fd);
    }
    // Faults every page in, then reads how much of the mapping is PMD-mapped.
    auto pmd_after_touch = [](const MappedFile & f) {
        for (uint64_t o = 0; o < f.size(); o += 4096)
            (void)*static_cast<const volatile uint8_t *>(f.data() + o);
        return file_pmd_mapped(f.data());
    };
    const int64_t full = static_cast<int64_t>(pieces * kTwoMiB);
    int64_t       as_written;
    {
        auto f = MappedFile::open(path, true);  // no refresh: the cache stays as it is
        REQUIRE(f.ok());
        CHECK_FALSE(f->cache_refreshed());
        as_written = pmd_after_touch(*f);
        CHECK(std::memcmp(f->data(), bytes.data(), bytes.size()) == 0);
    }
    if (as_written < 0) {
        WARN("FilePmdMapped is not in /proc/self/smaps here: refresh_cache not checked");
        return;
    }
    bool refreshed = false;
    {
        auto f = MappedFile::open(path, true, true);
        REQUIRE(f.ok());
        refreshed         = f->cache_refreshed();
        const int64_t pmd = pmd_after_touch(*f);
        CHECK(std::memcmp(f->data(), bytes.data(), bytes.size()) == 0);  // intact either way
        if (refreshed) {
            CHECK(as_written < full);  // there was something to refresh
            // ... and it worked: the pieces came back PMD-mapped. A 2 MiB folio needs a free
            // 2 MiB of memory when it is read, so allow a quarter of them to fall back.
            CHECK(pmd >= full * 3 / 4);
        }
    }
    if (refreshed) {
        auto g = MappedFile::open(path, true, true);  // nothing left to do: no second refresh
        REQUIRE(g.ok());
        CHECK_FALSE(g->cache_refreshed());
    } else if (as_written < full) {
        // Refused although the cache was small: then a re-read must not help here either.
        const int fd = ::open(path.c_str(), O_RDONLY);
        REQUIRE(fd >= 0);
        REQUIRE(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
        ::close(fd);
        auto g = MappedFile::open(path, true);
        REQUIRE(g.ok());
        CHECK(pmd_after_touch(*g) < full / 4);
    }
}

TEST_CASE("MappedFile errors: missing file and directory", "[io]") {
    TempDir dir;
    expect_error(MappedFile::open(dir.file("nope.bin")), Errc::file_not_found, {"nope.bin"});
    expect_error(MappedFile::open(dir.path.string()), Errc::io_error, {dir.path.string()});
    // A FIFO is refused at once instead of blocking until a writer appears.
    REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
    expect_error(MappedFile::open(dir.file("fifo")), Errc::io_error,
                 {"fifo", "not a regular file"});
}

TEST_CASE("MappedFile::read_parts places parts and zero-fills the rest; read_prefix", "[io]") {
    TempDir    dir;
    const auto bytes = pattern(5000, 3);
    write_bytes(dir.file("a.bin"), bytes);
    // Out of file order, one part empty, one ending exactly at the end of the file.
    const std::vector<FilePart> parts = {{4000, 1000, 64}, {3, 17, 1088}, {0, 0, 1152}};
    auto                        f     = MappedFile::read_parts(dir.file("a.bin"), 1152, parts);
    REQUIRE(f.ok());
    CHECK_FALSE(f->is_mapped());
    REQUIRE(f->size() == 1152);
    CHECK(std::memcmp(f->data() + 64, bytes.data() + 4000, 1000) == 0);
    CHECK(std::memcmp(f->data() + 1088, bytes.data() + 3, 17) == 0);
    for (const int64_t i : {0, 63, 1064, 1087, 1105, 1151}) CHECK(f->data()[i] == 0);

    // A part past the end of the file or of the buffer is refused, naming the file.
    expect_error(MappedFile::read_parts(dir.file("a.bin"), 2000, {{4990, 11, 0}}),
                 Errc::invalid_argument, {"a.bin", "outside"});
    expect_error(MappedFile::read_parts(dir.file("a.bin"), 100, {{0, 64, 40}}),
                 Errc::invalid_argument, {"a.bin", "outside"});
    expect_error(MappedFile::read_parts(dir.file("nope.bin"), 1, {}), Errc::file_not_found,
                 {"nope.bin"});

    uint64_t size = 0;
    auto     p    = MappedFile::read_prefix(dir.file("a.bin"), 10, &size);
    REQUIRE(p.ok());
    CHECK(size == bytes.size());
    CHECK(*p == std::vector<uint8_t>(bytes.begin(), bytes.begin() + 10));
    p = MappedFile::read_prefix(dir.file("a.bin"), 1 << 20);  // capped at the file size
    REQUIRE(p.ok());
    CHECK(*p == bytes);
}

// ---- round trips -------------------------------------------------------------------------------

TEST_CASE("writer -> reader round trip: every dtype, unaligned views", "[io]") {
    TempDir           dir;
    SafetensorsWriter w;
    w.add_metadata("format", "pt");
    struct Want {
        std::string          name;
        DType                dtype;
        std::vector<int64_t> shape;
        std::vector<uint8_t> bytes;
    };
    std::vector<Want> want;
    want.push_back({"odd", DType::U8, {3}, pattern(3, 7)});  // misaligns everything after it
    for (int i = 0; i < kDTypeCount; ++i) {
        const auto t = static_cast<DType>(i);
        want.push_back(
            {std::string("t_") + dtype_name(t), t, {2, 3}, pattern(6 * dtype_size(t), 100 + i)});
    }
    want.push_back({"scalar", DType::F32, {}, pattern(4, 3)});
    want.push_back({"empty", DType::BF16, {0, 5}, {}});
    want.push_back({"fp4_packed", DType::I8, {4, 8}, pattern(32, 9)});
    want.push_back({"we\"ird\\na\nme/\xc3\xa9", DType::U8, {1}, {42}});
    for (const Want & x : want) w.add(x.name, x.dtype, x.shape, x.bytes);

    const std::string path = dir.file("rt.safetensors");
    REQUIRE(w.write(path).ok());
    auto ser = w.serialize();
    REQUIRE(ser.ok());
    const auto on_disk = read_bytes(path);
    CHECK(*ser == on_disk);
    // Header length is a multiple of 8 (space padding).
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | on_disk[static_cast<size_t>(i)];
    CHECK(n % 8 == 0);
    CHECK(on_disk.size() == 8 + n + w.payload_bytes());

    for (const bool mmap : {true, false}) {
        auto f = SafetensorsFile::open(path, mmap);
        REQUIRE(f.ok());
        REQUIRE(f->tensors().size() == want.size());
        for (size_t i = 0; i < want.size(); ++i) {
            const TensorInfo & t = f->tensors()[i];
            INFO(want[i].name);
            CHECK(t.name == want[i].name);
            CHECK(t.dtype == want[i].dtype);
            CHECK(t.shape == want[i].shape);
            CHECK(t.nbytes == want[i].bytes.size());
            CHECK(static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype) == t.nbytes);
            CHECK(t.file_index == 0u);
            if (mmap) {
                CHECK(t.data == f->bytes() + t.offset);
            } else {  // read mode places every tensor at an aligned address
                CHECK(reinterpret_cast<uintptr_t>(t.data) % kTensorAlign == 0);
            }
            CHECK(t.offset + t.nbytes <= f->size());
            if (t.nbytes) CHECK(std::memcmp(t.data, want[i].bytes.data(), t.nbytes) == 0);
            CHECK(f->find(want[i].name) == &t);
        }
        CHECK(f->tensors()[1].offset == 8 + n + 3);
        CHECK(f->tensors()[1].offset % 2 == 1);  // deliberately unaligned
        CHECK(f->find("scalar")->numel() == 1);
        CHECK(f->find("empty")->numel() == 0);
        CHECK(f->find("missing") == nullptr);
    }
}

TEST_CASE("reader accepts unsorted offsets, gaps, extra fields and padding", "[io]") {
    const std::string h = std::string("{") + entry("b", "U8", "[4]", "[6,10]") + "," +
                          entry("a", "I16", "[1]", "[0,2]") + ",\"c\":{\"shape\":[],\"extra\":1," +
                          "\"dtype\":\"U8\",\"data_offsets\":[2,3]}}    ";
    const auto bytes = raw_file(h, 12);
    auto       r     = parse_safetensors(bytes.data(), bytes.size(), "x.safetensors");
    INFO((r.ok() ? std::string("ok") : r.status().to_string()));
    REQUIRE(r.ok());
    REQUIRE(r->size() == 3);
    CHECK((*r)[0].name == "b");
    CHECK((*r)[0].offset == 8 + h.size() + 6);
    CHECK((*r)[0].data == bytes.data() + 8 + h.size() + 6);
    CHECK((*r)[1].offset == 8 + h.size());
    CHECK((*r)[2].shape.empty());
    CHECK((*r)[2].numel() == 1);
}

TEST_CASE("reader accepts zero-element tensors whose other dimensions are huge", "[io]") {
    const std::string h =
        std::string("{") +
        entry("z", "F64", "[4611686018427387904,4611686018427387904,0]", "[0,0]") + "," +
        entry("u", "U8", "[2]", "[0,2]") + "}";
    const auto bytes = raw_file(h, 2);
    auto       r     = parse_safetensors(bytes.data(), bytes.size(), "z.safetensors");
    INFO((r.ok() ? std::string("ok") : r.status().to_string()));
    REQUIRE(r.ok());
    CHECK((*r)[0].numel() == 0);
    CHECK((*r)[0].nbytes == 0);
    CHECK((*r)[1].numel() == 2);
}

TEST_CASE("writer rejects inconsistent tensors", "[io]") {
    TempDir dir;
    {
        SafetensorsWriter w;
        w.add("x", DType::F32, {2}, std::vector<uint8_t>(7));
        const Status s = w.write(dir.file("w.safetensors"));
        CHECK(s.code() == Errc::invalid_argument);
        CHECK_THAT(s.message(), Catch::Contains("x"));
    }
    {
        SafetensorsWriter w;
        w.add("x", DType::U8, {1}, std::vector<uint8_t>(1));
        w.add("x", DType::U8, {1}, std::vector<uint8_t>(1));
        CHECK(w.write(dir.file("w.safetensors")).code() == Errc::invalid_argument);
    }
    {
        SafetensorsWriter w;
        w.add("bad\xff", DType::U8, {1}, std::vector<uint8_t>(1));
        CHECK(w.write(dir.file("w.safetensors")).code() == Errc::invalid_argument);
    }
    SafetensorsWriter w;
    w.add("x", DType::U8, {1}, std::vector<uint8_t>(1));
    CHECK(w.write(dir.file("no/such/dir/w.safetensors")).code() == Errc::io_error);
}

// ---- checkpoint directories --------------------------------------------------------------------

TEST_CASE("TensorStore: single-file directory", "[io]") {
    TempDir           dir;
    SafetensorsWriter w;
    w.add("odd", DType::U8, {3}, pattern(3, 1));
    w.add("w", DType::BF16, {4, 4}, pattern(32, 2));
    REQUIRE(w.write(dir.file("model.safetensors")).ok());
    for (const bool mmap : {true, false}) {
        auto s = TensorStore::open_dir(dir.path.string(), mmap);
        REQUIRE(s.ok());
        CHECK(s->file_count() == 1);
        CHECK(s->index_path().empty());
        CHECK(s->tensors().size() == 2);
        CHECK(s->payload_bytes() == 35);
        const TensorInfo * t = s->find("w");
        REQUIRE(t != nullptr);
        CHECK(t->shape == std::vector<int64_t>{4, 4});
        CHECK(std::memcmp(t->data, pattern(32, 2).data(), 32) == 0);
        CHECK(s->find("nope") == nullptr);
        CHECK(s->file_path(0) == dir.file("model.safetensors"));
    }
}

TEST_CASE("TensorStore: sharded directory with index", "[io]") {
    TempDir           dir;
    SafetensorsWriter a, b;
    a.add("a1", DType::U8, {3}, pattern(3, 1));
    a.add("a2", DType::F32, {2}, pattern(8, 2));
    a.add("stray", DType::U8, {1}, pattern(1, 3));  // in a shard, not in the weight map: ignored
    b.add("b1", DType::I64, {1, 2}, pattern(16, 4));
    REQUIRE(a.write(dir.file("model-00001-of-00002.safetensors")).ok());
    REQUIRE(b.write(dir.file("model-00002-of-00002.safetensors")).ok());
    REQUIRE(write_index_json(dir.file("model.safetensors.index.json"),
                             {{"b1", "model-00002-of-00002.safetensors"},
                              {"a2", "model-00001-of-00002.safetensors"},
                              {"a1", "model-00001-of-00002.safetensors"}},
                             27)
                .ok());
    auto s = TensorStore::open_dir(dir.path.string());
    INFO((s.ok() ? std::string("ok") : s.status().to_string()));
    REQUIRE(s.ok());
    CHECK(s->file_count() == 2);
    CHECK(s->tensors().size() == 3);
    CHECK(s->find("stray") == nullptr);
    CHECK(s->payload_bytes() == 27);
    CHECK(s->index_total_size() == std::optional<uint64_t>(27));
    CHECK(s->index_path() == dir.file("model.safetensors.index.json"));
    REQUIRE(s->find("b1") != nullptr);
    CHECK(s->find("b1")->file_index == 1u);
    CHECK(s->find("a1")->file_index == 0u);
    CHECK(s->file_path(s->find("b1")->file_index) == dir.file("model-00002-of-00002.safetensors"));
    CHECK(std::memcmp(s->find("b1")->data, pattern(16, 4).data(), 16) == 0);
    CHECK(std::memcmp(s->find("a2")->data, pattern(8, 2).data(), 8) == 0);
    // Tensor views stay valid after the store is moved.
    const uint8_t * p     = s->find("a2")->data;
    TensorStore     moved = std::move(*s);
    CHECK(moved.find("a2")->data == p);
}

TEST_CASE("golden checkpoint golden-a loads with the expected tensors", "[io][golden_data]") {
    const std::string dir = std::string(DSV4_TEST_DATA_DIR) + "/golden-a";
    for (const bool mmap : {true, false}) {
        auto s = TensorStore::open_dir(dir, mmap);
        INFO((s.ok() ? std::string("ok") : s.status().to_string()));
        REQUIRE(s.ok());
        CHECK(s->file_count() == 2);

        const TensorInfo * e = s->find("embed.weight");
        REQUIRE(e != nullptr);
        CHECK(e->dtype == DType::BF16);
        CHECK(e->shape == std::vector<int64_t>{1024, 256});
        CHECK(e->nbytes == 1024 * 256 * 2);

        const TensorInfo * wq = s->find("layers.0.attn.wq_a.weight");
        REQUIRE(wq != nullptr);
        CHECK(wq->dtype == DType::F8_E4M3);
        CHECK(wq->shape == std::vector<int64_t>{256, 256});
        const TensorInfo * sc = s->find("layers.0.attn.wq_a.scale");
        REQUIRE(sc != nullptr);
        CHECK(sc->dtype == DType::F8_E8M0);
        CHECK(sc->shape == std::vector<int64_t>{2, 2});

        const TensorInfo * tid = s->find("layers.0.ffn.gate.tid2eid");
        REQUIRE(tid != nullptr);
        CHECK(tid->dtype == DType::I64);
        CHECK(tid->shape == std::vector<int64_t>{1024, 2});

        // The view is exactly the file bytes at the recorded offset.
        const auto shard = read_bytes(s->file_path(tid->file_index));
        REQUIRE(tid->offset + tid->nbytes <= shard.size());
        CHECK(std::memcmp(tid->data, shard.data() + tid->offset, tid->nbytes) == 0);

        // As many tensors as the index lists; payload == metadata.total_size (no gaps).
        const auto idx_bytes = read_bytes(dir + "/model.safetensors.index.json");
        auto       idx       = parse_safetensors_index(idx_bytes.data(), idx_bytes.size(), "index");
        REQUIRE(idx.ok());
        CHECK(s->tensors().size() == idx->weight_map.size());
        CHECK(s->tensors().size() == 585);
        REQUIRE(s->index_total_size().has_value());
        CHECK(s->payload_bytes() == *s->index_total_size());
        for (const auto & [name, shard_name] : idx->weight_map) {
            const TensorInfo * t = s->find(name);
            REQUIRE(t != nullptr);
            CHECK_THAT(s->file_path(t->file_index), Catch::EndsWith(shard_name));
        }
    }
}

// ---- bad directories and indexes ---------------------------------------------------------------

TEST_CASE("bad: missing checkpoint directory", "[io][bad]") {
    TempDir           dir;
    const std::string missing = dir.file("no-such-model");
    expect_error(TensorStore::open_dir(missing), Errc::file_not_found, {"no-such-model"});
}

TEST_CASE("bad: directory without model.safetensors or index", "[io][bad]") {
    TempDir dir;
    expect_error(TensorStore::open_dir(dir.path.string()), Errc::file_not_found,
                 {dir.path.string(), "model.safetensors"});
}

TEST_CASE("bad: missing shard file", "[io][bad]") {
    TempDir dir;
    expect_error(SafetensorsFile::open(dir.file("model-00009-of-00009.safetensors")),
                 Errc::file_not_found, {"model-00009-of-00009.safetensors"});
}

TEST_CASE("bad: path is a directory, not a file", "[io][bad]") {
    TempDir dir;
    fs::create_directories(dir.path / "shard.safetensors");
    expect_error(SafetensorsFile::open(dir.file("shard.safetensors")), Errc::io_error,
                 {"shard.safetensors"});
}

TEST_CASE("bad: index names a shard missing on disk", "[io][bad]") {
    TempDir           dir;
    SafetensorsWriter a;
    a.add("a", DType::U8, {1}, {1});
    REQUIRE(a.write(dir.file("model-00001-of-00002.safetensors")).ok());
    REQUIRE(write_index_json(dir.file("model.safetensors.index.json"),
                             {{"a", "model-00001-of-00002.safetensors"},
                              {"layers.9.w", "model-00002-of-00002.safetensors"}},
                             2)
                .ok());
    expect_error(
        TensorStore::open_dir(dir.path.string()), Errc::file_not_found,
        {"model-00002-of-00002.safetensors", "model.safetensors.index.json", "layers.9.w"});
}

TEST_CASE("bad: index names a tensor absent from its shard", "[io][bad]") {
    TempDir           dir;
    SafetensorsWriter a;
    a.add("a", DType::U8, {1}, {1});
    REQUIRE(a.write(dir.file("model-00001-of-00001.safetensors")).ok());
    REQUIRE(write_index_json(dir.file("model.safetensors.index.json"),
                             {{"a", "model-00001-of-00001.safetensors"},
                              {"ghost.weight", "model-00001-of-00001.safetensors"}},
                             2)
                .ok());
    expect_error(
        TensorStore::open_dir(dir.path.string()), Errc::invalid_model,
        {"ghost.weight", "model-00001-of-00001.safetensors", "model.safetensors.index.json"});
}

TEST_CASE("bad: path traversal in the index", "[io][bad]") {
    for (const std::string shard : {"../evil.safetensors", "sub/x.safetensors", "..", "",
                                    "a\\b.safetensors", "/abs.safetensors"}) {
        TempDir dir;
        INFO(shard);
        SafetensorsWriter a;
        a.add("a", DType::U8, {1}, {1});
        REQUIRE(a.write(dir.file("evil.safetensors")).ok());
        fs::create_directories(dir.path / "m");
        REQUIRE(write_index_json((dir.path / "m" / "model.safetensors.index.json").string(),
                                 {{"victim.weight", shard}}, 1)
                    .ok());
        expect_error(TensorStore::open_dir((dir.path / "m").string()), Errc::invalid_model,
                     {"model.safetensors.index.json", "victim.weight"});
    }
}

TEST_CASE("bad: malformed index JSON", "[io][bad]") {
    struct Case {
        std::string text, needle;
    };
    for (const Case & c : std::vector<Case>{
             {"{\"weight_map\": {\"a\": ", "malformed JSON"},
             {"[]", "not a JSON object"},
             {"{\"metadata\": {}}", "weight_map"},
             {"{\"weight_map\": []}", "weight_map"},
             {"{\"weight_map\": {}}", "weight_map"},
             {"{\"metadata\": 3, \"weight_map\": {\"a\": \"s\"}}", "metadata"},
             {"{\"weight_map\": {\"t.w\": 5}}", "t.w"},
             {"{\"weight_map\": {\"t.w\": \"s\", \"t.w\": \"s\"}}", "t.w"},
             {"{\"weight_map\": {\"\": \"s\"}}", "empty"},
         }) {
        TempDir dir;
        INFO(c.text);
        write_text(dir.file("model.safetensors.index.json"), c.text);
        expect_error(TensorStore::open_dir(dir.path.string()), Errc::invalid_model,
                     {"model.safetensors.index.json", c.needle});
    }
}

// ---- bad safetensors files (one test per failure kind) -----------------------------------------

TEST_CASE("bad: zero-length and tiny files", "[io][bad]") {
    expect_bad_file({}, {"too small"});
    expect_bad_file({1, 2, 3, 4, 5}, {"too small"});
}

TEST_CASE("bad: truncated shard", "[io][bad]") {
    SafetensorsWriter w;
    w.add("first", DType::U8, {3}, pattern(3, 1));
    w.add("layers.0.last", DType::F32, {8}, pattern(32, 2));
    auto bytes = w.serialize();
    REQUIRE(bytes.ok());
    std::vector<uint8_t> cut(bytes->begin(), bytes->end() - 5);  // in the data region
    expect_bad_file(cut, {"layers.0.last", "beyond the data region"});
    std::vector<uint8_t> cut2(bytes->begin(), bytes->begin() + 20);  // in the header
    expect_bad_file(cut2, {"header length", "past the end"});
}

TEST_CASE("bad: header length past end of file", "[io][bad]") {
    const std::string h = std::string("{") + entry("w", "U8", "[1]", "[0,1]") + "}";
    expect_bad_file(raw_file(h, 1, 1000), {"header length 1000", "past the end"});
}

TEST_CASE("bad: huge header length", "[io][bad]") {
    const std::string h = std::string("{") + entry("w", "U8", "[1]", "[0,1]") + "}";
    expect_bad_file(raw_file(h, 1, uint64_t{1} << 40), {"header length", "limit"});
    expect_bad_file(raw_file(h, 1, ~uint64_t{0}), {"header length", "limit"});
}

TEST_CASE("bad: header length zero", "[io][bad]") {
    expect_bad_file(raw_file("", 16, 0), {"header length is 0"});
}

TEST_CASE("bad: malformed JSON header", "[io][bad]") {
    expect_bad_file(raw_file("{\"w\": {\"dtype\": \"U8\", \"shape\": [1"), {"malformed JSON"});
    expect_bad_file(raw_file("{\"w\xff\": {}}"), {"malformed JSON"});  // invalid UTF-8
    expect_bad_file(raw_file("{} x"), {"malformed JSON"});
}

TEST_CASE("bad: header JSON is not an object", "[io][bad]") {
    expect_bad_file(raw_file("[1, 2, 3]"), {"not a JSON object"});
    expect_bad_file(raw_file("\"w\"     "), {"not a JSON object"});
}

TEST_CASE("bad: tensor entry is not an object", "[io][bad]") {
    expect_bad_file(raw_file("{\"layers.1.w\": [1]}"), {"layers.1.w", "not a JSON object"});
}

TEST_CASE("bad: __metadata__ is not an object", "[io][bad]") {
    expect_bad_file(raw_file("{\"__metadata__\": \"pt\"}"), {"__metadata__"});
}

TEST_CASE("bad: missing fields", "[io][bad]") {
    expect_bad_file(raw_file("{\"w.a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1),
                    {"w.a", "dtype"});
    expect_bad_file(raw_file("{\"w.b\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1),
                    {"w.b", "shape"});
    expect_bad_file(raw_file("{\"w.c\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1),
                    {"w.c", "data_offsets"});
    expect_bad_file(raw_file("{\"w.d\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],"
                             "\"data_offsets\":[0,1]}}",
                             1),
                    {"w.d", "twice"});
}

TEST_CASE("bad: unknown or mistyped dtype", "[io][bad]") {
    expect_bad_file(
        raw_file(std::string("{") + entry("layers.0.w", "F99", "[1]", "[0,1]") + "}", 1),
        {"layers.0.w", "F99"});
    expect_bad_file(
        raw_file(std::string("{") + entry("layers.0.w", "bf16", "[1]", "[0,2]") + "}", 2),
        {"layers.0.w", "bf16"});
    expect_bad_file(
        raw_file("{\"layers.0.w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,1]}}", 1),
        {"layers.0.w", "dtype"});
}

TEST_CASE("bad: bad shape", "[io][bad]") {
    const auto shape = [](const std::string & s, const std::string & needle) {
        INFO(s);
        expect_bad_file(raw_file(std::string("{") + entry("attn.wq", "U8", s, "[0,1]") + "}", 1),
                        {"attn.wq", needle});
    };
    shape("[-1]", "negative");
    shape("[1.5]", "not an integer");
    shape("[1.0]", "not an integer");
    shape("[\"1\"]", "not an integer");
    shape("[[1]]", "not an integer");
    shape("7", "not an array");
    shape("[9223372036854775808]", "too large");
    shape("[4294967296,4294967296]", "too many");
    shape("[3037000500,3037000500]", "too many");
    // Elements fit, bytes overflow 63 bits.
    expect_bad_file(
        raw_file(std::string("{") + entry("attn.wq", "I64", "[2305843009213693952]", "[0,1]") + "}",
                 1),
        {"attn.wq", "too many bytes"});
}

TEST_CASE("bad: data_offsets malformed", "[io][bad]") {
    const auto offs = [](const std::string & s, const std::string & needle) {
        INFO(s);
        expect_bad_file(raw_file(std::string("{") + entry("ffn.w1", "U8", "[1]", s) + "}", 4),
                        {"ffn.w1", needle});
    };
    offs("[0]", "exactly 2");
    offs("[0,1,2]", "exactly 2");
    offs("[]", "exactly 2");
    offs("[-1,0]", "non-negative");
    offs("[0,1.0]", "non-negative");
    offs("{}", "not an array");
}

TEST_CASE("bad: data_offsets out of range", "[io][bad]") {
    const std::string h = std::string("{") + entry("ok", "U8", "[2]", "[0,2]") + "," +
                          entry("head.weight", "U8", "[4]", "[2,6]") + "}";
    expect_bad_file(raw_file(h, 5), {"head.weight", "beyond the data region"});
    const std::string h2 =
        std::string("{") +
        entry("head.weight", "U8", "[1]", "[18446744073709551614,18446744073709551615]") + "}";
    expect_bad_file(raw_file(h2, 5), {"head.weight", "beyond the data region"});
}

TEST_CASE("bad: overlapping data_offsets", "[io][bad]") {
    const std::string h = std::string("{") + entry("alpha", "U8", "[4]", "[4,8]") + "," +
                          entry("beta", "U8", "[4]", "[0,4]") + "," +
                          entry("gamma", "F32", "[1]", "[6,10]") + "}";
    expect_bad_file(raw_file(h, 10), {"gamma", "alpha", "overlaps"});
    // Identical ranges.
    const std::string h2 = std::string("{") + entry("alpha", "U8", "[4]", "[0,4]") + "," +
                           entry("beta", "U8", "[4]", "[0,4]") + "}";
    expect_bad_file(raw_file(h2, 4), {"alpha", "beta", "overlaps"});
}

TEST_CASE("bad: data_offsets begin > end", "[io][bad]") {
    expect_bad_file(
        raw_file(std::string("{") + entry("norm.weight", "U8", "[0]", "[4,2]") + "}", 8),
        {"norm.weight", "begin > end"});
}

TEST_CASE("bad: byte size does not match shape and dtype", "[io][bad]") {
    expect_bad_file(
        raw_file(std::string("{") + entry("embed.weight", "BF16", "[2,3]", "[0,6]") + "}", 12),
        {"embed.weight", "size mismatch", "12"});
}

TEST_CASE("bad: duplicate tensor name", "[io][bad]") {
    const std::string h = std::string("{") + entry("hc_head_fn", "U8", "[1]", "[0,1]") + "," +
                          entry("hc_head_fn", "U8", "[1]", "[1,2]") + "}";
    expect_bad_file(raw_file(h, 2), {"hc_head_fn", "duplicate"});
}

TEST_CASE("bad: empty tensor name", "[io][bad]") {
    expect_bad_file(raw_file(std::string("{") + entry("", "U8", "[1]", "[0,1]") + "}", 1),
                    {"empty name"});
}

TEST_CASE("bad: shard errors propagate through TensorStore naming index and shard", "[io][bad]") {
    TempDir dir;
    write_bytes(dir.file("model-00001-of-00001.safetensors"),
                raw_file(std::string("{") + entry("x.w", "F99", "[1]", "[0,1]") + "}", 1));
    REQUIRE(write_index_json(dir.file("model.safetensors.index.json"),
                             {{"x.w", "model-00001-of-00001.safetensors"}}, 1)
                .ok());
    expect_error(TensorStore::open_dir(dir.path.string()), Errc::invalid_model,
                 {"model-00001-of-00001.safetensors", "x.w", "F99"});
}
