#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "api/cancel_probe.hpp"
#include "api/session_impl.hpp"

namespace dsv4 {

namespace detail {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Rejects a second concurrent call on one Session (Errc::busy) instead of corrupting it.
class BusyGuard {
  public:
    explicit BusyGuard(std::atomic<bool> & b) : b_(b) {
        bool expected = false;
        owned_        = b_.compare_exchange_strong(expected, true, std::memory_order_acquire);
    }
    ~BusyGuard() {
        if (owned_) b_.store(false, std::memory_order_release);
    }
    BusyGuard(const BusyGuard &)             = delete;
    BusyGuard & operator=(const BusyGuard &) = delete;
    bool        owned() const { return owned_; }

  private:
    std::atomic<bool> & b_;
    bool                owned_ = false;
};

Status busy_error() {
    return Status(Errc::busy,
                  "Session: another call is running on this session (a Session serves "
                  "one call at a time; create one Session per thread)");
}

std::string fmtf(const char * field, const char * rule, double got) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", got);
    return std::string("GenerateOptions.") + field + ": " + rule + ", got " + buf;
}

Status validate(const GenerateOptions & o) {
    const SamplingParams & s = o.sampling;
    if (o.max_tokens < 0)
        return Status(Errc::invalid_argument, fmtf("max_tokens", "must be >= 0", o.max_tokens));
    if (!(s.temperature >= 0.0f) || !std::isfinite(s.temperature))
        return Status(Errc::invalid_argument,
                      fmtf("sampling.temperature", "must be finite and >= 0", s.temperature));
    if (s.top_k < 0)
        return Status(Errc::invalid_argument, fmtf("sampling.top_k", "must be >= 0", s.top_k));
    if (!(s.top_p > 0.0f && s.top_p <= 1.0f))
        return Status(Errc::invalid_argument, fmtf("sampling.top_p", "must be in (0, 1]", s.top_p));
    if (!(s.min_p >= 0.0f && s.min_p <= 1.0f))
        return Status(Errc::invalid_argument, fmtf("sampling.min_p", "must be in [0, 1]", s.min_p));
    if (!(s.repetition_penalty > 0.0f) || !std::isfinite(s.repetition_penalty))
        return Status(Errc::invalid_argument, fmtf("sampling.repetition_penalty",
                                                   "must be finite and > 0", s.repetition_penalty));
    for (size_t i = 0; i < o.stop_strings.size(); ++i)
        if (o.stop_strings[i].empty())
            return Status(Errc::invalid_argument,
                          "GenerateOptions.stop_strings[" + std::to_string(i) + "]: empty string");
    return {};
}

// Length of the longest suffix of `text` that is a proper prefix of some stop string.
size_t held_suffix(const std::string & text, const std::vector<std::string> & stops) {
    size_t best = 0;
    for (const auto & s : stops)
        for (size_t len = std::min(text.size(), s.size() - 1); len > best; --len)
            if (text.compare(text.size() - len, len, s, 0, len) == 0) {
                best = len;
                break;
            }
    return best;
}

}  // namespace

SessionImpl::SessionImpl(Model mdl, std::shared_ptr<const ModelImpl> impl, const SessionOptions & o,
                         model::KvState k, model::Workspace w, model::KvCheckpoint u,
                         model::KvCheckpoint m0, model::KvCheckpoint m1)
    : model(std::move(mdl)),
      m(std::move(impl)),
      opt(o),
      kv(std::move(k)),
      ws(std::move(w)),
      undo(std::move(u)),
      marks{std::move(m0), std::move(m1)},
      logits(static_cast<size_t>(m->cfg.vocab_size)),
      sampler(m->cfg.vocab_size, m->k ? m->k->sum_exp : nullptr) {
    history.reserve(static_cast<size_t>(o.n_ctx));
    held.reserve(256);
}

