#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "models/model.h"

namespace vlm::cli {

void add_run(CLI::App& app);
void add_check(CLI::App& app);
void add_clip_commands(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_make_random(CLI::App& app);
void add_bench(CLI::App& app);
void add_boxes(CLI::App& app);
void add_serve(CLI::App& app);

// Exit status set by the subcommand that ran (0 success, 1 failure, 2 bad input).
int exit_code();
void set_exit_code(int code);

// How a command loads its model: --weights and --mmap, the same on every command that loads one.
struct LoadArgs {
  std::string weights = "native";
  std::string vision_weights;  // empty: as --weights
  bool mmap = false;
};
void add_load_options(CLI::App* c, LoadArgs* a);
// --weights must name a format; an error message, or empty when valid.
std::string check_load_args(const LoadArgs& a);

// Loads a model with a progress line on stderr; prints the error and returns null on failure,
// setting *status (if given) to the exit status: 2 for bad --weights/--vision-weights, else 1.
std::unique_ptr<models::Model> load_or_report(const std::string& dir, const LoadArgs& la, bool quiet = false,
                                              int* status = nullptr);

}  // namespace vlm::cli
