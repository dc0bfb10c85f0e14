// Loggers for stages and tools. They are created by main (or a test) and passed down; none
// is registered in spdlog's global registry.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

namespace messplus::pipeline {

using Logger = std::shared_ptr<spdlog::logger>;

// A logger writing to stderr with the given level name (trace ... off; unknown: info).
Logger MakeLogger(const std::string& name, std::string_view level);
// A logger that drops everything (tests).
Logger NullLogger();
// A logger with the same sinks and level as `parent`, under another name.
Logger ChildLogger(const Logger& parent, const std::string& name);

}  // namespace messplus::pipeline
