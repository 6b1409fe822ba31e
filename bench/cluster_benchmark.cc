// A cluster of three nats-servers on this machine (JetStream R3, loopback) against the embedded
// store, in one run (issue 29, docs/scale.md).
//
// Benchmarks:
//   BM_AppendEmbedded/batch:1|100/threads:1|8   the single-node store: durable appends
//   BM_AppendCluster/batch:1|100/threads:1|8    AppendThrough: published to the partition's log,
//                                               acknowledged by a quorum, then applied by this
//                                               node's replica of the partition, whose verdict
//                                               is the answer (what a client would wait for)
//   BM_PublishCluster/batch:1|100/threads:1|8   the publication alone (JetStream's quorum ack)
//   BM_Materialise                              a new replica applying a partition's log of
//                                               20,000 single-event messages (run first, so
//                                               that it holds nothing else); reported with
//   BM_ReadAllReplica                           ReadAll of that replica's store: the ceiling
// Events carry no personal content (a cluster refuses it until it keeps party keys), the same on
// both sides. 4 partitions; one process holds a replica of each.
//
// Run: build/bin/cluster_benchmark   (IHS_BENCH_DIR: where stores and the servers' files go)
#include <benchmark/benchmark.h>
#include <capnp/message.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_event.h"
#include "store/cluster/cluster.h"
#include "store/cluster/replica.h"
#include "store/event_store.h"
#include "tests/testutil/nats_servers.h"

namespace ihs::bench {
namespace {

namespace fs = std::filesystem;
constexpr uint32_t kPartitions = 4;
constexpr int kMaterialiseMessages = 20000;

std::string g_dir;
std::unique_ptr<testing::NatsServers> g_servers;
std::unique_ptr<cluster::Cluster> g_cluster;
std::vector<std::unique_ptr<cluster::PartitionReplica>> g_replicas;
std::unique_ptr<store::EventStore> g_embedded;
std::atomic<uint64_t> g_next_id{1};
std::atomic<uint64_t> g_next_stream{1};

// An append of `batch` new events to `stream` at its exact next version.
struct AppendMaker {
  std::string stream = absl::StrCat("customer-", g_next_stream.fetch_add(1));
  uint64_t appended = 0;

  store::StreamAppend Next(int batch) {
    events.clear();
    builders.clear();
    for (int i = 0; i < batch; ++i) {
      builders.push_back(std::make_unique<capnp::MallocMessageBuilder>());
      auto ev = builders.back()->initRoot<schema::Event>();
      const uint64_t id = g_next_id.fetch_add(1);
      FillBenchEvent(ev, id, 1700000000000000 + static_cast<int64_t>(id), /*content=*/false);
      events.push_back(ev.asReader());
    }
    store::StreamAppend a{stream,
                          appended == 0 ? store::ExpectedVersion::NoStream()
                                        : store::ExpectedVersion::Exact(appended - 1),
                          events};
    appended += batch;
    return a;
  }

  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> builders;
  std::vector<schema::Event::Reader> events;
};

void Report(benchmark::State& state, int batch) {
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch),
                                                  benchmark::Counter::kIsRate);
}

void BM_AppendEmbedded(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  AppendMaker maker;
  for (auto _ : state) {
    auto r = g_embedded->Append(maker.Next(batch));
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
  }
  Report(state, batch);
}

void BM_AppendCluster(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  AppendMaker maker;
  auto& replica = *g_replicas[cluster::PartitionOf(maker.stream, kPartitions)];
  for (auto _ : state) {
    auto r = cluster::AppendThrough(*g_cluster, replica, maker.Next(batch));
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
  }
  Report(state, batch);
}

void BM_PublishCluster(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  AppendMaker maker;
  for (auto _ : state) {
    auto r = g_cluster->Publish(maker.Next(batch));
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
  }
  Report(state, batch);
}

// The partition of stream "customer-m0" gets kMaterialiseMessages messages once.
uint32_t MaterialisePartition() {
  static const uint32_t partition = [] {
    AppendMaker maker;
    maker.stream = "customer-m0";
    for (int i = 0; i < kMaterialiseMessages; ++i) {
      auto r = g_cluster->Publish(maker.Next(1));
      if (!r.ok()) {
        fprintf(stderr, "publishing: %s\n", std::string(r.status().message()).c_str());
        std::exit(1);
      }
    }
    return cluster::PartitionOf(maker.stream, kPartitions);
  }();
  return partition;
}

