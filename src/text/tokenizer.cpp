#include "text/tokenizer.h"

#include "text/bpe.h"
#include "text/tokenizer_json.h"
#include "text/tokenizer_pipeline.h"
#include "text/unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_set>

namespace vlm::text {
namespace {

using nlohmann::json;
namespace u = unicode;

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = true;
};

struct Match {
  size_t begin, end, token;  // token: index into the added-token list
};

// Leftmost-longest literal matching of the added tokens, the semantics of the
// Aho-Corasick automaton HF builds. There are few added tokens and they share
// few first bytes, so a first-byte filter plus direct comparison is plenty.
class AddedMatcher {
 public:
  void add(std::string pattern, size_t token) {
    if (pattern.empty()) return;
    const auto first = static_cast<unsigned char>(pattern[0]);
    by_first_[first].push_back(patterns_.size());
    patterns_.push_back({std::move(pattern), token});
  }
  void finish() {
    for (auto& list : by_first_) {
      std::stable_sort(list.begin(), list.end(), [this](size_t a, size_t b) {
        return patterns_[a].text.size() > patterns_[b].text.size();
      });
    }
  }
  bool empty() const { return patterns_.empty(); }

  void find(std::string_view s, std::vector<Match>& out) const {
    for (size_t i = 0; i < s.size();) {
      const auto& list = by_first_[static_cast<unsigned char>(s[i])];
      bool hit = false;
      for (const size_t k : list) {  // longest first
        const std::string& p = patterns_[k].text;
        if (s.size() - i >= p.size() && s.compare(i, p.size(), p) == 0) {
          out.push_back({i, i + p.size(), patterns_[k].token});
          i += p.size();
          hit = true;
          break;
        }
      }
      if (!hit) ++i;
    }
  }

 private:
  struct Entry {
    std::string text;
    size_t token;
  };
  std::vector<Entry> patterns_;
  std::array<std::vector<size_t>, 256> by_first_;
};

struct Segment {
  std::string text;
  int32_t id;  // an added token, or -1 for text still to tokenize
  bool at_start;
};

Expected<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error("cannot open ", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return make_error("error reading ", path);
  return ss.str();
}

// bos_token & co. in tokenizer_config.json: a string, an AddedToken dict, or null.
std::optional<std::string> config_token(const json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::string();  // explicitly none
}

size_t trailing_ws_start(std::string_view s) {
  size_t e = s.size();
  while (e > 0) {
    size_t b = e - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
    size_t i = b;
    if (!u::is_white_space(u::next_cp(s, i))) break;
    e = b;
  }
  return e;
}

size_t leading_ws_len(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!u::is_white_space(u::next_cp(s, j))) break;
    i = j;
  }
  return i;
}

char32_t last_cp(std::string_view s) {
  size_t b = s.size() - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  return u::next_cp(s, b);
}

char32_t first_cp(std::string_view s) {
  size_t i = 0;
  return u::next_cp(s, i);
}

std::string python_strip(const std::string& s) {
  size_t b = 0;
  while (b < s.size()) {
    size_t i = b;
    if (!u::is_python_space(u::next_cp(s, i))) break;
    b = i;
  }
  size_t e = s.size();
  while (e > b) {
    size_t start = e - 1;
    while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    if (!u::is_python_space(u::next_cp(s, i))) break;
    e = start;
  }
  return s.substr(b, e - b);
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t prev = 0, pos;
  while ((pos = s.find(from, prev)) != std::string::npos) {
    out.append(s, prev, pos - prev);
    out += to;
    prev = pos + from.size();
  }
  if (prev == 0) return;
  out.append(s, prev, std::string::npos);
  s = std::move(out);
}

}  // namespace

struct Tokenizer::Impl {
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Decoder> decoder;
  PostProcessor post;

  std::vector<AddedToken> added;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> added_by_content;
  std::vector<int32_t> added_index;  // id -> index into `added`, -1 if not added
  std::unordered_set<std::string, StringHash, std::equal_to<>> special_contents;
  AddedMatcher raw_matcher;         // tokens with normalized=false, matched on the input
  AddedMatcher normalized_matcher;  // normalized=true, matched after normalization

