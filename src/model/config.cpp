// config.json -> ModelConfig: typed reads with messages that name the key and the offending
// value, ModelArgs defaults for absent optional keys, then the envelope checks documented in
// config.hpp. Uses simdjson's DOM API with error codes only (nothing here throws).
#include "model/config.hpp"

#include <simdjson.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <utility>

namespace dsv4::model {

const char * score_func_name(ScoreFunc f) noexcept {
    switch (f) {
        case ScoreFunc::sqrtsoftplus: return "sqrtsoftplus";
        case ScoreFunc::softmax: return "softmax";
        case ScoreFunc::sigmoid: return "sigmoid";
    }
    return "unknown";
}

const char * expert_dtype_name(ExpertDtype d) noexcept {
    switch (d) {
        case ExpertDtype::none: return "none";
        case ExpertDtype::fp4: return "fp4";
        case ExpertDtype::fp8: return "fp8";
    }
    return "unknown";
}

const char * attn_kind_name(AttnKind k) noexcept {
    switch (k) {
        case AttnKind::swa: return "swa";
        case AttnKind::csa: return "csa";
        case AttnKind::hca: return "hca";
    }
    return "unknown";
}

AttnKind attn_kind_for_ratio(int ratio) noexcept {
    if (ratio == 4) {
        return AttnKind::csa;
    }
    if (ratio == 0) {
        return AttnKind::swa;
    }
    return AttnKind::hca;
}

double ModelConfig::softmax_scale() const {
    return 1.0 / std::sqrt(static_cast<double>(head_dim));
}

double ModelConfig::indexer_scale() const {
    return 1.0 / std::sqrt(static_cast<double>(index_head_dim)) /
           std::sqrt(static_cast<double>(index_n_heads));
}

bool ModelConfig::has_csa() const {
    for (int r : compress_ratios) {
        if (r == 4) {
            return true;
        }
    }
    return false;
}

RopeParams ModelConfig::rope(int id) const {
    RopeParams p;
    p.rope_head_dim = rope_head_dim;
    if (ratio(id) != 0) {
        p.base = compress_rope_theta;
        p.yarn = original_seq_len > 0;
    } else {
        p.base = rope_theta;
        p.yarn = false;
    }
    if (p.yarn) {
        p.factor           = rope_factor;
        p.original_seq_len = original_seq_len;
        p.beta_fast        = beta_fast;
        p.beta_slow        = beta_slow;
    }
    return p;
}

LayerDesc ModelConfig::layer(int id) const {
    LayerDesc d;
    d.id    = id;
    d.ratio = ratio(id);
    d.kind  = attn_kind_for_ratio(d.ratio);
    d.hash  = is_hash_layer(id);
    d.mtp   = is_mtp(id);
    if (d.mtp) {
        d.mtp_index = id - n_layers;
        d.prefix    = "mtp." + std::to_string(d.mtp_index) + ".";
    } else {
        d.prefix = "layers." + std::to_string(id) + ".";
    }
    d.rope = rope(id);
    return d;
}

std::vector<LayerDesc> ModelConfig::layers() const {
    std::vector<LayerDesc> out;
    out.reserve(static_cast<size_t>(n_blocks()));
    for (int id = 0; id < n_blocks(); ++id) {
        out.push_back(layer(id));
    }
    return out;
}

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

#define DSV4_CFG_TRY(expr)           \
    do {                             \
        ::dsv4::Status st_ = (expr); \
        if (!st_.ok()) {             \
            return st_;              \
        }                            \
    } while (0)

// A JSON value as it appeared (minified), shortened so a hostile file cannot flood a message.
std::string render(const element & v) {
    std::string      s    = simdjson::minify(v);
    constexpr size_t kMax = 64;
    if (s.size() > kMax) {
        s.resize(kMax - 3);
        s += "...";
    }
    return s;
}

// A string from the file, quoted, with control bytes escaped and the length capped.
std::string quote_str(std::string_view s) {
    constexpr size_t kMax = 60;
    std::string      out  = "\"";
    for (size_t i = 0; i < s.size() && i < kMax; ++i) {
        const auto ch = static_cast<unsigned char>(s[i]);
        if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", ch);
            out += buf;
        } else {
            out += static_cast<char>(ch);
        }
    }
    if (s.size() > kMax) {
        out += "...";
    }
    return out + "\"";
}

