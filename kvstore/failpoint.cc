#include "kvstore/failpoint.h"

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace kvstore::failpoint {
namespace {

enum class Kind : int { kOff = 0, kSleep = 1, kError = 2, kPanic = 3 };

struct Point {
  const char* name;
  std::atomic<int> kind{0};
  std::atomic<int64_t> sleep_ms{0};
};

// Fixed set: a typo in a test is an error, not a silently unarmed point. Sorted by name.
std::array<Point, 4> points = {{
    {"backendBeforeCommit"},
    {"raftAfterSave"},
    {"raftBeforeSave"},
    {"restoreAfterDrop"},
}};

// How many points are armed: the only thing Eval reads when none is.
std::atomic<int> armed{0};

// Upper bound of sleep(MS): a stuck test must still end.
constexpr int64_t kSleepMsMax = 60 * 1000;

Point* Find(std::string_view name) {
  for (auto& p : points) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

}  // namespace

bool Known(std::string_view name) { return Find(name) != nullptr; }

Status Eval(std::string_view name) {
  if (armed.load(std::memory_order_relaxed) == 0) return Status::Ok();
  Point* p = Find(name);
  KV_CHECK(p != nullptr, "unknown failpoint %.*s", static_cast<int>(name.size()), name.data());
  switch (static_cast<Kind>(p->kind.load())) {
    case Kind::kOff:
      return Status::Ok();
    case Kind::kSleep:
      std::this_thread::sleep_for(std::chrono::milliseconds(p->sleep_ms.load()));
      return Status::Ok();
    case Kind::kError:
      return {Code::kInternal, std::string("failpoint ") + p->name + ": injected I/O error"};
    case Kind::kPanic:
      std::fprintf(stderr, "failpoint %s: panic\n", p->name);
      std::fflush(stderr);
      std::abort();
  }
  return Status::Ok();
}

Status Set(std::string_view name, std::string_view action) {
  Point* p = Find(name);
  if (p == nullptr) {
    return {Code::kInvalidArgument, "unknown failpoint \"" + std::string(name) + "\""};
  }
  Kind kind = Kind::kOff;
  int64_t ms = 0;
  if (action == "off") {
    kind = Kind::kOff;
  } else if (action == "error") {
    kind = Kind::kError;
  } else if (action == "panic") {
    kind = Kind::kPanic;
  } else if (action.starts_with("sleep(") && action.ends_with(")")) {
    const std::string_view num = action.substr(6, action.size() - 7);
    auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), ms);
    if (ec != std::errc() || end != num.data() + num.size() || ms < 0 || ms > kSleepMsMax) {
      return {Code::kInvalidArgument, "failpoint " + std::string(name) + ": bad sleep \"" +
                                          std::string(action) + "\" (0 to 60000 ms)"};
    }
    kind = Kind::kSleep;
  } else {
    return {Code::kInvalidArgument, "failpoint " + std::string(name) + ": unknown action \"" +
                                        std::string(action) + "\" (off, sleep(MS), error, panic)"};
  }
  p->sleep_ms.store(ms);
  const int old = p->kind.exchange(static_cast<int>(kind));
  if (old == 0 && kind != Kind::kOff) armed.fetch_add(1);
  if (old != 0 && kind == Kind::kOff) armed.fetch_sub(1);
  return Status::Ok();
}

Status SetFromSpec(std::string_view spec) {
  while (!spec.empty()) {
    const size_t semi = spec.find(';');
    const std::string_view item = spec.substr(0, semi);
    spec = semi == std::string_view::npos ? std::string_view() : spec.substr(semi + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return {Code::kInvalidArgument,
              "failpoint spec \"" + std::string(item) + "\": expected name=action"};
    }
    if (Status s = Set(item.substr(0, eq), item.substr(eq + 1)); !s.ok()) return s;
  }
  return Status::Ok();
}

std::string List() {
  std::string out;
  for (const auto& p : points) {
    switch (static_cast<Kind>(p.kind.load())) {
      case Kind::kOff:
        break;
      case Kind::kSleep:
        out += std::string(p.name) + "=sleep(" + std::to_string(p.sleep_ms.load()) + ")\n";
        break;
      case Kind::kError:
        out += std::string(p.name) + "=error\n";
        break;
      case Kind::kPanic:
        out += std::string(p.name) + "=panic\n";
        break;
    }
  }
  return out;
}

}  // namespace kvstore::failpoint
