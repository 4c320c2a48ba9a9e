// Pieces of the tokenizer that the corpus does not reach: regex dialect,
// UTF-8 helpers, BPE corner cases, the older Metaspace form of SentencePiece
// tokenizers, and added-token flags.
#include "text/tokenizer.h"
#include "text/tokenizer_regex.h"
#include "text/unicode.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vlm::text {
namespace {

namespace u = unicode;
using nlohmann::json;

const std::string kTestdata = VLM_TESTDATA;

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const Regex& re, const std::string& s) {
  std::vector<Span> m;
  re.find_all(s, m);
  std::vector<std::string> out;
  for (const auto& [b, e] : m) out.push_back(s.substr(b, e - b));
  return out;
}

constexpr const char* kQwenPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

TEST(TokenizerRegex, WhiteSpaceIsUnicodeWhiteSpaceLikeOniguruma) {
  auto re = Regex::compile(kQwenPattern);
  ASSERT_TRUE(re.ok()) << re.error().message;
  // U+0085 (NEL) is \s for Oniguruma but not for PCRE2's UCP \s.
  EXPECT_EQ(split(*re, "x\xC2\x85\xC2\x85!"), (std::vector<std::string>{"x", "\xC2\x85", "\xC2\x85", "!"}));
  // No-break space and ideographic space are whitespace for both.
  EXPECT_EQ(split(*re, "a\xC2\xA0\xC2\xA0" "b"), (std::vector<std::string>{"a", "\xC2\xA0", "\xC2\xA0" "b"}));
  EXPECT_EQ(split(*re, "Hello  world\n\n"), (std::vector<std::string>{"Hello", " ", " world", "\n\n"}));
  EXPECT_EQ(split(*re, "IT'S don'T"), (std::vector<std::string>{"IT", "'S", " don", "'T"}));
}

TEST(TokenizerRegex, TranslationKeepsClassesAndEscapes) {
  EXPECT_EQ(translate_pattern("a\\.b"), "a\\.b");
  EXPECT_EQ(translate_pattern("[\\]\\s]"), "[\\]\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]");
  EXPECT_EQ(translate_pattern("\\Q\\s\\E"), "\\Q\\s\\E");
  EXPECT_EQ(translate_pattern("[[:alpha:]]\\d"), "[[:alpha:]]\\d");
  auto re = Regex::compile("\\w+");
  ASSERT_TRUE(re.ok());
  // Combining marks are word chars for Oniguruma.
  EXPECT_EQ(split(*re, "e\xCC\x81t\xC3\xA9 x"), (std::vector<std::string>{"e\xCC\x81t\xC3\xA9", "x"}));
  EXPECT_FALSE(Regex::compile("(unclosed").ok());
}