enum class Domain { positive, non_negative };

// Reads keys of one JSON object; `prefix` ("rope_scaling." etc.) qualifies key names.
class Reader {
  public:
    Reader(std::string_view src, object obj, std::string prefix = {})
        : src_(src), obj_(obj), prefix_(std::move(prefix)) {}

    std::string name(std::string_view key) const { return prefix_ + std::string(key); }

    Status invalid(std::string_view key, std::string_view expected, const element & v) const {
        return Status(Errc::invalid_model, std::string(src_) + ": key '" + name(key) +
                                               "': expected " + std::string(expected) + ", got " +
                                               render(v));
    }
    Status invalid_msg(std::string_view key, const std::string & msg) const {
        return Status(Errc::invalid_model, std::string(src_) + ": key '" + name(key) + "': " + msg);
    }
    Status unsupported(std::string_view key, const std::string & msg) const {
        return Status(Errc::unsupported_model,
                      std::string(src_) + ": key '" + name(key) + "': " + msg);
    }
    Status missing(std::string_view key) const {
        return Status(Errc::invalid_model,
                      std::string(src_) + ": missing required key '" + name(key) + "'");
    }

    // The value of `key`, or nullopt when absent or null.
    std::optional<element> find(std::string_view key) const {
        element v;
        if (obj_.at_key(key).get(v) != simdjson::SUCCESS || v.is_null()) {
            return std::nullopt;
        }
        return v;
    }

    // Integer in [lo, hi_envelope]; below lo (or not an integer) is invalid_model, above the
    // envelope cap unsupported_model. Absent/null keeps `out` unless required.
    template <class Int>
    Status get_int(std::string_view key, Int & out, bool required, Domain dom, int64_t cap) const {
        const auto found = find(key);
        if (!found) {
            return required ? missing(key) : Status();
        }
        return int_value(key, *found, out, dom, cap);
    }

    template <class Int>
    Status int_value(std::string_view key, const element & v, Int & out, Domain dom,
                     int64_t cap) const {
        const char * expected =
            dom == Domain::positive ? "a positive integer" : "a non-negative integer";
        if (v.type() == element_type::UINT64) {
            return unsupported(key,
                               render(v) + " exceeds the supported maximum " + std::to_string(cap));
        }
        int64_t x = 0;
        if (v.type() != element_type::INT64 || v.get_int64().get(x) != simdjson::SUCCESS) {
            return invalid(key, expected, v);
        }
        if (x < (dom == Domain::positive ? 1 : 0)) {
            return invalid(key, expected, v);
        }
        if (x > cap) {
            return unsupported(
                key, std::to_string(x) + " exceeds the supported maximum " + std::to_string(cap));
        }
        out = static_cast<Int>(x);
        return Status();
    }

    // Number (integer or float), finite, > min_exclusive (or >= 0 for non_negative).
    Status get_float(std::string_view key, double & out, Domain dom,
                     double min_exclusive = 0.0) const {
        const auto found = find(key);
        if (!found) {
            return Status();
        }
        const element & v  = *found;
        double          x  = 0.0;
        bool            ok = false;
        if (v.type() == element_type::INT64) {
            int64_t i = 0;
            ok        = v.get_int64().get(i) == simdjson::SUCCESS;
            x         = static_cast<double>(i);
        } else if (v.type() == element_type::UINT64) {
            uint64_t u = 0;
            ok         = v.get_uint64().get(u) == simdjson::SUCCESS;
            x          = static_cast<double>(u);
        } else if (v.type() == element_type::DOUBLE) {
            ok = v.get_double().get(x) == simdjson::SUCCESS;
        }
        if (!ok) {
            return invalid(key, "a number", v);
        }
        if (!std::isfinite(x)) {
            return invalid(key, "a finite number", v);
        }
        if (dom == Domain::positive && !(x > min_exclusive)) {
            return invalid(key,
                           min_exclusive == 0.0
                               ? std::string("a positive number")
                               : "a number greater than " + render_double(min_exclusive),
                           v);
        }
        if (dom == Domain::non_negative && x < 0.0) {
            return invalid(key, "a non-negative number", v);
        }
        out = x;
        return Status();
    }

