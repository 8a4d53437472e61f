// Registration of `lock` and `elect` (cmd_lock.cc, cmd_elect.cc), kept out of commands.h so
// that these session-based commands stay separate from the single-RPC ones.
#pragma once
#include "cli/commands.h"

namespace cli {

void RegisterLock(CLI::App& root, Registry& registry);
void RegisterElect(CLI::App& root, Registry& registry);

}  // namespace cli
