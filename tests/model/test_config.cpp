// ModelConfig parsing, envelope validation (every error names key and value), the layer
// schedule, and the config-only tensor inventory checked against the real golden-a shard
// headers and the Flash/Pro totals of spec §9.
#include <simdjson.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "model/config.hpp"
#include "model/inventory.hpp"

using dsv4::Errc;
using namespace dsv4::model;

namespace {

const std::string kData = DSV4_TEST_DATA_DIR;

std::string read_text(const std::string & path) {
    std::ifstream      in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    REQUIRE(in.good());
    return ss.str();
}

const std::string & golden_text() {
    static const std::string t = read_text(kData + "/golden-a/config.json");
    return t;
}

ModelConfig load_ok(const std::string & path) {
    auto r = load_config(path);
    INFO(r.status().to_string());
    REQUIRE(r.ok());
    return r.value();
}

// `text` with the single occurrence of `from` replaced by `to`.
std::string replace_once(std::string text, const std::string & from, const std::string & to) {
    const size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    REQUIRE(text.find(from, at + 1) == std::string::npos);
    text.replace(at, from.size(), to);
    return text;
}

// golden-a config with compress_ratios replaced by `json` (any JSON value).
std::string with_ratios(const std::string & json) {
    std::string  t  = golden_text();
    const size_t at = t.find("\"compress_ratios\"");
    REQUIRE(at != std::string::npos);
    const size_t end = t.find(']', at);
    REQUIRE(end != std::string::npos);
    t.replace(at, end + 1 - at, "\"compress_ratios\": " + json);
    return t;
}

struct Key {
    std::string          name;
    std::string          dtype;
    std::vector<int64_t> shape;
    bool                 operator<(const Key & o) const {
                        return std::tie(name, dtype, shape) < std::tie(o.name, o.dtype, o.shape);
    }
    bool operator==(const Key & o) const {
        return name == o.name && dtype == o.dtype && shape == o.shape;
    }
};

// Minimal safetensors header reader: u64 LE length, JSON header. Returns (name, dtype, shape)
// of every tensor and adds the payload byte counts to `bytes`.
std::vector<Key> read_shard_header(const std::string & path, uint64_t & bytes) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    unsigned char len_le[8];
    in.read(reinterpret_cast<char *>(len_le), 8);
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) {
        len = (len << 8) | len_le[i];
    }
    REQUIRE(len < (uint64_t{1} << 26));
    std::string header(static_cast<size_t>(len), '\0');
    in.read(header.data(), static_cast<std::streamsize>(len));
    REQUIRE(in.good());

    simdjson::dom::parser   parser;
    simdjson::dom::object   obj;
    simdjson::padded_string padded(header);
    REQUIRE(parser.parse(padded).get(obj) == simdjson::SUCCESS);
    std::vector<Key> out;
    for (auto field : obj) {
        if (field.key == "__metadata__") {
            continue;
        }
        Key              k;
        std::string_view dtype;
        REQUIRE(field.value["dtype"].get_string().get(dtype) == simdjson::SUCCESS);
        k.name  = std::string(field.key);
        k.dtype = std::string(dtype);
        simdjson::dom::array shape;
        REQUIRE(field.value["shape"].get_array().get(shape) == simdjson::SUCCESS);
        for (auto d : shape) {
            int64_t v = 0;
            REQUIRE(d.get_int64().get(v) == simdjson::SUCCESS);
            k.shape.push_back(v);
        }
        simdjson::dom::array offs;
        REQUIRE(field.value["data_offsets"].get_array().get(offs) == simdjson::SUCCESS);
        uint64_t b = 0, e = 0;
        REQUIRE(offs.at(0).get_uint64().get(b) == simdjson::SUCCESS);
        REQUIRE(offs.at(1).get_uint64().get(e) == simdjson::SUCCESS);
        bytes += e - b;
        out.push_back(std::move(k));
    }
    return out;
}

