// ihsd --cluster under load, next to the embedded ihsd in the same run (issue 29): three
// nats-server processes (JetStream R3, loopback, file storage on this disk) and two ihsd nodes
// started by the driver, and one embedded ihsd. Every client talks to node "a"; an append goes
// either to a stream whose partition "a" holds (applied there) or to one whose partition "b"
// holds (forwarded over NATS to "b", which answers). Durable single appends and batches of 100,
// from 1 and 8 writers, each writer on its own stream with an exact expected version. Bounded:
// each case runs --seconds; everything started is ended by PID.
//
//   build/bin/cluster_load [--seconds 3] [--json] [--dir DIR] [--partitions 4]
//
// The events carry no personal content: a cluster refuses it until it keeps party keys
// (docs/scale.md); the embedded ihsd gets the same events. The embedded ihsd runs its projections
// as a user gets it; cluster nodes run none yet. Exit codes: 0 done, 5 a process or server did
// not start, 6 ownership did not settle, 7 an append failed.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "bench/load_driver.h"
#include "server/client.h"
#include "store/cluster/cluster.h"
#include "store/cluster/ownership.h"
#include "tests/testutil/ihsd_process.h"
#include "tests/testutil/nats_servers.h"

namespace ihs::bench {
namespace {

std::atomic<uint64_t> next_id{1};

// Writer w's stream for one case: the first name "load-CASE-w-k" whose partition is in `want`.
std::string StreamIn(const std::string& case_name, int w, const std::set<uint32_t>& want,
                     uint32_t partitions) {
  for (int k = 0;; ++k) {
    std::string s = absl::StrCat("load-", case_name, "-", w, "-", k);
    if (want.count(cluster::PartitionOf(s, partitions)) > 0) return s;
  }
}

// Append `seq` of a writer to `stream`: `n` touchpoints, expecting the version the writer's
// earlier appends left (each writer is alone on its stream).
std::unique_ptr<Batch> MakeBatch(const std::string& stream, uint64_t seq, size_t n) {
  auto b = std::make_unique<Batch>();
  auto list = b->mb.initRoot<capnp::AnyPointer>().initAs<capnp::List<schema::Event>>(n);
  b->append.stream = stream;
  b->append.expected =
      seq == 0 ? store::ExpectedVersion::NoStream() : store::ExpectedVersion::Exact(seq * n - 1);
  for (size_t i = 0; i < n; ++i) {
    auto e = list[i];
    const uint64_t id = next_id.fetch_add(1);
    auto idb = e.initId(16);
    for (int k = 0; k < 8; ++k) idb[k] = 0xc1;
    for (int k = 0; k < 8; ++k) idb[8 + k] = static_cast<kj::byte>(id >> (56 - 8 * k));
    e.setOccurredAt(1767600000000000 + static_cast<int64_t>(id));
    auto tp = e.initTouchpoint();
    tp.setChannel(schema::Channel::CHAT);
    tp.setDirection(schema::Direction::INBOUND);
    tp.setType(schema::TouchpointType::MESSAGE);
    b->append.events.push_back(e.asReader());
  }
  return b;
}

struct OverRpc {
  std::string address;
  using Ctx = std::unique_ptr<client::Client>;
  Ctx Open(int) { return ConnectOrExit(address, "cluster_load"); }
  absl::Status Append(Ctx& c, const store::StreamAppend& a) { return c->Append(a).status(); }
};

// One reader asking streamInfo of `stream` in a loop for `seconds`: what a read costs, and so
// what forwarding adds to a call.
LoadResult StreamInfoLoop(const std::string& address, const std::string& stream,
                          absl::Duration seconds) {
  OverRpc rpc{address};
  auto c = rpc.Open(0);
  std::vector<double> lat;
  LoadResult r;
  const absl::Time start = absl::Now();
  while (absl::Now() - start < seconds) {
    const absl::Time t0 = absl::Now();
    auto info = c->GetStreamInfo(stream);
    if (!info.ok()) {
      std::fprintf(stderr, "cluster_load: streamInfo failed: %s\n",
                   info.status().ToString().c_str());
      r.failed = true;
      break;
    }
    lat.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  }
  r.events_per_s = lat.size() / absl::ToDoubleSeconds(absl::Now() - start);
  r.p50_us = Percentile(lat, 0.50);
  r.p99_us = Percentile(lat, 0.99);
  r.p999_us = Percentile(lat, 0.999);
  return r;
}

// Waits until every partition has an owner and each of `nodes` holds its even share.
absl::StatusOr<std::map<std::string, std::set<uint32_t>>> SettledOwners(
    const std::vector<std::string>& servers, const std::vector<std::string>& nodes,
    uint32_t partitions) {
  cluster::ClusterOptions o;
  o.servers = servers;
  o.node = "cluster_load";
  auto c = cluster::Cluster::Connect(o);
  if (!c.ok()) return c.status();
  const size_t share = (partitions + nodes.size() - 1) / nodes.size();
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  absl::Status last = absl::DeadlineExceededError("ownership did not settle in 90 s");
  while (absl::Now() < deadline) {
    auto owners = cluster::ReadOwners(**c);
    if (owners.ok()) {
      std::map<std::string, std::set<uint32_t>> held;
      for (const auto& p : owners->partitions) held[p.node].insert(p.partition);
      bool settled = held.count("") == 0;
      for (const auto& n : nodes) settled = settled && held[n].size() == share;
      if (settled) return held;
    } else {
      last = owners.status();
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return last;
}

int Main(int argc, char** argv) {
  CLI::App app{"cluster_load: ihsd --cluster under load, next to the embedded ihsd"};
  LoadFlags flags{3, false, "/tmp/ihs-cluster-load", IHS_IHSD};
  AddLoadFlags(app, flags);
  uint32_t partitions = 4;
  app.add_option("--partitions", partitions, "of the cluster (default 4; even)")
      ->check(CLI::Range(2, 64));
  CLI11_PARSE(app, argc, argv);
  PrintBuild("cluster_load", IHS_BUILD_TYPE);
  const std::string& dir = flags.dir;
  const std::string& ihsd = flags.ihsd;
  const bool json = flags.json;
  namespace fs = std::filesystem;
  fs::remove_all(dir);
  fs::create_directories(dir + "/nats");

  testing::IhsdOptions eo;
  eo.binary = ihsd;
  eo.data = dir + "/embedded";
  eo.extra_args = {"--workers", "64"};
  auto embedded = testing::IhsdProcess::Start(eo);
  if (!embedded.ok()) return std::fprintf(stderr, "%s\n", embedded.status().ToString().c_str()), 5;

  auto servers = testing::NatsServers::Start(dir + "/nats", 3);
  if (!servers.ok()) return std::fprintf(stderr, "%s\n", servers.status().ToString().c_str()), 5;
  const std::vector<std::string> names = {"a", "b"};
  std::map<std::string, std::unique_ptr<testing::IhsdProcess>> nodes;
  for (const auto& n : names) {
    testing::IhsdOptions o;
    o.binary = ihsd;
    o.data = dir + "/node-" + n;
    o.extra_args = {"--workers", "64", "--cluster", absl::StrJoin((*servers)->urls(), ","),
                    "--node",    n};
    if (n == names[0]) {
      o.extra_args.push_back("--partitions");
      o.extra_args.push_back(absl::StrCat(partitions));
    }
    auto p = testing::IhsdProcess::Start(o);
    if (!p.ok()) return std::fprintf(stderr, "%s\n", p.status().ToString().c_str()), 5;
    nodes[n] = std::move(*p);
  }
  auto held = SettledOwners((*servers)->urls(), names, partitions);
  if (!held.ok()) return std::fprintf(stderr, "%s\n", held.status().ToString().c_str()), 6;
  std::printf("partitions: a holds %s, b holds %s; every client talks to a\n",
              absl::StrJoin((*held)["a"], ",").c_str(), absl::StrJoin((*held)["b"], ",").c_str());

  struct Target {
    std::string name;
    std::string address;
    std::set<uint32_t> partitions;  // the streams' (all, for the embedded ihsd)
  };
  std::set<uint32_t> all;
  for (uint32_t p = 0; p < partitions; ++p) all.insert(p);
  const std::vector<Target> targets = {
      {"embedded", (*embedded)->addresses()[0], all},
      {"cluster-local", nodes["a"]->addresses()[0], (*held)["a"]},
      {"cluster-forwarded", nodes["a"]->addresses()[0], (*held)["b"]},
  };
  const absl::Duration each = absl::Seconds(flags.seconds);
  int exit_code = 0;
  std::printf("%-7s %-8s %-18s %10s %8s %10s %10s %10s\n", "batch", "writers", "target", "ev/s",
              "ratio", "p50 us", "p99 us", "p999 us");
  for (size_t batch : {size_t{1}, size_t{100}}) {
    for (int writers : {1, 8}) {
      double embedded_rate = 0;
      for (const auto& t : targets) {
        const std::string case_name = absl::StrCat(t.name, "-", batch, "-", writers);
        std::vector<std::string> streams;
        for (int w = 0; w < writers; ++w) {
          streams.push_back(StreamIn(case_name, w, t.partitions, partitions));
        }
        OverRpc rpc{t.address};
        LoadResult r = Drive(writers, each, rpc, [&](int w, uint64_t seq) {
          return MakeBatch(streams[w], seq, batch);
        });
        if (r.failed) exit_code = 7;
        if (t.name == "embedded") embedded_rate = r.events_per_s;
        const double ratio = embedded_rate > 0 ? r.events_per_s / embedded_rate : 0;
        std::printf("%-7zu %-8d %-18s %10.0f %7.0f%% %10.0f %10.0f %10.0f\n", batch, writers,
                    t.name.c_str(), r.events_per_s, 100 * ratio, r.p50_us, r.p99_us, r.p999_us);
        if (json) {
          std::printf(
              "{\"batch\":%zu,\"writers\":%d,\"target\":\"%s\",\"eventsPerSecond\":%.0f,"
              "\"ofEmbedded\":%.3f,\"p50us\":%.0f,\"p99us\":%.0f,\"p999us\":%.0f}\n",
              batch, writers, t.name.c_str(), r.events_per_s, ratio, r.p50_us, r.p99_us, r.p999_us);
        }
        std::fflush(stdout);
      }
    }
  }
  // Reads: the streams of the first case (1 event each, then more), one reader.
  std::printf("%-27s %10s %8s %10s %10s %10s\n", "streamInfo, 1 reader", "calls/s", "ratio",
              "p50 us", "p99 us", "p999 us");
  double embedded_reads = 0;
  for (const auto& t : targets) {
    const std::string stream = StreamIn(absl::StrCat(t.name, "-1-1"), 0, t.partitions, partitions);
    LoadResult r = StreamInfoLoop(t.address, stream, each);
    if (r.failed) exit_code = 7;
    if (t.name == "embedded") embedded_reads = r.events_per_s;
    const double ratio = embedded_reads > 0 ? r.events_per_s / embedded_reads : 0;
    std::printf("%-27s %10.0f %7.0f%% %10.0f %10.0f %10.0f\n", t.name.c_str(), r.events_per_s,
                100 * ratio, r.p50_us, r.p99_us, r.p999_us);
    if (json) {
      std::printf(
          "{\"read\":\"streamInfo\",\"target\":\"%s\",\"callsPerSecond\":%.0f,"
          "\"ofEmbedded\":%.3f,\"p50us\":%.0f,\"p99us\":%.0f,\"p999us\":%.0f}\n",
          t.name.c_str(), r.events_per_s, ratio, r.p50_us, r.p99_us, r.p999_us);
    }
    std::fflush(stdout);
  }
  for (auto& [n, p] : nodes) p->Stop(SIGTERM);
  (*embedded)->Stop(SIGTERM);
  servers->reset();
  fs::remove_all(dir);
  return exit_code;
}

}  // namespace
}  // namespace ihs::bench

int main(int argc, char** argv) { return ihs::bench::Main(argc, argv); }
