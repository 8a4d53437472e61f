#include "kvstore/watchable_store.h"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <string_view>
#include <tuple>
#include <utility>

namespace kvstore {

namespace {

const char kReasonEmptyRange[] = "mvcc: watcher range is empty";
const char kReasonDuplicateId[] = "mvcc: duplicate watch ID provided on the WatchStream";
const char kReasonStreamFull[] = "kvd: too many watchers on this watch stream";
const char kReasonStoreFull[] = "kvd: too many watchers on this member";

using google::protobuf::io::CodedOutputStream;

// WatchResponse.events: field 11, length-delimited.
constexpr uint8_t kEventsFieldTag = (11 << 3) | 2;

// One `events` field of a WatchResponse: tag, length, the encoded event.
std::shared_ptr<const std::string> EncodeEvent(const mvccpb::Event& ev) {
  const size_t body = ev.ByteSizeLong();
  auto out = std::make_shared<std::string>(1 + CodedOutputStream::VarintSize64(body) + body, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out->data());
  *p++ = kEventsFieldTag;
  p = CodedOutputStream::WriteVarint64ToArray(body, p);
  ev.SerializeWithCachedSizesToArray(p);
  return out;
}

// Encoded size of the head of a response with events: header {revision}, watch_id, fragment
// (what WatchResponse::ByteSizeLong counts for those fields; the header is always present).
size_t HeadBytes(int64_t watch_id, int64_t revision, bool fragment) {
  size_t header = 0;
  if (revision != 0) header += 1 + CodedOutputStream::VarintSize64(static_cast<uint64_t>(revision));
  size_t n = 1 + CodedOutputStream::VarintSize64(header) + header;
  if (watch_id != 0) n += 1 + CodedOutputStream::VarintSize64(static_cast<uint64_t>(watch_id));
  if (fragment) n += 2;
  return n;
}

bool RangeContains(const std::string& key, const std::string& range_end, std::string_view k) {
  if (range_end.empty()) return k == key;
  if (range_end.size() == 1 && range_end[0] == '\0') return k >= key;
  return k >= key && k < range_end;
}

}  // namespace

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

size_t EncodedWatchResponse::ByteSize() const {
  size_t n = head.size();
  for (const auto& e : events) n += e->size();
  return n;
}

void EncodedWatchResponse::AppendTo(std::string* out) const {
  out->reserve(out->size() + ByteSize());
  out->append(head);
  for (const auto& e : events) out->append(*e);
}

// One queued response of a stream.
struct WatchQueued {
  // A response without events (created, canceled, progress, compaction cancel): complete but for
  // the header fields the header_filler sets. Null for a response with events.
  std::unique_ptr<etcdserverpb::WatchResponse> control;
  // A response with events: its head fields (the head is encoded when polled) and its events.
  int64_t watch_id = 0;
  int64_t revision = 0;
  // The lowest revision its events may have (the delivery's revision, or where a catch-up read
  // started). Coalescing keeps revision - first_revision below catchup_revisions_max, so a
  // response never spans more revisions than a catch-up response may.
  int64_t first_revision = 0;
  bool fragment = false;
  std::vector<std::shared_ptr<const std::string>> events;
  size_t event_bytes = 0;       // encoded size (head included) when it carries events, else 0
  bool client_control = false;  // counts against stream_control_responses_max
};

// The outgoing side of one stream, shared between the store (producer, under the store lock)
// and the WatchStream handle (consumer). Lock order: store mu_ before `mu`; `notify_mu` is only
// taken with no other lock held.
struct WatchStreamState {
  std::mutex mu;
  std::deque<WatchQueued> queue;  // guarded by mu
  // Guarded by mu: responses ever polled. The response queued as the n-th (0-based; responses
  // ever queued = popped + queue.size()) is at queue[n - popped] while n >= popped, which is how
  // coalescing finds a watcher's last one.
  uint64_t popped = 0;
  size_t event_bytes = 0;     // guarded by mu: sum of WatchQueued::event_bytes
  size_t client_control = 0;  // guarded by mu: queued responses with client_control

  // Notify runs with no lock held; Close waits for running calls so that none happens after it.
  std::mutex notify_mu;
  std::condition_variable notify_done;
  bool closed = false;       // guarded by notify_mu: once true, notify is not called again
  int notify_in_flight = 0;  // guarded by notify_mu
  std::function<void()> notify;
};

struct WatchableStore::Watcher {
  enum class Kind { kKey, kPrefix, kRange };

