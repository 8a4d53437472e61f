// Output printers for etcdctl-equivalent commands: simple, json and table formats that
// reproduce etcdctl 3.4.23's bytes (ctlv3/command/printer*.go). One interface, three
// implementations; a format that etcdctl lacks for a response returns etcdctl's
// "<format> not supported as output format" status (exit 4).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "cli/options.h"
#include "cli/status.h"
#include "proto/rpc.pb.h"

namespace cli {

// One endpoint's answer for `endpoint health|status|hashkv`.
struct EndpointHealth {
  std::string endpoint;
  bool healthy = false;
  std::chrono::nanoseconds took{0};
  std::string error;
};
struct EndpointStatus {
  std::string endpoint;
  etcdserverpb::StatusResponse response;
};
struct EndpointHashKV {
  std::string endpoint;
  etcdserverpb::HashKVResponse response;
};

// Thread-compatible; writes only to the stream given at construction.
class Printer {
 public:
  virtual ~Printer() = default;

  virtual Status Get(const etcdserverpb::RangeResponse& r) = 0;
  virtual Status Put(const etcdserverpb::PutResponse& r) = 0;
  virtual Status Del(const etcdserverpb::DeleteRangeResponse& r) = 0;
  virtual Status Txn(const etcdserverpb::TxnResponse& r) = 0;
  virtual Status Watch(const etcdserverpb::WatchResponse& r) = 0;
  virtual Status Grant(const etcdserverpb::LeaseGrantResponse& r) = 0;
  virtual Status Revoke(std::int64_t id, const etcdserverpb::LeaseRevokeResponse& r) = 0;
  virtual Status KeepAlive(const etcdserverpb::LeaseKeepAliveResponse& r) = 0;
  virtual Status TimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& r, bool keys) = 0;
  virtual Status Leases(const etcdserverpb::LeaseLeasesResponse& r) = 0;
  virtual Status MemberAdd(const etcdserverpb::MemberAddResponse& r) = 0;
  virtual Status MemberRemove(std::uint64_t id, const etcdserverpb::MemberRemoveResponse& r) = 0;
  virtual Status MemberUpdate(std::uint64_t id, const etcdserverpb::MemberUpdateResponse& r) = 0;
  virtual Status MemberPromote(std::uint64_t id, const etcdserverpb::MemberPromoteResponse& r) = 0;
  virtual Status MemberList(const etcdserverpb::MemberListResponse& r) = 0;
  virtual Status EndpointHealthList(const std::vector<EndpointHealth>& list) = 0;
  virtual Status EndpointStatusList(const std::vector<EndpointStatus>& list) = 0;
  virtual Status EndpointHashKVList(const std::vector<EndpointHashKV>& list) = 0;
  virtual Status Alarm(const etcdserverpb::AlarmResponse& r) = 0;
  virtual Status MoveLeader(std::uint64_t leader, std::uint64_t target,
                            const etcdserverpb::MoveLeaderResponse& r) = 0;
};

struct PrinterOptions {
  bool hex = false;             // --hex: keys and values as \xNN
  bool value_only = false;      // get --print-value-only
  std::ostream* out = nullptr;  // stdout; must outlive the printer
  std::ostream* err = nullptr;  // stderr (health lines go there, as in etcdctl)
};

std::unique_ptr<Printer> NewSimplePrinter(const PrinterOptions& options);
std::unique_ptr<Printer> NewJsonPrinter(const PrinterOptions& options);
std::unique_ptr<Printer> NewTablePrinter(const PrinterOptions& options);
std::unique_ptr<Printer> NewPrinter(OutputFormat format, const PrinterOptions& options);

// Shared formatting helpers (etcdctl's exact spellings).
// "\x66\x6f\x6f" for "foo".
std::string HexWithPrefix(const std::string& bytes);
// go-humanize Bytes(): "20 kB", "1.5 MB", "7 B".
std::string HumanizeBytes(std::uint64_t bytes);
// Go's time.Duration.String(): "1.608986ms", "2s", "0s".
std::string GoDurationString(std::chrono::nanoseconds d);
// Go's fmt "%x" / "%016x" / "%16x" of a 64-bit ID.
std::string HexId(std::uint64_t id);
std::string HexId016(std::uint64_t id);
std::string HexIdPad16(std::uint64_t id);
// tablewriter's rendering with etcdctl's settings: upper-case centred headers, right-aligned
// cells, +---+ borders.
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);
// The rows etcdctl shows for member list / endpoint status / hashkv / health.
std::vector<std::string> MemberListHeader();
std::vector<std::vector<std::string>> MemberListRows(const etcdserverpb::MemberListResponse& r);
std::vector<std::string> EndpointStatusHeader();
std::vector<std::vector<std::string>> EndpointStatusRows(const std::vector<EndpointStatus>& list);
std::vector<std::string> EndpointHashKVHeader();
std::vector<std::vector<std::string>> EndpointHashKVRows(const std::vector<EndpointHashKV>& list);

}  // namespace cli
