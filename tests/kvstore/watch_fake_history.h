// An in-memory History for the watch tests: every revision's events kept in a vector, written
// through Put/Delete/Txn helpers that compute etcd's per-key metadata and then tell the observer.
// Thread-safety: reads may run concurrently with one writer (History's contract); the observer
// is called after the revision is readable, without the internal lock held.
#pragma once

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kvstore/history.h"
#include "kvstore/status.h"
#include "proto/kv.pb.h"

namespace kvstore::testing {

class FakeHistory : public History {
 public:
  struct Op {
    bool put = true;
    std::string key;
    std::string value;
  };

  void set_observer(HistoryObserver* observer) { observer_ = observer; }

  int64_t CurrentRevision() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return CurrentLocked();
  }
  int64_t CompactRevision() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return compact_;
  }

  Status ReadEvents(const KeyRange& range, int64_t from_rev, int64_t to_rev, size_t max_events,
                    bool want_prev_kv, std::vector<mvccpb::Event>* out,
                    int64_t* next_rev) const override {
    std::lock_guard<std::mutex> lock(mu_);
    ++reads_;
    if (from_rev < compact_) return errors::Compacted();
    size_t n = 0;
    int64_t rev = std::max<int64_t>(from_rev, 2);
    for (; rev <= to_rev && rev <= CurrentLocked(); ++rev) {
      if (n >= max_events) break;
      for (const auto& ev : revs_[static_cast<size_t>(rev - 2)]) {
        if (!range.Contains(ev.kv().key())) continue;
        out->push_back(ev);
        if (!want_prev_kv) out->back().clear_prev_kv();
        ++n;
      }
    }
    *next_rev = rev > to_rev ? to_rev + 1 : rev;
    return Status::Ok();
  }

  // Applies the ops as one revision (a txn) and tells the observer; returns the revision, or 0
  // when nothing changed (deleting missing keys only).
  int64_t Apply(const std::vector<Op>& ops) {
    std::unique_lock<std::mutex> lock(mu_);
    const int64_t rev = CurrentLocked() + 1;
    std::vector<mvccpb::Event> events;
    for (const auto& op : ops) {
      auto cur = live_.find(op.key);
      mvccpb::Event ev;
      if (op.put) {
        ev.set_type(mvccpb::Event::PUT);
        mvccpb::KeyValue kv;
        kv.set_key(op.key);
        kv.set_value(op.value);
        kv.set_mod_revision(rev);
        if (cur != live_.end()) {
          *ev.mutable_prev_kv() = cur->second;
          kv.set_create_revision(cur->second.create_revision());
          kv.set_version(cur->second.version() + 1);
        } else {
          kv.set_create_revision(rev);
          kv.set_version(1);
        }
        *ev.mutable_kv() = kv;
        live_[op.key] = kv;
      } else {
        if (cur == live_.end()) continue;
        ev.set_type(mvccpb::Event::DELETE);
        ev.mutable_kv()->set_key(op.key);
        ev.mutable_kv()->set_mod_revision(rev);
        *ev.mutable_prev_kv() = cur->second;
        live_.erase(cur);
      }
      events.push_back(std::move(ev));
    }
    if (events.empty()) return 0;
    revs_.push_back(events);
    const auto& stored = revs_.back();  // deque: stays valid while later revisions are added
    lock.unlock();
    if (observer_ != nullptr) observer_->OnRevision(rev, stored);
    return rev;
  }
  int64_t Put(const std::string& key, const std::string& value) {
    return Apply({{true, key, value}});
  }
  int64_t Delete(const std::string& key) { return Apply({{false, key, ""}}); }

  void Compact(int64_t rev) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      compact_ = rev;
    }
    if (observer_ != nullptr) observer_->OnCompacted(rev);
  }

  // The events of `rev` (2 = first write).
  const std::vector<mvccpb::Event>& EventsAt(int64_t rev) const {
    std::lock_guard<std::mutex> lock(mu_);
    return revs_.at(static_cast<size_t>(rev - 2));
  }

 private:
  int64_t CurrentLocked() const { return 1 + static_cast<int64_t>(revs_.size()); }

  mutable std::mutex mu_;
  HistoryObserver* observer_ = nullptr;
  std::deque<std::vector<mvccpb::Event>> revs_;  // revs_[i] = events of revision i + 2
  std::map<std::string, mvccpb::KeyValue> live_;
  int64_t compact_ = 0;
  mutable size_t reads_ = 0;
};

}  // namespace kvstore::testing
