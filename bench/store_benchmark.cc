// ihs's event log against its ceiling, raw RocksDB, in one run.
//
// The raw side opens RocksDB with the store's own options (store/internal/db_options.h) and
// writes, per append, the same keys and bytes the store writes: the event record (a record made
// by the store itself, so the same size), the stream index, the event-id index, the stream's
// metadata and the Merkle nodes, in one WriteBatch with the same sync setting. What the ratio
// measures is therefore the store's own work: validation, idempotency and version checks,
// sealing, hashing, and its group-commit writer against RocksDB's.
//
// Benchmarks:
//   BM_Append{Ihs,Raw}/batch:1|100/threads:1|8   durable appends (WAL synced before return)
//   BM_ReadStream{Ihs,IhsOpen,Raw}                 one 1,000-event stream, forward
//   BM_DiskSync                                    the disk's sync rate: 4 KiB appended to a
//                                                  file, then fdatasync, as `dd oflag=dsync`
//                                                  measures it; group commit is judged against
//                                                  it (8 writers: appends per sync)
// Run: build/bin/store_benchmark [--benchmark_filter=...]   (IHS_BENCH_DIR: where stores go)
#include <benchmark/benchmark.h>
#include <capnp/message.h>
#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_event.h"
#include "common/big_endian.h"
#include "store/event_store.h"
#include "store/internal/db_options.h"
#include "store/internal/keys.h"

namespace ihs::bench {
namespace {

namespace fs = std::filesystem;
using store::EventStore;

std::string BenchDir(const std::string& name) {
  const char* base = std::getenv("IHS_BENCH_DIR");
  fs::path dir =
      fs::path(base && *base ? base : "/tmp") / absl::StrCat("ihs-bench-", ::getpid(), "-", name);
  fs::remove_all(dir);
  return dir.string();
}

// A touchpoint with personal content of a typical size (a short email).
void FillEvent(schema::Event::Builder ev, uint64_t id, int64_t occurred_at) {
  FillBenchEvent(ev, id, occurred_at, /*content=*/true);
}

// Ids unique over the whole process, so no append is ever an idempotent retry.
std::atomic<uint64_t> g_next_id{1};

// ---------------------------------------------------------------------------------------------
// Appends through ihs.

std::unique_ptr<EventStore> g_ihs;

void BM_AppendIhs(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  if (state.thread_index() == 0) {
    store::Options o;
    o.path = BenchDir("append-ihs");
    auto s = EventStore::Open(o);
    if (!s.ok()) {
      state.SkipWithError(std::string(s.status().message()).c_str());
      return;
    }
    g_ihs = std::move(*s);
  }
  // Each thread builds its events once and then only rewrites their ids in place, so the
  // client's own work stays out of the figure.
  std::vector<capnp::MallocMessageBuilder> messages(batch);
  store::StreamAppend req;
  for (auto& m : messages) {
    auto ev = m.initRoot<schema::Event>();
    FillEvent(ev, 0, 1700000000000000);
    req.events.push_back(ev.asReader());
  }
  uint64_t n = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      std::string id = BigEndian64(0xbebebebebebebebe) + BigEndian64(g_next_id.fetch_add(1));
      std::memcpy(messages[i].getRoot<schema::Event>().getId().begin(), id.data(), 16);
    }
    req.stream = absl::StrCat("party-", state.thread_index(), "-", n++ % 100);
    auto r = g_ihs->Append(req);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);
  if (state.thread_index() == 0) {
    auto stats = g_ihs->Stats();
    if (stats.ok() && stats->syncs > 0) {
      state.counters["appends_per_sync"] =
          static_cast<double>(stats->appends) / static_cast<double>(stats->syncs);
    }
    g_ihs.reset();
  }
}

// ---------------------------------------------------------------------------------------------
// The same keys and bytes written to raw RocksDB.

