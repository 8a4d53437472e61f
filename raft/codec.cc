#include "raft/codec.h"

namespace raft {

namespace {

enum class Kind : uint8_t {
  kEntry = 1,
  kMessage = 2,
  kHardState = 3,
  kSnapshotMetadata = 4,
  kConfChange = 5,
};

class Writer {
 public:
  explicit Writer(Kind kind) {
    out_.push_back(static_cast<char>(kCodecVersion));
    out_.push_back(static_cast<char>(kind));
  }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void Bytes(std::string_view s) {
    Varint(s.size());
    out_.append(s.data(), s.size());
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads fields in order; after the first failure every read fails, so callers check once.
class Reader {
 public:
  Reader(std::string_view in, Kind kind) : in_(in) {
    uint64_t version = 0;
    uint64_t k = 0;
    if (!Byte(&version) || version != kCodecVersion || !Byte(&k) ||
        k != static_cast<uint64_t>(kind)) {
      ok_ = false;
    }
  }
  bool Byte(uint64_t* v) {
    if (!ok_ || pos_ >= in_.size()) return ok_ = false;
    *v = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint64_t b = 0;
      if (!Byte(&b)) return false;
      if (shift == 63 && b > 1) return ok_ = false;  // overflows 64 bits
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return ok_ = false;
  }
  bool Bytes(std::string* s) {
    uint64_t n = 0;
    if (!Varint(&n)) return false;
    if (n > in_.size() - pos_) return ok_ = false;
    s->assign(in_.data() + pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }
  bool Bool(bool* b) {
    uint64_t v = 0;
    if (!Varint(&v) || v > 1) return ok_ = false;
    *b = v == 1;
    return true;
  }
  bool Count(uint64_t* n, uint64_t max) {
    // Every element takes at least one byte: a count beyond the remaining input is garbage.
    if (!Varint(n) || *n > max || *n > in_.size() - pos_) return ok_ = false;
    return true;
  }
  void Fail() { ok_ = false; }
  size_t remaining() const { return in_.size() - pos_; }
  Status Finish(const char* what) {
    if (ok_ && pos_ == in_.size()) return Status::Ok();
    return {Code::kCorrupt, std::string("malformed ") + what};
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

void PutEntryFields(Writer* w, const Entry& e) {
  w->Varint(e.term);
  w->Varint(e.index);
  w->Varint(static_cast<uint64_t>(e.type));
  w->Bytes(e.data);
}

bool GetEntryFields(Reader* r, Entry* e) {
  uint64_t type = 0;
  if (!r->Varint(&e->term) || !r->Varint(&e->index) || !r->Varint(&type) || !r->Bytes(&e->data)) {
    return false;
  }
  if (type > static_cast<uint64_t>(EntryType::kConfChange)) {
    r->Fail();
    return false;
  }
  e->type = static_cast<EntryType>(type);
  return true;
}

void PutIds(Writer* w, const std::vector<uint64_t>& ids) {
  w->Varint(ids.size());
  for (uint64_t id : ids) w->Varint(id);
}

bool GetIds(Reader* r, std::vector<uint64_t>* ids) {
  uint64_t n = 0;
  if (!r->Count(&n, kCodecMaxMembers)) return false;
  ids->clear();
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t id = 0;
    if (!r->Varint(&id)) return false;
    ids->push_back(id);
  }
  return true;
}

void PutMetadataFields(Writer* w, const SnapshotMetadata& md) {
  w->Varint(md.index);
  w->Varint(md.term);
  PutIds(w, md.conf_state.voters);
  PutIds(w, md.conf_state.learners);
}

bool GetMetadataFields(Reader* r, SnapshotMetadata* md) {
  return r->Varint(&md->index) && r->Varint(&md->term) && GetIds(r, &md->conf_state.voters) &&
         GetIds(r, &md->conf_state.learners);
}

}  // namespace

std::string EncodeEntry(const Entry& e) {
  Writer w(Kind::kEntry);
  PutEntryFields(&w, e);
  return w.Take();
}

Status DecodeEntry(std::string_view in, Entry* out) {
  Reader r(in, Kind::kEntry);
  Entry e;
  GetEntryFields(&r, &e);
  Status s = r.Finish("entry");
  if (s.ok()) *out = std::move(e);
  return s;
}

std::string EncodeMessage(const Message& m) {
  Writer w(Kind::kMessage);
  w.Varint(static_cast<uint64_t>(m.type));
  w.Varint(m.to);
  w.Varint(m.from);
  w.Varint(m.term);
  w.Varint(m.log_term);
  w.Varint(m.index);
  w.Varint(m.commit);
  w.Varint((m.reject ? 1u : 0u) | (m.has_snapshot ? 2u : 0u));
  w.Varint(m.reject_hint);
  w.Bytes(m.context);
  w.Varint(m.entries.size());
  for (const Entry& e : m.entries) PutEntryFields(&w, e);
  if (m.has_snapshot) {
    PutMetadataFields(&w, m.snapshot.metadata);
    w.Bytes(m.snapshot.data);
  }
  return w.Take();
}

Status DecodeMessage(std::string_view in, Message* out) {
  Reader r(in, Kind::kMessage);
  Message m;
  uint64_t type = 0;
  uint64_t flags = 0;
  uint64_t n = 0;
  if (r.Varint(&type) && r.Varint(&m.to) && r.Varint(&m.from) && r.Varint(&m.term) &&
      r.Varint(&m.log_term) && r.Varint(&m.index) && r.Varint(&m.commit) && r.Varint(&flags) &&
      r.Varint(&m.reject_hint) && r.Bytes(&m.context) && r.Count(&n, kCodecMaxEntriesPerMessage)) {
    if (type >= static_cast<uint64_t>(MessageType::kNumMessageTypes) || flags > 3) {
      r.Fail();
    } else {
      m.type = static_cast<MessageType>(type);
    }
    m.reject = (flags & 1) != 0;
    m.has_snapshot = (flags & 2) != 0;
    for (uint64_t i = 0; i < n; ++i) {
      Entry e;
      if (!GetEntryFields(&r, &e)) break;
      m.entries.push_back(std::move(e));
    }
    if (m.has_snapshot && GetMetadataFields(&r, &m.snapshot.metadata)) r.Bytes(&m.snapshot.data);
  }
  Status s = r.Finish("message");
  if (s.ok()) *out = std::move(m);
  return s;
}

std::string EncodeHardState(const HardState& hs) {
  Writer w(Kind::kHardState);
  w.Varint(hs.term);
  w.Varint(hs.vote);
  w.Varint(hs.commit);
  return w.Take();
}

Status DecodeHardState(std::string_view in, HardState* out) {
  Reader r(in, Kind::kHardState);
  HardState hs;
  (void)(r.Varint(&hs.term) && r.Varint(&hs.vote) && r.Varint(&hs.commit));
  Status s = r.Finish("hard state");
  if (s.ok()) *out = hs;
  return s;
}

std::string EncodeSnapshotMetadata(const SnapshotMetadata& md) {
  Writer w(Kind::kSnapshotMetadata);
  PutMetadataFields(&w, md);
  return w.Take();
}

Status DecodeSnapshotMetadata(std::string_view in, SnapshotMetadata* out) {
  Reader r(in, Kind::kSnapshotMetadata);
  SnapshotMetadata md;
  GetMetadataFields(&r, &md);
  Status s = r.Finish("snapshot metadata");
  if (s.ok()) *out = std::move(md);
  return s;
}

std::string EncodeConfChange(const ConfChange& cc) {
  Writer w(Kind::kConfChange);
  w.Varint(static_cast<uint64_t>(cc.type));
  w.Varint(cc.node_id);
  w.Bytes(cc.context);
  return w.Take();
}

Status DecodeConfChange(std::string_view in, ConfChange* out) {
  Reader r(in, Kind::kConfChange);
  ConfChange cc;
  uint64_t type = 0;
  if (r.Varint(&type) && r.Varint(&cc.node_id) && r.Bytes(&cc.context)) {
    if (type > static_cast<uint64_t>(ConfChangeType::kAddLearnerNode)) {
      r.Fail();
    } else {
      cc.type = static_cast<ConfChangeType>(type);
    }
  }
  Status s = r.Finish("conf change");
  if (s.ok()) *out = std::move(cc);
  return s;
}

}  // namespace raft