    // String value; absent/null leaves `out` empty and `present` false.
    Status get_string(std::string_view key, std::string & out, bool & present) const {
        present          = false;
        const auto found = find(key);
        if (!found) {
            return Status();
        }
        std::string_view s;
        if (found->get_string().get(s) != simdjson::SUCCESS) {
            return invalid(key, "a string", *found);
        }
        out     = std::string(s);
        present = true;
        return Status();
    }

    // Optional string that must equal `want` when present.
    Status expect_string(std::string_view key, std::string_view want, std::string * out,
                         bool & present) const {
        std::string s;
        DSV4_CFG_TRY(get_string(key, s, present));
        if (present && s != want) {
            return unsupported(
                key, "only \"" + std::string(want) + "\" is supported, got " + quote_str(s));
        }
        if (present && out != nullptr) {
            *out = s;
        }
        return Status();
    }

    Status get_bool(std::string_view key, bool & out, bool & present) const {
        present          = false;
        const auto found = find(key);
        if (!found) {
            return Status();
        }
        if (found->get_bool().get(out) != simdjson::SUCCESS) {
            return invalid(key, "true or false", *found);
        }
        present = true;
        return Status();
    }

    // Sub-object reader for `key`; absent/null gives nullopt; a non-object is an error.
    Status get_object(std::string_view key, std::optional<Reader> & out) const {
        out              = std::nullopt;
        const auto found = find(key);
        if (!found) {
            return Status();
        }
        object o;
        if (found->get_object().get(o) != simdjson::SUCCESS) {
            return invalid(key, "an object", *found);
        }
        out.emplace(src_, o, name(key) + ".");
        return Status();
    }

    static std::string render_double(double x) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", x);
        return buf;
    }

    std::string_view src() const { return src_; }

  private:
    std::string_view src_;
    object           obj_;
    std::string      prefix_;
};

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxSeq   = int64_t{1} << 40;

Status read_compress_ratios(const Reader & r, ModelConfig & c) {
    const auto found = r.find("compress_ratios");
    if (!found) {
        return r.missing("compress_ratios");
    }
    simdjson::dom::array arr;
    if (found->get_array().get(arr) != simdjson::SUCCESS) {
        return r.invalid("compress_ratios", "an array of integers", *found);
    }
    if (arr.size() > static_cast<size_t>(kMaxLayers + kMaxMtpLayers)) {
        return r.unsupported("compress_ratios", std::to_string(arr.size()) +
                                                    " entries exceed the supported maximum " +
                                                    std::to_string(kMaxLayers + kMaxMtpLayers));
    }
    c.compress_ratios.clear();
    size_t i = 0;
    for (element v : arr) {
        const std::string key = "compress_ratios[" + std::to_string(i) + "]";
        int               x   = 0;
        DSV4_CFG_TRY(r.int_value(key, v, x, Domain::non_negative, kInt32Max));
        if (x != 0 && x != 4 && x != 128) {
            return r.unsupported(key,
                                 "compress ratio must be 0, 4 or 128, got " + std::to_string(x));
        }
        c.compress_ratios.push_back(x);
        ++i;
    }
    return Status();
}

Status read_eos(const Reader & r, ModelConfig & c) {
    const auto found = r.find("eos_token_id");
    if (!found) {
        return Status();
    }
    c.eos_token_ids.clear();
    simdjson::dom::array arr;
    if (found->get_array().get(arr) == simdjson::SUCCESS) {
        size_t i = 0;
        for (element v : arr) {
            int id = 0;
            DSV4_CFG_TRY(r.int_value("eos_token_id[" + std::to_string(i) + "]", v, id,
                                     Domain::non_negative, kInt32Max));
            c.eos_token_ids.push_back(id);
            ++i;
        }
        if (c.eos_token_ids.empty()) {
            return r.invalid("eos_token_id", "an integer or a non-empty list of integers", *found);
        }
        return Status();
    }
    int id = 0;
    DSV4_CFG_TRY(r.int_value("eos_token_id", *found, id, Domain::non_negative, kInt32Max));
    c.eos_token_ids.push_back(id);
    return Status();
}

