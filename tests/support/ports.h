// Free TCP ports on 127.0.0.1 for servers started by tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvtest {

// Returns `count` distinct ports (1 <= count <= 64) that were free on 127.0.0.1 when probed.
// Ports are drawn at random below the kernel's ephemeral range (from 10000; KVTEST_PORT_RANGE=
// lo-hi overrides), so no outgoing connection takes one before the server binds it, and each
// is locked (flock on $TMPDIR/kvtest-ports/<port>.lock, held until the process exits or 256
// later ports were handed out), so two test processes never hand out the same port. A
// process that is not a test may still take one: the probe bind only makes that unlikely.
// Without room below the ephemeral range, falls back to binding port 0 (no cross-process lock).
// Thread-safe. Throws SupportError if the sockets cannot be created or bound.
std::vector<std::uint16_t> PickFreePorts(std::size_t count);

// One free port; see PickFreePorts.
std::uint16_t PickFreePort();

}  // namespace kvtest