uint64_t SessionImpl::bytes(const ModelImpl & m, const SessionOptions & o) {
    const uint64_t V     = static_cast<uint64_t>(m.cfg.vocab_size);
    const int64_t  batch = std::max<int64_t>(1, o.max_batch);
    return model::KvState::bytes(m.cfg, o.n_ctx) + model::Workspace::bytes(m.cfg, batch, o.n_ctx) +
           model::KvCheckpoint::bytes(m.cfg, batch) /*undo journal*/ +
           2 * model::KvCheckpoint::bytes(m.cfg, model::KvCheckpoint::kWhole) /*marks*/ +
           V * (4 /*logits*/ + 4 + 4 + 4 + 1 /*sampler*/) + uint64_t(o.n_ctx) * 4 /*history*/;
}

Result<std::unique_ptr<SessionImpl>> SessionImpl::create(const Model &                    mdl,
                                                         std::shared_ptr<const ModelImpl> impl,
                                                         const SessionOptions &           o) {
    if (o.n_ctx < 1)
        return Status(Errc::invalid_argument,
                      "SessionOptions.n_ctx: must be >= 1, got " + std::to_string(o.n_ctx));
    if (o.max_batch < 1)
        return Status(Errc::invalid_argument,
                      "SessionOptions.max_batch: must be >= 1, got " + std::to_string(o.max_batch));
    if (impl->cfg.max_position_embeddings > 0 && o.n_ctx > impl->cfg.max_position_embeddings)
        return Status(Errc::invalid_argument,
                      "SessionOptions.n_ctx: " + std::to_string(o.n_ctx) +
                          " exceeds the model's max_position_embeddings " +
                          std::to_string(impl->cfg.max_position_embeddings));
    auto kv = model::KvState::create(impl->cfg, o.n_ctx);
    if (!kv.ok()) return kv.status();
    auto ws = model::Workspace::create(impl->cfg, o.max_batch, o.n_ctx);
    if (!ws.ok()) return ws.status();
    auto undo = model::KvCheckpoint::create(impl->cfg, o.max_batch);
    if (!undo.ok()) return undo.status();
    auto m0 = model::KvCheckpoint::create(impl->cfg, model::KvCheckpoint::kWhole);
    if (!m0.ok()) return m0.status();
    auto m1 = model::KvCheckpoint::create(impl->cfg, model::KvCheckpoint::kWhole);
    if (!m1.ok()) return m1.status();
    return std::make_unique<SessionImpl>(mdl, std::move(impl), o, std::move(kv).value(),
                                         std::move(ws).value(), std::move(undo).value(),
                                         std::move(m0).value(), std::move(m1).value());
}

void SessionImpl::clear() {
    kv.reset();
    history.clear();
    logits_valid = false;
    sampler.forget_all();
    undo.invalidate();
    for (model::KvCheckpoint & mk : marks) mk.invalidate();
}

int64_t SessionImpl::rewind(int64_t target) {
    const int64_t n = static_cast<int64_t>(history.size());
    if (target >= n) return n;
    // The latest restorable position <= target. Every valid copy describes the current
    // sequence: marks past a cut are dropped below, and the undo journal only lives until the
    // next state change.
    model::KvCheckpoint * best = nullptr;
    for (model::KvCheckpoint * c : {&undo, &marks[0], &marks[1]})
        if (c->valid() && c->pos() > 0 && c->pos() <= target && (!best || c->pos() > best->pos()))
            best = c;
    if (best == nullptr) {
        clear();
        return 0;
    }
    const int64_t p = best->pos();
    best->restore(kv);
    undo.invalidate();  // it took back a call on the state before this restore
    for (model::KvCheckpoint & mk : marks)
        if (mk.valid() && mk.pos() > p) mk.invalidate();
    history.resize(static_cast<size_t>(p));
    logits_valid = false;
    sampler.forget_all();
    for (int32_t t : history) sampler.see(t);
    return p;
}

