// raft::codec: a compact, versioned binary encoding of Entry, Message, HardState,
// SnapshotMetadata and ConfChange, for the network (server) and the log on disk (kvstore).
//
// Format: one version byte (kCodecVersion), one kind byte, then the fields as unsigned LEB128
// varints; byte strings are a varint length followed by the bytes. Decoders reject unknown
// versions/kinds, out-of-range enums, lengths beyond the input, trailing bytes and counts
// beyond the limits below: garbage input returns kCorrupt, it never crashes or over-allocates.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "raft/types.h"

namespace raft {

inline constexpr uint8_t kCodecVersion = 1;
// Upper bounds enforced when decoding (a Message with more entries is rejected).
inline constexpr uint64_t kCodecMaxEntriesPerMessage = 1 << 20;
inline constexpr uint64_t kCodecMaxMembers = 1 << 16;

std::string EncodeEntry(const Entry& e);
Status DecodeEntry(std::string_view in, Entry* out);

std::string EncodeMessage(const Message& m);
Status DecodeMessage(std::string_view in, Message* out);

std::string EncodeHardState(const HardState& hs);
Status DecodeHardState(std::string_view in, HardState* out);

std::string EncodeSnapshotMetadata(const SnapshotMetadata& md);
Status DecodeSnapshotMetadata(std::string_view in, SnapshotMetadata* out);

std::string EncodeConfChange(const ConfChange& cc);
Status DecodeConfChange(std::string_view in, ConfChange* out);

}  // namespace raft
