// Model and Session: the two objects a host program holds (see docs/embedding.md).
//
// Model   immutable after load; thread-safe; cheap to copy (copies share the weights). Sessions
//         keep their Model alive, so no lifetime ordering can go wrong.
// Session one sequence's state (KV cache, compressor state, token history). All its memory is
//         allocated when it is created; generating allocates nothing in the forward pass. A
//         Session may move between threads but serves one call at a time: a second concurrent
//         call is rejected with Errc::busy, never run.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dsv4/chat.hpp"
#include "dsv4/export.hpp"
#include "dsv4/generate.hpp"
#include "dsv4/log.hpp"
#include "dsv4/status.hpp"
#include "dsv4/system.hpp"
#include "dsv4/tokenizer.hpp"

namespace dsv4 {

// How the weights reach memory (docs/embedding.md, "Memory"): mmap maps the files (zero-copy,
// fast start, pages shared with the page cache); read copies every tensor into private
// huge-page memory at a 64-byte aligned address (seconds per GB to load, fastest decode).
// automatic = mmap, and where the page cache holds a shard in small pages (as right after it
// was written, e.g. downloaded) and the filesystem can hold it in 2 MiB pages, the shard's
// cached pages are dropped so that they are read back from disk in 2 MiB pages (decode runs
// 10-30 % faster on them); mmap never touches the page cache.
enum class WeightLoad : uint8_t { automatic, mmap, read };

// Load progress in [0, 1] on the loading thread; return false to abort (Errc::cancelled).
using LoadProgressFn = std::function<bool(float fraction)>;

struct LoadOptions {
    Backend    backend     = Backend::automatic;
    CpuArch    cpu_arch    = CpuArch::automatic;  // DSV4_FORCE_ARCH applies to automatic
    WeightLoad weight_load = WeightLoad::automatic;
    // Worker threads of every forward pass; 0 = hardware threads - 1 (at least 1), leaving a
    // core to the host's UI/render thread.
    int32_t        n_threads = 0;
    LoadProgressFn on_progress;
    LogFn          log;  // empty = silent: the library never writes to stdout/stderr
};

struct ModelInfo {
    std::string path;                  // the checkpoint directory
    std::string architecture;          // "DeepseekV4ForCausalLM"
    int32_t     n_layers         = 0;  // decoder blocks (MTP blocks not counted)
    int32_t     n_mtp            = 0;
    int32_t     dim              = 0;
    int32_t     vocab_size       = 0;
    int64_t     max_context      = 0;  // config max_position_embeddings
    int32_t     n_routed_experts = 0, n_activated_experts = 0;
    CpuArch     cpu_arch           = CpuArch::scalar;  // the kernel table in use
    int32_t     n_threads          = 1;
    uint64_t    weight_bytes       = 0;  // tensor bytes of the checkpoint
    bool        weights_mapped     = true;
    bool        has_tokenizer      = false;  // tokenizer.json found and loaded
    double      kv_bytes_per_token = 0;      // KV state growth per context token
};

struct SessionOptions {
    int64_t n_ctx = 4096;  // tokens this session can hold (prompt + generated)
    // Largest number of prompt tokens run through one forward call (prefill chunk); bounds the
    // scratch memory. Longer prompts are prefilled in chunks with identical results.
    int32_t max_batch = 256;
};

class Session;
namespace detail {
struct ModelImpl;
struct SessionImpl;
}  // namespace detail

class DSV4_API Model {
  public:
    // Reads <dir>/config.json, the safetensors shards (mapped, zero-copy) and, when present,
    // <dir>/tokenizer.json. Errors name the file, tensor or key at fault.
    static Result<Model> load(const std::string & dir, const LoadOptions & options = {});

    const ModelInfo & info() const noexcept;
    // The tokenizer; info().has_tokenizer tells whether it came from the checkpoint. Without
    // one, only the token-id APIs work.
    const Tokenizer * tokenizer() const noexcept;
    // Bytes a Session with these options allocates (KV state + scratch + buffers): budget before
    // creating one.
    uint64_t session_bytes(const SessionOptions & options) const noexcept;
    uint64_t session_bytes(int64_t n_ctx) const noexcept;

    Result<Session> new_session(const SessionOptions & options = {}) const;

    ~Model();
    Model(const Model &);
    Model(Model &&) noexcept;
    Model & operator=(const Model &);
    Model & operator=(Model &&) noexcept;

  private:
    friend class Session;
    explicit Model(std::shared_ptr<const detail::ModelImpl> impl);
    std::shared_ptr<const detail::ModelImpl> impl_;
};

class DSV4_API Session {
  public:
    // Multi-turn chat through the V4 encoding: the whole conversation is rendered and tokenised;
    // when the Session's tokens are a prefix of it, only the new suffix is prefilled. The reply
    // is generated for the last (user/developer) turn.
    Result<GenerateResult> generate(const std::vector<ChatMessage> & conversation,
                                    const GenerateOptions &          options,
                                    const TokenCallback &            on_token);
    // A prompt given as text, tokenised as it is (no chat template; special-token text such as
    // "<｜User｜>" becomes its token).
    Result<GenerateResult> generate_raw(std::string_view prompt, const GenerateOptions & options,
                                        const TokenCallback & on_token);
    // A prompt given as token ids (works without a tokenizer; then TokenEvent::text is empty).
    Result<GenerateResult> generate_tokens(const std::vector<int32_t> & prompt,
                                           const GenerateOptions &      options,
                                           const TokenCallback &        on_token);

    // Logits (vocab fp32) after running `tokens` on top of the current state (appended to the
    // history); the building block for scoring and perplexity.
    Result<std::vector<float>> eval(const std::vector<int32_t> & tokens);

    // Forget the sequence (KV, compressor state, history). Errc::busy while a call runs.
    Status reset();
    // Keep the first n tokens of the history and drop the rest (rollback). When n is one of
    // the session's rollback points (docs/embedding.md: the start of the latest prefill, the
    // latest prompt's last token, the start of the last forward call) the state is then exactly
    // what it was at n; otherwise the nearest earlier point is restored and the tokens up to n
    // are run again. Errc::invalid_argument unless 0 <= n <= n_past(); Errc::busy while a call
    // runs.
    Status truncate(int64_t n);
    // Full state to / from a file: versioned, checksummed, tied to the model's config and
    // tensor layout and to this session's n_ctx; a mismatching snapshot is refused with
    // Errc::invalid_argument naming what differs.
    Status save(const std::string & path) const;
    Status load(const std::string & path);

    int64_t                      n_past() const noexcept;  // tokens in the state
    int64_t                      n_ctx() const noexcept;
    const std::vector<int32_t> & tokens() const noexcept;  // the history (n_past ids)
    const Model &                model() const noexcept;

    ~Session();
    Session(Session &&) noexcept;
    Session & operator=(Session &&) noexcept;
    Session(const Session &)             = delete;
    Session & operator=(const Session &) = delete;

  private:
    friend class Model;
    explicit Session(std::unique_ptr<detail::SessionImpl> impl);
    std::unique_ptr<detail::SessionImpl> impl_;
};

}  // namespace dsv4
