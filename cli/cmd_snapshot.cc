// kvctl snapshot save: etcdctl's `snapshot save` (Maintenance/Snapshot stream to FILE.part,
// sha256-trailer length check, fsync, rename).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cli/commands.h"
#include "cli/progress.h"

namespace cli {
namespace {

struct SnapshotFlags {
  std::vector<std::string> args;
};

Status WriteAll(int fd, const std::string& data) {
  std::size_t written = 0;
  // Bounded: each iteration writes at least one byte or fails.
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Error(kExitInterrupted, std::strerror(errno));
    written += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Status RunSave(Context& ctx, const SnapshotFlags& f) {
  if (f.args.size() != 1) {
    return Status::Error(kExitBadArgs, "snapshot save expects one argument");
  }
  if (ctx.global.endpoints.size() != 1) {
    std::string list;
    for (const auto& e : ctx.global.endpoints) list += (list.empty() ? "" : " ") + e;
    return Status::Error(
        kExitBadArgs,
        "snapshot must be requested to one selected node, not multiple [" + list + "]");
  }
  const std::string path = f.args[0];
  const std::string part = path + ".part";
  auto client = DialGlobal(ctx);
  int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::Error(kExitInterrupted,
                         "could not open " + part + " (" + std::strerror(errno) + ")");
  }
  auto rpc = client->NewStreamContext();
  auto reader = client->maintenance().Snapshot(rpc.get(), {});
  etcdserverpb::SnapshotResponse resp;
  std::uint64_t total_bytes = 0;
  ProgressBar bar(ctx.err, ctx.stderr_is_tty, "snapshot", 0);
  Status s = Status::Ok();
  while (reader->Read(&resp)) {
    s = WriteAll(fd, resp.blob());
    if (!s.ok()) break;
    total_bytes += resp.blob().size();
    bar.set_total(total_bytes + resp.remaining_bytes());
    bar.Update(total_bytes);
  }
  if (!s.ok()) rpc->TryCancel();
  Status rpc_status = RpcError(reader->Finish());
  bar.Finish();
  if (s.ok() && !rpc_status.ok()) s = Status::Error(kExitInterrupted, rpc_status.message);
  if (s.ok() && total_bytes % 512 != 32) {
    s = Status::Error(kExitInterrupted, "sha256 checksum not found");
  }
  if (s.ok() && ::fsync(fd) != 0) s = Status::Error(kExitInterrupted, std::strerror(errno));
  ::close(fd);
  if (s.ok() && std::rename(part.c_str(), path.c_str()) != 0) {
    s = Status::Error(kExitInterrupted, "could not rename " + part + " to " + path + " (" +
                                            std::strerror(errno) + ")");
  }
  if (!s.ok()) {
    ::unlink(part.c_str());
    return s;
  }
  *ctx.out << "Snapshot saved at " << path << "\n";
  return Status::Ok();
}

}  // namespace

void RegisterSnapshot(CLI::App& root, Registry& registry) {
  CLI::App* snapshot = registry.AddCommand(&root, "snapshot", "Manages etcd node snapshots",
                                           "kvctl snapshot save backup.db");
  snapshot->require_subcommand(1);
  auto flags = std::make_shared<SnapshotFlags>();
  CLI::App* save =
      registry.AddCommand(snapshot, "save", "Stores an etcd node backend snapshot to a given file",
                          "kvctl --endpoints=127.0.0.1:2379 snapshot save backup.db");
  save->add_option("args", flags->args, "<filename>");
  Context* ctx = &registry.context();
  registry.SetAction(save, [ctx, flags] { return RunSave(*ctx, *flags); });
}

}  // namespace cli
