#include "frontends/server/server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>

namespace vlm::server {
namespace {

using json = nlohmann::json;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump_json(error_body(e)), "application/json");
}

ApiError server_error(std::string message, int status = 500, std::string code = "internal_error") {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = status == 503 ? "server_busy" : "server_error";
  e.code = std::move(code);
  return e;
}

// Releases an admission slot when the request (or its stream) is done.
struct Ticket {
  explicit Ticket(std::atomic<int>* a) : admitted(a) {}
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  ~Ticket() { admitted->fetch_sub(1); }
  std::atomic<int>* admitted;
};

}  // namespace

struct Server::Impl {
  const models::Model& model;
  ServerOptions opt;
  httplib::Server http;
  std::mutex model_mu;           // the model runs one request at a time
  std::atomic<int> admitted{0};  // running + waiting requests
  std::atomic<uint64_t> next_id{0};
  uint64_t id_salt = std::random_device{}();
  int64_t started = unix_now();

  Impl(const models::Model& m, ServerOptions o) : model(m), opt(std::move(o)) {
    if (opt.model_name.empty()) opt.model_name = std::filesystem::path(model.dir()).lexically_normal().filename().string();
    if (opt.model_name.empty()) opt.model_name = model.family();
    setup();
  }

  std::string new_id() {
    char buf[40];
    std::snprintf(buf, sizeof buf, "chatcmpl-%08llx%08llx", (unsigned long long)(id_salt & 0xffffffffu),
                  (unsigned long long)next_id.fetch_add(1));
    return buf;
  }

