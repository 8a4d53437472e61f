// Byte layouts of the MVCC column families (see docs/storage.md). Pure functions, no RocksDB.
//
// kv CF key   = Escape(user_key) 0x00 0x01 | be64(~main) | be32(~sub)
//   Escape maps 0x00 -> 0x00 0xFF, so the encoding preserves unsigned byte order between user
//   keys, no escaped key is a prefix of another's entries, and versions of one key sort newest
//   first (a Range at revision R is one Seek per key).
// kv CF value = kind byte (0 = put, 1 = tombstone) then, for puts, varint create_revision,
//   varint version, varint lease, and the raw value.
// latest CF value = rev key, then the same record, or for a long value kind 2 and the varints
//   without the value (read it from the kv CF).
// rev CF key  = be64(main) | be32(sub);  value = kind byte + user key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kvstore::codec {

inline constexpr char kKindPut = 0;
inline constexpr char kKindTombstone = 1;
// mvcc_latest only: a put whose value was not copied there (StoreOptions::
// latest_value_bytes_max); the value is in the kv CF's record of the same revision.
inline constexpr char kKindPutValueInKv = 2;
inline constexpr size_t kRevSuffixBytes = 12;

// Escaped key plus the 0x00 0x01 terminator: the common prefix of all versions of `key`.
std::string KeyPrefix(std::string_view key);
// Escaped key without terminator: seeking here finds the first entry of any key >= `key`.
std::string KeySeek(std::string_view key);
// The kv CF key of `key` at (main, sub).
std::string KvKey(std::string_view key, int64_t main, int64_t sub);
// The smallest kv CF key of `key` with main <= `main` (seek target for "newest version <= main").
std::string KvKeyAtOrBefore(std::string_view key, int64_t main);
// A key just after every version of `key` (seek target for the next user key).
std::string KvKeyAfterAll(std::string_view key);

// Splits a kv CF key. Returns false when the bytes are not a valid kv CF key.
[[nodiscard]] bool DecodeKvKey(std::string_view raw, std::string* key, int64_t* main, int64_t* sub);
// Length of the KeyPrefix part of a valid kv CF key.
inline size_t KvPrefixLen(std::string_view raw) { return raw.size() - kRevSuffixBytes; }

std::string RevKey(int64_t main, int64_t sub);
[[nodiscard]] bool DecodeRevKey(std::string_view raw, int64_t* main, int64_t* sub);

struct Record {
  bool tombstone = false;
  int64_t create_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
  std::string value;
};
std::string EncodeRecord(const Record& r);
// A put's record without its value, kind kKindPutValueInKv (latest CF only). Precondition:
// !r.tombstone (checked).
std::string EncodeRecordWithoutValue(const Record& r);
// Decodes a record. Kind kKindPutValueInKv is accepted only when `value_in_kv` is not null
// (the latest CF); it then sets *value_in_kv = true and leaves the value empty (otherwise
// *value_in_kv = false).
[[nodiscard]] bool DecodeRecord(std::string_view raw, Record* r, bool want_value = true,
                                bool* value_in_kv = nullptr);

void PutBe64(std::string* out, uint64_t v);
uint64_t GetBe64(const char* p);
void PutVarint(std::string* out, uint64_t v);
[[nodiscard]] bool GetVarint(std::string_view* in, uint64_t* v);

}  // namespace kvstore::codec
