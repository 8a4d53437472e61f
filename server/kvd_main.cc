// kvd's entry point. For now it only parses the configuration: it prints the usage, the
// version, the parsed configuration, or the error (exit code 2 for flag syntax errors and 1 for
// validation errors, as etcd does). The lead engineer grows this into the server.
#include <cstdio>
#include <string>
#include <vector>

#include "server/config.h"

extern char** environ;

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);

  server::Config config;
  server::Status st = server::ParseConfig(args, env, &config);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    if (st.exit_code() == 2) std::fprintf(stderr, "Run 'kvd --help' for the list of flags.\n");
    return st.exit_code();
  }
  if (config.show_help) {
    std::fputs(server::UsageText().c_str(), stdout);
    return 0;
  }
  if (config.show_version) {
    std::fputs(server::VersionText().c_str(), stdout);
    return 0;
  }
  std::fputs(config.Describe().c_str(), stdout);
  return 0;
}
