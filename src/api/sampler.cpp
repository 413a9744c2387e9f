#include "api/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace dsv4::detail {

Sampler::Sampler(int32_t vocab, double (*sum_exp)(const float *, int64_t, float))
    : vocab_(vocab),
      sum_exp_(sum_exp),
      seen_(static_cast<size_t>(vocab), 0),
      work_(static_cast<size_t>(vocab)),
      idx_(static_cast<size_t>(vocab)),
      prob_(static_cast<size_t>(vocab)) {}

void Sampler::reseed(uint64_t seed) {
    if (seed == 0) seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
    rng_.seed(seed);
}

void Sampler::forget_all() {
    std::fill(seen_.begin(), seen_.end(), uint8_t{0});
}

namespace {
// log Σ exp(x_i) over n values, max-shifted (sum_exp: the kernel table's, or a double loop).
double log_sum_exp(const float * x, int64_t n, float mx,
                   double (*sum_exp)(const float *, int64_t, float)) {
    double s = 0.0;
    if (sum_exp) {
        s = sum_exp(x, n, mx);
    } else {
        for (int64_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
    }
    return double(mx) + std::log(s);
}
}  // namespace

Sampled Sampler::sample(const float * logits, const SamplingParams & p) {
    const int64_t V = vocab_;
    if (!(p.temperature > 0.0f)) {
        int32_t best = 0;
        for (int32_t i = 1; i < V; ++i)
            if (logits[i] > logits[best]) best = i;
        const double lse = log_sum_exp(logits, V, logits[best], sum_exp_);
        return {best, static_cast<float>(double(logits[best]) - lse)};
    }
    float * w = work_.data();
    for (int64_t i = 0; i < V; ++i) {
        float l = logits[i];
        if (p.repetition_penalty != 1.0f && seen_[static_cast<size_t>(i)])
            l = l > 0.0f ? l / p.repetition_penalty : l * p.repetition_penalty;
        w[i] = l / p.temperature;
    }
    // Candidates, most likely first (ties: lower id first, so draws are reproducible).
    int64_t n = V;
    std::iota(idx_.begin(), idx_.end(), 0);
    const auto by_logit = [w](int32_t a, int32_t b) {
        return w[a] > w[b] || (w[a] == w[b] && a < b);
    };
    if (p.top_k > 0 && p.top_k < V) {
        n = p.top_k;
        std::nth_element(idx_.begin(), idx_.begin() + n - 1, idx_.end(), by_logit);
    }
    std::sort(idx_.begin(), idx_.begin() + n, by_logit);
    // Softmax over the candidates.
    const float mx  = w[idx_[0]];
    double      sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const double e                = std::exp(double(w[idx_[static_cast<size_t>(i)]]) - mx);
        prob_[static_cast<size_t>(i)] = static_cast<float>(e);
        sum += e;
    }
    // min-p relative to the most likely candidate, then the nucleus.
    int64_t keep = n;
    if (p.min_p > 0.0f) {
        const double floor_p = double(p.min_p) * prob_[0];
        while (keep > 1 && prob_[static_cast<size_t>(keep - 1)] < floor_p) --keep;
    }
    double mass = 0.0;
    for (int64_t i = 0; i < keep; ++i) mass += prob_[static_cast<size_t>(i)];
    if (p.top_p < 1.0f) {
        const double target = double(p.top_p) * mass;
        double       acc    = 0.0;
        for (int64_t i = 0; i < keep; ++i) {
            acc += prob_[static_cast<size_t>(i)];
            if (acc >= target) {
                keep = i + 1;
                break;
            }
        }
        mass = 0.0;
        for (int64_t i = 0; i < keep; ++i) mass += prob_[static_cast<size_t>(i)];
    }
    (void)sum;
    // One draw (53-bit uniform) over the kept mass.
    const double u    = double(rng_() >> 11) * 0x1.0p-53 * mass;
    double       acc  = 0.0;
    int64_t      pick = keep - 1;
    for (int64_t i = 0; i < keep; ++i) {
        acc += prob_[static_cast<size_t>(i)];
        if (u < acc) {
            pick = i;
            break;
        }
    }
    const double pr = prob_[static_cast<size_t>(pick)] / mass;
    return {idx_[static_cast<size_t>(pick)], static_cast<float>(std::log(pr))};
}

}  // namespace dsv4::detail