  int32_t vocab_size = 0;
  int32_t bos = -1, eos = -1, pad = -1, unk = -1;
  // transformers' CLIPTokenizer turns the BPE end-of-word suffix into spaces and
  // strips the text after the backend's ByteLevel decoder, which ignores it.
  std::string suffix_to_space;
  bool clean_up_spaces = false;
  // Set for SentencePiece-style files without a pre-tokenizer, where the model
  // would otherwise run one BPE over the whole text (see marker_only_leads).
  std::string word_marker;

  bool token_of(int32_t id, std::string_view& token) const {
    if (id >= 0 && static_cast<size_t>(id) < added_index.size() && added_index[static_cast<size_t>(id)] >= 0) {
      token = added[static_cast<size_t>(added_index[static_cast<size_t>(id)])].content;
      return true;
    }
    return model->id_to_token(id, token);
  }

  // Cuts before each marker that starts a run of markers.
  void tokenize_by_words(std::string_view text, std::vector<int32_t>& ids) const {
    const std::string_view mk = word_marker;
    size_t start = 0;
    for (size_t pos = text.find(mk, 1); pos != std::string_view::npos; pos = text.find(mk, pos + mk.size())) {
      if (pos >= mk.size() && text.compare(pos - mk.size(), mk.size(), mk) == 0) continue;
      model->tokenize(text.substr(start, pos - start), ids);
      start = pos;
    }
    model->tokenize(text.substr(start), ids);
  }

  void split_added(std::string text, bool at_start, const AddedMatcher& matcher, std::vector<Segment>& out) const;
  Status build(TokenizerJson& parsed, const json& cfg);
};

void Tokenizer::Impl::split_added(std::string text, bool at_start, const AddedMatcher& matcher,
                                  std::vector<Segment>& out) const {
  if (text.empty()) return;
  if (matcher.empty()) {
    out.push_back({std::move(text), -1, at_start});
    return;
  }
  std::vector<Match> matches;
  matcher.find(text, matches);
  if (matches.empty()) {
    out.push_back({std::move(text), -1, at_start});
    return;
  }
  const std::string_view s = text;
  size_t start_offset = 0;
  for (const Match& m : matches) {
    const AddedToken& tok = added[m.token];
    size_t start = m.begin, stop = m.end;
    if (tok.single_word) {
      const bool word_before = start > 0 && u::is_word_char(last_cp(s.substr(0, start)));
      const bool word_after = stop < s.size() && u::is_word_char(first_cp(s.substr(stop)));
      if (word_before || word_after) continue;
    }
    if (tok.lstrip) start = std::max(trailing_ws_start(s.substr(0, start)), start_offset);
    if (tok.rstrip) stop += leading_ws_len(s.substr(stop));
    // An earlier rstrip already swallowed this match's start; HF would emit
    // overlapping pieces here, which no real tokenizer relies on.
    if (start < start_offset) continue;
    if (start > start_offset) {
      out.push_back({std::string(s.substr(start_offset, start - start_offset)), -1, at_start && start_offset == 0});
    }
    out.push_back({std::string(), tok.id, false});
    start_offset = stop;
  }
  if (start_offset < s.size()) {
    out.push_back({std::string(s.substr(start_offset)), -1, at_start && start_offset == 0});
  }
}