  StreamEntry* stream = nullptr;
  int64_t watch_id = 0;
  KeyRange range;
  Kind kind = Kind::kKey;
  bool no_put = false;
  bool no_delete = false;
  bool prev_kv = false;
  bool progress_notify = false;
  bool fragment = false;
  // The first revision this watcher has not been given yet and may need. For a synced watcher
  // only a lower bound: revisions < next_rev are skipped (a future start_revision).
  int64_t next_rev = 0;
  bool synced = false;
  bool events_since_tick = false;
  size_t slot = 0;  // index in the WatcherSet holding it
  // 1 + the stream's queue number (see WatchStreamState::popped) of this watcher's last queued
  // response with events, while a later delivery may still be merged into it; 0 when none.
  uint64_t coalesce_seq = 0;

  int64_t scratch_rev = 0;        // OnRevision: revision `scratch` belongs to
  std::vector<uint32_t> scratch;  // OnRevision: indexes of this revision's events it gets
};

struct WatchableStore::StreamEntry {
  uint64_t id = 0;
  std::shared_ptr<WatchStreamState> state;
  std::map<int64_t, std::unique_ptr<Watcher>> watchers;  // by watch_id
  int64_t next_auto_id = 0;
};

void WatchableStore::WatcherSet::Insert(Watcher* w) {
  w->slot = items_.size();
  items_.push_back(w);
}

void WatchableStore::WatcherSet::Erase(Watcher* w) {
  KV_CHECK(w->slot < items_.size() && items_[w->slot] == w, "watcher %lld not in its set",
           static_cast<long long>(w->watch_id));
  Watcher* last = items_.back();
  items_[w->slot] = last;
  last->slot = w->slot;
  items_.pop_back();
}

namespace {

// Queue operations; all are called with the store lock held. Each returns true when the queue
// was empty before, i.e. the stream's notify callback must run.
bool PushControl(WatchStreamState& s, etcdserverpb::WatchResponse&& r, bool client_control) {
  WatchQueued q;
  q.control = std::make_unique<etcdserverpb::WatchResponse>(std::move(r));
  q.client_control = client_control;
  std::lock_guard<std::mutex> lock(s.mu);
  const bool was_empty = s.queue.empty();
  s.queue.push_back(std::move(q));
  if (client_control) ++s.client_control;
  return was_empty;
}

bool HasControlRoom(WatchStreamState& s, size_t max) {
  std::lock_guard<std::mutex> lock(s.mu);
  return s.client_control < max;
}

size_t QueuedEventBytes(WatchStreamState& s) {
  std::lock_guard<std::mutex> lock(s.mu);
  return s.event_bytes;
}

// Appends the single unfragmented part p to the still queued response number *coalesce_seq - 1
// when that one belongs to the same watcher, carries events and stays within merged_bytes_max
// merged. Returns whether it did. Requires s.mu held.
bool TryCoalesce(WatchStreamState& s, WatchQueued& p, uint64_t coalesce_seq,
                 size_t merged_bytes_max, int64_t merged_revisions_max) {
  if (coalesce_seq == 0 || coalesce_seq - 1 < s.popped) return false;
  WatchQueued& q = s.queue[coalesce_seq - 1 - s.popped];
  if (q.control || q.fragment || q.watch_id != p.watch_id) return false;
  if (p.revision - q.first_revision >= merged_revisions_max) return false;
  // Concatenated `events` fields are the merged message; only the head changes (its revision).
  const size_t merged = q.event_bytes - HeadBytes(q.watch_id, q.revision, false) + p.event_bytes;
  if (merged > merged_bytes_max) return false;
  q.events.reserve(q.events.size() + p.events.size());
  for (auto& ev : p.events) q.events.push_back(std::move(ev));
  q.revision = p.revision;
  s.event_bytes += merged - q.event_bytes;
  q.event_bytes = merged;
  return true;
}

// Moves all of *parts into the queue or none (the parts of one revision stay together);
// *pushed tells which. A single unfragmented part may instead be merged into the watcher's
// last queued response (see WatchOptions::coalesce_bytes_max); *coalesce_seq is the watcher's
// Watcher::coalesce_seq, updated here.
bool TryPushEvents(WatchStreamState& s, std::vector<WatchQueued>* parts, size_t bytes_max,
                   size_t merged_bytes_max, int64_t merged_revisions_max, uint64_t* coalesce_seq,
                   bool* pushed) {
  size_t total = 0;
  for (const auto& p : *parts) total += p.event_bytes;
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.event_bytes != 0 && s.event_bytes + total > bytes_max) {
    *pushed = false;
    return false;
  }
  *pushed = true;
  if (parts->size() == 1 && !parts->front().fragment &&
      TryCoalesce(s, parts->front(), *coalesce_seq, merged_bytes_max, merged_revisions_max)) {
    return false;  // merged into a queued response: the queue was not empty
  }
  const bool was_empty = s.queue.empty();
  for (auto& p : *parts) s.queue.push_back(std::move(p));
  s.event_bytes += total;
  // The last part (never a fragment: a fragmented delivery ends with an unfragmented one) may
  // take later events.
  *coalesce_seq = s.popped + s.queue.size();
  return was_empty;
}

}  // namespace

