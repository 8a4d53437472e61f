// storage_bench: throughput and footprint of the storage stack (MvccStore on RocksDB, and the
// WatchableStore fan-out), in one process, without raft or gRPC:
//   puts/s with 256 B and 1 KiB values (one revision per put, applied in batches as the apply
//   thread does; new keys in order, then updates of random existing keys), point and prefix
//   ranges/s, watch events delivered/s to many watchers on one
//   prefix, and memory (RSS delta) and disk bytes per key after loading --keys keys.
//
// Usage: storage_bench [--keys N] [--keys-1k N] [--batch N] [--random-puts N] [--point-reads N]
//                      [--prefix-reads N] [--watchers N] [--watch-revisions N] [--dir DIR]
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kvstore/engine.h"
#include "kvstore/mvcc_store.h"
#include "kvstore/watchable_store.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  uint64_t keys = 1'000'000;
  uint64_t keys_1k = 250'000;
  uint64_t batch = 256;            // entries per Apply (one RocksDB WriteBatch)
  uint64_t random_puts = 200'000;  // updates of random existing keys (after the reads)
  uint64_t point_reads = 200'000;
  uint64_t prefix_reads = 20'000;
  uint64_t watchers = 10'000;
  uint64_t watch_revisions = 200;
  std::string dir;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "storage_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const kvstore::Status& st, const char* what) {
  if (!st.ok()) Die(std::string(what) + ": " + st.ToString());
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// CPU seconds used by the whole process so far. The machine may be shared, so rates are also
// given per CPU second, which depends much less on what else runs.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A stopwatch for wall and CPU time.
struct Timer {
  Clock::time_point wall0 = Clock::now();
  double cpu0 = CpuSeconds();
  double wall() const { return Seconds(wall0); }
  double cpu() const { return CpuSeconds() - cpu0; }
};

// Resident set size in bytes (VmRSS of /proc/self/status).
int64_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

int64_t DirBytes(const std::string& dir) {
  int64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += static_cast<int64_t>(e.file_size());
  }
  return total;
}

std::string KeyOf(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key/%08llu", static_cast<unsigned long long>(i));
  return buf;
}

struct Opened {
  std::unique_ptr<kvstore::Engine> engine;
  std::unique_ptr<kvstore::MvccStore> store;
  uint64_t index = 0;
};

Opened Open(const std::string& dir) {
  Opened o;
  Check(kvstore::MvccStore::OpenDir(dir, kvstore::StoreOptions{}, &o.engine, &o.store), "open");
  return o;
}

// Applies `reqs` in batches of `batch` entries.
void ApplyAll(Opened& o, const std::vector<kvdpb::InternalRequest>& reqs, uint64_t batch) {
  std::vector<kvstore::ApplyEntry> entries;
  std::vector<kvstore::ApplyResult> results;
  for (size_t i = 0; i < reqs.size(); i += batch) {
    entries.clear();
    results.clear();
    for (size_t j = i; j < reqs.size() && j < i + batch; ++j)
      entries.push_back({++o.index, &reqs[j]});
    Check(o.store->Apply(entries, 0, &results), "apply");
    for (const auto& r : results) Check(r.status, "put");
  }
}

// Puts `n` keys with random (incompressible) `value_bytes` values: keys 0..n-1 in order, or
// with `key_space` > 0 random keys below it (updates, as a cluster under load sees them); adds
// the wall and CPU seconds of the applies to *wall_s / *cpu_s. Requests are built in chunks so
// that the request vector does not dominate the RSS figure.
void LoadPuts(Opened& o, uint64_t n, size_t value_bytes, uint64_t batch, double* wall_s,
              double* cpu_s, uint64_t key_space = 0) {
  std::mt19937_64 rng(1);
  std::mt19937_64 key_rng(3);
  std::string value(value_bytes, 'x');
  const uint64_t chunk = 65536;
  std::vector<kvdpb::InternalRequest> reqs;
  for (uint64_t base = 0; base < n; base += chunk) {
    reqs.clear();
    for (uint64_t i = base; i < n && i < base + chunk; ++i) {
      for (size_t b = 0; b < value.size(); b += 8) {
        const uint64_t x = rng();
        std::memcpy(&value[b], &x, std::min<size_t>(8, value.size() - b));
      }
      kvdpb::InternalRequest r;
      r.mutable_put()->set_key(KeyOf(key_space > 0 ? key_rng() % key_space : i));
      r.mutable_put()->set_value(value);
      reqs.push_back(std::move(r));
    }
    Timer t;
    ApplyAll(o, reqs, batch);
    *wall_s += t.wall();
    *cpu_s += t.cpu();
  }
}

