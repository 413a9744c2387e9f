// Logging goes only to a callback the host supplies; with no callback the library is silent.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace dsv4 {

enum class LogLevel : uint8_t { debug, info, warn, error };

// Called on the thread that performs the logged operation; must not throw.
using LogFn = std::function<void(LogLevel level, std::string_view message)>;

}  // namespace dsv4