Status read_quantization(const Reader & r, ModelConfig & c) {
    std::optional<Reader> q;
    DSV4_CFG_TRY(r.get_object("quantization_config", q));
    if (!q) {
        return Status();
    }
    QuantizationConfig & qc = c.quantization;
    qc.present              = true;
    bool present            = false;
    DSV4_CFG_TRY(q->expect_string("quant_method", "fp8", &qc.quant_method, present));
    if (!present) {
        return q->missing("quant_method");
    }
    DSV4_CFG_TRY(q->expect_string("fmt", "e4m3", &qc.fmt, present));
    DSV4_CFG_TRY(q->expect_string("scale_fmt", "ue8m0", &qc.scale_fmt, present));
    DSV4_CFG_TRY(q->expect_string("activation_scheme", "dynamic", &qc.activation_scheme, present));
    if (const auto wbs = q->find("weight_block_size")) {
        simdjson::dom::array arr;
        if (wbs->get_array().get(arr) != simdjson::SUCCESS || arr.size() != 2) {
            return q->invalid("weight_block_size", "an array of two integers", *wbs);
        }
        int    dims[2] = {0, 0};
        size_t i       = 0;
        for (element v : arr) {
            DSV4_CFG_TRY(q->int_value("weight_block_size[" + std::to_string(i) + "]", v, dims[i],
                                      Domain::positive, kInt32Max));
            ++i;
        }
        if (dims[0] != kFp8WeightBlock || dims[1] != kFp8WeightBlock) {
            return q->unsupported("weight_block_size",
                                  "only [128, 128] is supported, got " + render(*wbs));
        }
        qc.weight_block_out = dims[0];
        qc.weight_block_in  = dims[1];
    }
    return Status();
}

Status read_rope_scaling(const Reader & r, ModelConfig & c) {
    std::optional<Reader> rs;
    DSV4_CFG_TRY(r.get_object("rope_scaling", rs));
    if (!rs) {
        return Status();  // no YaRN: original_seq_len stays 0
    }
    bool present = false;
    // HF writes the kind as "type" (older) or "rope_type" (newer); V4 uses YaRN.
    DSV4_CFG_TRY(rs->expect_string("type", "yarn", nullptr, present));
    DSV4_CFG_TRY(rs->expect_string("rope_type", "yarn", nullptr, present));
    DSV4_CFG_TRY(rs->get_int("original_max_position_embeddings", c.original_seq_len, false,
                             Domain::non_negative, kMaxSeq));
    DSV4_CFG_TRY(rs->get_float("factor", c.rope_factor, Domain::positive));
    DSV4_CFG_TRY(rs->get_float("beta_fast", c.beta_fast, Domain::positive));
    DSV4_CFG_TRY(rs->get_float("beta_slow", c.beta_slow, Domain::positive));
    // V4 applies no attention mscale; "mscale"/"mscale_all_dim", if present, are ignored.
    return Status();
}

