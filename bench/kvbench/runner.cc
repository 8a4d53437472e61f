#include "bench/kvbench/runner.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench/kvbench/keys.h"
#include "bench/kvbench/rate_limiter.h"
#include "proto/rpc.grpc.pb.h"
#include "proto/rpc.pb.h"

namespace kvbench {

namespace pb = etcdserverpb;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kErrorMessagesMax = 32;                  // distinct messages kept
constexpr auto kErrorBackoff = std::chrono::milliseconds(10);  // before retrying after an error
constexpr auto kConnectTimeout = std::chrono::seconds(20);

std::int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<grpc::Channel> Connect(const std::string& endpoint, std::size_t conn_id) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(-1);
  // Each connection its own TCP connection: private subchannel pool plus a distinct argument.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("kvbench.conn_id", static_cast<int>(conn_id));
  auto channel = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + kConnectTimeout)) {
    throw std::runtime_error("cannot connect to " + endpoint);
  }
  return channel;
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

class Engine;

// One closed-loop client: at most one operation in flight.
class Client {
 public:
  virtual ~Client() = default;
  // Issues the next operation, or reports itself finished to the engine.
  virtual void Start() = 0;
  // Cancels whatever it has in flight (streams); called once at the end.
  virtual void Cancel() {}
};

