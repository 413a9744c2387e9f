// Error model. Every fallible call returns a Status or a Result<T>; the library never throws
// across its API, never aborts, exits or prints. A Status carries a code the host can branch on
// and a message meant for humans that names the file, tensor, key or option at fault.
//
// Normal ends of a generation (EOS, max tokens, stop string, cancel, …) are not errors; they are
// reported as a stop reason in the generation stats (see generate.hpp once it exists).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "dsv4/export.hpp"

namespace dsv4 {

enum class Errc : int32_t {
    ok = 0,
    invalid_argument,     // an option is out of range; the message names the field
    file_not_found,       // a path does not exist or cannot be opened
    io_error,             // read/mmap failed on an existing file
    invalid_model,        // malformed safetensors/config/tokenizer; the message names tensor or key
    unsupported_model,    // well-formed, but outside the supported architecture envelope
    out_of_memory,        // an allocation failed or a budget would be exceeded
    context_full,         // the sequence would exceed the session's n_ctx
    cancelled,            // an operation was aborted by the host (load progress callback)
    backend_unavailable,  // e.g. Backend::cuda in a build without DSV4_CUDA
    busy,                 // the object is in use by another thread
    internal,             // a bug in dsv4; please report it
};

// Stable lower-case name of a code, e.g. "invalid_model".
DSV4_API const char * errc_name(Errc code) noexcept;

class [[nodiscard]] DSV4_API Status {
  public:
    Status() = default;  // ok
    Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status ok_status() { return Status(); }

    bool                ok() const noexcept { return code_ == Errc::ok; }
    explicit            operator bool() const noexcept { return ok(); }
    Errc                code() const noexcept { return code_; }
    const std::string & message() const noexcept { return message_; }

    // "invalid_model: <message>" (or "ok").
    std::string to_string() const;

  private:
    Errc        code_ = Errc::ok;
    std::string message_;
};

// A value or an error; a minimal std::expected<T, Status> that works in C++17.
// Accessing value() of an error Result is a precondition violation (checked in debug builds).
template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
    Result(Status error) : status_(std::move(error)) {
        if (status_.ok()) {
            // An ok Status carries no value: report it as an internal error, never crash.
            status_ = Status(Errc::internal, "Result constructed from an ok Status without value");
        }
    }

    bool           ok() const noexcept { return value_.has_value(); }
    explicit       operator bool() const noexcept { return ok(); }
    const Status & status() const noexcept { return status_; }
    T &            value() & { return *value_; }
    const T &      value() const & { return *value_; }
    T &&           value() && { return std::move(*value_); }
    T *            operator->() { return &*value_; }
    const T *      operator->() const { return &*value_; }
    T &            operator*() & { return *value_; }
    const T &      operator*() const & { return *value_; }

  private:
    std::optional<T> value_;
    Status           status_;
};

}  // namespace dsv4
