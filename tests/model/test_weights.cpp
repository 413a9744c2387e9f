// Binding checkpoints to typed per-layer views (model/weights.hpp) and the random-model writer
// (model/make_model.hpp): golden-a binds; a written checkpoint round-trips byte for byte and is
// deterministic; every way a tensor can be wrong is an error naming file and tensor.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/safetensors.hpp"
#include "io/safetensors_writer.hpp"
#include "model/config.hpp"
#include "model/inventory.hpp"
#include "model/make_model.hpp"
#include "model/weights.hpp"
#include "test_util.hpp"

using namespace dsv4;
using dsv4::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kGolden = std::string(DSV4_TEST_DATA_DIR) + "/golden-a";

struct Loaded {
    model::ModelConfig cfg;
    io::TensorStore    store;
};

Loaded open_checkpoint(const std::string & dir) {
    auto cfg = model::load_config(dir + "/config.json");
    REQUIRE(cfg.ok());
    auto store = io::TensorStore::open_dir(dir);
    REQUIRE(store.ok());
    return {std::move(cfg).value(), std::move(store).value()};
}

// Rewrites golden-a as a single-file checkpoint in `dir`, letting `edit` change or drop tensors
// (return false to drop). Config copied unchanged.
template <class Edit>
void rewrite_golden(const TempDir & dir, Edit edit) {
    Loaded                g = open_checkpoint(kGolden);
    io::SafetensorsWriter w;
    for (const io::TensorInfo & t : g.store.tensors()) {
        std::string          name  = t.name;
        io::DType            dtype = t.dtype;
        std::vector<int64_t> shape = t.shape;
        std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
        if (edit(name, dtype, shape, bytes)) w.add(name, dtype, shape, std::move(bytes));
    }
    REQUIRE(w.write(dir.file("model.safetensors")).ok());
    fs::copy_file(kGolden + "/config.json", dir.file("config.json"));
}

Status bind_dir(const std::string & dir, std::vector<std::string> * warnings = nullptr) {
    auto cfg = model::load_config(dir + "/config.json");
    if (!cfg.ok()) return cfg.status();
    auto store = io::TensorStore::open_dir(dir);
    if (!store.ok()) return store.status();
    detail::Logger log([&](LogLevel, std::string_view m) {
        if (warnings) warnings->emplace_back(m);
    });
    auto           w = model::bind_weights(*cfg, *store, log);
    return w.ok() ? Status() : w.status();
}

bool mentions(const Status & s, const std::string & a, const std::string & b = "") {
    return s.message().find(a) != std::string::npos &&
           (b.empty() || s.message().find(b) != std::string::npos);
}

}  // namespace

TEST_CASE("weights: golden-a binds every block kind", "[weights]") {
    Loaded g = open_checkpoint(kGolden);
    auto   w = model::bind_weights(g.cfg, g.store, detail::Logger());
    REQUIRE(w.ok());
    REQUIRE(w->blocks.size() == 7);
    CHECK(w->embed.rows == 1024);
    CHECK(w->embed.cols == 256);
    CHECK(w->head.rows == 1024);
    // embed: a zero-copy view of the stored bf16 bits.
    const io::TensorInfo * e = g.store.find("embed.weight");
    CHECK(std::memcmp(w->embed.w, e->data, 64) == 0);
    for (const model::BlockWeights & b : w->blocks) {
        const int r = b.desc.ratio;
        CHECK(b.attn.has_compressor == (r != 0));
        CHECK(b.attn.has_indexer == (r == 4));
        CHECK((b.ffn.tid2eid != nullptr) == b.desc.hash);
        CHECK((b.ffn.gate_bias != nullptr) == !b.desc.hash);
        CHECK(b.ffn.experts.size() == 8);
        CHECK(b.attn.wq_b.N == 8 * 256);
        CHECK(b.attn.wq_b.K == 256);
        CHECK(b.ffn.experts[3].w2.K == 256);  // logical K = stored in/2 * 2
        CHECK((b.e_proj.w != nullptr) == b.desc.mtp);
        if (r == 4) {
            CHECK(b.attn.compressor.coff == 2);
            CHECK(b.attn.indexer.compressor.d == 128);
        }
        if (r == 128) CHECK(b.attn.compressor.coff == 1);
    }
    // tid2eid widened to int32 with the same values.
    const io::TensorInfo * ids = g.store.find("layers.0.ffn.gate.tid2eid");
    int64_t                v;
    std::memcpy(&v, ids->data + 8 * 5, 8);
    CHECK(w->blocks[0].ffn.tid2eid[5] == v);
    // Norm weights widened to fp32 exactly.
    const io::TensorInfo * n = g.store.find("layers.1.attn_norm.weight");
    uint16_t               bits;
    std::memcpy(&bits, n->data + 2 * 3, 2);
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float    f;
    std::memcpy(&f, &u, 4);
    CHECK(w->blocks[1].attn_norm[3] == f);
}

