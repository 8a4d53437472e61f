// raft_bench: committed entries per second and CPU time per entry of the Raft library alone:
// 3 nodes over MemoryStorage and an in-memory network, driven by one thread, for proposal
// batches of 1, 64 and 1,024 entries. Storage writes cost nothing here, so the figures are an
// upper bound of what raft/ itself allows, not of a real cluster.
//
// Usage: raft_bench [--seconds S] [--value-bytes N] [--batches 1,64,1024]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "raft/codec.h"
#include "raft/raw_node.h"
#include "raft/storage.h"

namespace {

struct Node {
  std::unique_ptr<raft::MemoryStorage> storage;
  std::unique_ptr<raft::RawNode> raw;
  uint64_t applied = 0;
  uint64_t applied_entries = 0;
  raft::ConfState conf;
};

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

class Bench {
 public:
  Bench() {
    const std::vector<uint64_t> ids = {1, 2, 3};
    for (uint64_t id : ids) {
      Node n;
      n.storage = std::make_unique<raft::MemoryStorage>();
      raft::BootstrapStorage(n.storage.get(), ids);
      raft::Config c;
      c.id = id;
      c.storage = n.storage.get();
      c.seed = 1;
      nodes_.push_back(std::move(n));
      nodes_.back().raw = std::make_unique<raft::RawNode>(c);
    }
    Pump();
    if (!nodes_[0].raw->Campaign().ok()) std::abort();
    Pump();
    if (nodes_[0].raw->raft().state() != raft::StateType::kLeader) {
      std::fprintf(stderr, "no leader\n");
      std::exit(1);
    }
  }

  // Handles readies and delivers messages until the cluster is quiet.
  void Pump() {
    for (int round = 0; round < 10000; ++round) {
      bool any = false;
      for (Node& n : nodes_) {
        while (n.raw->HasReady()) {
          any = true;
          HandleReady(n);
        }
      }
      if (queue_.empty() && !any) return;
      std::vector<raft::Message> batch;
      batch.swap(queue_);
      for (const raft::Message& m : batch) (void)nodes_[m.to - 1].raw->Step(m);
    }
  }

  void HandleReady(Node& n) {
    raft::Ready rd = n.raw->Ready();
    n.storage->Append(rd.entries);
    if (rd.hard_state) n.storage->SetHardState(*rd.hard_state);
    for (const raft::Entry& e : rd.committed_entries) {
      n.applied = e.index;
      if (e.type == raft::EntryType::kConfChange) {
        raft::ConfChange cc;
        if (!raft::DecodeConfChange(e.data, &cc).ok()) std::abort();
        n.conf = n.raw->ApplyConfChange(cc);
      } else if (!e.data.empty()) {
        ++n.applied_entries;
      }
    }
    for (raft::Message& m : rd.messages) queue_.push_back(std::move(m));
    n.raw->Advance();
    // Keep memory bounded: snapshot and compact every 50,000 entries.
    if (n.applied >= n.storage->FirstIndex() + 50000) {
      (void)n.storage->CreateSnapshot(n.applied, n.conf, "", nullptr);
      (void)n.storage->Compact(n.applied);
    }
  }

  // Proposes `batch` entries at the leader, then runs the cluster until they are applied on
  // every node. Returns the number of entries committed.
  uint64_t Round(size_t batch, const std::string& value) {
    for (size_t i = 0; i < batch; ++i) {
      if (!nodes_[0].raw->Propose(value).ok()) std::abort();
    }
    Pump();
    return batch;
  }

  uint64_t applied_entries(size_t i) const { return nodes_[i].applied_entries; }

 private:
  std::vector<Node> nodes_;
  std::vector<raft::Message> queue_;
};

std::vector<size_t> ParseBatches(const char* s) {
  std::vector<size_t> out;
  while (*s != '\0') {
    char* end = nullptr;
    out.push_back(static_cast<size_t>(std::strtoull(s, &end, 10)));
    s = *end == ',' ? end + 1 : end;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5.0;
  size_t value_bytes = 128;
  std::vector<size_t> batches = {1, 64, 1024};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--seconds") {
      seconds = std::atof(argv[i + 1]);
    } else if (flag == "--value-bytes") {
      value_bytes = static_cast<size_t>(std::strtoull(argv[i + 1], nullptr, 10));
    } else if (flag == "--batches") {
      batches = ParseBatches(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--value-bytes N] [--batches 1,64,1024]\n",
                   argv[0]);
      return 2;
    }
  }
  const std::string value(value_bytes, 'v');
  std::printf("raft_bench: 3 nodes, MemoryStorage, in-memory network, 1 thread, %zu-byte values\n",
              value_bytes);
  // entries/s is wall-clock; entries/cpu-s and cpu ns/entry use this process's CPU time, which
  // stays meaningful on a shared, loaded machine.
  std::printf("%8s %12s %14s %16s %14s\n", "batch", "entries", "entries/s", "entries/cpu-s",
              "cpu ns/entry");
  for (size_t batch : batches) {
    Bench bench;
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = CpuSeconds();
    uint64_t entries = 0;
    double elapsed = 0;
    while (elapsed < seconds) {
      entries += bench.Round(batch, value);
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    const double cpu = CpuSeconds() - cpu_start;
    for (size_t i = 0; i < 3; ++i) {
      if (bench.applied_entries(i) != entries) {
        std::fprintf(stderr, "node %zu applied %llu of %llu entries\n", i + 1,
                     static_cast<unsigned long long>(bench.applied_entries(i)),
                     static_cast<unsigned long long>(entries));
        return 1;
      }
    }
    std::printf("%8zu %12llu %14.0f %16.0f %14.0f\n", batch,
                static_cast<unsigned long long>(entries), static_cast<double>(entries) / elapsed,
                static_cast<double>(entries) / cpu, cpu * 1e9 / static_cast<double>(entries));
  }
  return 0;
}
