// The image index: an SQLite file with one normalised float32 embedding per
// image, and the identity of the model that made them (retrieval.h).
#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "runtime/retrieval.h"

namespace vlm::runtime {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "vlm-image-index";
constexpr const char* kSchemaVersion = "1";

class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s_); }
  sqlite3_stmt** out() { return &s_; }
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

class Db {
 public:
  Db() = default;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db() { sqlite3_close_v2(h_); }

  Status open(const std::string& path, bool writable) {
    path_ = path;
    const int flags = writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    if (sqlite3_open_v2(path.c_str(), &h_, flags, nullptr) != SQLITE_OK)
      return make_error("cannot open index ", path, ": ", h_ ? sqlite3_errmsg(h_) : "out of memory");
    // Another `vlm index` on the same file holds the write lock for one batch at a time.
    sqlite3_busy_timeout(h_, 10000);
    return Status::Ok();
  }
  Error error(const char* what) const { return make_error("index ", path_, ": ", what, ": ", sqlite3_errmsg(h_)); }
  Status exec(const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(h_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
      Error e = make_error("index ", path_, ": ", msg ? msg : sqlite3_errmsg(h_));
      sqlite3_free(msg);
      return e;
    }
    return Status::Ok();
  }
  Status prepare(const char* sql, Stmt* st) {
    if (sqlite3_prepare_v2(h_, sql, -1, st->out(), nullptr) != SQLITE_OK) return error("prepare");
    return Status::Ok();
  }
  sqlite3* get() const { return h_; }
  const std::string& path() const { return path_; }

 private:
  sqlite3* h_ = nullptr;
  std::string path_;
};

std::string column_text(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? std::string(reinterpret_cast<const char*>(t), size_t(sqlite3_column_bytes(s, i))) : std::string();
}

Expected<std::map<std::string, std::string>> read_meta(Db& db) {
  Stmt st;
  VLM_TRY_STATUS(db.prepare("SELECT key, value FROM meta", &st));
  std::map<std::string, std::string> meta;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) meta[column_text(st.get(), 0)] = column_text(st.get(), 1);
  if (rc != SQLITE_DONE) return db.error("reading meta");
  return meta;
}

// Names of the tables in the file; the first read of a file that is not SQLite fails here.
Expected<std::set<std::string>> table_names(Db& db) {
  Stmt st;
  if (sqlite3_prepare_v2(db.get(), "SELECT name FROM sqlite_master WHERE type = 'table'", -1, st.out(), nullptr) !=
      SQLITE_OK)
    return make_error(db.path(), " is not a vlm image index (", sqlite3_errmsg(db.get()), ")");
  std::set<std::string> names;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) names.insert(column_text(st.get(), 0));
  if (rc != SQLITE_DONE) return make_error(db.path(), " is not a vlm image index (", sqlite3_errmsg(db.get()), ")");
  return names;
}

// Refuses an index whose vectors another model made: their geometry is unrelated to this model's.
Status check_identity(Db& db, const ModelId& id) {
  VLM_ASSIGN_OR_RETURN(auto meta, read_meta(db));
  if (meta["format"] != kFormat) return make_error(db.path(), " is an SQLite file but not a vlm image index");
  if (meta["schema"] != kSchemaVersion)
    return make_error(db.path(), " is a vlm image index of schema ", meta["schema"], "; this build reads schema ",
                      kSchemaVersion, ": index the folder again into a new --db");
  const std::string fam = meta["model_family"], dim = meta["embed_dim"], path = meta["model_path"];
  const bool same = fam == id.family && dim == std::to_string(id.dim) && meta["model_fingerprint"] == id.fingerprint;
  if (!same) {
    std::string why = fam != id.family                  ? cat("a ", fam, " model, not ", id.family)
                      : dim != std::to_string(id.dim) ? cat("embedding size ", dim, ", not ", id.dim)
                                                        : std::string("different weights");
    return make_error(db.path(), " was built with another model (", path, ": ", why,
                      "); use that --model, or index into another --db");
  }
  return Status::Ok();
}