std::unique_ptr<cluster::PartitionReplica> g_materialised;

void BM_Materialise(benchmark::State& state) {
  const uint32_t partition = MaterialisePartition();
  uint64_t applied = 0;
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    g_materialised.reset();
    const std::string dir = absl::StrCat(g_dir, "/materialise-", round++);
    auto r = cluster::PartitionReplica::Open(g_cluster.get(), partition, dir);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      break;
    }
    state.ResumeTiming();
    auto caught = (*r)->CatchUp();
    if (!caught.ok()) {
      state.SkipWithError(std::string(caught.status().message()).c_str());
      break;
    }
    applied = *caught;
    g_materialised = std::move(*r);
  }
  state.counters["messages/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * applied), benchmark::Counter::kIsRate);
  if (g_materialised != nullptr) {
    state.counters["events/s"] =
        benchmark::Counter(static_cast<double>(state.iterations() * g_materialised->store().Head()),
                           benchmark::Counter::kIsRate);
  }
}

void BM_ReadAllReplica(benchmark::State& state) {
  if (g_materialised == nullptr) {
    state.SkipWithError("run BM_Materialise first");
    return;
  }
  store::EventStore& s = g_materialised->store();
  uint64_t read = 0;
  for (auto _ : state) {
    read = 0;
    for (uint64_t from = 0; from < s.Head();) {
      auto events = s.ReadAll(from, 1024);
      if (!events.ok() || events->empty()) break;
      read += events->size();
      from += events->size();
      benchmark::DoNotOptimize(events->back().bytes().data());
    }
  }
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(state.iterations() * read),
                                                  benchmark::Counter::kIsRate);
}

#define IHS_APPEND_CASES(bm)                                                      \
  BENCHMARK(bm)->ArgName("batch")->Arg(1)->Threads(1)->UseRealTime()->MinTime(3); \
  BENCHMARK(bm)->ArgName("batch")->Arg(1)->Threads(8)->UseRealTime()->MinTime(3); \
  BENCHMARK(bm)->ArgName("batch")->Arg(100)->Threads(1)->UseRealTime()->MinTime(3)

// The materialisation first, while its partition holds only its own messages.
BENCHMARK(BM_Materialise)->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadAllReplica)->UseRealTime()->Unit(benchmark::kMillisecond);
IHS_APPEND_CASES(BM_AppendEmbedded);
IHS_APPEND_CASES(BM_AppendCluster);
IHS_APPEND_CASES(BM_PublishCluster);

int Main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const char* base = std::getenv("IHS_BENCH_DIR");
  g_dir = (fs::path(base && *base ? base : "/tmp") / absl::StrCat("ihs-cluster-bench-", getpid()))
              .string();
  fs::remove_all(g_dir);
  fs::create_directories(g_dir + "/nats");
  auto servers = testing::NatsServers::Start(g_dir + "/nats", 3);
  if (!servers.ok()) {
    fprintf(stderr, "%s\n", std::string(servers.status().message()).c_str());
    return 1;
  }
  g_servers = std::move(*servers);
  cluster::ClusterOptions o;
  o.servers = g_servers->urls();
  o.partitions = kPartitions;
  o.node = "bench";
  o.timeout = absl::Seconds(10);
  auto c = cluster::Cluster::Connect(o);
  if (!c.ok()) {
    fprintf(stderr, "%s\n", std::string(c.status().message()).c_str());
    return 1;
  }
  g_cluster = std::move(*c);
  for (uint32_t p = 0; p < kPartitions; ++p) {
    auto r =
        cluster::PartitionReplica::Open(g_cluster.get(), p, absl::StrCat(g_dir, "/replica-", p));
    if (!r.ok()) {
      fprintf(stderr, "%s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    g_replicas.push_back(std::move(*r));
  }
  store::Options so;
  so.path = g_dir + "/embedded";
  auto embedded = store::EventStore::Open(so);
  if (!embedded.ok()) {
    fprintf(stderr, "%s\n", std::string(embedded.status().message()).c_str());
    return 1;
  }
  g_embedded = std::move(*embedded);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_materialised.reset();
  g_replicas.clear();
  g_cluster.reset();
  g_embedded.reset();
  g_servers.reset();
  fs::remove_all(g_dir);
  return 0;
}

}  // namespace
}  // namespace ihs::bench

int main(int argc, char** argv) { return ihs::bench::Main(argc, argv); }
