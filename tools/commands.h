// The subcommands of the `messplus` binary. Each Register* adds its subcommand, options and
// callback to the app; the callback's exit status is stored in *exit_code.
#pragma once

#include <CLI/CLI.hpp>

namespace messplus::tools {

void RegisterSim(CLI::App& app, int* exit_code);
void RegisterDemo(CLI::App& app, int* exit_code);
void RegisterEval(CLI::App& app, int* exit_code);
// ingest, embed, route, dispatch, feedback, up, replay, worker (tools/pipeline_commands.cc).
void RegisterPipeline(CLI::App& app, int* exit_code);
// publish: requests and feedback to a running pipeline (tools/publish_command.cc).
void RegisterPublish(CLI::App& app, int* exit_code);
// loadgen: the load-test harness (tools/loadgen/loadgen_command.cc).
void RegisterLoadgen(CLI::App& app, int* exit_code);

}  // namespace messplus::tools
