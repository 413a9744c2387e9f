// dsv4-generate: one completion from the command line, streamed to stdout.
//
//   dsv4-generate --model DIR (--prompt TEXT | --file F) [--threads N] [--temp T] [--top-k K]
//                 [--top-p P] [--min-p P] [--seed S] [--max-tokens N] [--think none|high|max]
//                 [--raw] [--ctx N]
//
// A load progress bar and a speed summary go to stderr; only generated text goes to stdout.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "dsv4/dsv4.hpp"

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: dsv4-generate --model DIR (--prompt TEXT | --file F) [--threads N]\n"
                 "         [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S]\n"
                 "         [--max-tokens N] [--think none|high|max] [--raw] [--ctx N]\n");
    return 2;
}

bool parse_num(const char * s, double & out) {
    char * end = nullptr;
    out        = std::strtod(s, &end);
    return end && *end == '\0' && end != s;
}

}  // namespace

int main(int argc, char ** argv) {
    std::string           dir, prompt;
    bool                  have_prompt = false, raw = false;
    dsv4::LoadOptions     lo;
    dsv4::GenerateOptions go;
    dsv4::SessionOptions  so;
    go.max_tokens = 256;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--raw") {
            raw = true;
            continue;
        }
        if (i + 1 >= argc) return usage();
        const char * v = argv[++i];
        double       x = 0;
        if (a == "--model") {
            dir = v;
        } else if (a == "--prompt") {
            prompt = v, have_prompt = true;
        } else if (a == "--file") {
            std::ifstream f(v, std::ios::binary);
            if (!f) return std::fprintf(stderr, "dsv4-generate: cannot read %s\n", v), 1;
            std::stringstream ss;
            ss << f.rdbuf();
            prompt = ss.str(), have_prompt = true;
        } else if (a == "--think") {
            const std::string t = v;
            if (t == "none")
                go.think = dsv4::ThinkMode::none;
            else if (t == "high")
                go.think = dsv4::ThinkMode::high;
            else if (t == "max")
                go.think = dsv4::ThinkMode::max;
            else
                return usage();
        } else if (!parse_num(v, x)) {
            std::fprintf(stderr, "dsv4-generate: %s needs a number, got '%s'\n", a.c_str(), v);
            return 2;
        } else if (a == "--threads") {
            lo.n_threads = static_cast<int32_t>(x);
        } else if (a == "--temp") {
            go.sampling.temperature = static_cast<float>(x);
        } else if (a == "--top-k") {
            go.sampling.top_k = static_cast<int32_t>(x);
        } else if (a == "--top-p") {
            go.sampling.top_p = static_cast<float>(x);
        } else if (a == "--min-p") {
            go.sampling.min_p = static_cast<float>(x);
        } else if (a == "--seed") {
            go.sampling.seed = static_cast<uint64_t>(x);
        } else if (a == "--max-tokens") {
            go.max_tokens = static_cast<int32_t>(x);
        } else if (a == "--ctx") {
            so.n_ctx = static_cast<int64_t>(x);
        } else {
            return usage();
        }
    }
    if (dir.empty() || !have_prompt) return usage();

    lo.on_progress = [](float f) {
        const int n = static_cast<int>(f * 30);
        std::fprintf(stderr, "\rloading [%-30.*s] %3d%%", n, "##############################",
                     static_cast<int>(f * 100));
        return true;
    };
    auto model = dsv4::Model::load(dir, lo);
    std::fprintf(stderr, "\n");
    if (!model.ok()) {
        std::fprintf(stderr, "dsv4-generate: %s\n", model.status().to_string().c_str());
        return 1;
    }
    const dsv4::ModelInfo & info = model->info();
    std::fprintf(stderr, "model: %d layers, dim %d, vocab %d, kernels %s, %d threads\n",
                 info.n_layers, info.dim, info.vocab_size, dsv4::cpu_arch_name(info.cpu_arch),
                 info.n_threads);
    auto session = model->new_session(so);
    if (!session.ok()) {
        std::fprintf(stderr, "dsv4-generate: %s\n", session.status().to_string().c_str());
        return 1;
    }
    const auto on_token = [](const dsv4::TokenEvent & e) {
        std::fwrite(e.text.data(), 1, e.text.size(), stdout);
        std::fflush(stdout);
        return dsv4::Control::proceed;
    };
    auto r = raw ? session->generate_raw(prompt, go, on_token)
                 : session->generate({dsv4::ChatMessage::user(prompt)}, go, on_token);
    std::printf("\n");
    std::fflush(stdout);  // the summary on stderr comes after the text
    if (!r.ok()) {
        std::fprintf(stderr, "dsv4-generate: %s\n", r.status().to_string().c_str());
        return 1;
    }
    const dsv4::GenerateStats & st = r->stats;
    std::fprintf(
        stderr,
        "prompt %d tokens: %.1f ms (%.1f tok/s); generated %d tokens: %.1f ms (%.2f "
        "tok/s); stop: %s\n",
        st.prompt_tokens, st.prefill_ms,
        st.prefill_ms > 0 ? 1000.0 * (st.prompt_tokens - st.reused_tokens) / st.prefill_ms : 0.0,
        st.generated_tokens, st.decode_ms,
        st.decode_ms > 0 ? 1000.0 * st.generated_tokens / st.decode_ms : 0.0,
        dsv4::stop_reason_name(st.stop_reason));
    return 0;
}
