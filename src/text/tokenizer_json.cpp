#include "text/tokenizer_json.h"

namespace vlm::text {
namespace {

using nlohmann::json;

// Builds the DOM like nlohmann's own parser, except under model.vocab and
// model.merges, whose entries are moved into TokenizerJson directly.
class Sax {
 public:
  explicit Sax(TokenizerJson& out) : out_(out) {}

  bool null() { return scalar(json(nullptr), "null"); }
  bool boolean(bool v) { return scalar(json(v), "a boolean"); }
  bool number_integer(json::number_integer_t v) { return integer(v); }
  bool number_unsigned(json::number_unsigned_t v) {
    return integer(v > static_cast<json::number_unsigned_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v));
  }
  bool number_float(json::number_float_t v, const json::string_t&) { return scalar(json(v), "a float"); }
  bool binary(json::binary_t&) { return fail("binary data in tokenizer.json"); }

  bool string(json::string_t& v) {
    switch (mode_) {
      case Mode::Vocab:
        return fail("model.vocab entry `", key_, "` is a string, not an id");
      case Mode::Merges: {
        // Older files: "left right"; tokens never contain the separating space.
        const size_t sp = v.find(' ');
        if (sp == std::string::npos || v.find(' ', sp + 1) != std::string::npos) {
          return fail("tokenizer merge `", v, "` is not two space-separated tokens");
        }
        const std::string_view sv = v;
        out_.merges.add(sv.substr(0, sp), sv.substr(sp + 1));
        return true;
      }
      case Mode::MergePair:
        if (pair_.size() == 2) return fail("tokenizer merge #", out_.merges.size(), " has more than two tokens");
        pair_.push_back(v);
        return true;
      case Mode::Dom:
        add(json(std::move(v)));
        return true;
    }
    return true;
  }

  bool start_object(size_t) {
    if (mode_ == Mode::Dom && at_model_field("vocab")) {
      mode_ = Mode::Vocab;
      out_.has_vocab = true;
      ++depth_;
      return true;
    }
    if (mode_ != Mode::Dom) return fail("unexpected object inside model.", mode_ == Mode::Vocab ? "vocab" : "merges");
    json* obj = add(json::object());
    stack_.push_back(obj);
    ++depth_;
    return true;
  }

  bool key(json::string_t& k) {
    if (mode_ == Mode::Vocab) {
      key_.assign(k);  // copy, not move: keeps the lexer's buffer allocated
      return true;
    }
    if (depth_ == 1) top_key_ = k;
    if (depth_ == 2) model_key_ = k;
    key_ = std::move(k);
    return true;
  }

  bool end_object() {
    --depth_;
    if (mode_ == Mode::Vocab) {
      mode_ = Mode::Dom;
      return true;
    }
    stack_.pop_back();
    return true;
  }

  bool start_array(size_t) {
    if (mode_ == Mode::Dom && at_model_field("merges")) {
      mode_ = Mode::Merges;
      ++depth_;
      return true;
    }
    if (mode_ == Mode::Merges) {
      mode_ = Mode::MergePair;
      pair_.clear();
      ++depth_;
      return true;
    }
    if (mode_ != Mode::Dom) return fail("unexpected array inside model.", mode_ == Mode::Vocab ? "vocab" : "merges");
    json* arr = add(json::array());
    stack_.push_back(arr);
    ++depth_;
    return true;
  }

  bool end_array() {
    --depth_;
    if (mode_ == Mode::MergePair) {
      if (pair_.size() != 2) return fail("tokenizer merge #", out_.merges.size(), " is not a pair of tokens");
      out_.merges.add(pair_[0], pair_[1]);
      mode_ = Mode::Merges;
      return true;
    }
    if (mode_ == Mode::Merges) {
      mode_ = Mode::Dom;
      return true;
    }
    stack_.pop_back();
    return true;
  }

  bool parse_error(size_t pos, const std::string&, const nlohmann::detail::exception& e) {
    return fail("tokenizer.json is not valid JSON (byte ", pos, "): ", e.what());
  }

  const std::string& error() const { return error_; }

 private:
  enum class Mode { Dom, Vocab, Merges, MergePair };

  bool at_model_field(const char* name) const {
    return depth_ == 2 && stack_.size() == 2 && top_key_ == "model" && model_key_ == name;
  }

  template <class... Args>
  bool fail(const Args&... args) {
    if (error_.empty()) error_ = cat(args...);
    return false;
  }

  bool integer(int64_t v) {
    if (mode_ == Mode::Vocab) {
      if (v < 0 || v > INT32_MAX) return fail("model.vocab id of `", key_, "` is out of range");
      out_.vocab.add(key_, static_cast<int32_t>(v));
      return true;
    }
    return scalar(json(v), "a number");
  }

  bool scalar(json v, const char* what) {
    if (mode_ == Mode::Vocab) return fail("model.vocab entry `", key_, "` is ", what, ", not an id");
    if (mode_ != Mode::Dom) return fail("model.merges holds ", what, ", not tokens");
    add(std::move(v));
    return true;
  }

  // Inserts into the innermost container; returns the stored value.
  json* add(json v) {
    if (stack_.empty()) {
      out_.dom = std::move(v);
      return &out_.dom;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[key_];
    slot = std::move(v);
    return &slot;
  }

  TokenizerJson& out_;
  std::vector<json*> stack_;
  Mode mode_ = Mode::Dom;
  int depth_ = 0;
  std::string key_;
  std::string top_key_, model_key_;
  std::vector<std::string> pair_;
  std::string error_;
};

}  // namespace

Expected<TokenizerJson> parse_tokenizer_json(std::string_view text) {
  TokenizerJson out;
  // Qwen's file: ~150k vocab entries and as many merges; reserving avoids rehashing.
  out.vocab.reserve(text.size() / 40, text.size() / 8);
  Sax sax(out);
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &sax);
  } catch (const std::exception& e) {
    return make_error("tokenizer.json: ", e.what());
  }
  if (!ok) return make_error(sax.error().empty() ? std::string("tokenizer.json is not valid JSON") : sax.error());
  return out;
}

}  // namespace vlm::text
