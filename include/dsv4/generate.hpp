// Generation options, events and results (see docs/embedding.md).
//
// A generation is: prompt tokens are prefilled (reusing the Session's cached prefix when the new
// prompt extends it), then tokens are sampled one at a time until a stop condition holds. Every
// normal end is a StopReason inside an ok() result; only real failures (bad options, I/O,
// internal errors) are a Status.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dsv4/chat.hpp"
#include "dsv4/export.hpp"

namespace dsv4 {

// DeepSeek's recommended defaults for V4 are temperature 1.0 and top-p 1.0 (no truncation).
struct SamplingParams {
    float    temperature        = 1.0f;  // 0 = greedy argmax (all other fields ignored)
    int32_t  top_k              = 0;     // keep the k most likely tokens; 0 = off
    float    top_p              = 1.0f;  // nucleus: smallest set with mass >= top_p; 1 = off
    float    min_p              = 0.0f;  // drop tokens with p < min_p · p_max; 0 = off
    float    repetition_penalty = 1.0f;  // CTRL-style, over the session's tokens; 1 = off
    uint64_t seed               = 0;     // same seed + model + threads + arch => same tokens
};

// May be signalled from any thread (e.g. a UI thread). The running generate() notices it within
// one decoder layer of work and returns ok() with StopReason::cancelled.
class CancelToken {
  public:
    void request() noexcept { flag_.store(true, std::memory_order_relaxed); }
    bool requested() const noexcept { return flag_.load(std::memory_order_relaxed); }
    void reset() noexcept { flag_.store(false, std::memory_order_relaxed); }

  private:
    std::atomic<bool> flag_{false};
};

// none: chat mode (the assistant turn opens with </think>); high: thinking mode; max: thinking
// mode with DeepSeek's "Reasoning Effort: Absolute maximum" prefix (use a long context).
enum class ThinkMode : uint8_t { none, high, max };

struct TokenEvent {
    int32_t token = 0;  // the sampled id
    // UTF-8 text released by this token. Empty while a multi-byte character is split across
    // tokens or while the text might be the start of a stop string (it is released later, or
    // dropped when the stop string completes). Valid during the callback only.
    std::string_view text;
    float            logprob = 0.0f;  // log p(token) under the distribution it was drawn from
    int32_t          index   = 0;     // 0-based index within this generation
};

enum class Control : uint8_t { proceed, stop };
// Called on the thread that called generate(), once per sampled token (EOS included).
using TokenCallback = std::function<Control(const TokenEvent &)>;
// Prefill progress: tokens done out of total, on the generate() thread.
using PrefillProgressFn = std::function<void(int32_t done, int32_t total)>;

struct GenerateOptions {
    int32_t                  max_tokens = 512;  // >= 0; 0 prefills only
    SamplingParams           sampling;
    ThinkMode                think = ThinkMode::none;  // chat generate() only
    std::vector<std::string> stop_strings;             // not included in the output text
    const CancelToken *      cancel = nullptr;
    PrefillProgressFn        on_prefill_progress;
};

enum class StopReason : uint8_t {
    eos,           // the model wrote its end-of-sequence token
    max_tokens,    // GenerateOptions::max_tokens reached
    stop_string,   // one of GenerateOptions::stop_strings appeared
    callback,      // the token callback returned Control::stop
    cancelled,     // the CancelToken was signalled
    context_full,  // the Session's n_ctx is exhausted
};
DSV4_API const char * stop_reason_name(StopReason reason) noexcept;

struct GenerateStats {
    StopReason stop_reason      = StopReason::eos;
    int32_t    prompt_tokens    = 0;  // tokens of the prompt (reused ones included)
    int32_t    reused_tokens    = 0;  // prompt tokens already in the Session's state
    int32_t    generated_tokens = 0;  // sampled tokens (EOS included)
    double     prefill_ms       = 0;
    double     decode_ms        = 0;
};

struct GenerateResult {
    GenerateStats stats;
    std::string   text;  // everything released to the callback, concatenated
    // Chat generate() only, when the turn ended with EOS: the completion split by the V4
    // completion parser (reasoning, content, DSML tool calls). parse_error holds the parser's
    // message when the model wrote malformed DSML (the raw text is still in `text`).
    bool             parsed = false;
    ParsedCompletion completion;
    std::string      parse_error;
};

}  // namespace dsv4
