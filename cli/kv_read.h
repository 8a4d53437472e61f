// Reads shared by the config-center commands (history, diff, rollback, import, export).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/status.h"

namespace cli {

// One key as of `revision` (0 = latest). nullopt in *kv when absent.
Status GetKeyAt(Client& client, const std::string& key, std::int64_t revision,
                std::optional<mvccpb::KeyValue>* kv, std::int64_t* header_revision = nullptr);

// Every key under `prefix` at `revision` (0 = latest), paged (1000 keys per Range, pinned to
// the first page's revision), up to `keys_max` keys. `on_page` (optional) gets the count so
// far, for progress bars.
Status GetPrefixAt(Client& client, const std::string& prefix, std::int64_t revision,
                   std::size_t keys_max, std::map<std::string, mvccpb::KeyValue>* out,
                   std::int64_t* header_revision = nullptr,
                   const std::function<void(std::size_t)>& on_page = nullptr);

// "P" -> "P/" unless empty or already ending in '/'.
std::string DirPrefix(const std::string& prefix);

}  // namespace cli

namespace cli {

// One retained change of a key: a put (kv holds the value and versions) or a delete
// (a tombstone: only `revision` is meaningful).
struct KeyChange {
  std::int64_t revision = 0;
  bool deleted = false;
  mvccpb::KeyValue kv;
};

// Every retained change of `key`, oldest first, including earlier lives before a delete and
// re-create: a Watch from the compaction revision + 1 replays the key's events. If the key
// exists now the replay ends at its current mod_revision (a single-key watch); if it does not,
// the watch covers every key and ends at the first event at or after the current revision
// (the only event known to exist). When the history is compacted, the version alive at the
// compaction revision comes first and *compact_revision is set (else 0). Keeps the last
// `changes_max` changes; fails if more than `events_max` events stream by. Bounded in time by
// the client's command timeout.
Status ReadKeyHistory(Client& client, const std::string& key, std::size_t changes_max,
                      std::size_t events_max, std::vector<KeyChange>* out,
                      std::int64_t* compact_revision);

}  // namespace cli