// Owns the clients, the operation budget, the statistics and the pacing thread.
class Engine {
 public:
  explicit Engine(const Options& o) : o_(o) {
    if (o.duration_s) {
      end_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(*o.duration_s));
    }
  }

  const Options& options() const { return o_; }

  // Claims operation number `*n`; false when the run's budget (total or duration) is used up.
  bool Claim(std::uint64_t* n) {
    if (stopping_.load(std::memory_order_relaxed)) return false;
    if (end_ && Clock::now() >= *end_) return false;
    *n = issued_.fetch_add(1, std::memory_order_relaxed);
    return !(o_.total && *n >= *o_.total);
  }

  // Records one finished operation that started at `start_ns`.
  void Record(std::int64_t start_ns, const grpc::Status& status) {
    const std::int64_t now = NowNs();
    if (status.ok()) {
      ok_.fetch_add(1, std::memory_order_relaxed);
      latency_.Record(static_cast<std::uint64_t>(std::max<std::int64_t>(now - start_ns, 0) / 1000));
      std::int64_t prev = last_success_ns_.load();
      while (prev < now && !last_success_ns_.compare_exchange_weak(prev, now)) {
      }
      if (prev < now) UpdateGap(now - prev);
    } else {
      errors_.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard<std::mutex> lock(mu_);
      const std::string key = std::to_string(status.error_code()) + ": " + status.error_message();
      auto it = error_messages_.find(key);
      if (it != error_messages_.end()) {
        ++it->second;
      } else if (error_messages_.size() < kErrorMessagesMax) {
        error_messages_[key] = 1;
      }
    }
  }

  // Schedules client `c`'s next operation: through the pacer when rate-limited or after an
  // error (so a failing server is not hammered and callbacks never recurse), else inline.
  void Next(Client* c, bool after_error) {
    if (!limiter_ && !after_error) {
      c->Start();
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    // Bounded: each client is queued at most once at a time, so size <= clients.
    const auto when = after_error ? Clock::now() + kErrorBackoff : Clock::time_point::min();
    if (after_error) {
      delayed_.push({when, c});
    } else {
      ready_.push_back(c);
    }
    cv_.notify_all();
  }

  // Called once by each client when it will issue nothing more.
  void ClientDone() {
    std::lock_guard<std::mutex> lock(mu_);
    ++done_clients_;
    cv_.notify_all();
  }

  // Runs the clients until all are done; returns the elapsed time. Progress on stderr if it
  // is a terminal and wanted.
  double RunClients(std::vector<std::unique_ptr<Client>>& clients) {
    const auto start = Clock::now();
    start_ns_ = NowNs();
    last_success_ns_ = start_ns_;
    if (o_.rate_per_s > 0) {
      limiter_.emplace(o_.rate_per_s, std::max<std::uint64_t>(1, clients.size()), start);
    }
    std::thread progress;
    std::atomic<bool> progress_stop{false};
    if (o_.progress && isatty(STDERR_FILENO)) {
      progress = std::thread([&] { Progress(progress_stop, start); });
    }
    for (auto& c : clients) Next(c.get(), false);
    Pace(clients.size());
    const auto finished = Clock::now();
    const std::int64_t end_ns = NowNs();
    if (end_ns > last_success_ns_.load()) UpdateGap(end_ns - last_success_ns_.load());
    progress_stop = true;
    if (progress.joinable()) progress.join();
    return std::chrono::duration<double>(finished - start).count();
  }

  // Asks every client to stop issuing (used by the watch workload's drain).
  void Stop() { stopping_ = true; }

  void Fill(Result* r) {
    r->ok = ok_.load();
    r->errors = errors_.load();
    r->latency = latency_.Snapshot();
    r->max_success_gap_ms = static_cast<double>(max_gap_ns_.load()) / 1e6;
    std::lock_guard<std::mutex> lock(mu_);
    r->error_messages = error_messages_;
  }

 private:
  void UpdateGap(std::int64_t gap_ns) {
    std::int64_t g = max_gap_ns_.load();
    while (g < gap_ns && !max_gap_ns_.compare_exchange_weak(g, gap_ns)) {
    }
  }

  // The pacing loop, on the calling thread, until every client is done: starts queued clients
  // at the limiter's slots (or at once) and delayed ones when their backoff is over.
  void Pace(std::size_t client_count) {
    std::unique_lock<std::mutex> lock(mu_);
    while (done_clients_ < client_count) {
      const auto now = Clock::now();
      Client* c = nullptr;
      if (!delayed_.empty() && delayed_.top().when <= now) {
        c = delayed_.top().client;
        delayed_.pop();
      } else if (!ready_.empty()) {
        c = ready_.front();
        ready_.pop_front();
      }
      if (c == nullptr) {
        if (!delayed_.empty()) {
          cv_.wait_until(lock, delayed_.top().when);
        } else {
          cv_.wait_for(lock, std::chrono::milliseconds(100));
        }
        continue;
      }
      if (limiter_) {
        const auto slot = limiter_->Reserve(now);
        if (slot > now) {
          lock.unlock();
          std::this_thread::sleep_until(slot);
          lock.lock();
        }
      }
      lock.unlock();
      c->Start();
      lock.lock();
    }
  }

  void Progress(const std::atomic<bool>& stop, Clock::time_point start) {
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      const double t = std::chrono::duration<double>(Clock::now() - start).count();
      const std::uint64_t done = ok_.load() + errors_.load();
      double frac = 0;
      if (o_.total) frac = static_cast<double>(done) / static_cast<double>(*o_.total);
      if (o_.duration_s) frac = std::max(frac, t / *o_.duration_s);
      frac = std::clamp(frac, 0.0, 1.0);
      const auto bar = static_cast<int>(frac * 30);
      std::fprintf(stderr, "\r[%-30s] %3.0f%%  %llu ops  %.0f ops/s  %llu errors ",
                   std::string(static_cast<std::size_t>(bar), '=').c_str(), frac * 100,
                   static_cast<unsigned long long>(done), t > 0 ? static_cast<double>(done) / t : 0,
                   static_cast<unsigned long long>(errors_.load()));
    }
    std::fprintf(stderr, "\n");
  }

  struct Delayed {
    Clock::time_point when;
    Client* client;
    bool operator<(const Delayed& other) const { return when > other.when; }  // min-heap
  };

  const Options o_;
  std::optional<Clock::time_point> end_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> issued_{0};
  std::atomic<std::uint64_t> ok_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<std::int64_t> last_success_ns_{0};
  std::atomic<std::int64_t> max_gap_ns_{0};
  std::int64_t start_ns_ = 0;
  ShardedHistogram latency_;
  std::optional<RateLimiter> limiter_;  // set before any client starts, then read-only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Client*> ready_;
  std::priority_queue<Delayed> delayed_;
  std::size_t done_clients_ = 0;
  std::map<std::string, std::uint64_t> error_messages_;
};

