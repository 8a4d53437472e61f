// kvctl lock NAME [COMMAND ARGS...]: etcdctl's `lock`. Holds the lock until interrupted, or
// runs COMMAND while holding it (with ETCD_LOCK_KEY and ETCD_LOCK_REV set) and releases it.
#include <spawn.h>
#include <sys/wait.h>

#include <thread>

#include "cli/lock_elect.h"
#include "cli/session.h"

extern char** environ;

namespace cli {
namespace {

struct LockFlags {
  std::vector<std::string> args;
  std::int64_t ttl = 10;
};

Status Release(Client& client, const std::string& key) {
  etcdserverpb::DeleteRangeRequest req;
  req.set_key(key);
  etcdserverpb::DeleteRangeResponse resp;
  auto rpc = client.NewContext();
  return RpcError(client.kv().DeleteRange(rpc.get(), req, &resp));
}

Status RunCommand(const std::vector<std::string>& argv, const std::string& key,
                  std::int64_t revision) {
  std::vector<std::string> env_strings{"ETCD_LOCK_KEY=" + key,
                                       "ETCD_LOCK_REV=" + std::to_string(revision)};
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> c_args;
  for (auto& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, c_args[0], nullptr, nullptr, c_args.data(), envp.data()) != 0) {
    return Status::Error(kExitError,
                         "exec: \"" + argv[0] + "\": executable file not found in $PATH");
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return Status::Error(kExitError, "wait failed");
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return Status::Ok();
  if (WIFEXITED(wstatus)) {
    return Status::Error(kExitError, "exit status " + std::to_string(WEXITSTATUS(wstatus)));
  }
  return Status::Error(kExitError, "signal: " + std::to_string(WTERMSIG(wstatus)));
}

Status RunLock(Context& ctx, const LockFlags& f) {
  if (f.args.empty()) {
    return Status::Error(kExitBadArgs,
                         "lock takes a lock name argument and an optional command to execute");
  }
  InterruptFlag();
  auto client = DialGlobal(ctx);
  Session session(*client);
  Status s = session.Open(f.ttl);
  if (!s.ok()) return s;
  std::string key;
  std::int64_t revision = 0;
  s = AcquireOrdered(*client, session, f.args[0], "", &key, &revision);
  if (!s.ok()) return s;
  if (f.args.size() > 1) {
    Status run = RunCommand({f.args.begin() + 1, f.args.end()}, key, revision);
    Status unlock = Release(*client, key);
    session.Close();
    return run.ok() ? unlock : run;
  }
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  etcdserverpb::RangeResponse resp;
  auto rpc = client->NewContext();
  s = RpcError(client->kv().Range(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  if (resp.kvs_size() == 0) return Status::Error(kExitError, "lock lost on init");
  s = MakePrinter(ctx)->Get(resp);
  ctx.out->flush();
  if (!s.ok()) return s;
  // Held until SIGINT/SIGTERM or until the session's lease is lost.
  while (!InterruptFlag().load() && !session.expired()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (session.expired()) return Status::Error(kExitError, "session expired");
  s = Release(*client, key);
  session.Close();
  return s;
}

}  // namespace

void RegisterLock(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<LockFlags>();
  CLI::App* cmd = registry.AddCommand(&root, "lock", "Acquires a named lock",
                                      "kvctl lock deploy -- ./deploy.sh --fast");
  cmd->add_option("args", flags->args, "<lockname> [exec-command arg1 arg2 ...]");
  cmd->add_option("--ttl", flags->ttl, "timeout for session")->capture_default_str();
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunLock(*ctx, *flags); });
}

}  // namespace cli
