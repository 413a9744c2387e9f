#include "model/make_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "dsv4/ref/formats.hpp"
#include "io/safetensors.hpp"
#include "io/safetensors_writer.hpp"
#include "threading/parallel.hpp"

namespace dsv4::model {
namespace {

// ---- deterministic random numbers ---------------------------------------------------------

uint64_t splitmix(uint64_t & s) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t name_hash(std::string_view s) {
    uint64_t h = 1469598103934665603ull;
    for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return h;
}

// Generator for one row of one tensor: independent of the thread that runs it.
struct Rng {
    Rng(uint64_t seed, uint64_t tensor, int64_t row)
        : s(seed * 0x2545F4914F6CDD1Dull ^ tensor ^ (static_cast<uint64_t>(row) + 1) * 0x9E37ull) {}
    // Approximately N(0, 1): the sum of four 16-bit uniforms, rescaled (fast; tails end at ±3.5).
    float normal() {
        const uint64_t r   = splitmix(s);
        float          sum = 0.0f;
        for (int i = 0; i < 4; ++i)
            sum += (static_cast<float>((r >> (16 * i)) & 0xFFFF) + 0.5f) / 65536.0f;
        return (sum - 2.0f) * 1.7320508f;
    }
    uint64_t next() { return splitmix(s); }
    uint64_t s;
};

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool contains(std::string_view s, std::string_view part) {
    return s.find(part) != s.npos;
}

// Standard deviation and mean used for a float tensor, by role.
struct Dist {
    float mean = 0.0f, std = 1.0f;
};
Dist float_dist(const ModelConfig & cfg, const ExpectedTensor & t) {
    const std::string & n    = t.name;
    const int64_t       cols = t.shape.size() > 1 ? t.shape[1] : 1;
    if (n == "embed.weight") return {0.0f, 1.0f};
    if (n == "head.weight") return {0.0f, 1.0f / std::sqrt(static_cast<float>(cfg.dim))};
    if (ends_with(n, "norm.weight")) return {1.0f, 0.1f};
    if (contains(n, "hc_") && ends_with(n, "_fn"))
        return {0.0f, 1.0f / std::sqrt(static_cast<float>(cols))};
    if (contains(n, "hc_") && ends_with(n, "_base")) return {0.0f, 0.1f};
    if (contains(n, "hc_") && ends_with(n, "_scale")) return {1.0f, 0.1f};
    if (ends_with(n, "attn_sink")) return {0.0f, 0.5f};
    if (ends_with(n, "compressor.ape")) return {0.0f, 0.1f};
    if (ends_with(n, "gate.bias")) return {0.0f, 0.01f};
    return {0.0f, 1.0f / std::sqrt(static_cast<float>(cols))};  // [out, in] matrices
}

// Values of one row of a quantised pair's logical weight [N, K]: N(0, 1/K).
void weight_row(uint64_t seed, uint64_t tensor, int64_t row, int64_t K, float * out) {
    Rng         r(seed, tensor, row);
    const float sd = 1.0f / std::sqrt(static_cast<float>(K));
    for (int64_t k = 0; k < K; ++k) out[k] = r.normal() * sd;
}

uint8_t scale_code(float amax, float inv_max) {
    const float s = ref::ue8m0_scale(std::max(amax, 1e-30f), inv_max);
    return ref::f32_to_e8m0_ceil(s);
}

// FP8 pair of base name `base`, logical [N, K]: fills the e4m3 codes (w_out, N*K) and/or the
// e8m0 scales (s_out, ceil(N/128)*ceil(K/128)).
void fp8_pair(uint64_t seed, const std::string & base, int64_t N, int64_t K, uint8_t * w_out,
              uint8_t * s_out, int n_threads) {
    const uint64_t h   = name_hash(base);
    const int64_t  nbr = (N + 127) / 128, nbc = (K + 127) / 128;
    threading::parallel_for(n_threads, nbr, 1, [&](int64_t b0, int64_t b1) {
        std::vector<float> rows;
        for (int64_t br = b0; br < b1; ++br) {
            const int64_t r0 = br * 128, r1 = std::min(N, r0 + 128);
            rows.resize(static_cast<size_t>((r1 - r0) * K));
            for (int64_t r = r0; r < r1; ++r) weight_row(seed, h, r, K, rows.data() + (r - r0) * K);
            for (int64_t bc = 0; bc < nbc; ++bc) {
                const int64_t c0 = bc * 128, c1 = std::min(K, c0 + 128);
                float         amax = 0.0f;
                for (int64_t r = r0; r < r1; ++r)
                    for (int64_t c = c0; c < c1; ++c)
                        amax =
                            std::max(amax, std::fabs(rows[static_cast<size_t>((r - r0) * K + c)]));
                const uint8_t code = scale_code(amax, ref::kInvE4M3Max);
                if (s_out) s_out[br * nbc + bc] = code;
                if (w_out) {
                    const float s = ref::e8m0_to_f32(code);
                    for (int64_t r = r0; r < r1; ++r)
                        for (int64_t c = c0; c < c1; ++c)
                            w_out[r * K + c] =
                                ref::f32_to_e4m3(rows[static_cast<size_t>((r - r0) * K + c)] / s);
                }
            }
        }
    });
}

// FP4 pair, logical [N, K]: packed codes (w_out, N*K/2) and/or scales (s_out, N*K/32).
void fp4_pair(uint64_t seed, const std::string & base, int64_t N, int64_t K, uint8_t * w_out,
              uint8_t * s_out, int n_threads) {
    const uint64_t h = name_hash(base);
    threading::parallel_for(n_threads, N, 16, [&](int64_t n0, int64_t n1) {
        std::vector<float> row(static_cast<size_t>(K));
        for (int64_t n = n0; n < n1; ++n) {
            weight_row(seed, h, n, K, row.data());
            for (int64_t c = 0; c < K / 32; ++c) {
                float amax = 0.0f;
                for (int64_t k = c * 32; k < c * 32 + 32; ++k)
                    amax = std::max(amax, std::fabs(row[k]));
                const uint8_t code = scale_code(amax, ref::kInvE2M1Max);
                if (s_out) s_out[n * (K / 32) + c] = code;
                if (w_out) {
                    const float s = ref::e8m0_to_f32(code);
                    for (int64_t k = c * 32; k < c * 32 + 32; k += 2)
                        w_out[n * (K / 2) + k / 2] = ref::fp4_pack(
                            ref::f32_to_e2m1(row[k] / s), ref::f32_to_e2m1(row[k + 1] / s));
                }
            }
        }
    });
}

// ---- config.json ---------------------------------------------------------------------------

std::string num(double v) {
    if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

}  // namespace

std::vector<std::string> preset_names() {
    return {"tiny", "flash-mini"};
}

Result<ModelConfig> preset_config(std::string_view name) {
    ModelConfig c;
    c.model_type           = "deepseek_v4";
    c.expert_dtype         = ExpertDtype::fp4;
    c.quantization.present = true;
    c.score_func           = ScoreFunc::sqrtsoftplus;
    c.swiglu_limit         = 10.0;
    c.route_scale          = 1.5;
    c.rope_theta           = 10000.0;
    c.compress_rope_theta  = 160000.0;
    c.rope_factor          = 16.0;
    c.beta_fast            = 32.0;
    c.beta_slow            = 1.0;
    c.window_size          = 128;
    c.hc_mult              = 4;
    c.hc_sinkhorn_iters    = 20;
    c.hc_eps               = 1e-6;
    c.norm_eps             = 1e-6;
    c.n_mtp_layers         = 1;
    c.n_shared_experts     = 1;
    c.rope_head_dim        = 64;
    c.index_head_dim       = 128;
    c.bos_token_id         = 0;
    c.eos_token_ids        = {1};
    if (name == "tiny") {
        c.vocab_size              = 1024;
        c.dim                     = 256;
        c.moe_inter_dim           = 256;
        c.n_layers                = 6;
        c.n_hash_layers           = 2;
        c.n_heads                 = 4;
        c.head_dim                = 128;
        c.q_lora_rank             = 256;
        c.o_groups                = 2;
        c.o_lora_rank             = 128;
        c.n_routed_experts        = 8;
        c.n_activated_experts     = 2;
        c.index_n_heads           = 4;
        c.index_topk              = 8;
        c.original_seq_len        = 256;
        c.max_position_embeddings = 4096;
        c.compress_ratios         = {0, 0, 4, 128, 4, 128, 0};
    } else if (name == "flash-mini") {
        c.vocab_size              = 129280;
        c.dim                     = 4096;
        c.moe_inter_dim           = 2048;
        c.n_layers                = 4;
        c.n_hash_layers           = 1;
        c.n_heads                 = 64;
        c.head_dim                = 512;
        c.q_lora_rank             = 1024;
        c.o_groups                = 8;
        c.o_lora_rank             = 1024;
        c.n_routed_experts        = 32;
        c.n_activated_experts     = 6;
        c.index_n_heads           = 64;
        c.index_topk              = 512;
        c.original_seq_len        = 65536;
        c.max_position_embeddings = 1048576;
        c.compress_ratios         = {0, 4, 128, 4, 0};
    } else {
        std::string list;
        for (const std::string & p : preset_names()) list += (list.empty() ? "" : ", ") + p;
        return Status(Errc::invalid_argument,
                      "unknown preset '" + std::string(name) + "' (known: " + list + ")");
    }
    // Round-trip through the parser so a preset is validated exactly like a config.json.
    return parse_config(config_to_json(c), std::string("preset '") + std::string(name) + "'");
}

std::string config_to_json(const ModelConfig & c) {
    std::string j  = "{\n";
    auto        kv = [&](const std::string & k, const std::string & v) {
        j += "  \"" + k + "\": " + v + ",\n";
    };
    kv("architectures", "[\"DeepseekV4ForCausalLM\"]");
    kv("bos_token_id", std::to_string(c.bos_token_id));
    kv("eos_token_id", std::to_string(c.eos_token_id()));
    if (c.expert_dtype != ExpertDtype::none)
        kv("expert_dtype", std::string("\"") + expert_dtype_name(c.expert_dtype) + "\"");
    kv("hc_eps", num(c.hc_eps));
    kv("hc_mult", std::to_string(c.hc_mult));
    kv("hc_sinkhorn_iters", std::to_string(c.hc_sinkhorn_iters));
    kv("head_dim", std::to_string(c.head_dim));
    kv("hidden_size", std::to_string(c.dim));
    kv("index_head_dim", std::to_string(c.index_head_dim));
    kv("index_n_heads", std::to_string(c.index_n_heads));
    kv("index_topk", std::to_string(c.index_topk));
    if (c.max_position_embeddings > 0)
        kv("max_position_embeddings", std::to_string(c.max_position_embeddings));
    kv("model_type", "\"deepseek_v4\"");
    kv("moe_intermediate_size", std::to_string(c.moe_inter_dim));
    kv("n_routed_experts", std::to_string(c.n_routed_experts));
    kv("n_shared_experts", std::to_string(c.n_shared_experts));
    kv("num_attention_heads", std::to_string(c.n_heads));
    kv("num_experts_per_tok", std::to_string(c.n_activated_experts));
    kv("num_hidden_layers", std::to_string(c.n_layers));
    kv("num_hash_layers", std::to_string(c.n_hash_layers));
    kv("num_key_value_heads", "1");
    kv("num_nextn_predict_layers", std::to_string(c.n_mtp_layers));
    kv("o_groups", std::to_string(c.o_groups));
    kv("o_lora_rank", std::to_string(c.o_lora_rank));
    kv("q_lora_rank", std::to_string(c.q_lora_rank));
    kv("qk_rope_head_dim", std::to_string(c.rope_head_dim));
    kv("quantization_config",
       "{\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", \"quant_method\": \"fp8\", "
       "\"scale_fmt\": \"ue8m0\", \"weight_block_size\": [128, 128]}");
    kv("rms_norm_eps", num(c.norm_eps));
    if (c.original_seq_len > 0)
        kv("rope_scaling",
           "{\"beta_fast\": " + num(c.beta_fast) + ", \"beta_slow\": " + num(c.beta_slow) +
               ", \"factor\": " + num(c.rope_factor) + ", \"original_max_position_embeddings\": " +
               std::to_string(c.original_seq_len) + ", \"type\": \"yarn\"}");
    kv("rope_theta", num(c.rope_theta));
    kv("routed_scaling_factor", num(c.route_scale));
    kv("scoring_func", std::string("\"") + score_func_name(c.score_func) + "\"");
    kv("sliding_window", std::to_string(c.window_size));
    kv("swiglu_limit", num(c.swiglu_limit));
    kv("tie_word_embeddings", "false");
    kv("torch_dtype", "\"bfloat16\"");
    kv("vocab_size", std::to_string(c.vocab_size));
    kv("compress_rope_theta", num(c.compress_rope_theta));
    std::string ratios = "[";
    for (size_t i = 0; i < c.compress_ratios.size(); ++i)
        ratios += (i ? ", " : "") + std::to_string(c.compress_ratios[i]);
    j += "  \"compress_ratios\": " + ratios + "]\n}\n";
    return j;
}

void expected_tensor_bytes(const ModelConfig & cfg, const ExpectedTensor & t, uint64_t seed,
                           uint8_t * dst, int n_threads) {
    const std::string & n = t.name;
    if (t.dtype == kTagF8E4M3) {  // FP8 pair weight
        fp8_pair(seed, n.substr(0, n.size() - 7), t.shape[0], t.shape[1], dst, nullptr, n_threads);
    } else if (t.dtype == kTagI8) {  // FP4 pair weight, stored [N, K/2]
        fp4_pair(seed, n.substr(0, n.size() - 7), t.shape[0], t.shape[1] * 2, dst, nullptr,
                 n_threads);
    } else if (t.dtype == kTagF8E8M0) {  // the scale of a pair: regenerate the pair's weights
        const std::string base = n.substr(0, n.size() - 6);
        if (contains(n, ".experts.")) {  // FP4: [N, K/32]
            fp4_pair(seed, base, t.shape[0], t.shape[1] * 32, nullptr, dst, n_threads);
        } else {
            // FP8: the logical shape comes from the inventory entry of the weight.
            for (const ExpectedTensor & w : expected_tensors(cfg))
                if (w.name == base + ".weight") {
                    fp8_pair(seed, base, w.shape[0], w.shape[1], nullptr, dst, n_threads);
                    break;
                }
        }
    } else if (t.dtype == kTagI64) {  // tid2eid [vocab, k]: distinct experts per row
        const int64_t  rows = t.shape[0], k = t.shape[1], E = cfg.n_routed_experts;
        const uint64_t h = name_hash(n);
        for (int64_t r = 0; r < rows; ++r) {
            Rng                  rng(seed, h, r);
            std::vector<int64_t> chosen(static_cast<size_t>(k));
            for (int64_t j = 0; j < k; ++j) {
                int64_t e;
                bool    dup;
                do {
                    e   = static_cast<int64_t>(rng.next() % static_cast<uint64_t>(E));
                    dup = false;
                    for (int64_t i = 0; i < j; ++i) dup |= chosen[static_cast<size_t>(i)] == e;
                } while (dup);
                chosen[static_cast<size_t>(j)] = e;
                std::memcpy(dst + 8 * (r * k + j), &e, 8);
            }
        }
    } else {  // BF16 or F32 by role
        const Dist     d    = float_dist(cfg, t);
        const uint64_t h    = name_hash(n);
        const int64_t  rows = t.shape.empty() ? 1 : t.shape[0];
        const int64_t  cols = static_cast<int64_t>(t.elements()) / std::max<int64_t>(rows, 1);
        const bool     bf16 = t.dtype == kTagBF16;
        threading::parallel_for(n_threads, rows, 64, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                Rng rng(seed, h, r);
                for (int64_t c = 0; c < cols; ++c) {
                    const float v = d.mean + d.std * rng.normal();
                    if (bf16) {
                        const uint16_t b = ref::f32_to_bf16(v);
                        std::memcpy(dst + 2 * (r * cols + c), &b, 2);
                    } else {
                        std::memcpy(dst + 4 * (r * cols + c), &v, 4);
                    }
                }
            }
        });
    }
}

