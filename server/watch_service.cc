#include "server/watch_service.h"

#include <memory>
#include <vector>

#include "server/log.h"
#include "server/services.h"

namespace server {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// One Watch stream. Reads are chained (one StartRead at a time, from the constructor and
// OnReadDone); writes are chained too, and `mu_` + `writing_` make sure only one place starts
// the next write: the notify callback (queue became non-empty) or OnWriteDone (more queued).
class WatchReactor final : public grpc::ServerBidiReactor<WatchRequest, WatchResponse>,
                           public WatchService::Stream {
 public:
  WatchReactor(WatchService* service, Node* node, grpc::CallbackServerContext* ctx,
               size_t poll_batch_max)
      : service_(service), poll_batch_max_(poll_batch_max) {
    registered_ = service_->Register(this);
    if (!registered_) {
      FinishOnce(ToGrpc(errors::Stopped()));
      return;
    }
    // etcdctl and clientv3's WithRequireLeader send "hasleader: true": refuse at once without a
    // leader instead of waiting for one (etcd's v3rpc interceptor).
    const auto& md = ctx->client_metadata();
    auto it = md.find("hasleader");
    if (it != md.end() && it->second == "true" && node->leader() == 0) {
      FinishOnce(ToGrpc(errors::NoLeader()));
      return;
    }
    if (node->is_learner()) {
      FinishOnce(ToGrpc(errors::NotSupportedForLearner()));
      return;
    }
    kvstore::Status s = node->watchable().OpenStream([this] { MaybeWrite(); }, &stream_);
    if (!s.ok()) {
      FinishOnce(ToGrpc(s));
      return;
    }
    std::lock_guard<std::mutex> lk(mu_);
    if (!finished_) StartRead(&request_);  // WatchService::Stop may have closed it meanwhile
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Half-close (or a broken stream): etcd keeps serving the watchers until the client
      // cancels, so only reading stops here; OnCancel ends the stream.
      return;
    }
    kvstore::Status s = stream_->HandleRequest(request_);
    if (s.code() == kvstore::Code::kResourceExhausted) {
      // The client does not read its responses: end the stream rather than queue more.
      FinishOnce(ToGrpc(s));
      return;
    }
    // InvalidArgument (no request_union) is ignored, as etcd's recvLoop does.
    std::lock_guard<std::mutex> lk(mu_);
    if (!finished_) StartRead(&request_);  // no new operation once Finish was called
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      writing_ = false;
      if (!ok) {
        // The stream is broken (cancel or finish): nothing more can be written.
        broken_ = true;
        return;
      }
      ++next_;
    }
    MaybeWrite();
  }

  void OnCancel() override { FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "canceled")); }

  // WatchService::Stop.
  void Close(const grpc::Status& status) override { FinishOnce(status); }

  void OnDone() override {
    if (registered_) service_->Unregister(this);
    // Destroying the stream removes its watchers and waits for a notify call in progress, which
    // only touches this reactor under mu_ (and sees finished_), so deleting afterwards is safe.
    stream_.reset();
    delete this;
  }

 private:
  // Starts the next write unless one is in flight. Called from notify (any thread) and from
  // OnWriteDone.
  void MaybeWrite() {
    std::lock_guard<std::mutex> lk(mu_);
    if (writing_ || finished_ || broken_ || !stream_) return;
    if (next_ >= batch_.size()) {
      batch_.clear();
      next_ = 0;
      stream_->Poll(poll_batch_max_, &batch_);
      if (batch_.empty()) return;
    }
    writing_ = true;
    StartWrite(&batch_[next_]);
  }

  // Finish and StartRead/StartWrite are called under mu_, so that no operation starts after
  // Finish (gRPC aborts on that). Holding mu_ there is safe: the reactions of a non-inlineable
  // reactor never run inside the Start*/Finish call, they run on gRPC's threads.
  void FinishOnce(const grpc::Status& status) {
    std::lock_guard<std::mutex> lk(mu_);
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  WatchService* const service_;
  bool registered_ = false;
  const size_t poll_batch_max_;
  std::unique_ptr<kvstore::WatchStream> stream_;  // null when refused at creation
  WatchRequest request_;                          // the read in flight (one at a time)

  std::mutex mu_;
  bool writing_ = false;              // a StartWrite is in flight
  bool finished_ = false;             // Finish was called
  bool broken_ = false;               // a write failed
  std::vector<WatchResponse> batch_;  // polled responses; batch_[next_] is being written
  size_t next_ = 0;
};

}  // namespace

WatchService::WatchService(Node* node, WatchServiceOptions options)
    : node_(node), options_(options) {
  worker_ = std::thread([this] { Work(); });
}

WatchService::~WatchService() { Stop(); }

bool WatchService::Register(Stream* stream) {
  std::lock_guard<std::mutex> lk(streams_mu_);
  if (closing_) return false;
  streams_.insert(stream);
  return true;
}

void WatchService::Unregister(Stream* stream) {
  std::lock_guard<std::mutex> lk(streams_mu_);
  streams_.erase(stream);
}

void WatchService::Stop() {
  {
    // A stream stays registered until its OnDone, which waits for streams_mu_, so every pointer
    // here is alive while the lock is held.
    std::lock_guard<std::mutex> lk(streams_mu_);
    closing_ = true;
    for (Stream* stream : streams_) stream->Close(ToGrpc(errors::Stopped()));
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

grpc::ServerBidiReactor<WatchRequest, WatchResponse>* WatchService::Watch(
    grpc::CallbackServerContext* ctx) {
  return new WatchReactor(this, node_, ctx, options_.poll_batch_max);
}

void WatchService::Work() {
  kvstore::WatchableStore& store = node_->watchable();
  auto next_progress = std::chrono::steady_clock::now() + options_.progress_interval;
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, options_.sync_period, [this] { return stop_; });
    if (stop_) break;
    lk.unlock();
    const kvstore::WatchMetrics m = store.Metrics();
    if (options_.watchers_gauge != nullptr) {
      options_.watchers_gauge->Set(static_cast<double>(m.watchers));
    }
    if (m.slow_watchers > 0) {
      kvstore::SyncResult r = store.SyncStep(options_.sync_events_per_step);
      if (!r.status.ok()) KVD_LOG("watch catch-up: %s", r.status.message().c_str());
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_progress) {
      store.ProgressTick();
      next_progress = now + options_.progress_interval;
    }
    lk.lock();
  }
}

}  // namespace server
