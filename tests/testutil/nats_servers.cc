#include "tests/testutil/nats_servers.h"

#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace ihs::testing {
namespace {

constexpr char kNatsServer[] = "/usr/sbin/nats-server";
constexpr char kIp[] = "/usr/sbin/ip";  // iproute2

// `n` distinct loopback ports nobody listens on now (the kernel's choices for port 0). Each
// socket stays bound until all are chosen, so that the kernel cannot hand one port out twice.
absl::StatusOr<std::vector<int>> FreePorts(int n) {
  std::vector<int> fds, ports;
  absl::Status status;
  for (int i = 0; i < n && status.ok(); ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      status = absl::InternalError("socket failed");
      break;
    }
    fds.push_back(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      status = absl::InternalError("no free loopback port");
      break;
    }
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds) close(fd);
  if (!status.ok()) return status;
  return ports;
}

// Whether the server at `url` takes a client and, when `jetstream`, answers a JetStream request.
bool Answers(const std::string& url, bool jetstream) {
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  bool ok = natsOptions_Create(&opts) == NATS_OK &&
            natsOptions_SetURL(opts, url.c_str()) == NATS_OK &&
            natsOptions_SetTimeout(opts, 500) == NATS_OK &&
            natsOptions_SetAllowReconnect(opts, false) == NATS_OK &&
            natsConnection_Connect(&nc, opts) == NATS_OK;
  if (ok && jetstream) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 1000;
    jsAccountInfo* info = nullptr;
    ok = natsConnection_JetStream(&js, nc, &jo) == NATS_OK &&
         js_GetAccountInfo(&info, js, nullptr, nullptr) == NATS_OK;
    if (info != nullptr) jsAccountInfo_Destroy(info);
  }
  if (js != nullptr) jsCtx_Destroy(js);
  if (nc != nullptr) natsConnection_Destroy(nc);
  if (opts != nullptr) natsOptions_Destroy(opts);
  return ok;
}

absl::Status WaitUntil(const std::string& url, bool jetstream, ChildProcess& process) {
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!Answers(url, jetstream)) {
    // A server that exited (a port another process took meanwhile) will not answer: say so now.
    if (!process.Running() || absl::Now() > deadline) {
      return absl::UnavailableError(absl::StrCat(
          "nats-server at ", url, process.Running() ? " did not become ready" : " exited",
          jetstream ? " for JetStream" : "", "; log:\n", process.Log()));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<NatsServers>> NatsServers::Start(const std::string& dir, int count) {
  return Start(dir, std::vector<NatsServerPlace>(count));
}

absl::StatusOr<std::unique_ptr<NatsServers>> NatsServers::Start(
    const std::string& dir, const std::vector<NatsServerPlace>& places) {
  // The ports are free when chosen, not necessarily when the servers bind them (another test
  // may take one first): servers that do not all come up are started again, with other ports.
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Each attempt in a directory of its own: nothing of the servers that failed is reused.
    const std::string in = attempt == 0 ? dir : absl::StrCat(dir, "/attempt", attempt);
    if (attempt > 0 && mkdir(in.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("cannot make ", in));
    }
    absl::StatusOr<std::unique_ptr<NatsServers>> c = StartOnce(in, places);
    if (c.ok()) return c;
    last = c.status();  // the servers of this attempt are ended, by PID, with `c`
  }
  return last;
}

absl::StatusOr<std::unique_ptr<NatsServers>> NatsServers::StartOnce(
    const std::string& dir, const std::vector<NatsServerPlace>& places) {
  const int count = static_cast<int>(places.size());
  std::unique_ptr<NatsServers> c(new NatsServers());
  std::vector<int> routes;
  c->servers_.resize(count);
  IHS_ASSIGN_OR_RETURN(std::vector<int> ports, FreePorts(2 * count));
  for (int i = 0; i < count; ++i) {
    c->servers_[i].port = ports[2 * i];
    c->servers_[i].place = places[i];
    routes.push_back(ports[2 * i + 1]);
  }
  for (int i = 0; i < count; ++i) {
    Server& s = c->servers_[i];
    s.name = absl::StrCat("n", i);
    s.conf = absl::StrCat(dir, "/", s.name, ".conf");
    s.log = absl::StrCat(dir, "/", s.name, ".log");
    std::vector<std::string> others;
    for (int j = 0; j < count; ++j) {
      if (j != i) {
        others.push_back(absl::StrCat("nats-route://", places[j].host, ":", routes[j]));
      }
    }
    std::ofstream conf(s.conf);
    conf << "server_name: " << s.name << "\n"
         << "listen: " << s.place.listen << ":" << s.port << "\n"
         << "jetstream {\n  store_dir: \"" << dir << "/" << s.name << "\"\n"
         << "  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n";
    if (count > 1) {
      conf << "cluster {\n  name: ihs-test\n  listen: " << s.place.listen << ":" << routes[i]
           << "\n"
           << "  routes: [" << absl::StrJoin(others, ", ") << "]\n}\n";
    }
    if (!conf.good()) return absl::InternalError(absl::StrCat("cannot write ", s.conf));
  }
  for (Server& s : c->servers_) IHS_RETURN_IF_ERROR(c->Launch(s));
  for (int i = 0; i < count; ++i) {
    IHS_RETURN_IF_ERROR(WaitUntil(c->url(i), true, *c->servers_[i].process));
  }
  return c;
}

absl::Status NatsServers::Launch(Server& s) {
  std::vector<std::string> args = {kNatsServer, "-c", s.conf};
  if (!s.place.netns.empty()) {
    // `ip netns exec` enters the namespace and execs the server: the PID stays the server's.
    args.insert(args.begin(), {kIp, "netns", "exec", s.place.netns});
  }
  IHS_ASSIGN_OR_RETURN(s.process, ChildProcess::Start(args, s.log, /*pipe_stdout=*/false));
  return absl::OkStatus();
}

NatsServers::~NatsServers() {
  for (Server& s : servers_) s.process.reset();  // SIGTERM and wait, by PID
}

std::string NatsServers::url(int i) const {
  return absl::StrCat("nats://", servers_[i].place.host, ":", servers_[i].port);
}

std::vector<std::string> NatsServers::urls() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(url(i));
  return out;
}

void NatsServers::Kill(int i) { servers_[i].process->Stop(SIGKILL); }

absl::Status NatsServers::Restart(int i) {
  Server& s = servers_[i];
  s.process.reset();
  IHS_RETURN_IF_ERROR(Launch(s));
  return WaitUntil(url(i), false, *s.process);
}

std::string NatsServers::Log(int i) const { return servers_[i].process->Log(); }

}  // namespace ihs::testing