// ---- WatchStream ----

WatchStream::~WatchStream() { store_->CloseStream(id_); }

Status WatchStream::HandleRequest(const etcdserverpb::WatchRequest& request) {
  return store_->HandleRequest(id_, request);
}

Status WatchStream::RejectCreate(const std::string& cancel_reason) {
  return store_->RejectCreate(id_, cancel_reason);
}

size_t WatchStream::PollEncoded(size_t max_responses, std::vector<EncodedWatchResponse>* out) {
  std::vector<WatchQueued> taken;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    taken.reserve(std::min(max_responses, state_->queue.size()));
    while (!state_->queue.empty() && taken.size() < max_responses) {
      auto& q = state_->queue.front();
      state_->event_bytes -= q.event_bytes;
      if (q.client_control) --state_->client_control;
      taken.push_back(std::move(q));
      state_->queue.pop_front();
      ++state_->popped;
    }
  }
  // Encoded outside the stream lock, so the apply thread never waits for it.
  const auto& filler = store_->options_.header_filler;
  uint64_t events = 0;
  for (auto& q : taken) {
    out->emplace_back();
    EncodedWatchResponse& e = out->back();
    if (q.control) {
      if (filler) filler(q.control->mutable_header());
      q.control->SerializeToString(&e.head);
      continue;
    }
    etcdserverpb::WatchResponse head;
    if (filler) filler(head.mutable_header());
    head.mutable_header()->set_revision(q.revision);
    head.set_watch_id(q.watch_id);
    head.set_fragment(q.fragment);
    head.SerializeToString(&e.head);
    events += q.events.size();
    e.events = std::move(q.events);
  }
  store_->events_sent_.fetch_add(events, std::memory_order_relaxed);
  store_->responses_sent_.fetch_add(taken.size(), std::memory_order_relaxed);
  return taken.size();
}

size_t WatchStream::Poll(size_t max_responses, std::vector<etcdserverpb::WatchResponse>* out) {
  std::vector<EncodedWatchResponse> encoded;
  const size_t n = PollEncoded(max_responses, &encoded);
  std::string bytes;
  for (const auto& e : encoded) {
    bytes.clear();
    e.AppendTo(&bytes);
    out->emplace_back();
    KV_CHECK(out->back().ParseFromString(bytes), "an encoded watch response does not parse");
  }
  return n;
}

size_t WatchStream::QueuedResponses() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->queue.size();
}

// ---- WatchableStore ----

WatchableStore::WatchableStore(const History* history, WatchOptions options)
    : history_(history), options_(std::move(options)) {
  KV_CHECK(history_ != nullptr, "history is required");
  KV_CHECK(options_.catchup_revisions_max >= 1, "catchup_revisions_max must be >= 1");
  KV_CHECK(options_.fragment_bytes_threshold >= 1, "fragment_bytes_threshold must be >= 1");
  observed_rev_ = history_->CurrentRevision();
}

WatchableStore::~WatchableStore() {
  std::lock_guard<std::mutex> lock(mu_);
  KV_CHECK(streams_.empty(), "%zu watch streams outlive their store", streams_.size());
}

Status WatchableStore::OpenStream(std::function<void()> notify, std::unique_ptr<WatchStream>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (streams_.size() >= options_.streams_max) {
    return {Code::kResourceExhausted,
            "kvd: too many watch streams (max " + std::to_string(options_.streams_max) + ")"};
  }
  auto entry = std::make_unique<StreamEntry>();
  entry->id = next_stream_id_++;
  entry->state = std::make_shared<WatchStreamState>();
  entry->state->notify = std::move(notify);
  out->reset(new WatchStream(this, entry->id, entry->state));
  streams_.emplace(entry->id, std::move(entry));
  return Status::Ok();
}

void WatchableStore::CloseStream(uint64_t stream_id) {
  std::shared_ptr<WatchStreamState> state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(stream_id);
    KV_CHECK(it != streams_.end(), "closing unknown stream %llu",
             static_cast<unsigned long long>(stream_id));
    StreamEntry& s = *it->second;
    while (!s.watchers.empty()) RemoveWatcher(s.watchers.begin()->second.get());
    state = s.state;
    streams_.erase(it);
  }
  std::unique_lock<std::mutex> lock(state->notify_mu);
  state->closed = true;
  state->notify_done.wait(lock, [&] { return state->notify_in_flight == 0; });
}

