#include "text/bpe.h"

#include <algorithm>
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

void Vocab::reserve(size_t entries, size_t bytes) {
  entries_.reserve(entries);
  arena_.reserve(bytes);
  size_t cap = 16;
  while (cap < entries * 2) cap <<= 1;
  if (cap > slots_.size()) rehash(cap);
}

void Vocab::rehash(size_t n) {
  slots_.assign(n, Slot{});
  mask_ = n - 1;
  for (uint32_t k = 0; k < entries_.size(); ++k) {
    const uint64_t h = hash(token(k));
    size_t i = h & mask_;
    while (slots_[i].entry != kEmpty) i = (i + 1) & mask_;
    slots_[i] = Slot{static_cast<uint32_t>(h), k};
  }
}

void Vocab::add(std::string_view token, int32_t id) {
  if ((entries_.size() + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
  const uint64_t h = hash(token);
  size_t i = h & mask_;
  for (;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.entry == kEmpty) break;
    if (s.hash == static_cast<uint32_t>(h) && this->token(s.entry) == token) {
      entries_[s.entry].id = id;
      max_id_ = std::max(max_id_, id);
      return;
    }
  }
  slots_[i] = Slot{static_cast<uint32_t>(h), static_cast<uint32_t>(entries_.size())};
  entries_.push_back(Entry{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(token.size()), id});
  arena_ += token;
  max_id_ = std::max(max_id_, id);
}

std::vector<int32_t> Vocab::entries_by_id() const {
  std::vector<int32_t> by_id(static_cast<size_t>(max_id_ + 1), -1);
  for (size_t k = 0; k < entries_.size(); ++k) {
    if (entries_[k].id >= 0) by_id[static_cast<size_t>(entries_[k].id)] = static_cast<int32_t>(k);
  }
  return by_id;
}

Expected<std::unique_ptr<BpeModel>> BpeModel::create(Vocab vocab, const MergeList& merges, BpeOptions options) {
  auto m = std::unique_ptr<BpeModel>(new BpeModel());
  m->opt_ = std::move(options);
  m->vocab_ = std::move(vocab);
  m->entry_of_id_ = m->vocab_.entries_by_id();

  const size_t prefix_len = m->opt_.continuing_subword_prefix.size();
  m->merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view a = merges.left(rank), b = merges.right(rank);
    const int32_t ia = m->token_to_id(a);
    const int32_t ib = m->token_to_id(b);
    if (ia < 0 || ib < 0) {
      return make_error("tokenizer merge ", rank, " (`", a, "` `", b, "`) uses a token missing from the vocab");
    }
    // The right half carries the continuation prefix, which the merged token
    // has only once.
    joined.assign(a);
    joined.append(b.substr(std::min(prefix_len, b.size())));
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

int32_t BpeModel::token_to_id(std::string_view token) const { return vocab_.find(token); }

bool BpeModel::marker_only_leads(std::string_view marker) const {
  if (marker.empty()) return false;
  for (size_t k = 0; k < vocab_.size(); ++k) {
    const std::string_view t = vocab_.token(k);
    for (size_t pos = t.find(marker, 1); pos != std::string_view::npos; pos = t.find(marker, pos + 1)) {
      if (pos < marker.size() || t.compare(pos - marker.size(), marker.size(), marker) != 0) return false;
    }
  }
  return true;
}

bool BpeModel::id_to_token(int32_t id, std::string_view& token) const {
  if (id < 0 || static_cast<size_t>(id) >= entry_of_id_.size()) return false;
  const int32_t e = entry_of_id_[static_cast<size_t>(id)];
  if (e < 0) return false;
  token = vocab_.token(static_cast<size_t>(e));
  return true;
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
