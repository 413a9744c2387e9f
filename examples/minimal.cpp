// The smallest complete dsv4 program: load a model, stream a chat completion to stdout.
// Usage: minimal MODEL_DIR ["prompt"]
#include <cstdio>

#include "dsv4/dsv4.hpp"

int main(int argc, char ** argv) {
    if (argc < 2) return std::fprintf(stderr, "usage: minimal MODEL_DIR [PROMPT]\n"), 2;
    auto model = dsv4::Model::load(argv[1]);
    if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().to_string().c_str()), 1;
    auto session = model->new_session();
    if (!session.ok()) return std::fprintf(stderr, "%s\n", session.status().to_string().c_str()), 1;
    const char *          prompt = argc > 2 ? argv[2] : "In the beginning";
    dsv4::GenerateOptions opt;
    opt.max_tokens = 64;
    auto result =
        session->generate({dsv4::ChatMessage::user(prompt)}, opt, [](const dsv4::TokenEvent & e) {
            std::fwrite(e.text.data(), 1, e.text.size(), stdout);
            std::fflush(stdout);
            return dsv4::Control::proceed;
        });
    if (!result.ok()) return std::fprintf(stderr, "\n%s\n", result.status().to_string().c_str()), 1;
    std::printf("\n");
    return 0;
}
