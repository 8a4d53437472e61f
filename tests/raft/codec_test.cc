// Round trips of the raft codec on random values, and garbage that must be rejected.
#include "raft/codec.h"

#include <catch2/catch.hpp>

#include "raft/rand.h"

namespace {

std::string RandomBytes(raft::Rng& rng, size_t max_len) {
  std::string s(rng.Uniform(max_len + 1), '\0');
  for (char& c : s) c = static_cast<char>(rng.Uniform(256));
  return s;
}

uint64_t RandomU64(raft::Rng& rng) {
  // Mix small and huge values so every varint length is exercised.
  switch (rng.Uniform(4)) {
    case 0:
      return rng.Uniform(128);
    case 1:
      return rng.Uniform(1 << 20);
    case 2:
      return rng.Next() >> rng.Uniform(64);
    default:
      return UINT64_MAX - rng.Uniform(3);
  }
}

raft::Entry RandomEntry(raft::Rng& rng) {
  return raft::Entry{RandomU64(rng), RandomU64(rng),
                     rng.Chance(1, 2) ? raft::EntryType::kNormal : raft::EntryType::kConfChange,
                     RandomBytes(rng, 40)};
}

raft::Message RandomMessage(raft::Rng& rng) {
  raft::Message m;
  m.type = static_cast<raft::MessageType>(
      rng.Uniform(static_cast<uint64_t>(raft::MessageType::kNumMessageTypes)));
  m.to = RandomU64(rng);
  m.from = RandomU64(rng);
  m.term = RandomU64(rng);
  m.log_term = RandomU64(rng);
  m.index = RandomU64(rng);
  m.commit = RandomU64(rng);
  m.reject = rng.Chance(1, 2);
  m.reject_hint = RandomU64(rng);
  m.context = RandomBytes(rng, 10);
  const uint64_t n = rng.Uniform(4);
  for (uint64_t i = 0; i < n; ++i) m.entries.push_back(RandomEntry(rng));
  if (rng.Chance(1, 3)) {
    m.has_snapshot = true;
    m.snapshot.metadata.index = RandomU64(rng);
    m.snapshot.metadata.term = RandomU64(rng);
    m.snapshot.metadata.conf_state.voters = {1, 2, RandomU64(rng)};
    m.snapshot.metadata.conf_state.learners = {RandomU64(rng)};
    m.snapshot.data = RandomBytes(rng, 100);
  }
  return m;
}

}  // namespace

// Goal: every encodable value decodes back to itself.
TEST_CASE("codec round trips random values", "[raft][codec]") {
  raft::Rng rng(42);
  for (int i = 0; i < 2000; ++i) {
    const raft::Entry e = RandomEntry(rng);
    raft::Entry e2;
    REQUIRE(raft::DecodeEntry(raft::EncodeEntry(e), &e2).ok());
    REQUIRE(e2 == e);

    const raft::Message m = RandomMessage(rng);
    raft::Message m2;
    REQUIRE(raft::DecodeMessage(raft::EncodeMessage(m), &m2).ok());
    REQUIRE(m2 == m);

    const raft::HardState hs{RandomU64(rng), RandomU64(rng), RandomU64(rng)};
    raft::HardState hs2;
    REQUIRE(raft::DecodeHardState(raft::EncodeHardState(hs), &hs2).ok());
    REQUIRE(hs2 == hs);

    raft::SnapshotMetadata md;
    md.index = RandomU64(rng);
    md.term = RandomU64(rng);
    md.conf_state.voters = {RandomU64(rng)};
    raft::SnapshotMetadata md2;
    REQUIRE(raft::DecodeSnapshotMetadata(raft::EncodeSnapshotMetadata(md), &md2).ok());
    REQUIRE(md2 == md);

    const raft::ConfChange cc{static_cast<raft::ConfChangeType>(rng.Uniform(3)), RandomU64(rng),
                              RandomBytes(rng, 8)};
    raft::ConfChange cc2;
    REQUIRE(raft::DecodeConfChange(raft::EncodeConfChange(cc), &cc2).ok());
    REQUIRE(cc2 == cc);
  }
}

// Goal: truncated, mutated and random inputs are rejected with kCorrupt, never crash.
TEST_CASE("codec rejects garbage", "[raft][codec]") {
  raft::Rng rng(7);
  size_t rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string enc = raft::EncodeMessage(RandomMessage(rng));
    // Every strict prefix is a truncation and must fail.
    const size_t cut = static_cast<size_t>(rng.Uniform(enc.size()));
    raft::Message out;
    raft::Status s = raft::DecodeMessage(std::string_view(enc).substr(0, cut), &out);
    REQUIRE(!s.ok());
    REQUIRE(s.code() == raft::Code::kCorrupt);
    // Trailing bytes are rejected.
    REQUIRE(!raft::DecodeMessage(enc + "x", &out).ok());
    // A flipped byte either decodes to something or is rejected; it must not crash.
    enc[static_cast<size_t>(rng.Uniform(enc.size()))] ^= static_cast<char>(1 + rng.Uniform(255));
    if (!raft::DecodeMessage(enc, &out).ok()) ++rejected;
    // Pure garbage.
    const std::string junk = RandomBytes(rng, 64);
    raft::Entry e;
    raft::HardState hs;
    raft::SnapshotMetadata md;
    raft::ConfChange cc;
    (void)raft::DecodeEntry(junk, &e);
    (void)raft::DecodeHardState(junk, &hs);
    (void)raft::DecodeSnapshotMetadata(junk, &md);
    (void)raft::DecodeConfChange(junk, &cc);
  }
  REQUIRE(rejected > 0);
  // A wrong version or kind is rejected.
  std::string enc = raft::EncodeHardState({1, 2, 3});
  raft::HardState hs;
  std::string bad_version = enc;
  bad_version[0] = 9;
  REQUIRE(raft::DecodeHardState(bad_version, &hs).code() == raft::Code::kCorrupt);
  raft::Entry e;
  REQUIRE(raft::DecodeEntry(enc, &e).code() == raft::Code::kCorrupt);
  // A huge entry count in a short message is rejected without allocating.
  raft::Message m;
  std::string huge = raft::EncodeMessage(m);
  huge[huge.size() - 1] = static_cast<char>(0xff);
  huge += std::string(8, static_cast<char>(0xff)) + "\x01";
  REQUIRE(!raft::DecodeMessage(huge, &m).ok());
}