Status Tokenizer::Impl::build(TokenizerJson& parsed, const json& cfg) {
  const json& tok = parsed.dom;
  if (!tok.is_object()) return make_error("tokenizer.json is not a JSON object");
  if (!tok.contains("model") || !tok["model"].is_object()) return make_error("tokenizer.json has no model");
  const json& mj = tok["model"];
  const std::string type = mj.value("type", std::string("BPE"));
  if (type != "BPE") return make_error("unsupported tokenizer model type `", type, "` (only BPE is implemented)");

  BpeOptions opt;
  auto str_or_empty = [&mj](const char* key) {
    return mj.contains(key) && mj[key].is_string() ? mj[key].get<std::string>() : std::string();
  };
  opt.unk_token = str_or_empty("unk_token");
  opt.continuing_subword_prefix = str_or_empty("continuing_subword_prefix");
  opt.end_of_word_suffix = str_or_empty("end_of_word_suffix");
  auto flag = [&mj](const char* key) { return mj.contains(key) && mj[key].is_boolean() && mj[key].get<bool>(); };
  opt.fuse_unk = flag("fuse_unk");
  opt.byte_fallback = flag("byte_fallback");
  opt.ignore_merges = flag("ignore_merges");
  if (mj.contains("dropout") && mj["dropout"].is_number() && mj["dropout"].get<double>() > 0.0) {
    return make_error("BPE dropout is not supported");
  }

  if (!parsed.has_vocab) return make_error("tokenizer.json model.vocab is missing or not an object");
  VLM_ASSIGN_OR_RETURN(model, BpeModel::create(std::move(parsed.vocab), parsed.merges, opt));
  parsed.merges = {};

  const json null_json;
  auto stage = [&tok, &null_json](const char* key) -> const json& { return tok.contains(key) ? tok[key] : null_json; };
  VLM_ASSIGN_OR_RETURN(normalizer, parse_normalizer(stage("normalizer")));
  VLM_ASSIGN_OR_RETURN(pre_tokenizer, parse_pre_tokenizer(stage("pre_tokenizer")));
  VLM_ASSIGN_OR_RETURN(decoder, parse_decoder(stage("decoder")));
  VLM_ASSIGN_OR_RETURN(post, parse_post_processor(stage("post_processor")));

  int32_t max_id = model->max_id();
  auto parse_added = [](const json& a, int32_t id) {
    AddedToken t;
    t.id = id;
    t.content = a.at("content").get<std::string>();
    t.special = a.value("special", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.single_word = a.value("single_word", false);
    t.normalized = a.value("normalized", !t.special);
    return t;
  };
  if (tok.contains("added_tokens") && tok["added_tokens"].is_array()) {
    for (const json& a : tok["added_tokens"]) added.push_back(parse_added(a, a.at("id").get<int32_t>()));
  }
  // transformers also registers the config's added_tokens_decoder entries; they
  // normally repeat tokenizer.json's list, so only missing ones are taken.
  if (cfg.is_object() && cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
    for (auto it = cfg["added_tokens_decoder"].begin(); it != cfg["added_tokens_decoder"].end(); ++it) {
      const std::string& key = it.key();
      if (key.empty() || key.size() > 9 || key.find_first_not_of("0123456789") != std::string::npos) {
        return make_error("tokenizer_config.json added_tokens_decoder key `", key, "` is not an id");
      }
      AddedToken t = parse_added(it.value(), std::stoi(key));
      const bool known = std::any_of(added.begin(), added.end(), [&t](const AddedToken& a) {
        return a.id == t.id || a.content == t.content;
      });
      if (!known) added.push_back(std::move(t));
    }
  }
  for (const AddedToken& t : added) {
    if (t.id < 0) return make_error("added token `", t.content, "` has a negative id");
    max_id = std::max(max_id, t.id);
  }
  vocab_size = max_id + 1;
  added_index.assign(static_cast<size_t>(vocab_size), -1);
  for (size_t k = 0; k < added.size(); ++k) {
    const AddedToken& t = added[k];
    added_index[static_cast<size_t>(t.id)] = static_cast<int32_t>(k);
    added_by_content.emplace(t.content, t.id);
    if (t.special) special_contents.insert(t.content);
    if (t.normalized) {
      // Matched against normalized text, so in its normalized form.
      std::string n = t.content;
      if (normalizer) normalizer->normalize(n);
      normalized_matcher.add(std::move(n), k);
    } else {
      raw_matcher.add(t.content, k);
    }
  }
  raw_matcher.finish();
  normalized_matcher.finish();

  if (!opt.end_of_word_suffix.empty() && !(decoder && decoder->handles_word_suffix())) {
    suffix_to_space = opt.end_of_word_suffix;
  }
  if (!opt.unk_token.empty()) unk = model->token_to_id(opt.unk_token);
  if (!pre_tokenizer && opt.continuing_subword_prefix.empty() && opt.end_of_word_suffix.empty() &&
      model->marker_only_leads("\xE2\x96\x81")) {
    word_marker = "\xE2\x96\x81";
  }

  // Special ids: tokenizer_config.json is what transformers goes by; without
  // it, infer them from what the post-processor adds.
  auto id_of = [this](const std::string& s) -> int32_t {
    const auto it = added_by_content.find(s);
    return it != added_by_content.end() ? it->second : model->token_to_id(s);
  };
  auto resolve = [&](const char* key, int32_t fallback) {
    const auto name = config_token(cfg, key);
    if (!name) return fallback;
    return name->empty() ? -1 : id_of(*name);
  };
  bos = resolve("bos_token", post.prefix.empty() ? -1 : post.prefix.front());
  eos = resolve("eos_token", post.suffix.empty() ? -1 : post.suffix.back());
  pad = resolve("pad_token", -1);
  unk = resolve("unk_token", unk);

  if (cfg.is_object()) {
    // transformers rebuilds the template from these flags when a config sets them.
    const bool has_bos_flag = cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean();
    const bool has_eos_flag = cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean();
    if (has_bos_flag || has_eos_flag) {
      const bool add_bos = has_bos_flag ? cfg["add_bos_token"].get<bool>() : !post.prefix.empty();
      const bool add_eos = has_eos_flag ? cfg["add_eos_token"].get<bool>() : !post.suffix.empty();
      PostProcessor p;
      if (add_bos && bos >= 0) p.prefix.push_back(bos);
      if (add_eos && eos >= 0) p.suffix.push_back(eos);
      post = std::move(p);
    }
    clean_up_spaces = cfg.contains("clean_up_tokenization_spaces") && cfg["clean_up_tokenization_spaces"].is_boolean() &&
                      cfg["clean_up_tokenization_spaces"].get<bool>();
  }
  return Status::Ok();
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Expected<std::unique_ptr<Tokenizer>> Tokenizer::from_json(std::string_view tokenizer_json,
                                                          std::string_view config_json) {
  VLM_ASSIGN_OR_RETURN(TokenizerJson tok, parse_tokenizer_json(tokenizer_json));
  json cfg;
  if (!config_json.empty()) {
    cfg = json::parse(config_json.begin(), config_json.end(), nullptr, false);
    if (cfg.is_discarded()) return make_error("tokenizer_config.json is not valid JSON");
  }
  auto impl = std::make_unique<Impl>();
  try {
    Status st = impl->build(tok, cfg);
    if (!st.ok()) return st.error();
  } catch (const std::exception& e) {
    // nlohmann throws on a field of the wrong type or a missing required key.
    return make_error("malformed tokenizer.json: ", e.what());
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

Expected<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::string& dir) {
  const std::string tok_path = dir + "/tokenizer.json";
  auto tok = read_file(tok_path);
  if (!tok.ok()) return make_error("tokenizer: ", tok.error().message);
  std::string cfg;
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (std::ifstream(cfg_path).good()) {
    auto c = read_file(cfg_path);
    if (!c.ok()) return make_error("tokenizer: ", c.error().message);
    cfg = std::move(c).value();
  }
  auto t = from_json(tok.value(), cfg);
  if (!t.ok()) return make_error(dir, ": ", t.error().message);
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  const Impl& m = *impl_;
  std::vector<Segment> raw;
  m.split_added(u::to_valid_utf8(text), true, m.raw_matcher, raw);
  std::vector<Segment> segs;
  segs.reserve(raw.size());
  for (Segment& s : raw) {
    if (s.id >= 0) {
      segs.push_back(std::move(s));
      continue;
    }
    if (m.normalizer) m.normalizer->normalize(s.text);
    m.split_added(std::move(s.text), s.at_start, m.normalized_matcher, segs);
  }

  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special) ids.insert(ids.end(), m.post.prefix.begin(), m.post.prefix.end());
  std::vector<Piece> pieces;
  for (Segment& s : segs) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    pieces.clear();
    pieces.push_back(Piece{std::move(s.text), s.at_start});
    if (m.pre_tokenizer) m.pre_tokenizer->pre_tokenize(pieces);
    for (const Piece& p : pieces) {
      if (m.word_marker.empty()) {
        m.model->tokenize(p.text, ids);
      } else {
        m.tokenize_by_words(p.text, ids);
      }
    }
  }
  if (add_special) ids.insert(ids.end(), m.post.suffix.begin(), m.post.suffix.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  bool truncated_tail = false;
  return decode_impl(ids, skip_special, truncated_tail);
}

std::string Tokenizer::decode_impl(std::span<const int32_t> ids, bool skip_special, bool& truncated_tail) const {
  const Impl& m = *impl_;
  truncated_tail = false;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    std::string_view t;
    if (!m.token_of(id, t)) continue;
    if (skip_special && m.special_contents.count(t)) continue;
    tokens.emplace_back(t);
  }
  std::string text;
  if (m.decoder) {
    m.decoder->decode_chain(tokens, truncated_tail);
    for (const auto& t : tokens) text += t;
  } else {
    for (size_t k = 0; k < tokens.size(); ++k) {
      if (k) text += ' ';
      text += tokens[k];
    }
  }
  if (!m.suffix_to_space.empty()) {
    replace_all(text, m.suffix_to_space, " ");
    text = python_strip(text);
  }
  if (m.clean_up_spaces) {
    // transformers' clean_up_tokenization, in its order.
    static const std::pair<const char*, const char*> kRules[] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : kRules) replace_all(text, from, to);
  }
  return text;
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  const auto it = impl_->added_by_content.find(token);
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  std::string_view t;
  return impl_->token_of(id, t) ? std::string(t) : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->added_index.size()) return false;
  const int32_t k = impl_->added_index[static_cast<size_t>(id)];
  return k >= 0 && impl_->added[static_cast<size_t>(k)].special;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::pad_id() const { return impl_->pad; }
