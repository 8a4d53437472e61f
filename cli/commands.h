// Subcommand registration: one file per subcommand (cmd_<name>.cc) adds itself to the CLI11
// tree and registers the action that runs when it is the parsed leaf.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/options.h"
#include "cli/printer.h"
#include "cli/status.h"

namespace cli {

using Action = std::function<Status()>;

// Maps parsed leaf subcommands to their actions. Holds non-owning pointers into the CLI11
// tree, which outlives it.
class Registry {
 public:
  explicit Registry(Context* context) : context_(context) {}
  Context& context() { return *context_; }
  // `example` is appended to the subcommand's --help.
  CLI::App* AddCommand(CLI::App* parent, const std::string& name, const std::string& description,
                       const std::string& example);
  void SetAction(CLI::App* leaf, Action action);
  // The action of the deepest parsed subcommand, or nullptr.
  const Action* Find() const;

 private:
  Context* context_;
  std::vector<std::pair<CLI::App*, Action>> actions_;
};

// Per-subcommand registration functions (cmd_*.cc).
void RegisterGet(CLI::App& root, Registry& registry);
void RegisterPut(CLI::App& root, Registry& registry);
void RegisterDel(CLI::App& root, Registry& registry);
void RegisterTxn(CLI::App& root, Registry& registry);
void RegisterWatch(CLI::App& root, Registry& registry);
void RegisterCompaction(CLI::App& root, Registry& registry);
void RegisterLease(CLI::App& root, Registry& registry);
void RegisterMember(CLI::App& root, Registry& registry);
void RegisterEndpoint(CLI::App& root, Registry& registry);
void RegisterSnapshot(CLI::App& root, Registry& registry);
void RegisterDefrag(CLI::App& root, Registry& registry);
void RegisterAlarm(CLI::App& root, Registry& registry);
void RegisterMoveLeader(CLI::App& root, Registry& registry);
void RegisterHistory(CLI::App& root, Registry& registry);
void RegisterDiff(CLI::App& root, Registry& registry);
void RegisterRollback(CLI::App& root, Registry& registry);
void RegisterImport(CLI::App& root, Registry& registry);
void RegisterExport(CLI::App& root, Registry& registry);
void RegisterCompletion(CLI::App& root, Registry& registry);

// Helpers shared by the commands.
std::unique_ptr<Client> DialGlobal(const Context& ctx);
std::unique_ptr<Printer> MakePrinter(const Context& ctx, bool value_only = false);
// etcd's prefix range end: increment the last byte < 0xff and cut after it; "\0" if none.
std::string PrefixRangeEnd(const std::string& key);
// Reads all of `in` up to `bytes_max`; false if the limit is exceeded.
bool ReadAllBounded(std::istream& in, std::size_t bytes_max, std::string* out);

// The completion script for `shell` ("bash" or "zsh") generated from the command tree.
std::string CompletionScript(const CLI::App& root, const std::string& shell);

// Every command path of the tree ({"get"}, {"lease"}, {"lease", "grant"}, ...), parents before
// their children.
std::vector<std::vector<std::string>> CommandPaths();

// Runs kvctl with `args` (without argv[0]); returns the exit code. Used by main() and tests.
int RunKvctl(const std::vector<std::string>& args, Context context);

}  // namespace cli
