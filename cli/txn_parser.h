// etcdctl's txn script syntax: compares, an empty line, success ops, an empty line, failure
// ops, an empty line. Compares: `<target>("<key>") <op> "<value>"` with target
// ver|version|c|create|m|mod|val|value|lease and op = != > <. Ops: put/get/del lines with the
// same flags as the commands. Errors carry etcdctl's message prefixed by "line N: ".
#pragma once
#include <istream>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/status.h"
#include "proto/rpc.pb.h"

namespace cli {

// Limits that bound the parser's work: lines per script and bytes per line.
inline constexpr std::size_t kTxnLinesMax = 4096;
inline constexpr std::size_t kTxnLineBytesMax = 2 * 1024 * 1024;

// Splits a line like etcdctl's argify: whitespace-separated words, "double quoted" strings
// with Go escapes, 'single quoted' strings taken literally.
std::vector<std::string> Argify(std::string_view line);

// Parses one comparison line (already trimmed). Errors: exit code 3 (invalid input).
Status ParseCompare(std::string_view line, etcdserverpb::Compare* cmp);
// Parses one op line (already trimmed).
Status ParseRequestOp(std::string_view line, etcdserverpb::RequestOp* op);

// Reads a whole script from `in`. When `prompts` is non-null (interactive mode), writes
// etcdctl's section prompts to it before each section.
Status ParseTxnScript(std::istream& in, std::ostream* prompts, etcdserverpb::TxnRequest* req);

}  // namespace cli
