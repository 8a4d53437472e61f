// SHA-256 (FIPS 180-4), for checking the trailer of the Maintenance/Snapshot stream. The
// project takes no crypto library dependency, and a test needs only a one-shot digest.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace kvcompat {

std::array<std::uint8_t, 32> Sha256(std::string_view data);

}  // namespace kvcompat
