#include "cli/endpoints.h"

#include "cli/commands.h"

namespace cli {

Status ResolveEndpoints(const Context& ctx, bool cluster, std::vector<std::string>* endpoints) {
  endpoints->clear();
  if (!cluster) {
    *endpoints = ctx.global.endpoints;
    return Status::Ok();
  }
  auto client = DialGlobal(ctx);
  etcdserverpb::MemberListResponse resp;
  auto rpc = client->NewContext();
  Status s = RpcError(client->cluster().MemberList(rpc.get(), {}, &resp));
  if (!s.ok()) return s;
  for (const auto& m : resp.members()) {
    for (const auto& u : m.clienturls()) endpoints->push_back(u);
  }
  return Status::Ok();
}

}  // namespace cli
