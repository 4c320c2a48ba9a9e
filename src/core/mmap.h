// Read-only memory map of a whole file; weights are viewed in place from it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace vlm {

class MappedFile {
 public:
  static Expected<std::unique_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool contains(const void* p, size_t n) const {
    const auto* b = static_cast<const uint8_t*>(p);
    return data_ && b >= data_ && n <= size_ && size_t(b - data_) <= size_ - n;
  }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Drops this process's mapping of the whole pages inside [p, p + n) of a read-only file mapping
// (RSS falls; the page cache keeps the data and the next access maps it again). Only for file
// mappings: on anonymous memory it would zero the pages.
void release_file_pages(const void* p, size_t n);

// Reads a whole (small) file, refusing files above max_bytes.
Expected<std::string> read_file(const std::string& path, size_t max_bytes = size_t(256) << 20);

}  // namespace vlm
