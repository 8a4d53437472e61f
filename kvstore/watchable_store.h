// The watchable store: etcd v3 watch semantics (v3rpc/watch.go + mvcc/watchable_store.go) as
// pure logic with no gRPC and no threads of its own, so the server's Watch handler is a thin pump:
//
//   gRPC reader thread:  stream->HandleRequest(request)      (create / cancel / progress)
//   server write path:   after the stream's notify callback, stream->PollEncoded(n, &out), write
//   apply thread:        store.OnRevision(rev, events)        (via HistoryObserver)
//   worker thread:       store.SyncStep(max_events) every ~100 ms, ProgressTick() every 10 min
//
// Watchers are either synced (live: fed by OnRevision, one response per revision) or unsynced
// (catching up from History in SyncStep: a past start_revision, or a "victim" parked because its
// stream's outgoing queue was full). Every queue is bounded; a slow consumer only ever parks its
// own watchers and never blocks OnRevision or other streams.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kvstore/history.h"
#include "kvstore/status.h"
#include "proto/kv.pb.h"
#include "proto/rpc.pb.h"

namespace kvstore {

// Limits and knobs of the watch machinery. Defaults follow etcd 3.4 where etcd has a value.
struct WatchOptions {
  // A response with >= 2 events whose encoded size reaches this is split into fragments when
  // the watcher asked for `fragment` (etcd: max-request-bytes 1.5 MiB + 512 KiB gRPC overhead).
  size_t fragment_bytes_threshold = 1572864 + 512 * 1024;
  // At most this many distinct revisions go into one catch-up response (etcd watchBatchMaxRevs).
  int64_t catchup_revisions_max = 1000;
  // Outgoing queue of one stream: bytes of queued responses that carry events. When a watcher's
  // next response does not fit, the watcher is parked as a victim and caught up later by
  // SyncStep. A single response larger than the bound is still accepted into an empty queue so
  // that delivery always progresses; the queue holds at most bound + that one response.
  size_t stream_event_bytes_max = 8 * 1024 * 1024;
  // Outgoing queue of one stream: responses without events that the client caused (created,
  // cancel, progress). Beyond this the client is not reading: HandleRequest fails and the server
  // ends the stream. Compaction cancels (at most one per watcher) come on top.
  size_t stream_control_responses_max = 1024;
  // Coalescing: while a watcher's last queued response with events has not been polled yet, its
  // next delivery is appended to that response (events in revision order, header revision the
  // newest) instead of queued as another response, as long as the merged response stays at or
  // below this many encoded bytes (and below fragment_bytes_threshold). A stream that keeps up
  // still gets one response per revision; one that is behind gets fewer, larger responses, so
  // the server's cost per message is paid once per drain instead of once per revision. 0 turns
  // coalescing off. 256 KiB stays far below the 4 MiB receive limit of gRPC clients' defaults.
  size_t coalesce_bytes_max = 256 * 1024;
  size_t watchers_per_stream_max = 10000;
  size_t watchers_total_max = 200000;
  size_t streams_max = 20000;
  // Fills cluster_id, member_id and raft_term of each response header (never revision). Called
  // by Poll on the polling thread without internal locks held; must be thread-safe. May be empty.
  std::function<void(etcdserverpb::ResponseHeader*)> header_filler;
};

// Counters for metrics; a snapshot, each value read atomically but not all at one instant.
struct WatchMetrics {
  uint64_t watchers = 0;            // gauge: watchers registered now (etcd watcher_total)
  uint64_t streams = 0;             // gauge: open streams (etcd watch_stream_total)
  uint64_t slow_watchers = 0;       // gauge: unsynced watchers (etcd slow_watcher_total)
  uint64_t events_sent = 0;         // counter: events handed out by Poll
  uint64_t responses_sent = 0;      // counter: responses handed out by Poll
  uint64_t victims_parked = 0;      // counter: times a live watcher was parked (queue full)
  uint64_t compaction_cancels = 0;  // counter: watchers canceled because of compaction
};

// What one SyncStep did.
struct SyncResult {
  size_t events_read = 0;        // events read from History in this step
  size_t reads = 0;              // History::ReadEvents calls
  size_t reads_shared = 0;       // reads reused by another watcher
  size_t watchers_synced = 0;    // watchers that moved back to the synced group
  size_t watchers_unsynced = 0;  // watchers still catching up after the step
  Status status = Status::Ok();  // first History error other than compaction, if any
};

// One response of a watch stream in wire form, as the server writes it. The encoded
// etcdserverpb.WatchResponse is `head` followed by every element of `events`, in order: `head`
// holds the fields numbered below `events` (header, watch_id, created, canceled,
// compact_revision, cancel_reason, fragment) and each element of `events` is one encoded `events`
// field (tag 11, length, mvccpb.Event). Protobuf parsers accept that order, and it is the
// canonical one. Event elements are shared and immutable: every watcher that gets the same event
// in the same shape (with or without prev_kv) holds the same bytes, so one revision fanned out to
// N watchers is encoded once, not N times.
struct EncodedWatchResponse {
  std::string head;
  std::vector<std::shared_ptr<const std::string>> events;

