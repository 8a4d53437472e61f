#include "server/watch_service.h"

#include <grpc/slice.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "server/log.h"
#include "server/services.h"
#include "server/thread_name.h"

namespace server {
namespace {

using etcdserverpb::WatchRequest;

// The wire form of one response as one slice: its head and its shared event bytes copied once
// into gRPC's buffer (protobuf serialization of the whole message per watcher is what the
// encoded form saves; the copy is a memcpy).
grpc::ByteBuffer ToByteBuffer(const kvstore::EncodedWatchResponse& response) {
  grpc_slice slice = grpc_slice_malloc(response.ByteSize());
  uint8_t* p = GRPC_SLICE_START_PTR(slice);
  std::memcpy(p, response.head.data(), response.head.size());
  p += response.head.size();
  for (const auto& ev : response.events) {
    std::memcpy(p, ev->data(), ev->size());
    p += ev->size();
  }
  grpc::Slice owned(slice, grpc::Slice::STEAL_REF);
  return grpc::ByteBuffer(&owned, 1);
}

// One Watch stream, served raw (grpc::ByteBuffer both ways): requests are parsed here, responses
// are written in the encoded form the WatchableStore queues, so the events of one revision are
// serialized once for all watchers instead of once per watcher. Reads are chained (one StartRead at
// a time, from the constructor and OnReadDone); writes are chained too, and `mu_` + `writing_` make
// sure only one place starts the next write: the service's kick thread (the queue became non-empty)
// or OnWriteDone (more queued). The store's notify callback only queues a kick: it runs on the
// apply thread, which must not spend its time in gRPC's write path.
class WatchReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                           public WatchService::Stream {
 public:
  WatchReactor(WatchService* service, Node* node, grpc::CallbackServerContext* ctx,
               size_t poll_batch_max, size_t writes_per_turn)
      : service_(service), poll_batch_max_(poll_batch_max), writes_per_turn_(writes_per_turn) {
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
    kvstore::Status s = node->watchable().OpenStream(
        [this] {
          if (!kick_queued_.exchange(true)) service_->Kick(this);
        },
        &stream_);
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
    WatchRequest request;
    if (!grpc::SerializationTraits<WatchRequest>::Deserialize(&request_, &request).ok()) {
      // etcd (grpc-go) ends the stream with Internal "grpc: failed to unmarshal the received
      // message " + Go's protobuf error; C++ protobuf names no reason, so a generic one.
      FinishOnce(
          grpc::Status(grpc::StatusCode::INTERNAL,
                       "grpc: failed to unmarshal the received message: not a WatchRequest"));
      return;
    }
    kvstore::Status s = stream_->HandleRequest(request);
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
    bool turn_over = false;
    {
      std::lock_guard<std::mutex> lk(mu_);
      writing_ = false;
      if (!ok) {
        // The stream is broken (cancel or finish): nothing more can be written.
        broken_ = true;
        return;
      }
      ++next_;
      // Turn over: the stream goes to the back of the kick thread's queue, behind every other
      // stream waiting to write (see WatchServiceOptions::writes_per_turn). With nothing left
      // it waits for the store's notify instead, which kicks it when a response is queued.
      if (++writes_this_turn_ >= writes_per_turn_) {
        if (next_ >= batch_.size() && (!stream_ || stream_->QueuedResponses() == 0)) return;
        turn_over = true;
      }
    }
    if (turn_over) {
      if (!kick_queued_.exchange(true)) service_->Kick(this);
      return;
    }
    MaybeWrite();
  }

  void OnCancel() override { FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "canceled")); }

  // WatchService::Stop.
  void Close(const grpc::Status& status) override { FinishOnce(status); }

  // WatchService's kick thread: the queue went from empty to non-empty.
  void Kicked() override {
    kick_queued_.store(false);  // before polling: a later notify must queue a new kick
    {
      std::lock_guard<std::mutex> lk(mu_);
      writes_this_turn_ = 0;
    }
    MaybeWrite();
  }