void WatchableStore::RunNotifies(const PendingNotifies& notifies) {
  for (const auto& s : notifies) {
    {
      std::lock_guard<std::mutex> lock(s->notify_mu);
      if (s->closed || !s->notify) continue;
      ++s->notify_in_flight;
    }
    s->notify();
    std::lock_guard<std::mutex> lock(s->notify_mu);
    if (--s->notify_in_flight == 0) s->notify_done.notify_all();
  }
}

Status WatchableStore::HandleRequest(uint64_t stream_id, const etcdserverpb::WatchRequest& req) {
  PendingNotifies notifies;
  Status st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(stream_id);
    KV_CHECK(it != streams_.end(), "request on closed stream %llu",
             static_cast<unsigned long long>(stream_id));
    StreamEntry& stream = *it->second;
    WatchStreamState& state = *stream.state;
    const auto too_many = [&] {
      return Status{Code::kResourceExhausted,
                    "kvd: watch stream has too many unread responses (max " +
                        std::to_string(options_.stream_control_responses_max) + ")"};
    };
    switch (req.request_union_case()) {
      case etcdserverpb::WatchRequest::kCreateRequest:
        if (!HasControlRoom(state, options_.stream_control_responses_max)) {
          st = too_many();
          break;
        }
        st = CreateWatcher(stream, req.create_request(), &notifies);
        break;
      case etcdserverpb::WatchRequest::kCancelRequest: {
        auto w = stream.watchers.find(req.cancel_request().watch_id());
        if (w == stream.watchers.end()) break;  // etcd: unknown ids get no response at all
        if (!HasControlRoom(state, options_.stream_control_responses_max)) {
          st = too_many();
          break;
        }
        etcdserverpb::WatchResponse r;
        r.mutable_header()->set_revision(observed_rev_);
        r.set_watch_id(w->first);
        r.set_canceled(true);
        RemoveWatcher(w->second.get());
        if (PushControl(state, std::move(r), true)) notifies.push_back(stream.state);
        break;
      }
      case etcdserverpb::WatchRequest::kProgressRequest: {
        if (!HasControlRoom(state, options_.stream_control_responses_max)) {
          st = too_many();
          break;
        }
        etcdserverpb::WatchResponse r;
        r.mutable_header()->set_revision(observed_rev_);
        r.set_watch_id(-1);
        if (PushControl(state, std::move(r), true)) notifies.push_back(stream.state);
        break;
      }
      case etcdserverpb::WatchRequest::REQUEST_UNION_NOT_SET:
        st = {Code::kInvalidArgument, "kvd: watch request has no create, cancel or progress"};
        break;
    }
  }
  RunNotifies(notifies);
  return st;
}

Status WatchableStore::RejectCreate(uint64_t stream_id, const std::string& cancel_reason) {
  PendingNotifies notifies;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(stream_id);
    KV_CHECK(it != streams_.end(), "request on closed stream %llu",
             static_cast<unsigned long long>(stream_id));
    StreamEntry& stream = *it->second;
    if (!HasControlRoom(*stream.state, options_.stream_control_responses_max)) {
      return {Code::kResourceExhausted, "kvd: watch stream has too many unread responses (max " +
                                            std::to_string(options_.stream_control_responses_max) +
                                            ")"};
    }
    etcdserverpb::WatchResponse r;
    r.mutable_header()->set_revision(observed_rev_);
    r.set_created(true);
    r.set_canceled(true);
    r.set_watch_id(-1);
    r.set_cancel_reason(cancel_reason);
    if (PushControl(*stream.state, std::move(r), true)) notifies.push_back(stream.state);
  }
  RunNotifies(notifies);
  return Status::Ok();
}