TEST_CASE("weights: a written tiny model round-trips byte for byte", "[weights][make_model]") {
    auto cfg = model::preset_config("tiny");
    REQUIRE(cfg.ok());
    TempDir                 dir;
    model::MakeModelOptions opt;
    opt.seed        = 11;
    opt.shard_bytes = 3u << 20;  // several shards
    REQUIRE(model::write_random_model(*cfg, dir.path.string(), opt).ok());
    Loaded l = open_checkpoint(dir.path.string());
    CHECK(l.store.file_count() > 1);
    // The config written is the config read.
    CHECK(model::expected_tensors(l.cfg).size() == model::expected_tensors(*cfg).size());
    CHECK(l.cfg.compress_ratios == cfg->compress_ratios);
    auto w = model::bind_weights(l.cfg, l.store, detail::Logger());
    REQUIRE(w.ok());
    // Every tensor equals a fresh generation of it.
    for (const model::ExpectedTensor & t : model::expected_tensors(*cfg)) {
        const io::TensorInfo * got = l.store.find(t.name);
        REQUIRE(got != nullptr);
        std::vector<uint8_t> want(t.bytes());
        model::expected_tensor_bytes(*cfg, t, opt.seed, want.data());
        INFO(t.name);
        CHECK(std::memcmp(got->data, want.data(), want.size()) == 0);
    }
    // The views point at those bytes.
    const io::TensorInfo * wq = l.store.find("layers.2.attn.wq_a.weight");
    CHECK(w->blocks[2].attn.wq_a.w == wq->data);
    // Quantised weights are non-degenerate: scales are not NaN, codes are not all zero.
    auto report = model::verify_tensors(l.store);
    CHECK(report.nan_scale_codes == 0);
    CHECK(report.nan_e4m3_codes == 0);
    CHECK(report.offenders.empty());
}

TEST_CASE("weights: make_model is deterministic in the seed and thread count", "[make_model]") {
    auto cfg = model::preset_config("tiny");
    REQUIRE(cfg.ok());
    TempDir                 a, b, c;
    model::MakeModelOptions opt;
    opt.seed = 5;
    REQUIRE(model::write_random_model(*cfg, a.path.string(), opt).ok());
    opt.n_threads = 2;
    REQUIRE(model::write_random_model(*cfg, b.path.string(), opt).ok());
    opt.seed = 6;
    REQUIRE(model::write_random_model(*cfg, c.path.string(), opt).ok());
    auto slurp = [](const std::string & p) {
        std::ifstream f(p, std::ios::binary);
        return std::vector<char>(std::istreambuf_iterator<char>(f), {});
    };
    for (const auto & entry : fs::directory_iterator(a.path)) {
        const std::string name = entry.path().filename().string();
        CHECK(slurp(entry.path().string()) == slurp(b.file(name)));
        if (name.find(".safetensors") != std::string::npos &&
            name.find("index") == std::string::npos)
            CHECK(slurp(entry.path().string()) != slurp(c.file(name)));
    }
}

