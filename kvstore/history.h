// The contract between the MVCC store (which owns revisions and their history) and the
// watchable store (which delivers that history to watchers). The MVCC store implements History
// and calls a HistoryObserver once per committed write revision.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kvstore/status.h"
#include "proto/kv.pb.h"

namespace kvstore {

// A key range in etcd's conventions: empty range_end = the single key `key`; range_end "\0" =
// every key >= key; key "\0" with range_end "\0" = every key; otherwise [key, range_end).
// Keys compare as unsigned bytes.
struct KeyRange {
  std::string key;
  std::string range_end;

  bool Contains(const std::string& k) const;
  // True when the range can match no key (range_end set, not "\0", and <= key).
  bool IsEmpty() const;
};

// Read access to the revision history. Thread-safety: implementations are safe to call from any
// thread concurrently with writes.
class History {
 public:
  virtual ~History() = default;

  // The newest revision (1 on an empty store).
  virtual int64_t CurrentRevision() const = 0;
  // Revisions < CompactRevision() are gone; 0 when never compacted.
  virtual int64_t CompactRevision() const = 0;

  // Appends to *out the events of revisions in [from_rev, to_rev] on keys in `range`, in
  // (revision, sub-revision) order, stopping after whole revisions once max_events is reached.
  // With want_prev_kv, each non-create event carries prev_kv = the key's state at
  // mod_revision - 1 when that revision is retained. *next_rev is set to the first revision not
  // yet read (to_rev + 1 when everything was read).
  // Errors: errors::Compacted() when from_rev < CompactRevision().
  virtual Status ReadEvents(const KeyRange& range, int64_t from_rev, int64_t to_rev,
                            size_t max_events, bool want_prev_kv, std::vector<mvccpb::Event>* out,
                            int64_t* next_rev) const = 0;
};

// Told of every committed write revision, in order, after it is durable and readable through
// History. `events` are in sub-revision order and always carry prev_kv where one exists (a
// watcher that did not ask for it drops it). Called on the applying thread: must not block.
class HistoryObserver {
 public:
  virtual ~HistoryObserver() = default;
  virtual void OnRevision(int64_t revision, const std::vector<mvccpb::Event>& events) = 0;
  // Asked once per apply batch, on the applying thread, before it is applied: when false, the
  // revisions of the batch are announced by OnRevisionWithoutEvents instead, and building their
  // events (a copy of every written key and value, and of every previous value) is skipped.
  virtual bool WantsEvents() const { return true; }
  // A committed revision whose events were not built (WantsEvents() was false); they can be
  // read from History. Only called after WantsEvents() returned false.
  virtual void OnRevisionWithoutEvents(int64_t revision) {
    KV_CHECK(false, "revision %lld announced without events to an observer that wants them",
             static_cast<long long>(revision));
  }
  // Called after a compaction at `compact_revision` is recorded.
  virtual void OnCompacted(int64_t compact_revision) = 0;
};

}  // namespace kvstore