Status WatchableStore::CreateWatcher(StreamEntry& stream,
                                     const etcdserverpb::WatchCreateRequest& create,
                                     PendingNotifies* notifies) {
  KeyRange range{create.key(), create.range_end()};
  if (range.key.empty()) range.key = std::string(1, '\0');  // etcd: an empty key means "\0"

  etcdserverpb::WatchResponse created;
  created.mutable_header()->set_revision(observed_rev_);
  created.set_created(true);
  const char* reject = nullptr;
  if (range.IsEmpty()) {
    reject = kReasonEmptyRange;
  } else if (create.watch_id() != 0 && stream.watchers.count(create.watch_id()) != 0) {
    reject = kReasonDuplicateId;
  } else if (stream.watchers.size() >= options_.watchers_per_stream_max) {
    reject = kReasonStreamFull;
  } else if (watcher_count_ >= options_.watchers_total_max) {
    reject = kReasonStoreFull;
  }
  if (reject != nullptr) {
    created.set_watch_id(-1);
    created.set_canceled(true);
    created.set_cancel_reason(reject);
    if (PushControl(*stream.state, std::move(created), true)) notifies->push_back(stream.state);
    return Status::Ok();
  }

  int64_t id = create.watch_id();
  if (id == 0) {
    while (stream.watchers.count(stream.next_auto_id) != 0) ++stream.next_auto_id;
    id = stream.next_auto_id++;
  }
  auto owned = std::make_unique<Watcher>();
  Watcher* w = owned.get();
  w->stream = &stream;
  w->watch_id = id;
  w->range = std::move(range);
  if (w->range.range_end.empty()) {
    w->kind = Watcher::Kind::kKey;
  } else if (w->range.range_end != std::string(1, '\0') &&
             w->range.range_end == PrefixRangeEnd(w->range.key)) {
    w->kind = Watcher::Kind::kPrefix;
  } else {
    w->kind = Watcher::Kind::kRange;
  }
  for (int f : create.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) w->no_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) w->no_delete = true;
  }
  w->prev_kv = create.prev_kv();
  w->progress_notify = create.progress_notify();
  w->fragment = create.fragment();
  stream.watchers.emplace(id, std::move(owned));
  ++watcher_count_;
  watchers_registered_.store(watcher_count_, std::memory_order_release);

  // The created response goes first: nothing of this watcher can be queued before it.
  created.set_watch_id(id);
  if (PushControl(*stream.state, std::move(created), true)) notifies->push_back(stream.state);

  const int64_t start = std::max<int64_t>(create.start_revision(), 0);
  if (start == 0 || start > observed_rev_) {
    // Only future revisions: live from the next revision (or from a future start_revision).
    w->next_rev = std::max(observed_rev_ + 1, start);
    AddSynced(w);
    return Status::Ok();
  }
  // A past start: replayed from History by SyncStep, unless it is already compacted.
  w->next_rev = start;
  w->synced = false;
  unsynced_.Insert(w);
  if (const int64_t compact = history_->CompactRevision(); start < compact) {
    CancelCompacted(w, compact, notifies);
  }
  return Status::Ok();
}

void WatchableStore::AddSynced(Watcher* w) {
  w->synced = true;
  switch (w->kind) {
    case Watcher::Kind::kKey:
      key_watchers_[w->range.key].Insert(w);
      break;
    case Watcher::Kind::kPrefix:
      prefix_watchers_[w->range.key].Insert(w);
      prefix_len_max_ = std::max(prefix_len_max_, w->range.key.size());
      break;
    case Watcher::Kind::kRange:
      range_watchers_[{w->range.key, w->range.range_end}].Insert(w);
      break;
  }
}

void WatchableStore::RemoveSynced(Watcher* w) {
  KV_CHECK(w->synced, "watcher %lld is not synced", static_cast<long long>(w->watch_id));
  switch (w->kind) {
    case Watcher::Kind::kKey: {
      auto it = key_watchers_.find(w->range.key);
      KV_CHECK(it != key_watchers_.end(), "key watcher not indexed");
      it->second.Erase(w);
      if (it->second.empty()) key_watchers_.erase(it);
      break;
    }
    case Watcher::Kind::kPrefix: {
      auto it = prefix_watchers_.find(w->range.key);
      KV_CHECK(it != prefix_watchers_.end(), "prefix watcher not indexed");
      it->second.Erase(w);
      if (it->second.empty()) prefix_watchers_.erase(it);
      break;
    }
    case Watcher::Kind::kRange: {
      auto it = range_watchers_.find({w->range.key, w->range.range_end});
      KV_CHECK(it != range_watchers_.end(), "range watcher not indexed");
      it->second.Erase(w);
      if (it->second.empty()) range_watchers_.erase(it);
      break;
    }
  }
  w->synced = false;
}

void WatchableStore::RemoveWatcher(Watcher* w) {
  if (w->synced) {
    RemoveSynced(w);
  } else {
    unsynced_.Erase(w);
  }
  --watcher_count_;
  watchers_registered_.store(watcher_count_, std::memory_order_release);
  w->stream->watchers.erase(w->watch_id);  // destroys w
}

void WatchableStore::CancelCompacted(Watcher* w, int64_t compact_revision,
                                     PendingNotifies* notifies) {
  etcdserverpb::WatchResponse r;
  r.mutable_header();  // etcd sends revision 0 here, but a header must be present
  r.set_watch_id(w->watch_id);
  r.set_canceled(true);
  r.set_compact_revision(compact_revision);
  StreamEntry* stream = w->stream;
  RemoveWatcher(w);
  compaction_cancels_.fetch_add(1, std::memory_order_relaxed);
  // Not counted against the client bound: at most one per watcher, and watchers are bounded.
  if (PushControl(*stream->state, std::move(r), false)) notifies->push_back(stream->state);
}

