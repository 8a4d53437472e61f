// Unit tests of the kvd snapshot reader behind `kvctl snapshot status`.
#include "cli/snapshot_file.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

namespace {

void PutVarint(std::string* out, std::uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutBigEndian(std::string* out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutRecord(std::string* out, int family_index, const std::string& key,
               const std::string& value) {
  out->push_back(static_cast<char>(family_index + 1));
  PutVarint(out, key.size());
  out->append(key);
  PutVarint(out, value.size());
  out->append(value);
}

// A checkpoint in kvd's documented format (docs/storage.md), framed like a saved snapshot.
std::string Checkpoint(std::int64_t revision, int extra_records) {
  std::string b = "KVDCKPT1";
  PutVarint(&b, 2);
  for (const std::string f : {"mvcc_rev", "meta"}) {
    PutVarint(&b, f.size());
    b += f;
  }
  std::string rev;
  PutBigEndian(&rev, static_cast<std::uint64_t>(revision), 8);
  PutRecord(&b, 1, "current_rev", rev);
  for (int i = 0; i < extra_records; ++i) PutRecord(&b, 0, "r" + std::to_string(i), "value");
  b.push_back('\0');
  PutBigEndian(&b, static_cast<std::uint64_t>(extra_records + 1), 8);
  PutBigEndian(&b, cli::Crc32c(0, b), 4);
  b += "KVDCKEND";
  const std::size_t body = b.size();
  b.resize((body + 511) / 512 * 512, '\0');
  b.append(32, 'S');  // the sha256 trailer
  return b;
}

TEST_CASE("Crc32c matches the Castagnoli check value", "[unit]") {
  // Goal: the checksum is CRC-32C (the standard check value of "123456789").
  CHECK(cli::Crc32c(0, "123456789") == 0xE3069283u);
  CHECK(cli::Crc32c(cli::Crc32c(0, "1234"), "56789") == 0xE3069283u);
}

TEST_CASE("ParseSnapshotFile reads revision, key count, hash and size", "[unit]") {
  // Goal: the figures of an intact checkpoint, ignoring padding and the sha256 trailer.
  const std::string file = Checkpoint(42, 5);
  cli::SnapshotFileStatus st;
  REQUIRE(cli::ParseSnapshotFile("s.db", file, &st).ok());
  CHECK(st.revision == 42);
  CHECK(st.total_keys == 6);
  CHECK(st.total_bytes < file.size() - 32);
  CHECK(st.total_bytes == file.find("KVDCKEND") + 8);
  CHECK(st.hash == cli::Crc32c(0, file.substr(0, st.total_bytes - 12)));
}

TEST_CASE("ParseSnapshotFile refuses damaged and foreign files", "[unit]") {
  // Goal: a flipped byte, a truncated file and a bbolt file each fail with exit 3 and a reason.
  const std::string good = Checkpoint(7, 3);
  cli::SnapshotFileStatus st;
  std::string flipped = good;
  flipped[30] = static_cast<char>(flipped[30] ^ 0x01);
  cli::Status s = cli::ParseSnapshotFile("f.db", flipped, &st);
  CHECK(s.exit_code == 3);
  CHECK(s.message.rfind("f.db: ", 0) == 0);
  s = cli::ParseSnapshotFile("t.db", good.substr(0, 40), &st);
  CHECK(s.exit_code == 3);
  CHECK(s.message == "t.db: truncated");
  std::string bolt(4096, '\0');
  bolt[16] = static_cast<char>(0xED);
  s = cli::ParseSnapshotFile("etcd.db", bolt, &st);
  CHECK(s.exit_code == 3);
  CHECK(s.message.find("not a kvd snapshot") != std::string::npos);
  s = cli::ParseSnapshotFile("empty.db", "", &st);
  CHECK(s.exit_code == 3);
}

}  // namespace