Status create_schema(Db& db, const ModelId& id) {
  VLM_TRY_STATUS(db.exec("BEGIN IMMEDIATE"));
  Status s = [&]() -> Status {
    VLM_TRY_STATUS(db.exec(
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS images(path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL,"
        " dim INTEGER NOT NULL, embedding BLOB NOT NULL);"));
    VLM_ASSIGN_OR_RETURN(auto meta, read_meta(db));
    if (!meta.empty()) return Status::Ok();  // another process created it first
    Stmt st;
    VLM_TRY_STATUS(db.prepare("INSERT INTO meta(key, value) VALUES (?, ?)", &st));
    const std::pair<std::string, std::string> rows[] = {
        {"format", kFormat},          {"schema", kSchemaVersion},          {"model_path", id.path},
        {"model_family", id.family}, {"embed_dim", std::to_string(id.dim)}, {"model_fingerprint", id.fingerprint}};
    for (const auto& [k, v] : rows) {
      sqlite3_bind_text(st.get(), 1, k.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st.get(), 2, v.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st.get()) != SQLITE_DONE) return db.error("writing meta");
      sqlite3_reset(st.get());
    }
    return Status::Ok();
  }();
  if (!s.ok()) {
    (void)db.exec("ROLLBACK");
    return s;
  }
  return db.exec("COMMIT");
}

Status open_for_writing(Db& db, const std::string& path, const ModelId& id) {
  VLM_TRY_STATUS(db.open(path, /*writable=*/true));
  VLM_ASSIGN_OR_RETURN(auto tables, table_names(db));
  if (!tables.empty() && !tables.count("meta"))
    return make_error(path, " is an SQLite file but not a vlm image index; choose another --db");
  if (!tables.count("meta") || !tables.count("images")) VLM_TRY_STATUS(create_schema(db, id));
  return check_identity(db, id);
}

int64_t mtime_ns(const fs::file_time_type& t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

struct Candidate {
  std::string path;
  int64_t size = 0, mtime = 0;
};

bool hidden(const fs::path& p) {
  const std::string n = p.filename().string();
  return n.size() > 1 && n[0] == '.';
}

// Regular files under dir, depth first. Symlinked folders are not followed (cycles); symlinked files are.
void walk(const fs::path& dir, const std::set<std::string>& exclude, std::vector<Candidate>* out,
          std::vector<IndexFailure>* failed) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) {
    failed->push_back({dir.string(), cat("cannot list folder: ", ec.message())});
    return;
  }
  std::vector<fs::path> subdirs;
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    const fs::path& p = it->path();
    if (hidden(p) || exclude.count(p.string())) continue;
    std::error_code e2;
    if (it->is_directory(e2) && !it->is_symlink(e2)) {
      subdirs.push_back(p);
      continue;
    }
    if (!it->is_regular_file(e2)) {
      if (it->is_symlink(e2) && !fs::exists(p, e2)) failed->push_back({p.string(), "broken symbolic link"});
      continue;  // sockets, fifos, devices, symlinked folders
    }
    Candidate c;
    c.path = p.string();
    c.size = int64_t(fs::file_size(p, e2));
    if (!e2) c.mtime = mtime_ns(fs::last_write_time(p, e2));
    if (e2) {
      failed->push_back({c.path, cat("cannot stat: ", e2.message())});
      continue;
    }
    out->push_back(std::move(c));
  }
  if (ec) failed->push_back({dir.string(), cat("cannot list folder: ", ec.message())});
  std::sort(subdirs.begin(), subdirs.end());
  for (const auto& s : subdirs) walk(s, exclude, out, failed);
}

// Reads and decodes one file; the error says why it is not usable.
Expected<Image> read_image(const std::string& path, int64_t size, const DecodeLimits& limits) {
  if (size == 0) return make_error("empty file");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return make_error("cannot open: ", std::strerror(errno));
  // The signature first, so a folder's videos and archives are not read whole just to be refused.
  uint8_t head[16];
  const size_t got = std::fread(head, 1, sizeof head, f.get());
  if (sniff_image_format({head, got}) == ImageFormat::kUnknown)
    return make_error("not an image (no PNG, JPEG or WebP signature)");
  if (size > limits.max_file_bytes) return make_error(size, " bytes, more than the limit of ", limits.max_file_bytes);
  std::vector<uint8_t> data(static_cast<size_t>(size));
  std::memcpy(data.data(), head, std::min(got, data.size()));
  if (data.size() > got && std::fread(data.data() + got, 1, data.size() - got, f.get()) != data.size() - got)
    return make_error("short read (file changed while indexing?)");
  return decode_image(data, limits);
}

}  // namespace