bool WatchableStore::Wants(const Watcher& w, mvccpb::Event::EventType type) {
  if (type == mvccpb::Event::PUT) return !w.no_put;
  return !w.no_delete;
}

void WatchableStore::Prepare(bool prev_kv, mvccpb::Event* ev) {
  if (!prev_kv) {
    ev->clear_prev_kv();
  } else if (ev->type() == mvccpb::Event::PUT &&
             ev->kv().create_revision() == ev->kv().mod_revision()) {
    ev->clear_prev_kv();  // a create has no previous state, even after a delete
  }
}

void WatchableStore::AppendParts(const Watcher& w, int64_t revision, int64_t first_revision,
                                 std::vector<std::shared_ptr<const std::string>>* events,
                                 std::vector<WatchQueued>* parts) const {
  size_t events_bytes = 0;
  for (const auto& ev : *events) events_bytes += ev->size();
  const size_t whole_bytes = HeadBytes(w.watch_id, revision, false) + events_bytes;
  const auto part = [&](bool fragment, size_t head_bytes) {
    WatchQueued q;
    q.watch_id = w.watch_id;
    q.revision = revision;
    q.first_revision = first_revision;
    q.fragment = fragment;
    q.event_bytes = head_bytes;
    parts->push_back(std::move(q));
  };
  if (!w.fragment || events->size() < 2 || whole_bytes < options_.fragment_bytes_threshold) {
    part(false, HeadBytes(w.watch_id, revision, false));
    parts->back().events = std::move(*events);
    parts->back().event_bytes = whole_bytes;
    events->clear();
    return;
  }
  // Greedy packing: a part takes events while it stays below the threshold (a single event may
  // exceed it on its own). Every part but the last carries fragment=true.
  const size_t base_bytes = HeadBytes(w.watch_id, revision, true);
  const size_t first = parts->size();
  for (auto& ev : *events) {
    const size_t ev_bytes = ev->size();
    if (parts->size() == first ||
        (!parts->back().events.empty() &&
         parts->back().event_bytes + ev_bytes >= options_.fragment_bytes_threshold)) {
      part(true, base_bytes);
    }
    parts->back().events.push_back(std::move(ev));
    parts->back().event_bytes += ev_bytes;
  }
  parts->back().fragment = false;
  parts->back().event_bytes -= base_bytes - HeadBytes(w.watch_id, revision, false);
  events->clear();
}