  void setup() {
    // Waiting requests hold a worker thread each; a few more keep /health and 503s answering.
    const size_t threads = size_t(std::max(1, opt.max_waiting)) + 4;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http.set_payload_max_length(opt.limits.max_body_bytes);
    // Idle keep-alive connections each pin a worker; let them go soon.
    http.set_keep_alive_timeout(2);
    http.set_read_timeout(30);
    http.set_write_timeout(30);

    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      ApiError e;
      e.status = res.status;
      if (res.status == 404) {
        e.message = "no such endpoint: " + req.method + " " + req.path;
        e.code = "not_found";
      } else if (res.status == 413) {
        e.message = "request body is too large";
        e.code = "body_too_large";
      } else if (res.status == 405) {
        e.message = "method not allowed";
        e.code = "method_not_allowed";
      } else {
        e.message = cat("HTTP ", res.status);
        e.code = "http_error";
      }
      res.set_content(dump_json(error_body(e)), "application/json");
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown exception";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& ex) {
        what = ex.what();
      } catch (...) {
      }
      send_error(res, server_error("internal error: " + what));
    });
    if (opt.log_requests) {
      http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
        std::fprintf(stderr, "%s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
      });
    }

    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(index_html(), "text/html; charset=utf-8");
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      json j = {{"status", "ok"}, {"model", opt.model_name}, {"busy", admitted.load()}};
      res.set_content(dump_json(j), "application/json");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump_json(models_response(opt.model_name, started)), "application/json");
    });
    http.Post("/v1/chat/completions",
              [this](const httplib::Request& req, httplib::Response& res) { chat(req, res); });
  }

  void chat(const httplib::Request& req, httplib::Response& res) {
    // Admission comes first so that image decoding, the costly part of parsing, is bounded by
    // the queue too, not only by the number of worker threads.
    if (admitted.fetch_add(1) >= 1 + opt.max_waiting) {
      admitted.fetch_sub(1);
      return send_error(res, server_error("the server is busy; retry later", 503, "server_busy"));
    }
    auto ticket = std::make_shared<Ticket>(&admitted);
    auto parsed = parse_chat_request(req.body, opt.limits);
    if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(res, *e);
    auto request = std::make_shared<ChatRequest>(std::move(std::get<ChatRequest>(parsed)));
    auto lock = std::make_shared<std::unique_lock<std::mutex>>(model_mu);

    models::PrepareOptions po;
    po.video_frame_budget = true;
    auto prompt = model.prepare(request->messages, request->media, po);
    if (!prompt.ok()) {
      ApiError e;
      e.message = prompt.error().message;
      e.code = "invalid_prompt";
      return send_error(res, e);
    }
    if (int64_t(prompt->ids.size()) > opt.limits.max_prompt_tokens) {
      ApiError e;
      e.message = cat("the prompt is ", prompt->ids.size(), " tokens; this server takes at most ",
                      opt.limits.max_prompt_tokens);
      e.code = "context_length_exceeded";
      e.param = "messages";
      return send_error(res, e);
    }
    request->media.clear();  // the pixels are in the prompt now
    auto shared_prompt = std::make_shared<models::Prompt>(std::move(prompt.value()));
    const std::string id = new_id();
    const int64_t created = unix_now();

    if (!request->stream) {
      StopFilter filter(request->stop);
      std::string text;
      auto out = runtime::generate(model, *shared_prompt, generate_options(*request, model), [&](const std::string& piece) {
        text += filter.push(piece);
        return !filter.stopped();
      });
      if (!out.ok()) return send_error(res, server_error("generation failed: " + out.error().message));
      text += filter.flush();
      const char* finish = out->stopped_by_eos || filter.stopped() ? "stop" : "length";
      res.set_content(dump_json(completion_response(id, created, opt.model_name, text, finish, out->prompt_tokens,
                                                    int64_t(out->tokens.size()))),
                      "application/json");
      return;
    }

    // The provider runs on this worker thread after the handler returns, so the lock taken
    // here (and released when the provider is destroyed) stays with one thread.
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, request, shared_prompt, ticket, lock, id, created](size_t, httplib::DataSink& sink) {
          try {
            return stream(*request, *shared_prompt, id, created, sink);
          } catch (...) {
            return false;  // headers are gone; dropping the connection is all that is left
          }
        });
  }

  bool stream(const ChatRequest& request, const models::Prompt& prompt, const std::string& id, int64_t created,
              httplib::DataSink& sink) {
    bool alive = true;
    auto send = [&](const json& j) {
      if (alive) {
        const std::string ev = sse_event(j);
        alive = sink.write(ev.data(), ev.size());
      }
      return alive;
    };
    send(stream_chunk(id, created, opt.model_name, {{"role", "assistant"}, {"content", ""}}, nullptr));
    StopFilter filter(request.stop);
    auto out = runtime::generate(model, prompt, generate_options(request, model), [&](const std::string& piece) {
      if (!alive) return false;
      const std::string text = filter.push(piece);
      if (!text.empty()) send(stream_chunk(id, created, opt.model_name, {{"content", text}}, nullptr));
      // A failed write means the client went away: stop spending the model on it.
      return alive && !filter.stopped();
    });
    if (!alive) {
      cancelled.fetch_add(1);
      return false;
    }
    if (!out.ok()) {
      send(error_body(server_error("generation failed: " + out.error().message)));
    } else {
      if (std::string tail = filter.flush(); !tail.empty())
        send(stream_chunk(id, created, opt.model_name, {{"content", tail}}, nullptr));
      const char* finish = out->stopped_by_eos || filter.stopped() ? "stop" : "length";
      send(stream_chunk(id, created, opt.model_name, json::object(), finish));
      if (request.include_usage) {
        const int64_t p = out->prompt_tokens, c = int64_t(out->tokens.size());
        json usage = stream_chunk(id, created, opt.model_name, json::object(), nullptr);
        usage["choices"] = json::array();
        usage["usage"] = {{"prompt_tokens", p}, {"completion_tokens", c}, {"total_tokens", p + c}};
        send(usage);
      }
    }
    static const char kDone[] = "data: [DONE]\n\n";
    if (alive) alive = sink.write(kDone, sizeof kDone - 1);
    if (!alive) {
      cancelled.fetch_add(1);
      return false;
    }
    sink.done();
    return true;
  }

  std::atomic<uint64_t> cancelled{0};
};

Server::Server(const models::Model& model, ServerOptions opt) : impl_(std::make_unique<Impl>(model, std::move(opt))) {}
Server::~Server() { stop(); }

Expected<int> Server::bind() {
  auto& o = impl_->opt;
  if (o.port == 0) {
    const int port = impl_->http.bind_to_any_port(o.host);
    if (port <= 0) return make_error("cannot listen on ", o.host, " (any port)");
    o.port = port;
    return port;
  }
  if (!impl_->http.bind_to_port(o.host, o.port)) return make_error("cannot listen on ", o.host, ":", o.port);
  return o.port;
}

Status Server::serve() {
  if (!impl_->http.listen_after_bind()) return make_error("server stopped with an error");
  return Status::Ok();
}

void Server::stop() { impl_->http.stop(); }

uint64_t Server::cancelled_streams() const { return impl_->cancelled.load(); }

}  // namespace vlm::server