// The shared state of the watch workload, indexed by put operation number: when each put was
// sent and acknowledged, and how many events it produced.
struct WatchState {
  explicit WatchState(std::uint64_t puts) : sent_ns(puts), ack_ns(puts), events_per_put(puts) {
    for (std::uint64_t i = 0; i < puts; ++i) {
      sent_ns[i].store(0, std::memory_order_relaxed);
      ack_ns[i].store(0, std::memory_order_relaxed);
      events_per_put[i].store(0, std::memory_order_relaxed);
    }
  }
  std::vector<std::atomic<std::int64_t>> sent_ns;  // 0: not sent
  std::vector<std::atomic<std::int64_t>> ack_ns;   // 0: not acknowledged (yet, or ever)
  std::vector<std::atomic<std::uint32_t>> events_per_put;
  std::atomic<std::uint64_t> created{0};
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> before_ack{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> stalled_created{0};
  ShardedHistogram latency;       // ack -> event
  ShardedHistogram send_latency;  // send -> event
};

// Unary KV and lease operations. With `watch` (watch workload), puts carry their operation
// number in the value and record their send and ack times there.
class UnaryClient : public Client {
 public:
  UnaryClient(Engine* engine, const std::shared_ptr<grpc::Channel>& channel, std::size_t id,
              WatchState* watch = nullptr)
      : e_(engine),
        o_(engine->options()),
        kv_(pb::KV::NewStub(channel)),
        lease_(pb::Lease::NewStub(channel)),
        picker_(o_.key_space_size, o_.seed * 1'000'003 + id),
        value_(MakeValue(o_.value_size, o_.seed + id)),
        watch_(watch) {}

  void Start() override {
    std::uint64_t n = 0;
    if (!e_->Claim(&n)) {
      e_->ClientDone();
      return;
    }
    ctx_ = std::make_unique<grpc::ClientContext>();
    ctx_->set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(o_.rpc_timeout_ms));
    const std::uint64_t k = o_.sequential_keys ? n % o_.key_space_size : picker_.Next();
    const std::string key = FormatKey(o_.key_prefix, k, o_.key_size);
    start_ns_ = NowNs();
    if (watch_ != nullptr && n < watch_->sent_ns.size()) watch_->sent_ns[n].store(start_ns_);
    auto done = [this, n](grpc::Status s) { Done(n, s); };
    switch (o_.workload) {
      case Workload::kPut:
      case Workload::kWatch:
        put_.set_key(key);
        if (watch_ != nullptr) {
          // The value names the operation, so a watcher can find the put's ack time.
          std::string v = std::to_string(n) + "-";
          if (v.size() < o_.value_size) v += value_.substr(0, o_.value_size - v.size());
          put_.set_value(v);
        } else {
          put_.set_value(value_);
        }
        kv_->async()->Put(ctx_.get(), &put_, &put_resp_, done);
        break;
      case Workload::kRange:
        range_.set_key(key);
        range_.set_serializable(o_.serializable);
        kv_->async()->Range(ctx_.get(), &range_, &range_resp_, done);
        break;
      case Workload::kDelete:
        del_.set_key(key);
        kv_->async()->DeleteRange(ctx_.get(), &del_, &del_resp_, done);
        break;
      case Workload::kTxn: {
        txn_.Clear();
        auto* cmp = txn_.add_compare();
        cmp->set_key(key);
        cmp->set_target(pb::Compare::VERSION);
        cmp->set_result(pb::Compare::NOT_EQUAL);
        cmp->set_version(-1);  // always true: a transaction that always commits its puts
        for (std::size_t i = 0; i < o_.txn_ops; ++i) {
          auto* put = txn_.add_success()->mutable_request_put();
          put->set_key(FormatKey(o_.key_prefix, (k + i) % o_.key_space_size, o_.key_size));
          put->set_value(value_);
        }
        kv_->async()->Txn(ctx_.get(), &txn_, &txn_resp_, done);
        break;
      }
      case Workload::kLeaseGrant:
        grant_.set_ttl(o_.lease_ttl_s);
        lease_->async()->LeaseGrant(ctx_.get(), &grant_, &grant_resp_, done);
        break;
      case Workload::kLeaseKeepAlive:
        throw std::logic_error("keep-alive runs on KeepAliveClient");
    }
  }

