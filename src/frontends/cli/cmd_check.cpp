#include <cstdio>

#include "frontends/cli/commands.h"
#include "models/clip.h"
#include "runtime/check.h"
#include "text/tokenizer.h"

namespace vlm::cli {
namespace {

struct CheckArgs {
  std::string model;
  std::vector<std::string> cases;
  bool verbose = false;
};

int do_check(const CheckArgs& a) {
  std::unique_ptr<models::Model> model;
  std::unique_ptr<models::DualEncoder> dual;
  if (models::is_dual_encoder(a.model)) {
    auto d = models::DualEncoder::load(a.model);
    if (!d.ok()) {
      std::fprintf(stderr, "vlm: %s\n", d.error().message.c_str());
      return 2;
    }
    dual = std::move(d.value());
  } else {
    model = load_or_report(a.model, LoadArgs{}, /*quiet=*/true);
    if (!model) return 2;
  }
  runtime::CheckOptions opt;
  opt.verbose = a.verbose;
  int passed = 0, failed = 0;
  for (const auto& dir : a.cases) {
    runtime::CaseReport r = dual ? runtime::check_dual_case(*dual, dir, opt) : runtime::check_case(*model, dir, opt);
    if (r.ok) {
      ++passed;
      std::printf("PASS %s\n", r.name.c_str());
    } else {
      ++failed;
      if (!r.error.empty()) {
        std::printf("FAIL %s: error: %s\n", r.name.c_str(), r.error.c_str());
      } else {
        for (const auto& t : r.tensors)
          if (!t.ok) {
            std::printf("FAIL %s: %s, max error %.3g, tolerance atol %.0e rtol %.0e%s%s\n", r.name.c_str(),
                        t.name.c_str(), t.max_err, opt.model.atol, opt.model.rtol, t.note.empty() ? "" : ", ",
                        t.note.c_str());
            break;
          }
      }
    }
    if (a.verbose)
      for (const auto& t : r.tensors)
        std::printf("  %-40s %s max_err %.3g (%.2f of tolerance)%s%s\n", t.name.c_str(), t.ok ? "ok  " : "FAIL",
                    t.max_err, t.worst, t.note.empty() ? "" : "  ", t.note.c_str());
    std::fflush(stdout);
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

int do_tokenize(const std::string& dir, const std::string& text, bool no_special) {
  auto tok = text::Tokenizer::load(dir);
  if (!tok.ok()) {
    std::fprintf(stderr, "vlm: %s\n", tok.error().message.c_str());
    return 2;
  }
  auto ids = (*tok)->encode(text, !no_special);
  std::printf("[");
  for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? ", %d" : "%d", ids[i]);
  std::printf("]\n");
  return 0;
}

}  // namespace

void add_check(CLI::App& app) {
  auto a = std::make_shared<CheckArgs>();
  auto* c = app.add_subcommand("check", "Compare the whole pipeline with recorded reference cases (case.json + expected.safetensors)");
  c->add_option("--model,-m", a->model, "Checkpoint folder")->required();
  c->add_option("cases", a->cases, "Case folders")->required();
  c->add_flag("--verbose,-v", a->verbose, "Print the error of every compared tensor");
  c->callback([a] { set_exit_code(do_check(*a)); });
}

void add_tokenize(CLI::App& app) {
  struct Args { std::string model, text; bool no_special = false; };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  c->add_option("--model,-m", a->model, "Checkpoint folder holding tokenizer.json")->required();
  c->add_option("text", a->text, "Text to encode")->required();
  c->add_flag("--no-special", a->no_special, "Do not add BOS/EOS (special tokens in the text are still matched)");
  c->callback([a] { set_exit_code(do_tokenize(a->model, a->text, a->no_special)); });
}

}  // namespace vlm::cli