TEST(Unicode, LossyUtf8LikeRust) {
  EXPECT_EQ(u::to_valid_utf8("ok"), "ok");
  // One U+FFFD per maximal invalid subpart: F0 9F 98 is one, C0 and 80 are one each.
  EXPECT_EQ(u::to_valid_utf8("\xF0\x9F\x98" "a\xC0\x80"), "\xEF\xBF\xBD" "a\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(u::to_valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_FALSE(u::is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

TEST(Unicode, TruncatedTail) {
  EXPECT_EQ(u::truncated_utf8_tail("abc"), 0u);
  EXPECT_EQ(u::truncated_utf8_tail("a\xE4"), 1u);
  EXPECT_EQ(u::truncated_utf8_tail("a\xE4\xBD"), 2u);
  EXPECT_EQ(u::truncated_utf8_tail("a\xE4\xBD\xA0"), 0u);  // complete
  EXPECT_EQ(u::truncated_utf8_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(u::truncated_utf8_tail("\xFF"), 0u);        // never valid
  EXPECT_EQ(u::truncated_utf8_tail("\xE0\x80"), 0u);    // overlong, never valid
  EXPECT_EQ(u::truncated_utf8_tail("\xEF\xBF\xBD"), 0u);  // a real U+FFFD
}

TEST(Unicode, NormalizeAndLowercase) {
  EXPECT_EQ(u::normalize("e\xCC\x81", u::NormForm::NFC), "\xC3\xA9");
  EXPECT_EQ(u::normalize("\xC3\xA9", u::NormForm::NFD), "e\xCC\x81");
  EXPECT_EQ(u::normalize("\xEF\xAC\x81", u::NormForm::NFKC), "fi");
  EXPECT_EQ(u::normalize("\xEF\xAC\x81", u::NormForm::NFC), "\xEF\xAC\x81");
  // Per-char lowercase: no final-sigma rule, and U+0130 becomes i + U+0307.
  EXPECT_EQ(u::to_lower("\xCE\xA3\xCE\xA3 \xC4\xB0X"), "\xCF\x83\xCF\x83 i\xCC\x87x");
}

TEST(Unicode, NfcShortcutAgreesWithUtf8proc) {
  // normalize() skips utf8proc on "inert" characters; check it against a
  // plain NFC of the whole string on random mixes of inert characters and
  // ones that compose with them (marks, jamo, kana voicing marks, singletons).
  const char32_t pool[] = {'a', 'e', ' ', 0xE9, 0x301, 0x308, 0x327, 0x4E00, 0x1100, 0x1161, 0x11A8, 0xAC00,
                           0x304B, 0x3099, 0x30AB, 0x309A, 0x212B, 0x2126, 0x0F73, 0x0958, 0x3000, 0x302A,
                           0x0410, 0x0483, 0x0301, 0xFF21, 0x2000, 0x2010, 0x0374, 0x1E0A, 0x0323, 0x0CC6, 0x0CD5};
  uint32_t seed = 12345;
  auto rnd = [&seed] { return (seed = seed * 1103515245u + 12345u) >> 16; };
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s;
    const int len = static_cast<int>(rnd() % 8);
    for (int k = 0; k < len; ++k) u::append_utf8(s, pool[rnd() % (sizeof(pool) / sizeof(pool[0]))]);
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
                                &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    ASSERT_GE(n, 0);
    const std::string ref(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
    ASSERT_EQ(u::normalize(s, u::NormForm::NFC), ref) << "iteration " << iter;
  }
}

std::unique_ptr<Tokenizer> make(const json& j, const std::string& config = "") {
  auto t = Tokenizer::from_json(j.dump(), config);
  if (!t.ok()) {
    ADD_FAILURE() << t.error().message;
    return nullptr;
  }
  return std::move(t).value();
}

std::vector<int32_t> ids(std::initializer_list<int32_t> v) { return v; }

TEST(Bpe, MergeOrderByRankThenLeftmost) {
  json j = {{"model",
             {{"type", "BPE"},
              {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"ba", 3}, {"aba", 4}}},
              {"merges", {"b a", "a b", "ab a"}}}}};
  auto t = make(j);
  ASSERT_TRUE(t);
  // "aba": "b a" has rank 0, so it wins over the leftmost "a b".
  EXPECT_EQ(t->encode("aba"), ids({0, 3}));
  // "abab": "b a" merges first (at 1), leaving a, ba, b.
  EXPECT_EQ(t->encode("abab"), ids({0, 3, 1}));
  EXPECT_EQ(t->decode(ids({0, 3, 1})), "a ba b");  // no decoder: tokens joined by spaces
}

TEST(Bpe, ByteFallbackAndUnk) {
  json vocab = {{"<unk>", 0}, {"a", 1}, {"<0xC3>", 2}, {"<0xA9>", 3}};
  json j = {{"model",
             {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}, {"unk_token", "<unk>"},
              {"byte_fallback", true}, {"fuse_unk", true}}},
            {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}}};
  auto t = make(j);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->encode("a\xC3\xA9" "a"), ids({1, 2, 3, 1}));  // é has no token: its bytes
  EXPECT_EQ(t->decode(ids({1, 2, 3, 1})), "a\xC3\xA9" "a");
  EXPECT_EQ(t->decode(ids({1, 2, 1})), "a\xEF\xBF\xBD" "a");  // a lone byte is U+FFFD
  EXPECT_EQ(t->encode("a\xE4\xBD\xA0\xE5\xA5\xBD" "a"), ids({1, 0, 1}));  // no byte tokens: one fused <unk>
  j["model"]["fuse_unk"] = false;
  auto t2 = make(j);
  EXPECT_EQ(t2->encode("a\xE4\xBD\xA0\xE5\xA5\xBD" "a"), ids({1, 0, 0, 1}));
}

TEST(Bpe, EndOfWordSuffixAndDecoderHook) {
  // CLIP-like: the suffix goes on the last char of each word.
  json j = {{"model",
             {{"type", "BPE"},
              {"vocab", {{"a", 0}, {"b", 1}, {"a</w>", 2}, {"b</w>", 3}, {"ab</w>", 4}}},
              {"merges", {"a b</w>"}},
              {"end_of_word_suffix", "</w>"}}},
            {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
            {"decoder", {{"type", "BPEDecoder"}, {"suffix", "</w>"}}}};
  auto t = make(j);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->encode("ab a b"), ids({4, 2, 3}));
  EXPECT_EQ(t->decode(ids({4, 2, 3})), "ab a b");
}

// The llava tokenizer rewritten in the older Metaspace form (as Mistral and
// pre-2024 Llama files have it) must tokenize the same where the two agree.
TEST(Metaspace, OlderSentencePieceFormMatchesCorpus) {
  json j = json::parse(read(kTestdata + "/tokenizers/llava/tokenizer.json"));
  const std::string config = read(kTestdata + "/tokenizers/llava/tokenizer_config.json");
  const json corpus = json::parse(read(kTestdata + "/fixtures/tokenizers/corpus.json"));
  j["normalizer"] = nullptr;
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders",
                   {{{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", false}},
                    {{"type", "ByteFallback"}},
                    {{"type", "Fuse"}}}}};
  for (const bool split : {false, true}) {
    j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", split}};
    auto t = make(j, config);
    ASSERT_TRUE(t);
    int checked = 0;
    for (size_t i = 0; i < corpus["strings"].size(); ++i) {
      const std::string s = corpus["strings"][i].get<std::string>();
      // Metaspace does not prepend to text that already starts with a space
      // (the "legacy" difference), and split=true cuts space runs apart.
      if (!s.empty() && s[0] == ' ') continue;
      if (split && (s.find("  ") != std::string::npos || s.find('\n') != std::string::npos)) continue;
      const auto want = corpus["tokenizers"]["llava"]["encode"][i].get<std::vector<int32_t>>();
      EXPECT_EQ(t->encode(s), want) << "split=" << split << " #" << i << " `" << s << "`";
      EXPECT_EQ(t->decode(want), corpus["tokenizers"]["llava"]["decode"][i].get<std::string>()) << "#" << i;
      ++checked;
    }
    EXPECT_GT(checked, 25);
  }
}

