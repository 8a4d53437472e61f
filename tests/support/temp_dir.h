// A temporary directory that removes itself, with everything in it, on destruction.
#pragma once

#include <filesystem>
#include <string_view>

namespace kvtest {

// Created with mkdtemp under $TMPDIR (or /tmp) as "<prefix>-XXXXXX". Set the environment
// variable KV_TEST_KEEP_TMP=1 to keep it for a post-mortem (its path is then printed).
// Not thread-safe; movable, not copyable. Throws SupportError if it cannot be created.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "kvtest");
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  void Remove() noexcept;

  std::filesystem::path path_;
};

}  // namespace kvtest
