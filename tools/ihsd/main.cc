// ihsd: the interaction history store as a Cap'n Proto RPC service (docs/rpc.md).
//
//   ihsd --data DIR [--listen ADDR]... [--tokens FILE] [--master-key FILE] [--workers N]
//        [--max-calls-in-flight N] [--max-message-bytes N] [--max-connections N]
//        [--max-pending-logins N] [--login-timeout SECONDS] [--max-subscriptions N]
//        [--max-subscriptions-per-connection N] [--subscriber-timeout SECONDS]
//        [--tls-cert FILE --tls-key FILE] [--http ADDR]... [--ready-lag N]
//        [--max-http-connections N] [--metrics-tokens FILE] [--max-console-sessions N]
//        [--cluster nats://HOST:PORT[,...] --node NAME [--partitions P] [--lease SECONDS]]
//
// ADDR is HOST:PORT (default 127.0.0.1:7420; port 0 picks a free one) or unix:PATH. With
// --tls-cert and --tls-key, TCP listeners speak TLS (kj-tls, OpenSSL) and are shown "ADDR tls".
// Without a tokens file every login is admin, so ihsd then listens on loopback and unix sockets
// only, and says so loudly. --http serves /healthz, /readyz and /metrics (server/http.h) and the
// agent's console (server/console.h, docs/console.md) on the same event loop. On stdout it prints
// one "listening on ADDR" line per RPC listener and one "http on ADDR" line per HTTP listener, then
// "ready"; problems go to stderr, one line each. SIGINT or SIGTERM: stop accepting, end
// subscriptions, let the appends in flight finish, close the store, exit 0. SIGHUP (with a tokens
// file): read the tokens file again, and close the connections of tokens it no longer holds.
//
// With --cluster, ihsd is a node of a cluster on NATS JetStream (docs/scale.md): it holds its
// share of the partitions in DATA and answers appends and stream reads for all of them.
//
// Exit codes: 0 stopped cleanly, 1 usage, 2 bad configuration (address, tokens file, a partition
// count that differs from the cluster's, a node name in use), 5 store or cluster unavailable,
// 4 store integrity failure on open.
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <kj/compat/tls.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "projections/community/bands.h"
#include "projections/identity/resolver.h"
#include "projections/registry.h"
#include "projections/runner.h"
#include "server/http.h"
#include "server/service.h"
#include "server/tokens.h"
#include "store/cluster/cluster_store.h"
#include "store/event_store.h"

