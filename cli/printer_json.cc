// etcdctl's "json" format (ctlv3/command/printer_json.go: json.Marshal of the Go response).
#include "cli/json_util.h"
#include "cli/printer.h"

namespace cli {
namespace {

class JsonPrinter final : public Printer {
 public:
  explicit JsonPrinter(const PrinterOptions& options) : out_(*options.out) {}

  Status Get(const etcdserverpb::RangeResponse& r) override { return Print(RangeJson(r)); }
  Status Put(const etcdserverpb::PutResponse& r) override { return Print(PutJson(r)); }
  Status Del(const etcdserverpb::DeleteRangeResponse& r) override { return Print(DeleteJson(r)); }
  Status Txn(const etcdserverpb::TxnResponse& r) override { return Print(TxnJson(r)); }
  Status Watch(const etcdserverpb::WatchResponse& r) override {
    // clientv3.WatchResponse has no json tags: Go field names, no omitempty.
    OrderedJson obj = OrderedJson::object();
    obj["Header"] = HeaderJson(r.header());
    // clientv3 always make()s the slice, so an empty list is [] rather than null.
    OrderedJson events = OrderedJson::array();
    for (const auto& e : r.events()) {
      OrderedJson ev = OrderedJson::object();
      if (e.type() != mvccpb::Event::PUT) ev["type"] = static_cast<int>(e.type());
      if (e.has_kv()) ev["kv"] = KeyValueJson(e.kv());
      if (e.has_prev_kv()) ev["prev_kv"] = KeyValueJson(e.prev_kv());
      events.push_back(ev);
    }
    obj["Events"] = events;
    obj["CompactRevision"] = r.compact_revision();
    obj["Canceled"] = r.canceled();
    obj["Created"] = r.created();
    return Print(obj);
  }
  Status Grant(const etcdserverpb::LeaseGrantResponse& r) override {
    OrderedJson obj = OrderedJson::object();
    InlineHeader(r.header(), &obj);
    obj["ID"] = r.id();
    obj["TTL"] = r.ttl();
    obj["Error"] = r.error();
    return Print(obj);
  }
  Status Revoke(std::int64_t, const etcdserverpb::LeaseRevokeResponse& r) override {
    OrderedJson obj = OrderedJson::object();
    if (r.has_header()) obj["header"] = HeaderJson(r.header());
    return Print(obj);
  }
  Status KeepAlive(const etcdserverpb::LeaseKeepAliveResponse& r) override {
    OrderedJson obj = OrderedJson::object();
    InlineHeader(r.header(), &obj);
    obj["ID"] = r.id();
    obj["TTL"] = r.ttl();
    return Print(obj);
  }
  Status TimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& r, bool) override {
    OrderedJson obj = OrderedJson::object();
    InlineHeader(r.header(), &obj);
    obj["id"] = r.id();
    obj["ttl"] = r.ttl();
    obj["granted-ttl"] = r.grantedttl();
    OrderedJson keys = nullptr;
    if (r.keys_size() > 0) {
      keys = OrderedJson::array();
      for (const auto& k : r.keys()) keys.push_back(Base64Encode(k));
    }
    obj["keys"] = keys;
    return Print(obj);
  }
  Status Leases(const etcdserverpb::LeaseLeasesResponse& r) override {
    OrderedJson obj = OrderedJson::object();
    InlineHeader(r.header(), &obj);
    OrderedJson leases = OrderedJson::array();
    for (const auto& l : r.leases()) leases.push_back(OrderedJson{{"id", l.id()}});
    obj["leases"] = leases;
    return Print(obj);
  }
  Status MemberAdd(const etcdserverpb::MemberAddResponse& r) override {
    OrderedJson obj = OrderedJson::object();
    if (r.has_header()) obj["header"] = HeaderJson(r.header());
    if (r.has_member()) obj["member"] = MemberJson(r.member());
    AddMembers(r.members(), &obj);
    return Print(obj);
  }
  Status MemberRemove(std::uint64_t, const etcdserverpb::MemberRemoveResponse& r) override {
    return PrintMembers(r.has_header(), r.header(), r.members());
  }
  Status MemberUpdate(std::uint64_t, const etcdserverpb::MemberUpdateResponse& r) override {
    return PrintMembers(r.has_header(), r.header(), r.members());
  }
  Status MemberPromote(std::uint64_t, const etcdserverpb::MemberPromoteResponse& r) override {
    return PrintMembers(r.has_header(), r.header(), r.members());
  }
  Status MemberList(const etcdserverpb::MemberListResponse& r) override {
    return PrintMembers(r.has_header(), r.header(), r.members());
  }
  Status EndpointHealthList(const std::vector<EndpointHealth>& list) override {
    OrderedJson arr = OrderedJson::array();
    for (const auto& h : list) {
      OrderedJson obj = OrderedJson::object();
      obj["endpoint"] = h.endpoint;
      obj["health"] = h.error.empty();
      obj["took"] = GoDurationString(h.took);
      if (!h.error.empty()) obj["error"] = h.error;
      arr.push_back(obj);
    }
    return Print(arr);
  }
  Status EndpointStatusList(const std::vector<EndpointStatus>& list) override {
    OrderedJson arr = OrderedJson::array();
    for (const auto& s : list) {
      const auto& r = s.response;
      OrderedJson st = OrderedJson::object();
      if (r.has_header()) st["header"] = HeaderJson(r.header());
      if (!r.version().empty()) st["version"] = r.version();
      if (r.dbsize() != 0) st["dbSize"] = r.dbsize();
      if (r.leader() != 0) st["leader"] = r.leader();
      if (r.raftindex() != 0) st["raftIndex"] = r.raftindex();
      if (r.raftterm() != 0) st["raftTerm"] = r.raftterm();
      if (r.raftappliedindex() != 0) st["raftAppliedIndex"] = r.raftappliedindex();
      if (r.errors_size() > 0) {
        OrderedJson errors = OrderedJson::array();
        for (const auto& e : r.errors()) errors.push_back(e);
        st["errors"] = errors;
      }
      if (r.dbsizeinuse() != 0) st["dbSizeInUse"] = r.dbsizeinuse();
      if (r.islearner()) st["isLearner"] = true;
      arr.push_back(OrderedJson{{"Endpoint", s.endpoint}, {"Status", st}});
    }
    return Print(arr);
  }
  Status EndpointHashKVList(const std::vector<EndpointHashKV>& list) override {
    OrderedJson arr = OrderedJson::array();
    for (const auto& h : list) {
      const auto& r = h.response;
      OrderedJson hk = OrderedJson::object();
      if (r.has_header()) hk["header"] = HeaderJson(r.header());
      if (r.hash() != 0) hk["hash"] = r.hash();
      if (r.compact_revision() != 0) hk["compact_revision"] = r.compact_revision();
      arr.push_back(OrderedJson{{"Endpoint", h.endpoint}, {"HashKV", hk}});
    }
    return Print(arr);
  }
  Status Alarm(const etcdserverpb::AlarmResponse& r) override {
    OrderedJson obj = OrderedJson::object();
    if (r.has_header()) obj["header"] = HeaderJson(r.header());
    if (r.alarms_size() > 0) {
      OrderedJson alarms = OrderedJson::array();
      for (const auto& a : r.alarms()) {
        OrderedJson am = OrderedJson::object();
        if (a.memberid() != 0) am["memberID"] = a.memberid();
        if (a.alarm() != 0) am["alarm"] = static_cast<int>(a.alarm());
        alarms.push_back(am);
      }
      obj["alarms"] = alarms;
    }
    return Print(obj);
  }
  Status MoveLeader(std::uint64_t, std::uint64_t,
                    const etcdserverpb::MoveLeaderResponse& r) override {
    OrderedJson obj = OrderedJson::object();
    if (r.has_header()) obj["header"] = HeaderJson(r.header());
    return Print(obj);
  }

