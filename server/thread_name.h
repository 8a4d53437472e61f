// Names the calling thread (shown by top -H, ps -L, perf and gdb), so that a profile of kvd splits
// by pipeline stage. Linux keeps at most 15 characters; longer names are cut.
#pragma once

#include <pthread.h>

#include <string>

namespace server {

inline void NameThisThread(const char* name) {
  const std::string cut = std::string(name).substr(0, 15);
  (void)pthread_setname_np(pthread_self(), cut.c_str());  // failure only costs the name
}

}  // namespace server
