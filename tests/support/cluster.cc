#include "tests/support/cluster.h"

#include <csignal>
#include <thread>
#include <utility>

#include "tests/support/log_tail.h"
#include "tests/support/ports.h"
#include "tests/support/support_error.h"

namespace kvtest {
namespace {

constexpr std::size_t kMembersMax = 9;
// Pause between readiness probes: the probe itself is bounded by its own deadlines.
constexpr std::chrono::milliseconds kProbePause{50};

}  // namespace

EtcdLikeCluster::EtcdLikeCluster(ClusterOptions options, ReadyProbe probe)
    : options_(std::move(options)), probe_(std::move(probe)), dir_("kvtest-cluster") {
  if (options_.member_count == 0 || options_.member_count > kMembersMax) {
    throw SupportError("EtcdLikeCluster: member_count must be in [1, 9]");
  }
  if (!probe_) throw SupportError("EtcdLikeCluster: a readiness probe is required");
  if (!std::filesystem::exists(options_.binary)) {
    throw SupportError("EtcdLikeCluster: server binary " + options_.binary.string() +
                       " does not exist");
  }
  const bool fixed_peer_ports = !options_.peer_ports.empty();
  if (fixed_peer_ports && (options_.peer_ports.size() != options_.member_count ||
                           options_.advertised_peer_ports.size() != options_.member_count)) {
    throw SupportError("EtcdLikeCluster: peer_ports and advertised_peer_ports need one per member");
  }
  const auto ports = PickFreePorts(2 * options_.member_count);
  members_.resize(options_.member_count);
  for (std::size_t i = 0; i < members_.size(); ++i) {
    Member& m = members_[i];
    m.name = "m" + std::to_string(i);
    m.client_port = ports[2 * i];
    m.peer_port = fixed_peer_ports ? options_.peer_ports[i] : ports[2 * i + 1];
    m.advertised_peer_port = fixed_peer_ports ? options_.advertised_peer_ports[i] : m.peer_port;
    m.endpoint = "127.0.0.1:" + std::to_string(m.client_port);
  }
  for (std::size_t i = 0; i < members_.size(); ++i) Spawn(i);
  for (std::size_t i = 0; i < members_.size(); ++i) WaitReady(i);
}

EtcdLikeCluster::~EtcdLikeCluster() {
  // Kill everything first so that the members do not spend their time electing leaders while
  // we tear down the others one by one; the Process destructors reap.
  for (auto& m : members_) {
    if (m.process) m.process->Kill(SIGKILL);
  }
  members_.clear();
}

const std::string& EtcdLikeCluster::endpoint(std::size_t i) const { return At(i).endpoint; }

std::vector<std::string> EtcdLikeCluster::endpoints() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back(m.endpoint);
  return out;
}

std::string EtcdLikeCluster::client_url(std::size_t i) const {
  return "http://127.0.0.1:" + std::to_string(At(i).client_port);
}

std::string EtcdLikeCluster::peer_url(std::size_t i) const {
  return "http://127.0.0.1:" + std::to_string(At(i).peer_port);
}

std::string EtcdLikeCluster::advertised_peer_url(std::size_t i) const {
  return "http://127.0.0.1:" + std::to_string(At(i).advertised_peer_port);
}

const std::string& EtcdLikeCluster::name(std::size_t i) const { return At(i).name; }

std::filesystem::path EtcdLikeCluster::data_dir(std::size_t i) const {
  return dir_.path() / (At(i).name + ".data");
}

std::filesystem::path EtcdLikeCluster::log_path(std::size_t i) const {
  return dir_.path() / (At(i).name + ".log");
}

std::vector<std::string> EtcdLikeCluster::Args(std::size_t i) const {
  std::string initial_cluster;
  for (std::size_t j = 0; j < members_.size(); ++j) {
    if (j > 0) initial_cluster += ",";
    initial_cluster += members_[j].name + "=" + advertised_peer_url(j);
  }
  std::vector<std::string> args = {
      options_.binary.string(),
      "--name=" + At(i).name,
      "--data-dir=" + data_dir(i).string(),
      "--listen-client-urls=" + client_url(i),
      "--advertise-client-urls=" + client_url(i),
      "--listen-peer-urls=" + peer_url(i),
      "--initial-advertise-peer-urls=" + advertised_peer_url(i),
      "--initial-cluster=" + initial_cluster,
      std::string("--initial-cluster-state=") + (At(i).existing ? "existing" : "new"),
      "--initial-cluster-token=" + options_.cluster_token,
      "--heartbeat-interval=" + std::to_string(options_.heartbeat_interval_ms),
      "--election-timeout=" + std::to_string(options_.election_timeout_ms),
  };
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  if (i < options_.member_extra_args.size()) {
    args.insert(args.end(), options_.member_extra_args[i].begin(),
                options_.member_extra_args[i].end());
  }
  return args;
}

