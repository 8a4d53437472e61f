// Reads shared by the config-center commands (history, diff, rollback, import, export).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

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
