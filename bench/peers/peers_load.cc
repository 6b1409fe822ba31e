// ihsd against the databases a service would use instead, in one run on one disk (issue 27):
// PostgreSQL with an events table in the shape of Message DB (its `write_message` with the
// optimistic check on the stream's version), Redis Streams with `appendfsync always` (XADD behind a
// Lua check of the stream's length), ihsd over RPC with the projections it runs by default, the
// ihs store in process, and raw RocksDB writing the same bytes with the same sync (the ceiling).
//
//   build/bin/peers_load --pg 'host=127.0.0.1 port=N user=U dbname=postgres'
//                        --redis 127.0.0.1:M [--seconds 5] [--json] [--dir DIR]
//
// bench/peers/run.sh installs, starts and stops PostgreSQL and Redis and runs this. Every system
// gets the same event: a touchpoint with a 270-character text (its JSON, ~420 bytes, is what the
// peers and raw RocksDB store), a fresh id per event, one stream per writer, and the exact
// expected version of that stream on every append. Every acknowledgement is durable: RocksDB and
// ihs sync the WAL, PostgreSQL commits with synchronous_commit on, Redis syncs its AOF before it
// answers. Modes: 1, 8 and 64 writers of single events, 1 writer of 100-event appends; each case
// runs --seconds. A system left out (no --pg, no --redis) prints "-".
//
// Exit codes: 0 done, 1 usage, 5 a system could not be started or an append failed.
#include <capnp/message.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "schema/json.h"
#include "server/client.h"
#include "store/event_store.h"
#include "store/internal/db_options.h"
#include "tests/testutil/ihsd_process.h"

namespace ihs::bench {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kOccurredAt = 1767600000000000;

// The 270-character text every event carries.
std::string Text() {
  std::string t =
      "Hello, I ordered a coffee grinder three weeks ago (order 48213) and it still has not "
      "arrived. The tracking page has said 'in transit' since the 2nd. Could you tell me where "
      "it is, and whether I can get a refund for the express shipping I paid for? Thank you, ";
  t.resize(270, 'x');
  return t;
}

// Event ids: 8 bytes of the run, 8 of a counter, so that no two events of a run share one.
std::atomic<uint64_t> g_next_id{1};
uint64_t g_run = 0;

void PutId(uint64_t n, kj::ArrayPtr<kj::byte> out) {
  for (int k = 0; k < 8; ++k) out[k] = static_cast<kj::byte>(g_run >> (56 - 8 * k));
  for (int k = 0; k < 8; ++k) out[8 + k] = static_cast<kj::byte>(n >> (56 - 8 * k));
}

// One writer's events: a Cap'n Proto batch for ihs, and the same events as JSON for the others,
// whose ids are rewritten in place for every append.
class Events {
 public:
  Events(size_t n, const schema::EventJson& codec) {
    auto list = mb_.initRoot<capnp::AnyPointer>().initAs<capnp::List<schema::Event>>(n);
    const std::string text = Text();
    for (size_t i = 0; i < n; ++i) {
      auto e = list[i];
      e.initId(16);
      e.setOccurredAt(kOccurredAt);
      auto tp = e.initTouchpoint();
      tp.setChannel(schema::Channel::EMAIL);
      tp.setDirection(schema::Direction::INBOUND);
      tp.setType(schema::TouchpointType::MESSAGE);
      e.initContent().setText(text);
      readers_.push_back(e.asReader());
    }
    builders_ = list;
    // The JSON of an event whose id is all zeros: its hex digits are rewritten per append.
    json_ = codec.Encode(readers_[0]);
    id_at_ = json_.find(std::string(32, '0'));
    jsons_.assign(n, json_);
  }
  // Gives every event a new id; returns the readers (ihs) and fills the JSON and id strings.
  void Renew() {
    uint64_t first = g_next_id.fetch_add(readers_.size());
    ids_.resize(readers_.size());
    for (size_t i = 0; i < readers_.size(); ++i) {
      kj::byte raw[16];
      PutId(first + i, kj::arrayPtr(raw, 16));
      auto id = builders_[i].getId();
      std::copy(raw, raw + 16, id.begin());
      ids_[i] = absl::BytesToHexString(
          absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
      jsons_[i].replace(id_at_, 32, ids_[i]);
    }
  }
  const std::vector<schema::Event::Reader>& readers() const { return readers_; }
  const std::vector<std::string>& jsons() const { return jsons_; }
  const std::vector<std::string>& ids() const { return ids_; }
  size_t json_bytes() const { return json_.size(); }

 private:
  capnp::MallocMessageBuilder mb_;
  capnp::List<schema::Event>::Builder builders_;
  std::vector<schema::Event::Reader> readers_;
  std::string json_;
  size_t id_at_ = 0;
  std::vector<std::string> jsons_, ids_;
};

// A system under test: one connection (or handle) per writer, which appends the writer's events
// to its own stream with the exact expected version (`version` events already in it).
class Writer {
 public:
  virtual ~Writer() = default;
  virtual absl::Status Append(const std::string& stream, uint64_t version, const Events& e) = 0;
};

class System {
 public:
  virtual ~System() = default;
  virtual const char* name() const = 0;
  virtual absl::StatusOr<std::unique_ptr<Writer>> Connect() = 0;
  // Appends and syncs so far, where the system tells them (the ihs store in process).
  virtual std::optional<std::pair<uint64_t, uint64_t>> AppendsAndSyncs() { return std::nullopt; }
};

// --- raw RocksDB: the events' JSON under (stream, version), one synced WriteBatch per append.
class RawRocks final : public System {
 public:
  static absl::StatusOr<std::unique_ptr<RawRocks>> Open(const std::string& path) {
    rocksdb::Options options(store::internal::StoreDbOptions(), rocksdb::ColumnFamilyOptions());
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, path, &db);
    if (!s.ok()) return absl::UnavailableError(s.ToString());
    auto r = std::make_unique<RawRocks>();
    r->db_.reset(db);
    return r;
  }
  const char* name() const override { return "raw RocksDB"; }
  absl::StatusOr<std::unique_ptr<Writer>> Connect() override {
    return std::unique_ptr<Writer>(new W(db_.get()));
  }