int32_t Tokenizer::unk_id() const { return impl_->unk; }

std::vector<int32_t> Tokenizer::special_ids() const {
  std::vector<int32_t> out;
  for (const AddedToken& t : impl_->added) {
    if (t.special) out.push_back(t.id);
  }
  return out;
}

// ---------------------------------------------------------------- streaming

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special) : tok_(&tok), skip_special_(skip_special) {}

namespace {

// Length of the longest prefix of `text` equal to `printed`, cut back to a
// character boundary.
size_t common_prefix(const std::string& text, const std::string& printed) {
  if (text.compare(0, printed.size(), printed) == 0) return printed.size();
  size_t k = 0;
  while (k < printed.size() && k < text.size() && text[k] == printed[k]) ++k;
  while (k > 0 && k < text.size() && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
  return k;
}

}  // namespace

std::string StreamDecoder::push(int32_t id) {
  ids_.push_back(id);
  bool truncated = false;
  const std::string text = tok_->decode_impl(ids_, skip_special_, truncated);
  // A character's remaining bytes come within the next 3 tokens, give or take
  // a skipped special token; a tail that stays truncated longer than this is
  // garbage and is printed as it is (as U+FFFD).
  constexpr int kMaxTruncatedPushes = 16;
  truncated_pushes_ = truncated ? truncated_pushes_ + 1 : 0;
  if (truncated && truncated_pushes_ < kMaxTruncatedPushes) return {};
  if (text.size() <= prefix_.size()) return {};
  // The printed part is stable for every shipped decoder; the fallback only
  // keeps odd decoders from printing garbage offsets.
  std::string out = text.substr(common_prefix(text, prefix_));
  // The tokens just printed become the context that the next ones are decoded
  // after, so spaces and merges at the boundary come out as in a full decode.
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<ptrdiff_t>(context_));
  context_ = ids_.size();
  prefix_ = tok_->decode(ids_, skip_special_);
  return out;
}

std::string StreamDecoder::flush() {
  const std::string text = tok_->decode(ids_, skip_special_);
  std::string out = text.size() > prefix_.size() ? text.substr(common_prefix(text, prefix_)) : std::string();
  ids_.clear();
  context_ = 0;
  prefix_.clear();
  truncated_pushes_ = 0;
  return out;
}

}  // namespace vlm::text
