#include "cli/kv_read.h"

#include "cli/commands.h"

namespace cli {

Status GetKeyAt(Client& client, const std::string& key, std::int64_t revision,
                std::optional<mvccpb::KeyValue>* kv, std::int64_t* header_revision) {
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  req.set_revision(revision);
  etcdserverpb::RangeResponse resp;
  auto rpc = client.NewContext();
  Status s = RpcError(client.kv().Range(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  if (header_revision != nullptr) *header_revision = resp.header().revision();
  if (resp.kvs_size() == 0) {
    kv->reset();
  } else {
    *kv = resp.kvs(0);
  }
  return Status::Ok();
}

Status GetPrefixAt(Client& client, const std::string& prefix, std::int64_t revision,
                   std::size_t keys_max, std::map<std::string, mvccpb::KeyValue>* out,
                   std::int64_t* header_revision, const std::function<void(std::size_t)>& on_page) {
  constexpr std::int64_t kPageKeys = 1000;
  out->clear();
  std::string key = prefix.empty() ? std::string(1, '\0') : prefix;
  const std::string end = prefix.empty() ? std::string(1, '\0') : PrefixRangeEnd(prefix);
  std::int64_t pinned = revision;
  // Bounded by keys_max / kPageKeys pages.
  while (true) {
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    req.set_range_end(end);
    req.set_revision(pinned);
    req.set_limit(kPageKeys);
    etcdserverpb::RangeResponse resp;
    auto rpc = client.NewContext();
    Status s = RpcError(client.kv().Range(rpc.get(), req, &resp));
    if (!s.ok()) return s;
    if (pinned == 0) pinned = resp.header().revision();
    if (header_revision != nullptr) *header_revision = pinned;
    for (const auto& kv : resp.kvs()) {
      if (out->size() >= keys_max) {
        return Status::Error(
            kExitError, "more than " + std::to_string(keys_max) + " keys under \"" + prefix + "\"");
      }
      (*out)[kv.key()] = kv;
    }
    if (on_page) on_page(out->size());
    if (!resp.more() || resp.kvs_size() == 0) break;
    key = resp.kvs(resp.kvs_size() - 1).key() + std::string(1, '\0');
  }
  return Status::Ok();
}

std::string DirPrefix(const std::string& prefix) {
  if (prefix.empty() || prefix.back() == '/') return prefix;
  return prefix + "/";
}

}  // namespace cli
