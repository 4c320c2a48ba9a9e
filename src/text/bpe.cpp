#include "text/bpe.h"

#include <cstdio>
#include <queue>

namespace vlm::text {

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  size_ = 0;
  for (const Slot& s : old) {
    if (s.key != kEmpty) insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key), s.rank, s.merged);
  }
}

void MergeTable::grow() { reserve(slots_.empty() ? 8 : slots_.size()); }

void MergeTable::insert(int32_t a, int32_t b, int32_t rank, int32_t merged) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const uint64_t key = pack(a, b);
  for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) {
      // HF collects the merges into a HashMap, so a repeated pair keeps the
      // rank of its last occurrence.
      s.rank = rank;
      s.merged = merged;
      return;
    }
    if (s.key == kEmpty) {
      s.key = key;
      s.rank = rank;
      s.merged = merged;
      ++size_;
      return;
    }
  }
}

Expected<std::unique_ptr<BpeModel>> BpeModel::create(
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab,
    const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options) {
  auto m = std::unique_ptr<BpeModel>(new BpeModel());
  m->opt_ = std::move(options);
  m->vocab_ = std::move(vocab);
  int32_t max_id = -1;
  for (const auto& [tok, id] : m->vocab_) {
    if (id < 0) return make_error("tokenizer vocab has a negative id for token `", tok, "`");
    max_id = std::max(max_id, id);
  }
  m->id_to_token_.assign(static_cast<size_t>(max_id + 1), nullptr);
  for (const auto& [tok, id] : m->vocab_) m->id_to_token_[static_cast<size_t>(id)] = &tok;

  const size_t prefix_len = m->opt_.continuing_subword_prefix.size();
  m->merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const int32_t ia = m->token_to_id(a);
    const int32_t ib = m->token_to_id(b);
    if (ia < 0 || ib < 0) {
      return make_error("tokenizer merge ", rank, " (`", a, "` `", b, "`) uses a token missing from the vocab");
    }
    // The right half carries the continuation prefix, which the merged token
    // has only once.
    joined = a;
    joined.append(b, std::min(prefix_len, b.size()));
    const int32_t merged = m->token_to_id(joined);
    if (merged < 0) {
      return make_error("tokenizer merge ", rank, " yields `", joined, "`, which is not in the vocab");
    }
    m->merges_.insert(ia, ib, static_cast<int32_t>(rank), merged);
  }

  if (!m->opt_.unk_token.empty()) m->unk_id_ = m->token_to_id(m->opt_.unk_token);
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m->byte_ids_[b] = m->token_to_id(name);
  }
  return m;
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return nullptr;
  return id_to_token_[static_cast<size_t>(id)];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (opt_.ignore_merges) {
    const int32_t id = token_to_id(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  constexpr size_t kMaxCachedWord = 256;
  constexpr size_t kMaxCacheEntries = 200000;
  const bool cacheable = word.size() < kMaxCachedWord;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() < kMaxCacheEntries) {
      cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + static_cast<ptrdiff_t>(start), out.end()));
    }
  }
}

namespace {

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  int32_t len;  // bytes of the word it covers; 0 once merged into its left neighbour
};

struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t merged;
};

// Lowest rank first, then leftmost: the order HF's BinaryHeap pops merges in.
struct WorseCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

}  // namespace

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  auto add = [&syms](int32_t id, size_t len) {
    const auto n = static_cast<int32_t>(syms.size());
    syms.push_back(Symbol{id, n - 1, n + 1, static_cast<int32_t>(len)});
  };

  int32_t pending_unk_len = 0;  // bytes covered by a not yet emitted <unk>
  std::string piece;
  size_t i = 0;
  while (i < word.size()) {
    size_t end = i + 1;
    while (end < word.size() && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) ++end;
    const size_t char_len = end - i;
    piece.clear();
    if (i > 0) piece += opt_.continuing_subword_prefix;
    piece.append(word.data() + i, char_len);
    if (end == word.size()) piece += opt_.end_of_word_suffix;
    i = end;

    const int32_t id = token_to_id(piece);
    if (id >= 0) {
      if (pending_unk_len > 0) {
        add(unk_id_, static_cast<size_t>(pending_unk_len));
        pending_unk_len = 0;
      }
      add(id, char_len);
      continue;
    }
    if (opt_.byte_fallback) {
      bool all = true;
      for (const char ch : piece) all = all && byte_ids_[static_cast<unsigned char>(ch)] >= 0;
      if (all) {
        // HF does not flush a pending <unk> here; it follows the bytes.
        for (const char ch : piece) add(byte_ids_[static_cast<unsigned char>(ch)], 1);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk_len > 0 && !opt_.fuse_unk) {
        add(unk_id_, static_cast<size_t>(pending_unk_len));
        pending_unk_len = 0;
      }
      pending_unk_len += static_cast<int32_t>(char_len);
    }
  }
  if (pending_unk_len > 0) add(unk_id_, static_cast<size_t>(pending_unk_len));
  if (syms.empty()) return;
  syms.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, WorseCandidate> queue;
  int32_t rank, merged;
  for (size_t k = 0; k + 1 < syms.size(); ++k) {
    if (merges_.find(syms[k].id, syms[k + 1].id, rank, merged)) {
      queue.push(Candidate{rank, static_cast<int32_t>(k), merged});
    }
  }
  const auto n = static_cast<int32_t>(syms.size());
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& cur = syms[static_cast<size_t>(top.pos)];
    if (cur.len == 0 || cur.next < 0) continue;
    const Symbol right = syms[static_cast<size_t>(cur.next)];
    // A stale entry: its pair was changed by an earlier merge. HF compares the
    // merged id only, so we do too.
    if (!merges_.find(cur.id, right.id, rank, merged) || merged != top.merged) continue;
    syms[static_cast<size_t>(cur.next)].len = 0;
    cur.id = top.merged;
    cur.len += right.len;
    cur.next = right.next;
    if (right.next >= 0 && right.next < n) syms[static_cast<size_t>(right.next)].prev = top.pos;
    if (cur.prev >= 0 && merges_.find(syms[static_cast<size_t>(cur.prev)].id, cur.id, rank, merged)) {
      queue.push(Candidate{rank, cur.prev, merged});
    }
    if (cur.next >= 0 && merges_.find(cur.id, syms[static_cast<size_t>(cur.next)].id, rank, merged)) {
      queue.push(Candidate{rank, top.pos, merged});
    }
  }
  for (const Symbol& s : syms) {
    if (s.len != 0) out.push_back(s.id);
  }
}

}  // namespace vlm::text
