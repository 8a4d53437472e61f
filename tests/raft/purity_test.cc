// raft/ must stay deterministic and dependency-free: no threads, clocks, randomness devices,
// files, sockets, gRPC or RocksDB. This scans its sources for forbidden includes.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

// Goal: no file under raft/ includes a forbidden header.
TEST_CASE("raft sources include no threads, clocks, files, sockets, grpc or rocksdb",
          "[raft][purity]") {
  const std::regex forbidden(
      R"(#\s*include\s*[<"](thread|mutex|chrono|random|fstream|sys/socket\.h|)"
      R"(condition_variable|future|ctime|time\.h|grpc[^>"]*|rocksdb[^>"]*)[>"])");
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(KV_RAFT_SRC_DIR)) {
    const auto ext = entry.path().extension();
    if (ext != ".h" && ext != ".cc") continue;
    ++files;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    std::smatch m;
    INFO(entry.path().string());
    CHECK_FALSE(std::regex_search(text, m, forbidden));
  }
  REQUIRE(files >= 10);
  // The regex itself must match what it is meant to catch.
  REQUIRE(std::regex_search(std::string("#include <thread>"), forbidden));
  REQUIRE(std::regex_search(std::string("#include \"rocksdb/db.h\""), forbidden));
}