Expected<IndexReport> index_folder(const models::DualEncoder& m, const ModelId& id, const std::string& folder,
                                   const std::string& db_path, const IndexOptions& opt, const IndexProgress& progress) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return make_error("no such folder: ", folder);
  const fs::path root = fs::absolute(folder, ec).lexically_normal();
  std::string prefix = root.string();
  if (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();  // "dir/." normalises to "dir/"
  const fs::path root_clean(prefix);

  Db db;
  VLM_TRY_STATUS(open_for_writing(db, db_path, id));

  // The index and its journals may live in the folder itself; they are not images.
  std::set<std::string> exclude;
  const std::string db_abs = fs::absolute(db_path, ec).lexically_normal().string();
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) exclude.insert(db_abs + suffix);

  IndexReport rep;
  std::vector<Candidate> files;
  walk(root_clean, exclude, &files, &rep.failed);

  std::unordered_map<std::string, std::pair<int64_t, int64_t>> known;  // path -> (size, mtime)
  {
    Stmt st;
    VLM_TRY_STATUS(db.prepare("SELECT path, size, mtime FROM images", &st));
    while (sqlite3_step(st.get()) == SQLITE_ROW)
      known[column_text(st.get(), 0)] = {sqlite3_column_int64(st.get(), 1), sqlite3_column_int64(st.get(), 2)};
  }

  Stmt insert;
  VLM_TRY_STATUS(db.prepare(
      "INSERT OR REPLACE INTO images(path, size, mtime, dim, embedding) VALUES (?, ?, ?, ?, ?)", &insert));
  const int64_t S = m.image_config().out_height() * int64_t(m.image_config().out_width()) * 3;
  const int64_t dim = m.embed_dim();
  std::vector<Candidate> batch;
  std::vector<float> pixels;

  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    std::vector<float> e = m.embed_images(pixels, int64_t(batch.size()));
    models::l2_normalize(e.data(), int64_t(batch.size()), dim);
    VLM_TRY_STATUS(db.exec("BEGIN IMMEDIATE"));
    for (size_t i = 0; i < batch.size(); ++i) {
      sqlite3_stmt* s = insert.get();
      sqlite3_bind_text(s, 1, batch[i].path.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(s, 2, batch[i].size);
      sqlite3_bind_int64(s, 3, batch[i].mtime);
      sqlite3_bind_int64(s, 4, dim);
      sqlite3_bind_blob(s, 5, e.data() + int64_t(i) * dim, int(dim * sizeof(float)), SQLITE_TRANSIENT);
      const int rc = sqlite3_step(s);
      sqlite3_reset(s);
      if (rc != SQLITE_DONE) {
        Error err = db.error("writing embeddings");
        (void)db.exec("ROLLBACK");
        return err;
      }
    }
    VLM_TRY_STATUS(db.exec("COMMIT"));
    rep.indexed += int64_t(batch.size());
    batch.clear();
    pixels.clear();
    return Status::Ok();
  };

  const int64_t total = int64_t(files.size());
  const size_t batch_size = size_t(std::max(1, opt.batch));
  for (int64_t i = 0; i < total; ++i) {
    if (opt.cancel && opt.cancel->load()) {
      rep.interrupted = true;
      break;
    }
    const Candidate& f = files[size_t(i)];
    auto k = known.find(f.path);
    if (k != known.end() && k->second.first == f.size && k->second.second == f.mtime) {
      ++rep.skipped;
    } else {
      auto img = read_image(f.path, f.size, opt.limits);
      // Pixels rather than decoded images wait for the batch, so a batch of large photos stays small.
      auto px = img.ok() ? m.preprocess({img.value()}) : Expected<std::vector<float>>(img.error());
      if (!px.ok()) {
        rep.failed.push_back({f.path, px.error().message});
      } else if (int64_t(px->size()) != S) {
        rep.failed.push_back({f.path, "preprocessing gave an unexpected size"});
      } else {
        pixels.insert(pixels.end(), px->begin(), px->end());
        batch.push_back(f);
        if (batch.size() >= batch_size) VLM_TRY_STATUS(flush());
      }
    }
    if (progress) progress(i + 1, total, f.path);
  }
  VLM_TRY_STATUS(flush());

  if (!rep.interrupted) {
    // Rows of this folder whose file is gone would only ever turn up as dead search results.
    std::set<std::string> seen;
    for (const auto& f : files) seen.insert(f.path);
    std::vector<std::string> gone;
    const std::string under = prefix == "/" ? prefix : prefix + "/";
    for (const auto& [path, meta] : known)
      if (path.compare(0, under.size(), under) == 0 && !seen.count(path) && !fs::exists(path, ec)) gone.push_back(path);
    if (!gone.empty()) {
      Stmt del;
      VLM_TRY_STATUS(db.prepare("DELETE FROM images WHERE path = ?", &del));
      VLM_TRY_STATUS(db.exec("BEGIN IMMEDIATE"));
      for (const auto& p : gone) {
        sqlite3_bind_text(del.get(), 1, p.c_str(), -1, SQLITE_TRANSIENT);
        const int rc = sqlite3_step(del.get());
        sqlite3_reset(del.get());
        if (rc != SQLITE_DONE) {
          Error err = db.error("removing rows");
          (void)db.exec("ROLLBACK");
          return err;
        }
      }
      VLM_TRY_STATUS(db.exec("COMMIT"));
      rep.removed = int64_t(gone.size());
    }
  }

  Stmt count;
  VLM_TRY_STATUS(db.prepare("SELECT count(*) FROM images", &count));
  if (sqlite3_step(count.get()) == SQLITE_ROW) rep.total = sqlite3_column_int64(count.get(), 0);
  return rep;
}