// A rate (count per wall second and per CPU second) or, with wall_s = 0, a plain value.
struct Row {
  std::string name;
  double count;
  double wall_s;
  double cpu_s;
  std::string unit;
};

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) Die("missing value for " + a);
    const std::string v = argv[++i];
    if (a == "--dir") {
      c.dir = v;
      continue;
    }
    const uint64_t n = std::strtoull(v.c_str(), nullptr, 10);
    if (a == "--keys") {
      c.keys = n;
    } else if (a == "--keys-1k") {
      c.keys_1k = n;
    } else if (a == "--batch") {
      c.batch = n;
    } else if (a == "--random-puts") {
      c.random_puts = n;
    } else if (a == "--point-reads") {
      c.point_reads = n;
    } else if (a == "--prefix-reads") {
      c.prefix_reads = n;
    } else if (a == "--watchers") {
      c.watchers = n;
    } else if (a == "--watch-revisions") {
      c.watch_revisions = n;
    } else {
      Die("unknown option " + a);
    }
  }
  if (c.keys < 100 || c.batch == 0) Die("--keys must be >= 100 and --batch >= 1");
  bool own_dir = false;
  if (c.dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "storage-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp failed");
    c.dir = tmpl;
    own_dir = true;
  } else {
    std::error_code ec;  // a given --dir may not exist yet
    std::filesystem::create_directories(c.dir, ec);
    if (ec) Die("cannot create --dir " + c.dir + ": " + ec.message());
    // A store left by an earlier run already has applied indexes above the ones this run
    // numbers from 1, so every Apply would be skipped as a replay and the figures would lie.
    const bool empty = std::filesystem::is_empty(c.dir, ec);
    if (ec) Die("cannot list --dir " + c.dir + ": " + ec.message());
    if (!empty) Die("--dir " + c.dir + " must be empty");
  }
  std::vector<Row> rows;
  const auto t_start = Clock::now();

  // 1. 256 B puts, then footprint at c.keys keys, then reads on that data.
  {
    const int64_t rss0 = RssBytes();
    Opened o = Open(c.dir + "/v256");
    double wall = 0;
    double cpu = 0;
    LoadPuts(o, c.keys, 256, c.batch, &wall, &cpu);
    rows.push_back({"put 256 B values", static_cast<double>(c.keys), wall, cpu, "puts/s"});
    const int64_t rss1 = RssBytes();
    Check(o.engine->CompactAll(), "flush+compact");
    const int64_t disk = DirBytes(c.dir + "/v256");
    const double n = static_cast<double>(c.keys);
    rows.push_back({"memory per key (RSS delta, " + std::to_string(c.keys) + " keys)",
                    static_cast<double>(rss1 - rss0) / n, 0, 0, "bytes/key"});
    rows.push_back({"disk per key (after compaction, " + std::to_string(c.keys) + " keys)",
                    static_cast<double>(disk) / n, 0, 0, "bytes/key"});

    std::mt19937_64 rng(2);
    etcdserverpb::RangeRequest req;
    etcdserverpb::RangeResponse resp;
    Timer t;
    for (uint64_t i = 0; i < c.point_reads; ++i) {
      req.set_key(KeyOf(rng() % c.keys));
      resp.Clear();
      Check(o.store->Range(req, &resp), "range");
      if (resp.kvs_size() != 1) Die("point range found no key");
    }
    rows.push_back(
        {"point range", static_cast<double>(c.point_reads), t.wall(), t.cpu(), "ranges/s"});

    // Prefixes "key/NNNNNN" cover 100 keys each.
    t = Timer();
    uint64_t kvs = 0;
    for (uint64_t i = 0; i < c.prefix_reads; ++i) {
      const std::string p = KeyOf((rng() % (c.keys / 100)) * 100).substr(0, 10);
      req.set_key(p);
      req.set_range_end(kvstore::PrefixRangeEnd(p));
      resp.Clear();
      Check(o.store->Range(req, &resp), "prefix range");
      kvs += static_cast<uint64_t>(resp.kvs_size());
    }
    req.clear_range_end();
    rows.push_back({"prefix range (100 keys)", static_cast<double>(c.prefix_reads), t.wall(),
                    t.cpu(), "ranges/s"});
    if (kvs != c.prefix_reads * 100) Die("prefix ranges returned " + std::to_string(kvs) + " kvs");

    if (c.random_puts > 0) {
      wall = 0;
      cpu = 0;
      LoadPuts(o, c.random_puts, 256, c.batch, &wall, &cpu, c.keys);
      rows.push_back({"put 256 B values, random existing keys", static_cast<double>(c.random_puts),
                      wall, cpu, "puts/s"});
    }
  }

  // 2. 1 KiB puts on a fresh store.
  if (c.keys_1k > 0) {
    Opened o = Open(c.dir + "/v1k");
    double wall = 0;
    double cpu = 0;
    LoadPuts(o, c.keys_1k, 1024, c.batch, &wall, &cpu);
    rows.push_back({"put 1 KiB values", static_cast<double>(c.keys_1k), wall, cpu, "puts/s"});
  }

  // 3. Watch fan-out: c.watchers watchers on one prefix (100 per stream), one put per revision
  //    applied one at a time, every stream drained after each revision as the server would.
  {
    Opened o = Open(c.dir + "/watch");
    kvstore::WatchableStore watch(o.store.get(), kvstore::WatchOptions{});
    o.store->SetObserver(&watch);
    std::vector<std::unique_ptr<kvstore::WatchStream>> streams;
    const uint64_t per_stream = 100;
    for (uint64_t i = 0; i < c.watchers; ++i) {
      if (i % per_stream == 0) {
        streams.emplace_back();
        Check(watch.OpenStream([] {}, &streams.back()), "open stream");
      }
      etcdserverpb::WatchRequest wr;
      wr.mutable_create_request()->set_key("cfg/");
      wr.mutable_create_request()->set_range_end("cfg0");
      Check(streams.back()->HandleRequest(wr), "create watcher");
    }
    // Polled in wire form, as the server's Watch streams do.
    std::vector<kvstore::EncodedWatchResponse> out;
    for (auto& s : streams) {
      out.clear();
      while (s->PollEncoded(1024, &out) > 0) {
      }
    }
    std::vector<kvdpb::InternalRequest> reqs(1);
    reqs[0].mutable_put()->set_key("cfg/service/timeout");
    uint64_t events = 0;
    Timer t;
    double apply_wall = 0;  // the apply thread's share: put + fan-out into the stream queues
    for (uint64_t r = 0; r < c.watch_revisions; ++r) {
      reqs[0].mutable_put()->set_value(std::to_string(r));
      const Timer apply;
      ApplyAll(o, reqs, 1);
      apply_wall += apply.wall();
      for (auto& s : streams) {
        out.clear();
        while (s->PollEncoded(1024, &out) > 0) {
        }
        for (const auto& resp : out) events += resp.events.size();
      }
    }
    const double wall = t.wall();
    const double cpu = t.cpu();
    if (events != c.watchers * c.watch_revisions) Die("watch: events lost");
    rows.push_back(
        {"watch events delivered (" + std::to_string(c.watchers) + " watchers, 1 prefix)",
         static_cast<double>(events), wall, cpu, "events/s"});
    rows.push_back({"watch revisions fanned out (put + fan-out + poll)",
                    static_cast<double>(c.watch_revisions), wall, cpu, "revisions/s"});
    rows.push_back({"watch revisions through the apply thread (put + fan-out)",
                    static_cast<double>(c.watch_revisions), apply_wall, apply_wall, "revisions/s"});
    o.store->SetObserver(nullptr);
    streams.clear();
  }

  std::printf("storage_bench:");
  for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf(
      "\n  (keys=%llu keys-1k=%llu batch=%llu point-reads=%llu prefix-reads=%llu "
      "watchers=%llu watch-revisions=%llu, total %.1f s)\n",
      static_cast<unsigned long long>(c.keys), static_cast<unsigned long long>(c.keys_1k),
      static_cast<unsigned long long>(c.batch), static_cast<unsigned long long>(c.point_reads),
      static_cast<unsigned long long>(c.prefix_reads), static_cast<unsigned long long>(c.watchers),
      static_cast<unsigned long long>(c.watch_revisions), Seconds(t_start));
  std::printf("| %-58s | %12s | %12s | %-11s |\n", "measure", "per wall s", "per CPU s", "unit");
  std::printf("|%s|%s|%s|%s|\n", std::string(60, '-').c_str(), std::string(14, '-').c_str(),
              std::string(14, '-').c_str(), std::string(13, '-').c_str());
  for (const auto& r : rows) {
    if (r.wall_s == 0) {
      std::printf("| %-58s | %12.0f | %12s | %-11s |\n", r.name.c_str(), r.count, "",
                  r.unit.c_str());
    } else {
      std::printf("| %-58s | %12.0f | %12.0f | %-11s |\n", r.name.c_str(), r.count / r.wall_s,
                  r.count / r.cpu_s, r.unit.c_str());
    }
  }
  if (own_dir) {
    std::error_code ec;
    std::filesystem::remove_all(c.dir, ec);
  }
  return 0;
}
