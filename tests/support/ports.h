// Free TCP ports on 127.0.0.1 for servers started by tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvtest {

// Returns `count` distinct ports (1 <= count <= 64) that were free on 127.0.0.1 when probed.
// Each port comes from binding 127.0.0.1:0; all probe sockets stay open until every port is
// picked, so the ports differ from each other, and a process-wide record keeps this process
// from handing out the same port twice. Another process may still take a port before the
// server binds it: a race the caller can only make unlikely, not impossible.
// Thread-safe. Throws SupportError if the sockets cannot be created or bound.
std::vector<std::uint16_t> PickFreePorts(std::size_t count);

// One free port; see PickFreePorts.
std::uint16_t PickFreePort();

}  // namespace kvtest