namespace ihs::tools {
namespace {

constexpr int kExitOk = 0, kExitUsage = 1, kExitBadConfig = 2, kExitIntegrity = 4,
              kExitUnavailable = 5;

// ihsd's one log: its own lines, the store's, the projection runner's and the server's, each as
// "ihsd: TIME LINE" on stderr.
LogSink& Log() {
  static const std::unique_ptr<LogSink> log = NewStderrLog("ihsd", /*timestamps=*/true);
  return *log;
}

int Die(int code, const std::string& message) {
  Log().Log(message);
  return code;
}

bool IsLoopback(const std::string& resolved) {
  return absl::StartsWith(resolved, "127.") || absl::StartsWith(resolved, "[::1]") ||
         absl::StartsWith(resolved, "unix:");
}

struct Listener {
  std::string shown;      // as printed: with the port actually bound
  std::string unix_path;  // removed on exit
  kj::Own<kj::ConnectionReceiver> receiver;
};

int Main(int argc, char** argv) {
  CLI::App app{"ihsd: the interaction history store's RPC server"};
  std::string data, master_key, tokens_path;
  std::vector<std::string> listen;
  server::ServerOptions so;
  app.add_option("--data", data, "data directory of the store (created if empty)")->required();
  app.add_option("--master-key", master_key, "master key file (default: DATA/master.key)");
  app.add_option("--listen", listen, "HOST:PORT or unix:PATH, repeatable (default 127.0.0.1:7420)");
  app.add_option("--tokens", tokens_path,
                 "tokens file (docs/rpc.md); without it every login is admin, on loopback only");
  std::string tls_cert, tls_key;
  app.add_option("--tls-cert", tls_cert,
                 "PEM certificate chain: TCP listeners speak TLS (unix sockets stay plain)");
  app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert");
  app.add_option("--workers", so.workers, "threads for store calls (default 32)")
      ->check(CLI::Range(size_t{1}, size_t{1024}));
  app.add_option("--max-calls-in-flight", so.max_calls_in_flight,
                 "per connection; more are answered `overloaded` (default 128)")
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  app.add_option("--max-message-bytes", so.max_message_bytes,
                 "largest incoming message; larger ones close the connection (default 32 MiB)")
      ->check(CLI::Range(size_t{1} << 16, size_t{1} << 30));
  app.add_option("--max-connections", so.max_connections, "open at once (default 4096)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  app.add_option("--max-pending-logins", so.max_pending_logins,
                 "connections that may wait to log in at once (default: half of "
                 "--max-connections)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  double login_timeout = absl::ToDoubleSeconds(so.login_timeout);
  app.add_option("--login-timeout", login_timeout,
                 "seconds a connection has to log in before it is closed (default 10)")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--max-subscriptions", so.max_subscriptions,
                 "subscriptions at once, in all; more are answered `overloaded` (default 1024)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  app.add_option("--max-subscriptions-per-connection", so.max_subscriptions_per_connection,
                 "subscriptions at once on one connection (default 8)")
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  double subscriber_timeout = absl::ToDoubleSeconds(so.subscriber_timeout);
  app.add_option("--subscriber-timeout", subscriber_timeout,
                 "seconds a subscriber has to take a push before its subscription ends "
                 "(default 60)")
      ->check(CLI::Range(0.1, 86400.0));
  std::vector<std::string> http;
  server::HttpOptions ho;
  std::string metrics_tokens_path;
  app.add_option("--http", http,
                 "HOST:PORT or unix:PATH, repeatable: /healthz, /readyz, /metrics and the agent's "
                 "console (docs/console.md) over HTTP (TLS as --listen)");
  app.add_option("--max-console-sessions", ho.console.max_sessions,
                 "console sessions kept; a login past it ends the least recently used (default "
                 "1024)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  app.add_option("--ready-lag", ho.ready_lag_events,
                 "/readyz: events a projection may be behind the log (default 10000)");
  app.add_option("--max-http-connections", ho.max_connections,
                 "HTTP connections open at once; more are closed at accept (default 64)")
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  app.add_option("--metrics-tokens", metrics_tokens_path,
                 "tokens file whose tokens (any role) may read /metrics (admin tokens may too)");
  projections::RunnerOptions runner_options;
  app.add_option(
         "--projection-nice", runner_options.worker_nice,
         "how much lower the projection workers' CPU priority is than ihsd's, as a nice "
         "value: appends and reads get the CPU first, projections lag more (0..19, default 0)")
      ->check(CLI::Range(0, 19));
  std::string cluster_urls, node_name;
  uint32_t partitions = 0;
  double lease_seconds = 10;
  app.add_option("--cluster", cluster_urls,
                 "nats://HOST:PORT[,...]: run as a node of a cluster on NATS JetStream "
                 "(docs/scale.md); --data then holds this node's replicas");
  app.add_option("--partitions", partitions,
                 "with --cluster: the partition count to create the cluster with (omit to join "
                 "one; a count that differs from the cluster's is refused)")
      ->check(CLI::Range(1u, cluster::kMaxPartitions));
  app.add_option("--node", node_name, "with --cluster: this node's name, [A-Za-z0-9_-]{1,64}");
  app.add_option("--lease", lease_seconds,
                 "with --cluster: seconds a stopped node's partitions wait before others take "
                 "them (default 10)")
      ->check(CLI::Range(0.3, 3600.0));
  app.set_version_flag("--version", "ihsd " IHS_VERSION);
  app.footer(
      "Exit codes: 0 stopped cleanly, 1 usage, 2 bad configuration, 4 store integrity failure, "
      "5 store unavailable.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  so.login_timeout = absl::Seconds(login_timeout);
  so.subscriber_timeout = absl::Seconds(subscriber_timeout);
  if (listen.empty()) listen.push_back("127.0.0.1:7420");
  if (cluster_urls.empty() && (partitions != 0 || !node_name.empty())) {
    return Die(kExitUsage, "--partitions and --node go with --cluster");
  }
  if (!cluster_urls.empty() && node_name.empty()) {
    return Die(kExitUsage, "--cluster needs --node NAME, this node's name in the cluster");
  }
  if (tls_cert.empty() != tls_key.empty()) {
    return Die(kExitBadConfig, "give both --tls-cert and --tls-key, or neither");
  }
  auto read_file = [](const std::string& path, std::string* out) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
    return static_cast<bool>(in);
  };
  std::string cert_pem, key_pem;
  if (!tls_cert.empty() && (!read_file(tls_cert, &cert_pem) || !read_file(tls_key, &key_pem))) {
    return Die(kExitBadConfig, "cannot read --tls-cert " + tls_cert + " or --tls-key " + tls_key);
  }

  std::optional<server::Tokens> metrics_tokens;
  if (!metrics_tokens_path.empty()) {
    absl::StatusOr<server::Tokens> t = server::Tokens::Load(metrics_tokens_path);
    if (!t.ok()) return Die(kExitBadConfig, std::string(t.status().message()));
    if (t->size() == 0) return Die(kExitBadConfig, metrics_tokens_path + " holds no tokens");
    metrics_tokens = std::move(*t);
    ho.metrics_tokens = &*metrics_tokens;
  }
  server::Tokens tokens = server::Tokens::Open();
  if (!tokens_path.empty()) {
    absl::StatusOr<server::Tokens> t = server::Tokens::Load(tokens_path);
    if (!t.ok()) return Die(kExitBadConfig, std::string(t.status().message()));
    if (t->size() == 0) return Die(kExitBadConfig, tokens_path + " holds no tokens");
    tokens = std::move(*t);
  }

  // Signals are taken by the event loop; they must be blocked before any thread starts.
  kj::UnixEventPort::captureSignal(SIGTERM);
  kj::UnixEventPort::captureSignal(SIGINT);
  if (!tokens_path.empty()) kj::UnixEventPort::captureSignal(SIGHUP);
  signal(SIGPIPE, SIG_IGN);

  // Addresses are checked and bound before the store is opened, so that a bad configuration
  // leaves the data directory untouched.
  absl::StatusOr<std::unique_ptr<store::EventStore>> store = absl::UnavailableError("not opened");
  {
    auto io = kj::setupAsyncIo();
    std::vector<Listener> listeners;
    std::string config_error;
    kj::Own<kj::TlsKeypair> keypair;
    kj::Own<kj::TlsContext> tls;
    if (!cert_pem.empty()) {
      KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] {
                     keypair = kj::heap<kj::TlsKeypair>(kj::TlsKeypair{
                         kj::TlsPrivateKey(key_pem.c_str()), kj::TlsCertificate(cert_pem.c_str())});
                     kj::TlsContext::Options o;
                     o.defaultKeypair = *keypair;
                     o.timer = io.provider->getTimer();
                     o.acceptTimeout = 10 * kj::SECONDS;
                     tls = kj::heap<kj::TlsContext>(kj::mv(o));
                   })) {
        return Die(kExitBadConfig,
                   absl::StrCat("bad --tls-cert or --tls-key: ", e->getDescription().cStr()));
      }
    }
    std::vector<Listener> http_listeners;
    // Binds `a` into `into`; a TCP port speaks TLS when ihsd has a certificate.
    auto bind = [&](const std::string& flag, const std::string& a, std::vector<Listener>& into) {
      auto addr = io.provider->getNetwork().parseAddress(a, 7420).wait(io.waitScope);
      std::string resolved = addr->toString().cStr();
      if (tokens.open() && !IsLoopback(resolved)) {
        config_error =
            absl::StrCat(flag, " ", a, " (", resolved,
                         ") is not loopback: without --tokens ihsd is open to anyone, so it "
                         "listens on 127.0.0.1, ::1 and unix sockets only");
        return false;
      }
      Listener l;
      if (absl::StartsWith(resolved, "unix:")) {
        l.unix_path = resolved.substr(5);
        struct stat st;
        // A socket left by an ihsd that died: nobody listens on it any more.
        if (stat(l.unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
          unlink(l.unix_path.c_str());
        }
        l.shown = resolved;
      }
      l.receiver = addr->listen();
      if (l.unix_path.empty()) {
        l.shown = absl::StrCat(resolved.substr(0, resolved.rfind(':')), ":", l.receiver->getPort());
        if (tls) {
          l.receiver = tls->wrapPort(kj::mv(l.receiver));
          l.shown += " tls";
        }
      }
      into.push_back(kj::mv(l));
      return true;
    };
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] {
                   for (const std::string& a : listen) {
                     if (!bind("--listen", a, listeners)) return;
                   }
                   for (const std::string& a : http) {
                     if (!bind("--http", a, http_listeners)) return;
                   }
                 })) {
      return Die(kExitBadConfig, absl::StrCat("cannot listen: ", e->getDescription().cStr()));
    }
    if (!config_error.empty()) return Die(kExitBadConfig, config_error);

    std::string ready;
    std::unique_ptr<projections::Runner> runner;
    std::optional<projections::identity::Resolver> resolver;
    std::optional<projections::community::BandAppender> bands;
    if (!cluster_urls.empty()) {
      // A node of a cluster: its store is the cluster's partitions, held here or forwarded to
      // their holders; no projections run on it yet (docs/scale.md, "ihsd in a cluster").
      cluster::NodeOptions no;
      no.cluster.servers = absl::StrSplit(cluster_urls, ',', absl::SkipEmpty());
      no.cluster.partitions = partitions;
      no.cluster.node = node_name;
      no.dir = data;
      no.lease = absl::Seconds(lease_seconds);
      no.log = &Log();
      absl::StatusOr<std::unique_ptr<cluster::ClusterNode>> node = cluster::ClusterNode::Start(no);
      if (!node.ok()) {
        const bool config = node.status().code() == absl::StatusCode::kInvalidArgument ||
                            node.status().code() == absl::StatusCode::kFailedPrecondition;
        return Die(config ? kExitBadConfig : kExitUnavailable,
                   std::string(node.status().message()));
      }
      ready = absl::StrCat("node ", node_name, " of a cluster of ",
                           (*node)->cluster().config().partitions, " partitions, holding ",
                           (*node)->held().size());
      store = std::unique_ptr<store::EventStore>(
          std::make_unique<cluster::ClusterStore>(*std::move(node)));
    } else {
      store::Options options;
      options.path = data;
      options.master_key_path = master_key;
      options.log = &Log();
      store = store::EventStore::Open(options);
      if (!store.ok()) {
        return Die(store.status().code() == absl::StatusCode::kDataLoss ? kExitIntegrity
                                                                        : kExitUnavailable,
                   std::string(store.status().message()));
      }
      ready = absl::StrCat((*store)->Head(), " events in ", data);

      // The projection workers follow the log while ihsd runs (docs/projections.md).
      runner_options.log = &Log();
      auto opened =
          projections::Runner::Open(store->get(), projections::AllProjections(), runner_options);
      if (!opened.ok()) {
        return Die(kExitUnavailable, absl::StrCat("projections: ", opened.status().message()));
      }
      runner = *std::move(opened);
      runner->Start();
      // Identity resolution appends the links it decides (docs/identity.md).
      resolver.emplace(**store, *runner, &Log());
      resolver->Start();
      // The community conditions segments name are published as bands (docs/community.md).
      bands.emplace(**store, *runner, &Log());
      bands->Start();
    }

    so.version = IHS_VERSION;
    so.log = &Log();
    server::Server server(**store, runner.get(), tokens, io.provider->getTimer(), so);
    std::vector<kj::Promise<void>> serving;
    for (Listener& l : listeners) {
      serving.push_back(server.Listen(*l.receiver).eagerlyEvaluate([&l](kj::Exception&& e) {
        Log().Log(absl::StrCat("listener ", l.shown, " failed: ", e.getDescription().cStr()));
      }));
      std::cout << "listening on " << l.shown << std::endl;
    }
    ho.version = IHS_VERSION;
    ho.console.secure_cookies = tls.get() != nullptr;  // the console's cookie is Secure under TLS
    server::OperatorHttp operator_http(**store, runner.get(), server, tokens,
                                       io.provider->getTimer(), ho);
    for (Listener& l : http_listeners) {
      serving.push_back(operator_http.Listen(*l.receiver).eagerlyEvaluate([&l](kj::Exception&& e) {
        Log().Log(absl::StrCat("http listener ", l.shown, " failed: ", e.getDescription().cStr()));
      }));
      std::cout << "http on " << l.shown << std::endl;
    }
    if (tokens.open()) {
      Log().Log(
          "WARNING: no --tokens file: ANY client that can reach these addresses logs in as "
          "admin. Listening on loopback only.");
    } else {
      Log().Log(absl::StrCat(tokens.size(), " tokens from ", tokens_path));
    }
    // SIGHUP: the tokens file is read again, and logins from then on answer to it (`ihs token
    // revoke`); a connection that logged in with a token the file no longer holds (or holds with
    // another role) is closed. A file that does not parse, or holds no tokens, is logged and the
    // tokens stay as they were.
    std::function<kj::Promise<void>()> reload_tokens = [&]() -> kj::Promise<void> {
      return io.unixEventPort.onSignal(SIGHUP).then([&](siginfo_t) {
        absl::StatusOr<server::Tokens> t = server::Tokens::Load(tokens_path);
        if (!t.ok()) {
          Log().Log(absl::StrCat("SIGHUP: the tokens stay as they were: ", t.status().message()));
        } else if (t->size() == 0) {
          Log().Log(absl::StrCat("SIGHUP: the tokens stay as they were: ", tokens_path,
                                 " holds no tokens"));
        } else {
          tokens = std::move(*t);  // on the event loop, the only thread that reads them
          const size_t ended = server.EndRevokedSessions();
          Log().Log(absl::StrCat(
              "SIGHUP: ", tokens.size(), " tokens from ", tokens_path,
              ended > 0 ? absl::StrCat("; ended ", ended, " connection(s) of revoked tokens")
                        : ""));
        }
        return reload_tokens();
      });
    };
    kj::Promise<void> reloading = kj::READY_NOW;
    if (!tokens_path.empty()) {
      reloading = reload_tokens().eagerlyEvaluate([](kj::Exception&& e) {
        Log().Log(absl::StrCat("SIGHUP handling failed: ", e.getDescription().cStr()));
      });
    }
    // Tokens with an expiry: their sessions end once it passes (checked every few seconds).
    std::function<kj::Promise<void>()> expire_sessions = [&]() -> kj::Promise<void> {
      return io.provider->getTimer().afterDelay(5 * kj::SECONDS).then([&] {
        server.EndRevokedSessions();
        return expire_sessions();
      });
    };
    kj::Promise<void> expiring = kj::READY_NOW;
    if (!tokens_path.empty()) {
      expiring = expire_sessions().eagerlyEvaluate([](kj::Exception&& e) {
        Log().Log(absl::StrCat("token expiry failed: ", e.getDescription().cStr()));
      });
    }
    std::cout << "ready: " << ready << std::endl;

    int signo = io.unixEventPort.onSignal(SIGTERM)
                    .exclusiveJoin(io.unixEventPort.onSignal(SIGINT))
                    .wait(io.waitScope)
                    .si_signo;
    Log().Log(absl::StrCat(signo == SIGTERM ? "SIGTERM" : "SIGINT",
                           ": stopping; appends in flight finish first"));
    serving.clear();  // stop accepting
    server.Shutdown(io.provider->getTimer(), absl::Seconds(30)).wait(io.waitScope);
    // ~Server closes the connections and joins the workers before the store closes.
    for (std::vector<Listener>* ls : {&listeners, &http_listeners}) {
      for (Listener& l : *ls) {
        l.receiver = nullptr;
        if (!l.unix_path.empty()) unlink(l.unix_path.c_str());
      }
    }
    if (bands.has_value()) bands->Stop();
    if (resolver.has_value()) resolver->Stop();
    if (runner != nullptr) runner->Stop();  // before the store closes; what it applied is kept
  }
  if (!cluster_urls.empty()) {
    store->reset();  // a node leaves: its partitions go to the other nodes at once
    Log().Log("stopped; left the cluster");
    return kExitOk;
  }
  uint64_t head = (*store)->Head();
  store->reset();
  Log().Log(absl::StrCat("stopped; the log holds ", head, " events"));
  return kExitOk;
}

}  // namespace
}  // namespace ihs::tools

int main(int argc, char** argv) { return ihs::tools::Main(argc, argv); }
