#include "core/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/threads.h"

namespace vlm {
namespace {

// A header larger than this is not a plausible checkpoint (real ones are < 2 MiB).
constexpr uint64_t kMaxHeaderBytes = uint64_t(100) << 20;

Status parse_header(std::span<const uint8_t> bytes, const std::string& name,
                    std::map<std::string, TensorView>* tensors,
                    std::map<std::string, std::string>* metadata) {
  if (bytes.size() < 8) return make_error(name, ": not a safetensors file (", bytes.size(), " bytes)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[size_t(i)];
  if (n > kMaxHeaderBytes || n > bytes.size() - 8)
    return make_error(name, ": corrupt safetensors header (header length ", n, " but file has ",
                      bytes.size(), " bytes)");
  const char* hb = reinterpret_cast<const char*>(bytes.data() + 8);
  nlohmann::json h = nlohmann::json::parse(hb, hb + n, nullptr, /*allow_exceptions=*/false);
  if (h.is_discarded() || !h.is_object())
    return make_error(name, ": corrupt safetensors header (not a JSON object)");
  const uint8_t* base = bytes.data() + 8 + n;
  const uint64_t data_size = bytes.size() - 8 - n;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "__metadata__") {
      if (v.is_object())
        for (auto m = v.begin(); m != v.end(); ++m)
          if (m.value().is_string()) (*metadata)[m.key()] = m.value().get<std::string>();
      continue;
    }
    auto bad = [&](const std::string& why) {
      return make_error(name, ": tensor '", key, "': ", why);
    };
    if (!v.is_object()) return bad("entry is not an object");
    auto dt = v.find("dtype"), sh = v.find("shape"), off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) return bad("missing dtype");
    TensorView t;
    if (!dtype_from_safetensors(dt->get<std::string>(), &t.dtype))
      return bad("unsupported dtype " + dt->get<std::string>());
    if (sh == v.end() || !sh->is_array()) return bad("missing shape");
    if (sh->size() > size_t(kMaxDims)) return bad("too many dimensions");
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) return bad("shape entries must be non-negative integers");
      uint64_t x = d.get<uint64_t>();
      if (x != 0 && numel > std::numeric_limits<uint64_t>::max() / x / 8) return bad("shape overflows");
      numel *= x;
      t.shape[size_t(t.ndim++)] = int64_t(x);
    }
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      return bad("data_offsets must be two non-negative integers");
    uint64_t b = (*off)[0].get<uint64_t>(), e = (*off)[1].get<uint64_t>();
    if (b > e || e > data_size)
      return bad(cat("data_offsets [", b, ", ", e, ") point outside the data section (", data_size,
                     " bytes); the file may be truncated"));
    if (e - b != numel * dtype_size(t.dtype))
      return bad(cat("byte size ", e - b, " does not match shape ", t.shape_str(), " of ",
                     dtype_name(t.dtype)));
    t.data = const_cast<uint8_t*>(base + b);
    (*tensors)[key] = t;
  }
  return Status::Ok();
}

}  // namespace

Expected<std::unique_ptr<SafetensorsFile>> SafetensorsFile::parse(std::span<const uint8_t> bytes,
                                                                  const std::string& name) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->name_ = name;
  VLM_TRY_STATUS(parse_header(bytes, name, &f->tensors_, &f->metadata_));
  return f;
}

Expected<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  VLM_ASSIGN_OR_RETURN(auto mf, MappedFile::open(path));
  std::span<const uint8_t> bytes(mf->data(), mf->size());
  VLM_ASSIGN_OR_RETURN(auto f, parse(bytes, path));
  f->file_ = std::move(mf);
  return f;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

template <class T, class Fn>
static std::vector<T> widen(const TensorView& t, Fn) {
  std::vector<T> out(size_t(t.numel()));
  const size_t n = out.size();
  switch (t.dtype) {
    case DType::F32: for (size_t i = 0; i < n; ++i) out[i] = T(t.as<float>()[i]); break;
    case DType::F64: for (size_t i = 0; i < n; ++i) out[i] = T(t.as<double>()[i]); break;
    case DType::BF16: for (size_t i = 0; i < n; ++i) out[i] = T(bf16_to_f32(t.as<uint16_t>()[i])); break;
    case DType::F16: for (size_t i = 0; i < n; ++i) out[i] = T(f16_to_f32(t.as<uint16_t>()[i])); break;
    case DType::I64: for (size_t i = 0; i < n; ++i) out[i] = T(t.as<int64_t>()[i]); break;
    case DType::I32: for (size_t i = 0; i < n; ++i) out[i] = T(t.as<int32_t>()[i]); break;
    case DType::I16: for (size_t i = 0; i < n; ++i) out[i] = T(t.as<int16_t>()[i]); break;
    case DType::I8: for (size_t i = 0; i < n; ++i) out[i] = T(t.as<int8_t>()[i]); break;
    case DType::U8: case DType::BOOL: for (size_t i = 0; i < n; ++i) out[i] = T(t.as<uint8_t>()[i]); break;
    default: VLM_CHECK(false, "cannot widen dtype %s", dtype_name(t.dtype));
  }
  return out;
}

std::vector<float> to_f32(const TensorView& t) { return widen<float>(t, 0); }
std::vector<int64_t> to_i64(const TensorView& t) { return widen<int64_t>(t, 0); }