 private:
  void Done(std::uint64_t n, const grpc::Status& s) {
    e_->Record(start_ns_, s);
    if (s.ok() && watch_ != nullptr && n < watch_->ack_ns.size()) watch_->ack_ns[n].store(NowNs());
    e_->Next(this, !s.ok());
  }

  Engine* e_;
  const Options& o_;
  std::unique_ptr<pb::KV::Stub> kv_;
  std::unique_ptr<pb::Lease::Stub> lease_;
  KeyPicker picker_;
  std::string value_;
  WatchState* watch_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::int64_t start_ns_ = 0;
  pb::PutRequest put_;
  pb::PutResponse put_resp_;
  pb::RangeRequest range_;
  pb::RangeResponse range_resp_;
  pb::DeleteRangeRequest del_;
  pb::DeleteRangeResponse del_resp_;
  pb::TxnRequest txn_;
  pb::TxnResponse txn_resp_;
  pb::LeaseGrantRequest grant_;
  pb::LeaseGrantResponse grant_resp_;
};

// One lease kept alive over its own LeaseKeepAlive stream: each operation is one request and
// its response.
class KeepAliveClient
    : public Client,
      public grpc::ClientBidiReactor<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse> {
 public:
  KeepAliveClient(Engine* engine, const std::shared_ptr<grpc::Channel>& channel)
      : e_(engine), lease_(pb::Lease::NewStub(channel)) {
    // Grant the lease synchronously (setup, not measured).
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kConnectTimeout);
    pb::LeaseGrantRequest req;
    req.set_ttl(engine->options().lease_ttl_s);
    pb::LeaseGrantResponse resp;
    const grpc::Status s = lease_->LeaseGrant(&ctx, req, &resp);
    if (!s.ok()) throw std::runtime_error("LeaseGrant: " + s.error_message());
    req_.set_id(resp.id());
    lease_->async()->LeaseKeepAlive(&ctx_, this);
    StartCall();
  }

  void Start() override {
    std::uint64_t n = 0;
    if (!e_->Claim(&n)) {
      Finish();
      return;
    }
    start_ns_ = NowNs();
    // One operation on the stream at a time: write, read its response, then the next write
    // (a new write must not start before the previous write's completion has been delivered).
    StartWrite(&req_);
  }

  void Cancel() override { ctx_.TryCancel(); }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      e_->Record(start_ns_, grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive write failed"));
      Finish();
      return;
    }
    StartRead(&resp_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      e_->Record(start_ns_, grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream ended"));
      Finish();
      return;
    }
    e_->Record(start_ns_, resp_.ttl() > 0
                              ? grpc::Status::OK
                              : grpc::Status(grpc::StatusCode::NOT_FOUND, "lease expired"));
    e_->Next(this, false);
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard<std::mutex> lock(mu_);
    stream_done_ = true;
    cv_.notify_all();
  }

  // Blocks until gRPC is finished with this reactor (call before destruction).
  void WaitDone() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, kConnectTimeout, [this] { return stream_done_; })) {
      ctx_.TryCancel();
      cv_.wait(lock, [this] { return stream_done_; });
    }
  }

 private:
  void Finish() {
    if (finished_.exchange(true)) return;
    // No WritesDone: a write may still be outstanding. Cancelling ends the call on both sides.
    ctx_.TryCancel();  // the server keeps its side open; cancel to end the call now
    e_->ClientDone();
  }

  Engine* e_;
  std::unique_ptr<pb::Lease::Stub> lease_;
  grpc::ClientContext ctx_;
  pb::LeaseKeepAliveRequest req_;
  pb::LeaseKeepAliveResponse resp_;
  std::int64_t start_ns_ = 0;
  std::atomic<bool> finished_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stream_done_ = false;
};

