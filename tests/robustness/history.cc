#include "tests/robustness/history.h"

#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace kv::robustness {

using nlohmann::json;

bool Op::ChangedStore() const {
  switch (kind) {
    case OpKind::kPut:
    case OpKind::kLeasePut:
      return true;
    case OpKind::kCas:
      return cas_succeeded;
    case OpKind::kDelete:
      return deleted > 0;
    case OpKind::kGet:
      return false;
  }
  return false;
}

bool WatchStream::Covers(const std::string& k) const {
  if (range_end.empty()) return k == key;
  if (range_end == std::string(1, '\0')) return k >= key;
  return k >= key && k < range_end;
}

std::string ToString(OpKind kind) {
  switch (kind) {
    case OpKind::kPut:
      return "put";
    case OpKind::kLeasePut:
      return "lease-put";
    case OpKind::kGet:
      return "get";
    case OpKind::kCas:
      return "cas";
    case OpKind::kDelete:
      return "delete";
  }
  return "?";
}

std::string Describe(const Op& op) {
  std::ostringstream out;
  out << "client " << op.client << " " << ToString(op.kind) << "(" << op.key;
  if (op.kind == OpKind::kPut || op.kind == OpKind::kLeasePut || op.kind == OpKind::kCas) {
    out << "=" << op.value;
  }
  if (op.kind == OpKind::kCas) {
    if (op.cas_on == CasOn::kModRevision) {
      out << " if mod_rev==" << op.cas_expected_mod_revision;
    } else {
      out << " if value==" << op.cas_expected_value;
    }
  }
  out << ") [" << op.call_ns << ", ";
  if (op.return_ns == kNeverReturned) {
    out << "inf";
  } else {
    out << op.return_ns;
  }
  out << "] -> ";
  if (op.outcome == Outcome::kUnknown) {
    out << "unknown";
    return out.str();
  }
  out << "rev " << op.revision;
  switch (op.kind) {
    case OpKind::kGet:
      if (op.found) {
        out << " value " << op.read_value << " mod_rev " << op.read_mod_revision;
      } else {
        out << " not found";
      }
      break;
    case OpKind::kCas:
      out << (op.cas_succeeded ? " succeeded" : " failed");
      break;
    case OpKind::kDelete:
      out << " deleted " << op.deleted;
      break;
    default:
      break;
  }
  return out.str();
}

namespace {

json KvToJson(const KeyValue& kv) {
  return json{{"key", kv.key},
              {"value", kv.value},
              {"create_revision", kv.create_revision},
              {"mod_revision", kv.mod_revision},
              {"version", kv.version},
              {"lease", kv.lease}};
}

KeyValue KvFromJson(const json& j) {
  KeyValue kv;
  kv.key = j.at("key").get<std::string>();
  kv.value = j.at("value").get<std::string>();
  kv.create_revision = j.at("create_revision").get<std::int64_t>();
  kv.mod_revision = j.at("mod_revision").get<std::int64_t>();
  kv.version = j.at("version").get<std::int64_t>();
  kv.lease = j.at("lease").get<std::int64_t>();
  return kv;
}

OpKind KindFromString(const std::string& s) {
  for (OpKind k : {OpKind::kPut, OpKind::kLeasePut, OpKind::kGet, OpKind::kCas, OpKind::kDelete}) {
    if (ToString(k) == s) return k;
  }
  throw std::runtime_error("unknown op kind '" + s + "'");
}

}  // namespace

std::string ToJson(const History& h) {
  json ops = json::array();
  for (const Op& op : h.ops) {
    ops.push_back(json{{"client", op.client},
                       {"kind", ToString(op.kind)},
                       {"key", op.key},
                       {"value", op.value},
                       {"lease_id", op.lease_id},
                       {"cas_on", op.cas_on == CasOn::kValue ? "value" : "mod_revision"},
                       {"cas_expected_mod_revision", op.cas_expected_mod_revision},
                       {"cas_expected_value", op.cas_expected_value},
                       {"call_ns", op.call_ns},
                       {"return_ns", op.return_ns},
                       {"outcome", op.outcome == Outcome::kOk ? "ok" : "unknown"},
                       {"revision", op.revision},
                       {"found", op.found},
                       {"read_value", op.read_value},
                       {"read_mod_revision", op.read_mod_revision},
                       {"cas_succeeded", op.cas_succeeded},
                       {"deleted", op.deleted}});
  }
  json watches = json::array();
  for (const WatchStream& w : h.watches) {
    json segments = json::array();
    for (const WatchSegment& s : w.segments) {
      json events = json::array();
      for (const WatchEvent& e : s.events) {
        json je{{"type", e.type == EventType::kPut ? "put" : "delete"},
                {"kv", KvToJson(e.kv)},
                {"response_index", e.response_index},
                {"received_ns", e.received_ns}};
        if (e.has_prev) je["prev_kv"] = KvToJson(e.prev_kv);
        events.push_back(std::move(je));
      }
      segments.push_back(json{{"start_revision", s.start_revision},
                              {"compact_revision", s.compact_revision},
                              {"events", std::move(events)}});
    }
    watches.push_back(json{{"client", w.client},
                           {"key", w.key},
                           {"range_end", w.range_end},
                           {"prev_kv", w.prev_kv},
                           {"synced_through_revision", w.synced_through_revision},
                           {"segments", std::move(segments)}});
  }
  json hashes = json::array();
  for (const MemberHash& m : h.hashes) {
    hashes.push_back(json{{"member", m.member},
                          {"revision", m.revision},
                          {"hash", m.hash},
                          {"compact_revision", m.compact_revision}});
  }
  json compactions = json::array();
  for (const Compaction& c : h.compactions) {
    compactions.push_back(json{{"revision", c.revision}, {"call_ns", c.call_ns}});
  }
  // Keys and values are ASCII in our workload except range_end "\0", which JSON escapes.
  json root{{"seed", h.seed},
            {"ops", ops},
            {"watches", watches},
            {"hashes", hashes},
            {"compactions", compactions}};
  return root.dump(1);
}

