// kvctl alarm list|disarm: etcdctl's `alarm` commands (Maintenance/Alarm).
#include "cli/commands.h"

namespace cli {
namespace {

Status RunList(Context& ctx) {
  auto client = DialGlobal(ctx);
  etcdserverpb::AlarmRequest req;
  req.set_action(etcdserverpb::AlarmRequest::GET);
  etcdserverpb::AlarmResponse resp;
  auto rpc = client->NewContext();
  Status s = RpcError(client->maintenance().Alarm(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  return MakePrinter(ctx)->Alarm(resp);
}

// clientv3.AlarmDisarm: GET, then one DEACTIVATE per alarm; prints the accumulated alarms.
Status RunDisarm(Context& ctx) {
  auto client = DialGlobal(ctx);
  etcdserverpb::AlarmRequest get;
  get.set_action(etcdserverpb::AlarmRequest::GET);
  etcdserverpb::AlarmResponse current;
  auto rpc = client->NewContext();
  Status s = RpcError(client->maintenance().Alarm(rpc.get(), get, &current));
  if (!s.ok()) return s;
  etcdserverpb::AlarmResponse result;
  for (const auto& alarm : current.alarms()) {
    etcdserverpb::AlarmRequest deactivate;
    deactivate.set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
    deactivate.set_memberid(alarm.memberid());
    deactivate.set_alarm(alarm.alarm());
    etcdserverpb::AlarmResponse resp;
    auto drpc = client->NewContext();
    s = RpcError(client->maintenance().Alarm(drpc.get(), deactivate, &resp));
    if (!s.ok()) return s;
    *result.mutable_header() = resp.header();
    for (const auto& a : resp.alarms()) *result.add_alarms() = a;
  }
  return MakePrinter(ctx)->Alarm(result);
}

}  // namespace

void RegisterAlarm(CLI::App& root, Registry& registry) {
  CLI::App* alarm =
      registry.AddCommand(&root, "alarm", "Alarm related commands", "kvctl alarm list");
  alarm->require_subcommand(1);
  Context* ctx = &registry.context();
  CLI::App* list = registry.AddCommand(alarm, "list", "Lists all alarms", "kvctl alarm list");
  registry.SetAction(list, [ctx] { return RunList(*ctx); });
  CLI::App* disarm =
      registry.AddCommand(alarm, "disarm", "Disarms all alarms", "kvctl alarm disarm");
  registry.SetAction(disarm, [ctx] { return RunDisarm(*ctx); });
}

}  // namespace cli
