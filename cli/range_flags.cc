#include "cli/range_flags.h"

#include "cli/commands.h"

namespace cli {

Status ParseKeyRange(const std::string& command, const std::vector<std::string>& args, bool prefix,
                     bool from_key, KeyRange* range) {
  // etcdctl's get ignores arguments after range_end; del rejects them.
  if (args.empty() || (args.size() > 2 && command != "get")) {
    return Status::Error(kExitBadArgs,
                         command +
                             " command needs one argument as key and an optional argument "
                             "as range_end");
  }
  if (prefix && from_key) {
    return Status::Error(kExitBadArgs,
                         "`--prefix` and `--from-key` cannot be set at the same time, choose one");
  }
  range->key = args[0];
  range->range_end.clear();
  if (args.size() > 1) {
    if (prefix || from_key) {
      return Status::Error(kExitBadArgs,
                           "too many arguments, only accept one argument when `--prefix` or "
                           "`--from-key` is set");
    }
    range->range_end = args[1];
  }
  if (prefix) {
    if (range->key.empty()) {
      range->key = std::string(1, '\0');
      range->range_end = std::string(1, '\0');
    } else {
      range->range_end = PrefixRangeEnd(range->key);
    }
  }
  if (from_key) {
    if (range->key.empty()) range->key = std::string(1, '\0');
    range->range_end = std::string(1, '\0');
  }
  return Status::Ok();
}

}  // namespace cli