Status check_index_model(const std::string& path, const ModelId& id) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::Ok();
  if (!fs::is_regular_file(path, ec)) return make_error(path, " is not a file");
  Db db;
  VLM_TRY_STATUS(db.open(path, /*writable=*/false));
  VLM_ASSIGN_OR_RETURN(auto tables, table_names(db));
  if (tables.empty()) return Status::Ok();  // an empty file is an empty SQLite database
  if (!tables.count("meta") || !tables.count("images"))
    return make_error(path, " is an SQLite file but not a vlm image index; choose another --db");
  return check_identity(db, id);
}

Expected<ImageIndex> ImageIndex::load(const std::string& path, const ModelId& id) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return make_error("no index at ", path, " (build one with `vlm index`)");
  Db db;
  VLM_TRY_STATUS(db.open(path, /*writable=*/false));
  VLM_ASSIGN_OR_RETURN(auto tables, table_names(db));
  if (!tables.count("meta") || !tables.count("images")) return make_error(path, " is not a vlm image index");
  VLM_TRY_STATUS(check_identity(db, id));
  VLM_ASSIGN_OR_RETURN(auto meta, read_meta(db));

  ImageIndex ix;
  ix.built_with_ = {meta["model_path"], meta["model_family"], id.dim, meta["model_fingerprint"]};
  ix.dim_ = id.dim;
  Stmt st;
  VLM_TRY_STATUS(db.prepare("SELECT path, dim, embedding FROM images ORDER BY path", &st));
  const size_t bytes = size_t(ix.dim_) * sizeof(float);
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    const std::string p = column_text(st.get(), 0);
    const void* blob = sqlite3_column_blob(st.get(), 2);
    if (sqlite3_column_int64(st.get(), 1) != ix.dim_ || size_t(sqlite3_column_bytes(st.get(), 2)) != bytes || !blob)
      return make_error(path, ": the row of ", p, " holds no ", ix.dim_, "-float embedding; index the folder again");
    const size_t at = ix.rows_.size();
    ix.rows_.resize(at + size_t(ix.dim_));
    std::memcpy(ix.rows_.data() + at, blob, bytes);
    ix.paths_.push_back(p);
  }
  if (rc != SQLITE_DONE) return db.error("reading embeddings");
  return ix;
}

std::vector<SearchHit> ImageIndex::search(const std::vector<float>& query, int64_t top, ScanKernel k) const {
  if (int64_t(query.size()) != dim_ || paths_.empty()) return {};
  std::vector<float> scores(paths_.size());
  scan_dot(rows_.data(), size(), dim_, query.data(), scores.data(), k);
  std::vector<SearchHit> out;
  for (const Match& mt : top_k(scores.data(), size(), top)) out.push_back({paths_[size_t(mt.row)], mt.score});
  return out;
}

}  // namespace vlm::runtime
