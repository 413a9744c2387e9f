// Internal logging helper: formats nothing unless the host installed a callback.
#pragma once

#include <string>
#include <string_view>

#include "dsv4/log.hpp"

namespace dsv4::detail {

class Logger {
  public:
    Logger() = default;
    explicit Logger(LogFn fn) : fn_(std::move(fn)) {}

    bool enabled() const noexcept { return static_cast<bool>(fn_); }
    void log(LogLevel level, std::string_view msg) const {
        if (fn_) fn_(level, msg);
    }
    void debug(std::string_view m) const { log(LogLevel::debug, m); }
    void info(std::string_view m) const { log(LogLevel::info, m); }
    void warn(std::string_view m) const { log(LogLevel::warn, m); }
    void error(std::string_view m) const { log(LogLevel::error, m); }

  private:
    LogFn fn_;
};

}  // namespace dsv4::detail