Status read_fields(const Reader & r, ModelConfig & c) {
    constexpr bool kReq = true;
    constexpr bool kOpt = false;
    const auto     pos  = Domain::positive;
    const auto     nn   = Domain::non_negative;

    bool present = false;
    DSV4_CFG_TRY(r.expect_string("model_type", "deepseek_v4", &c.model_type, present));

    // Shapes (required).
    DSV4_CFG_TRY(r.get_int("vocab_size", c.vocab_size, kReq, pos, kMaxVocab));
    DSV4_CFG_TRY(r.get_int("hidden_size", c.dim, kReq, pos, kMaxDim));
    DSV4_CFG_TRY(r.get_int("moe_intermediate_size", c.moe_inter_dim, kReq, pos, kMaxDim));
    DSV4_CFG_TRY(r.get_int("num_hidden_layers", c.n_layers, kReq, pos, kMaxLayers));
    DSV4_CFG_TRY(r.get_int("num_hash_layers", c.n_hash_layers, kReq, nn, kMaxLayers));
    DSV4_CFG_TRY(r.get_int("num_attention_heads", c.n_heads, kReq, pos, kMaxHeads));
    DSV4_CFG_TRY(r.get_int("n_routed_experts", c.n_routed_experts, kReq, pos, kMaxExperts));
    DSV4_CFG_TRY(r.get_int("num_experts_per_tok", c.n_activated_experts, kReq, pos, kMaxExperts));
    DSV4_CFG_TRY(r.get_int("q_lora_rank", c.q_lora_rank, kReq, pos, kMaxDim));
    DSV4_CFG_TRY(r.get_int("head_dim", c.head_dim, kReq, pos, kMaxHeadDim));
    DSV4_CFG_TRY(r.get_int("o_groups", c.o_groups, kReq, pos, kMaxHeads));
    DSV4_CFG_TRY(r.get_int("o_lora_rank", c.o_lora_rank, kReq, pos, kMaxDim));
    DSV4_CFG_TRY(read_compress_ratios(r, c));

    // Architecture constants with ModelArgs defaults.
    DSV4_CFG_TRY(r.get_int("num_nextn_predict_layers", c.n_mtp_layers, kOpt, nn, kMaxMtpLayers));
    DSV4_CFG_TRY(r.get_int("n_shared_experts", c.n_shared_experts, kOpt, nn, kInt32Max));
    DSV4_CFG_TRY(r.get_int("qk_rope_head_dim", c.rope_head_dim, kOpt, pos, kMaxHeadDim));
    DSV4_CFG_TRY(r.get_int("sliding_window", c.window_size, kOpt, pos, kMaxWindow));
    DSV4_CFG_TRY(r.get_int("index_n_heads", c.index_n_heads, kOpt, pos, kMaxHeads));
    DSV4_CFG_TRY(r.get_int("index_head_dim", c.index_head_dim, kOpt, pos, kMaxHeadDim));
    DSV4_CFG_TRY(r.get_int("index_topk", c.index_topk, kOpt, pos, kInt32Max));
    DSV4_CFG_TRY(r.get_int("hc_mult", c.hc_mult, kOpt, pos, kMaxHcMult));
    DSV4_CFG_TRY(r.get_int("hc_sinkhorn_iters", c.hc_sinkhorn_iters, kOpt, pos, kMaxSinkhornIters));
    DSV4_CFG_TRY(r.get_float("hc_eps", c.hc_eps, nn));
    DSV4_CFG_TRY(r.get_float("rms_norm_eps", c.norm_eps, pos));
    DSV4_CFG_TRY(r.get_float("routed_scaling_factor", c.route_scale, pos));
    DSV4_CFG_TRY(r.get_float("swiglu_limit", c.swiglu_limit, nn));
    // Bases must exceed 1: YaRN's correction range divides by ln(base).
    DSV4_CFG_TRY(r.get_float("rope_theta", c.rope_theta, pos, 1.0));
    DSV4_CFG_TRY(r.get_float("compress_rope_theta", c.compress_rope_theta, pos, 1.0));
    DSV4_CFG_TRY(read_rope_scaling(r, c));

    std::string s;
    DSV4_CFG_TRY(r.get_string("scoring_func", s, present));
    if (present) {
        if (s == "sqrtsoftplus") {
            c.score_func = ScoreFunc::sqrtsoftplus;
        } else if (s == "softmax") {
            c.score_func = ScoreFunc::softmax;
        } else if (s == "sigmoid") {
            c.score_func = ScoreFunc::sigmoid;
        } else {
            return r.unsupported(
                "scoring_func",
                "expected \"sqrtsoftplus\", \"softmax\" or \"sigmoid\", got " + quote_str(s));
        }
    }
    DSV4_CFG_TRY(r.get_string("expert_dtype", s, present));
    if (present) {
        if (s == "fp4") {
            c.expert_dtype = ExpertDtype::fp4;
        } else if (s == "fp8") {
            // A re-encoded FP8-expert checkpoint has another inventory and GEMM path.
            return r.unsupported(
                "expert_dtype", "FP8 routed experts are not supported (only \"fp4\"), got \"fp8\"");
        } else {
            return r.unsupported("expert_dtype", "only \"fp4\" is supported, got " + quote_str(s));
        }
    }
    DSV4_CFG_TRY(read_quantization(r, c));

    // HF-only keys.
    DSV4_CFG_TRY(
        r.get_int("max_position_embeddings", c.max_position_embeddings, kOpt, pos, kMaxSeq));
    DSV4_CFG_TRY(r.get_int("bos_token_id", c.bos_token_id, kOpt, nn, kInt32Max));
    DSV4_CFG_TRY(read_eos(r, c));

    // HF-only keys that describe semantics the engine hard-wires; reject other values.
    int kv_heads = 1;
    DSV4_CFG_TRY(r.get_int("num_key_value_heads", kv_heads, kOpt, pos, kInt32Max));
    if (kv_heads != 1) {
        return r.unsupported(
            "num_key_value_heads",
            "only 1 (a single shared KV head) is supported, got " + std::to_string(kv_heads));
    }
    DSV4_CFG_TRY(r.expect_string("hidden_act", "silu", nullptr, present));
    bool flag = false;
    DSV4_CFG_TRY(r.get_bool("tie_word_embeddings", flag, present));
    if (present && flag) {
        return r.unsupported(
            "tie_word_embeddings",
            "tied embeddings are not supported (V4 has a separate head), got true");
    }
    DSV4_CFG_TRY(r.get_bool("attention_bias", flag, present));
    if (present && flag) {
        return r.unsupported("attention_bias", "attention biases are not supported, got true");
    }
    return Status();
}

