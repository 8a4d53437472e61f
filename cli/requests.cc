#include "cli/requests.h"

#include <algorithm>
#include <cctype>

#include "cli/options.h"
#include "cli/range_flags.h"

namespace cli {
namespace {

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

}  // namespace

Status BuildRange(const GetArgs& a, etcdserverpb::RangeRequest* req) {
  KeyRange range;
  Status s = ParseKeyRange("get", a.args, a.prefix, a.from_key, &range);
  if (!s.ok()) return s;
  req->set_key(range.key);
  req->set_range_end(range.range_end);
  if (a.consistency == "s") {
    req->set_serializable(true);
  } else if (a.consistency != "l") {
    return Status::Error(kExitBadFeature, "unknown consistency flag \"" + a.consistency + "\"");
  }
  auto order = etcdserverpb::RangeRequest::NONE;
  std::string order_upper = Upper(a.order);
  if (order_upper == "ASCEND") {
    order = etcdserverpb::RangeRequest::ASCEND;
  } else if (order_upper == "DESCEND") {
    order = etcdserverpb::RangeRequest::DESCEND;
  } else if (!order_upper.empty()) {
    return Status::Error(kExitBadFeature, "bad sort order " + a.order);
  }
  auto target = etcdserverpb::RangeRequest::KEY;
  std::string target_upper = Upper(a.sort_by);
  if (target_upper == "CREATE") {
    target = etcdserverpb::RangeRequest::CREATE;
  } else if (target_upper == "KEY") {
    target = etcdserverpb::RangeRequest::KEY;
  } else if (target_upper == "MODIFY") {
    target = etcdserverpb::RangeRequest::MOD;
  } else if (target_upper == "VALUE") {
    target = etcdserverpb::RangeRequest::VALUE;
  } else if (target_upper == "VERSION") {
    target = etcdserverpb::RangeRequest::VERSION;
  } else if (!target_upper.empty()) {
    return Status::Error(kExitBadFeature, "bad sort target " + a.sort_by);
  }
  // clientv3.WithSort: ascending by key is the server's natural order.
  if (target == etcdserverpb::RangeRequest::KEY && order == etcdserverpb::RangeRequest::ASCEND) {
    order = etcdserverpb::RangeRequest::NONE;
  }
  req->set_sort_order(order);
  req->set_sort_target(target);
  req->set_limit(a.limit);
  req->set_revision(a.rev);
  req->set_keys_only(a.keys_only);
  req->set_count_only(a.count_only);
  return Status::Ok();
}

Status BuildPut(const PutArgs& a, const std::string* stdin_value, etcdserverpb::PutRequest* req) {
  const std::string usage = "put command needs 1 argument and input from stdin or 2 arguments";
  if (a.args.empty()) return Status::Error(kExitBadArgs, usage);
  if (a.ignore_value && a.args.size() > 1) {
    return Status::Error(kExitBadArgs,
                         "put command needs only 1 argument when 'ignore-value' is set");
  }
  std::string value;
  if (!a.ignore_value) {
    if (a.args.size() > 1) {
      value = a.args[1];
    } else if (stdin_value != nullptr && !stdin_value->empty()) {
      value = *stdin_value;
    } else {
      return Status::Error(kExitBadArgs, usage);
    }
  }
  auto lease = ParseHexId(a.lease);
  if (!lease) {
    return Status::Error(kExitBadArgs, "bad lease ID (strconv.ParseInt: parsing \"" + a.lease +
                                           "\": invalid syntax), expecting ID in Hex");
  }
  req->set_key(a.args[0]);
  req->set_value(value);
  req->set_lease(static_cast<std::int64_t>(*lease));
  req->set_prev_kv(a.prev_kv);
  req->set_ignore_value(a.ignore_value);
  req->set_ignore_lease(a.ignore_lease);
  return Status::Ok();
}

Status BuildDelete(const DelArgs& a, etcdserverpb::DeleteRangeRequest* req) {
  KeyRange range;
  Status s = ParseKeyRange("del", a.args, a.prefix, a.from_key, &range);
  if (!s.ok()) return s;
  req->set_key(range.key);
  req->set_range_end(range.range_end);
  req->set_prev_kv(a.prev_kv);
  return Status::Ok();
}

}  // namespace cli
