// kvctl history KEY: every retained revision of a key (walking back with Range at
// mod_revision - 1), oldest first.
#include <algorithm>

#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/kv_read.h"

namespace cli {
namespace {

struct HistoryFlags {
  std::vector<std::string> args;
  std::size_t limit = 1000;
};

Status RunHistory(Context& ctx, const HistoryFlags& f) {
  if (f.args.size() != 1) return Status::Error(kExitBadArgs, "history command needs one key");
  if (f.limit == 0) return Status::Error(kExitBadArgs, "--limit must be positive");
  auto client = DialGlobal(ctx);
  std::vector<mvccpb::KeyValue> versions;
  std::optional<mvccpb::KeyValue> kv;
  Status s = GetKeyAt(*client, f.args[0], 0, &kv);
  if (!s.ok()) return s;
  bool compacted = false;
  // Bounded by --limit versions.
  while (kv && versions.size() < f.limit) {
    versions.push_back(*kv);
    if (kv->version() <= 1 || kv->mod_revision() <= 1) break;
    s = GetKeyAt(*client, f.args[0], kv->mod_revision() - 1, &kv);
    if (!s.ok()) {
      if (s.message.find("compacted") == std::string::npos) return s;
      compacted = true;
      break;
    }
  }
  if (versions.empty()) return Status::Error(kExitError, "key \"" + f.args[0] + "\" not found");
  std::reverse(versions.begin(), versions.end());
  if (ctx.global.write_out == OutputFormat::kJson) {
    OrderedJson arr = OrderedJson::array();
    for (const auto& v : versions) {
      arr.push_back(OrderedJson{{"revision", v.mod_revision()},
                                {"version", v.version()},
                                {"create_revision", v.create_revision()},
                                {"mod_revision", v.mod_revision()},
                                {"lease", v.lease()},
                                {"value", v.value()}});
    }
    *ctx.out << DumpGoJson(arr) << "\n";
  } else if (ctx.global.write_out == OutputFormat::kTable) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& v : versions) {
      rows.push_back({std::to_string(v.mod_revision()), std::to_string(v.version()),
                      std::to_string(v.create_revision()), v.value()});
    }
    *ctx.out << RenderTable({"revision", "version", "create revision", "value"}, rows);
  } else {
    for (const auto& v : versions) {
      *ctx.out << "revision " << v.mod_revision() << " (version " << v.version()
               << ", create_revision " << v.create_revision() << ", mod_revision "
               << v.mod_revision() << ")\n"
               << (ctx.global.hex ? HexWithPrefix(v.value()) : v.value()) << "\n";
    }
  }
  if (compacted) *ctx.err << "older revisions of " << f.args[0] << " have been compacted\n";
  return Status::Ok();
}

}  // namespace

void RegisterHistory(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<HistoryFlags>();
  CLI::App* cmd =
      registry.AddCommand(&root, "history", "Shows every retained revision of a key, oldest first",
                          "kvctl history /app/config.yaml -w table");
  cmd->add_option("args", flags->args, "<key>");
  cmd->add_option("--limit", flags->limit, "maximum number of versions to show")
      ->capture_default_str();
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunHistory(*ctx, *flags); });
}

}  // namespace cli
