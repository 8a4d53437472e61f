// The transaction behind `kvctl rollback`, as a pure function so tests can check its guard.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "proto/rpc.pb.h"

namespace cli {

// Puts back every key of `target` (the state at `to_rev`) whose value differs from `current`
// and deletes keys of `current` absent from `target`. Every touched key is guarded: its
// current mod_revision must be unchanged (or, for a key to recreate, create_revision == 0),
// so a concurrent write makes the whole txn fail. `report` gets a human-readable diff.
etcdserverpb::TxnRequest BuildRollbackTxn(const std::map<std::string, mvccpb::KeyValue>& current,
                                          const std::map<std::string, mvccpb::KeyValue>& target,
                                          std::int64_t to_rev, std::string* report);

}  // namespace cli