  size_t ByteSize() const;
  // Appends the encoded response to *out.
  void AppendTo(std::string* out) const;
};

class WatchableStore;
struct WatchStreamState;
struct WatchQueued;

// One client Watch stream: many watchers multiplexed onto one bounded outgoing queue. Created by
// WatchableStore::OpenStream; destroying it closes the stream and removes its watchers.
// Thread-safety: HandleRequest and Poll may be called concurrently from different threads (one
// reader, one writer); each of them is not reentrant with itself.
class WatchStream {
 public:
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // Handles one client request; its responses (if any) are queued before it returns. Errors:
  // ResourceExhausted when the client let too many control responses pile up unread (the server
  // should end the stream); InvalidArgument for a request with no request_union set.
  [[nodiscard]] Status HandleRequest(const etcdserverpb::WatchRequest& request);

  // Answers a create_request the server refused itself (e.g. "etcdserver: permission denied")
  // with etcd's rejection shape {created, canceled, watch_id -1, cancel_reason}, queued in order
  // with every other response so that clients' FIFO matching of creates stays right. Errors as
  // HandleRequest (ResourceExhausted).
  [[nodiscard]] Status RejectCreate(const std::string& cancel_reason);

  // Moves up to `max_responses` queued responses, oldest first, to the end of *out and returns
  // how many. Headers are completed by the store's header_filler here, on the calling thread
  // (the server's gRPC threads), which is also where each response's head is encoded.
  size_t PollEncoded(size_t max_responses, std::vector<EncodedWatchResponse>* out);

  // As PollEncoded, decoded into messages (tests and tools; the server writes the encoded form).
  size_t Poll(size_t max_responses, std::vector<etcdserverpb::WatchResponse>* out);

  // Number of responses queued now.
  size_t QueuedResponses() const;
  uint64_t id() const { return id_; }

 private:
  friend class WatchableStore;
  WatchStream(WatchableStore* store, uint64_t id, std::shared_ptr<WatchStreamState> state)
      : store_(store), id_(id), state_(std::move(state)) {}

  WatchableStore* store_;
  uint64_t id_;
  std::shared_ptr<WatchStreamState> state_;
};

// Thread-safety: every public member may be called from any thread. OnRevision and OnCompacted
// come from the apply thread and never wait for a consumer: they only touch bounded queues.
// SyncStep holds the store lock while reading History for at most `max_events` events, which
// bounds how long it can delay OnRevision. The store must outlive its streams.
class WatchableStore : public HistoryObserver {
 public:
  // `history` must outlive the store. Revisions up to history->CurrentRevision() at this point
  // are considered observed; the first OnRevision must be for the next one (older ones are
  // ignored, a gap aborts).
  WatchableStore(const History* history, WatchOptions options);
  ~WatchableStore() override;
  WatchableStore(const WatchableStore&) = delete;
  WatchableStore& operator=(const WatchableStore&) = delete;

  // Opens a stream. `notify` is called (without internal locks held, on whatever thread added
  // the responses) when the stream's queue goes from empty to non-empty; it must be cheap. It
  // may call Poll or HandleRequest, but must not destroy its own stream. It is never called
  // after the stream is destroyed (the destructor waits for a call in progress).
  // Errors: ResourceExhausted when streams_max streams are open.
  [[nodiscard]] Status OpenStream(std::function<void()> notify, std::unique_ptr<WatchStream>* out);

  // HistoryObserver. Precondition: revision <= last observed + 1 (in order, no gaps).
  void OnRevision(int64_t revision, const std::vector<mvccpb::Event>& events) override;
  // False while no watcher is registered. A watcher registered after that answer (while the
  // batch is applied) is live from a revision announced without events: OnRevisionWithoutEvents
  // moves it to unsynced, and SyncStep reads that revision from History.
  bool WantsEvents() const override;
  void OnRevisionWithoutEvents(int64_t revision) override;
  void OnCompacted(int64_t compact_revision) override;

  // Catches unsynced watchers up from History, cancels those whose next revision was compacted,
  // and moves caught-up watchers back to synced. Work is bounded by `max_events` units: a
  // History read costs max(1, events read) (so empty reads are bounded too); watchers needing the
  // same read as an earlier one in this step (same range, revisions and prev_kv: typical for
  // victims of one fan-out) reuse it for max(1, events / 8). Call periodically from one worker
  // thread.
  SyncResult SyncStep(size_t max_events);

  // The History was replaced wholesale (a checkpoint / raft snapshot restored into the MVCC
  // store) without OnRevision calls for the revisions it skipped. Call it after the restore,
  // before the next OnRevision, from the apply thread. Every live watcher is moved to unsynced
  // at its next revision and caught up by SyncStep from the new history (or canceled by
  // compaction), as etcd's watchableStore.Restore does.
  void OnHistoryReplaced();