 private:
  Status Print(const OrderedJson& j) {
    out_ << DumpGoJson(j) << "\n";
    return Status::Ok();
  }
  static OrderedJson MemberJson(const etcdserverpb::Member& m) {
    OrderedJson obj = OrderedJson::object();
    if (m.id() != 0) obj["ID"] = m.id();
    if (!m.name().empty()) obj["name"] = m.name();
    if (m.peerurls_size() > 0)
      obj["peerURLs"] = std::vector<std::string>(m.peerurls().begin(), m.peerurls().end());
    if (m.clienturls_size() > 0)
      obj["clientURLs"] = std::vector<std::string>(m.clienturls().begin(), m.clienturls().end());
    if (m.islearner()) obj["isLearner"] = true;
    return obj;
  }
  static void AddMembers(const google::protobuf::RepeatedPtrField<etcdserverpb::Member>& members,
                         OrderedJson* obj) {
    if (members.empty()) return;
    OrderedJson arr = OrderedJson::array();
    for (const auto& m : members) arr.push_back(MemberJson(m));
    (*obj)["members"] = arr;
  }
  Status PrintMembers(bool has_header, const etcdserverpb::ResponseHeader& header,
                      const google::protobuf::RepeatedPtrField<etcdserverpb::Member>& members) {
    OrderedJson obj = OrderedJson::object();
    if (has_header) obj["header"] = HeaderJson(header);
    AddMembers(members, &obj);
    return Print(obj);
  }

  std::ostream& out_;
};

}  // namespace

std::unique_ptr<Printer> NewJsonPrinter(const PrinterOptions& options) {
  return std::make_unique<JsonPrinter>(options);
}

}  // namespace cli
