// `vlm serve`: loads one model and serves the OpenAI-compatible API and the chat page.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include "frontends/cli/commands.h"
#include "frontends/server/server.h"

namespace vlm::cli {
namespace {

struct ServeArgs {
  LoadArgs load;
  std::string model, host = "127.0.0.1", name;
  int port = 8080;
  int max_body_mb = 64;
  int max_images = 16;
  int max_tokens = 8192;
  int max_waiting = 8;
  int64_t max_prompt_tokens = 32768;
  bool allow_local_files = false, quiet = false;
};

int do_serve(const ServeArgs& a) {
  int status = 0;
  auto model = load_or_report(a.model, a.load, false, &status);
  if (!model) return status;
  server::ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.model_name = a.name;
  so.max_waiting = a.max_waiting;
  so.log_requests = !a.quiet;
  so.limits.max_body_bytes = size_t(a.max_body_mb) << 20;
  so.limits.max_images = a.max_images;
  so.limits.max_tokens = a.max_tokens;
  so.limits.default_max_tokens = std::min(so.limits.default_max_tokens, a.max_tokens);
  so.limits.allow_local_files = a.allow_local_files;
  so.limits.max_prompt_tokens = a.max_prompt_tokens;

  // Signals go to one waiting thread (blocked everywhere else, the server's workers included,
  // since they inherit this mask), which stops the server so that serve() returns cleanly.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  server::Server srv(*model, so);
  auto port = srv.bind();
  if (!port.ok()) {
    std::fprintf(stderr, "vlm: %s\n", port.error().message.c_str());
    return 1;
  }
  std::fprintf(stderr, "serving %s on http://%s:%d/ (OpenAI API at /v1/chat/completions); Ctrl-C stops\n",
               model->dir().c_str(), a.host.c_str(), *port);
  if (a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1")
    std::fprintf(stderr, "vlm: warning: listening on %s; the API has no authentication\n", a.host.c_str());

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGINT || sig == SIGTERM) srv.stop();
  });
  Status st = srv.serve();
  // serve() may also end on its own (an error): wake the waiter with a signal it waits for.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  if (!st.ok()) {
    std::fprintf(stderr, "vlm: %s\n", st.error().message.c_str());
    return 1;
  }
  std::fprintf(stderr, "stopped\n");
  return 0;
}

}  // namespace

void add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto* c = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API with a chat page at /");
  c->add_option("--model,-m", a->model, "Checkpoint folder")->required();
  add_load_options(c, &a->load);
  c->add_option("--host", a->host, "Address to listen on (the API has no authentication: keep it local)")->capture_default_str();
  c->add_option("--port", a->port, "Port to listen on; 0 picks a free one")->capture_default_str()->check(CLI::Range(0, 65535));
  c->add_option("--name", a->name, "Model id reported by /v1/models (default: the folder's name)");
  c->add_option("--max-body-mb", a->max_body_mb, "Largest request body in MB")->capture_default_str()->check(CLI::Range(1, 1024));
  c->add_option("--max-images", a->max_images, "Most images in one request")->capture_default_str()->check(CLI::Range(0, 256));
  c->add_option("--max-tokens", a->max_tokens, "Most tokens one request may ask for")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  c->add_option("--max-prompt-tokens", a->max_prompt_tokens, "Longest prompt (template, text and image tokens) accepted")->capture_default_str()->check(CLI::Range(int64_t(16), int64_t(1) << 24));
  c->add_option("--max-waiting", a->max_waiting, "Requests that may wait for the model before the server answers 503")->capture_default_str()->check(CLI::Range(0, 1024));
  c->add_flag("--allow-local-files", a->allow_local_files, "Accept absolute local paths (file:///...) as image URLs");
  c->add_flag("--quiet,-q", a->quiet, "Do not log requests");
  c->callback([a] { set_exit_code(do_serve(*a)); });
}

}  // namespace vlm::cli
