// CLIP / SigLIP user features on top of models::DualEncoder: embeddings,
// zero-shot classification, and an image index (SQLite) with a brute-force
// SIMD search over its vectors.
//
// Every embedding handed out here is L2-normalised, so a dot product is the
// cosine similarity and, with the model's positive logit scale, ranks exactly
// as the model's logits do.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "models/clip.h"
#include "vision/image.h"

namespace vlm::runtime {

// ---- embeddings ------------------------------------------------------------

// Normalised image embeddings [n, embed_dim].
Expected<std::vector<float>> embed_images(const models::DualEncoder& m, const std::vector<Image>& images);
// Normalised text embeddings [n, embed_dim]; needs the checkpoint's tokenizer.
Expected<std::vector<float>> embed_texts(const models::DualEncoder& m, const std::vector<std::string>& texts);

// ---- zero-shot classification ----------------------------------------------

struct LabelScore {
  std::string label;
  float prob = 0;   // softmax over the labels (CLIP) or the pair's own sigmoid (SigLIP)
  float logit = 0;  // scaled cosine + bias, as the model's logits_per_image
};

// "{}" in the template is replaced by the label (every occurrence); a template without "{}" is an error.
Expected<std::string> apply_template(const std::string& tmpl, const std::string& label);

// CLIP was trained with a softmax over the texts of a batch, SigLIP with an independent sigmoid
// per pair; the probabilities follow suit (SigLIP's need not sum to 1).
std::vector<float> label_probabilities(const std::vector<float>& logits, bool sigmoid);

// Labels sorted by probability, highest first (ties keep the labels' order).
Expected<std::vector<LabelScore>> classify(const models::DualEncoder& m, const Image& image,
                                           const std::vector<std::string>& labels,
                                           const std::string& tmpl = "a photo of a {}");
// The same from embeddings already computed (one image [dim], texts [labels.size(), dim]; normalised or
// not): the way in for checkpoints without a tokenizer, whose texts arrive as ids.
std::vector<LabelScore> classify_embedded(const models::DualEncoder& m, const std::vector<float>& image_embedding,
                                          const std::vector<float>& text_embeddings,
                                          const std::vector<std::string>& labels);

// ---- which model built an index --------------------------------------------

struct ModelId {
  std::string path;         // informative only: a copied checkpoint is still the same model
  std::string family;       // "clip" | "siglip"
  int64_t dim = 0;
  std::string fingerprint;  // config.json + sampled bytes of the weight files
};
Expected<ModelId> identify_model(const models::DualEncoder& m, const std::string& dir);

// ---- the image index -------------------------------------------------------

struct IndexFailure {
  std::string path, reason;
};

struct IndexReport {
  int64_t indexed = 0;  // embedded in this run (new or changed files)
  int64_t skipped = 0;  // already in the index with the same size and mtime
  int64_t removed = 0;  // rows under the folder whose file no longer exists
  int64_t total = 0;    // rows in the index afterwards
  bool interrupted = false;
  std::vector<IndexFailure> failed;  // unreadable files, non-images, corrupt images
};

struct IndexOptions {
  int batch = 16;  // images embedded per transaction: what an interruption can lose
  DecodeLimits limits;
  const std::atomic<bool>* cancel = nullptr;  // checked between batches
};

// Ok when `db` is absent (index_folder creates it) or is an index built by this model; else says why
// not (another model, not an index). Writes nothing.
Status check_index_model(const std::string& db, const ModelId& id);

// done counts files looked at (skipped, embedded or failed) out of total candidate files.
using IndexProgress = std::function<void(int64_t done, int64_t total, const std::string& path)>;

// Walks `folder` recursively (hidden files and folders excepted), takes images by their magic bytes
// whatever the extension, and stores one normalised embedding per image in `db` (created if absent).
// Resumable: each batch is its own transaction, and files whose size and mtime match their row are
// skipped. Files that cannot be read or decoded are reported in failed and the walk goes on.
// Refuses a db built with another model.
Expected<IndexReport> index_folder(const models::DualEncoder& m, const ModelId& id, const std::string& folder,
                                   const std::string& db, const IndexOptions& opt = {},
                                   const IndexProgress& progress = {});

// ---- search ----------------------------------------------------------------

enum class ScanKernel { kAuto, kScalar, kAvx2, kAvx512 };
const char* scan_kernel_name(ScanKernel k);
// The fastest kernel this CPU runs.
ScanKernel best_scan_kernel();
// scores[i] = dot(rows[i], q) for n contiguous rows of dim floats. kAuto picks best_scan_kernel() and
// splits large scans across threads; a kernel the CPU lacks falls back to kScalar.
void scan_dot(const float* rows, int64_t n, int64_t dim, const float* q, float* scores,
              ScanKernel k = ScanKernel::kAuto);
// The reference: one row at a time, in order.
void scan_dot_scalar(const float* rows, int64_t n, int64_t dim, const float* q, float* scores);

struct Match {
  int64_t row = 0;
  float score = 0;
};
// The k best scores, highest first (ties: lower row first).
std::vector<Match> top_k(const float* scores, int64_t n, int64_t k);

struct SearchHit {
  std::string path;
  float score = 0;  // cosine similarity
};

// All vectors of an index, loaded once and searched in memory.
class ImageIndex {
 public:
  // Opens an existing index read-only; refuses one built by another model.
  static Expected<ImageIndex> load(const std::string& db, const ModelId& id);

  int64_t size() const { return int64_t(paths_.size()); }
  int64_t dim() const { return dim_; }
  const std::string& path(int64_t row) const { return paths_[size_t(row)]; }
  const float* rows() const { return rows_.data(); }
  const ModelId& built_with() const { return built_with_; }

  // query: a normalised embedding of dim floats.
  std::vector<SearchHit> search(const std::vector<float>& query, int64_t top, ScanKernel k = ScanKernel::kAuto) const;

 private:
  std::vector<std::string> paths_;
  std::vector<float> rows_;
  int64_t dim_ = 0;
  ModelId built_with_;
};

}  // namespace vlm::runtime
