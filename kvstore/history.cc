#include "kvstore/history.h"

namespace kvstore {

bool KeyRange::Contains(const std::string& k) const {
  if (range_end.empty()) return k == key;
  if (range_end == std::string(1, '\0')) return k >= key;  // std::string compares as unsigned
  return k >= key && k < range_end;
}

bool KeyRange::IsEmpty() const {
  if (range_end.empty() || range_end == std::string(1, '\0')) return false;
  return range_end <= key;
}

}  // namespace kvstore