Status SessionImpl::truncate(int64_t n) {
    const int64_t have = static_cast<int64_t>(history.size());
    if (n < 0 || n > have)
        return Status(Errc::invalid_argument,
                      "truncate: n must be in [0, n_past = " + std::to_string(have) + "], got " +
                          std::to_string(n));
    if (n == have) return {};
    const std::vector<int32_t> keep(history.begin(), history.begin() + n);
    const int64_t              at = rewind(n);
    return at < n ? run(keep.data() + at, n - at, nullptr, nullptr, 0, 0) : Status();
}

model::KvCheckpoint & SessionImpl::free_mark(int64_t keep) {
    for (model::KvCheckpoint & mk : marks)
        if (!mk.valid()) return mk;
    size_t i = marks[0].pos() <= marks[1].pos() ? 0 : 1;  // the earlier position goes first
    if (marks[i].pos() == keep) i ^= 1;
    return marks[i];
}

Status SessionImpl::run(const int32_t * tokens, int64_t n, const CancelToken * cancel,
                        const PrefillProgressFn & progress, int32_t progress_base,
                        int32_t progress_total, model::KvCheckpoint * mark, int64_t mark_pos) {
    const model::Engine engine = m->engine();
    for (int64_t i = 0; i < n;) {
        if (cancel && cancel->requested()) return Status(Errc::cancelled, "cancelled");
        const int64_t chunk = std::min<int64_t>(opt.max_batch, n - i);
        const int64_t pos   = static_cast<int64_t>(history.size());
        // The rows this call will overwrite: a cancelled or failed call leaves its positions
        // half-written, and is then taken back instead of losing the whole sequence.
        undo.save_call(kv, pos, chunk);
        const bool capture = mark != nullptr && mark_pos >= pos && mark_pos < pos + chunk;
        if (capture) mark->arm(kv, mark_pos);
        CancelProbe probe(cancel);
        Status      s = engine.forward(kv, ws, tokens + i, chunk, pos, logits.data(), nullptr,
                                  cancel ? &probe : nullptr);
        if (capture) mark->end_capture(kv, s.ok());
        if (!s.ok()) {
            // The logits row is written only after the last block, so it (and logits_valid)
            // still describes the previous call: the session is exactly as before this call.
            undo.restore(kv);
            return s;
        }
        for (int64_t j = 0; j < chunk; ++j) {
            history.push_back(tokens[i + j]);
            sampler.see(tokens[i + j]);
        }
        logits_valid = true;
        i += chunk;
        if (progress) progress(progress_base + static_cast<int32_t>(i), progress_total);
    }
    return {};
}

