// worker_thread: the game / desktop-app pattern. Generation runs on a worker thread; the main
// thread runs a 60 Hz loop (here it only "renders" a counter) that must never stall, reads the
// streamed text through a mutex-protected queue, and cancels the generation half-way through.
// Prints the worst frame time seen, which should stay near 16.7 ms.
//
//   worker_thread MODEL_DIR
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "dsv4/dsv4.hpp"

int main(int argc, char ** argv) {
    if (argc < 2) return std::fprintf(stderr, "usage: worker_thread MODEL_DIR\n"), 2;
    dsv4::LoadOptions lo;  // n_threads 0: hardware threads - 1, one core stays with this loop
    auto              model = dsv4::Model::load(argv[1], lo);
    if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().to_string().c_str()), 1;

    std::mutex        mu;
    std::string       inbox;  // text produced by the worker, consumed by the frame loop
    std::atomic<bool> done{false};
    std::atomic<int>  produced{0};
    dsv4::CancelToken cancel;
    dsv4::StopReason  reason = dsv4::StopReason::eos;

    std::thread worker([&] {
        auto session = model->new_session();
        if (!session.ok()) {
            done = true;
            return;
        }
        dsv4::GenerateOptions go;
        go.max_tokens = 200;
        go.cancel     = &cancel;
        auto r        = session->generate({dsv4::ChatMessage::user("Tell me a long story.")}, go,
                                          [&](const dsv4::TokenEvent & e) {
                                       std::lock_guard<std::mutex> lock(mu);
                                       inbox.append(e.text);
                                       ++produced;
                                       return dsv4::Control::proceed;
                                   });
        if (r.ok()) reason = r->stats.stop_reason;
        done = true;
    });

    using clock         = std::chrono::steady_clock;
    const auto frame    = std::chrono::microseconds(16667);
    double     worst_ms = 0;
    int        frames   = 0;
    auto       next     = clock::now() + frame;
    auto       last     = clock::now();
    while (!done) {
        {  // "update": take whatever text arrived
            std::lock_guard<std::mutex> lock(mu);
            if (!inbox.empty()) {
                std::fwrite(inbox.data(), 1, inbox.size(), stdout);
                std::fflush(stdout);
                inbox.clear();
            }
        }
        if (produced >= 20 && !cancel.requested()) cancel.request();  // the user pressed "stop"
        std::this_thread::sleep_until(next);
        next += frame;
        const auto now = clock::now();
        worst_ms =
            std::max(worst_ms, std::chrono::duration<double, std::milli>(now - last).count());
        last = now;
        ++frames;
    }
    worker.join();
    std::printf("\nframes: %d, worst frame: %.1f ms, stop: %s\n", frames, worst_ms,
                dsv4::stop_reason_name(reason));
    return 0;
}
