// server::Executor: a fixed pool of worker threads draining one bounded FIFO of closures. Used
// to keep slow work (serving applied reads, streaming checkpoints) off the raft thread.
//
// Thread-safety: Post from any thread. Stop joins the workers after they drained the queue.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace server {

class Executor {
 public:
  // Precondition: threads >= 1, queue_max >= 1 (checked).
  Executor(size_t threads, size_t queue_max);
  ~Executor();  // Stop()s
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `fn`. Returns false (and drops it) when the queue is full or stopped.
  [[nodiscard]] bool Post(std::function<void()> fn);
  // Runs what is queued, then joins the workers. Idempotent.
  void Stop();

 private:
  void Work();

  size_t queue_max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace server
