// kvctl diff KEY REV_A [REV_B]: a unified diff of two versions of a key, or for JSON/YAML
// values the changed paths.
#include <charconv>

#include "cli/commands.h"
#include "cli/diff.h"
#include "cli/kv_read.h"

namespace cli {
namespace {

struct DiffFlags {
  std::vector<std::string> args;
  bool text = false;
};

bool ParseRev(const std::string& s, std::int64_t* rev) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *rev);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && *rev > 0;
}

Status RunDiff(Context& ctx, const DiffFlags& f) {
  if (f.args.size() < 2 || f.args.size() > 3) {
    return Status::Error(kExitBadArgs, "diff command needs KEY REV_A [REV_B]");
  }
  std::int64_t rev_a = 0;
  std::int64_t rev_b = 0;
  if (!ParseRev(f.args[1], &rev_a)) return Status::Error(kExitBadArgs, "bad revision " + f.args[1]);
  if (f.args.size() == 3 && !ParseRev(f.args[2], &rev_b)) {
    return Status::Error(kExitBadArgs, "bad revision " + f.args[2]);
  }
  const std::string& key = f.args[0];
  auto client = DialGlobal(ctx);
  std::optional<mvccpb::KeyValue> a;
  std::optional<mvccpb::KeyValue> b;
  Status s = GetKeyAt(*client, key, rev_a, &a);
  if (!s.ok()) return s;
  std::int64_t latest = 0;
  s = GetKeyAt(*client, key, rev_b, &b, &latest);
  if (!s.ok()) return s;
  if (!a && !b) {
    return Status::Error(kExitError, "key \"" + key + "\" exists at neither revision");
  }
  std::string label_a = key + "@" + std::to_string(rev_a) + (a ? "" : " (absent)");
  std::string label_b =
      key + "@" + (rev_b == 0 ? std::to_string(latest) + " (latest)" : std::to_string(rev_b)) +
      (b ? "" : " (absent)");
  std::string va = a ? a->value() : "";
  std::string vb = b ? b->value() : "";
  ConfigNode ta;
  ConfigNode tb;
  if (!f.text && ParseStructured(va, &ta) && ParseStructured(vb, &tb)) {
    auto changes = StructuralDiff(ta, tb);
    if (!changes.empty()) {
      *ctx.out << "--- " << label_a << "\n+++ " << label_b << "\n" << FormatPathChanges(changes);
    }
    return Status::Ok();
  }
  *ctx.out << UnifiedDiff(va, vb, label_a, label_b);
  return Status::Ok();
}

}  // namespace

void RegisterDiff(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<DiffFlags>();
  CLI::App* cmd = registry.AddCommand(
      &root, "diff",
      "Diffs two versions of a key (REV_B defaults to the latest); JSON and YAML values are "
      "compared by path",
      "kvctl diff /app/config.yaml 42      # revision 42 against the latest");
  cmd->add_option("args", flags->args, "<key> <rev_a> [rev_b]");
  cmd->add_flag("--text", flags->text, "always show a line diff, even for JSON/YAML values");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunDiff(*ctx, *flags); });
}

}  // namespace cli
