// The kvctl command tree: global flags (etcdctl's names, defaults and ETCDCTL_* variables),
// subcommand registration and error reporting.
#include <cstdlib>
#include <istream>
#include <ostream>

#include "cli/commands.h"
#include "cli/lock_elect.h"

namespace cli {

CLI::App* Registry::AddCommand(CLI::App* parent, const std::string& name,
                               const std::string& description, const std::string& example) {
  CLI::App* sub = parent->add_subcommand(name, description);
  if (!example.empty()) sub->footer("Example:\n  " + example);
  return sub;
}

void Registry::SetAction(CLI::App* leaf, Action action) {
  actions_.emplace_back(leaf, std::move(action));
}

const Action* Registry::Find() const {
  const Action* best = nullptr;
  std::size_t best_depth = 0;
  for (const auto& [app, action] : actions_) {
    if (!app->parsed()) continue;
    std::size_t depth = 0;
    for (const CLI::App* p = app; p != nullptr; p = p->get_parent()) ++depth;
    if (depth > best_depth) {
      best = &action;
      best_depth = depth;
    }
  }
  return best;
}

std::unique_ptr<Client> DialGlobal(const Context& ctx) {
  return Client::Dial(ctx.global.endpoints, ctx.global.dial_timeout, ctx.global.command_timeout);
}

std::unique_ptr<Printer> MakePrinter(const Context& ctx, bool value_only) {
  PrinterOptions options;
  options.hex = ctx.global.hex;
  options.value_only = value_only;
  options.out = ctx.out;
  options.err = ctx.err;
  return NewPrinter(ctx.global.write_out, options);
}

std::string PrefixRangeEnd(const std::string& key) {
  std::string end = key;
  for (std::size_t i = end.size(); i > 0; --i) {
    auto& c = end[i - 1];
    if (static_cast<unsigned char>(c) < 0xff) {
      c = static_cast<char>(static_cast<unsigned char>(c) + 1);
      end.resize(i);
      return end;
    }
  }
  return std::string(1, '\0');
}

bool ReadAllBounded(std::istream& in, std::size_t bytes_max, std::string* out) {
  out->clear();
  char buf[8192];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    out->append(buf, static_cast<std::size_t>(in.gcount()));
    if (out->size() > bytes_max) return false;
  }
  return true;
}

namespace {

struct RawGlobals {
  std::string endpoints = "127.0.0.1:2379";
  std::string dial_timeout = "2s";
  std::string command_timeout = "5s";
  std::string write_out = "simple";
  bool hex = false;
};

// Applies ETCDCTL_<NAME> when the flag was not given; etcdctl refuses both at once.
Status ApplyEnv(const CLI::App& app, const char* flag, const char* env, std::string* value) {
  const char* from_env = std::getenv(env);
  if (from_env == nullptr) return Status::Ok();
  if (app.count(flag) > 0) {
    return Status::Error(kExitError, std::string("conflicting environment variable \"") + env +
                                         "\" is shadowed by corresponding command-line flag "
                                         "(either unset environment variable or disable flag)");
  }
  *value = from_env;
  return Status::Ok();
}

Status ResolveGlobals(const CLI::App& app, RawGlobals raw, GlobalOptions* global) {
  Status s = ApplyEnv(app, "--endpoints", "ETCDCTL_ENDPOINTS", &raw.endpoints);
  if (!s.ok()) return s;
  s = ApplyEnv(app, "--dial-timeout", "ETCDCTL_DIAL_TIMEOUT", &raw.dial_timeout);
  if (!s.ok()) return s;
  s = ApplyEnv(app, "--command-timeout", "ETCDCTL_COMMAND_TIMEOUT", &raw.command_timeout);
  if (!s.ok()) return s;
  s = ApplyEnv(app, "--write-out", "ETCDCTL_WRITE_OUT", &raw.write_out);
  if (!s.ok()) return s;
  std::string hex = raw.hex ? "true" : "false";
  s = ApplyEnv(app, "--hex", "ETCDCTL_HEX", &hex);
  if (!s.ok()) return s;

  global->endpoints = SplitComma(raw.endpoints);
  if (global->endpoints.empty()) return Status::Error(kExitBadArgs, "no endpoints given");
  auto dial = ParseGoDuration(raw.dial_timeout);
  if (!dial) {
    return Status::Error(kExitError, "invalid argument \"" + raw.dial_timeout +
                                         "\" for \"--dial-timeout\" flag: bad duration");
  }
  auto command = ParseGoDuration(raw.command_timeout);
  if (!command) {
    return Status::Error(kExitError, "invalid argument \"" + raw.command_timeout +
                                         "\" for \"--command-timeout\" flag: bad duration");
  }
  global->dial_timeout = *dial;
  global->command_timeout = *command;
  auto format = ParseOutputFormat(raw.write_out);
  if (!format) return Status::Error(kExitBadFeature, "unsupported output format");
  // etcdctl's "fields" dump is not reproduced; refuse it rather than print something else.
  if (*format == OutputFormat::kFields) {
    return Status::Error(kExitBadFeature,
                         "fields not supported as output format (use simple, json or table)");
  }
  global->write_out = *format;
  global->hex = hex == "true" || hex == "1";
  return Status::Ok();
}

// Adds every subcommand to `app`.
void RegisterAll(CLI::App& app, Registry& registry) {
  RegisterGet(app, registry);
  RegisterPut(app, registry);
  RegisterDel(app, registry);
  RegisterTxn(app, registry);
  RegisterWatch(app, registry);
  RegisterCompaction(app, registry);
  RegisterLease(app, registry);
  RegisterMember(app, registry);
  RegisterEndpoint(app, registry);
  RegisterSnapshot(app, registry);
  RegisterDefrag(app, registry);
  RegisterAlarm(app, registry);
  RegisterMoveLeader(app, registry);
  RegisterLock(app, registry);
  RegisterElect(app, registry);
  RegisterHistory(app, registry);
  RegisterDiff(app, registry);
  RegisterRollback(app, registry);
  RegisterImport(app, registry);
  RegisterExport(app, registry);
  RegisterCompletion(app, registry);
}

void CollectPaths(const CLI::App& app, const std::vector<std::string>& prefix,
                  std::vector<std::vector<std::string>>* out) {
  for (const CLI::App* sub : app.get_subcommands({})) {
    std::vector<std::string> path = prefix;
    path.push_back(sub->get_name());
    out->push_back(path);
    CollectPaths(*sub, path, out);
  }
}

int Report(Context& ctx, const Status& s) {
  if (!s.ok() && !s.message.empty()) *ctx.err << "Error: " << s.message << "\n";
  ctx.out->flush();
  ctx.err->flush();
  return s.exit_code;
}

}  // namespace

