#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/model_impl.hpp"
#include "api/session_impl.hpp"
#include "model/inventory.hpp"
#include "model/kv_state.hpp"

namespace dsv4 {

namespace fs = std::filesystem;
using detail::ModelImpl;

const char * stop_reason_name(StopReason reason) noexcept {
    switch (reason) {
        case StopReason::eos: return "eos";
        case StopReason::max_tokens: return "max_tokens";
        case StopReason::stop_string: return "stop_string";
        case StopReason::callback: return "callback";
        case StopReason::cancelled: return "cancelled";
        case StopReason::context_full: return "context_full";
    }
    return "unknown";
}

Model::Model(std::shared_ptr<const ModelImpl> impl) : impl_(std::move(impl)) {}
Model::~Model()                                = default;
Model::Model(const Model &)                    = default;
Model::Model(Model &&) noexcept                = default;
Model & Model::operator=(const Model &)        = default;
Model & Model::   operator=(Model &&) noexcept = default;
const ModelInfo & Model::info() const noexcept {
    return impl_->info;
}
const Tokenizer * Model::tokenizer() const noexcept {
    return impl_->tokenizer ? &*impl_->tokenizer : nullptr;
}

Result<Model> Model::load(const std::string & dir, const LoadOptions & opt) {
    auto impl            = std::make_shared<ModelImpl>();
    impl->log            = detail::Logger(opt.log);
    const auto progress  = [&](float f) { return !opt.on_progress || opt.on_progress(f); };
    const auto cancelled = [&](const char * stage) {
        return Status(Errc::cancelled, std::string("loading ") + dir +
                                           ": cancelled by the progress callback " + stage);
    };
    if (opt.n_threads < 0)
        return Status(Errc::invalid_argument,
                      "LoadOptions.n_threads: must be >= 0 (0 = automatic), got " +
                          std::to_string(opt.n_threads));
    if (Status s = check_backend(opt.backend); !s.ok()) return s;
    auto arch = resolve_cpu_arch(opt.cpu_arch);
    if (!arch.ok()) return arch.status();
    if (!progress(0.0f)) return cancelled("at the start");

    const std::string cfg_path = (fs::path(dir) / "config.json").string();
    auto              cfg      = model::load_config(cfg_path);
    if (!cfg.ok()) return cfg.status();
    impl->cfg = std::move(cfg).value();
    if (!progress(0.1f)) return cancelled("after config.json");

    auto store = io::TensorStore::open_dir(dir, opt.weight_load != WeightLoad::read,
                                           opt.weight_load == WeightLoad::automatic);
    if (!store.ok()) return store.status();
    impl->store      = std::move(store).value();
    size_t refreshed = 0;
    for (size_t i = 0; i < impl->store.file_count(); ++i)
        refreshed += impl->store.file(i).cache_refreshed() ? 1 : 0;
    if (refreshed > 0)
        impl->log.info("page cache of " + std::to_string(refreshed) + " of " +
                       std::to_string(impl->store.file_count()) + " safetensors files in " + dir +
                       " was held in small pages: dropped, so that the weights are read back "
                       "in 2 MiB pages (WeightLoad::mmap keeps the cache as it is)");
    if (!progress(0.6f)) return cancelled("after opening the safetensors files");

    auto w = model::bind_weights(impl->cfg, impl->store, impl->log);
    if (!w.ok()) return w.status();
    impl->weights = std::move(w).value();
    if (!progress(0.8f)) return cancelled("after binding the weights");

    const fs::path  tok_path = fs::path(dir) / "tokenizer.json";
    std::error_code ec;
    if (fs::exists(tok_path, ec)) {
        auto tok = Tokenizer::load(tok_path.string());
        if (!tok.ok()) return tok.status();
        impl->tokenizer.emplace(std::move(tok).value());
    } else {
        impl->log.info("no tokenizer.json in " + dir + ": only the token-id APIs are available");
    }

    // Fingerprint: config.json bytes + tensor inventory.
    {
        std::ifstream     f(cfg_path, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        const std::string text = ss.str();
        uint64_t          h    = detail::fnv1a(text.data(), text.size());
        for (const auto & t : impl->store.tensors()) {
            h             = detail::fnv1a(t.name.data(), t.name.size(), h);
            const auto dt = static_cast<uint32_t>(t.dtype);
            h             = detail::fnv1a(&dt, sizeof dt, h);
            h             = detail::fnv1a(t.shape.data(), t.shape.size() * sizeof(t.shape[0]), h);
        }
        impl->fingerprint = h;
    }

    impl->k     = &kernels::kernel_table(*arch);
    int threads = opt.n_threads;
    if (threads == 0)
        threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);
    ModelInfo & info         = impl->info;
    info.path                = dir;
    info.architecture        = "DeepseekV4ForCausalLM";
    info.n_layers            = impl->cfg.n_layers;
    info.n_mtp               = impl->cfg.n_mtp_layers;
    info.dim                 = impl->cfg.dim;
    info.vocab_size          = impl->cfg.vocab_size;
    info.max_context         = impl->cfg.max_position_embeddings;
    info.n_routed_experts    = impl->cfg.n_routed_experts;
    info.n_activated_experts = impl->cfg.n_activated_experts;
    info.cpu_arch            = *arch;
    info.n_threads           = threads;
    info.weight_bytes        = model::payload_bytes(model::expected_tensors(impl->cfg));
    info.weights_mapped      = opt.weight_load != WeightLoad::read;
    info.has_tokenizer       = impl->tokenizer.has_value();
    info.kv_bytes_per_token  = model::kv_cache_bytes_per_token(impl->cfg);
    if (!progress(1.0f)) return cancelled("at the end");
    return Model(std::move(impl));
}

uint64_t Model::session_bytes(const SessionOptions & o) const noexcept {
    return detail::SessionImpl::bytes(*impl_, o);
}
uint64_t Model::session_bytes(int64_t n_ctx) const noexcept {
    SessionOptions o;
    o.n_ctx = n_ctx;
    return session_bytes(o);
}

Result<Session> Model::new_session(const SessionOptions & options) const {
    auto s = detail::SessionImpl::create(*this, impl_, options);
    if (!s.ok()) return s.status();
    return Session(std::move(s).value());
}

}  // namespace dsv4