struct RawDb {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cf;  // order of StoreColumnFamilies()
  std::string record;                            // a stored record of FillEvent's event
  std::string digest = std::string(32, '\x5d');
  std::atomic<uint64_t> next_position{0};
  ~RawDb() {
    for (auto* h : cf) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
};
std::unique_ptr<RawDb> g_raw;

// The record the store writes for FillEvent's event, taken from a real store.
std::string SampleRecord() {
  store::Options o;
  o.path = BenchDir("sample");
  auto s = EventStore::Open(o);
  capnp::MallocMessageBuilder m;
  FillEvent(m.initRoot<schema::Event>(), 1, 1700000000000000);
  std::string out;
  if (s.ok() &&
      (*s)->Append(
              {"sample", store::ExpectedVersion::Any(), {m.getRoot<schema::Event>().asReader()}})
          .ok()) {
    auto events = (*s)->ReadAll(0, 1, store::ReadOptions{false});
    if (events.ok()) out = std::string((*events)[0].bytes());
  }
  s->reset();
  fs::remove_all(o.path);
  return out;
}

void BM_AppendRaw(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  if (state.thread_index() == 0) {
    g_raw = std::make_unique<RawDb>();
    g_raw->record = SampleRecord();
    rocksdb::Options options(store::internal::StoreDbOptions(), rocksdb::ColumnFamilyOptions());
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, BenchDir("append-raw"),
                                          store::internal::StoreColumnFamilies(), &g_raw->cf, &db);
    if (!s.ok() || g_raw->record.empty()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
    g_raw->db.reset(db);
  }
  RawDb* rawp = nullptr;  // set by thread 0 before the loop's start barrier: read it after
  rocksdb::WriteOptions wo;
  wo.sync = true;
  uint64_t n = 0;
  const std::string hash(32, '\x3a');
  for (auto _ : state) {
    if (!rawp) rawp = g_raw.get();
    RawDb& raw = *rawp;
    rocksdb::WriteBatch wb;
    uint64_t first = raw.next_position.fetch_add(batch);
    std::string stream = absl::StrCat("party-", state.thread_index(), "-", n++ % 100);
    for (int i = 0; i < batch; ++i) {
      uint64_t p = first + i;
      std::string id = BigEndian64(g_next_id.fetch_add(1)) + BigEndian64(p);
      wb.Put(raw.cf[1], store::internal::EventKey(p), raw.record);
      wb.Put(raw.cf[2], store::internal::StreamIndexKey(state.thread_index() * 100 + n % 100, p),
             BigEndian64(p));
      wb.Put(raw.cf[4], id, BigEndian64(p) + BigEndian64(p) + raw.digest);
      // The leaf and the subtrees it completes: as many as the trailing ones of p, plus one.
      uint64_t index = p;
      uint8_t level = 0;
      wb.Put(raw.cf[6], store::internal::MerkleKey(0, index), hash);
      while (index & 1) {
        index >>= 1;
        wb.Put(raw.cf[6], store::internal::MerkleKey(++level, index), hash);
      }
    }
    wb.Put(raw.cf[3], stream, std::string(store::internal::kStreamMetaBytes, '\x01'));
    rocksdb::Status s = raw.db->Write(wo, &wb);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);
  if (state.thread_index() == 0) g_raw.reset();
}

// ---------------------------------------------------------------------------------------------
// The disk's own sync rate, on the same file system as the stores.

void BM_DiskSync(benchmark::State& state) {
  const std::string dir = BenchDir("sync");
  fs::create_directories(dir);
  const std::string path = dir + "/probe";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return state.SkipWithError("open the probe file");
  const std::string block(4096, '\x5a');
  for (auto _ : state) {
    if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("write or sync the probe file");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  ::close(fd);
  fs::remove_all(dir);
}
BENCHMARK(BM_DiskSync)->UseRealTime()->MinTime(2.0);

void AppendArgs(benchmark::internal::Benchmark* b) {
  b->ArgName("batch")->Arg(1)->Arg(100)->Threads(1)->Threads(8)->UseRealTime();
}
BENCHMARK(BM_AppendIhs)->Apply(AppendArgs);
BENCHMARK(BM_AppendRaw)->Apply(AppendArgs);

// ---------------------------------------------------------------------------------------------
// Reading one 1,000-event stream whose events are spread over a 10,000-event log.

struct ReadFixture {
  std::string dir;
  std::unique_ptr<EventStore> store;
  std::unique_ptr<rocksdb::DB> raw;  // read-only beside the store
  std::vector<rocksdb::ColumnFamilyHandle*> cf;
  uint64_t stream_no = 0;
};
ReadFixture* g_read = nullptr;

ReadFixture* Read() {
  if (g_read) return g_read;
  auto* f = new ReadFixture();
  f->dir = BenchDir("read");
  store::Options o;
  o.path = f->dir;
  auto s = EventStore::Open(o);
  if (!s.ok()) return nullptr;
  f->store = std::move(*s);
  std::vector<capnp::MallocMessageBuilder> messages(10);
  for (int round = 0; round < 1000; ++round) {
    std::vector<store::StreamAppend> reqs;
    for (int k = 0; k < 10; ++k) {
      FillEvent(messages[k].initRoot<schema::Event>(), g_next_id.fetch_add(1),
                1700000000000000 + round);
      reqs.push_back({absl::StrCat("reader-", k),
                      store::ExpectedVersion::Any(),
                      {messages[k].getRoot<schema::Event>().asReader()}});
    }
    if (!f->store->AppendMulti(reqs).ok()) return nullptr;
  }
  rocksdb::DB* db = nullptr;
  rocksdb::Options options(store::internal::StoreDbOptions(), rocksdb::ColumnFamilyOptions());
  if (!rocksdb::DB::OpenForReadOnly(options, f->dir + "/db", store::internal::StoreColumnFamilies(),
                                    &f->cf, &db)
           .ok()) {
    return nullptr;
  }
  f->raw.reset(db);
  std::string meta;
  if (!f->raw->Get(rocksdb::ReadOptions(), f->cf[3], "reader-3", &meta).ok()) return nullptr;
  f->stream_no = store::internal::DecodeStreamMeta(meta)->stream_no;
  g_read = f;
  return f;
}

void ReadIhs(benchmark::State& state, bool open_content) {
  ReadFixture* f = Read();
  if (!f) {
    state.SkipWithError("read fixture failed");
    return;
  }
  for (auto _ : state) {
    auto events = f->store->ReadStream("reader-3", 0, 1000, store::ReadDirection::kForward,
                                       store::ReadOptions{open_content});
    if (!events.ok() || events->size() != 1000) {
      state.SkipWithError("ReadStream failed");
      break;
    }
    benchmark::DoNotOptimize(events->back().event().getPosition());
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
void BM_ReadStreamIhs(benchmark::State& state) { ReadIhs(state, false); }
void BM_ReadStreamIhsOpenContent(benchmark::State& state) { ReadIhs(state, true); }

// The same keys through raw RocksDB: iterate the stream's index, MultiGet its events, copy them.
void BM_ReadStreamRaw(benchmark::State& state) {
  ReadFixture* f = Read();
  if (!f) {
    state.SkipWithError("read fixture failed");
    return;
  }
  std::string lower = store::internal::StreamIndexKey(f->stream_no, 0);
  std::string upper = store::internal::StreamIndexKey(f->stream_no + 1, 0);
  for (auto _ : state) {
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(f->raw->NewIterator(ro, f->cf[2]));
    std::vector<std::string> keys;
    keys.reserve(1000);
    for (it->Seek(lower); it->Valid(); it->Next()) keys.push_back(it->value().ToString());
    std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    f->raw->MultiGet(rocksdb::ReadOptions(), f->cf[1], keys.size(), slices.data(), values.data(),
                     statuses.data());
    std::vector<std::string> copies;
    copies.reserve(keys.size());
    for (auto& v : values) copies.push_back(v.ToString());
    if (copies.size() != 1000) {
      state.SkipWithError("raw read found no stream");
      break;
    }
    benchmark::DoNotOptimize(copies.back().data());
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

BENCHMARK(BM_ReadStreamIhs)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReadStreamIhsOpenContent)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReadStreamRaw)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ihs::bench

int main(int argc, char** argv) {
#ifdef NDEBUG
  benchmark::AddCustomContext("ihs_assertions", "off");
#else
  benchmark::AddCustomContext("ihs_assertions", "ON: figures are not for bench/RESULTS.md");
  std::fprintf(stderr, "WARNING: assertions are on; build with -DCMAKE_BUILD_TYPE=Release\n");
#endif
  benchmark::AddCustomContext("ihs_build_type", IHS_BUILD_TYPE);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (ihs::bench::g_read) {
    for (auto* h : ihs::bench::g_read->cf) {
      ihs::bench::g_read->raw->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    delete ihs::bench::g_read;
  }
  // Every store this run made is named /tmp/ihs-bench-<pid>-*.
  const char* base = std::getenv("IHS_BENCH_DIR");
  std::string prefix = "ihs-bench-" + std::to_string(::getpid()) + "-";
  for (const auto& e : std::filesystem::directory_iterator(base && *base ? base : "/tmp")) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) std::filesystem::remove_all(e.path());
  }
  return 0;
}