void WatchableStore::OnRevision(int64_t revision, const std::vector<mvccpb::Event>& events) {
  PendingNotifies notifies;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (revision <= observed_rev_) return;  // already covered by the History read at start-up
    KV_CHECK(revision == observed_rev_ + 1, "revision %lld observed after %lld (gap)",
             static_cast<long long>(revision), static_cast<long long>(observed_rev_));
    observed_rev_ = revision;

    touched_.clear();
    KV_CHECK(events.size() < UINT32_MAX, "%zu events in one revision", events.size());
    uint32_t ev_index = 0;
    const auto visit = [&](const WatcherSet& set, const mvccpb::Event& ev) {
      for (Watcher* w : set.items()) {
        if (w->next_rev > revision || !Wants(*w, ev.type())) continue;
        if (w->scratch_rev != revision) {
          w->scratch_rev = revision;
          w->scratch.clear();
          touched_.push_back(w);
        }
        w->scratch.push_back(ev_index);
      }
    };
    for (const auto& ev : events) {
      const std::string& k = ev.kv().key();
      if (auto it = key_watchers_.find(k); it != key_watchers_.end()) visit(it->second, ev);
      if (!prefix_watchers_.empty()) {
        const size_t n = std::min(k.size(), prefix_len_max_);
        for (size_t len = 1; len <= n; ++len) {
          auto it = prefix_watchers_.find(std::string_view(k.data(), len));
          if (it != prefix_watchers_.end()) visit(it->second, ev);
        }
      }
      for (auto it = range_watchers_.begin(); it != range_watchers_.end() && it->first.first <= k;
           ++it) {
        if (RangeContains(it->first.first, it->first.second, k)) visit(it->second, ev);
      }
      ++ev_index;
    }
    if (touched_.empty()) return;

    // Each event is encoded at most once per shape (without / with prev_kv), on first use; the
    // responses of every watcher share those bytes, and their heads are encoded when polled.
    plain_encoded_.assign(events.size(), nullptr);
    prev_encoded_.assign(events.size(), nullptr);
    mvccpb::Event shaped;
    const auto encoded = [&](uint32_t i, bool prev_kv) {
      auto& slot = prev_kv ? prev_encoded_[i] : plain_encoded_[i];
      if (!slot) {
        shaped = events[i];
        Prepare(prev_kv, &shaped);
        slot = EncodeEvent(shaped);
      }
      return slot;
    };

    for (Watcher* w : touched_) {
      picked_.clear();
      for (uint32_t i : w->scratch) picked_.push_back(encoded(i, w->prev_kv));
      w->scratch.clear();
      parts_.clear();
      AppendParts(*w, revision, revision, &picked_, &parts_);
      bool pushed = false;
      const bool notify = TryPushEvents(*w->stream->state, &parts_, options_.stream_event_bytes_max,
                                        CoalesceBytesMax(), options_.catchup_revisions_max,
                                        &w->coalesce_seq, &pushed);
      if (pushed) {
        w->next_rev = revision + 1;
        w->events_since_tick = true;
        if (notify) notifies.push_back(w->stream->state);
      } else {
        // The consumer is slow: park the watcher; SyncStep replays from this revision.
        RemoveSynced(w);
        w->next_rev = revision;
        unsynced_.Insert(w);
        victims_parked_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    touched_.clear();
    plain_encoded_.clear();
    prev_encoded_.clear();
    parts_.clear();
  }
  RunNotifies(notifies);
}

size_t WatchableStore::CoalesceBytesMax() const {
  // A merged response must never need fragmenting (AppendParts decides that per delivery).
  return std::min(options_.coalesce_bytes_max, options_.fragment_bytes_threshold - 1);
}

bool WatchableStore::WantsEvents() const {
  return watchers_registered_.load(std::memory_order_acquire) > 0;
}

void WatchableStore::OnRevisionWithoutEvents(int64_t revision) {
  std::lock_guard<std::mutex> lock(mu_);
  if (revision <= observed_rev_) return;
  KV_CHECK(revision == observed_rev_ + 1, "revision %lld observed after %lld (gap)",
           static_cast<long long>(revision), static_cast<long long>(observed_rev_));
  // Watchers created while the revision was applied (there were none when it started) may be
  // live from this revision: they read it from History instead.
  UnsyncLive(revision);
  observed_rev_ = revision;
}

void WatchableStore::UnsyncLive(int64_t next_rev_max) {
  std::vector<Watcher*> live;
  for (auto& [id, stream] : streams_) {
    for (auto& [watch_id, w] : stream->watchers) {
      if (w->synced && w->next_rev <= next_rev_max) live.push_back(w.get());
    }
  }
  for (Watcher* w : live) {
    // A synced watcher has seen everything up to observed_rev_; next_rev is only a lower bound.
    w->next_rev = std::max(w->next_rev, observed_rev_ + 1);
    RemoveSynced(w);
    unsynced_.Insert(w);
  }
}

void WatchableStore::OnCompacted(int64_t compact_revision) {
  PendingNotifies notifies;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Synced watchers need only revisions > observed >= compact_revision: unaffected.
    std::vector<Watcher*> doomed;
    for (Watcher* w : unsynced_.items()) {
      if (w->next_rev < compact_revision) doomed.push_back(w);
    }
    for (Watcher* w : doomed) CancelCompacted(w, compact_revision, &notifies);
  }
  RunNotifies(notifies);
}

void WatchableStore::OnHistoryReplaced() {
  std::lock_guard<std::mutex> lock(mu_);
  UnsyncLive(std::numeric_limits<int64_t>::max());
  observed_rev_ = std::max(observed_rev_, history_->CurrentRevision());
}