Result<GenerateResult> SessionImpl::generate(const std::vector<int32_t> & prompt,
                                             const GenerateOptions & o, const TokenCallback & cb,
                                             int64_t mark_pos) {
    if (Status s = validate(o); !s.ok()) return s;
    const int32_t V = m->cfg.vocab_size;
    for (size_t i = 0; i < prompt.size(); ++i)
        if (prompt[i] < 0 || prompt[i] >= V)
            return Status(Errc::invalid_argument, "prompt[" + std::to_string(i) + "]: token id " +
                                                      std::to_string(prompt[i]) +
                                                      " outside the vocabulary [0, " +
                                                      std::to_string(V) + ")");
    if (prompt.empty())
        return Status(Errc::invalid_argument, "prompt: empty (nothing to continue from)");
    GenerateResult r;
    r.stats.prompt_tokens   = static_cast<int32_t>(prompt.size());
    const auto    t_prefill = std::chrono::steady_clock::now();
    const int64_t P         = static_cast<int64_t>(prompt.size());
    if (P > opt.n_ctx) {
        r.stats.stop_reason = StopReason::context_full;
        return r;
    }

    // Prefix reuse: keep the state when the history is a prefix of the new prompt (for an
    // identical prompt, when the logits of its last token are still at hand). Otherwise cut the
    // state back to the latest rollback point inside the common prefix (leaving at least one
    // prompt token to run, for the logits) and prefill from there.
    const int64_t common =
        std::mismatch(history.begin(), history.end(), prompt.begin(), prompt.end()).first -
        history.begin();
    int64_t reuse = 0;
    if (common == static_cast<int64_t>(history.size()) && common > 0 &&
        (common < P || logits_valid))
        reuse = common;
    else
        reuse = rewind(std::min(common, P - 1));
    r.stats.reused_tokens = static_cast<int32_t>(reuse);

    // Rollback points for the next call: the state here (the start of this prefill) and the
    // one before `mark_pos` (by default the last prompt token; the "<think>" opener in thinking
    // mode, which the next turn renders as "</think>"), captured inside the prefill.
    if (mark_pos < 0) mark_pos = P - 1;
    model::KvCheckpoint * mark = nullptr;
    if (reuse < P) {
        const bool have = std::any_of(std::begin(marks), std::end(marks), [&](const auto & mk) {
            return mk.valid() && mk.pos() == reuse;
        });
        if (reuse > 0 && !have) free_mark(-1).save_all(kv, reuse);
        if (mark_pos > reuse) mark = &free_mark(reuse);
    }
    sampler.reseed(o.sampling.seed);
    {
        Status s           = run(prompt.data() + reuse, P - reuse, o.cancel, o.on_prefill_progress,
                                 static_cast<int32_t>(reuse), static_cast<int32_t>(P), mark, mark_pos);
        r.stats.prefill_ms = ms_since(t_prefill);
        if (s.code() == Errc::cancelled) {
            r.stats.stop_reason = StopReason::cancelled;
            return r;
        }
        if (!s.ok()) return s;
    }

    const auto                        t_decode = std::chrono::steady_clock::now();
    const Tokenizer *                 tok      = m->tokenizer ? &*m->tokenizer : nullptr;
    std::optional<TokenStreamDecoder> dec;
    if (tok) dec.emplace(*tok, /*skip_special=*/true);
    const auto & eos_ids = m->cfg.eos_token_ids;
    held.clear();
    // Room for the text so that streaming it appends without allocating in the decode loop
    // (grows, rarely, past ~8 bytes per token).
    r.text.reserve(static_cast<size_t>(std::min<int64_t>(o.max_tokens, opt.n_ctx)) * 8 + 64);
    const auto release = [&](size_t n) -> std::string_view {
        r.text.append(held, 0, n);
        std::string_view out(r.text);
        out = out.substr(r.text.size() - n);
        held.erase(0, n);
        return out;
    };

    StopReason reason = StopReason::max_tokens;
    for (int32_t i = 0;; ++i) {
        if (i >= o.max_tokens) {
            reason = StopReason::max_tokens;
            break;
        }
        if (o.cancel && o.cancel->requested()) {
            reason = StopReason::cancelled;
            break;
        }
        const Sampled sp = sampler.sample(logits.data(), o.sampling);
        ++r.stats.generated_tokens;
        const bool is_eos   = std::find(eos_ids.begin(), eos_ids.end(), sp.token) != eos_ids.end();
        bool       hit_stop = false;
        std::string_view text;
        if (dec) {
            (void)dec->push(sp.token, held);  // ids come from the model: always in range
            size_t cut = std::string::npos, stop_len = 0;
            for (const auto & s : o.stop_strings) {
                const size_t at = held.find(s);
                if (at != std::string::npos && at < cut) cut = at, stop_len = s.size();
            }
            if (cut != std::string::npos) {
                hit_stop = true;
                text     = release(cut);
                held.erase(0, stop_len);
            } else {
                text = release(held.size() - held_suffix(held, o.stop_strings));
            }
        }
        TokenEvent ev;
        ev.token           = sp.token;
        ev.text            = text;
        ev.logprob         = sp.logprob;
        ev.index           = i;
        const bool stop_cb = cb && cb(ev) == Control::stop;
        if (is_eos) {
            reason = StopReason::eos;
            break;
        }
        if (hit_stop) {
            reason = StopReason::stop_string;
            break;
        }
        if (stop_cb) {
            reason = StopReason::callback;
            break;
        }
        if (i + 1 >= o.max_tokens) {
            reason = StopReason::max_tokens;
            break;
        }
        if (static_cast<int64_t>(history.size()) >= opt.n_ctx) {
            reason = StopReason::context_full;
            break;
        }
        Status s = run(&sp.token, 1, o.cancel, nullptr, 0, 0);
        if (s.code() == Errc::cancelled) {
            reason = StopReason::cancelled;
            break;
        }
        if (!s.ok()) return s;
    }
    // What is still held back (a partial stop string or UTF-8 sequence) ends the text.
    if (reason != StopReason::stop_string) {
        if (dec) held += dec->flush();
        r.text += held;
    }
    held.clear();
    r.stats.stop_reason = reason;
    r.stats.decode_ms   = ms_since(t_decode);
    return r;
}

