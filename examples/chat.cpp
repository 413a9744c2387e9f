// dsv4-chat: a terminal chat. Multi-turn (each turn reuses the cached conversation prefix),
// streaming, thinking shown dimmed. Commands: /reset, /save FILE, /load FILE, /quit.
//
//   dsv4-chat --model DIR [--threads N] [--think none|high|max] [--ctx N] [--max-tokens N]
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "dsv4/dsv4.hpp"

int main(int argc, char ** argv) {
    std::string           dir;
    dsv4::LoadOptions     lo;
    dsv4::SessionOptions  so;
    dsv4::GenerateOptions go;
    go.max_tokens = 512;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--model")
            dir = v;
        else if (a == "--threads")
            lo.n_threads = std::atoi(v.c_str());
        else if (a == "--ctx")
            so.n_ctx = std::atoll(v.c_str());
        else if (a == "--max-tokens")
            go.max_tokens = std::atoi(v.c_str());
        else if (a == "--think")
            go.think = v == "max"    ? dsv4::ThinkMode::max
                       : v == "high" ? dsv4::ThinkMode::high
                                     : dsv4::ThinkMode::none;
    }
    if (dir.empty()) {
        std::fprintf(stderr,
                     "usage: dsv4-chat --model DIR [--threads N] [--think none|high|max] "
                     "[--ctx N] [--max-tokens N]\n");
        return 2;
    }
    auto model = dsv4::Model::load(dir, lo);
    if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().to_string().c_str()), 1;
    auto session = model->new_session(so);
    if (!session.ok()) return std::fprintf(stderr, "%s\n", session.status().to_string().c_str()), 1;

    std::vector<dsv4::ChatMessage> convo;
    std::string                    line;
    std::fprintf(stderr, "dsv4-chat: /reset /save FILE /load FILE /quit\n");
    while (std::fprintf(stderr, "> "), std::getline(std::cin, line)) {
        if (line == "/quit") break;
        if (line == "/reset") {
            convo.clear();
            (void)session->reset();
            continue;
        }
        if (line.rfind("/save ", 0) == 0 || line.rfind("/load ", 0) == 0) {
            const std::string  path = line.substr(6);
            const dsv4::Status s    = line[1] == 's' ? session->save(path) : session->load(path);
            std::fprintf(stderr, "%s\n", s.ok() ? "ok" : s.to_string().c_str());
            if (line[1] == 'l' && s.ok()) convo.clear();  // the text history is not in the file
            continue;
        }
        convo.push_back(dsv4::ChatMessage::user(line));
        bool        thinking = go.think != dsv4::ThinkMode::none;
        std::string pending;  // thinking text is shown dimmed until </think>
        if (thinking) std::printf("\x1b[2m");
        auto r = session->generate(convo, go, [&](const dsv4::TokenEvent & e) {
            std::string t(e.text);
            if (thinking) {
                const auto end = t.find("</think>");
                if (end != std::string::npos) {
                    t.replace(end, 8, "\x1b[0m\n");
                    thinking = false;
                }
            }
            std::fwrite(t.data(), 1, t.size(), stdout);
            std::fflush(stdout);
            return dsv4::Control::proceed;
        });
        std::printf("\x1b[0m\n");
        if (!r.ok()) {
            std::fprintf(stderr, "%s\n", r.status().to_string().c_str());
            convo.pop_back();
            continue;
        }
        const auto & c = r->completion;
        convo.push_back(r->parsed ? c.to_message() : dsv4::ChatMessage::assistant(r->text));
        std::fprintf(
            stderr, "[%d tokens, %.2f tok/s, reused %d prompt tokens, stop: %s]\n",
            r->stats.generated_tokens,
            r->stats.decode_ms > 0 ? 1000.0 * r->stats.generated_tokens / r->stats.decode_ms : 0.0,
            r->stats.reused_tokens, dsv4::stop_reason_name(r->stats.stop_reason));
    }
    return 0;
}
