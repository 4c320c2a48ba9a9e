#include "text/tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace vlm::text {
namespace {

const std::string kTestdata = VLM_TESTDATA;

std::string dir_of(const std::string& name) {
  if (name == "qwen2_vl") return kTestdata + "/fixtures/qwen2_vl/model";
  return kTestdata + "/tokenizers/" + name;
}

// Tokenizers are big; load each once for the whole binary.
const Tokenizer& tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) {
    auto t = Tokenizer::load(dir_of(name));
    if (!t.ok()) {
      ADD_FAILURE() << t.error().message;
      std::abort();
    }
    slot = std::move(t).value();
  }
  return *slot;
}

const nlohmann::json& corpus() {
  static const nlohmann::json c = [] {
    std::ifstream f(kTestdata + "/fixtures/tokenizers/corpus.json");
    std::stringstream ss;
    ss << f.rdbuf();
    return nlohmann::json::parse(ss.str());
  }();
  return c;
}

std::string show(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

class CorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusTest, MatchesHuggingFace) {
  const std::string name = GetParam();
  const Tokenizer& tok = tokenizer(name);
  const auto& strings = corpus()["strings"];
  const auto& ref = corpus()["tokenizers"][name];
  ASSERT_EQ(strings.size(), ref["encode"].size());
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string s = strings[i].get<std::string>();
    const auto want = ref["encode"][i].get<std::vector<int32_t>>();
    const auto want_plain = ref["encode_no_special"][i].get<std::vector<int32_t>>();
    const auto want_text = ref["decode"][i].get<std::string>();
    const auto got = tok.encode(s, true);
    const auto got_plain = tok.encode(s, false);
    EXPECT_EQ(show(got), show(want)) << name << " encode #" << i << " `" << s << "`";
    EXPECT_EQ(show(got_plain), show(want_plain)) << name << " encode_no_special #" << i << " `" << s << "`";
    EXPECT_EQ(tok.decode(want, false), want_text) << name << " decode #" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, CorpusTest, ::testing::Values("qwen2_vl", "llava", "clip"));

// The model fixtures hold real chat prompts with the processor's input_ids
// (image/video pads expanded) and greedy generations with their text.
TEST(Tokenizer, MatchesModelFixturePrompts) {
  int checked = 0;
  for (const char* family : {"qwen2_vl", "qwen2_5_vl", "llava"}) {
    const std::filesystem::path root = kTestdata + "/fixtures/" + family;
    if (!std::filesystem::exists(root / "model" / "tokenizer.json") || !std::filesystem::exists(root / "cases")) continue;
    auto tok = Tokenizer::load((root / "model").string());
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    for (const auto& entry : std::filesystem::directory_iterator(root / "cases")) {
      std::ifstream f(entry.path() / "case.json");
      std::stringstream ss;
      ss << f.rdbuf();
      const auto c = nlohmann::json::parse(ss.str(), nullptr, false);
      if (c.is_discarded() || !c.contains("prompt")) continue;
      const std::string where = std::string(family) + "/" + entry.path().filename().string();
      // Collapse each run of a repeated pad token back to the one in the prompt.
      std::vector<int32_t> want;
      for (const int32_t id : c["input_ids"].get<std::vector<int32_t>>()) {
        const std::string t = (*tok)->id_to_token(id);
        const bool pad = t == "<|image_pad|>" || t == "<|video_pad|>" || t == "<image>";
        if (pad && !want.empty() && want.back() == id) continue;
        want.push_back(id);
      }
      EXPECT_EQ(show((*tok)->encode(c["prompt"].get<std::string>(), true)), show(want)) << where;
      EXPECT_EQ((*tok)->decode(c["generated_ids"].get<std::vector<int32_t>>(), true), c["generated_text"].get<std::string>())
          << where;
      ++checked;
    }
  }
  if (checked == 0) GTEST_SKIP() << "no model fixtures with prompts";
}