SyncResult WatchableStore::SyncStep(size_t max_events) {
  SyncResult result;
  PendingNotifies notifies;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (unsynced_.empty()) return result;
    // Round-robin from a cursor so that a few heavy watchers cannot starve the others.
    std::vector<Watcher*> work;
    const auto& items = unsynced_.items();
    const size_t n = items.size();
    const size_t start = sync_cursor_ % n;
    for (size_t i = 0; i < n; ++i) work.push_back(items[(start + i) % n]);

    const int64_t compact = history_->CompactRevision();
    size_t budget = max_events;
    // Reads done in this step, encoded (shaped for the key's prev_kv), for watchers that need
    // exactly the same one: they share the bytes and only apply their own filters.
    using ReadKey = std::tuple<std::string, std::string, int64_t, int64_t, bool>;
    struct EncodedRead {
      std::vector<std::pair<mvccpb::Event::EventType, std::shared_ptr<const std::string>>> events;
      int64_t next = 0;
    };
    std::map<ReadKey, EncodedRead> shared;
    size_t visited = 0;
    for (Watcher* w : work) {
      if (budget == 0) break;
      ++visited;
      if (w->next_rev > observed_rev_) {
        unsynced_.Erase(w);
        AddSynced(w);
        ++result.watchers_synced;
        continue;
      }
      if (w->next_rev < compact) {
        CancelCompacted(w, compact, &notifies);
        continue;
      }
      WatchStreamState& state = *w->stream->state;
      if (QueuedEventBytes(state) > options_.stream_event_bytes_max / 2) continue;  // still slow

      const int64_t to = std::min(observed_rev_, w->next_rev + options_.catchup_revisions_max - 1);
      const EncodedRead* read = nullptr;
      ReadKey rk{w->range.key, w->range.range_end, w->next_rev, to, w->prev_kv};
      if (auto hit = shared.find(rk); hit != shared.end()) {
        read = &hit->second;
        ++result.reads_shared;
        budget -= std::min(budget, std::max<size_t>(1, read->events.size() / 8));
      } else {
        std::vector<mvccpb::Event> raw;
        int64_t next = 0;
        Status st =
            history_->ReadEvents(w->range, w->next_rev, to, budget, w->prev_kv, &raw, &next);
        ++result.reads;
        budget -= std::min(budget, std::max<size_t>(1, raw.size()));
        if (st.code() == Code::kOutOfRange && st == errors::Compacted()) {
          CancelCompacted(w, history_->CompactRevision(), &notifies);
          continue;
        }
        if (!st.ok()) {
          if (result.status.ok()) result.status = st;
          continue;
        }
        KV_CHECK(next > w->next_rev && next <= to + 1,
                 "ReadEvents next_rev %lld outside (%lld, %lld]", static_cast<long long>(next),
                 static_cast<long long>(w->next_rev), static_cast<long long>(to + 1));
        result.events_read += raw.size();
        EncodedRead encoded;
        encoded.next = next;
        encoded.events.reserve(raw.size());
        for (auto& ev : raw) {
          Prepare(w->prev_kv, &ev);
          encoded.events.emplace_back(ev.type(), EncodeEvent(ev));
        }
        read = &shared.emplace(std::move(rk), std::move(encoded)).first->second;
      }

      picked_.clear();
      for (const auto& [type, bytes] : read->events) {
        if (Wants(*w, type)) picked_.push_back(bytes);
      }
      if (!picked_.empty()) {
        parts_.clear();
        AppendParts(*w, observed_rev_, w->next_rev, &picked_, &parts_);
        bool pushed = false;
        const bool notify =
            TryPushEvents(state, &parts_, options_.stream_event_bytes_max, CoalesceBytesMax(),
                          options_.catchup_revisions_max, &w->coalesce_seq, &pushed);
        parts_.clear();
        if (!pushed) continue;  // retried from the same revision later
        if (notify) notifies.push_back(w->stream->state);
        w->events_since_tick = true;
      }
      w->next_rev = read->next;
      if (w->next_rev > observed_rev_) {
        unsynced_.Erase(w);
        AddSynced(w);
        ++result.watchers_synced;
      }
    }
    sync_cursor_ = start + visited;
    result.watchers_unsynced = unsynced_.size();
  }
  RunNotifies(notifies);
  return result;
}

void WatchableStore::ProgressTick() {
  PendingNotifies notifies;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, stream] : streams_) {
      for (auto& [watch_id, w] : stream->watchers) {
        if (!w->progress_notify) continue;
        const bool quiet = !w->events_since_tick;
        w->events_since_tick = false;
        if (!quiet || !w->synced) continue;
        // A client that does not read gets no more progress responses, not an error.
        if (!HasControlRoom(*stream->state, options_.stream_control_responses_max)) continue;
        etcdserverpb::WatchResponse r;
        r.mutable_header()->set_revision(observed_rev_);
        r.set_watch_id(watch_id);
        w->coalesce_seq = 0;  // later events go after this progress response, not before it
        if (PushControl(*stream->state, std::move(r), true)) notifies.push_back(stream->state);
      }
    }
  }
  RunNotifies(notifies);
}

WatchMetrics WatchableStore::Metrics() const {
  WatchMetrics m;
  {
    std::lock_guard<std::mutex> lock(mu_);
    m.watchers = watcher_count_;
    m.streams = streams_.size();
    m.slow_watchers = unsynced_.size();
  }
  m.events_sent = events_sent_.load(std::memory_order_relaxed);
  m.responses_sent = responses_sent_.load(std::memory_order_relaxed);
  m.victims_parked = victims_parked_.load(std::memory_order_relaxed);
  m.compaction_cancels = compaction_cancels_.load(std::memory_order_relaxed);
  return m;
}

int64_t WatchableStore::ObservedRevision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return observed_rev_;
}

}  // namespace kvstore
