// kvctl lease grant|revoke|timetolive|list|keep-alive: etcdctl's `lease` commands.
#include <charconv>
#include <thread>

#include "cli/commands.h"

namespace cli {
namespace {

Status LeaseIdArg(const std::string& arg, std::int64_t* id) {
  auto parsed = ParseHexId(arg);
  if (!parsed) {
    return Status::Error(kExitBadArgs, "bad lease ID arg (strconv.ParseInt: parsing \"" + arg +
                                           "\": invalid syntax), expecting ID in Hex");
  }
  *id = static_cast<std::int64_t>(*parsed);
  return Status::Ok();
}

Status Wrap(const Status& s, const std::string& what) {
  if (s.ok()) return s;
  return Status::Error(s.exit_code, what + " (" + s.message + ")");
}

Status RunGrant(Context& ctx, const std::vector<std::string>& args) {
  if (args.size() != 1)
    return Status::Error(kExitBadArgs, "lease grant command needs TTL argument");
  std::int64_t ttl = 0;
  auto r = std::from_chars(args[0].data(), args[0].data() + args[0].size(), ttl);
  if (r.ec != std::errc() || r.ptr != args[0].data() + args[0].size()) {
    return Status::Error(kExitBadArgs,
                         "bad TTL (strconv.ParseInt: parsing \"" + args[0] + "\": invalid syntax)");
  }
  auto client = DialGlobal(ctx);
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl);
  etcdserverpb::LeaseGrantResponse resp;
  auto rpc = client->NewContext();
  Status s =
      Wrap(RpcError(client->lease().LeaseGrant(rpc.get(), req, &resp)), "failed to grant lease");
  if (!s.ok()) return s;
  return MakePrinter(ctx)->Grant(resp);
}

Status RunRevoke(Context& ctx, const std::vector<std::string>& args) {
  if (args.size() != 1) return Status::Error(kExitBadArgs, "lease revoke command needs 1 argument");
  std::int64_t id = 0;
  Status s = LeaseIdArg(args[0], &id);
  if (!s.ok()) return s;
  auto client = DialGlobal(ctx);
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(id);
  etcdserverpb::LeaseRevokeResponse resp;
  auto rpc = client->NewContext();
  s = Wrap(RpcError(client->lease().LeaseRevoke(rpc.get(), req, &resp)), "failed to revoke lease");
  if (!s.ok()) return s;
  return MakePrinter(ctx)->Revoke(id, resp);
}

Status RunTimeToLive(Context& ctx, const std::vector<std::string>& args, bool keys) {
  if (args.size() != 1) {
    return Status::Error(kExitBadArgs, "lease timetolive command needs lease ID as argument");
  }
  std::int64_t id = 0;
  Status s = LeaseIdArg(args[0], &id);
  if (!s.ok()) return s;
  auto client = DialGlobal(ctx);
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  req.set_keys(keys);
  etcdserverpb::LeaseTimeToLiveResponse resp;
  auto rpc = client->NewContext();
  s = RpcError(client->lease().LeaseTimeToLive(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  return MakePrinter(ctx)->TimeToLive(resp, keys);
}

Status RunList(Context& ctx, const std::vector<std::string>& args) {
  if (!args.empty())
    return Status::Error(kExitBadArgs, "lease list command does not accept arguments");
  auto client = DialGlobal(ctx);
  etcdserverpb::LeaseLeasesRequest req;
  etcdserverpb::LeaseLeasesResponse resp;
  auto rpc = client->NewContext();
  Status s =
      Wrap(RpcError(client->lease().LeaseLeases(rpc.get(), req, &resp)), "failed to list leases");
  if (!s.ok()) return s;
  return MakePrinter(ctx)->Leases(resp);
}

Status RunKeepAlive(Context& ctx, const std::vector<std::string>& args, bool once) {
  if (args.size() != 1) {
    return Status::Error(kExitBadArgs, "lease keep-alive command needs lease ID as argument");
  }
  std::int64_t id = 0;
  Status s = LeaseIdArg(args[0], &id);
  if (!s.ok()) return s;
  auto client = DialGlobal(ctx);
  auto printer = MakePrinter(ctx);
  std::unique_ptr<grpc::ClientContext> rpc;
  if (once) {
    rpc = client->NewContext();
  } else {
    rpc = client->NewStreamContext();
    rpc->AddMetadata("hasleader", "true");
  }
  auto stream = client->lease().LeaseKeepAlive(rpc.get());
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(id);
  etcdserverpb::LeaseKeepAliveResponse resp;
  if (once) {
    if (!stream->Write(req) || !stream->Read(&resp)) {
      stream->WritesDone();
      return Status::Error(kExitBadConnection, RpcError(stream->Finish()).message);
    }
    stream->WritesDone();
    rpc->TryCancel();
    if (resp.ttl() <= 0) {
      return Status::Error(kExitBadConnection, "etcdserver: requested lease not found");
    }
    return printer->KeepAlive(resp);
  }
  // Renews every TTL/3 (at least once a second) until the lease expires or is revoked; the
  // loop ends with the lease, as etcdctl's does.
  while (stream->Write(req) && stream->Read(&resp)) {
    if (resp.ttl() <= 0) break;
    Status p = printer->KeepAlive(resp);
    ctx.out->flush();
    if (!p.ok()) return p;
    std::this_thread::sleep_for(std::chrono::seconds(std::max<std::int64_t>(1, resp.ttl() / 3)));
  }
  rpc->TryCancel();
  if (ctx.global.write_out == OutputFormat::kSimple) {
    *ctx.out << "lease " << HexId016(static_cast<std::uint64_t>(id)) << " expired or revoked.\n";
  }
  return Status::Ok();
}

}  // namespace

void RegisterLease(CLI::App& root, Registry& registry) {
  CLI::App* lease =
      registry.AddCommand(&root, "lease", "Lease related commands", "kvctl lease grant 60");
  lease->require_subcommand(1);
  Context* ctx = &registry.context();
  auto args = std::make_shared<std::vector<std::string>>();
  auto keys = std::make_shared<bool>(false);
  auto once = std::make_shared<bool>(false);

  CLI::App* grant = registry.AddCommand(lease, "grant", "Creates leases", "kvctl lease grant 60");
  grant->add_option("args", *args, "<ttl>");
  registry.SetAction(grant, [ctx, args] { return RunGrant(*ctx, *args); });

  CLI::App* revoke =
      registry.AddCommand(lease, "revoke", "Revokes leases", "kvctl lease revoke 694d7b8b2d6f0f2a");
  revoke->add_option("args", *args, "<leaseID>");
  registry.SetAction(revoke, [ctx, args] { return RunRevoke(*ctx, *args); });

  CLI::App* ttl = registry.AddCommand(lease, "timetolive", "Get lease information",
                                      "kvctl lease timetolive 694d7b8b2d6f0f2a --keys");
  ttl->add_option("args", *args, "<leaseID>");
  ttl->add_flag("--keys", *keys, "Get keys attached to this lease");
  registry.SetAction(ttl, [ctx, args, keys] { return RunTimeToLive(*ctx, *args, *keys); });

  CLI::App* list = registry.AddCommand(lease, "list", "List all active leases", "kvctl lease list");
  list->add_option("args", *args, "(none)");
  registry.SetAction(list, [ctx, args] { return RunList(*ctx, *args); });

  CLI::App* keep = registry.AddCommand(lease, "keep-alive", "Keeps leases alive (renew)",
                                       "kvctl lease keep-alive --once 694d7b8b2d6f0f2a");
  keep->add_option("args", *args, "<leaseID>");
  keep->add_flag("--once", *once, "Resets the keep-alive time to its original value and exits");
  registry.SetAction(keep, [ctx, args, once] { return RunKeepAlive(*ctx, *args, *once); });
}

}  // namespace cli
