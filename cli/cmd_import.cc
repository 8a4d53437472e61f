// kvctl import FILE --prefix P: flattens a YAML/JSON/.properties/.env file into keys P/a/b
// and writes the new or changed ones in transactions of at most 128 ops, each guarded by
// the mod revisions read before (a concurrent change aborts that batch).
#include <algorithm>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/config_tree.h"
#include "cli/kv_read.h"
#include "cli/progress.h"

namespace cli {
namespace {

constexpr std::size_t kBatchOpsMax = 128;

struct ImportFlags {
  std::vector<std::string> args;
  std::string prefix;
  std::string format;
  bool dry_run = false;
};

Status ReadFile(const std::string& path, std::string* text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error(kExitIO, "cannot open " + path);
  if (!ReadAllBounded(in, kConfigBytesMax, text)) {
    return Status::Error(kExitInvalidInput, path + ": file larger than 16 MiB");
  }
  return Status::Ok();
}

Status RunImport(Context& ctx, const ImportFlags& f) {
  if (f.args.size() != 1) return Status::Error(kExitBadArgs, "import command needs one FILE");
  const std::string& path = f.args[0];
  ConfigFormat format;
  if (!f.format.empty()) {
    if (!ConfigFormatFromPath("x." + f.format, &format)) {
      return Status::Error(kExitBadArgs,
                           "unknown --format " + f.format + " (yaml, json, properties or env)");
    }
  } else if (!ConfigFormatFromPath(path, &format)) {
    return Status::Error(kExitBadArgs, path +
                                           ": unknown file type (use .yaml, .yml, .json, "
                                           ".properties, .env or --format)");
  }
  std::string text;
  Status s = ReadFile(path, &text);
  if (!s.ok()) return s;
  ConfigNode root;
  s = ParseConfig(text, format, &root);
  if (!s.ok()) return Status::Error(s.exit_code, path + ": " + s.message);
  const std::string dir = DirPrefix(f.prefix);
  std::map<std::string, std::string> wanted;
  for (const auto& [p, value] : Flatten(root)) {
    if (p.empty()) return Status::Error(kExitInvalidInput, path + ": document is a single scalar");
    wanted[dir + p] = value;
  }
  auto client = DialGlobal(ctx);
  std::map<std::string, mvccpb::KeyValue> current;
  s = GetPrefixAt(*client, dir, 0, kConfigEntriesMax, &current);
  if (!s.ok()) return s;

  struct Change {
    std::string key;
    std::string value;
    std::int64_t mod_revision = 0;  // 0: the key is new
  };
  std::vector<Change> changes;
  std::size_t unchanged = 0;
  for (const auto& [key, value] : wanted) {
    auto it = current.find(key);
    if (it != current.end() && it->second.value() == value) {
      ++unchanged;
      continue;
    }
    changes.push_back({key, value, it == current.end() ? 0 : it->second.mod_revision()});
  }
  if (f.dry_run) {
    for (const auto& c : changes) {
      if (c.mod_revision == 0) {
        *ctx.out << "+ " << c.key << " = " << c.value << "\n";
      } else {
        *ctx.out << "~ " << c.key << ": " << current[c.key].value() << " -> " << c.value << "\n";
      }
    }
    *ctx.out << "dry run: " << changes.size() << " key(s) would be written, " << unchanged
             << " unchanged\n";
    return Status::Ok();
  }
  ProgressBar bar(ctx.err, ctx.stderr_is_tty, "import", changes.size());
  std::size_t written = 0;
  for (std::size_t start = 0; start < changes.size(); start += kBatchOpsMax) {
    std::size_t end = std::min(changes.size(), start + kBatchOpsMax);
    etcdserverpb::TxnRequest txn;
    for (std::size_t i = start; i < end; ++i) {
      auto* cmp = txn.add_compare();
      cmp->set_key(changes[i].key);
      if (changes[i].mod_revision == 0) {
        cmp->set_target(etcdserverpb::Compare::CREATE);
        cmp->set_create_revision(0);
      } else {
        cmp->set_target(etcdserverpb::Compare::MOD);
        cmp->set_mod_revision(changes[i].mod_revision);
      }
      auto* put = txn.add_success()->mutable_request_put();
      put->set_key(changes[i].key);
      put->set_value(changes[i].value);
    }
    etcdserverpb::TxnResponse resp;
    auto rpc = client->NewContext();
    s = RpcError(client->kv().Txn(rpc.get(), txn, &resp));
    if (s.ok() && !resp.succeeded()) {
      s = Status::Error(kExitError, "a key in batch " + std::to_string(start / kBatchOpsMax + 1) +
                                        " changed concurrently; that batch was not written");
    }
    if (!s.ok()) {
      bar.Finish();
      return Status::Error(s.exit_code, s.message + " (" + std::to_string(written) +
                                            " key(s) written before the failure)");
    }
    written = end;
    bar.Update(written);
  }
  bar.Finish();
  *ctx.out << "imported " << written << " key(s) under " << (dir.empty() ? "/" : dir) << ", "
           << unchanged << " unchanged\n";
  return Status::Ok();
}

}  // namespace

void RegisterImport(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<ImportFlags>();
  CLI::App* cmd = registry.AddCommand(
      &root, "import",
      "Imports a YAML, JSON, .properties or .env file as keys under a prefix (a/b -> P/a/b)",
      "kvctl import app.yaml --prefix /app --dry-run");
  cmd->add_option("args", flags->args, "<file>");
  cmd->add_option("--prefix", flags->prefix, "key prefix for the imported keys")->required();
  cmd->add_option("--format", flags->format,
                  "file format (yaml, json, properties, env); default: by extension");
  cmd->add_flag("--dry-run", flags->dry_run, "show the changes without writing");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunImport(*ctx, *flags); });
}

}  // namespace cli
