// kvctl rollback KEY --to-rev N [--prefix] [--dry-run]: restores old values in ONE txn
// guarded by every touched key's current mod revision, so a concurrent change makes the
// rollback fail instead of being overwritten.
#include "cli/commands.h"
#include "cli/diff.h"
#include "cli/kv_read.h"
#include "cli/rollback.h"

namespace cli {

etcdserverpb::TxnRequest BuildRollbackTxn(const std::map<std::string, mvccpb::KeyValue>& current,
                                          const std::map<std::string, mvccpb::KeyValue>& target,
                                          std::int64_t to_rev, std::string* report) {
  etcdserverpb::TxnRequest result;
  etcdserverpb::TxnRequest* txn = &result;
  report->clear();
  for (const auto& [k, old] : target) {
    auto it = current.find(k);
    if (it != current.end() && it->second.value() == old.value()) continue;
    auto* cmp = txn->add_compare();
    cmp->set_key(k);
    if (it != current.end()) {
      cmp->set_target(etcdserverpb::Compare::MOD);
      cmp->set_mod_revision(it->second.mod_revision());
      *report += UnifiedDiff(it->second.value(), old.value(), k + " (current)",
                             k + "@" + std::to_string(to_rev));
    } else {
      cmp->set_target(etcdserverpb::Compare::CREATE);
      cmp->set_create_revision(0);
      *report += "+ " + k + " (restored)\n";
    }
    auto* put = txn->add_success()->mutable_request_put();
    put->set_key(k);
    put->set_value(old.value());
  }
  for (const auto& [k, now] : current) {
    if (target.count(k) > 0) continue;
    auto* cmp = txn->add_compare();
    cmp->set_key(k);
    cmp->set_target(etcdserverpb::Compare::MOD);
    cmp->set_mod_revision(now.mod_revision());
    txn->add_success()->mutable_request_delete_range()->set_key(k);
    *report += "- " + k + " (did not exist at revision " + std::to_string(to_rev) + ")\n";
  }
  return result;
}

namespace {

// etcd's default --max-txn-ops.
constexpr std::size_t kTxnOpsMax = 128;

struct RollbackFlags {
  std::vector<std::string> args;
  std::int64_t to_rev = 0;
  bool prefix = false;
  bool dry_run = false;
};

Status RunRollback(Context& ctx, const RollbackFlags& f) {
  if (f.args.size() != 1) return Status::Error(kExitBadArgs, "rollback command needs one key");
  if (f.to_rev <= 0) return Status::Error(kExitBadArgs, "--to-rev must be a positive revision");
  const std::string& key = f.args[0];
  auto client = DialGlobal(ctx);
  std::map<std::string, mvccpb::KeyValue> current;
  std::map<std::string, mvccpb::KeyValue> target;
  std::int64_t current_rev = 0;
  if (f.prefix) {
    Status s = GetPrefixAt(*client, key, 0, kTxnOpsMax * 8, &current, &current_rev);
    if (!s.ok()) return s;
    s = GetPrefixAt(*client, key, f.to_rev, kTxnOpsMax * 8, &target);
    if (!s.ok()) return s;
  } else {
    std::optional<mvccpb::KeyValue> kv;
    Status s = GetKeyAt(*client, key, 0, &kv, &current_rev);
    if (!s.ok()) return s;
    if (kv) current[key] = *kv;
    s = GetKeyAt(*client, key, f.to_rev, &kv);
    if (!s.ok()) return s;
    if (kv) target[key] = *kv;
  }
  if (f.to_rev > current_rev) {
    return Status::Error(kExitError, "revision " + std::to_string(f.to_rev) +
                                         " is in the future (current " +
                                         std::to_string(current_rev) + ")");
  }
  std::string report;
  etcdserverpb::TxnRequest txn = BuildRollbackTxn(current, target, f.to_rev, &report);
  std::size_t changes = static_cast<std::size_t>(txn.success_size());
  if (changes == 0) {
    *ctx.out << "nothing to roll back: already as of revision " << f.to_rev << "\n";
    return Status::Ok();
  }
  if (changes > kTxnOpsMax) {
    return Status::Error(kExitError, std::to_string(changes) +
                                         " keys differ; a single transaction holds at most " +
                                         std::to_string(kTxnOpsMax));
  }
  *ctx.out << report;
  if (f.dry_run) {
    *ctx.out << "dry run: " << changes << " key(s) would be rolled back to revision " << f.to_rev
             << "\n";
    return Status::Ok();
  }
  etcdserverpb::TxnResponse resp;
  auto rpc = client->NewContext();
  Status s = RpcError(client->kv().Txn(rpc.get(), txn, &resp));
  if (!s.ok()) return s;
  if (!resp.succeeded()) {
    return Status::Error(kExitError,
                         "rollback aborted: a key changed since it was read; nothing was written");
  }
  *ctx.out << "rolled back " << changes << " key(s) to revision " << f.to_rev << " (new revision "
           << resp.header().revision() << ")\n";
  return Status::Ok();
}

}  // namespace

void RegisterRollback(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<RollbackFlags>();
  CLI::App* cmd = registry.AddCommand(
      &root, "rollback",
      "Restores a key (or every key under a prefix) to its value at a past revision, in one "
      "transaction that fails if any key changed meanwhile",
      "kvctl rollback /app/ --prefix --to-rev 42 --dry-run");
  cmd->add_option("args", flags->args, "<key or prefix>");
  cmd->add_option("--to-rev", flags->to_rev, "revision to restore")->required();
  cmd->add_flag("--prefix", flags->prefix, "roll back every key under the prefix");
  cmd->add_flag("--dry-run", flags->dry_run, "show the changes without writing");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunRollback(*ctx, *flags); });
}

}  // namespace cli