// ---- snapshots ---------------------------------------------------------------------------

namespace {

constexpr char     kSnapMagic[8] = {'D', 'S', 'V', '4', 'S', 'N', 'A', 'P'};
constexpr uint32_t kSnapVersion  = 1;

struct SnapWriter {
    std::ofstream f;
    uint64_t      h = 0xcbf29ce484222325ull;
    void          put(const void * p, size_t n) {
                 f.write(static_cast<const char *>(p), static_cast<std::streamsize>(n));
                 h = fnv1a(p, n, h);
    }
    template <class T>
    void pod(const T & v) {
        put(&v, sizeof v);
    }
};

struct SnapReader {
    std::ifstream f;
    uint64_t      h = 0xcbf29ce484222325ull;
    bool          get(void * p, size_t n) {
                 if (!f.read(static_cast<char *>(p), static_cast<std::streamsize>(n))) return false;
        h = fnv1a(p, n, h);
                 return true;
    }
    template <class T>
    bool pod(T & v) {
        return get(&v, sizeof v);
    }
};

// Calls fn(pointer, bytes) for every piece of per-layer state a sequence of n_past tokens uses.
template <class Fn>
void for_each_state(model::KvState & kv, const model::ModelConfig & cfg, int64_t n_past, Fn fn) {
    for (int l = 0; l < kv.n_layers(); ++l) {
        model::LayerKv & L = kv.layer(l);
        fn(L.window, size_t(cfg.window_size) * size_t(cfg.head_dim) * 2);
        if (L.ratio == 0) continue;
        const int64_t rows = std::min<int64_t>(L.max_comp, n_past / L.ratio);
        fn(L.comp, size_t(rows) * size_t(cfg.head_dim) * 2);
        if (L.index_keys) fn(L.index_keys, size_t(rows) * size_t(cfg.index_head_dim) * 2);
        for (model::CompressorState * c : {&L.main, &L.indexer})
            if (c->kv) {
                fn(c->kv, size_t(c->rows) * size_t(c->cols) * 4);
                fn(c->score, size_t(c->rows) * size_t(c->cols) * 4);
            }
    }
}

}  // namespace

}  // namespace detail

// ---- Session ------------------------------------------------------------------------------

using detail::BusyGuard;

Session::Session(std::unique_ptr<detail::SessionImpl> impl) : impl_(std::move(impl)) {}
Session::~Session()                               = default;
Session::Session(Session &&) noexcept             = default;
Session & Session::operator=(Session &&) noexcept = default;

int64_t Session::n_past() const noexcept {
    return static_cast<int64_t>(impl_->history.size());
}
int64_t Session::n_ctx() const noexcept {
    return impl_->opt.n_ctx;
}
const std::vector<int32_t> & Session::tokens() const noexcept {
    return impl_->history;
}
const Model & Session::model() const noexcept {
    return impl_->model;
}

Result<GenerateResult> Session::generate_tokens(const std::vector<int32_t> & prompt,
                                                const GenerateOptions &      options,
                                                const TokenCallback &        on_token) {
    BusyGuard g(impl_->busy);
    if (!g.owned()) return detail::busy_error();
    return impl_->generate(prompt, options, on_token);
}

