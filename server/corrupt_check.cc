#include "server/corrupt_check.h"

#include <string>
#include <utility>
#include <vector>

#include "server/log.h"
#include "server/thread_name.h"

namespace server {

// The answers of one check. Shared with the gRPC completion callbacks, which may run after the
// checker gave up on them (Stop, or a peer past its deadline plus slack).
struct CorruptChecker::Round {
  struct Answer {
    uint64_t member = 0;
    bool ok = false;
    std::string error;
    kvdpb::PeerHashKVResponse resp;
  };
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = 0;
  bool abandoned = false;
  std::vector<Answer> answers;  // one per peer asked, filled in place
};

CorruptChecker::CorruptChecker(Node* node, CorruptCheckOptions options)
    : node_(node), options_(options) {
  SERVER_CHECK(options_.period.count() > 0, "corruption check period must be positive");
}

CorruptChecker::~CorruptChecker() { Stop(); }

void CorruptChecker::Start() {
  std::lock_guard<std::mutex> lk(mu_);
  SERVER_CHECK(!started_, "corruption checker started twice");
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void CorruptChecker::Stop() {
  std::shared_ptr<Round> round;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return;
    stop_ = true;
    round = round_;
  }
  cv_.notify_all();
  if (round) {
    std::lock_guard<std::mutex> lk(round->mu);
    round->abandoned = true;
    round->cv.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void CorruptChecker::Trigger() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    triggered_ = true;
  }
  cv_.notify_all();
}

void CorruptChecker::Run() {
  NameThisThread("kvd-corrupt");
  auto next = std::chrono::steady_clock::now() + options_.period;
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    cv_.wait_until(lk, next, [&] { return stop_ || triggered_; });
    if (stop_) break;
    if (!triggered_ && std::chrono::steady_clock::now() < next) continue;  // spurious
    triggered_ = false;
    lk.unlock();
    CheckOnce();
    lk.lock();
    next = std::chrono::steady_clock::now() + options_.period;
  }
}

void CorruptChecker::CheckOnce() {
  // Only the leader checks (etcd); a follower's trigger after a compaction is a no-op.
  if (!node_->is_leader()) return;
  uint32_t hash = 0;
  int64_t compact_rev = 0;
  int64_t rev = 0;
  if (kvstore::Status s = node_->store().HashKV(0, &hash, &compact_rev, &rev); !s.ok()) {
    KVD_LOG("warning: corruption check: cannot hash the local store: %s", s.message().c_str());
    return;
  }

  auto round = std::make_shared<Round>();
  for (const MemberInfo& m : node_->Members()) {
    // Learners serve no ReadIndex; they are not checked (they cannot vote either).
    if (m.id == node_->member_id() || m.is_learner) continue;
    round->answers.push_back(Round::Answer{m.id, false, "no answer", {}});
  }
  round->pending = round->answers.size();
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return;
    round_ = round;
  }
  const int timeout_ms = static_cast<int>(options_.peer_timeout.count());
  for (size_t i = 0; i < round->answers.size(); ++i) {
    node_->AskPeerHashKV(round->answers[i].member, rev, timeout_ms,
                         [round, i](const grpc::Status& st, const kvdpb::PeerHashKVResponse& r) {
                           std::lock_guard<std::mutex> lk(round->mu);
                           Round::Answer& a = round->answers[i];
                           a.ok = st.ok();
                           if (st.ok()) {
                             a.resp = r;
                           } else {
                             a.error = st.error_message();
                           }
                           --round->pending;
                           round->cv.notify_all();
                         });
  }
  // gRPC runs every callback by its deadline; the slack only covers a late scheduler.
  std::vector<Round::Answer> answers;
  {
    std::unique_lock<std::mutex> lk(round->mu);
    round->cv.wait_for(lk, options_.peer_timeout + std::chrono::seconds(2),
                       [&] { return round->pending == 0 || round->abandoned; });
    if (round->abandoned) return;
    answers = round->answers;  // a straggler's answer counts as "no answer"
    for (Round::Answer& a : answers) {
      if (a.ok || a.error != "no answer") continue;
      a.error = "no answer in time";
    }
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    round_.reset();
  }

  size_t compared = 0;
  size_t mismatched = 0;
  size_t skipped = 0;
  std::vector<etcdserverpb::AlarmMember> active = node_->store().Alarms();
  for (const Round::Answer& a : answers) {
    if (!a.ok) {
      ++skipped;
      KVD_LOG("warning: corruption check: member %s skipped at revision %lld: %s",
              FormatId(a.member).c_str(), static_cast<long long>(rev), a.error.c_str());
      continue;
    }
    if (a.resp.compact_revision() != compact_rev) {
      ++skipped;  // compacted differently (a compaction in between): not comparable
      continue;
    }
    ++compared;
    if (a.resp.hash() == hash) continue;
    ++mismatched;
    mismatches_.fetch_add(1);
    KVD_LOG(
        "error: corruption check: member %s's hash %u != leader %s's hash %u at revision %lld "
        "(compact revision %lld); raising the CORRUPT alarm for %s",
        FormatId(a.member).c_str(), a.resp.hash(), FormatId(node_->member_id()).c_str(), hash,
        static_cast<long long>(rev), static_cast<long long>(compact_rev),
        FormatId(a.member).c_str());
    bool already = false;
    for (const auto& am : active) {
      already = already || (am.memberid() == a.member && am.alarm() == etcdserverpb::CORRUPT);
    }
    if (already) continue;
    kvdpb::InternalRequest alarm;
    alarm.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
    alarm.mutable_alarm()->set_memberid(a.member);
    alarm.mutable_alarm()->set_alarm(etcdserverpb::CORRUPT);
    const uint64_t member = a.member;
    node_->Propose(std::move(alarm), [member](const kvstore::Status& s, kvdpb::InternalResponse*) {
      if (!s.ok()) {
        // The next check proposes it again.
        KVD_LOG("warning: corruption check: proposing the CORRUPT alarm for %s failed: %s",
                FormatId(member).c_str(), s.message().c_str());
      }
    });
  }
  checks_.fetch_add(1);
  KVD_LOG(
      "corruption check at revision %lld (compact revision %lld, hash %u): %zu peer(s) compared, "
      "%zu mismatched, %zu skipped",
      static_cast<long long>(rev), static_cast<long long>(compact_rev), hash, compared, mismatched,
      skipped);
}

}  // namespace server
