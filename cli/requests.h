// Request builders shared by the get/put/del commands and the ops inside `txn`, so both
// accept the same flags with the same errors (etcdctl's wording and exit codes).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cli/status.h"
#include "proto/rpc.pb.h"

namespace cli {

struct GetArgs {
  std::vector<std::string> args;  // <key> [range_end]
  std::string consistency = "l";
  std::string order;
  std::string sort_by;
  bool prefix = false;
  bool from_key = false;
  std::int64_t limit = 0;
  std::int64_t rev = 0;
  bool keys_only = false;
  bool count_only = false;
  bool print_value_only = false;
};
Status BuildRange(const GetArgs& a, etcdserverpb::RangeRequest* req);

struct PutArgs {
  std::vector<std::string> args;  // <key> [value]
  std::string lease = "0";
  bool prev_kv = false;
  bool ignore_value = false;
  bool ignore_lease = false;
};
// `stdin_value` is used when args holds only the key (nullptr: no stdin available).
Status BuildPut(const PutArgs& a, const std::string* stdin_value, etcdserverpb::PutRequest* req);

struct DelArgs {
  std::vector<std::string> args;  // <key> [range_end]
  bool prefix = false;
  bool from_key = false;
  bool prev_kv = false;
};
Status BuildDelete(const DelArgs& a, etcdserverpb::DeleteRangeRequest* req);

}  // namespace cli
