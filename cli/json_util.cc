#include "cli/json_util.h"

namespace cli {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    auto n = (static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16) |
             (static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
             static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 2]));
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) n |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  out->clear();
  unsigned buffer = 0;
  int bits = 0;
  std::size_t padding = 0;
  for (char c : text) {
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding > 0) return false;
    const char* pos = std::char_traits<char>::find(kAlphabet, 64, c);
    if (pos == nullptr) return false;
    buffer = (buffer << 6) | static_cast<unsigned>(pos - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return padding <= 2;
}

void InlineHeader(const etcdserverpb::ResponseHeader& h, OrderedJson* obj) {
  if (h.cluster_id() != 0) (*obj)["cluster_id"] = h.cluster_id();
  if (h.member_id() != 0) (*obj)["member_id"] = h.member_id();
  if (h.revision() != 0) (*obj)["revision"] = h.revision();
  if (h.raft_term() != 0) (*obj)["raft_term"] = h.raft_term();
}

OrderedJson HeaderJson(const etcdserverpb::ResponseHeader& h) {
  OrderedJson obj = OrderedJson::object();
  InlineHeader(h, &obj);
  return obj;
}

OrderedJson KeyValueJson(const mvccpb::KeyValue& kv) {
  OrderedJson obj = OrderedJson::object();
  if (!kv.key().empty()) obj["key"] = Base64Encode(kv.key());
  if (kv.create_revision() != 0) obj["create_revision"] = kv.create_revision();
  if (kv.mod_revision() != 0) obj["mod_revision"] = kv.mod_revision();
  if (kv.version() != 0) obj["version"] = kv.version();
  if (!kv.value().empty()) obj["value"] = Base64Encode(kv.value());
  if (kv.lease() != 0) obj["lease"] = kv.lease();
  return obj;
}

OrderedJson RangeJson(const etcdserverpb::RangeResponse& r) {
  OrderedJson obj = OrderedJson::object();
  if (r.has_header()) obj["header"] = HeaderJson(r.header());
  if (r.kvs_size() > 0) {
    OrderedJson kvs = OrderedJson::array();
    for (const auto& kv : r.kvs()) kvs.push_back(KeyValueJson(kv));
    obj["kvs"] = kvs;
  }
  if (r.more()) obj["more"] = true;
  if (r.count() != 0) obj["count"] = r.count();
  return obj;
}

OrderedJson PutJson(const etcdserverpb::PutResponse& r) {
  OrderedJson obj = OrderedJson::object();
  if (r.has_header()) obj["header"] = HeaderJson(r.header());
  if (r.has_prev_kv()) obj["prev_kv"] = KeyValueJson(r.prev_kv());
  return obj;
}

OrderedJson DeleteJson(const etcdserverpb::DeleteRangeResponse& r) {
  OrderedJson obj = OrderedJson::object();
  if (r.has_header()) obj["header"] = HeaderJson(r.header());
  if (r.deleted() != 0) obj["deleted"] = r.deleted();
  if (r.prev_kvs_size() > 0) {
    OrderedJson kvs = OrderedJson::array();
    for (const auto& kv : r.prev_kvs()) kvs.push_back(KeyValueJson(kv));
    obj["prev_kvs"] = kvs;
  }
  return obj;
}

OrderedJson TxnJson(const etcdserverpb::TxnResponse& r) {
  OrderedJson obj = OrderedJson::object();
  if (r.has_header()) obj["header"] = HeaderJson(r.header());
  if (r.succeeded()) obj["succeeded"] = true;
  if (r.responses_size() > 0) {
    OrderedJson ops = OrderedJson::array();
    for (const auto& op : r.responses()) {
      OrderedJson inner = OrderedJson::object();
      if (op.has_response_range()) {
        inner["ResponseRange"] = RangeJson(op.response_range());
      } else if (op.has_response_put()) {
        inner["ResponsePut"] = PutJson(op.response_put());
      } else if (op.has_response_delete_range()) {
        inner["ResponseDeleteRange"] = DeleteJson(op.response_delete_range());
      } else if (op.has_response_txn()) {
        inner["ResponseTxn"] = TxnJson(op.response_txn());
      }
      OrderedJson wrapper = OrderedJson::object();
      wrapper["Response"] = inner;
      ops.push_back(wrapper);
    }
    obj["responses"] = ops;
  }
  return obj;
}

std::string DumpGoJson(const OrderedJson& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace cli
