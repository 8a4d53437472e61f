// kvctl history KEY: every retained change of a key, oldest first, including deletes
// (tombstones) and the versions of earlier lives before a delete and re-create. Read with a
// Watch replay from the compaction revision (see ReadKeyHistory).

#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/kv_read.h"

namespace cli {
namespace {

struct HistoryFlags {
  std::vector<std::string> args;
  std::size_t limit = 1000;
};

// A history longer than this many events (all keys' events when the key is deleted now) is
// refused rather than streamed without end.
constexpr std::size_t kHistoryEventsMax = 1000000;

Status RunHistory(Context& ctx, const HistoryFlags& f) {
  if (f.args.size() != 1) return Status::Error(kExitBadArgs, "history command needs one key");
  if (f.limit == 0) return Status::Error(kExitBadArgs, "--limit must be positive");
  auto client = DialGlobal(ctx);
  std::vector<KeyChange> changes;
  std::int64_t compact_rev = 0;
  Status s = ReadKeyHistory(*client, f.args[0], f.limit, kHistoryEventsMax, &changes, &compact_rev);
  if (!s.ok()) return s;
  if (changes.empty()) {
    if (compact_rev > 0) {
      *ctx.err << "older revisions of " << f.args[0] << " have been compacted (compact revision "
               << compact_rev << ")\n";
    }
    return Status::Error(kExitError, "key \"" + f.args[0] + "\" not found");
  }
  auto value = [&ctx](const std::string& v) { return ctx.global.hex ? HexWithPrefix(v) : v; };
  if (ctx.global.write_out == OutputFormat::kJson) {
    OrderedJson arr = OrderedJson::array();
    for (const auto& c : changes) {
      if (c.deleted) {
        arr.push_back(OrderedJson{{"revision", c.revision}, {"deleted", true}});
        continue;
      }
      const auto& v = c.kv;
      arr.push_back(OrderedJson{{"revision", v.mod_revision()},
                                {"version", v.version()},
                                {"create_revision", v.create_revision()},
                                {"mod_revision", v.mod_revision()},
                                {"lease", v.lease()},
                                {"value", value(v.value())}});
    }
    *ctx.out << DumpGoJson(arr) << "\n";
  } else if (ctx.global.write_out == OutputFormat::kTable) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : changes) {
      if (c.deleted) {
        rows.push_back({std::to_string(c.revision), "-", "-", "(deleted)"});
        continue;
      }
      const auto& v = c.kv;
      rows.push_back({std::to_string(v.mod_revision()), std::to_string(v.version()),
                      std::to_string(v.create_revision()), value(v.value())});
    }
    *ctx.out << RenderTable({"revision", "version", "create revision", "value"}, rows);
  } else {
    for (const auto& c : changes) {
      if (c.deleted) {
        *ctx.out << "revision " << c.revision << " (deleted)\n";
        continue;
      }
      const auto& v = c.kv;
      *ctx.out << "revision " << v.mod_revision() << " (version " << v.version()
               << ", create_revision " << v.create_revision() << ", mod_revision "
               << v.mod_revision() << ")\n"
               << value(v.value()) << "\n";
    }
  }
  if (compact_rev > 0) {
    *ctx.err << "older revisions of " << f.args[0] << " have been compacted (compact revision "
             << compact_rev << ")\n";
  }
  return Status::Ok();
}

}  // namespace

void RegisterHistory(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<HistoryFlags>();
  CLI::App* cmd = registry.AddCommand(
      &root, "history", "Shows every retained revision of a key, oldest first, deletes included",
      "kvctl history /app/config.yaml -w table");
  cmd->add_option("args", flags->args, "<key>");
  cmd->add_option("--limit", flags->limit, "show at most this many of the latest changes")
      ->capture_default_str();
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunHistory(*ctx, *flags); });
}

}  // namespace cli
