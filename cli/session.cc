#include "cli/session.h"

#include <csignal>

#include "cli/commands.h"

namespace cli {

namespace {
std::atomic<bool> g_interrupted{false};
extern "C" void OnSignal(int) { g_interrupted.store(true); }
}  // namespace

const std::atomic<bool>& InterruptFlag() {
  static const bool installed = [] {
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    return true;
  }();
  (void)installed;
  return g_interrupted;
}

Session::~Session() { Close(); }

Status Session::Open(std::int64_t ttl_seconds) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  etcdserverpb::LeaseGrantResponse resp;
  auto rpc = client_.NewContext();
  Status s = RpcError(client_.lease().LeaseGrant(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  lease_id_ = resp.id();
  stream_context_ = client_.NewStreamContext();
  thread_ = std::thread([this, ttl_seconds] { KeepAliveLoop(ttl_seconds); });
  return Status::Ok();
}

void Session::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (stream_context_) stream_context_->TryCancel();
  if (thread_.joinable()) thread_.join();
}

void Session::KeepAliveLoop(std::int64_t ttl_seconds) {
  auto stream = client_.lease().LeaseKeepAlive(stream_context_.get());
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(lease_id_);
  etcdserverpb::LeaseKeepAliveResponse resp;
  const auto period = std::chrono::milliseconds(std::max<std::int64_t>(1, ttl_seconds) * 1000 / 3);
  // Ends on Close() or when the lease is gone.
  while (true) {
    if (!stream->Write(req) || !stream->Read(&resp) || resp.ttl() <= 0) {
      expired_.store(true);
      return;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, period, [this] { return stop_; })) return;
  }
}

Status WaitDelete(Client& client, const std::string& key, std::int64_t after_revision,
                  const std::atomic<bool>& stop) {
  auto rpc = client.NewStreamContext();
  auto stream = client.watch().Watch(rpc.get());
  etcdserverpb::WatchRequest req;
  req.mutable_create_request()->set_key(key);
  req.mutable_create_request()->set_start_revision(after_revision + 1);
  if (!stream->Write(req)) return Status::Error(kExitError, "watch failed");
  // A helper cancels the stream when `stop` is raised (checked every 100 ms).
  std::atomic<bool> done{false};
  std::thread canceler([&] {
    while (!done.load() && !stop.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rpc->TryCancel();
  });
  etcdserverpb::WatchResponse resp;
  Status result = Status::Error(kExitError, "watch canceled");
  while (stream->Read(&resp)) {
    bool deleted = false;
    for (const auto& e : resp.events()) deleted = deleted || e.type() == mvccpb::Event::DELETE;
    if (deleted) {
      result = Status::Ok();
      break;
    }
    if (resp.canceled()) break;
  }
  done.store(true);
  canceler.join();
  return result;
}

Status AcquireOrdered(Client& client, const Session& session, const std::string& prefix,
                      const std::string& value, std::string* key, std::int64_t* revision) {
  const std::string pfx = prefix + "/";
  *key = pfx + HexId(static_cast<std::uint64_t>(session.lease_id()));
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key(*key);
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_create_revision(0);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(*key);
  put->set_value(value);
  put->set_lease(session.lease_id());
  txn.add_failure()->mutable_request_range()->set_key(*key);
  etcdserverpb::TxnResponse resp;
  auto rpc = client.NewContext();
  Status s = RpcError(client.kv().Txn(rpc.get(), txn, &resp));
  if (!s.ok()) return s;
  *revision = resp.header().revision();
  if (!resp.succeeded() && resp.responses_size() > 0 &&
      resp.responses(0).response_range().kvs_size() > 0) {
    *revision = resp.responses(0).response_range().kvs(0).create_revision();
  }
  // Wait for every earlier key (lower create revision) under the prefix to go away. Each
  // round removes at least one waiter ahead of us, so the loop is bounded by their number.
  while (true) {
    if (InterruptFlag().load()) return Status::Error(kExitInterrupted, "interrupted");
    etcdserverpb::RangeRequest range;
    range.set_key(pfx);
    range.set_range_end(PrefixRangeEnd(pfx));
    range.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    range.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
    range.set_limit(1);
    range.set_max_create_revision(*revision - 1);
    etcdserverpb::RangeResponse ahead;
    auto rrpc = client.NewContext();
    s = RpcError(client.kv().Range(rrpc.get(), range, &ahead));
    if (!s.ok()) return s;
    if (ahead.kvs_size() == 0) return Status::Ok();
    s = WaitDelete(client, ahead.kvs(0).key(), ahead.header().revision(), InterruptFlag());
    if (!s.ok()) return Status::Error(kExitInterrupted, "interrupted");
  }
}

}  // namespace cli
