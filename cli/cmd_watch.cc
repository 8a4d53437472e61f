// kvctl watch: etcdctl's `watch` (one Watch stream), including -i interactive mode. A watch
// canceled by the server (e.g. compaction) exits 5 as etcdctl does.
#include <thread>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/range_flags.h"
#include "cli/txn_parser.h"

namespace cli {
namespace {

constexpr std::size_t kInteractiveLineBytesMax = 64 * 1024;
constexpr std::size_t kInteractiveWatchesMax = 1024;

struct WatchFlags {
  std::vector<std::string> args;
  bool interactive = false;
  bool prefix = false;
  std::int64_t rev = 0;
  bool prev_kv = false;
};

Status BuildCreate(const std::vector<std::string>& args, bool prefix, std::int64_t rev,
                   bool prev_kv, etcdserverpb::WatchRequest* req) {
  if (args.empty() || args.size() > 2)
    return Status::Error(kExitBadArgs, "bad number of arguments");
  if (prefix && args.size() > 1) {
    return Status::Error(kExitBadArgs,
                         "`--prefix` and `range_end` cannot be set at the same time, choose one");
  }
  auto* create = req->mutable_create_request();
  create->set_key(args[0]);
  if (args.size() > 1) create->set_range_end(args[1]);
  if (prefix) {
    if (args[0].empty()) {
      create->set_key(std::string(1, '\0'));
      create->set_range_end(std::string(1, '\0'));
    } else {
      create->set_range_end(PrefixRangeEnd(args[0]));
    }
  }
  create->set_start_revision(rev);
  create->set_prev_kv(prev_kv);
  return Status::Ok();
}

// Parses "watch [--prefix] [--rev N] [--prev-kv] key [range_end]" from an interactive line.
Status ParseInteractiveWatch(const std::vector<std::string>& words,
                             etcdserverpb::WatchRequest* req) {
  std::vector<std::string> args;
  bool prefix = false;
  bool prev_kv = false;
  std::int64_t rev = 0;
  for (std::size_t i = 1; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "--prefix") {
      prefix = true;
    } else if (w == "--prev-kv") {
      prev_kv = true;
    } else if (w.rfind("--rev", 0) == 0) {
      std::string value;
      if (w.size() > 6 && w[5] == '=') {
        value = w.substr(6);
      } else if (w == "--rev" && i + 1 < words.size()) {
        value = words[++i];
      } else {
        return Status::Error(kExitBadArgs, "invalid --rev in: " + w);
      }
      try {
        rev = std::stoll(value);
      } catch (const std::exception&) {
        return Status::Error(kExitBadArgs, "invalid --rev value " + value);
      }
    } else if (w.rfind("--", 0) == 0) {
      return Status::Error(kExitBadArgs, "unknown flag: " + w);
    } else {
      args.push_back(w);
    }
  }
  return BuildCreate(args, prefix, rev, prev_kv, req);
}

class Watcher {
 public:
  Watcher(Context& ctx, Client& client) : ctx_(ctx), client_(client) {
    rpc_ = client_.NewStreamContext();
    rpc_->AddMetadata("hasleader", "true");
    stream_ = client_.watch().Watch(rpc_.get());
  }

  bool Send(const etcdserverpb::WatchRequest& req) { return stream_->Write(req); }
  void Cancel() { rpc_->TryCancel(); }

