// The BPE model of tokenizer.json: vocabulary, ranked merges, and the merge
// loop that turns one pre-tokenized word into ids.
#pragma once
#include "core/status.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vlm::text {

struct BpeOptions {
  std::string unk_token;                  // empty: none
  std::string continuing_subword_prefix;  // glued in front of every non-first char
  std::string end_of_word_suffix;         // glued after the last char (CLIP's "</w>")
  bool fuse_unk = false;
  bool byte_fallback = false;  // unknown chars become <0xNN> tokens
  bool ignore_merges = false;  // a word already in the vocab is taken whole
};

// Token string -> id, with every string in one arena and an open-addressing
// index: Qwen's 150k-entry vocab loads and resolves its 150k merges several
// times faster than with a node-based map.
class Vocab {
 public:
  void reserve(size_t entries, size_t bytes);
  // A repeated token takes the later id, as a JSON object read into a map does.
  void add(std::string_view token, int32_t id);
  int32_t find(std::string_view token) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(token);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.entry == kEmpty) return -1;
      if (s.hash == static_cast<uint32_t>(h)) {
        const Entry& e = entries_[s.entry];
        if (e.len == token.size() && arena_.compare(e.off, e.len, token) == 0) return e.id;
      }
    }
  }
  size_t size() const { return entries_.size(); }
  int32_t max_id() const { return max_id_; }
  std::string_view token(size_t entry) const { return {arena_.data() + entries_[entry].off, entries_[entry].len}; }
  // entry index for each id (-1 where no token has the id).
  std::vector<int32_t> entries_by_id() const;

 private:
  static constexpr uint32_t kEmpty = ~0u;
  struct Entry {
    uint32_t off, len;
    int32_t id;
  };
  struct Slot {
    uint32_t hash = 0;
    uint32_t entry = kEmpty;
  };
  static uint64_t hash(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then a final mix for the low bits
    for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    return h ^ (h >> 29);
  }
  void rehash(size_t slots);

  std::string arena_;
  std::vector<Entry> entries_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int32_t max_id_ = -1;
};

// Merge rules as (left, right) token pairs in rank order, stored flat.
class MergeList {
 public:
  void add(std::string_view left, std::string_view right) {
    spans_.push_back({static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(left.size()),
                      static_cast<uint32_t>(right.size())});
    arena_ += left;
    arena_ += right;
  }
  size_t size() const { return spans_.size(); }
  std::string_view left(size_t i) const { return {arena_.data() + spans_[i].off, spans_[i].left}; }
  std::string_view right(size_t i) const { return {arena_.data() + spans_[i].off + spans_[i].left, spans_[i].right}; }

 private:
  struct Span3 {
    uint32_t off, left, right;
  };
  std::string arena_;
  std::vector<Span3> spans_;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Open-addressing map from a pair of token ids to (rank, merged id). The
// merge loop does one lookup per candidate pair, so this is the hot table.
class MergeTable {
 public:
  void reserve(size_t n);
  // Keeps the first (lowest-rank) entry when a pair repeats, as HF does.
  void insert(int32_t a, int32_t b, int32_t rank, int32_t merged);
  // False if (a, b) has no merge.
  bool find(int32_t a, int32_t b, int32_t& rank, int32_t& merged) const {
    if (slots_.empty()) return false;
    const uint64_t key = pack(a, b);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) {
        rank = s.rank;
        merged = s.merged;
        return true;
      }
      if (s.key == kEmpty) return false;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t merged = 0;
  };
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  void grow();
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

class BpeModel {
 public:
  static Expected<std::unique_ptr<BpeModel>> create(Vocab vocab, const MergeList& merges, BpeOptions options);

  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  // True if `marker` occurs in vocab tokens only at their start or after
  // another `marker`. Then no merge can join a symbol to a following marker
  // that starts a run, so a long text can be cut before such markers and its
  // parts tokenized (and cached) separately with the very same result.
  bool marker_only_leads(std::string_view marker) const;

  int32_t token_to_id(std::string_view token) const;
  // False when the id has no vocab entry.
  bool id_to_token(int32_t id, std::string_view& token) const;
  int32_t max_id() const { return static_cast<int32_t>(entry_of_id_.size()) - 1; }
  const BpeOptions& options() const { return opt_; }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  BpeOptions opt_;
  Vocab vocab_;
  std::vector<int32_t> entry_of_id_;
  MergeTable merges_;
  int32_t unk_id_ = -1;
  int32_t byte_ids_[256];  // <0xNN> tokens for byte fallback, -1 if absent

  // Words repeat a lot in real text; caching their ids skips the merge loop.
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>
      cache_;
};

}  // namespace vlm::text