 private:
  class W final : public Writer {
   public:
    explicit W(rocksdb::DB* db) : db_(db) { wo_.sync = true; }
    absl::Status Append(const std::string& stream, uint64_t version, const Events& e) override {
      rocksdb::WriteBatch wb;
      for (size_t i = 0; i < e.jsons().size(); ++i) {
        std::string key = stream;
        for (int k = 7; k >= 0; --k) key.push_back(static_cast<char>((version + i) >> (8 * k)));
        wb.Put(key, e.jsons()[i]);
      }
      rocksdb::Status s = db_->Write(wo_, &wb);
      return s.ok() ? absl::OkStatus() : absl::InternalError(s.ToString());
    }

   private:
    rocksdb::DB* db_;
    rocksdb::WriteOptions wo_;
  };
  std::unique_ptr<rocksdb::DB> db_;
};

store::StreamAppend IhsAppend(const std::string& stream, uint64_t version, const Events& e) {
  store::StreamAppend a;
  a.stream = stream;
  a.expected = version == 0 ? store::ExpectedVersion::NoStream()
                            : store::ExpectedVersion::Exact(version - 1);
  a.events = e.readers();
  return a;
}

// --- the ihs store in this process.
class InProcess final : public System {
 public:
  explicit InProcess(store::EventStore* s) : store_(s) {}
  const char* name() const override { return "ihs in process"; }
  absl::StatusOr<std::unique_ptr<Writer>> Connect() override {
    return std::unique_ptr<Writer>(new W(store_));
  }
  std::optional<std::pair<uint64_t, uint64_t>> AppendsAndSyncs() override {
    auto s = store_->Stats();
    if (!s.ok()) return std::nullopt;
    return std::make_pair(s->appends, s->syncs);
  }

 private:
  class W final : public Writer {
   public:
    explicit W(store::EventStore* s) : store_(s) {}
    absl::Status Append(const std::string& stream, uint64_t version, const Events& e) override {
      return store_->Append(IhsAppend(stream, version, e)).status();
    }

   private:
    store::EventStore* store_;
  };
  store::EventStore* store_;
};

// --- ihsd over Cap'n Proto RPC.
class OverRpc final : public System {
 public:
  explicit OverRpc(std::string address) : address_(std::move(address)) {}
  const char* name() const override { return "ihsd over RPC"; }
  absl::StatusOr<std::unique_ptr<Writer>> Connect() override {
    auto c = client::Client::Connect({address_, "bench"});
    if (!c.ok()) return c.status();
    return std::unique_ptr<Writer>(new W(std::move(*c)));
  }

