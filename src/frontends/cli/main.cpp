// `vlm` command line: run, check, tokenize.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/threads.h"
#include "frontends/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"vlm: run vision-language models (Qwen2-VL, Qwen2.5-VL, ...) from Hugging Face checkpoint folders"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  int threads = 0;
  app.add_option("--threads", threads, "Worker threads (default: all cores)")->check(CLI::Range(0, 1024));
  vlm::cli::add_run(app);
  vlm::cli::add_check(app);
  vlm::cli::add_clip_commands(app);
  vlm::cli::add_tokenize(app);
  vlm::cli::add_make_random(app);
  vlm::cli::add_bench(app);
  vlm::cli::add_boxes(app);
  vlm::cli::add_serve(app);
  app.parse_complete_callback([&] {
    if (threads > 0) vlm::set_num_threads(threads);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return vlm::cli::exit_code();
}
