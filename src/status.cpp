#include "dsv4/status.hpp"

namespace dsv4 {

const char * errc_name(Errc code) noexcept {
    switch (code) {
        case Errc::ok: return "ok";
        case Errc::invalid_argument: return "invalid_argument";
        case Errc::file_not_found: return "file_not_found";
        case Errc::io_error: return "io_error";
        case Errc::invalid_model: return "invalid_model";
        case Errc::unsupported_model: return "unsupported_model";
        case Errc::out_of_memory: return "out_of_memory";
        case Errc::context_full: return "context_full";
        case Errc::cancelled: return "cancelled";
        case Errc::backend_unavailable: return "backend_unavailable";
        case Errc::busy: return "busy";
        case Errc::internal: return "internal";
    }
    return "unknown";
}

std::string Status::to_string() const {
    if (ok()) return "ok";
    std::string s = errc_name(code_);
    s += ": ";
    s += message_;
    return s;
}

}  // namespace dsv4
