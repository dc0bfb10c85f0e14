// messplus: one binary, git-style subcommands.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "messplus: routes each LLM request to the cheapest model that will satisfy the user, "
      "while keeping a service-level promise on quality (MESS+)."};
  app.require_subcommand(1);
  int exit_code = 0;
  messplus::tools::RegisterDemo(app, &exit_code);
  messplus::tools::RegisterEval(app, &exit_code);
  messplus::tools::RegisterSim(app, &exit_code);
  messplus::tools::RegisterPipeline(app, &exit_code);
  messplus::tools::RegisterPublish(app, &exit_code);
  messplus::tools::RegisterLoadgen(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "messplus: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