  // Prints every response until the stream ends; returns etcdctl's exit status.
  Status ReadLoop(std::int64_t catch_up_from) {
    auto printer = MakePrinter(ctx_);
    etcdserverpb::WatchResponse resp;
    ProgressBar bar(ctx_.err, ctx_.stderr_is_tty && catch_up_from > 0, "catching up", 0);
    std::int64_t catch_up_to = 0;
    while (stream_->Read(&resp)) {
      if (resp.created() && resp.events_size() == 0 && !resp.canceled()) {
        catch_up_to = resp.header().revision();
        if (catch_up_from > 0 && catch_up_to >= catch_up_from) {
          bar.set_total(static_cast<std::uint64_t>(catch_up_to - catch_up_from + 1));
        }
        continue;  // clientv3 does not deliver the "created" notification
      }
      if (resp.canceled()) {
        std::string reason = resp.compact_revision() != 0
                                 ? "etcdserver: mvcc: required revision has been compacted"
                                 : resp.cancel_reason();
        *ctx_.err << "watch was canceled (" << reason << ")\n" << std::flush;
      }
      if (resp.events_size() == 0 && !resp.canceled()) {
        // A progress notification (answering "progress" in interactive mode).
        *ctx_.out << "progress notify: " << resp.header().revision() << "\n" << std::flush;
        continue;
      }
      Status s = printer->Watch(resp);
      ctx_.out->flush();
      if (!s.ok()) return s;
      if (catch_up_to > 0 && resp.events_size() > 0) {
        std::int64_t rev = resp.events(resp.events_size() - 1).kv().mod_revision();
        bar.Update(static_cast<std::uint64_t>(rev - catch_up_from + 1));
        if (rev >= catch_up_to) bar.Finish();
      }
      if (resp.canceled()) break;
    }
    bar.Finish();
    return Status::Error(kExitInterrupted, "watch is canceled by the server");
  }

 private:
  Context& ctx_;
  Client& client_;
  std::unique_ptr<grpc::ClientContext> rpc_;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>
      stream_;
};

Status RunInteractive(Context& ctx, Client& client) {
  Watcher watcher(ctx, client);
  Status read_status;
  std::thread reader([&] { read_status = watcher.ReadLoop(0); });
  Status result;
  std::string line;
  std::size_t watches = 0;
  // Bounded by the input: one iteration per line; watches are capped.
  while (true) {
    if (!std::getline(*ctx.in, line) || ctx.in->eof()) {
      result = Status::Error(kExitInvalidInput, "Error reading watch request line: EOF");
      break;
    }
    if (line.size() > kInteractiveLineBytesMax) {
      result = Status::Error(kExitInvalidInput, "watch request line too long");
      break;
    }
    std::vector<std::string> words = Argify(line);
    if (words.empty()) continue;
    etcdserverpb::WatchRequest req;
    if (words[0] == "progress") {
      req.mutable_progress_request();
    } else if (words[0] == "watch") {
      if (++watches > kInteractiveWatchesMax) {
        *ctx.err << "Invalid command: too many watches (max " << kInteractiveWatchesMax << ")\n";
        continue;
      }
      Status s = ParseInteractiveWatch(words, &req);
      if (!s.ok()) {
        *ctx.err << "Invalid command: " << s.message << "\n" << std::flush;
        continue;
      }
    } else {
      *ctx.err << "Invalid command " << words[0] << " (only support watch)\n" << std::flush;
      continue;
    }
    if (!watcher.Send(req)) break;
  }
  watcher.Cancel();
  reader.join();
  return result;
}

Status RunWatch(Context& ctx, const WatchFlags& f) {
  if (f.interactive) {
    if (!f.args.empty()) {
      return Status::Error(kExitBadArgs, "args[0] must be 'watch' for interactive calls");
    }
    auto client = DialGlobal(ctx);
    return RunInteractive(ctx, *client);
  }
  etcdserverpb::WatchRequest req;
  Status s = BuildCreate(f.args, f.prefix, f.rev, f.prev_kv, &req);
  if (!s.ok()) return s;
  auto client = DialGlobal(ctx);
  Watcher watcher(ctx, *client);
  if (!watcher.Send(req)) return Status::Error(kExitInterrupted, "watch is canceled by the server");
  return watcher.ReadLoop(f.rev);
}

}  // namespace

void RegisterWatch(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<WatchFlags>();
  CLI::App* cmd = registry.AddCommand(&root, "watch", "Watches events stream on keys or prefixes",
                                      "kvctl watch --prefix /app/ --rev 100 --prev-kv");
  cmd->add_option("args", flags->args, "[key or prefix] [range_end]");
  cmd->add_flag("-i,--interactive", flags->interactive, "Interactive mode");
  cmd->add_flag("--prefix", flags->prefix, "Watch on a prefix if prefix is set");
  cmd->add_option("--rev", flags->rev, "Revision to start watching");
  cmd->add_flag("--prev-kv", flags->prev_kv,
                "get the previous key-value pair before the event happens");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunWatch(*ctx, *flags); });
}

}  // namespace cli
