// kvctl export --prefix P --format yaml|json: every key under P (one consistent revision)
// rebuilt into a document; `import` of the output restores the same keys.
#include <fstream>

#include "cli/commands.h"
#include "cli/config_tree.h"
#include "cli/kv_read.h"
#include "cli/progress.h"

namespace cli {
namespace {

struct ExportFlags {
  std::vector<std::string> args;
  std::string prefix;
  std::string format = "yaml";
  std::string output;
};

Status RunExport(Context& ctx, const ExportFlags& f) {
  if (!f.args.empty()) return Status::Error(kExitBadArgs, "export takes no positional arguments");
  if (f.format != "yaml" && f.format != "json") {
    return Status::Error(kExitBadArgs, "unknown --format " + f.format + " (yaml or json)");
  }
  const std::string dir = DirPrefix(f.prefix);
  auto client = DialGlobal(ctx);
  std::map<std::string, mvccpb::KeyValue> kvs;
  ProgressBar bar(ctx.err, ctx.stderr_is_tty, "export", 0);
  Status s = GetPrefixAt(*client, dir, 0, kConfigEntriesMax, &kvs, nullptr,
                         [&bar](std::size_t n) { bar.Update(n); });
  bar.Finish();
  if (!s.ok()) return s;
  std::map<std::string, std::string> flat;
  for (const auto& [key, kv] : kvs) {
    std::string path = key.substr(dir.size());
    if (path.empty()) continue;
    flat[path] = kv.value();
  }
  ConfigNode root;
  s = Unflatten(flat, &root);
  if (!s.ok()) return s;
  std::string text = f.format == "json" ? EmitJson(root) : EmitYaml(root);
  if (f.output.empty()) {
    *ctx.out << text;
    return Status::Ok();
  }
  std::ofstream out(f.output, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::Error(kExitIO, "cannot write " + f.output);
  return Status::Ok();
}

}  // namespace

void RegisterExport(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<ExportFlags>();
  CLI::App* cmd = registry.AddCommand(&root, "export",
                                      "Exports every key under a prefix as a YAML or JSON "
                                      "document",
                                      "kvctl export --prefix /app --format json -o app.json");
  cmd->add_option("args", flags->args, "(none)");
  cmd->add_option("--prefix", flags->prefix, "key prefix to export")->required();
  cmd->add_option("--format", flags->format, "yaml or json")->capture_default_str();
  cmd->add_option("-o,--output", flags->output, "write to this file instead of stdout");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunExport(*ctx, *flags); });
}

}  // namespace cli
