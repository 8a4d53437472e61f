// kvctl: the operator's CLI. All logic lives in the kv::cli library.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  cli::Context context;
  context.in = &std::cin;
  context.out = &std::cout;
  context.err = &std::cerr;
  context.stdin_is_tty = isatty(STDIN_FILENO) == 1;
  context.stderr_is_tty = isatty(STDERR_FILENO) == 1;
  return cli::RunKvctl(args, context);
}