TEST(Tokenizer, QwenSpecialTokensAreSingleIds) {
  const Tokenizer& tok = tokenizer("qwen2_vl");
  EXPECT_EQ(tok.token_to_id("<|image_pad|>"), 151655);
  EXPECT_EQ(tok.id_to_token(151655), "<|image_pad|>");
  EXPECT_TRUE(tok.is_special(151655));
  EXPECT_FALSE(tok.is_special(151657));  // <tool_call> is added but not special
  EXPECT_FALSE(tok.is_special(9707));
  const auto ids = tok.encode("<|vision_start|><|image_pad|><|image_pad|><|vision_end|>", false);
  EXPECT_EQ(show(ids), show({151652, 151655, 151655, 151653}));
  EXPECT_EQ(tok.bos_id(), -1);
  EXPECT_EQ(tok.eos_id(), 151645);  // <|im_end|> per tokenizer_config.json
  EXPECT_EQ(tok.pad_id(), 151643);
  EXPECT_EQ(tok.vocab_size(), 151669);
  EXPECT_EQ(tok.token_to_id("no such token"), -1);
  EXPECT_EQ(tok.id_to_token(-1), "");
  EXPECT_EQ(tok.id_to_token(tok.vocab_size()), "");
}

TEST(Tokenizer, LlavaAndClipSpecialIds) {
  const Tokenizer& llava = tokenizer("llava");
  EXPECT_EQ(llava.bos_id(), 1);
  EXPECT_EQ(llava.eos_id(), 2);
  EXPECT_EQ(llava.token_to_id("<image>"), 32000);
  EXPECT_EQ(show(llava.encode("<image>\nUSER", false)).substr(0, 6), "[32000");
  const Tokenizer& clip = tokenizer("clip");
  EXPECT_EQ(clip.bos_id(), 49406);
  EXPECT_EQ(clip.eos_id(), 49407);
}

TEST(Tokenizer, DecodeSkipsSpecialTokens) {
  const Tokenizer& qwen = tokenizer("qwen2_vl");
  const auto ids = qwen.encode("<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(qwen.decode(ids, true), "user\nhi");
  const Tokenizer& llava = tokenizer("llava");
  EXPECT_EQ(llava.decode(llava.encode("Hello world"), true), "Hello world");
  const Tokenizer& clip = tokenizer("clip");
  EXPECT_EQ(clip.decode(clip.encode("Hello world"), true), "hello world");
  // Unknown ids are dropped rather than crashing.
  const std::vector<int32_t> bad = {-5, 9707, 1 << 30};
  EXPECT_EQ(qwen.decode(bad), "Hello");
}

std::string stream_all(const Tokenizer& tok, const std::vector<int32_t>& ids, std::vector<std::string>* parts = nullptr) {
  StreamDecoder sd(tok);
  std::string all;
  for (const int32_t id : ids) {
    const std::string piece = sd.push(id);
    if (parts) parts->push_back(piece);
    all += piece;
  }
  all += sd.flush();
  return all;
}

TEST(StreamDecoder, QwenMultiByteCharSplitAcrossTokens) {
  const Tokenizer& tok = tokenizer("qwen2_vl");
  // 😀 is F0 9F 98 80; Qwen's byte-level vocab has the single-byte tokens, so
  // feeding those ids one by one splits the char across four tokens.
  const auto ids_a = tok.encode("ok", false);
  std::vector<int32_t> ids = ids_a;
  for (const char* b : {"ð", "Ł", "ĺ", "Ģ"}) {  // byte-level chars of F0 9F 98 80
    const int32_t id = tok.token_to_id(b);
    ASSERT_GE(id, 0) << b;
    ids.push_back(id);
  }
  ASSERT_EQ(tok.decode(ids), "ok\xF0\x9F\x98\x80");
  std::vector<std::string> parts;
  EXPECT_EQ(stream_all(tok, ids, &parts), "ok\xF0\x9F\x98\x80");
  ASSERT_EQ(parts.size(), ids.size());
  EXPECT_EQ(parts[ids_a.size()], "");
  EXPECT_EQ(parts[ids_a.size() + 1], "");
  EXPECT_EQ(parts[ids_a.size() + 2], "");
  EXPECT_EQ(parts.back(), "\xF0\x9F\x98\x80");
  for (const auto& p : parts) EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos) << "garbage printed";
}

