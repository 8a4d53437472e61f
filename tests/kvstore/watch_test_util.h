// Helpers shared by the watch tests: request builders and a fixture wiring a FakeHistory to a
// WatchableStore.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kvstore/watchable_store.h"
#include "proto/rpc.pb.h"
#include "tests/kvstore/watch_fake_history.h"

namespace kvstore::testing {

struct CreateArgs {
  std::string key;
  std::string range_end;
  int64_t start_revision = 0;
  int64_t watch_id = 0;
  bool prev_kv = false;
  bool progress_notify = false;
  bool fragment = false;
  bool no_put = false;
  bool no_delete = false;
};

inline etcdserverpb::WatchRequest CreateReq(const CreateArgs& a) {
  etcdserverpb::WatchRequest req;
  auto* c = req.mutable_create_request();
  c->set_key(a.key);
  c->set_range_end(a.range_end);
  c->set_start_revision(a.start_revision);
  c->set_watch_id(a.watch_id);
  c->set_prev_kv(a.prev_kv);
  c->set_progress_notify(a.progress_notify);
  c->set_fragment(a.fragment);
  if (a.no_put) c->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  if (a.no_delete) c->add_filters(etcdserverpb::WatchCreateRequest::NODELETE);
  return req;
}

inline etcdserverpb::WatchRequest CancelReq(int64_t watch_id) {
  etcdserverpb::WatchRequest req;
  req.mutable_cancel_request()->set_watch_id(watch_id);
  return req;
}

inline etcdserverpb::WatchRequest ProgressReq() {
  etcdserverpb::WatchRequest req;
  req.mutable_progress_request();
  return req;
}

// Everything queued on the stream now, oldest first.
inline std::vector<etcdserverpb::WatchResponse> Drain(WatchStream& s) {
  std::vector<etcdserverpb::WatchResponse> out;
  while (s.Poll(64, &out) > 0) {
  }
  return out;
}

struct Fixture {
  explicit Fixture(WatchOptions options = {}) : store(&history, std::move(options)) {
    history.set_observer(&store);
  }
  std::unique_ptr<WatchStream> Open() {
    std::unique_ptr<WatchStream> s;
    Status st = store.OpenStream([] {}, &s);
    if (!st.ok()) return nullptr;
    return s;
  }

  FakeHistory history;
  WatchableStore store;
};

}  // namespace kvstore::testing
