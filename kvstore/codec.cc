#include "kvstore/codec.h"

#include "kvstore/status.h"

namespace kvstore::codec {

namespace {

void AppendEscaped(std::string* out, std::string_view key) {
  out->reserve(out->size() + key.size() + 2 + kRevSuffixBytes);
  for (char c : key) {
    out->push_back(c);
    if (c == '\0') out->push_back('\xff');
  }
}

void PutBe32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetBe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void AppendRev(std::string* out, int64_t main, int64_t sub) {
  PutBe64(out, ~static_cast<uint64_t>(main));
  PutBe32(out, ~static_cast<uint32_t>(sub));
}

}  // namespace

void PutBe64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBe64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (unsigned shift = 0; shift < 64 && !in->empty(); shift += 7) {
    auto b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

std::string KeySeek(std::string_view key) {
  std::string out;
  AppendEscaped(&out, key);
  return out;
}

std::string KeyPrefix(std::string_view key) {
  std::string out;
  AppendEscaped(&out, key);
  out.push_back('\0');
  out.push_back('\x01');
  return out;
}

std::string KvKey(std::string_view key, int64_t main, int64_t sub) {
  std::string out = KeyPrefix(key);
  AppendRev(&out, main, sub);
  return out;
}

std::string KvKeyAtOrBefore(std::string_view key, int64_t main) {
  std::string out = KeyPrefix(key);
  PutBe64(&out, ~static_cast<uint64_t>(main));
  PutBe32(&out, 0);  // ~sub is smallest for the largest sub: every sub of `main` sorts after
  return out;
}

std::string KvKeyAfterAll(std::string_view key) {
  std::string out = KeyPrefix(key);
  out.append(kRevSuffixBytes, '\xff');  // main 0 never exists, so this is past every version
  return out;
}

bool DecodeKvKey(std::string_view raw, std::string* key, int64_t* main, int64_t* sub) {
  if (raw.size() < 2 + kRevSuffixBytes) return false;
  size_t end = raw.size() - kRevSuffixBytes;
  if (raw[end - 2] != '\0' || raw[end - 1] != '\x01') return false;
  key->clear();
  const size_t n = end - 2;
  for (size_t i = 0; i < n; ++i) {
    char c = raw[i];
    key->push_back(c);
    if (c == '\0') {
      if (i + 1 >= n || raw[i + 1] != '\xff') return false;
      ++i;
    }
  }
  *main = static_cast<int64_t>(~GetBe64(raw.data() + end));
  *sub = static_cast<int64_t>(~GetBe32(raw.data() + end + 8));
  return true;
}

std::string RevKey(int64_t main, int64_t sub) {
  std::string out;
  PutBe64(&out, static_cast<uint64_t>(main));
  PutBe32(&out, static_cast<uint32_t>(sub));
  return out;
}

bool DecodeRevKey(std::string_view raw, int64_t* main, int64_t* sub) {
  if (raw.size() != 12) return false;
  *main = static_cast<int64_t>(GetBe64(raw.data()));
  *sub = static_cast<int64_t>(GetBe32(raw.data() + 8));
  return true;
}

namespace {

// The kind byte and the three varints of a put's record.
void PutRecordHeader(std::string* out, char kind, const Record& r) {
  out->push_back(kind);
  PutVarint(out, static_cast<uint64_t>(r.create_revision));
  PutVarint(out, static_cast<uint64_t>(r.version));
  PutVarint(out, static_cast<uint64_t>(r.lease));
}

}  // namespace

std::string EncodeRecord(const Record& r) {
  std::string out;
  if (r.tombstone) {
    out.push_back(kKindTombstone);
    return out;
  }
  out.reserve(r.value.size() + 16);
  PutRecordHeader(&out, kKindPut, r);
  out.append(r.value);
  return out;
}

std::string EncodeRecordWithoutValue(const Record& r) {
  KV_CHECK(!r.tombstone, "a tombstone has no value to leave out");
  std::string out;
  PutRecordHeader(&out, kKindPutValueInKv, r);
  return out;
}

bool DecodeRecord(std::string_view raw, Record* r, bool want_value, bool* value_in_kv) {
  if (raw.empty()) return false;
  char kind = raw.front();
  raw.remove_prefix(1);
  *r = Record();
  if (value_in_kv != nullptr) *value_in_kv = false;
  if (kind == kKindTombstone) {
    r->tombstone = true;
    return raw.empty();
  }
  const bool elsewhere = kind == kKindPutValueInKv && value_in_kv != nullptr;
  if (kind != kKindPut && !elsewhere) return false;
  uint64_t c = 0, v = 0, l = 0;
  if (!GetVarint(&raw, &c) || !GetVarint(&raw, &v) || !GetVarint(&raw, &l)) return false;
  r->create_revision = static_cast<int64_t>(c);
  r->version = static_cast<int64_t>(v);
  r->lease = static_cast<int64_t>(l);
  if (elsewhere) {
    *value_in_kv = true;
    return raw.empty();
  }
  if (want_value) r->value.assign(raw.data(), raw.size());
  return true;
}

}  // namespace kvstore::codec
