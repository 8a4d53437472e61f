#include "kvstore/crc32c.h"

#include <array>
#include <cstring>

namespace kvstore {

namespace {

constexpr uint32_t kCrc32cPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) {
      c = (c & 1u) != 0 ? (c >> 1) ^ kCrc32cPoly : c >> 1;
    }
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

uint32_t ExtendPortable(uint32_t c, const unsigned char* p, size_t n) {
  for (size_t k = 0; k < n; ++k) {
    c = kCrcTable[(c ^ p[k]) & 0xFFu] ^ (c >> 8);
  }
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendHardware(uint32_t c, const unsigned char* p,
                                                          size_t n) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t v = 0;
    std::memcpy(&v, p, sizeof v);
    c64 = __builtin_ia32_crc32di(c64, v);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(c64);
  for (size_t k = 0; k < n; ++k) {
    c = __builtin_ia32_crc32qi(c, p[k]);
  }
  return c;
}
bool HaveSse42() {
  static const bool have = __builtin_cpu_supports("sse4.2") != 0;
  return have;
}
#endif

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

uint32_t Crc32cPortable(std::string_view data, uint32_t crc) {
  return ~ExtendPortable(~crc, Bytes(data), data.size());
}

uint32_t Crc32c(std::string_view data, uint32_t crc) {
#if defined(__x86_64__)
  if (HaveSse42()) {
    return ~ExtendHardware(~crc, Bytes(data), data.size());
  }
#endif
  return Crc32cPortable(data, crc);
}

}  // namespace kvstore
