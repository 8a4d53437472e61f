// kvctl snapshot save: etcdctl's `snapshot save` (Maintenance/Snapshot stream to FILE.part,
// sha256-trailer length check, fsync, rename); snapshot status: etcdctl's figures (hash,
// revision, total keys, total size) for a snapshot saved from kvd.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/progress.h"
#include "cli/snapshot_file.h"

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

// `snapshot status` reads the whole file; larger files are refused.
constexpr std::uint64_t kSnapshotStatusBytesMax = 4ull << 30;

Status RunStatus(Context& ctx, const SnapshotFlags& f) {
  if (f.args.size() != 1) {
    return Status::Error(kExitBadArgs, "snapshot status requires exactly one argument");
  }
  const std::string& path = f.args[0];
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error(kExitError, "stat " + path + ": " + std::strerror(errno));
  std::string data;
  if (!ReadAllBounded(in, kSnapshotStatusBytesMax, &data)) {
    return Status::Error(
        kExitError, path + ": larger than " + std::to_string(kSnapshotStatusBytesMax) + " bytes");
  }
  SnapshotFileStatus st;
  Status s = ParseSnapshotFile(path, data, &st);
  if (!s.ok()) return s;
  char hash[16];
  std::snprintf(hash, sizeof(hash), "%x", st.hash);
  if (ctx.global.write_out == OutputFormat::kJson) {
    OrderedJson j{{"hash", st.hash},
                  {"revision", st.revision},
                  {"totalKey", st.total_keys},
                  {"totalSize", st.total_bytes}};
    *ctx.out << DumpGoJson(j) << "\n";
  } else if (ctx.global.write_out == OutputFormat::kTable) {
    *ctx.out << RenderTable({"hash", "revision", "total keys", "total size"},
                            {{hash, std::to_string(st.revision), std::to_string(st.total_keys),
                              HumanizeBytes(st.total_bytes)}});
  } else {
    *ctx.out << hash << ", " << st.revision << ", " << st.total_keys << ", "
             << HumanizeBytes(st.total_bytes) << "\n";
  }
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
  CLI::App* status = registry.AddCommand(
      snapshot, "status", "Gets backend snapshot status of a given file (snapshots saved from kvd)",
      "kvctl snapshot status backup.db -w table");
  status->add_option("args", flags->args, "<filename>");
  registry.SetAction(status, [ctx, flags] { return RunStatus(*ctx, *flags); });
}

}  // namespace cli
