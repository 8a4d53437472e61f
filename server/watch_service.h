// server::WatchService: the etcd v3 Watch RPC (etcdserverpb.Watch/Watch) as a thin pump over the
// member's kvstore::WatchableStore, which implements every watch rule (ids, created-first,
// filters, prev_kv, progress, compaction cancel, fragmenting, bounded queues). See docs/watch.md.
//
//   gRPC thread (read done)   -> WatchStream::HandleRequest
//   notify (apply / gRPC / worker thread) -> Kick: queues the stream for the kick thread
//   kick thread (one, owned here) or write done -> WatchStream::PollEncoded -> StartWrite
//   (a stream writes at most writes_per_turn responses in a row, then queues a kick behind the
//   other streams)
//   worker thread (one, owned here) -> SyncStep every kSyncPeriod, ProgressTick every interval
//
// No thread per stream and no blocking on gRPC threads (a stream's OnDone waits only when the
// kick thread is kicking it right now, until that batch ends): a stream has at most one write in
// flight (a mutex and a flag decide who may call StartWrite), and the WatchableStore bounds every
// queue. Like etcd, a client half-close does not end the stream; it ends when the client cancels
// (or the server shuts down), and then its watchers are removed.
//
// Thread-safety: the service is called by gRPC from any thread. Stop() from the owner thread.
// The Node (and its WatchableStore) must outlive the gRPC server that serves this service.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "proto/rpc.grpc.pb.h"
#include "server/metrics.h"
#include "server/node.h"

namespace server {

struct WatchServiceOptions {
  // How often the worker catches unsynced watchers up (etcd: 100 ms).
  std::chrono::milliseconds sync_period{100};
  // Events (work units, see WatchableStore::SyncStep) per catch-up step; bounds how long one
  // step holds the store lock and so delays the apply thread.
  size_t sync_events_per_step = 4096;
  // etcd's --experimental-watch-progress-notify-interval (default 10 min); KvdServer passes the
  // flag's value (Config::watch_progress_notify_interval_ms).
  std::chrono::milliseconds progress_interval{std::chrono::minutes(10)};
  // Responses taken from a stream's queue per Poll (they are then written one by one). Polled
  // responses no longer count against the stream's bounded queue, so 1 keeps that bound exact;
  // a write costs far more than the Poll.
  size_t poll_batch_max = 1;
  // Streams take turns: after this many writes in a row a stream with more to send goes to the
  // back of the kick thread's queue, behind every other stream waiting to write, instead of
  // starting its next write from the completion. Why (docs/watch.md "Turns"): it keeps one
  // stream with many watchers from holding a gRPC thread, and the pause lets the store coalesce
  // more events into each queued response, so fewer messages carry the same events. Measured
  // at 10,000 watchers: 2 gave ~1.55x the puts/s of unlimited turns, with ~3x the events per
  // message and ~20 % higher send-to-event p99 (docs/performance.md). Must be >= 1.
  size_t writes_per_turn = 2;
  // etcd_debugging_mvcc_watcher_total, set by the worker every sync period (may be null; must
  // outlive the service).
  Gauge* watchers_gauge = nullptr;
};

// The method is registered raw (ByteBuffer in and out, same path and wire format as the typed
// one) so that responses can be written from the store's encoded form.
class WatchService final
    : public etcdserverpb::Watch::WithRawCallbackMethod_Watch<etcdserverpb::Watch::Service> {
 public:
  // Starts the worker thread. `node` must outlive the service.
  WatchService(Node* node, WatchServiceOptions options);
  ~WatchService() override;  // Stop()s
  WatchService(const WatchService&) = delete;
  WatchService& operator=(const WatchService&) = delete;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Watch(
      grpc::CallbackServerContext* ctx) override;

  // Finishes every open stream (and any stream opened later) with Unavailable "etcdserver:
  // server stopped", so that the gRPC server's shutdown does not wait for its deadline on
  // streams that never end by themselves, then joins the worker thread. Idempotent.
  void Stop();

  // For the stream reactors: (un)registers a live stream. Register returns false once stopping.
  class Stream {
   public:
    virtual void Close(const grpc::Status& status) = 0;
    // Called on the kick thread for each Kick(this): start writing what is queued.
    virtual void Kicked() = 0;

   protected:
    ~Stream() = default;
  };
  [[nodiscard]] bool Register(Stream* stream);
  // Also drops a queued kick of the stream and waits for a running Kicked() to return, so the
  // stream may be deleted afterwards. Precondition: no Kick(stream) after or during it.
  void Unregister(Stream* stream);
  // Queues stream->Kicked() on the kick thread. Any thread; never blocks on gRPC. The caller
  // keeps at most one kick per stream queued.
  void Kick(Stream* stream);

 private:
  void Work();
  void KickLoop();

  Node* node_;
  const WatchServiceOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread worker_;

  std::mutex streams_mu_;  // lock order: streams_mu_, then a reactor's own mutex
  bool closing_ = false;
  std::unordered_set<Stream*> streams_;

  // The kick thread starts the first write of streams whose queue became non-empty, so that the
  // store's notify (on the apply thread) never enters gRPC.
  std::mutex kick_mu_;
  std::condition_variable kick_cv_;
  std::condition_variable kick_idle_;  // kicking_ went false
  std::vector<Stream*> kicks_;         // guarded by kick_mu_
  std::vector<Stream*> kick_batch_;    // written under kick_mu_ by the kick thread only
  uint64_t kick_batches_ = 0;          // guarded by kick_mu_: batches taken so far
  bool kicking_ = false;               // guarded by kick_mu_: kick_batch_ is being kicked
  bool kick_stop_ = false;             // guarded by kick_mu_
  std::thread kicker_;
};

}  // namespace server