 private:
  class W final : public Writer {
   public:
    explicit W(std::unique_ptr<client::Client> c) : c_(std::move(c)) {}
    absl::Status Append(const std::string& stream, uint64_t version, const Events& e) override {
      return c_->Append(IhsAppend(stream, version, e)).status();
    }

   private:
    std::unique_ptr<client::Client> c_;
  };
  std::string address_;
};

// --- PostgreSQL: the Message DB shape. A batch is one transaction of write_message calls, sent
// in one round trip (libpq's pipeline mode), each with its exact expected version.
constexpr char kPgSchema[] = R"sql(
SET client_min_messages TO warning;
DROP TABLE IF EXISTS messages;
CREATE TABLE messages (
  global_position bigserial PRIMARY KEY,
  position bigint NOT NULL,
  time timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
  stream_name text NOT NULL,
  type text NOT NULL,
  data jsonb,
  metadata jsonb,
  id uuid NOT NULL UNIQUE
);
CREATE UNIQUE INDEX messages_stream ON messages (stream_name, position);
CREATE OR REPLACE FUNCTION write_message(_id uuid, _stream text, _type text, _data jsonb,
                                         _metadata jsonb, _expected bigint) RETURNS bigint AS $$
DECLARE
  current bigint;
BEGIN
  -- One writer per stream at a time, then the check of the stream's version.
  PERFORM pg_advisory_xact_lock(hashtext(_stream));
  SELECT max(position) INTO current FROM messages WHERE stream_name = _stream;
  current := coalesce(current, -1);
  IF _expected IS NOT NULL AND _expected <> current THEN
    RAISE EXCEPTION 'wrong expected version % for stream % at version %', _expected, _stream,
      current;
  END IF;
  INSERT INTO messages (id, stream_name, position, type, data, metadata)
    VALUES (_id, _stream, current + 1, _type, _data, _metadata);
  RETURN current + 1;
END;
$$ LANGUAGE plpgsql;
)sql";

class Postgres final : public System {
 public:
  explicit Postgres(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  const char* name() const override { return "PostgreSQL"; }

  absl::Status CreateSchema() {
    PGconn* c = PQconnectdb(conninfo_.c_str());
    absl::Status st = absl::OkStatus();
    if (PQstatus(c) != CONNECTION_OK) {
      st = absl::UnavailableError(absl::StrCat("PostgreSQL: ", PQerrorMessage(c)));
    } else {
      PGresult* r = PQexec(c, kPgSchema);
      if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        st = absl::InternalError(absl::StrCat("PostgreSQL schema: ", PQerrorMessage(c)));
      }
      PQclear(r);
    }
    PQfinish(c);
    return st;
  }

  absl::StatusOr<std::unique_ptr<Writer>> Connect() override {
    PGconn* c = PQconnectdb(conninfo_.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      std::string m = PQerrorMessage(c);
      PQfinish(c);
      return absl::UnavailableError(absl::StrCat("PostgreSQL: ", m));
    }
    PGresult* r =
        PQprepare(c, "w", "SELECT write_message($1, $2, 'touchpoint', $3, NULL, $4)", 4, nullptr);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok || PQenterPipelineMode(c) != 1) {
      std::string m = PQerrorMessage(c);
      PQfinish(c);
      return absl::InternalError(absl::StrCat("PostgreSQL prepare: ", m));
    }
    return std::unique_ptr<Writer>(new W(c));
  }

 private:
  class W final : public Writer {
   public:
    explicit W(PGconn* c) : c_(c) {}
    ~W() override { PQfinish(c_); }
    absl::Status Append(const std::string& stream, uint64_t version, const Events& e) override {
      const size_t n = e.jsons().size();
      int sent = 0;
      auto plain = [&](const char* sql) {
        ++sent;
        return PQsendQueryParams(c_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
      };
      bool ok = n == 1 || plain("BEGIN");
      for (size_t i = 0; ok && i < n; ++i) {
        // The expected version of event i is the stream's version before it (-1: no stream).
        const std::string expected = absl::StrCat(static_cast<int64_t>(version + i) - 1);
        const char* values[4] = {e.ids()[i].c_str(), stream.c_str(), e.jsons()[i].c_str(),
                                 expected.c_str()};
        ok = PQsendQueryPrepared(c_, "w", 4, values, nullptr, nullptr, 0) == 1;
        ++sent;
      }
      if (ok && n > 1) ok = plain("COMMIT");
      if (!ok || PQpipelineSync(c_) != 1) {
        return absl::InternalError(absl::StrCat("PostgreSQL send: ", PQerrorMessage(c_)));
      }
      std::string error;
      for (int q = 0; q < sent; ++q) {
        while (PGresult* r = PQgetResult(c_)) {
          ExecStatusType s = PQresultStatus(r);
          if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && error.empty()) {
            error = absl::StrCat(PQresStatus(s), ": ", PQresultErrorMessage(r));
          }
          PQclear(r);
        }
      }
      PGresult* sync = PQgetResult(c_);  // the pipeline's end
      if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC && error.empty()) {
        error = "PostgreSQL: the pipeline did not end";
      }
      PQclear(sync);
      return error.empty() ? absl::OkStatus() : absl::InternalError(error);
    }

   private:
    PGconn* c_;
  };
  std::string conninfo_;
};

