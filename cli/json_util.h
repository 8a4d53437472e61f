// Go encoding/json spellings of etcd messages, as etcdctl's json printer emits them (field
// names from the gogo json tags, omitempty, bytes as standard base64).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "proto/rpc.pb.h"

namespace cli {

using OrderedJson = nlohmann::ordered_json;

std::string Base64Encode(std::string_view bytes);
// nullopt-free decoder: returns false on malformed input.
bool Base64Decode(std::string_view text, std::string* out);

OrderedJson HeaderJson(const etcdserverpb::ResponseHeader& h);
// Header fields inlined into `obj` (Go's embedded *ResponseHeader), omitempty.
void InlineHeader(const etcdserverpb::ResponseHeader& h, OrderedJson* obj);
OrderedJson KeyValueJson(const mvccpb::KeyValue& kv);
OrderedJson RangeJson(const etcdserverpb::RangeResponse& r);
OrderedJson PutJson(const etcdserverpb::PutResponse& r);
OrderedJson DeleteJson(const etcdserverpb::DeleteRangeResponse& r);
OrderedJson TxnJson(const etcdserverpb::TxnResponse& r);
// Compact form like Go's json.Marshal (invalid UTF-8 replaced by U+FFFD).
std::string DumpGoJson(const OrderedJson& j);

}  // namespace cli