std::string multiple_msg(int64_t value, int block, const char * why) {
    return std::to_string(value) + " is not a multiple of " + std::to_string(block) + " (" + why +
           ")";
}

// Cross-field checks; read_fields has already enforced each value's own domain and caps.
Status validate(const Reader & r, const ModelConfig & c) {
    const std::string src(r.src());
    const int         n_blocks = c.n_blocks();
    if (c.compress_ratios.size() != static_cast<size_t>(n_blocks)) {
        return Status(Errc::invalid_model,
                      src + ": key 'compress_ratios': expected " + std::to_string(n_blocks) +
                          " entries (num_hidden_layers " + std::to_string(c.n_layers) +
                          " + num_nextn_predict_layers " + std::to_string(c.n_mtp_layers) +
                          "), got " + std::to_string(c.compress_ratios.size()));
    }
    for (int j = 0; j < c.n_mtp_layers; ++j) {
        const int id = c.n_layers + j;
        if (c.ratio(id) != 0) {
            return r.unsupported(
                "compress_ratios[" + std::to_string(id) + "]",
                "the MTP block must be window-only (0), got " + std::to_string(c.ratio(id)));
        }
    }
    if (c.n_hash_layers > c.n_layers) {
        return r.invalid_msg("num_hash_layers", std::to_string(c.n_hash_layers) +
                                                    " exceeds num_hidden_layers " +
                                                    std::to_string(c.n_layers));
    }
    if (c.n_shared_experts != 1) {
        return r.unsupported("n_shared_experts", "exactly 1 shared expert is supported, got " +
                                                     std::to_string(c.n_shared_experts));
    }
    if (c.n_activated_experts > c.n_routed_experts) {
        return r.invalid_msg("num_experts_per_tok", std::to_string(c.n_activated_experts) +
                                                        " exceeds n_routed_experts " +
                                                        std::to_string(c.n_routed_experts));
    }
    if (c.n_heads % c.o_groups != 0) {
        return r.invalid_msg("o_groups", std::to_string(c.o_groups) +
                                             " does not divide num_attention_heads " +
                                             std::to_string(c.n_heads));
    }
    if (c.rope_head_dim % 2 != 0) {
        return r.invalid_msg("qk_rope_head_dim",
                             "must be even (rotary pairs), got " + std::to_string(c.rope_head_dim));
    }
    if (c.rope_head_dim > c.head_dim) {
        return r.invalid_msg(
            "qk_rope_head_dim",
            std::to_string(c.rope_head_dim) + " exceeds head_dim " + std::to_string(c.head_dim));
    }
    if (c.nope_dim() % kKvSimBlock != 0) {
        return r.unsupported(
            "head_dim", "head_dim " + std::to_string(c.head_dim) + " - qk_rope_head_dim " +
                            std::to_string(c.rope_head_dim) + " = " +
                            multiple_msg(c.nope_dim(), kKvSimBlock, "KV FP8 simulation block"));
    }
    if (c.has_csa()) {
        // The indexer rotates q and keys with a Hadamard transform over index_head_dim (the
        // reference's rotate_activation: x.size(-1), zero-padded to a power of two by
        // fast_hadamard_transform when it is not one; V4 uses 128) and simulates FP4 over them
        // in blocks of 32.
        if (c.index_head_dim % kFp4Block != 0) {
            return r.unsupported("index_head_dim",
                                 multiple_msg(c.index_head_dim, kFp4Block, "indexer FP4 block"));
        }
        if (c.rope_head_dim > c.index_head_dim) {
            return r.invalid_msg("qk_rope_head_dim", std::to_string(c.rope_head_dim) +
                                                         " exceeds index_head_dim " +
                                                         std::to_string(c.index_head_dim));
        }
    }
    // Every lin8/lin4 input is activation-quantised in blocks of 128 along K (spec §4.1/4.2):
    // hidden (wq_a, wkv, shared/routed w1/w3, MTP e_proj/h_proj), q_lora_rank (wq_b, indexer
    // wq_b), o_groups*o_lora_rank (wo_b) and moe_intermediate_size (w2). 128 | K also gives the
    // FP4 scale block 32 on the expert inputs. wo_a's input is not activation-quantised.
    const char * act = "FP8 activation block";
    if (c.dim % kActBlock != 0) {
        return r.unsupported("hidden_size", multiple_msg(c.dim, kActBlock, act));
    }
    if (c.q_lora_rank % kActBlock != 0) {
        return r.unsupported("q_lora_rank", multiple_msg(c.q_lora_rank, kActBlock, act));
    }
    if (c.moe_inter_dim % kActBlock != 0) {
        return r.unsupported("moe_intermediate_size",
                             multiple_msg(c.moe_inter_dim, kActBlock, act));
    }
    if (c.wo_a_out() % kActBlock != 0) {
        return r.unsupported("o_lora_rank", "o_groups " + std::to_string(c.o_groups) +
                                                " x o_lora_rank " + std::to_string(c.o_lora_rank) +
                                                " = " + multiple_msg(c.wo_a_out(), kActBlock, act));
    }
    if (c.bos_token_id >= c.vocab_size) {
        return r.invalid_msg("bos_token_id", std::to_string(c.bos_token_id) +
                                                 " is not below vocab_size " +
                                                 std::to_string(c.vocab_size));
    }
    for (int id : c.eos_token_ids) {
        if (id >= c.vocab_size) {
            return r.invalid_msg("eos_token_id", std::to_string(id) + " is not below vocab_size " +
                                                     std::to_string(c.vocab_size));
        }
    }
    return Status();
}