// Without a pre-tokenizer the llava model sees the whole text as one word;
// encode cuts it before "▁" runs for speed. A vocab entry with "▁" inside
// turns that off, so the two paths can be compared on the same text.
TEST(Metaspace, WordCutMatchesWholeTextBpe) {
  json j = json::parse(read(kTestdata + "/tokenizers/llava/tokenizer.json"));
  const json corpus = json::parse(read(kTestdata + "/fixtures/tokenizers/corpus.json"));
  auto fast = make(j);
  j["model"]["vocab"]["x\xE2\x96\x81y"] = 40000;  // never produced: no merge makes it
  auto whole = make(j);
  ASSERT_TRUE(fast && whole);
  std::string text;
  for (const auto& s : corpus["strings"]) text += s.get<std::string>() + "  \n ";
  EXPECT_EQ(fast->encode(text), whole->encode(text));
}

TEST(AddedTokens, StripAndSingleWordFlags) {
  json j = {{"model",
             {{"type", "BPE"},
              {"vocab", {{"a", 0}, {"b", 1}, {" ", 2}, {"x", 3}}},
              {"merges", json::array()}}},
            {"added_tokens",
             {{{"id", 10}, {"content", "<m>"}, {"lstrip", true}, {"rstrip", false}, {"single_word", false}, {"normalized", false}, {"special", true}},
              {{"id", 11}, {"content", "<r>"}, {"lstrip", false}, {"rstrip", true}, {"single_word", false}, {"normalized", false}, {"special", false}},
              {{"id", 12}, {"content", "ab"}, {"lstrip", false}, {"rstrip", false}, {"single_word", true}, {"normalized", true}, {"special", false}},
              {{"id", 13}, {"content", "<mm>"}, {"lstrip", false}, {"rstrip", false}, {"single_word", false}, {"normalized", false}, {"special", true}}}}};
  auto t = make(j);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->encode("a  <m>b"), ids({0, 10, 1}));      // lstrip eats the spaces before
  EXPECT_EQ(t->encode("a<r>  b"), ids({0, 11, 1}));      // rstrip eats the spaces after
  EXPECT_EQ(t->encode("x ab x"), ids({3, 2, 12, 2, 3}));  // a word on its own
  EXPECT_EQ(t->encode("xab"), ids({3, 0, 1}));            // inside a word: not matched
  EXPECT_EQ(t->encode("<mm><m>"), ids({13, 10}));         // longest match first
  EXPECT_TRUE(t->is_special(10));
  EXPECT_FALSE(t->is_special(11));
  EXPECT_EQ(t->decode(ids({0, 10, 11}), true), "a <r>");
  EXPECT_EQ(t->vocab_size(), 14);
}

TEST(AddedTokens, ConfigAddedTokensDecoderFillsGaps) {
  json j = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", json::array()}}},
            {"added_tokens", {{{"id", 5}, {"content", "<x>"}, {"special", true}, {"normalized", false}}}}};
  json cfg = {{"added_tokens_decoder",
               {{"5", {{"content", "<x>"}, {"special", true}}},
                {"6", {{"content", "<y>"}, {"special", true}, {"normalized", false}}}}}};
  auto t = make(j, cfg.dump());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->encode("a<y>a<x>"), ids({0, 6, 0, 5}));
  EXPECT_EQ(t->vocab_size(), 7);
  cfg["added_tokens_decoder"]["x7"] = {{"content", "<z>"}};
  EXPECT_FALSE(Tokenizer::from_json(j.dump(), cfg.dump()).ok());
}

TEST(PostProcessor, ConfigFlagsOverrideTemplate) {
  json j = json::parse(read(kTestdata + "/tokenizers/llava/tokenizer.json"));
  json cfg = json::parse(read(kTestdata + "/tokenizers/llava/tokenizer_config.json"));
  cfg["add_eos_token"] = true;
  auto t = make(j, cfg.dump());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->encode("Hello world"), ids({1, 22557, 1526, 2}));
  cfg["add_bos_token"] = false;
  cfg["add_eos_token"] = false;
  t = make(j, cfg.dump());
  EXPECT_EQ(t->encode("Hello world"), ids({22557, 1526}));
  // Without a config, BOS/EOS come from the template.
  t = make(j);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), -1);
}

}  // namespace
}  // namespace vlm::text
