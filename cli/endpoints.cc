#include "cli/endpoints.h"

#include <algorithm>
#include <atomic>
#include <thread>

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

void ForEachInParallel(std::size_t count, std::size_t in_flight_max,
                       const std::function<void(std::size_t)>& fn) {
  KVCTL_CHECK(in_flight_max >= 1);
  const std::size_t threads = std::min(count, in_flight_max);
  if (threads <= 1) {
    for (std::size_t i = 0; i < count; ++i) fn(i);
    return;
  }
  // Workers pull the next index; each index is taken exactly once.
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) fn(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::size_t t = 0; t + 1 < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

}  // namespace cli
