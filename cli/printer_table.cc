// etcdctl's "table" format (ctlv3/command/printer_table.go): only member list and the
// endpoint commands have tables; everything else is "table not supported" (exit 4).
#include "cli/printer.h"

namespace cli {
namespace {

Status Unsupported() {
  return Status::Error(kExitBadFeature, "table not supported as output format");
}

class TablePrinter final : public Printer {
 public:
  explicit TablePrinter(const PrinterOptions& options) : out_(*options.out) {}

  Status Get(const etcdserverpb::RangeResponse&) override { return Unsupported(); }
  Status Put(const etcdserverpb::PutResponse&) override { return Unsupported(); }
  Status Del(const etcdserverpb::DeleteRangeResponse&) override { return Unsupported(); }
  Status Txn(const etcdserverpb::TxnResponse&) override { return Unsupported(); }
  Status Watch(const etcdserverpb::WatchResponse&) override { return Unsupported(); }
  Status Grant(const etcdserverpb::LeaseGrantResponse&) override { return Unsupported(); }
  Status Revoke(std::int64_t, const etcdserverpb::LeaseRevokeResponse&) override {
    return Unsupported();
  }
  Status KeepAlive(const etcdserverpb::LeaseKeepAliveResponse&) override { return Unsupported(); }
  Status TimeToLive(const etcdserverpb::LeaseTimeToLiveResponse&, bool) override {
    return Unsupported();
  }
  Status Leases(const etcdserverpb::LeaseLeasesResponse&) override { return Unsupported(); }
  Status MemberAdd(const etcdserverpb::MemberAddResponse&) override { return Unsupported(); }
  Status MemberRemove(std::uint64_t, const etcdserverpb::MemberRemoveResponse&) override {
    return Unsupported();
  }
  Status MemberUpdate(std::uint64_t, const etcdserverpb::MemberUpdateResponse&) override {
    return Unsupported();
  }
  Status MemberPromote(std::uint64_t, const etcdserverpb::MemberPromoteResponse&) override {
    return Unsupported();
  }
  Status MemberList(const etcdserverpb::MemberListResponse& r) override {
    out_ << RenderTable(MemberListHeader(), MemberListRows(r));
    return Status::Ok();
  }
  Status EndpointHealthList(const std::vector<EndpointHealth>& list) override {
    std::vector<std::vector<std::string>> rows;
    for (const auto& h : list) {
      rows.push_back(
          {h.endpoint, h.error.empty() ? "true" : "false", GoDurationString(h.took), h.error});
    }
    out_ << RenderTable({"endpoint", "health", "took", "error"}, rows);
    return Status::Ok();
  }
  Status EndpointStatusList(const std::vector<EndpointStatus>& list) override {
    out_ << RenderTable(EndpointStatusHeader(), EndpointStatusRows(list));
    return Status::Ok();
  }
  Status EndpointHashKVList(const std::vector<EndpointHashKV>& list) override {
    out_ << RenderTable(EndpointHashKVHeader(), EndpointHashKVRows(list));
    return Status::Ok();
  }
  Status Alarm(const etcdserverpb::AlarmResponse&) override { return Unsupported(); }
  Status MoveLeader(std::uint64_t, std::uint64_t,
                    const etcdserverpb::MoveLeaderResponse&) override {
    return Unsupported();
  }

 private:
  std::ostream& out_;
};

}  // namespace

std::unique_ptr<Printer> NewTablePrinter(const PrinterOptions& options) {
  return std::make_unique<TablePrinter>(options);
}

}  // namespace cli