void EtcdLikeCluster::Spawn(std::size_t i) {
  ProcessOptions po;
  po.argv = Args(i);
  po.env = options_.env;
  po.env.insert(po.env.end(), At(i).extra_env.begin(), At(i).extra_env.end());
  po.env_unset_prefixes = {"ETCD_", "ETCDCTL_"};
  po.log_path = log_path(i);
  At(i).process = std::make_unique<Process>(std::move(po));
}

bool EtcdLikeCluster::Running(std::size_t i) {
  Member& m = At(i);
  return m.process && m.process->Running();
}

void EtcdLikeCluster::Kill(std::size_t i, int signal) {
  Member& m = At(i);
  if (!m.process) return;
  m.process->Kill(signal);
  if (signal == SIGKILL && !m.process->Wait(std::chrono::milliseconds(10000))) {
    throw SupportError(m.name + " survived SIGKILL for 10 s");
  }
}

ExitStatus EtcdLikeCluster::Stop(std::size_t i, std::chrono::milliseconds grace) {
  Member& m = At(i);
  if (!m.process) throw SupportError(m.name + " was never started");
  return m.process->Stop(grace);
}

void EtcdLikeCluster::Restart(std::size_t i, bool wait_ready) {
  Member& m = At(i);
  if (m.process && m.process->Running()) {
    throw SupportError("Restart(" + m.name + "): the member is still running");
  }
  m.process.reset();
  Spawn(i);
  if (wait_ready) WaitReady(i);
}

void EtcdLikeCluster::Rejoin(std::size_t i, bool wait_ready) {
  Member& m = At(i);
  if (m.process && m.process->Running()) {
    throw SupportError("Rejoin(" + m.name + "): the member is still running");
  }
  m.process.reset();
  std::error_code ec;
  std::filesystem::remove_all(data_dir(i), ec);
  if (ec) throw SupportError("Rejoin(" + m.name + "): cannot remove its data dir: " + ec.message());
  m.existing = true;
  Spawn(i);
  if (wait_ready) WaitReady(i);
}

void EtcdLikeCluster::WaitReady(std::size_t i) {
  Member& m = At(i);
  const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
  std::string why = "not probed yet";
  while (std::chrono::steady_clock::now() < deadline) {
    if (!m.process || !m.process->Running()) {
      const std::string how = m.process && m.process->exit_status()
                                  ? m.process->exit_status()->ToString()
                                  : std::string("not started");
      throw SupportError(m.name + " (" + m.endpoint + ") is not running: " + how + "\n" +
                         LogTails());
    }
    if (probe_(m.endpoint, &why)) return;
    std::this_thread::sleep_for(kProbePause);
  }
  throw SupportError(m.name + " (" + m.endpoint + ") not ready after " +
                     std::to_string(options_.ready_timeout.count()) + " ms: " + why + "\n" +
                     LogTails());
}

Process& EtcdLikeCluster::process(std::size_t i) {
  Member& m = At(i);
  if (!m.process) throw SupportError(m.name + " was never started");
  return *m.process;
}

std::string EtcdLikeCluster::LogTails(std::size_t max_bytes_each) const {
  std::string out;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    out += "----- " + members_[i].name + " log tail -----\n" +
           TailOfFile(log_path(i), max_bytes_each) + "\n";
  }
  return out;
}

EtcdLikeCluster::Member& EtcdLikeCluster::At(std::size_t i) {
  if (i >= members_.size()) throw SupportError("member index out of range");
  return members_[i];
}

const EtcdLikeCluster::Member& EtcdLikeCluster::At(std::size_t i) const {
  if (i >= members_.size()) throw SupportError("member index out of range");
  return members_[i];
}

}  // namespace kvtest
