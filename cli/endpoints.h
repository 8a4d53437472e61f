// The endpoint list of commands that run once per member (endpoint *, defrag): the
// --endpoints flag, or with --cluster every member's client URLs from MemberList.
#pragma once
#include <string>
#include <vector>

#include "cli/options.h"
#include "cli/status.h"

namespace cli {

Status ResolveEndpoints(const Context& ctx, bool cluster, std::vector<std::string>* endpoints);

}  // namespace cli
