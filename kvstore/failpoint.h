// kvstore::failpoint: named fault-injection points for tests (the idea of etcd's gofail, with
// the names etcd 3.4 uses where there is one). Every point is compiled in and costs one atomic
// load while nothing is armed; it is armed only through the process environment
// (KVD_FAILPOINTS at start) or, when kvd runs with KVD_FAILPOINTS_HTTP=1, through the test-only
// HTTP endpoint /debug/failpoints on its metrics URLs (docs/robustness.md).
//
// Points (where Eval is called):
//   raftBeforeSave    RaftLogStore::Save, before the synced raft log write (persist thread)
//   raftAfterSave     RaftLogStore::Save, after it
//   backendBeforeCommit  MvccStore::Apply, before the store's WriteBatch is written
//   restoreAfterDrop  MvccStore::RestoreCheckpoint, after the families were emptied
// Actions:
//   off           disarm
//   sleep(MS)     block the calling thread for MS milliseconds (an fsync delay)
//   error         the call fails with kInternal "failpoint NAME: injected I/O error"
//   panic         abort the process at once (a crash at exactly that point)
// Thread-safety: every function may be called from any thread.
#pragma once

#include <string>
#include <string_view>

#include "kvstore/status.h"

namespace kvstore::failpoint {

// The names above, for validation and listing.
bool Known(std::string_view name);

// Runs the action armed on `name` (kOk when none). Precondition: Known(name) (checked).
Status Eval(std::string_view name);

// Arms (or with "off" disarms) one point. kInvalidArgument for an unknown name or action.
Status Set(std::string_view name, std::string_view action);

// Applies "name=action[;name=action...]" (the KVD_FAILPOINTS syntax); stops at the first bad
// element and reports it.
Status SetFromSpec(std::string_view spec);

// "name=action\n" for every armed point, sorted by name ("" when none).
std::string List();

}  // namespace kvstore::failpoint