  // Sends {watch_id, header.revision = current} to every synced progress_notify watcher that got
  // no events since the previous tick. Call every progress interval (etcd: 10 min).
  void ProgressTick();

  WatchMetrics Metrics() const;
  // The last revision given to OnRevision (or found in History at construction).
  int64_t ObservedRevision() const;

 private:
  friend class WatchStream;
  struct Watcher;
  // An unordered set of watchers with O(1) insert and erase; each watcher is in at most one set
  // at a time and remembers its slot.
  class WatcherSet {
   public:
    void Insert(Watcher* w);
    void Erase(Watcher* w);
    bool empty() const { return items_.empty(); }
    size_t size() const { return items_.size(); }
    const std::vector<Watcher*>& items() const { return items_; }

   private:
    std::vector<Watcher*> items_;
  };
  struct StreamEntry;
  // A notification to run after the store lock is released.
  using PendingNotifies = std::vector<std::shared_ptr<WatchStreamState>>;

  Status HandleRequest(uint64_t stream_id, const etcdserverpb::WatchRequest& request);
  Status RejectCreate(uint64_t stream_id, const std::string& cancel_reason);
  void CloseStream(uint64_t stream_id);

  // All private helpers below require mu_ held.
  Status CreateWatcher(StreamEntry& stream, const etcdserverpb::WatchCreateRequest& create,
                       PendingNotifies* notifies);
  void AddSynced(Watcher* w);
  void RemoveSynced(Watcher* w);
  void RemoveWatcher(Watcher* w);
  void CancelCompacted(Watcher* w, int64_t compact_revision, PendingNotifies* notifies);
  // Moves every synced watcher with next_rev <= next_rev_max to unsynced, to catch up from
  // History from the revision after the last observed one (or its later start revision).
  void UnsyncLive(int64_t next_rev_max);
  // Appends to *parts the responses of one delivery to w: `events` (encoded `events` fields,
  // moved from) under header revision `revision`, split into fragments when w asked for them
  // and the whole reaches fragment_bytes_threshold with >= 2 events. Clears `events`. The
  // events' revisions are >= first_revision.
  void AppendParts(const Watcher& w, int64_t revision, int64_t first_revision,
                   std::vector<std::shared_ptr<const std::string>>* events,
                   std::vector<WatchQueued>* parts) const;
  // The merged-response bound of coalescing: coalesce_bytes_max, kept below the fragment
  // threshold.
  size_t CoalesceBytesMax() const;
  // Whether w delivers an event of this type (the NOPUT / NODELETE filters).
  static bool Wants(const Watcher& w, mvccpb::Event::EventType type);
  // Shapes an event for a watcher with or without prev_kv (a create never has a prev_kv).
  static void Prepare(bool prev_kv, mvccpb::Event* ev);
  static void RunNotifies(const PendingNotifies& notifies);

  const History* history_;
  const WatchOptions options_;

  mutable std::mutex mu_;
  int64_t observed_rev_ = 0;
  uint64_t next_stream_id_ = 1;
  uint64_t next_watcher_key_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<StreamEntry>> streams_;
  size_t watcher_count_ = 0;
  std::atomic<size_t> watchers_registered_{0};  // watcher_count_, readable without mu_

  // Synced watchers, indexed so that one event costs O(key length + matching watchers + distinct
  // generic ranges starting <= key) instead of a scan of every watcher:
  //   single-key watchers by key; prefix watchers (range_end = prefix end of key) by prefix;
  //   every other range grouped by identical (key, range_end), scanned by start key.
  std::unordered_map<std::string, WatcherSet> key_watchers_;
  std::map<std::string, WatcherSet, std::less<>> prefix_watchers_;
  std::map<std::pair<std::string, std::string>, WatcherSet> range_watchers_;
  size_t prefix_len_max_ = 0;  // longest prefix ever registered: bounds the per-event probing
  WatcherSet unsynced_;
  size_t sync_cursor_ = 0;
  // Scratch reused under mu_ so that the per-watcher path allocates little.
  std::vector<Watcher*> touched_;  // watchers with events this revision
  // This revision's events encoded once each, on first use: without prev_kv, and with prev_kv
  // (none on creates).
  std::vector<std::shared_ptr<const std::string>> plain_encoded_;
  std::vector<std::shared_ptr<const std::string>> prev_encoded_;
  std::vector<std::shared_ptr<const std::string>> picked_;  // one watcher's events
  std::vector<WatchQueued> parts_;                          // responses of one watcher's delivery

  std::atomic<uint64_t> events_sent_{0};
  std::atomic<uint64_t> responses_sent_{0};
  std::atomic<uint64_t> victims_parked_{0};
  std::atomic<uint64_t> compaction_cancels_{0};
};

// The end of the prefix range of `prefix` in etcd's convention (clientv3.GetPrefixRangeEnd):
// the last byte below 0xff incremented, the rest dropped; "\0" when every byte is 0xff.
std::string PrefixRangeEnd(const std::string& prefix);

}  // namespace kvstore
