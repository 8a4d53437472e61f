#include "cli/kv_read.h"

#include <deque>

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

namespace cli {

namespace {

// Replays `key`'s events from `start` until an event at or after `stop_rev`. Sets
// *compacted_at (and returns ok with nothing more appended) when the server cancels the watch
// because `start` is compacted, so the caller can retry from there.
Status ReplayEvents(Client& client, const std::string& key, bool whole_keyspace, std::int64_t start,
                    std::int64_t stop_rev, std::size_t changes_max, std::size_t events_max,
                    std::deque<KeyChange>* changes, std::int64_t* compacted_at) {
  *compacted_at = 0;
  auto rpc = client.NewContext();
  auto stream = client.watch().Watch(rpc.get());
  etcdserverpb::WatchRequest req;
  auto* create = req.mutable_create_request();
  create->set_key(whole_keyspace ? std::string(1, '\0') : key);
  if (whole_keyspace) create->set_range_end(std::string(1, '\0'));
  create->set_start_revision(start);
  Status result = Status::Error(kExitError, "watch stream ended before the history was read");
  std::size_t events_seen = 0;
  if (stream->Write(req)) {
    etcdserverpb::WatchResponse resp;
    bool done = false;
    // Bounded by events_max events and by the command deadline on the stream.
    while (!done && stream->Read(&resp)) {
      if (resp.canceled()) {
        if (resp.compact_revision() > 0) {
          *compacted_at = resp.compact_revision();
          result = Status::Ok();
        } else {
          result = Status::Error(kExitError, "watch was canceled (" + resp.cancel_reason() + ")");
        }
        break;
      }
      for (const auto& ev : resp.events()) {
        if (++events_seen > events_max) {
          result = Status::Error(kExitError, "more than " + std::to_string(events_max) +
                                                 " events in the retained history; give a "
                                                 "smaller range of revisions");
          done = true;
          break;
        }
        const std::int64_t rev = ev.kv().mod_revision();
        if (ev.kv().key() == key) {
          KeyChange c;
          c.revision = rev;
          c.deleted = ev.type() == mvccpb::Event::DELETE;
          c.kv = ev.kv();
          changes->push_back(std::move(c));
          if (changes->size() > changes_max) changes->pop_front();
        }
        if (rev >= stop_rev) {
          result = Status::Ok();
          done = true;
          break;
        }
      }
    }
  }
  rpc->TryCancel();
  grpc::Status finish = stream->Finish();
  if (!result.ok() && !finish.ok() && finish.error_code() != grpc::StatusCode::CANCELLED) {
    return RpcError(finish);
  }
  return result;
}

}  // namespace

Status ReadKeyHistory(Client& client, const std::string& key, std::size_t changes_max,
                      std::size_t events_max, std::vector<KeyChange>* out,
                      std::int64_t* compact_revision) {
  KVCTL_CHECK(changes_max > 0);
  out->clear();
  *compact_revision = 0;
  std::optional<mvccpb::KeyValue> now;
  std::int64_t current_rev = 0;
  Status s = GetKeyAt(client, key, 0, &now, &current_rev);
  if (!s.ok()) return s;
  // Revision 1 is the empty store: nothing ever happened.
  if (current_rev <= 1) return Status::Ok();
  const bool whole_keyspace = !now.has_value();
  const std::int64_t stop_rev = now ? now->mod_revision() : current_rev;
  std::deque<KeyChange> changes;
  std::int64_t start = 1;
  // A concurrent compaction can move the start more than once; a few retries suffice.
  for (int attempt = 0; attempt < 4; ++attempt) {
    changes.clear();
    if (*compact_revision > 0) {
      // The version alive at the compaction point: the oldest one still readable.
      std::optional<mvccpb::KeyValue> at_compaction;
      s = GetKeyAt(client, key, *compact_revision, &at_compaction);
      if (!s.ok() && s.message.find("compacted") != std::string::npos) continue;
      if (!s.ok()) return s;
      if (at_compaction)
        changes.push_back(KeyChange{at_compaction->mod_revision(), false, *at_compaction});
    }
    if (start > stop_rev) break;
    std::int64_t compacted_at = 0;
    s = ReplayEvents(client, key, whole_keyspace, start, stop_rev, changes_max, events_max,
                     &changes, &compacted_at);
    if (!s.ok()) return s;
    if (compacted_at == 0) break;
    *compact_revision = compacted_at;
    start = compacted_at + 1;
    if (attempt == 3) {
      return Status::Error(kExitError, "history of \"" + key + "\" kept being compacted");
    }
  }
  while (changes.size() > changes_max) changes.pop_front();
  out->assign(changes.begin(), changes.end());
  return Status::Ok();
}

}  // namespace cli