// One Watch stream carrying `watchers` watchers of the same key or prefix. A `stall` stream
// stops reading once its watchers are created (a slow consumer): the server's writes to it
// back up through HTTP/2 flow control.
class WatchStream : public grpc::ClientBidiReactor<pb::WatchRequest, pb::WatchResponse> {
 public:
  WatchStream(const std::shared_ptr<grpc::Channel>& channel, WatchState* state,
              std::size_t watchers, const std::string& key, const std::string& range_end,
              bool stall = false)
      : stub_(pb::Watch::NewStub(channel)),
        state_(state),
        to_create_(watchers),
        to_confirm_(watchers),
        stall_(stall) {
    auto* create = req_.mutable_create_request();
    create->set_key(key);
    create->set_range_end(range_end);
    stub_->async()->Watch(&ctx_, this);
    StartRead(&resp_);
    if (to_create_ > 0) {
      --to_create_;
      StartWrite(&req_);
    }
    StartCall();
  }

  // Creates are written one at a time (a stream allows one outstanding write).
  void OnWriteDone(bool ok) override {
    if (!ok) return;
    if (to_create_ > 0) {
      --to_create_;
      StartWrite(&req_);
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      if (!cancelled_) state_->errors.fetch_add(1);
      return;
    }
    const std::int64_t now = NowNs();
    if (resp_.canceled()) state_->errors.fetch_add(1);
    if (stall_) {
      if (resp_.created()) {
        state_->stalled_created.fetch_add(1);
        --to_confirm_;
      }
      if (to_confirm_ > 0) StartRead(&resp_);  // else: stop reading for good
      return;
    }
    if (resp_.created()) state_->created.fetch_add(1);
    for (const auto& ev : resp_.events()) {
      state_->events.fetch_add(1, std::memory_order_relaxed);
      const std::string& v = ev.kv().value();
      const std::uint64_t n = std::strtoull(v.c_str(), nullptr, 10);
      if (n >= state_->ack_ns.size()) continue;  // not one of ours
      state_->events_per_put[n].fetch_add(1, std::memory_order_relaxed);
      const std::int64_t sent = state_->sent_ns[n].load();
      if (sent != 0) {
        state_->send_latency.Record(
            static_cast<std::uint64_t>(std::max<std::int64_t>(now - sent, 0) / 1000));
      }
      std::int64_t ack = state_->ack_ns[n].load();
      if (ack == 0) {
        state_->before_ack.fetch_add(1, std::memory_order_relaxed);
        ack = now;
      }
      state_->latency.Record(
          static_cast<std::uint64_t>(std::max<std::int64_t>(now - ack, 0) / 1000));
    }
    StartRead(&resp_);
  }