TEST_CASE("weights: presets validate and flash-mini has the Flash per-layer shapes",
          "[make_model]") {
    auto fm = model::preset_config("flash-mini");
    REQUIRE(fm.ok());
    CHECK(fm->dim == 4096);
    CHECK(fm->q_dim() == 64 * 512);
    CHECK(fm->wo_a_out() == 8 * 1024);
    CHECK(fm->vocab_size == 129280);
    CHECK(fm->n_routed_experts == 32);
    bool swa = false, csa = false, hca = false;
    for (const auto & d : fm->layers()) {
        swa |= d.kind == model::AttnKind::swa && !d.mtp;
        csa |= d.kind == model::AttnKind::csa;
        hca |= d.kind == model::AttnKind::hca;
    }
    CHECK((swa && csa && hca));
    // config_to_json round-trips through the parser.
    auto again = model::parse_config(model::config_to_json(*fm), "roundtrip");
    REQUIRE(again.ok());
    CHECK(model::payload_bytes(model::expected_tensors(*again)) ==
          model::payload_bytes(model::expected_tensors(*fm)));
    auto bad = model::preset_config("huge");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().code() == Errc::invalid_argument);
    CHECK(mentions(bad.status(), "huge"));
}

TEST_CASE("weights: a missing tensor is an error naming it", "[weights][errors]") {
    TempDir dir;
    rewrite_golden(dir, [](std::string & name, auto &, auto &, auto &) {
        return name != "layers.3.attn.compressor.ape";
    });
    const Status s = bind_dir(dir.path.string());
    CHECK(s.code() == Errc::invalid_model);
    CHECK(mentions(s, "layers.3.attn.compressor.ape", "missing"));
}

TEST_CASE("weights: a wrong dtype is an error naming file and tensor", "[weights][errors]") {
    TempDir dir;
    rewrite_golden(dir, [](std::string & name, io::DType & dt, auto &, auto &) {
        if (name == "layers.2.attn.attn_sink") dt = io::DType::I32;  // same element size
        return true;
    });
    const Status s = bind_dir(dir.path.string());
    CHECK(s.code() == Errc::invalid_model);
    CHECK(mentions(s, "layers.2.attn.attn_sink", "model.safetensors"));
    CHECK(mentions(s, "I32", "F32"));
}

TEST_CASE("weights: a wrong shape is an error naming the tensor", "[weights][errors]") {
    TempDir dir;
    rewrite_golden(dir, [](std::string & name, auto &, std::vector<int64_t> & shape, auto &) {
        if (name == "layers.1.attn.wkv.weight") shape = {128, 512};  // same bytes, transposed-ish
        return true;
    });
    const Status s = bind_dir(dir.path.string());
    CHECK(s.code() == Errc::invalid_model);
    CHECK(mentions(s, "layers.1.attn.wkv.weight", "[128, 512]"));
}

TEST_CASE("weights: tid2eid out of range or duplicated is rejected", "[weights][errors]") {
    for (int64_t bad : {int64_t{8}, int64_t{-1}, int64_t{-2}}) {
        TempDir dir;
        rewrite_golden(dir, [&](std::string & name, auto &, auto &, std::vector<uint8_t> & b) {
            if (name == "layers.1.ffn.gate.tid2eid") {
                int64_t v = bad;
                if (bad == -2) std::memcpy(&v, b.data() + 8 * 20, 8);  // duplicate of its pair
                std::memcpy(b.data() + 8 * 21, &v, 8);                 // row 10, second entry
            }
            return true;
        });
        const Status s = bind_dir(dir.path.string());
        INFO(s.to_string());
        CHECK(s.code() == Errc::invalid_model);
        CHECK(mentions(s, "layers.1.ffn.gate.tid2eid", "row 10"));
    }
}

TEST_CASE("weights: unknown extra tensors are logged, not fatal", "[weights]") {
    TempDir dir;
    bool    added = false;
    rewrite_golden(dir, [&](std::string &, auto &, auto &, auto &) { return true; });
    {
        // Append one extra tensor by rewriting with it included.
        Loaded                g = open_checkpoint(dir.path.string());
        io::SafetensorsWriter w;
        for (const io::TensorInfo & t : g.store.tensors())
            w.add(t.name, t.dtype, t.shape, t.data, t.nbytes);
        const float extra[2] = {1.0f, 2.0f};
        w.add("layers.0.some_future_tensor", io::DType::F32, {2}, extra, sizeof extra);
        REQUIRE(w.write(dir.file("model.safetensors")).ok());
        added = true;
    }
    REQUIRE(added);
    std::vector<std::string> warnings;
    CHECK(bind_dir(dir.path.string(), &warnings).ok());
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("layers.0.some_future_tensor") != std::string::npos);
}