// --- Redis Streams: XADD behind a check of the stream's length, in one Lua script (atomic in
// Redis), with the AOF synced before the reply (appendfsync always, set by run.sh).
constexpr char kRedisScript[] = R"lua(
local n = redis.call('XLEN', KEYS[1])
if n ~= tonumber(ARGV[1]) then
  return redis.error_reply('wrong expected version ' .. ARGV[1] .. ', stream at ' .. n)
end
for i = 2, #ARGV, 2 do
  redis.call('XADD', KEYS[1], '*', 'id', ARGV[i], 'data', ARGV[i + 1])
end
return n + (#ARGV - 1) / 2
)lua";

class Redis final : public System {
 public:
  Redis(std::string host, int port) : host_(std::move(host)), port_(port) {}
  const char* name() const override { return "Redis"; }

  absl::Status Setup() {
    auto w = Open();
    if (!w.ok()) return w.status();
    redisReply* r = static_cast<redisReply*>(redisCommand(w->get(), "FLUSHALL"));
    freeReplyObject(r);
    r = static_cast<redisReply*>(redisCommand(w->get(), "CONFIG GET appendfsync"));
    const bool always = r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                        std::string(r->element[1]->str) == "always";
    freeReplyObject(r);
    if (!always) return absl::FailedPreconditionError("Redis: appendfsync is not 'always'");
    r = static_cast<redisReply*>(redisCommand(w->get(), "SCRIPT LOAD %s", kRedisScript));
    if (r == nullptr || r->type != REDIS_REPLY_STRING) {
      freeReplyObject(r);
      return absl::InternalError("Redis: SCRIPT LOAD failed");
    }
    sha_ = r->str;
    freeReplyObject(r);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Writer>> Connect() override {
    auto c = Open();
    if (!c.ok()) return c.status();
    return std::unique_ptr<Writer>(new W(std::move(*c), sha_));
  }

 private:
  struct Free {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  using Ctx = std::unique_ptr<redisContext, Free>;
  absl::StatusOr<Ctx> Open() {
    Ctx c(redisConnect(host_.c_str(), port_));
    if (c == nullptr || c->err) {
      return absl::UnavailableError(
          absl::StrCat("Redis at ", host_, ":", port_, ": ", c ? c->errstr : "no memory"));
    }
    return c;
  }

  class W final : public Writer {
   public:
    W(Ctx c, std::string sha) : c_(std::move(c)), sha_(std::move(sha)) {}
    absl::Status Append(const std::string& stream, uint64_t version, const Events& e) override {
      const std::string expected = absl::StrCat(version);
      std::vector<const char*> argv = {"EVALSHA", sha_.c_str(), "1", stream.c_str(),
                                       expected.c_str()};
      std::vector<size_t> lens = {7, sha_.size(), 1, stream.size(), expected.size()};
      for (size_t i = 0; i < e.jsons().size(); ++i) {
        argv.push_back(e.ids()[i].c_str());
        lens.push_back(e.ids()[i].size());
        argv.push_back(e.jsons()[i].c_str());
        lens.push_back(e.jsons()[i].size());
      }
      redisReply* r = static_cast<redisReply*>(
          redisCommandArgv(c_.get(), static_cast<int>(argv.size()), argv.data(), lens.data()));
      if (r == nullptr) return absl::UnavailableError(absl::StrCat("Redis: ", c_->errstr));
      absl::Status s = r->type == REDIS_REPLY_ERROR
                           ? absl::InternalError(absl::StrCat("Redis: ", r->str))
                           : absl::OkStatus();
      freeReplyObject(r);
      return s;
    }

   private:
    Ctx c_;
    std::string sha_;
  };
  std::string host_;
  int port_;
  std::string sha_;
};

// ---------------------------------------------------------------------------------------------

struct Result {
  double events_per_s = 0;
  double p50_us = 0, p99_us = 0;
};

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

// `writers` threads, each with its own connection (made on its own thread: an RPC client belongs
// to the thread that made it) and stream, append `batch` events at a time for `seconds`, once all
// have connected.
absl::StatusOr<Result> Drive(System& sys, int writers, size_t batch, absl::Duration seconds,
                             const schema::EventJson& codec, int run) {
  std::vector<std::vector<double>> lat(writers);
  std::atomic<uint64_t> total{0};
  std::atomic<bool> failed{false};
  std::vector<absl::Status> errors(writers);
  absl::Time start, end;
  std::atomic<int> ready{0};
  absl::Notification go;  // every writer connected (or failed) and waiting: the clock starts
  std::vector<std::thread> ts;
  for (int w = 0; w < writers; ++w) {
    ts.emplace_back([&, w] {
      const std::string stream = absl::StrCat("peer-", g_run, "-", run, "-", w);
      Events events(batch, codec);
      lat[w].reserve(1 << 16);
      auto conn = sys.Connect();
      if (!conn.ok()) {
        errors[w] = conn.status();
        failed = true;
      }
      ++ready;
      go.WaitForNotification();
      for (uint64_t version = 0; !failed && absl::Now() < end; version += batch) {
        events.Renew();
        const absl::Time t0 = absl::Now();
        absl::Status s = (*conn)->Append(stream, version, events);
        if (!s.ok()) {
          errors[w] = s;
          failed = true;
          return;
        }
        lat[w].push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
        total += batch;
      }
    });
  }
  while (ready.load() < writers) absl::SleepFor(absl::Microseconds(100));
  start = absl::Now();
  end = start + seconds;
  go.Notify();
  for (auto& t : ts) t.join();
  for (auto& e : errors) {
    if (!e.ok()) return e;
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  Result r;
  r.events_per_s = total / secs;
  r.p50_us = Percentile(all, 0.50);
  r.p99_us = Percentile(all, 0.99);
  return r;
}

// The disk's own sync rate: 4 KiB appended and fdatasync'd, as `dd oflag=dsync` does.
double SyncRate(const std::string& dir, absl::Duration d) {
  const std::string path = dir + "/sync-probe";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 0;
  char block[4096] = {};
  uint64_t n = 0;
  const absl::Time start = absl::Now();
  while (absl::Now() - start < d) {
    if (::write(fd, block, sizeof(block)) != sizeof(block) || ::fdatasync(fd) != 0) break;
    ++n;
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  ::close(fd);
  fs::remove(path);
  return n / secs;
}

int Main(int argc, char** argv) {
  CLI::App app{"peers_load: ihsd against PostgreSQL and Redis, in one run on one disk"};
  double seconds = 5;
  bool json = false;
  std::string dir = "/tmp/ihs-peers/ihs";
  std::string ihsd = IHS_IHSD;
  std::string pg, redis;
  app.add_option("--seconds", seconds, "per case (default 5)")->check(CLI::Range(0.5, 60.0));
  app.add_flag("--json", json, "also print one JSON object per case");
  app.add_option("--dir", dir, "scratch directory for ihs and raw RocksDB (removed first)");
  app.add_option("--ihsd", ihsd, "the ihsd binary");
  app.add_option("--pg", pg, "libpq connection string of the PostgreSQL to drive");
  app.add_option("--redis", redis, "HOST:PORT of the Redis to drive");
  CLI11_PARSE(app, argc, argv);
#ifndef NDEBUG
  std::printf("peers_load: build %s (ASSERTIONS ON: do not publish)\n", IHS_BUILD_TYPE);
#endif
  g_run = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto fail = [](const absl::Status& s) {
    std::fprintf(stderr, "peers_load: %s\n", s.ToString().c_str());
    return 5;
  };

  std::vector<std::unique_ptr<System>> systems;
  auto raw = RawRocks::Open(dir + "/raw");
  if (!raw.ok()) return fail(raw.status());
  systems.push_back(std::move(*raw));
  if (!pg.empty()) {
    auto p = std::make_unique<Postgres>(pg);
    if (absl::Status s = p->CreateSchema(); !s.ok()) return fail(s);
    systems.push_back(std::move(p));
  }
  if (!redis.empty()) {
    std::pair<std::string, std::string> hp = absl::StrSplit(redis, absl::MaxSplits(':', 1));
    int port = 0;
    if (!absl::SimpleAtoi(hp.second, &port)) return fail(absl::InvalidArgumentError(redis));
    auto r = std::make_unique<Redis>(hp.first, port);
    if (absl::Status s = r->Setup(); !s.ok()) return fail(s);
    systems.push_back(std::move(r));
  }
  store::Options so;
  so.path = dir + "/inproc";
  auto local = store::EventStore::Open(so);
  if (!local.ok()) return fail(local.status());
  systems.push_back(std::make_unique<InProcess>(local->get()));
  testing::IhsdOptions io;
  io.binary = ihsd;
  io.data = dir + "/ihsd";
  auto server = testing::IhsdProcess::Start(io);
  if (!server.ok()) return fail(server.status());
  systems.push_back(std::make_unique<OverRpc>((*server)->addresses()[0]));

  schema::EventJson codec(schema::EventJson::Fields::kNonDefault);
  const double sync_rate = SyncRate(dir, absl::Seconds(2));
  std::printf("the disk's sync rate: %.0f syncs/s; each event's JSON: %zu bytes; %g s per case\n",
              sync_rate, Events(1, codec).json_bytes(), seconds);
  if (json) std::printf("{\"syncsPerSecond\":%.0f}\n", sync_rate);

  struct Mode {
    int writers;
    size_t batch;
  };
  int run = 0;
  for (Mode m : {Mode{1, 1}, Mode{8, 1}, Mode{64, 1}, Mode{1, 100}}) {
    std::printf("\n%d writer%s, %zu event%s per append\n", m.writers, m.writers > 1 ? "s" : "",
                m.batch, m.batch > 1 ? "s" : "");
    std::printf("  %-15s %10s %10s %10s\n", "system", "ev/s", "p50 us", "p99 us");
    for (auto& sys : systems) {
      const auto before = sys->AppendsAndSyncs();
      auto r = Drive(*sys, m.writers, m.batch, absl::Seconds(seconds), codec, ++run);
      if (!r.ok()) return fail(r.status());
      const auto after = sys->AppendsAndSyncs();
      double per_sync = 0;
      if (before && after && after->second > before->second) {
        per_sync = static_cast<double>(after->first - before->first) /
                   static_cast<double>(after->second - before->second);
      }
      std::printf("  %-15s %10.0f %10.0f %10.0f", sys->name(), r->events_per_s, r->p50_us,
                  r->p99_us);
      if (per_sync > 0) std::printf("   %.2f appends per sync", per_sync);
      std::printf("\n");
      if (json) {
        std::printf(
            "{\"system\":\"%s\",\"writers\":%d,\"batch\":%zu,\"eventsPerSecond\":%.0f,"
            "\"p50us\":%.0f,\"p99us\":%.0f,\"appendsPerSync\":%.2f}\n",
            sys->name(), m.writers, m.batch, r->events_per_s, r->p50_us, r->p99_us, per_sync);
      }
      std::fflush(stdout);
    }
    if (m.writers == 8 && m.batch == 1 && sync_rate > 0) {
      std::printf("  (8 x the disk's sync rate: %.0f ev/s)\n", 8 * sync_rate);
    }
  }
  systems.clear();
  (*server)->Stop(SIGTERM);
  local->reset();
  fs::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace ihs::bench

int main(int argc, char** argv) { return ihs::bench::Main(argc, argv); }
