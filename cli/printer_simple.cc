// etcdctl's "simple" format (ctlv3/command/printer_simple.go).
#include "cli/printer.h"

namespace cli {
namespace {

class SimplePrinter final : public Printer {
 public:
  explicit SimplePrinter(const PrinterOptions& options) : o_(options), out_(*options.out) {}

  Status Get(const etcdserverpb::RangeResponse& r) override {
    for (const auto& kv : r.kvs()) PrintKV(kv, o_.value_only);
    return Status::Ok();
  }
  Status Put(const etcdserverpb::PutResponse& r) override {
    out_ << "OK\n";
    if (r.has_prev_kv()) PrintKV(r.prev_kv(), false);
    return Status::Ok();
  }
  Status Del(const etcdserverpb::DeleteRangeResponse& r) override {
    out_ << r.deleted() << "\n";
    for (const auto& kv : r.prev_kvs()) PrintKV(kv, false);
    return Status::Ok();
  }
  Status Txn(const etcdserverpb::TxnResponse& r) override {
    out_ << (r.succeeded() ? "SUCCESS\n" : "FAILURE\n");
    for (const auto& op : r.responses()) {
      out_ << "\n";
      Status s = Status::Ok();
      if (op.has_response_delete_range()) {
        s = Del(op.response_delete_range());
      } else if (op.has_response_put()) {
        s = Put(op.response_put());
      } else if (op.has_response_range()) {
        s = Get(op.response_range());
      } else {
        out_ << "unexpected response " << op.ShortDebugString() << "\n";
      }
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }
  Status Watch(const etcdserverpb::WatchResponse& r) override {
    for (const auto& e : r.events()) {
      out_ << (e.type() == mvccpb::Event::DELETE ? "DELETE" : "PUT") << "\n";
      if (e.has_prev_kv()) PrintKV(e.prev_kv(), o_.value_only);
      PrintKV(e.kv(), o_.value_only);
    }
    return Status::Ok();
  }
  Status Grant(const etcdserverpb::LeaseGrantResponse& r) override {
    out_ << "lease " << HexId016(static_cast<std::uint64_t>(r.id())) << " granted with TTL("
         << r.ttl() << "s)\n";
    return Status::Ok();
  }
  Status Revoke(std::int64_t id, const etcdserverpb::LeaseRevokeResponse&) override {
    out_ << "lease " << HexId016(static_cast<std::uint64_t>(id)) << " revoked\n";
    return Status::Ok();
  }
  Status KeepAlive(const etcdserverpb::LeaseKeepAliveResponse& r) override {
    out_ << "lease " << HexId016(static_cast<std::uint64_t>(r.id())) << " keepalived with TTL("
         << r.ttl() << ")\n";
    return Status::Ok();
  }
  Status TimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& r, bool keys) override {
    std::string id = HexId016(static_cast<std::uint64_t>(r.id()));
    if (r.grantedttl() == 0 && r.ttl() == -1) {
      out_ << "lease " << id << " already expired\n";
      return Status::Ok();
    }
    out_ << "lease " << id << " granted with TTL(" << r.grantedttl() << "s), remaining(" << r.ttl()
         << "s)";
    if (keys) {
      out_ << ", attached keys([";
      for (int i = 0; i < r.keys_size(); ++i) out_ << (i > 0 ? " " : "") << r.keys(i);
      out_ << "])";
    }
    out_ << "\n";
    return Status::Ok();
  }
  Status Leases(const etcdserverpb::LeaseLeasesResponse& r) override {
    out_ << "found " << r.leases_size() << " leases\n";
    for (const auto& l : r.leases()) out_ << HexId016(static_cast<std::uint64_t>(l.id())) << "\n";
    return Status::Ok();
  }
  Status MemberAdd(const etcdserverpb::MemberAddResponse& r) override {
    out_ << "Member " << HexIdPad16(r.member().id()) << " added to cluster "
         << HexIdPad16(r.header().cluster_id()) << "\n";
    return Status::Ok();
  }
  Status MemberRemove(std::uint64_t id, const etcdserverpb::MemberRemoveResponse& r) override {
    out_ << "Member " << HexIdPad16(id) << " removed from cluster "
         << HexIdPad16(r.header().cluster_id()) << "\n";
    return Status::Ok();
  }
  Status MemberUpdate(std::uint64_t id, const etcdserverpb::MemberUpdateResponse& r) override {
    out_ << "Member " << HexIdPad16(id) << " updated in cluster "
         << HexIdPad16(r.header().cluster_id()) << "\n";
    return Status::Ok();
  }
  Status MemberPromote(std::uint64_t id, const etcdserverpb::MemberPromoteResponse& r) override {
    out_ << "Member " << HexIdPad16(id) << " promoted in cluster "
         << HexIdPad16(r.header().cluster_id()) << "\n";
    return Status::Ok();
  }
  Status MemberList(const etcdserverpb::MemberListResponse& r) override {
    PrintRows(MemberListRows(r));
    return Status::Ok();
  }
  Status EndpointHealthList(const std::vector<EndpointHealth>& list) override {
    // etcdctl writes health lines to stderr, healthy or not.
    for (const auto& h : list) {
      if (h.error.empty()) {
        *o_.err << h.endpoint << " is healthy: successfully committed proposal: took = "
                << GoDurationString(h.took) << "\n";
      } else {
        *o_.err << h.endpoint << " is unhealthy: failed to commit proposal: " << h.error << "\n";
      }
    }
    return Status::Ok();
  }
  Status EndpointStatusList(const std::vector<EndpointStatus>& list) override {
    PrintRows(EndpointStatusRows(list));
    return Status::Ok();
  }
  Status EndpointHashKVList(const std::vector<EndpointHashKV>& list) override {
    PrintRows(EndpointHashKVRows(list));
    return Status::Ok();
  }
  Status Alarm(const etcdserverpb::AlarmResponse& r) override {
    // Go's %+v of a gogo message: its compact text form, with a trailing space.
    for (const auto& a : r.alarms()) {
      out_ << "memberID:" << a.memberid() << " alarm:" << etcdserverpb::AlarmType_Name(a.alarm())
           << " \n";
    }
    return Status::Ok();
  }
  Status MoveLeader(std::uint64_t leader, std::uint64_t target,
                    const etcdserverpb::MoveLeaderResponse&) override {
    out_ << "Leadership transferred from " << HexId(leader) << " to " << HexId(target) << "\n";
    return Status::Ok();
  }

 private:
  void PrintKV(const mvccpb::KeyValue& kv, bool value_only) {
    if (!value_only) out_ << (o_.hex ? HexWithPrefix(kv.key()) : kv.key()) << "\n";
    out_ << (o_.hex ? HexWithPrefix(kv.value()) : kv.value()) << "\n";
  }
  void PrintRows(const std::vector<std::vector<std::string>>& rows) {
    for (const auto& row : rows) {
      for (std::size_t i = 0; i < row.size(); ++i) out_ << (i > 0 ? ", " : "") << row[i];
      out_ << "\n";
    }
  }

  PrinterOptions o_;
  std::ostream& out_;
};

}  // namespace

std::unique_ptr<Printer> NewSimplePrinter(const PrinterOptions& options) {
  return std::make_unique<SimplePrinter>(options);
}

}  // namespace cli
