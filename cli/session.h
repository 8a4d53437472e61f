// Leases kept alive in the background and the lock/election recipes of clientv3's
// concurrency package, built on the public KV/Lease/Watch API (for `kvctl lock|elect`).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "cli/client.h"
#include "cli/status.h"

namespace cli {

// A lease renewed every TTL/3 by a background thread until Close(). Thread-safe: expired()
// may be read from any thread.
class Session {
 public:
  explicit Session(Client& client) : client_(client) {}
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Status Open(std::int64_t ttl_seconds);
  // Stops the renewals (the lease is left to expire, as etcdctl does on exit).
  void Close();
  std::int64_t lease_id() const { return lease_id_; }
  bool expired() const { return expired_.load(); }

 private:
  void KeepAliveLoop(std::int64_t ttl_seconds);

  Client& client_;
  std::int64_t lease_id_ = 0;
  std::atomic<bool> expired_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::unique_ptr<grpc::ClientContext> stream_context_;
  std::thread thread_;
};

// Creates "<prefix>/<lease hex>" (value `value`) and waits until every key under the prefix
// created before it is deleted: the mutex and election protocol of clientv3. On success
// *key is the caller's key and *revision its create revision.
Status AcquireOrdered(Client& client, const Session& session, const std::string& prefix,
                      const std::string& value, std::string* key, std::int64_t* revision);

// Blocks until `key` is deleted (watching from `after_revision` + 1) or `stop` turns true.
Status WaitDelete(Client& client, const std::string& key, std::int64_t after_revision,
                  const std::atomic<bool>& stop);

// Installs SIGINT/SIGTERM handlers that set the returned flag (idempotent).
const std::atomic<bool>& InterruptFlag();

}  // namespace cli
