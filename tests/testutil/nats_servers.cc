#include "tests/testutil/nats_servers.h"

#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace ihs::testing {
namespace {

constexpr char kNatsServer[] = "/usr/sbin/nats-server";

// A loopback port nobody listens on now (the kernel's choice for port 0).
absl::StatusOr<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  if (port <= 0) return absl::InternalError("no free loopback port");
  return port;
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

absl::Status WaitUntil(const std::string& url, bool jetstream, const std::string& log) {
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!Answers(url, jetstream)) {
    if (absl::Now() > deadline) {
      return absl::UnavailableError(absl::StrCat("nats-server at ", url, " did not become ready",
                                                 jetstream ? " for JetStream" : "", "; log:\n",
                                                 log));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<NatsServers>> NatsServers::Start(const std::string& dir, int count) {
  std::unique_ptr<NatsServers> c(new NatsServers());
  std::vector<int> routes;
  c->servers_.resize(count);
  for (int i = 0; i < count; ++i) {
    IHS_ASSIGN_OR_RETURN(c->servers_[i].port, FreePort());
    IHS_ASSIGN_OR_RETURN(int route, FreePort());
    routes.push_back(route);
  }
  for (int i = 0; i < count; ++i) {
    Server& s = c->servers_[i];
    s.name = absl::StrCat("n", i);
    s.conf = absl::StrCat(dir, "/", s.name, ".conf");
    s.log = absl::StrCat(dir, "/", s.name, ".log");
    std::vector<std::string> others;
    for (int j = 0; j < count; ++j) {
      if (j != i) others.push_back(absl::StrCat("nats-route://127.0.0.1:", routes[j]));
    }
    std::ofstream conf(s.conf);
    conf << "server_name: " << s.name << "\n"
         << "listen: 127.0.0.1:" << s.port << "\n"
         << "jetstream {\n  store_dir: \"" << dir << "/" << s.name << "\"\n"
         << "  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n";
    if (count > 1) {
      conf << "cluster {\n  name: ihs-test\n  listen: 127.0.0.1:" << routes[i] << "\n"
           << "  routes: [" << absl::StrJoin(others, ", ") << "]\n}\n";
    }
    if (!conf.good()) return absl::InternalError(absl::StrCat("cannot write ", s.conf));
  }
  for (Server& s : c->servers_) IHS_RETURN_IF_ERROR(c->Launch(s));
  for (Server& s : c->servers_) {
    IHS_RETURN_IF_ERROR(
        WaitUntil(absl::StrCat("nats://127.0.0.1:", s.port), true, s.process->Log()));
  }
  return c;
}

absl::Status NatsServers::Launch(Server& s) {
  IHS_ASSIGN_OR_RETURN(s.process, ChildProcess::Start({kNatsServer, "-c", s.conf}, s.log,
                                                      /*pipe_stdout=*/false));
  return absl::OkStatus();
}

NatsServers::~NatsServers() {
  for (Server& s : servers_) s.process.reset();  // SIGTERM and wait, by PID
}

std::string NatsServers::url(int i) const {
  return absl::StrCat("nats://127.0.0.1:", servers_[i].port);
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
  return WaitUntil(url(i), false, s.process->Log());
}

std::string NatsServers::Log(int i) const { return servers_[i].process->Log(); }

}  // namespace ihs::testing