History FromJson(const std::string& text) {
  History h;
  json root;
  try {
    root = json::parse(text);
    h.seed = root.at("seed").get<std::uint64_t>();
    for (const json& j : root.at("ops")) {
      Op op;
      op.client = j.at("client").get<int>();
      op.kind = KindFromString(j.at("kind").get<std::string>());
      op.key = j.at("key").get<std::string>();
      op.value = j.at("value").get<std::string>();
      op.lease_id = j.at("lease_id").get<std::int64_t>();
      op.cas_on =
          j.at("cas_on").get<std::string>() == "value" ? CasOn::kValue : CasOn::kModRevision;
      op.cas_expected_mod_revision = j.at("cas_expected_mod_revision").get<std::int64_t>();
      op.cas_expected_value = j.at("cas_expected_value").get<std::string>();
      op.call_ns = j.at("call_ns").get<std::int64_t>();
      op.return_ns = j.at("return_ns").get<std::int64_t>();
      op.outcome = j.at("outcome").get<std::string>() == "ok" ? Outcome::kOk : Outcome::kUnknown;
      op.revision = j.at("revision").get<std::int64_t>();
      op.found = j.at("found").get<bool>();
      op.read_value = j.at("read_value").get<std::string>();
      op.read_mod_revision = j.at("read_mod_revision").get<std::int64_t>();
      op.cas_succeeded = j.at("cas_succeeded").get<bool>();
      op.deleted = j.at("deleted").get<std::int64_t>();
      h.ops.push_back(std::move(op));
    }
    for (const json& jw : root.at("watches")) {
      WatchStream w;
      w.client = jw.at("client").get<int>();
      w.key = jw.at("key").get<std::string>();
      w.range_end = jw.at("range_end").get<std::string>();
      w.prev_kv = jw.at("prev_kv").get<bool>();
      w.synced_through_revision = jw.at("synced_through_revision").get<std::int64_t>();
      for (const json& js : jw.at("segments")) {
        WatchSegment s;
        s.start_revision = js.at("start_revision").get<std::int64_t>();
        s.compact_revision = js.at("compact_revision").get<std::int64_t>();
        for (const json& je : js.at("events")) {
          WatchEvent e;
          e.type = je.at("type").get<std::string>() == "put" ? EventType::kPut : EventType::kDelete;
          e.kv = KvFromJson(je.at("kv"));
          e.response_index = je.at("response_index").get<std::int64_t>();
          e.received_ns = je.value("received_ns", std::int64_t{0});
          if (je.contains("prev_kv")) {
            e.has_prev = true;
            e.prev_kv = KvFromJson(je.at("prev_kv"));
          }
          s.events.push_back(std::move(e));
        }
        w.segments.push_back(std::move(s));
      }
      h.watches.push_back(std::move(w));
    }
    for (const json& jm : root.at("hashes")) {
      MemberHash m;
      m.member = jm.at("member").get<std::string>();
      m.revision = jm.at("revision").get<std::int64_t>();
      m.hash = jm.at("hash").get<std::uint32_t>();
      m.compact_revision = jm.at("compact_revision").get<std::int64_t>();
      h.hashes.push_back(std::move(m));
    }
    if (root.contains("compactions")) {
      for (const json& jc : root.at("compactions")) {
        h.compactions.push_back(Compaction{jc.at("revision").get<std::int64_t>(),
                                           jc.at("call_ns").get<std::int64_t>()});
      }
    }
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("history JSON: ") + e.what());
  }
  return h;
}

}  // namespace kv::robustness