  void OnDone() override {
    std::unique_ptr<kvstore::WatchStream> stream;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stream = std::move(stream_);  // MaybeWrite does nothing from here on
    }
    // Destroying the stream removes its watchers and waits for a notify call in progress (which
    // may still queue a kick); Unregister then drops a queued kick and waits out a running one,
    // so nothing refers to this reactor when it is deleted.
    stream.reset();
    if (registered_) service_->Unregister(this);
    delete this;
  }

 private:
  // Starts the next write unless one is in flight. Called from the kick thread and from
  // OnWriteDone.
  void MaybeWrite() {
    std::lock_guard<std::mutex> lk(mu_);
    if (writing_ || finished_ || broken_ || !stream_) return;
    if (next_ >= batch_.size()) {
      batch_.clear();
      next_ = 0;
      stream_->PollEncoded(poll_batch_max_, &polled_);
      if (polled_.empty()) return;
      for (const auto& response : polled_) batch_.push_back(ToByteBuffer(response));
      polled_.clear();  // releases the shared event bytes now, not at the next poll
    }
    writing_ = true;
    // No buffer hint: with it, gRPC may hold the write's completion until a later write, and
    // the next write here only starts on that completion (measured: the stream stalls).
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
  const size_t writes_per_turn_;
  std::unique_ptr<kvstore::WatchStream> stream_;  // guarded by mu_ after construction; null when
                                                  // refused at creation and from OnDone on
  grpc::ByteBuffer request_;                      // the read in flight (one at a time)
  std::atomic<bool> kick_queued_{false};          // a kick is queued and not yet taken

  std::mutex mu_;
  bool writing_ = false;                               // a StartWrite is in flight
  bool finished_ = false;                              // Finish was called
  bool broken_ = false;                                // a write failed
  std::vector<kvstore::EncodedWatchResponse> polled_;  // scratch of MaybeWrite
  std::vector<grpc::ByteBuffer> batch_;  // polled responses; batch_[next_] is being written
  size_t next_ = 0;
  size_t writes_this_turn_ = 0;  // writes completed since the last kick
};

}  // namespace

WatchService::WatchService(Node* node, WatchServiceOptions options)
    : node_(node), options_(options) {
  SERVER_CHECK(options_.writes_per_turn >= 1, "writes_per_turn must be >= 1");
  worker_ = std::thread([this] { Work(); });
  kicker_ = std::thread([this] { KickLoop(); });
}

WatchService::~WatchService() { Stop(); }

bool WatchService::Register(Stream* stream) {
  std::lock_guard<std::mutex> lk(streams_mu_);
  if (closing_) return false;
  streams_.insert(stream);
  return true;
}

void WatchService::Unregister(Stream* stream) {
  {
    std::lock_guard<std::mutex> lk(streams_mu_);
    streams_.erase(stream);
  }
  std::unique_lock<std::mutex> lk(kick_mu_);
  kicks_.erase(std::remove(kicks_.begin(), kicks_.end(), stream), kicks_.end());
  // No longer queued, so only the batch being kicked now can hold the stream: wait for the end
  // of that batch if it does (not for the kick thread to go idle: under a steady fan-out it
  // never does).
  if (kicking_ && std::find(kick_batch_.begin(), kick_batch_.end(), stream) != kick_batch_.end()) {
    const uint64_t batch = kick_batches_;
    kick_idle_.wait(lk, [&] { return !kicking_ || kick_batches_ != batch; });
  }
}

void WatchService::Kick(Stream* stream) {
  {
    std::lock_guard<std::mutex> lk(kick_mu_);
    // At most one queued kick per stream (the caller's flag), and streams are bounded by the
    // store's streams_max, so this queue is bounded too.
    kicks_.push_back(stream);
  }
  kick_cv_.notify_one();
}

void WatchService::KickLoop() {
  NameThisThread("kvd-watch-kick");
  std::unique_lock<std::mutex> lk(kick_mu_);
  while (true) {
    kick_cv_.wait(lk, [this] { return kick_stop_ || !kicks_.empty(); });
    if (kick_stop_) break;
    kick_batch_.swap(kicks_);  // kick_batch_ is empty here
    ++kick_batches_;
    kicking_ = true;
    lk.unlock();
    // Read without the lock: kick_batch_ only changes under it, on this thread. A stream in it
    // cannot be deleted meanwhile: its Unregister waits for the end of this batch.
    for (Stream* stream : kick_batch_) stream->Kicked();
    lk.lock();
    kick_batch_.clear();
    kicking_ = false;
    kick_idle_.notify_all();
  }
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
  {
    // Finished streams write nothing more, so their kicks are not needed.
    std::lock_guard<std::mutex> lk(kick_mu_);
    kick_stop_ = true;
  }
  kick_cv_.notify_all();
  if (kicker_.joinable()) kicker_.join();
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* WatchService::Watch(
    grpc::CallbackServerContext* ctx) {
  return new WatchReactor(this, node_, ctx, options_.poll_batch_max, options_.writes_per_turn);
}

void WatchService::Work() {
  NameThisThread("kvd-watch");
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
