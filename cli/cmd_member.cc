// kvctl member list|add|remove|update|promote: etcdctl's `member` commands.
#include "cli/commands.h"

namespace cli {
namespace {

struct MemberFlags {
  std::vector<std::string> args;
  std::string peer_urls;
  bool learner = false;
};

Status MemberIdArg(const std::vector<std::string>& args, std::uint64_t* id) {
  if (args.size() != 1) return Status::Error(kExitBadArgs, "member ID is not provided");
  auto parsed = ParseHexId(args[0]);
  if (!parsed) {
    return Status::Error(kExitBadArgs, "bad member ID arg (strconv.ParseUint: parsing \"" +
                                           args[0] + "\": invalid syntax), expecting ID in Hex");
  }
  *id = *parsed;
  return Status::Ok();
}

Status RunList(Context& ctx, const MemberFlags&) {
  auto client = DialGlobal(ctx);
  etcdserverpb::MemberListResponse resp;
  auto rpc = client->NewContext();
  Status s = RpcError(client->cluster().MemberList(rpc.get(), {}, &resp));
  if (!s.ok()) return s;
  return MakePrinter(ctx)->MemberList(resp);
}

// Go's %q for the plain ASCII strings printed here.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

Status RunAdd(Context& ctx, const MemberFlags& f) {
  if (f.args.empty()) return Status::Error(kExitBadArgs, "member name not provided");
  if (f.args.size() > 1) {
    std::string extra;
    for (std::size_t i = 1; i < f.args.size(); ++i) extra += (i > 1 ? " " : "") + f.args[i];
    return Status::Error(kExitBadArgs, "too many arguments, did you mean --peer-urls=" + extra);
  }
  if (f.peer_urls.empty()) return Status::Error(kExitBadArgs, "member peer urls not provided");
  std::vector<std::string> urls = SplitComma(f.peer_urls);
  etcdserverpb::MemberAddRequest req;
  for (const auto& u : urls) req.add_peerurls(u);
  req.set_islearner(f.learner);
  auto client = DialGlobal(ctx);
  etcdserverpb::MemberAddResponse resp;
  auto rpc = client->NewContext();
  Status s = RpcError(client->cluster().MemberAdd(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  s = MakePrinter(ctx)->MemberAdd(resp);
  if (!s.ok() || ctx.global.write_out != OutputFormat::kSimple) return s;
  const std::string& name = f.args[0];
  std::string conf;
  for (const auto& m : resp.members()) {
    for (const auto& u : m.peerurls()) {
      if (!conf.empty()) conf += ",";
      conf += (m.id() == resp.member().id() ? name : m.name()) + "=" + u;
    }
  }
  std::string peers;
  for (const auto& u : urls) peers += (peers.empty() ? "" : ",") + u;
  *ctx.out << "\nETCD_NAME=" << Quote(name) << "\nETCD_INITIAL_CLUSTER=" << Quote(conf)
           << "\nETCD_INITIAL_ADVERTISE_PEER_URLS=" << Quote(peers)
           << "\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n";
  return Status::Ok();
}

Status RunRemove(Context& ctx, const MemberFlags& f) {
  std::uint64_t id = 0;
  Status s = MemberIdArg(f.args, &id);
  if (!s.ok()) return s;
  etcdserverpb::MemberRemoveRequest req;
  req.set_id(id);
  auto client = DialGlobal(ctx);
  etcdserverpb::MemberRemoveResponse resp;
  auto rpc = client->NewContext();
  s = RpcError(client->cluster().MemberRemove(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  return MakePrinter(ctx)->MemberRemove(id, resp);
}

Status RunUpdate(Context& ctx, const MemberFlags& f) {
  std::uint64_t id = 0;
  Status s = MemberIdArg(f.args, &id);
  if (!s.ok()) return s;
  if (f.peer_urls.empty()) return Status::Error(kExitBadArgs, "member peer urls not provided");
  etcdserverpb::MemberUpdateRequest req;
  req.set_id(id);
  for (const auto& u : SplitComma(f.peer_urls)) req.add_peerurls(u);
  auto client = DialGlobal(ctx);
  etcdserverpb::MemberUpdateResponse resp;
  auto rpc = client->NewContext();
  s = RpcError(client->cluster().MemberUpdate(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  return MakePrinter(ctx)->MemberUpdate(id, resp);
}

Status RunPromote(Context& ctx, const MemberFlags& f) {
  std::uint64_t id = 0;
  Status s = MemberIdArg(f.args, &id);
  if (!s.ok()) return s;
  etcdserverpb::MemberPromoteRequest req;
  req.set_id(id);
  auto client = DialGlobal(ctx);
  etcdserverpb::MemberPromoteResponse resp;
  auto rpc = client->NewContext();
  s = RpcError(client->cluster().MemberPromote(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  return MakePrinter(ctx)->MemberPromote(id, resp);
}

}  // namespace

void RegisterMember(CLI::App& root, Registry& registry) {
  CLI::App* member = registry.AddCommand(&root, "member", "Membership related commands",
                                         "kvctl member list -w table");
  member->require_subcommand(1);
  Context* ctx = &registry.context();
  auto flags = std::make_shared<MemberFlags>();
  struct Sub {
    const char* name;
    const char* description;
    const char* example;
    Status (*run)(Context&, const MemberFlags&);
    bool peer_urls;
  };
  const Sub subs[] = {
      {"list", "Lists all members in the cluster", "kvctl member list -w json", RunList, false},
      {"add", "Adds a member into the cluster",
       "kvctl member add node4 --peer-urls=http://10.0.0.4:2380 --learner", RunAdd, true},
      {"remove", "Removes a member from the cluster", "kvctl member remove 8e9e05c52164694d",
       RunRemove, false},
      {"update", "Updates a member in the cluster",
       "kvctl member update 8e9e05c52164694d --peer-urls=http://10.0.0.1:2380", RunUpdate, true},
      {"promote", "Promotes a non-voting member in the cluster",
       "kvctl member promote 8e9e05c52164694d", RunPromote, false},
  };
  for (const Sub& sub : subs) {
    CLI::App* cmd = registry.AddCommand(member, sub.name, sub.description, sub.example);
    cmd->add_option("args", flags->args, "arguments");
    if (sub.peer_urls) {
      cmd->add_option("--peer-urls", flags->peer_urls, "comma separated peer URLs for the member");
    }
    if (std::string(sub.name) == "add") {
      cmd->add_flag("--learner", flags->learner, "indicates if the new member is raft learner");
    }
    auto run = sub.run;
    registry.SetAction(cmd, [ctx, flags, run] { return run(*ctx, *flags); });
  }
}

}  // namespace cli
