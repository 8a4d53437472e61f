// kvstore::Status: the result of an operation that can fail for environmental reasons (I/O, bad
// request, missing lease). Broken invariants never come back as a Status: they abort via
// KV_CHECK. Codes are numbered like gRPC status codes so the server maps them one to one, and
// messages are etcd's exact strings where etcd has one (clients match on the text).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

namespace kvstore {

enum class Code : int {
  kOk = 0,
  kCanceled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kNotFound = 5,
  kFailedPrecondition = 9,
  kResourceExhausted = 8,
  kOutOfRange = 11,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const {
    return ok() ? "OK" : "code " + std::to_string(static_cast<int>(code_)) + ": " + message_;
  }
  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// etcd's errors (rpctypes/error.go), with the exact codes and messages clients match on.
namespace errors {
inline Status KeyNotProvided() {
  return {Code::kInvalidArgument, "etcdserver: key is not provided"};
}
inline Status KeyNotFound() { return {Code::kInvalidArgument, "etcdserver: key not found"}; }
inline Status ValueProvided() { return {Code::kInvalidArgument, "etcdserver: value is provided"}; }
inline Status LeaseProvided() { return {Code::kInvalidArgument, "etcdserver: lease is provided"}; }
inline Status TooManyOps() {
  return {Code::kInvalidArgument, "etcdserver: too many operations in txn request"};
}
inline Status DuplicateKey() {
  return {Code::kInvalidArgument, "etcdserver: duplicate key given in txn request"};
}
inline Status Compacted() {
  return {Code::kOutOfRange, "etcdserver: mvcc: required revision has been compacted"};
}
inline Status FutureRev() {
  return {Code::kOutOfRange, "etcdserver: mvcc: required revision is a future revision"};
}
inline Status NoSpace() {
  return {Code::kResourceExhausted, "etcdserver: mvcc: database space exceeded"};
}
// While a CORRUPT alarm is active (etcd's applierV3Corrupt).
inline Status Corrupt() { return {Code::kDataLoss, "etcdserver: corrupt cluster"}; }
inline Status LeaseNotFound() { return {Code::kNotFound, "etcdserver: requested lease not found"}; }
inline Status LeaseExists() {
  return {Code::kFailedPrecondition, "etcdserver: lease already exists"};
}
inline Status LeaseTtlTooLarge() { return {Code::kOutOfRange, "etcdserver: too large lease TTL"}; }
inline Status RequestTooLarge() {
  return {Code::kInvalidArgument, "etcdserver: request is too large"};
}
}  // namespace errors

}  // namespace kvstore

// KV_CHECK(cond, fmt, ...): an always-on invariant check (also in release builds). A broken
// invariant means the store can no longer be trusted, so it aborts loudly with the state given.
#define KV_CHECK(cond, ...)                                                                       \
  do {                                                                                            \
    if (!(cond)) [[unlikely]] {                                                                   \
      std::fprintf(stderr, "kvstore invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, "  " __VA_ARGS__);                                                     \
      std::fprintf(stderr, "\n");                                                                 \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)