  void OnDone(const grpc::Status&) override {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

  void Cancel() {
    cancelled_ = true;
    ctx_.TryCancel();
  }
  void WaitDone() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

 private:
  std::unique_ptr<pb::Watch::Stub> stub_;
  WatchState* state_;
  std::size_t to_create_;
  std::size_t to_confirm_;  // created responses still expected (stall streams)
  const bool stall_;
  grpc::ClientContext ctx_;
  pb::WatchRequest req_;
  pb::WatchResponse resp_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

std::vector<std::shared_ptr<grpc::Channel>> ConnectAll(const Options& o, std::size_t count) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (std::size_t i = 0; i < count; ++i) {
    channels.push_back(Connect(o.endpoints[i % o.endpoints.size()], i));
  }
  return channels;
}

Result RunWatch(const Options& o) {
  Result r;
  r.workload = o.workload;
  r.options = o;
  const std::uint64_t puts = o.WatchPuts();
  WatchState state(puts);
  Options put_opts = o;
  put_opts.total = puts;
  put_opts.duration_s.reset();
  if (!o.watch_prefix) {
    put_opts.key_space_size = 1;
    put_opts.sequential_keys = true;
  }
  const std::string key = FormatKey(o.key_prefix, 0, o.key_size);
  const std::string range_end = o.watch_prefix ? PrefixEnd(o.key_prefix) : std::string();
  const std::string watch_key = o.watch_prefix ? o.key_prefix : key;

  // Watch streams get their own connections (spread over the endpoints), so that putters and
  // watchers do not share a transport.
  auto watch_channels = ConnectAll(o, std::min(o.watch_streams, o.conns));
  std::vector<std::unique_ptr<WatchStream>> streams;
  for (std::size_t s = 0; s < o.watch_streams; ++s) {
    const std::size_t n = o.watchers / o.watch_streams + (s < o.watchers % o.watch_streams ? 1 : 0);
    streams.push_back(std::make_unique<WatchStream>(watch_channels[s % watch_channels.size()],
                                                    &state, n, watch_key, range_end));
  }
  // Slow consumers: their own connections too, so that only their streams back up.
  auto stalled_channels = ConnectAll(o, std::min<std::size_t>(o.stalled_streams, o.conns));
  for (std::size_t s = 0; s < o.stalled_streams; ++s) {
    streams.push_back(std::make_unique<WatchStream>(stalled_channels[s % stalled_channels.size()],
                                                    &state, 1, watch_key, range_end,
                                                    /*stall=*/true));
  }
  const auto setup_deadline = Clock::now() + std::chrono::seconds(60) +
                              std::chrono::milliseconds(o.watchers);  // 1 ms per watcher
  while ((state.created.load() < o.watchers || state.stalled_created.load() < o.stalled_streams) &&
         Clock::now() < setup_deadline && state.errors.load() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const bool all_created =
      state.created.load() >= o.watchers && state.stalled_created.load() >= o.stalled_streams;

  Engine engine(put_opts);
  auto channels = ConnectAll(put_opts, o.conns);
  std::vector<std::unique_ptr<Client>> clients;
  if (all_created) {
    for (std::size_t i = 0; i < o.clients; ++i) {
      clients.push_back(
          std::make_unique<UnaryClient>(&engine, channels[i % channels.size()], i, &state));
    }
    r.elapsed_s = engine.RunClients(clients);
  }
  engine.Fill(&r);
  r.events_expected = r.ok * o.watchers;
  // Events of acknowledged puts (a put that timed out may still have been applied, and its
  // events arrive too; they are counted in events_received only).
  auto acked_events = [&state] {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < state.ack_ns.size(); ++i) {
      if (state.ack_ns[i].load() != 0) sum += state.events_per_put[i].load();
    }
    return sum;
  };
  // Wait (bounded) for the events of acknowledged puts that are still on their way.
  const auto drain_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(o.drain_timeout_s));
  while (all_created && acked_events() < r.events_expected && Clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& s : streams) s->Cancel();
  for (auto& s : streams) s->WaitDone();
  r.watchers_created = state.created.load();
  r.events_received = state.events.load();
  r.events_of_acked_puts = acked_events();
  r.event_send_latency = state.send_latency.Snapshot();
  r.events_before_ack = state.before_ack.load();
  r.watch_errors = state.errors.load();
  r.stalled_created = state.stalled_created.load();
  r.event_latency = state.latency.Snapshot();
  if (!all_created) {
    throw std::runtime_error("only " + std::to_string(r.watchers_created) + " of " +
                             std::to_string(o.watchers) + " watchers and " +
                             std::to_string(r.stalled_created) + " of " +
                             std::to_string(o.stalled_streams) + " stalled watchers were created");
  }
  return r;
}

}  // namespace

Result Run(const Options& o) {
  if (o.workload == Workload::kWatch) return RunWatch(o);
  Result r;
  r.workload = o.workload;
  r.options = o;
  auto channels = ConnectAll(o, o.conns);
  Engine engine(o);
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<KeepAliveClient*> streams;
  for (std::size_t i = 0; i < o.clients; ++i) {
    const auto& channel = channels[i % channels.size()];
    if (o.workload == Workload::kLeaseKeepAlive) {
      auto c = std::make_unique<KeepAliveClient>(&engine, channel);
      streams.push_back(c.get());
      clients.push_back(std::move(c));
    } else {
      clients.push_back(std::make_unique<UnaryClient>(&engine, channel, i));
    }
  }
  r.elapsed_s = engine.RunClients(clients);
  for (auto* s : streams) s->WaitDone();
  engine.Fill(&r);
  return r;
}

}  // namespace kvbench
