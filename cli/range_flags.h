// Key-range arguments shared by get, del and watch: etcdctl's rules for KEY [RANGE_END],
// --prefix and --from-key.
#pragma once
#include <string>
#include <vector>

#include "cli/status.h"

namespace cli {

struct KeyRange {
  std::string key;
  std::string range_end;  // empty: the single key
};

// `command` names the command in etcdctl's error text ("get", "del"). Returns ExitBadArgs
// errors with etcdctl's wording.
Status ParseKeyRange(const std::string& command, const std::vector<std::string>& args, bool prefix,
                     bool from_key, KeyRange* range);

}  // namespace cli
