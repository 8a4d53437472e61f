// Scripted interaction tests: each tests/raft/testdata/*.txt file is a list of commands
// ("> command args"), each followed by the exact trace it must produce. Run with
// KV_RAFT_REWRITE=1 to rewrite the expected traces from the actual ones (review the diff).
//
// Commands:
//   add-nodes N [prevote=0|1] [checkquorum=0|1] [inflight=K] [msgbytes=B] [uncommitted=B]
//   add-empty-node ID          a node with an empty log (to be added by a conf change)
//   campaign ID                ID starts an election
//   propose ID DATA            propose DATA at ID
//   conf-change ID add|remove|learner NODE
//   transfer-leader ID TARGET  ask ID to transfer leadership to TARGET
//   read-index ID CTX          linearizable read request at ID
//   tick ID N                  tick node ID N times
//   stabilize                  deliver messages until none is left (prints them)
//   deliver ID                 deliver only the messages queued for ID (one round)
//   drop                       drop every queued message
//   isolate ID / cut A B / cut-one-way FROM TO / heal
//   compact ID INDEX           snapshot at ID's applied index, compact to INDEX
//   restart ID                 recreate ID's node from its storage
//   status                     one line per node
//   log ID                     the entries of ID's log
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/raft/harness.h"

namespace raft_test {
namespace {

struct Block {
  std::vector<std::string> preamble;  // comments and blank lines before the command
  std::string command;
  std::vector<std::string> expected;
};

std::vector<Block> Parse(const std::string& text, std::vector<std::string>* trailer) {
  std::vector<Block> blocks;
  std::vector<std::string> pending;
  std::istringstream in(text);
  std::string line;
  bool in_output = false;
  while (std::getline(in, line)) {
    if (line.rfind("> ", 0) == 0) {
      Block b;
      b.preamble.swap(pending);
      b.command = line.substr(2);
      blocks.push_back(std::move(b));
      in_output = true;
    } else if (line.empty() || line[0] == '#') {
      pending.push_back(line);
      in_output = false;
    } else {
      REQUIRE(in_output);  // output lines must follow a command directly
      blocks.back().expected.push_back(line);
    }
  }
  *trailer = pending;
  return blocks;
}

std::vector<std::string> Split(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

uint64_t Num(const std::string& s) { return std::stoull(s); }

class Interpreter {
 public:
  std::vector<std::string> Run(const std::string& command) {
    const std::vector<std::string> a = Split(command);
    REQUIRE(!a.empty());
    std::vector<std::string> out;
    const std::string& c = a[0];
    if (c == "add-nodes") {
      std::vector<uint64_t> ids;
      for (uint64_t i = 1; i <= Num(a.at(1)); ++i) ids.push_back(i);
      std::map<std::string, uint64_t> opts;
      for (size_t i = 2; i < a.size(); ++i) {
        const size_t eq = a[i].find('=');
        opts[a[i].substr(0, eq)] = Num(a[i].substr(eq + 1));
      }
      cluster_ = std::make_unique<Cluster>(ids, [opts](raft::Config* cfg) {
        if (opts.count("prevote")) cfg->pre_vote = opts.at("prevote") != 0;
        if (opts.count("checkquorum")) cfg->check_quorum = opts.at("checkquorum") != 0;
        if (opts.count("inflight")) cfg->max_inflight_msgs = opts.at("inflight");
        if (opts.count("msgbytes")) cfg->max_size_per_msg_bytes = opts.at("msgbytes");
        if (opts.count("uncommitted")) cfg->max_uncommitted_entries_bytes = opts.at("uncommitted");
      });
      for (uint64_t id : ids) out.push_back(cluster_->NodeLine(id));
      return out;
    }
    REQUIRE(cluster_ != nullptr);
    Cluster& cl = *cluster_;
    if (c == "add-empty-node") {
      cl.AddEmptyNode(Num(a.at(1)));
    } else if (c == "campaign") {
      Report(&out, cl.raw(Num(a.at(1))).Campaign());
    } else if (c == "propose") {
      Report(&out, cl.raw(Num(a.at(1))).Propose(a.at(2)));
    } else if (c == "conf-change") {
      raft::ConfChange cc;
      cc.type = a.at(2) == "add"      ? raft::ConfChangeType::kAddNode
                : a.at(2) == "remove" ? raft::ConfChangeType::kRemoveNode
                                      : raft::ConfChangeType::kAddLearnerNode;
      cc.node_id = Num(a.at(3));
      Report(&out, cl.raw(Num(a.at(1))).ProposeConfChange(cc));
    } else if (c == "transfer-leader") {
      Report(&out, cl.raw(Num(a.at(1))).TransferLeader(Num(a.at(2))));
    } else if (c == "read-index") {
      Report(&out, cl.raw(Num(a.at(1))).ReadIndex(a.at(2)));
    } else if (c == "tick") {
      cl.Tick(Num(a.at(1)), static_cast<int>(Num(a.at(2))));
    } else if (c == "stabilize") {
      out = cl.Stabilize();
    } else if (c == "deliver") {
      out = cl.DeliverTo(Num(a.at(1)));
    } else if (c == "drop") {
      cl.DropQueued();
    } else if (c == "isolate") {
      cl.Isolate(Num(a.at(1)));
    } else if (c == "cut") {
      cl.Cut(Num(a.at(1)), Num(a.at(2)));
    } else if (c == "cut-one-way") {
      cl.CutOneWay(Num(a.at(1)), Num(a.at(2)));
    } else if (c == "heal") {
      cl.Heal();
    } else if (c == "compact") {
      cl.CompactTo(Num(a.at(1)), Num(a.at(2)));
    } else if (c == "restart") {
      cl.Restart(Num(a.at(1)));
    } else if (c == "status") {
      for (uint64_t id : cl.ids()) out.push_back(cl.NodeLine(id));
    } else if (c == "log") {
      const raft::RaftLog& log = cl.raft(Num(a.at(1))).log();
      std::vector<raft::Entry> ents;
      if (log.LastIndex() >= log.FirstIndex()) {
        REQUIRE(log.Slice(log.FirstIndex(), log.LastIndex() + 1, raft::kNoLimit, &ents).ok());
      }
      for (const raft::Entry& e : ents) out.push_back(raft::Describe(e));
    } else {
      FAIL("unknown command: " << command);
    }
    for (std::string& ev : cl.TakeEvents()) out.push_back("  " + ev);
    const std::string err = cl.CheckAll();
    if (!err.empty()) out.push_back("VIOLATION: " + err);
    return out;
  }

 private:
  static void Report(std::vector<std::string>* out, const raft::Status& s) {
    if (!s.ok()) out->push_back("error: " + s.ToString());
  }
  std::unique_ptr<Cluster> cluster_;
};

void RunFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> trailer;
  std::vector<Block> blocks = Parse(ss.str(), &trailer);
  REQUIRE(!blocks.empty());
  const char* rewrite_env = std::getenv("KV_RAFT_REWRITE");
  const bool rewrite = rewrite_env != nullptr && std::string(rewrite_env) == "1";
  Interpreter interp;
  std::string rewritten;
  for (Block& b : blocks) {
    std::vector<std::string> actual = interp.Run(b.command);
    for (const std::string& l : b.preamble) rewritten += l + "\n";
    rewritten += "> " + b.command + "\n";
    for (const std::string& l : actual) rewritten += l + "\n";
    if (!rewrite) {
      INFO(path.filename().string() << ": > " << b.command);
      std::string exp;
      std::string act;
      for (const std::string& l : b.expected) exp += l + "\n";
      for (const std::string& l : actual) act += l + "\n";
      CHECK(act == exp);
    }
  }
  for (const std::string& l : trailer) rewritten += l + "\n";
  if (rewrite) {
    std::ofstream o(path);
    o << rewritten;
  }
}

std::filesystem::path DataDir() { return std::filesystem::path(KV_RAFT_TESTDATA); }

}  // namespace

// Goal: every scripted scenario reproduces its recorded trace exactly.
TEST_CASE("raft interaction scripts", "[raft][interaction]") {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(DataDir())) {
    if (entry.path().extension() == ".txt") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    SECTION(f.filename().string()) { RunFile(f); }
  }
  // One file per area: election, prevote/checkquorum, replication, snapshot, read index,
  // transfer, conf changes.
  CHECK(files.size() >= 7);
}

}  // namespace raft_test
