#include "pipeline/logging.h"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace messplus::pipeline {

Logger MakeLogger(const std::string& name, std::string_view level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f %^%l%$ [%n] %v");
  return logger;
}

Logger NullLogger() {
  return std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
}

Logger ChildLogger(const Logger& parent, const std::string& name) {
  auto logger =
      std::make_shared<spdlog::logger>(name, parent->sinks().begin(), parent->sinks().end());
  // The sinks carry the parent's pattern already.
  logger->set_level(parent->level());
  return logger;
}

}  // namespace messplus::pipeline
