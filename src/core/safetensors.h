// safetensors reader: validates the header of untrusted files completely
// (dtype, shape, offsets inside the file, sizes consistent) before any view
// is handed out. Views point straight into the mmap.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/mmap.h"
#include "core/status.h"
#include "core/tensor.h"

namespace vlm {

class SafetensorsFile {
 public:
  static Expected<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  // Parses an in-memory image of a file (fuzzing, tests). `bytes` must outlive the result.
  static Expected<std::unique_ptr<SafetensorsFile>> parse(std::span<const uint8_t> bytes,
                                                          const std::string& name = "<memory>");
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& name() const { return name_; }
  const MappedFile* file() const { return file_.get(); }  // null when parsed from memory

 private:
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
  std::string name_;
};

// Widening copies, for tests and small tensors (any float/int dtype).
std::vector<float> to_f32(const TensorView& t);
std::vector<int64_t> to_i64(const TensorView& t);

// All weights of a checkpoint folder: model.safetensors, or the shards listed
// in model.safetensors.index.json.
class WeightStore {
 public:
  static Expected<WeightStore> open_dir(const std::string& dir);
  // Adds the tensors of one file (later files may not redefine a name).
  Status add_file(const std::string& path);
  const TensorView* find(const std::string& name) const;
  bool has(const std::string& name) const { return find(name) != nullptr; }
  // Looks up `name` and checks its shape; float dtypes only (F32/F16/BF16).
  Expected<TensorView> get(const std::string& name, std::initializer_list<int64_t> shape) const;
  size_t size() const { return index_.size(); }
  size_t total_bytes() const;
  std::vector<std::string> names() const;

  // Reads every tensor into one buffer of 2 MB pages (pread from the files, so the mapping is never
  // faulted in and peak RSS stays near one copy) and unmaps the files; views bound afterwards point
  // into that buffer. Decode reads each weight once per token: from a 4 KB-page file mapping it
  // reached 77-80 % of the bandwidth limit, from this buffer 94-96 %. `progress` (may be null)
  // gets the fraction done.
  Status copy_into_memory(const std::function<void(double)>& progress = nullptr);
  bool in_memory() const { return resident_.data() != nullptr; }
  // After a layer has made its own packed copy of `t` (q8/q4), drops the mapped pages of the
  // original so that they do not count twice in RSS. No-op for views not in a mapped file.
  void release(const TensorView& t) const;

  // Format nn::Linear::bind computes linear layers in ("native", "q8", "q4"); set by the loader.
  std::string linear_format = "native";

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, TensorView> index_;
  Buffer resident_;  // set by copy_into_memory
};

}  // namespace vlm
