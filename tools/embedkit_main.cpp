// The `embedkit` command-line tool.
#include "demo.hpp"

#include <embedkit/embedkit.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  CLI::App app{"embedkit: embedding tables on CUDA or the CPU, placed automatically"};
  app.require_subcommand(1);
  app.set_version_flag("--version", EMBEDKIT_VERSION_STRING);
  CLI::App* demo = app.add_subcommand("demo", "create a table, look rows up, print its summary and placement");
  CLI11_PARSE(app, argc, argv);
  try {
    if (demo->parsed()) return embedkit::tools::run_demo();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embedkit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
