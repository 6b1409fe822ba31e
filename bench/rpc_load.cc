// The RPC load driver: a real ihsd driven from 1, 4, 16 and 64 client connections with durable
// single appends and with batches of 100, next to the same load on an in-process EventStore in
// the same run (the ceiling), plus the commit-to-subscriber latency under the 4- and 16-connection
// batch loads. Prints a table (and JSON lines with --json). Bounded: each case runs --seconds.
//
//   build/bin/rpc_load [--seconds 3] [--json] [--dir DIR] [--projection-nice N]
//
// Events are small touchpoints with content (so sealing is part of the cost), each to one of
// 1,000 streams per connection, expected version "any".
#include <capnp/message.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/load_driver.h"
#include "server/client.h"
#include "store/event_store.h"
#include "tests/testutil/ihsd_process.h"

namespace ihs::bench {
namespace {

std::atomic<uint64_t> next_id{1};

std::unique_ptr<Batch> MakeBatch(int worker, uint64_t seq, size_t n) {
  auto b = std::make_unique<Batch>();
  auto list = b->mb.initRoot<capnp::AnyPointer>().initAs<capnp::List<schema::Event>>(n);
  b->append.stream = absl::StrCat("load-", worker, "-", seq % 1000);
  b->append.expected = store::ExpectedVersion::Any();
  for (size_t i = 0; i < n; ++i) {
    auto e = list[i];
    uint64_t id = next_id.fetch_add(1);
    auto idb = e.initId(16);
    for (int k = 0; k < 8; ++k) idb[k] = 0xbe;
    for (int k = 0; k < 8; ++k) idb[8 + k] = static_cast<kj::byte>(id >> (56 - 8 * k));
    e.setOccurredAt(1767600000000000 + static_cast<int64_t>(id));
    auto tp = e.initTouchpoint();
    tp.setChannel(schema::Channel::CHAT);
    tp.setDirection(schema::Direction::INBOUND);
    tp.setType(schema::TouchpointType::MESSAGE);
    e.initContent().setText("Hello, my order has not arrived yet. Can you look into it?");
    b->append.events.push_back(e.asReader());
  }
  return b;
}

struct InProcess {
  store::EventStore* store;
  struct Ctx {};
  Ctx Open(int) { return {}; }
  absl::Status Append(Ctx&, const store::StreamAppend& a) { return store->Append(a).status(); }
};

struct OverRpc {
  std::string address;
  // Ack times by position, for the subscriber latency (only while `record` is set).
  std::mutex* mu = nullptr;
  std::unordered_map<uint64_t, absl::Time>* acked = nullptr;
  using Ctx = std::unique_ptr<client::Client>;
  Ctx Open(int) { return ConnectOrExit(address, "rpc_load"); }
  absl::Status Append(Ctx& c, const store::StreamAppend& a) {
    auto r = c->Append(a);
    if (!r.ok()) return r.status();
    if (acked != nullptr) {
      absl::Time now = absl::Now();
      std::lock_guard<std::mutex> lock(*mu);
      for (uint64_t p : r->positions) (*acked)[p] = now;
    }
    return absl::OkStatus();
  }
};

int Main(int argc, char** argv) {
  CLI::App app{"rpc_load: ihsd under load, next to the in-process store"};
  LoadFlags flags{3, false, "/tmp/ihs-rpc-load", IHS_IHSD};
  AddLoadFlags(app, flags);
  int projection_nice = 0;
  app.add_option("--projection-nice", projection_nice, "ihsd's --projection-nice (default 0)")
      ->check(CLI::Range(0, 19));
  CLI11_PARSE(app, argc, argv);
  PrintBuild("rpc_load", IHS_BUILD_TYPE);
  const std::string& dir = flags.dir;
  const bool json = flags.json;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  store::Options so;
  so.path = dir + "/inproc";
  auto local = store::EventStore::Open(so);
  if (!local.ok()) return std::fprintf(stderr, "%s\n", local.status().ToString().c_str()), 5;

  testing::IhsdOptions io;
  io.binary = flags.ihsd;
  io.data = dir + "/ihsd";
  io.extra_args = {"--workers", "64", "--projection-nice", std::to_string(projection_nice)};
  auto server = testing::IhsdProcess::Start(io);
  if (!server.ok()) return std::fprintf(stderr, "%s\n", server.status().ToString().c_str()), 5;
  const std::string address = (*server)->addresses()[0];
  const absl::Duration each = absl::Seconds(flags.seconds);

  std::printf("%-7s %-6s %12s %12s %7s %10s %10s %10s\n", "batch", "conns", "rpc ev/s",
              "inproc ev/s", "ratio", "p50 us", "p99 us", "p999 us");
  for (size_t batch : {size_t{1}, size_t{100}}) {
    for (int conns : {1, 4, 16, 64}) {
      auto make = [batch](int w, uint64_t seq) { return MakeBatch(w, seq, batch); };
      InProcess inproc{local->get()};
      LoadResult in = Drive(conns, each, inproc, make);
      OverRpc rpc{address};
      std::mutex mu;
      std::unordered_map<uint64_t, absl::Time> acked;
      std::vector<std::pair<uint64_t, absl::Time>> received;
      std::vector<double> since_recorded;
      std::thread sub;
      std::atomic<bool> writers_done{false};
      const bool measure_sub = batch == 100 && (conns == 4 || conns == 16);
      if (measure_sub) {
        rpc.mu = &mu;
        rpc.acked = &acked;
        auto head = client::Client::Connect({address, "bench"});
        const uint64_t from = head.ok() ? (*head)->Head().value_or(0) : 0;
        sub = std::thread([&, from] {
          auto c = client::Client::Connect({address, "bench"});
          if (!c.ok()) return;
          client::SubscribeOptions o;
          o.from_position = from;
          o.open_content = false;
          (void)(*c)->Subscribe(o, [&](const std::vector<client::RemoteEvent>& evs, uint64_t) {
            absl::Time now = absl::Now();
            for (const auto& e : evs) {
              received.emplace_back(e.position(), now);
              since_recorded.push_back(absl::ToDoubleMicroseconds(
                  now - absl::FromUnixMicros(e.event().getRecordedAt())));
            }
            return !writers_done.load();
          });
        });
      }
      LoadResult r = Drive(conns, each, rpc, make);
      const double ratio = in.events_per_s > 0 ? r.events_per_s / in.events_per_s : 0;
      std::printf("%-7zu %-6d %12.0f %12.0f %6.0f%% %10.0f %10.0f %10.0f\n", batch, conns,
                  r.events_per_s, in.events_per_s, 100 * ratio, r.p50_us, r.p99_us, r.p999_us);
      if (json) {
        std::printf(
            "{\"batch\":%zu,\"connections\":%d,\"rpcEventsPerSecond\":%.0f,"
            "\"inProcessEventsPerSecond\":%.0f,\"ratio\":%.3f,\"p50us\":%.0f,\"p99us\":%.0f,"
            "\"p999us\":%.0f,\"inProcessP50us\":%.0f,\"inProcessP99us\":%.0f}\n",
            batch, conns, r.events_per_s, in.events_per_s, ratio, r.p50_us, r.p99_us, r.p999_us,
            in.p50_us, in.p99_us);
      }
      std::fflush(stdout);
      if (measure_sub) {
        // One more event wakes the subscriber, which then sees that the writers are done.
        writers_done = true;
        OverRpc wake{address};
        auto c = wake.Open(0);
        (void)wake.Append(c, MakeBatch(0, 0, 1)->append);
        sub.join();
        std::vector<double> after_ack;
        std::lock_guard<std::mutex> lock(mu);
        for (auto& [pos, at] : received) {
          auto it = acked.find(pos);
          if (it != acked.end()) {
            after_ack.push_back(std::max(0.0, absl::ToDoubleMicroseconds(at - it->second)));
          }
        }
        std::printf(
            "subscriber under %d-connection batch load: %zu events; after the writer's ack: p50 "
            "%.0f us, p99 %.0f us; after recordedAt (includes the WAL sync): p50 %.0f us, p99 "
            "%.0f us\n",
            conns, received.size(), Percentile(after_ack, 0.5), Percentile(after_ack, 0.99),
            Percentile(since_recorded, 0.5), Percentile(since_recorded, 0.99));
      }
    }
  }
  (*server)->Stop(SIGTERM);
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace ihs::bench

int main(int argc, char** argv) { return ihs::bench::Main(argc, argv); }