int RunKvctl(const std::vector<std::string>& args, Context context) {
  KVCTL_CHECK(context.in != nullptr && context.out != nullptr && context.err != nullptr);
  CLI::App app{
      "kvctl: an etcdctl-compatible client for kvd and etcd v3, with config-center "
      "commands (history, diff, rollback, import, export)",
      "kvctl"};
  app.fallthrough();
  app.require_subcommand(1);
  app.footer("Example:\n  kvctl --endpoints=127.0.0.1:2379 get --prefix /app/");
  RawGlobals raw;
  app.add_option("--endpoints", raw.endpoints, "gRPC endpoints (comma-separated)")
      ->capture_default_str();
  app.add_option("--dial-timeout", raw.dial_timeout, "dial timeout for client connections")
      ->capture_default_str();
  app.add_option("--command-timeout", raw.command_timeout,
                 "timeout for short running command (excluding dial timeout)")
      ->capture_default_str();
  app.add_option("-w,--write-out", raw.write_out, "set the output format (simple, json, table)")
      ->capture_default_str();
  app.add_flag("--hex", raw.hex, "print byte strings as hex encoded strings");

  Registry registry(&context);
  RegisterAll(app, registry);

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    const CLI::App* leaf = &app;
    // Show the help of the deepest subcommand named (bounded by the tree depth).
    for (bool descended = true; descended;) {
      descended = false;
      for (const CLI::App* sub : leaf->get_subcommands()) {
        leaf = sub;
        descended = true;
        break;
      }
    }
    *context.out << leaf->help();
    return kExitSuccess;
  } catch (const CLI::CallForAllHelp&) {
    *context.out << app.help("", CLI::AppFormatMode::All);
    return kExitSuccess;
  } catch (const CLI::ExtrasError& e) {
    std::string what = e.what();
    std::string flag;
    for (const auto& a : args) {
      if (a.rfind("-", 0) == 0 && what.find(a) != std::string::npos) {
        flag = a.substr(0, a.find('='));
        break;
      }
    }
    return Report(context,
                  Status::Error(kExitError, flag.empty() ? what : "unknown flag: " + flag));
  } catch (const CLI::ParseError& e) {
    return Report(context, Status::Error(kExitError, e.what()));
  }

  Status s = ResolveGlobals(app, raw, &context.global);
  if (!s.ok()) return Report(context, s);
  const Action* action = registry.Find();
  if (action == nullptr) {
    *context.out << app.help();
    return kExitSuccess;
  }
  return Report(context, (*action)());
}

std::vector<std::vector<std::string>> CommandPaths() {
  Context context;
  CLI::App app{"kvctl", "kvctl"};
  Registry registry(&context);
  RegisterAll(app, registry);
  std::vector<std::vector<std::string>> paths;
  CollectPaths(app, {}, &paths);
  return paths;
}

}  // namespace cli
