// Token sampling over one logits row (temperature, repetition penalty, top-k, top-p, min-p,
// seeded draw). All buffers are sized once for the vocabulary; sampling allocates nothing.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "dsv4/generate.hpp"

namespace dsv4::detail {

struct Sampled {
    int32_t token   = 0;
    float   logprob = 0.0f;  // log p under the (truncated, renormalised) distribution
};

class Sampler {
  public:
    // sum_exp: Σ exp(x[i] − m) for the greedy log-softmax (the kernel table's, SIMD); null = a
    // plain double loop.
    explicit Sampler(int32_t vocab, double (*sum_exp)(const float *, int64_t, float) = nullptr);

    // Seeds the generator (seed 0 draws a random seed).
    void reseed(uint64_t seed);
    // Marks a token as seen for the repetition penalty / clears the marks.
    void see(int32_t token) { seen_[static_cast<size_t>(token)] = 1; }
    void forget_all();

    // Greedy (temperature 0): argmax, ties to the lowest id; logprob is the log-softmax of the
    // raw logits. Otherwise: penalty on seen tokens (CTRL: positive logits divided, negative
    // multiplied), logits / temperature, top-k, softmax, min-p, top-p, then one draw.
    Sampled sample(const float * logits, const SamplingParams & p);

  private:
    int32_t vocab_;
    double (*sum_exp_)(const float *, int64_t, float) = nullptr;
    std::vector<uint8_t> seen_;
    std::vector<float>   work_;  // adjusted logits
    std::vector<int32_t> idx_;   // candidate ids
    std::vector<float>   prob_;  // candidate probabilities
    std::mt19937_64      rng_;
};

}  // namespace dsv4::detail