// ---- tokenizer.json ------------------------------------------------------------------------
// A byte-level BPE tokenizer in Hugging Face format for synthetic models, so that the text APIs
// and examples run on them: ids 0/1 BOS/EOS (special), 2..9 the V4 chat markers (added, not
// special), 16..271 the 256 bytes (GPT-2 byte->unicode spelling), then merged pairs of letters,
// digits and space-letter pairs, and "<｜unused_N｜>" specials up to the vocabulary size.
namespace {

std::string utf8_of(uint32_t cp) {
    std::string out;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return out;
}

// GPT-2's reversible byte -> printable code point map.
std::vector<std::string> byte_spellings() {
    std::vector<std::string> sp(256);
    uint32_t                 next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        sp[b]                = utf8_of(printable ? b : next++);
    }
    return sp;
}

std::string json_str(const std::string & s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::string byte_tokenizer_json(int vocab_size) {
    const auto                               sp = byte_spellings();
    std::vector<std::string>                 vocab;  // id -> spelling (for the BPE model part)
    std::vector<std::pair<int, std::string>> added = {{0, "<｜begin▁of▁sentence｜>"},
                                                      {1, "<｜end▁of▁sentence｜>"},
                                                      {2, "<｜User｜>"},
                                                      {3, "<｜Assistant｜>"},
                                                      {4, "<think>"},
                                                      {5, "</think>"},
                                                      {6, "｜DSML｜"},
                                                      {7, "<｜latest_reminder｜>"},
                                                      {8, "<｜▁pad▁｜>"},
                                                      {9, "<｜action｜>"}};
    std::string                              v     = "{";
    int                                      id    = 16;
    std::string                              merges;
    for (int b = 0; b < 256 && id < vocab_size; ++b, ++id) {
        if (b) v += ',';
        v.append(json_str(sp[static_cast<size_t>(b)])).append(":").append(std::to_string(id));
    }
    const std::string alnum = "etaoinshrdlucmfwypvbgkqjxz0123456789ETAOINSHRDLUCMFWYPVBGKQJXZ";
    for (size_t i = 0; i <= alnum.size() && id < vocab_size; ++i)
        for (size_t j = 0; j < alnum.size() && id < vocab_size; ++j) {
            // i == alnum.size(): the space + character pairs ("Ġe"), the most useful ones.
            const std::string a = i == alnum.size() ? sp[' '] : std::string(1, alnum[i]);
            const std::string b(1, alnum[j]);
            if (!merges.empty()) merges += ',';
            merges.append(json_str(a + " " + b));
            v.append(",").append(json_str(a + b)).append(":").append(std::to_string(id++));
        }
    v += "}";
    const auto entry = [](std::string & out, int tid, const std::string & content, bool special) {
        out.append("{\"id\":").append(std::to_string(tid)).append(",\"content\":");
        out.append(json_str(content));
        out.append(
            ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
            "\"normalized\":false,\"special\":");
        out.append(special ? "true}" : "false}");
    };
    std::string at = "[";
    for (size_t i = 0; i < added.size(); ++i) {
        if (i) at += ',';
        entry(at, added[i].first, added[i].second, added[i].first < 2 || added[i].first == 8);
    }
    for (int u = 10; u < 16 && u < vocab_size; ++u) {
        at += ',';
        entry(at, u, "<｜reserved_" + std::to_string(u) + "｜>", true);
    }
    for (int u = id; u < vocab_size; ++u) {
        at += ',';
        entry(at, u, "<｜unused_" + std::to_string(u) + "｜>", true);
    }
    at += "]";
    return "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":" + at +
           ",\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":"
           "false,\"trim_offsets\":true,\"use_regex\":true},\"post_processor\":null,"
           "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,"
           "\"use_regex\":true},\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
           "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":false,"
           "\"byte_fallback\":false,\"vocab\":" +
           v + ",\"merges\":[" + merges + "]}}";
}

Status write_random_model(const ModelConfig & cfg, const std::string & dir,
                          const MakeModelOptions & opt) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status(Errc::io_error, "cannot create directory '" + dir + "': " + ec.message());

    const std::vector<ExpectedTensor> inv = expected_tensors(cfg);
    // Shard assignment: consecutive tensors until the payload reaches shard_bytes.
    std::vector<int> shard_of(inv.size());
    int              shards = 1;
    uint64_t         fill   = 0;
    for (size_t i = 0; i < inv.size(); ++i) {
        if (fill > 0 && fill + inv[i].bytes() > opt.shard_bytes) ++shards, fill = 0;
        shard_of[i] = shards - 1;
        fill += inv[i].bytes();
    }
    auto shard_name = [&](int s) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", s + 1, shards);
        return std::string(buf);
    };

    std::vector<std::pair<std::string, std::string>> weight_map;
    uint64_t                                         total = 0;
    for (int s = 0; s < shards; ++s) {
        io::SafetensorsWriter w;
        std::vector<size_t>   members;
        for (size_t i = 0; i < inv.size(); ++i) {
            if (shard_of[i] != s) continue;
            const std::optional<io::DType> dt = io::dtype_from_name(inv[i].dtype);
            if (!dt) return Status(Errc::internal, "inventory dtype " + inv[i].dtype);
            w.add_deferred(inv[i].name, *dt, inv[i].shape);
            members.push_back(i);
            weight_map.emplace_back(inv[i].name, shard_name(s));
            total += inv[i].bytes();
        }
        const std::string path = (fs::path(dir) / shard_name(s)).string();
        Status            st   = w.write(path, [&](size_t k, uint8_t * out, uint64_t) -> Status {
            expected_tensor_bytes(cfg, inv[members[k]], opt.seed, out, opt.n_threads);
            return Status();
        });
        if (!st.ok()) return st;
    }
    if (Status st = io::write_index_json((fs::path(dir) / "model.safetensors.index.json").string(),
                                         weight_map, total);
        !st.ok())
        return st;
    const std::string cpath = (fs::path(dir) / "config.json").string();
    std::FILE *       f     = std::fopen(cpath.c_str(), "wb");
    if (!f) return Status(Errc::io_error, "cannot create '" + cpath + "'");
    const std::string text = config_to_json(cfg);
    const bool        ok   = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok) return Status(Errc::io_error, "cannot write '" + cpath + "'");
    if (cfg.vocab_size >= 272) {
        const std::string tpath = (fs::path(dir) / "tokenizer.json").string();
        std::FILE *       tf    = std::fopen(tpath.c_str(), "wb");
        if (!tf) return Status(Errc::io_error, "cannot create '" + tpath + "'");
        const std::string tj  = byte_tokenizer_json(cfg.vocab_size);
        const bool        tok = std::fwrite(tj.data(), 1, tj.size(), tf) == tj.size();
        if (std::fclose(tf) != 0 || !tok)
            return Status(Errc::io_error, "cannot write '" + tpath + "'");
    }
    return Status();
}

}  // namespace dsv4::model