std::vector<Key> inventory_keys(const std::vector<ExpectedTensor> & inv) {
    std::vector<Key> out;
    for (const auto & t : inv) {
        out.push_back({t.name, t.dtype, t.shape});
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE("config: golden-a config.json parses with the right values", "[config]") {
    const ModelConfig c = load_ok(kData + "/golden-a/config.json");
    CHECK(c.model_type == "deepseek_v4");
    CHECK(c.vocab_size == 1024);
    CHECK(c.dim == 256);
    CHECK(c.moe_inter_dim == 256);
    CHECK(c.n_layers == 6);
    CHECK(c.n_hash_layers == 2);
    CHECK(c.n_mtp_layers == 1);
    CHECK(c.n_heads == 8);
    CHECK(c.n_routed_experts == 8);
    CHECK(c.n_shared_experts == 1);
    CHECK(c.n_activated_experts == 2);
    CHECK(c.score_func == ScoreFunc::sqrtsoftplus);
    CHECK(c.route_scale == 1.5);
    CHECK(c.swiglu_limit == 10.0);
    CHECK(c.q_lora_rank == 256);
    CHECK(c.head_dim == 256);
    CHECK(c.rope_head_dim == 64);
    CHECK(c.norm_eps == 1e-6);
    CHECK(c.o_groups == 4);
    CHECK(c.o_lora_rank == 128);
    CHECK(c.window_size == 128);
    CHECK(c.compress_ratios == std::vector<int>{0, 0, 4, 128, 4, 128, 0});
    CHECK(c.compress_rope_theta == 160000.0);
    CHECK(c.original_seq_len == 256);
    CHECK(c.rope_theta == 10000.0);
    CHECK(c.rope_factor == 16.0);
    CHECK(c.beta_fast == 32.0);
    CHECK(c.beta_slow == 1.0);
    CHECK(c.index_n_heads == 8);
    CHECK(c.index_head_dim == 128);
    CHECK(c.index_topk == 16);
    CHECK(c.hc_mult == 4);
    CHECK(c.hc_sinkhorn_iters == 20);
    CHECK(c.hc_eps == 1e-6);
    CHECK(c.expert_dtype == ExpertDtype::fp4);
    CHECK(c.max_position_embeddings == 4096);
    CHECK(c.bos_token_id == 0);
    CHECK(c.eos_token_id() == 1);
    CHECK(c.quantization.present);
    CHECK(c.quantization.quant_method == "fp8");
    CHECK(c.quantization.fmt == "e4m3");
    CHECK(c.quantization.scale_fmt == "ue8m0");
    CHECK(c.quantization.weight_block_out == 128);
    CHECK(c.quantization.weight_block_in == 128);

    // Derived constants (spec §1.2).
    CHECK(c.n_blocks() == 7);
    CHECK(c.nope_dim() == 192);
    CHECK(c.hc_mix() == 24);
    CHECK(c.hc_dim() == 1024);
    CHECK(c.heads_per_group() == 2);
    CHECK(c.wo_a_in() == 512);
    CHECK(c.wo_a_out() == 512);
    CHECK(c.softmax_scale() == 1.0 / 16.0);
    CHECK(c.indexer_scale() == Approx(1.0 / 32.0).epsilon(1e-15));
}

TEST_CASE("config: Flash and Pro parse and derived constants match spec 1.2", "[config]") {
    const ModelConfig f = load_ok(kData + "/configs/flash.json");
    const ModelConfig p = load_ok(kData + "/configs/pro.json");
    CHECK(f.dim == 4096);
    CHECK(p.dim == 7168);
    CHECK(f.hc_dim() == 16384);
    CHECK(p.hc_dim() == 28672);
    for (const ModelConfig * c : {&f, &p}) {
        CHECK(c->nope_dim() == 448);
        CHECK(c->hc_mix() == 24);
        CHECK(c->heads_per_group() == 8);
        CHECK(c->wo_a_in() == 4096);
        CHECK(static_cast<float>(c->softmax_scale()) == Approx(0.044194173f));
        CHECK(c->indexer_scale() == Approx(0.011048543456).epsilon(1e-10));
        CHECK(c->max_position_embeddings == 1048576);
        CHECK(c->original_seq_len == 65536);
    }
    CHECK(f.index_topk == 512);
    CHECK(p.index_topk == 1024);
    CHECK(f.route_scale == 1.5);
    CHECK(p.route_scale == 2.5);
}

TEST_CASE("config: layer schedule kinds, hash layers, MTP and RoPE settings", "[config]") {
    const ModelConfig f = load_ok(kData + "/configs/flash.json");
    const auto        L = f.layers();
    REQUIRE(L.size() == 44);
    int csa = 0, hca = 0, swa = 0;
    for (int l = 0; l < f.n_layers; ++l) {
        CHECK(L[l].id == l);
        CHECK(!L[l].mtp);
        CHECK(L[l].prefix == "layers." + std::to_string(l) + ".");
        CHECK(L[l].hash == (l < 3));
        csa += L[l].kind == AttnKind::csa;
        hca += L[l].kind == AttnKind::hca;
        swa += L[l].kind == AttnKind::swa;
    }
    CHECK(csa == 21);
    CHECK(hca == 20);
    CHECK(swa == 2);
    CHECK(L[42].kind == AttnKind::csa);

    const LayerDesc & m = L[43];
    CHECK(m.mtp);
    CHECK(m.mtp_index == 0);
    CHECK(m.id == 43);
    CHECK(m.prefix == "mtp.0.");
    CHECK(m.kind == AttnKind::swa);
    CHECK(!m.hash);
    CHECK(!f.is_hash_layer(43));
    CHECK(f.is_hash_layer(2));
    CHECK(!f.is_hash_layer(3));

    // RoPE: window-only layers (and MTP) use rope_theta without YaRN; compressed ones
    // compress_rope_theta with YaRN.
    CHECK(L[0].rope.base == 10000.0);
    CHECK(!L[0].rope.yarn);
    CHECK(!m.rope.yarn);
    CHECK(m.rope.base == 10000.0);
    for (int l : {2, 3}) {
        CHECK(L[l].rope.base == 160000.0);
        CHECK(L[l].rope.yarn);
        CHECK(L[l].rope.factor == 16.0);
        CHECK(L[l].rope.original_seq_len == 65536);
        CHECK(L[l].rope.beta_fast == 32.0);
        CHECK(L[l].rope.beta_slow == 1.0);
        CHECK(L[l].rope.rope_head_dim == 64);
    }

    const ModelConfig p  = load_ok(kData + "/configs/pro.json");
    const auto        PL = p.layers();
    REQUIRE(PL.size() == 62);
    csa = hca = swa = 0;
    for (int l = 0; l < p.n_layers; ++l) {
        csa += PL[l].kind == AttnKind::csa;
        hca += PL[l].kind == AttnKind::hca;
        swa += PL[l].kind == AttnKind::swa;
    }
    CHECK(csa == 30);
    CHECK(hca == 31);
    CHECK(swa == 0);
    CHECK(PL[61].mtp);
    CHECK(PL[61].kind == AttnKind::swa);
    CHECK(PL[0].rope.yarn);  // Pro layers 0, 1 are ratio 128

    // Without rope_scaling there is no YaRN anywhere.
    std::string  t = golden_text();
    const size_t a = t.find("\"rope_scaling\"");
    const size_t b = t.find('}', a);
    t.replace(a, b + 1 - a, "\"rope_scaling\": null");
    auto r = parse_config(t, "config.json");
    REQUIRE(r.ok());
    CHECK(r->original_seq_len == 0);
    CHECK(r->rope(2).base == 160000.0);
    CHECK(!r->rope(2).yarn);
}

TEST_CASE("config: Flash and Pro inventories match the checkpoint totals of spec 9", "[config]") {
    const ModelConfig f    = load_ok(kData + "/configs/flash.json");
    const auto        finv = expected_tensors(f);
    CHECK(finv.size() == 69187);
    CHECK(payload_bytes(finv) == 159609485896ull);

    const ModelConfig p    = load_ok(kData + "/configs/pro.json");
    const auto        pinv = expected_tensors(p);
    CHECK(pinv.size() == 145116);
    CHECK(payload_bytes(pinv) == 864704792696ull);

    // Names are unique.
    std::vector<std::string> names;
    for (const auto & t : pinv) {
        names.push_back(t.name);
    }
    std::sort(names.begin(), names.end());
    CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());

    // Spot checks against the spec §2.2 table (Pro).
    std::map<std::string, const ExpectedTensor *> by_name;
    for (const auto & t : pinv) {
        by_name[t.name] = &t;
    }
    const auto shape_of = [&](const std::string & n) {
        const auto it = by_name.find(n);
        REQUIRE(it != by_name.end());
        return it->second->shape;
    };
    using S = std::vector<int64_t>;
    CHECK(shape_of("layers.2.attn.wo_a.weight") == S{16384, 4096});
    CHECK(shape_of("layers.2.attn.wo_b.scale") == S{56, 128});
    CHECK(shape_of("layers.2.attn.indexer.wq_b.scale") == S{64, 12});
    CHECK(shape_of("layers.2.attn.compressor.ape") == S{4, 1024});
    CHECK(shape_of("layers.3.attn.compressor.ape") == S{128, 512});
    CHECK(shape_of("layers.0.ffn.gate.tid2eid") == S{129280, 6});
    CHECK(shape_of("layers.5.ffn.experts.383.w1.weight") == S{3072, 3584});
    CHECK(shape_of("layers.5.ffn.experts.383.w2.scale") == S{7168, 96});
    CHECK(shape_of("mtp.0.hc_head_fn") == S{4, 28672});
    CHECK(by_name.count("layers.3.ffn.gate.bias") == 1);
    CHECK(by_name.count("layers.2.ffn.gate.bias") == 0);
    CHECK(by_name.count("mtp.0.ffn.gate.bias") == 1);
    CHECK(by_name.count("mtp.0.attn.compressor.ape") == 0);
}

TEST_CASE("config: golden-a inventory equals the real shard headers exactly", "[config]") {
    const ModelConfig c   = load_ok(kData + "/golden-a/config.json");
    const auto        inv = expected_tensors(c);

    uint64_t         header_bytes = 0;
    std::vector<Key> real;
    for (const char * shard :
         {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
        auto part = read_shard_header(kData + "/golden-a/" + shard, header_bytes);
        real.insert(real.end(), part.begin(), part.end());
    }
    std::sort(real.begin(), real.end());
    const std::vector<Key> want = inventory_keys(inv);

    // Report the first differences by name for a readable failure.
    std::vector<Key> missing, extra;
    std::set_difference(want.begin(), want.end(), real.begin(), real.end(),
                        std::back_inserter(missing));
    std::set_difference(real.begin(), real.end(), want.begin(), want.end(),
                        std::back_inserter(extra));
    for (size_t i = 0; i < std::min<size_t>(missing.size(), 5); ++i) {
        UNSCOPED_INFO("expected but not in headers: " << missing[i].name << " "
                                                      << missing[i].dtype);
    }
    for (size_t i = 0; i < std::min<size_t>(extra.size(), 5); ++i) {
        UNSCOPED_INFO("in headers but not expected: " << extra[i].name << " " << extra[i].dtype);
    }
    CHECK(missing.empty());
    CHECK(extra.empty());
    CHECK(real.size() == 585);
    CHECK(inv.size() == 585);
    CHECK(payload_bytes(inv) == header_bytes);
    CHECK(header_bytes == 20153292u);  // index.json metadata.total_size
}

TEST_CASE("config: KV cache size formulas", "[config]") {
    const ModelConfig f = load_ok(kData + "/configs/flash.json");
    const ModelConfig p = load_ok(kData + "/configs/pro.json");
    CHECK(kv_cache_bytes_per_token(f) == 6880.0);
    CHECK(kv_cache_bytes_per_token(p) == 9848.0);

    const int64_t     n = 65536;  // a multiple of 128: context part is exactly per-token * n
    const KvCacheSize s = kv_cache_size(f, n, false);
    CHECK(s.compressed_bytes + s.indexer_bytes == static_cast<uint64_t>(6880 * n));
    CHECK(s.window_bytes == 43ull * 128 * 512 * 2);
    // main state: CSA 2*(8*1024)*4, HCA 2*(128*512)*4; indexer state 2*(8*256)*4.
    CHECK(s.compressor_state_bytes ==
          21ull * (2 * 8 * 1024 * 4 + 2 * 8 * 256 * 4) + 20ull * (2 * 128 * 512 * 4));
    const KvCacheSize sm = kv_cache_size(f, n, true);
    CHECK(sm.window_bytes == s.window_bytes + 128ull * 512 * 2);
    CHECK(sm.total() == s.total() + 128ull * 512 * 2);
    CHECK(kv_cache_size(f, 0, false).compressed_bytes == 0);
}

TEST_CASE("config: load_config errors name the path", "[config]") {
    auto r = load_config(kData + "/no/such/config.json");
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Errc::file_not_found);
    CHECK(r.status().message().find("no/such/config.json") != std::string::npos);
}

TEST_CASE("config: optional keys fall back to ModelArgs defaults", "[config]") {
    std::string t = golden_text();
    t             = replace_once(t, "\"hc_eps\": 1e-06,", "");
    t             = replace_once(t, "\"num_nextn_predict_layers\": 1,", "");
    t             = replace_once(t, "\"hc_sinkhorn_iters\": 20,", "");
    t             = replace_once(t, "\"expert_dtype\": \"fp4\",", "");
    t             = replace_once(t, "\"eos_token_id\": 1,", "\"eos_token_id\": [1, 7],");
    t             = replace_once(t, "\"rope_theta\": 10000,", "\"rope_theta\": 10000.5,");
    auto r        = parse_config(t, "config.json");
    INFO(r.status().to_string());
    REQUIRE(r.ok());
    CHECK(r->hc_eps == 1e-6);
    CHECK(r->n_mtp_layers == 1);
    CHECK(r->hc_sinkhorn_iters == 20);
    CHECK(r->expert_dtype == ExpertDtype::none);
    CHECK(r->eos_token_ids == std::vector<int>{1, 7});
    CHECK(r->rope_theta == 10000.5);
    // expert_dtype absent: the released checkpoint's experts are still packed FP4.
    const auto inv = expected_tensors(r.value());
    CHECK(std::count_if(inv.begin(), inv.end(),
                        [](const ExpectedTensor & e) { return e.dtype == "I8"; }) == 7 * 8 * 3);
}

namespace {

struct BadCase {
    const char *             what;
    std::string              text;
    Errc                     code;
    std::vector<std::string> needles;  // substrings the message must contain
};

std::vector<BadCase> bad_cases() {
    const std::string & g = golden_text();
    const auto          R = [&](const std::string & from, const std::string & to) {
        return replace_once(g, from, to);
    };
    std::string long_list = "1";
    for (int i = 0; i < 200; ++i) {
        long_list += ",1";
    }
    const Errc inv = Errc::invalid_model;
    const Errc uns = Errc::unsupported_model;
    // clang-format off
    return {
        {"string for int", R("\"num_attention_heads\": 8,", "\"num_attention_heads\": \"abc\","), inv,
         {"config.json: key 'num_attention_heads': expected a positive integer, got \"abc\""}},
        {"float for int", R("\"hidden_size\": 256,", "\"hidden_size\": 256.5,"), inv,
         {"'hidden_size'", "256.5", "integer"}},
        {"negative int", R("\"num_hidden_layers\": 6,", "\"num_hidden_layers\": -6,"), inv,
         {"'num_hidden_layers'", "-6"}},
        {"bool for int", R("\"vocab_size\": 1024,", "\"vocab_size\": true,"), inv,
         {"'vocab_size'", "true"}},
        {"zero size", R("\"head_dim\": 256,", "\"head_dim\": 0,"), inv, {"'head_dim'", "got 0"}},
        {"negative hash layers", R("\"num_hash_layers\": 2,", "\"num_hash_layers\": -1,"), inv,
         {"'num_hash_layers'", "non-negative", "-1"}},
        {"missing required key", R("\"q_lora_rank\": 256,", ""), inv,
         {"missing required key 'q_lora_rank'"}},
        {"null required key", R("\"o_groups\": 4,", "\"o_groups\": null,"), inv,
         {"missing required key 'o_groups'"}},
        {"uint64 overflow", R("\"num_hidden_layers\": 6,", "\"num_hidden_layers\": 18446744073709551615,"), uns,
         {"'num_hidden_layers'", "18446744073709551615", "maximum"}},
        {"too many layers", R("\"num_hidden_layers\": 6,", "\"num_hidden_layers\": 2000,"), uns,
         {"'num_hidden_layers'", "2000", "1024"}},
        {"bad ratio", with_ratios("[0, 0, 4, 64, 4, 128, 0]"), uns,
         {"'compress_ratios[3]'", "64"}},
        {"ratio wrong type", with_ratios("[0, 0, \"4\", 128, 4, 128, 0]"), inv,
         {"'compress_ratios[2]'", "\"4\""}},
        {"ratios not an array", with_ratios("4"), inv, {"'compress_ratios'", "got 4"}},
        {"ratios too short", with_ratios("[0, 0, 4, 128, 4, 128]"), inv,
         {"'compress_ratios'", "expected 7 entries", "got 6"}},
        {"ratios too long", with_ratios("[0, 0, 4, 128, 4, 128, 0, 0]"), inv,
         {"'compress_ratios'", "expected 7 entries", "got 8"}},
        {"compressed MTP block", with_ratios("[0, 0, 4, 128, 4, 128, 4]"), uns,
         {"'compress_ratios[6]'", "got 4"}},
        {"malformed JSON", g.substr(0, g.size() / 2), inv, {"config.json", "malformed JSON"}},
        {"empty input", "", inv, {"config.json", "malformed JSON"}},
        {"top level array", "[1, 2]", inv, {"config.json", "object", "[1,2]"}},
        {"quant method", R("\"quant_method\": \"fp8\"", "\"quant_method\": \"awq\""), uns,
         {"'quantization_config.quant_method'", "\"awq\""}},
        {"quant fmt", R("\"fmt\": \"e4m3\"", "\"fmt\": \"e5m2\""), uns,
         {"'quantization_config.fmt'", "\"e5m2\""}},
        {"quant scale fmt", R("\"scale_fmt\": \"ue8m0\"", "\"scale_fmt\": \"fp32\""), uns,
         {"'quantization_config.scale_fmt'", "\"fp32\""}},
        {"quant block size", R("\"weight_block_size\": [\n      128,\n      128\n    ]", "\"weight_block_size\": [64, 64]"), uns,
         {"'quantization_config.weight_block_size'", "[64,64]"}},
        {"quant block size type", R("\"weight_block_size\": [\n      128,\n      128\n    ]", "\"weight_block_size\": [128]"), inv,
         {"'quantization_config.weight_block_size'", "[128]"}},
        {"quant not object", R("\"quantization_config\": {", "\"quantization_config\": 5, \"x\": {"), inv,
         {"'quantization_config'", "an object", "got 5"}},
        {"quant missing method", R("\"quant_method\": \"fp8\",", ""), inv,
         {"missing required key 'quantization_config.quant_method'"}},
        {"model type", R("\"model_type\": \"deepseek_v4\"", "\"model_type\": \"deepseek_v3\""), uns,
         {"'model_type'", "\"deepseek_v3\""}},
        {"model type not string", R("\"model_type\": \"deepseek_v4\"", "\"model_type\": 4"), inv,
         {"'model_type'", "a string", "got 4"}},
        {"hc_mult too big", R("\"hc_mult\": 4,", "\"hc_mult\": 17,"), uns, {"'hc_mult'", "17", "16"}},
        {"hc_mult zero", R("\"hc_mult\": 4,", "\"hc_mult\": 0,"), inv, {"'hc_mult'", "got 0"}},
        {"odd rope dim", R("\"qk_rope_head_dim\": 64,", "\"qk_rope_head_dim\": 63,"), inv,
         {"'qk_rope_head_dim'", "63"}},
        {"rope dim above head dim", R("\"qk_rope_head_dim\": 64,", "\"qk_rope_head_dim\": 320,"), inv,
         {"'qk_rope_head_dim'", "320", "head_dim 256"}},
        {"nope not a multiple of 64", R("\"qk_rope_head_dim\": 64,", "\"qk_rope_head_dim\": 32,"), uns,
         {"'head_dim'", "256", "32", "224", "64"}},
        {"two shared experts", R("\"n_shared_experts\": 1,", "\"n_shared_experts\": 2,"), uns,
         {"'n_shared_experts'", "got 2"}},
        {"top-k above experts", R("\"num_experts_per_tok\": 2,", "\"num_experts_per_tok\": 9,"), inv,
         {"'num_experts_per_tok'", "9", "n_routed_experts 8"}},
        {"groups do not divide heads", R("\"o_groups\": 4,", "\"o_groups\": 3,"), inv,
         {"'o_groups'", "3", "num_attention_heads 8"}},
        {"index head dim not a multiple of 32", R("\"index_head_dim\": 128,", "\"index_head_dim\": 80,"), uns,
         {"'index_head_dim'", "80", "32"}},
        {"index topk zero", R("\"index_topk\": 16,", "\"index_topk\": 0,"), inv, {"'index_topk'", "got 0"}},
        {"hidden not multiple of 128", R("\"hidden_size\": 256,", "\"hidden_size\": 320,"), uns,
         {"'hidden_size'", "320", "128"}},
        {"q_lora not multiple of 128", R("\"q_lora_rank\": 256,", "\"q_lora_rank\": 192,"), uns,
         {"'q_lora_rank'", "192", "128"}},
        {"moe inter not multiple of 128", R("\"moe_intermediate_size\": 256,", "\"moe_intermediate_size\": 192,"), uns,
         {"'moe_intermediate_size'", "192", "128"}},
        {"wo_b input not multiple of 128", R("\"o_lora_rank\": 128,", "\"o_lora_rank\": 80,"), uns,
         {"'o_lora_rank'", "80", "320", "128"}},
        {"fp8 experts", R("\"expert_dtype\": \"fp4\"", "\"expert_dtype\": \"fp8\""), uns,
         {"'expert_dtype'", "\"fp8\""}},
        {"unknown expert dtype", R("\"expert_dtype\": \"fp4\"", "\"expert_dtype\": \"int4\""), uns,
         {"'expert_dtype'", "\"int4\""}},
        {"score func", R("\"scoring_func\": \"sqrtsoftplus\"", "\"scoring_func\": \"relu\""), uns,
         {"'scoring_func'", "\"relu\""}},
        {"hash layers above layers", R("\"num_hash_layers\": 2,", "\"num_hash_layers\": 7,"), inv,
         {"'num_hash_layers'", "7", "num_hidden_layers 6"}},
        {"zero window", R("\"sliding_window\": 128,", "\"sliding_window\": 0,"), inv,
         {"'sliding_window'", "got 0"}},
        {"negative vocab", R("\"vocab_size\": 1024,", "\"vocab_size\": -1,"), inv, {"'vocab_size'", "-1"}},
        {"zero norm eps", R("\"rms_norm_eps\": 1e-06,", "\"rms_norm_eps\": 0,"), inv,
         {"'rms_norm_eps'", "positive", "got 0"}},
        {"string norm eps", R("\"rms_norm_eps\": 1e-06,", "\"rms_norm_eps\": \"abc\","), inv,
         {"'rms_norm_eps'", "a number", "\"abc\""}},
        {"string rope theta", R("\"rope_theta\": 10000,", "\"rope_theta\": \"10000\","), inv,
         {"'rope_theta'", "\"10000\""}},
        {"rope theta 1", R("\"rope_theta\": 10000,", "\"rope_theta\": 1,"), inv,
         {"'rope_theta'", "greater than 1", "got 1"}},
        {"negative swiglu", R("\"swiglu_limit\": 10.0,", "\"swiglu_limit\": -1.0,"), inv,
         {"'swiglu_limit'", "-1"}},
        {"two MTP blocks", R("\"num_nextn_predict_layers\": 1,", "\"num_nextn_predict_layers\": 2,"), uns,
         {"'num_nextn_predict_layers'", "2"}},
        {"rope scaling kind", R("\"type\": \"yarn\"", "\"type\": \"linear\""), uns,
         {"'rope_scaling.type'", "\"linear\""}},
        {"rope scaling factor type", R("\"factor\": 16,", "\"factor\": [16],"), inv,
         {"'rope_scaling.factor'", "[16]"}},
        {"yarn original length float", R("\"original_max_position_embeddings\": 256,", "\"original_max_position_embeddings\": 256.0,"), inv,
         {"'rope_scaling.original_max_position_embeddings'", "256"}},
        {"kv heads", R("\"num_key_value_heads\": 1,", "\"num_key_value_heads\": 8,"), uns,
         {"'num_key_value_heads'", "got 8"}},
        {"tied embeddings", R("\"tie_word_embeddings\": false,", "\"tie_word_embeddings\": true,"), uns,
         {"'tie_word_embeddings'", "true"}},
        {"tie flag type", R("\"tie_word_embeddings\": false,", "\"tie_word_embeddings\": 0,"), inv,
         {"'tie_word_embeddings'", "got 0"}},
        {"hidden act", R("\"hidden_act\": \"silu\",", "\"hidden_act\": \"gelu\","), uns,
         {"'hidden_act'", "\"gelu\""}},
        {"eos outside vocab", R("\"eos_token_id\": 1,", "\"eos_token_id\": 5000,"), inv,
         {"'eos_token_id'", "5000", "vocab_size 1024"}},
        {"eos list entry type", R("\"eos_token_id\": 1,", "\"eos_token_id\": [1, \"x\"],"), inv,
         {"'eos_token_id[1]'", "\"x\""}},
        {"long value is shortened", R("\"model_type\": \"deepseek_v4\"", "\"model_type\": [" + long_list + "]"), inv,
         {"'model_type'", "[1,1,1", "..."}},
        {"long string is shortened", R("\"model_type\": \"deepseek_v4\"", "\"model_type\": \"" + std::string(300, 'a') + "\\n\""), uns,
         {"'model_type'", "\"aaaa", "..."}},
        {"control bytes are escaped", R("\"hidden_act\": \"silu\",", "\"hidden_act\": \"si\\tlu\","), uns,
         {"'hidden_act'", "\"si\\x09lu\""}},
    };
    // clang-format on
}

}  // namespace

TEST_CASE("config: invalid configs fail with a code and a message naming key and value",
          "[config]") {
    for (const BadCase & bc : bad_cases()) {
        DYNAMIC_SECTION(bc.what) {
            const auto r = parse_config(bc.text, "config.json");
            REQUIRE(!r.ok());
            INFO(r.status().to_string());
            CHECK(r.status().code() == bc.code);
            for (const std::string & n : bc.needles) {
                CHECK(r.status().message().find(n) != std::string::npos);
            }
            CHECK(r.status().message().size() < 400);
        }
    }
}
