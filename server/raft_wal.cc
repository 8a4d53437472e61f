#include "server/raft_wal.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "raft/codec.h"

namespace server {
namespace {

// Record layout: u32 payload length (LE), u32 CRC-32 of the payload (LE), payload. The payload's
// first byte is the kind.
enum class Kind : uint8_t {
  kHardState = 1,       // EncodeHardState
  kEntry = 2,           // EncodeEntry
  kApplySnapshot = 3,   // u32 metadata length, EncodeSnapshotMetadata, data
  kCreateSnapshot = 4,  // same layout as kApplySnapshot
  // Compaction is not a record: Compact rewrites the file with the retained log only.
};

// Largest record accepted at replay: a length beyond it is a torn or corrupt header.
constexpr uint32_t kRecordBytesMax = 512u << 20;
constexpr size_t kHeaderBytes = 8;

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

uint32_t Crc32(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : data) c = kCrcTable[(c ^ static_cast<uint8_t>(ch)) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

void AddRecord(std::string* out, Kind kind, std::string_view body) {
  std::string payload;
  payload.reserve(body.size() + 1);
  payload.push_back(static_cast<char>(kind));
  payload.append(body);
  PutU32(out, static_cast<uint32_t>(payload.size()));
  PutU32(out, Crc32(payload));
  out->append(payload);
}

std::string SnapshotBody(const raft::SnapshotMetadata& md, std::string_view data) {
  std::string enc = raft::EncodeSnapshotMetadata(md);
  std::string body;
  PutU32(&body, static_cast<uint32_t>(enc.size()));
  body.append(enc);
  body.append(data);
  return body;
}

bool ParseSnapshotBody(std::string_view body, raft::Snapshot* out) {
  if (body.size() < 4) return false;
  const uint32_t md_len = GetU32(body.data());
  if (body.size() - 4 < md_len) return false;
  if (!raft::DecodeSnapshotMetadata(body.substr(4, md_len), &out->metadata).ok()) return false;
  out->data = std::string(body.substr(4 + md_len));
  return true;
}

Status IoError(const std::string& what, const std::string& path) {
  return Status(1, what + " " + path + ": " + std::strerror(errno));
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError("open", dir);
  const int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return IoError("fsync", dir);
  return Status::Ok();
}

}  // namespace

Status RaftWal::Open(const std::string& dir, std::unique_ptr<RaftWal>* out) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status(1, "cannot create " + dir + ": " + ec.message());
  std::unique_ptr<RaftWal> wal(new RaftWal());
  wal->dir_ = dir;
  wal->path_ = dir + "/raft.wal";
  wal->fd_ = ::open(wal->path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (wal->fd_ < 0) return IoError("open", wal->path_);
  Status s = wal->Replay();
  if (!s.ok()) return s;
  *out = std::move(wal);
  return Status::Ok();
}

RaftWal::~RaftWal() {
  if (fd_ >= 0) ::close(fd_);
}

Status RaftWal::Replay() {
  std::string content;
  {
    const off_t size = ::lseek(fd_, 0, SEEK_END);
    if (size < 0) return IoError("seek", path_);
    content.resize(static_cast<size_t>(size));
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t n =
          ::pread(fd_, content.data() + done, content.size() - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return IoError("read", path_);
      done += static_cast<size_t>(n);
    }
  }
  size_t pos = 0;
  while (content.size() - pos >= kHeaderBytes) {
    const uint32_t len = GetU32(content.data() + pos);
    const uint32_t crc = GetU32(content.data() + pos + 4);
    if (len == 0 || len > kRecordBytesMax || content.size() - pos - kHeaderBytes < len) break;
    const std::string_view payload(content.data() + pos + kHeaderBytes, len);
    if (Crc32(payload) != crc) break;
    const auto kind = static_cast<Kind>(static_cast<uint8_t>(payload[0]));
    const std::string_view body = payload.substr(1);
    bool ok = true;
    switch (kind) {
      case Kind::kHardState: {
        raft::HardState hs;
        ok = raft::DecodeHardState(body, &hs).ok();
        if (ok) mem_.SetHardState(hs);
        break;
      }
      case Kind::kEntry: {
        raft::Entry e;
        ok = raft::DecodeEntry(body, &e).ok() && e.index <= mem_.LastIndex() + 1;
        if (ok) mem_.Append({e});
        break;
      }
      case Kind::kApplySnapshot: {
        raft::Snapshot snap;
        ok = ParseSnapshotBody(body, &snap);
        if (ok) (void)mem_.ApplySnapshot(snap);  // an out-of-date one changes nothing
        break;
      }
      case Kind::kCreateSnapshot: {
        raft::Snapshot snap;
        ok = ParseSnapshotBody(body, &snap) && snap.metadata.index <= mem_.LastIndex();
        raft::Snapshot created;
        if (ok) {
          (void)mem_.CreateSnapshot(snap.metadata.index, snap.metadata.conf_state,
                                    std::move(snap.data), &created);
        }
        break;
      }
      default:
        ok = false;
    }
    if (!ok) break;
    pos += kHeaderBytes + len;
  }
  if (pos != content.size()) {
    // A torn or corrupt tail: everything before it was written completely. Cut it off so new
    // records follow a valid one.
    std::fprintf(stderr, "raft wal %s: dropping %zu bytes of torn tail at offset %zu\n",
                 path_.c_str(), content.size() - pos, pos);
    if (::ftruncate(fd_, static_cast<off_t>(pos)) != 0) return IoError("truncate", path_);
    if (::fdatasync(fd_) != 0) return IoError("fdatasync", path_);
  }
  if (::lseek(fd_, static_cast<off_t>(pos), SEEK_SET) < 0) return IoError("seek", path_);
  file_bytes_ = pos;
  return Status::Ok();
}

bool RaftWal::IsEmpty() const { return mem_.LastIndex() == 0 && mem_.hard_state().empty(); }

raft::Status RaftWal::InitialState(raft::HardState* hard_state, raft::ConfState* conf_state) const {
  return mem_.InitialState(hard_state, conf_state);
}
raft::Status RaftWal::Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                              std::vector<raft::Entry>* out) const {
  return mem_.Entries(lo, hi, max_bytes, out);
}
raft::Status RaftWal::Term(uint64_t i, uint64_t* term) const { return mem_.Term(i, term); }
uint64_t RaftWal::FirstIndex() const { return mem_.FirstIndex(); }
uint64_t RaftWal::LastIndex() const { return mem_.LastIndex(); }
raft::Status RaftWal::Snapshot(raft::Snapshot* out) const { return mem_.Snapshot(out); }

Status RaftWal::AppendRecords(const std::string& records) {
  if (records.empty()) return Status::Ok();
  Status s = WriteAll(fd_, records, path_);
  if (!s.ok()) return s;
  if (::fdatasync(fd_) != 0) return IoError("fdatasync", path_);
  file_bytes_ += records.size();
  return Status::Ok();
}

Status RaftWal::Save(const raft::HardState* hard_state, const std::vector<raft::Entry>& entries,
                     const raft::Snapshot* snapshot) {
  std::string records;
  const bool has_snap = snapshot != nullptr && !snapshot->empty();
  if (has_snap) {
    AddRecord(&records, Kind::kApplySnapshot, SnapshotBody(snapshot->metadata, snapshot->data));
  }
  for (const raft::Entry& e : entries) AddRecord(&records, Kind::kEntry, raft::EncodeEntry(e));
  const bool has_hs = hard_state != nullptr && !hard_state->empty();
  if (has_hs) AddRecord(&records, Kind::kHardState, raft::EncodeHardState(*hard_state));
  Status s = AppendRecords(records);
  if (!s.ok()) return s;
  // Memory follows only once the bytes are durable, so readers never see unsynced state.
  if (has_snap) {
    raft::Status rs = mem_.ApplySnapshot(*snapshot);
    if (!rs.ok() && rs.code() != raft::Code::kSnapshotOutOfDate) {
      return Status(1, "apply snapshot: " + rs.ToString());
    }
  }
  if (!entries.empty()) mem_.Append(entries);
  if (has_hs) mem_.SetHardState(*hard_state);
  return Status::Ok();
}

Status RaftWal::CreateSnapshot(uint64_t index, const raft::ConfState& conf_state,
                               std::string data) {
  raft::Snapshot created;
  raft::Status rs = mem_.CreateSnapshot(index, conf_state, data, &created);
  if (!rs.ok()) return Status(1, "create snapshot: " + rs.ToString());
  std::string records;
  AddRecord(&records, Kind::kCreateSnapshot, SnapshotBody(created.metadata, created.data));
  return AppendRecords(records);
}

Status RaftWal::Compact(uint64_t index) {
  raft::Status rs = mem_.Compact(index);
  if (!rs.ok()) return Status(1, "compact: " + rs.ToString());
  return Rewrite();
}

Status RaftWal::Rewrite() {
  // The retained log as a fresh file: a base snapshot mark at the compaction point (so the
  // dummy term survives), the retained entries, the real snapshot, the hard state.
  raft::Snapshot snap;
  raft::Status rs = mem_.Snapshot(&snap);
  if (!rs.ok()) return Status(1, "snapshot: " + rs.ToString());
  std::string records;
  raft::SnapshotMetadata base;
  base.index = mem_.FirstIndex() - 1;
  rs = mem_.Term(base.index, &base.term);
  if (!rs.ok()) return Status(1, "term: " + rs.ToString());
  base.conf_state = snap.metadata.conf_state;
  if (base.index > 0) AddRecord(&records, Kind::kApplySnapshot, SnapshotBody(base, ""));
  for (uint64_t lo = mem_.FirstIndex(); lo <= mem_.LastIndex();) {
    std::vector<raft::Entry> ents;
    rs = mem_.Entries(lo, mem_.LastIndex() + 1, 64u << 20, &ents);
    if (!rs.ok()) return Status(1, "entries: " + rs.ToString());
    for (const raft::Entry& e : ents) AddRecord(&records, Kind::kEntry, raft::EncodeEntry(e));
    lo += ents.size();
  }
  if (!snap.empty() && snap.metadata.index > base.index) {
    AddRecord(&records, Kind::kCreateSnapshot, SnapshotBody(snap.metadata, snap.data));
  }
  if (!mem_.hard_state().empty()) {
    AddRecord(&records, Kind::kHardState, raft::EncodeHardState(mem_.hard_state()));
  }
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("open", tmp);
  Status s = WriteAll(fd, records, tmp);
  if (s.ok() && ::fdatasync(fd) != 0) s = IoError("fdatasync", tmp);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::close(fd);
    return IoError("rename", tmp);
  }
  s = SyncDir(dir_);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  ::close(fd_);
  fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) return IoError("open", path_);
  ::close(fd);
  file_bytes_ = records.size();
  return Status::Ok();
}

}  // namespace server
