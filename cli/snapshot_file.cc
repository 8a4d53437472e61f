#include "cli/snapshot_file.h"

#include <array>
#include <vector>

namespace cli {

namespace {

constexpr std::string_view kMagic = "KVDCKPT1";
constexpr std::string_view kEndMagic = "KVDCKEND";
constexpr std::string_view kBboltMagicNote =
    " (etcd's bbolt snapshots are not supported; use etcdctl snapshot status)";
// A checkpoint names five families; a bound keeps a corrupt count from allocating much.
constexpr std::uint64_t kFamiliesMax = 64;

std::array<std::uint32_t, 256> MakeTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

// Sequential reader over the checkpoint bytes; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  std::size_t pos() const { return pos_; }
  bool Bytes(std::size_t n, std::string_view* out) {
    if (data_.size() - pos_ < n) return false;
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Varint(std::uint64_t* v) {
    std::uint64_t result = 0;
    for (unsigned shift = 0; shift < 64 && pos_ < data_.size(); shift += 7) {
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      result |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  bool BigEndian(std::size_t n, std::uint64_t* v) {
    std::string_view b;
    if (!Bytes(n, &b)) return false;
    *v = 0;
    for (char c : b) *v = (*v << 8) | static_cast<unsigned char>(c);
    return true;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

}  // namespace

std::uint32_t Crc32c(std::uint32_t crc, std::string_view data) {
  static const std::array<std::uint32_t, 256> kTable = MakeTable();
  crc = ~crc;
  for (char c : data) crc = kTable[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
  return ~crc;
}

Status ParseSnapshotFile(const std::string& name, std::string_view data, SnapshotFileStatus* out) {
  auto bad = [&name](const std::string& why) {
    return Status::Error(kExitInvalidInput, name + ": " + why);
  };
  Reader r(data);
  std::string_view magic;
  if (!r.Bytes(kMagic.size(), &magic) || magic != kMagic) {
    return bad("not a kvd snapshot" + std::string(kBboltMagicNote));
  }
  std::uint64_t families = 0;
  if (!r.Varint(&families) || families == 0 || families > kFamiliesMax) {
    return bad("corrupt family list");
  }
  std::vector<std::string_view> names;
  for (std::uint64_t i = 0; i < families; ++i) {
    std::uint64_t len = 0;
    std::string_view family;
    if (!r.Varint(&len) || !r.Bytes(len, &family)) return bad("corrupt family list");
    names.push_back(family);
  }
  std::int64_t records = 0;
  bool have_revision = false;
  // Bounded by the data: every record consumes at least three bytes.
  while (true) {
    std::string_view tag;
    if (!r.Bytes(1, &tag)) return bad("truncated");
    const std::size_t family = static_cast<unsigned char>(tag[0]);
    if (family == 0) break;
    if (family > names.size()) return bad("record of an unknown family");
    std::uint64_t key_len = 0;
    std::uint64_t value_len = 0;
    std::string_view key;
    std::string_view value;
    if (!r.Varint(&key_len) || !r.Bytes(key_len, &key) || !r.Varint(&value_len) ||
        !r.Bytes(value_len, &value)) {
      return bad("truncated");
    }
    ++records;
    if (names[family - 1] == "meta" && key == "current_rev" && value.size() == 8) {
      std::uint64_t rev = 0;
      Reader v(value);
      if (v.BigEndian(8, &rev)) {
        out->revision = static_cast<std::int64_t>(rev);
        have_revision = true;
      }
    }
  }
  std::uint64_t count = 0;
  if (!r.BigEndian(8, &count)) return bad("truncated");
  if (count != static_cast<std::uint64_t>(records)) {
    return bad("record count " + std::to_string(count) + " does not match the " +
               std::to_string(records) + " records");
  }
  const std::uint32_t computed = Crc32c(0, data.substr(0, r.pos()));
  std::uint64_t stored = 0;
  if (!r.BigEndian(4, &stored)) return bad("truncated");
  if (stored != computed) return bad("checksum mismatch");
  std::string_view end;
  if (!r.Bytes(kEndMagic.size(), &end) || end != kEndMagic) return bad("missing end marker");
  if (!have_revision) return bad("no revision recorded");
  out->hash = computed;
  out->total_keys = records;
  out->total_bytes = r.pos();
  return Status::Ok();
}

}  // namespace cli