Result<GenerateResult> Session::generate_raw(std::string_view        prompt,
                                             const GenerateOptions & options,
                                             const TokenCallback &   on_token) {
    BusyGuard g(impl_->busy);
    if (!g.owned()) return detail::busy_error();
    const Tokenizer * tok = impl_->model.tokenizer();
    if (!tok)
        return Status(Errc::invalid_argument, "generate_raw: the model at " + impl_->m->info.path +
                                                  " has no tokenizer.json (use generate_tokens)");
    auto ids = tok->encode(prompt);
    if (!ids.ok()) return ids.status();
    return impl_->generate(*ids, options, on_token);
}

Result<GenerateResult> Session::generate(const std::vector<ChatMessage> & conversation,
                                         const GenerateOptions &          options,
                                         const TokenCallback &            on_token) {
    BusyGuard g(impl_->busy);
    if (!g.owned()) return detail::busy_error();
    const Tokenizer * tok = impl_->model.tokenizer();
    if (!tok)
        return Status(Errc::invalid_argument, "generate: the model at " + impl_->m->info.path +
                                                  " has no tokenizer.json (use generate_tokens)");
    EncodeOptions      eo;
    const ThinkingMode mode =
        options.think == ThinkMode::none ? ThinkingMode::chat : ThinkingMode::thinking;
    eo.thinking_mode = mode;
    eo.reasoning_effort =
        options.think == ThinkMode::max ? ReasoningEffort::max : ReasoningEffort::none;
    auto prompt = encode_messages(conversation, eo);
    if (!prompt.ok()) return prompt.status();
    auto ids = tok->encode(*prompt);
    if (!ids.ok()) return ids.status();
    // Thinking mode: the next turn renders this turn's closing "<think>" as "</think>" (earlier
    // reasoning is dropped), so the second rollback point goes just before it.
    int64_t mark = -1;
    if (mode == ThinkingMode::thinking) {
        auto t = tok->encode(chat_tokens::think_start);
        if (t.ok() && !t->empty() && t->size() <= ids->size() &&
            std::equal(t->rbegin(), t->rend(), ids->rbegin()))
            mark = static_cast<int64_t>(ids->size() - t->size());
    }
    auto r = impl_->generate(*ids, options, on_token, mark);
    if (!r.ok()) return r;
    if (r->stats.stop_reason == StopReason::eos) {
        auto pc = parse_completion(r->text + std::string(chat_tokens::eos), mode);
        if (pc.ok()) {
            r->parsed     = true;
            r->completion = std::move(pc).value();
        } else {
            r->parse_error = pc.status().message();
        }
    }
    return r;
}

Result<std::vector<float>> Session::eval(const std::vector<int32_t> & tokens) {
    BusyGuard g(impl_->busy);
    if (!g.owned()) return detail::busy_error();
    const int32_t V = impl_->m->cfg.vocab_size;
    if (tokens.empty()) return Status(Errc::invalid_argument, "eval: no tokens");
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] < 0 || tokens[i] >= V)
            return Status(Errc::invalid_argument, "eval: tokens[" + std::to_string(i) +
                                                      "] = " + std::to_string(tokens[i]) +
                                                      " outside the vocabulary");
    if (n_past() + static_cast<int64_t>(tokens.size()) > impl_->opt.n_ctx)
        return Status(Errc::context_full, "eval: " + std::to_string(tokens.size()) +
                                              " tokens do not fit (n_past " +
                                              std::to_string(n_past()) + ", n_ctx " +
                                              std::to_string(impl_->opt.n_ctx) + ")");
    Status s =
        impl_->run(tokens.data(), static_cast<int64_t>(tokens.size()), nullptr, nullptr, 0, 0);
    if (!s.ok()) return s;
    return impl_->logits;
}

Status Session::reset() {
    BusyGuard g(impl_->busy);
    if (!g.owned()) return detail::busy_error();
    impl_->clear();
    return {};
}

Status Session::truncate(int64_t n) {
    BusyGuard g(impl_->busy);
    if (!g.owned()) return detail::busy_error();
    return impl_->truncate(n);
}