TEST(StreamDecoder, RealReplacementCharIsPrintedAtOnce) {
  const Tokenizer& tok = tokenizer("qwen2_vl");
  const auto ids = tok.encode("x\xEF\xBF\xBD", false);  // "x" then a genuine U+FFFD
  std::vector<std::string> parts;
  EXPECT_EQ(stream_all(tok, ids, &parts), "x\xEF\xBF\xBD");
  EXPECT_EQ(parts.back().substr(parts.back().size() - 3), "\xEF\xBF\xBD");
}

TEST(StreamDecoder, LlavaByteFallbackSplitAcrossTokens) {
  const Tokenizer& tok = tokenizer("llava");
  // Korean text goes through <0xNN> byte fallback pieces for rare chars.
  const std::string text = "emoji 😀👍🏽 한국어 문장입니다. Hello world";
  const auto ids = tok.encode(text, true);
  std::vector<std::string> parts;
  EXPECT_EQ(stream_all(tok, ids, &parts), tok.decode(ids, true));
  for (const auto& p : parts) EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos) << "garbage printed";
}

TEST(StreamDecoder, MatchesFullDecodeOnCorpus) {
  for (const char* name : {"qwen2_vl", "llava", "clip"}) {
    const Tokenizer& tok = tokenizer(name);
    for (const auto& s : corpus()["strings"]) {
      const auto ids = tok.encode(s.get<std::string>(), true);
      EXPECT_EQ(stream_all(tok, ids), tok.decode(ids, true)) << name << " `" << s.get<std::string>() << "`";
    }
  }
}

TEST(Tokenizer, MissingDirectoryIsAnError) {
  auto t = Tokenizer::load(kTestdata + "/does/not/exist");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("tokenizer.json"), std::string::npos) << t.error().message;
}

TEST(Tokenizer, CorruptJsonIsAnError) {
  const auto dir = std::filesystem::temp_directory_path() / ("vlm_tok_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& body) {
    std::ofstream(dir / "tokenizer.json") << body;
    return Tokenizer::load(dir.string());
  };
  EXPECT_FALSE(write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0").ok());  // truncated
  EXPECT_FALSE(write("[1, 2, 3]").ok());
  EXPECT_FALSE(write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"zero\"}}}").ok());  // wrong type
  EXPECT_FALSE(write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}").ok());
  EXPECT_FALSE(write("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}").ok());
  auto bad_regex = write(
      "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
      " \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\"}}");
  ASSERT_FALSE(bad_regex.ok());
  EXPECT_NE(bad_regex.error().message.find("regex"), std::string::npos) << bad_regex.error().message;
  // A minimal valid file loads.
  auto ok = write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}}");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(show((*ok)->encode("abab")), "[2, 2]");  // no pre-tokenizer: one word
  std::ofstream(dir / "tokenizer_config.json") << "{not json";
  EXPECT_FALSE(Tokenizer::load(dir.string()).ok());
  std::filesystem::remove_all(dir);
}

TEST(Tokenizer, InvalidUtf8InputDoesNotCrash) {
  const Tokenizer& tok = tokenizer("qwen2_vl");
  const std::string bad = "a\xFF\xC3(\xE4\xBD";
  const auto ids = tok.encode(bad);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(tok.decode(ids), "a\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD");
}

// A megabyte of mixed-script text round-trips (speed is measured in bench/, not here).
TEST(Tokenizer, MegabyteOfTextRoundTrips) {
  auto t = Tokenizer::load(dir_of("qwen2_vl"));
  ASSERT_TRUE(t.ok());
  std::string text;
  for (const auto& s : corpus()["strings"]) {
    // Skip the strings NFC changes, so the round trip below is the identity.
    const std::string str = s.get<std::string>();
    if ((*t)->decode((*t)->encode(str)) == str) text += str + "\n";
  }
  while (text.size() < (1u << 20)) text += text;
  const auto ids = (*t)->encode(text, false);
  EXPECT_GT(ids.size(), text.size() / 8);
  EXPECT_TRUE((*t)->decode(ids) == text);  // not EXPECT_EQ: a 1 MB diff would be unreadable
}

}  // namespace
}  // namespace vlm::text