Result<ModelConfig> parse_padded(const simdjson::padded_string & text, std::string_view src) {
    simdjson::dom::parser parser;
    element               root;
    if (const auto err = parser.parse(text).get(root); err != simdjson::SUCCESS) {
        return Status(Errc::invalid_model,
                      std::string(src) + ": malformed JSON (" + simdjson::error_message(err) + ")");
    }
    object obj;
    if (root.get_object().get(obj) != simdjson::SUCCESS) {
        return Status(
            Errc::invalid_model,
            std::string(src) + ": expected a JSON object at top level, got " + render(root));
    }
    const Reader r(src, obj);
    ModelConfig  c;
    DSV4_CFG_TRY(read_fields(r, c));
    DSV4_CFG_TRY(validate(r, c));
    return c;
}

#undef DSV4_CFG_TRY

}  // namespace

Result<ModelConfig> parse_config(std::string_view json_text, std::string_view source_name) {
    const simdjson::padded_string text(json_text.data(), json_text.size());
    return parse_padded(text, source_name);
}

Result<ModelConfig> load_config(const std::string & path) {
    std::FILE * f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return Status(Errc::file_not_found, "cannot open config file '" + path + "'");
    }
    std::string data;
    char        buf[1 << 14];
    bool        failed = false;
    for (;;) {
        const size_t n = std::fread(buf, 1, sizeof buf, f);
        data.append(buf, n);
        if (n < sizeof buf) {
            failed = std::ferror(f) != 0;
            break;
        }
        if (data.size() > (size_t{64} << 20)) {
            std::fclose(f);
            return Status(Errc::invalid_model,
                          "config file '" + path + "' is larger than 64 MiB; not a config.json");
        }
    }
    std::fclose(f);
    if (failed) {
        return Status(Errc::io_error, "cannot read config file '" + path + "'");
    }
    return parse_config(data, path);
}

}  // namespace dsv4::model
