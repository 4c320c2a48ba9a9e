// `vlm serve`: an OpenAI-compatible HTTP server (POST /v1/chat/completions, GET /v1/models,
// GET /health) and a small chat page at GET /. One request at a time runs on the model; up to
// `max_waiting` more wait for it, beyond that the server answers 503.
#pragma once
#include <memory>
#include <string>

#include "core/status.h"
#include "frontends/server/api.h"
#include "models/model.h"

namespace vlm::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (bind() says which)
  std::string model_name;  // reported by /v1/models and in responses; default: the folder's name
  ApiLimits limits;
  int max_waiting = 8;
  bool log_requests = true;  // one line per request on stderr
};

class Server {
 public:
  // The model must outlive the server.
  Server(const models::Model& model, ServerOptions opt);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; returns the port.
  Expected<int> bind();
  // Serves until stop(); call after bind().
  Status serve();
  // Safe from any thread (and from a signal-watching thread).
  void stop();
  // Streams ended early because the client went away (tests read this).
  uint64_t cancelled_streams() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The page served at GET / (self-contained HTML, CSS and JS).
const char* index_html();

}  // namespace vlm::server