Status Session::save(const std::string & path) const {
    BusyGuard g(impl_->busy);
    if (!g.owned()) return detail::busy_error();
    detail::SnapWriter w;
    w.f.open(path, std::ios::binary | std::ios::trunc);
    if (!w.f) return Status(Errc::io_error, path + ": cannot open for writing");
    const auto &  im     = *impl_;
    const int64_t n_past = static_cast<int64_t>(im.history.size());
    w.put(detail::kSnapMagic, sizeof detail::kSnapMagic);
    w.pod(detail::kSnapVersion);
    w.pod(im.m->fingerprint);
    w.pod(n_past);
    const uint8_t lv = im.logits_valid ? 1 : 0;
    w.pod(lv);
    w.put(im.history.data(), im.history.size() * sizeof(int32_t));
    if (lv) w.put(im.logits.data(), im.logits.size() * sizeof(float));
    detail::for_each_state(impl_->kv, im.m->cfg, n_past, [&](void * p, size_t n) { w.put(p, n); });
    const uint64_t sum = w.h;
    w.f.write(reinterpret_cast<const char *>(&sum), sizeof sum);
    w.f.flush();
    if (!w.f) return Status(Errc::io_error, path + ": write failed");
    return {};
}

Status Session::load(const std::string & path) {
    BusyGuard g(impl_->busy);
    if (!g.owned()) return detail::busy_error();
    detail::SnapReader r;
    r.f.open(path, std::ios::binary);
    if (!r.f) return Status(Errc::file_not_found, path + ": cannot open snapshot");
    auto & im  = *impl_;
    auto   bad = [&](const std::string & what) {
        return Status(Errc::invalid_argument, path + ": " + what);
    };
    char     magic[8];
    uint32_t version = 0;
    uint64_t fp      = 0;
    int64_t  n_past  = 0;
    uint8_t  lv      = 0;
    if (!r.get(magic, 8) || std::memcmp(magic, detail::kSnapMagic, 8) != 0)
        return bad("not a dsv4 session snapshot (bad magic)");
    if (!r.pod(version) || version != detail::kSnapVersion)
        return bad("snapshot format version " + std::to_string(version) + ", this build reads " +
                   std::to_string(detail::kSnapVersion));
    if (!r.pod(fp) || fp != im.m->fingerprint)
        return bad("snapshot belongs to a different model or config (fingerprint mismatch with " +
                   im.m->info.path + ")");
    if (!r.pod(n_past) || n_past < 0 || n_past > im.opt.n_ctx)
        return bad("snapshot holds " + std::to_string(n_past) +
                   " tokens, more than this session's n_ctx " + std::to_string(im.opt.n_ctx));
    if (!r.pod(lv) || lv > 1) return bad("corrupt header");
    // Read into the live state, then verify the checksum; on any failure the session is
    // cleared (never left half-restored).
    im.clear();
    im.history.resize(static_cast<size_t>(n_past));
    bool ok = r.get(im.history.data(), im.history.size() * sizeof(int32_t));
    if (ok && lv) ok = r.get(im.logits.data(), im.logits.size() * sizeof(float));
    if (ok)
        detail::for_each_state(im.kv, im.m->cfg, n_past, [&](void * p, size_t n) {
            if (ok) ok = r.get(p, n);
        });
    uint64_t       stored = 0;
    const uint64_t sum    = r.h;
    if (ok) ok = static_cast<bool>(r.f.read(reinterpret_cast<char *>(&stored), sizeof stored));
    if (!ok || stored != sum || r.f.peek() != std::char_traits<char>::eof()) {
        im.clear();
        return bad(ok ? "checksum mismatch (corrupt or modified snapshot)" : "truncated snapshot");
    }
    for (int32_t t : im.history) {
        if (t < 0 || t >= im.m->cfg.vocab_size) {
            im.clear();
            return bad("token id out of range in the history");
        }
        im.sampler.see(t);
    }
    im.logits_valid = lv != 0;
    return {};
}

}  // namespace dsv4