Expected<WeightStore> WeightStore::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  WeightStore ws;
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  fs::path single = fs::path(dir) / "model.safetensors";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    VLM_ASSIGN_OR_RETURN(std::string text, read_file(index.string(), 64 << 20));
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return make_error(index.string(), ": not a valid safetensors index (no weight_map)");
    std::map<std::string, std::vector<std::string>> by_file;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) return make_error(index.string(), ": bad weight_map entry ", it.key());
      std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
        return make_error(index.string(), ": shard name '", shard, "' must be a plain file name");
      by_file[shard].push_back(it.key());
    }
    for (const auto& [shard, names] : by_file) {
      VLM_TRY_STATUS(ws.add_file((fs::path(dir) / shard).string()));
      for (const auto& n : names)
        if (!ws.has(n)) return make_error(index.string(), ": tensor '", n, "' is listed for ", shard, " but not in it");
    }
  } else if (fs::exists(single, ec)) {
    VLM_TRY_STATUS(ws.add_file(single.string()));
  } else {
    return make_error(dir, ": no model.safetensors or model.safetensors.index.json");
  }
  return ws;
}

Status WeightStore::add_file(const std::string& path) {
  VLM_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(path));
  std::shared_ptr<SafetensorsFile> sf(std::move(f));
  for (const auto& [name, view] : sf->tensors()) {
    if (index_.count(name)) return make_error(path, ": tensor '", name, "' defined twice");
    index_[name] = view;
  }
  files_.push_back(std::move(sf));
  return Status::Ok();
}

const TensorView* WeightStore::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &it->second;
}

Expected<TensorView> WeightStore::get(const std::string& name, std::initializer_list<int64_t> shape) const {
  const TensorView* t = find(name);
  if (!t) return make_error("missing tensor '", name, "' in checkpoint");
  if (t->dtype != DType::F32 && t->dtype != DType::BF16 && t->dtype != DType::F16)
    return make_error("tensor '", name, "' has dtype ", dtype_name(t->dtype), ", expected F32, F16 or BF16");
  if (!t->same_shape(shape)) {
    TensorView want(t->dtype, nullptr, shape);
    return make_error("tensor '", name, "' has shape ", t->shape_str(), ", expected ", want.shape_str());
  }
  return *t;
}

Status WeightStore::copy_into_memory(const std::function<void(double)>& progress) {
  if (in_memory()) return Status::Ok();
  // Tensors laid out back to back, each at a 64-byte boundary (what the kernels' loads assume).
  std::vector<std::pair<TensorView*, size_t>> where;
  size_t total = 0;
  for (auto& [_, t] : index_) {
    total = (total + 63) / 64 * 64;
    where.emplace_back(&t, total);
    total += t.nbytes();
  }
  Buffer mem;
  try {
    mem = Buffer::for_weights(total);
  } catch (const std::bad_alloc&) {
    return make_error("cannot allocate ", total >> 20, " MB to hold the weights in memory (try --mmap)");
  }
  // Read in pieces of 8 MB spread over the threads; a piece that pread cannot fill (a file that
  // shrank, an I/O error) is copied from the mapping instead.
  constexpr size_t kPiece = size_t(8) << 20;
  struct Piece {
    const uint8_t* src;
    uint8_t* dst;
    size_t n;
    int fd;        // the source file, read with pread (no page faults on the mapping); -1: memcpy
    off_t offset;  // of src in that file
  };
  std::vector<int> fds;
  for (const auto& f : files_) fds.push_back(f->file() ? ::open(f->file()->path().c_str(), O_RDONLY | O_CLOEXEC) : -1);
  std::vector<Piece> pieces;
  for (auto& [t, off] : where) {
    const auto* src = static_cast<const uint8_t*>(t->data);
    uint8_t* dst = mem.as<uint8_t>() + off;
    int fd = -1;
    off_t foff = 0;
    for (size_t i = 0; i < files_.size(); ++i)
      if (fds[i] >= 0 && files_[i]->file()->contains(src, t->nbytes())) {
        fd = fds[i];
        foff = off_t(src - files_[i]->file()->data());
      }
    for (size_t o = 0; o < t->nbytes(); o += kPiece)
      pieces.push_back({src + o, dst + o, std::min(kPiece, t->nbytes() - o), fd, foff + off_t(o)});
  }
  const int64_t step = 16;
  for (int64_t p0 = 0; p0 < int64_t(pieces.size()); p0 += step) {
    const int64_t p1 = std::min<int64_t>(int64_t(pieces.size()), p0 + step);
    parallel_for(p1 - p0, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = p0 + b; i < p0 + e; ++i) {
        const Piece& pc = pieces[size_t(i)];
        size_t done = 0;
        while (pc.fd >= 0 && done < pc.n) {
          const ssize_t r = ::pread(pc.fd, pc.dst + done, pc.n - done, pc.offset + off_t(done));
          if (r <= 0) break;
          done += size_t(r);
        }
        if (done < pc.n) std::memcpy(pc.dst + done, pc.src + done, pc.n - done);
      }
    });
    if (progress) progress(double(p1) / double(pieces.size()));
  }
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  for (auto& [t, off] : where) t->data = mem.as<uint8_t>() + off;
  resident_ = std::move(mem);
  files_.clear();
  return Status::Ok();
}

void WeightStore::release(const TensorView& t) const {
  for (const auto& f : files_)
    if (f->file() && f->file()->contains(t.data, t.nbytes())) release_file_pages(t.data, t.nbytes());
}

size_t WeightStore::total_bytes() const {
  size_t n = 0;
  for (const auto& [_, t] : index_) n += t.nbytes();
  return n;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> v;
  for (const auto& [n, _] : index_) v.push_back(n);
  return v;
}

}  // namespace vlm
