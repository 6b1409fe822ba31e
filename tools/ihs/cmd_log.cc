// ihs append, read, tail, verify and stats: the log itself, on a data directory or (append, read,
// tail) a running ihsd.
#include <capnp/message.h>
#include <capnp/orphan.h>
#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "schema/json.h"
#include "server/client.h"
#include "store/audit.h"
#include "store/event_store.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/event_printer.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/progress.h"
#include "tools/ihs/projection_source.h"
#include "workload/load.h"

namespace ihs::tools {
namespace {

absl::StatusOr<store::ExpectedVersion> ParseExpected(const std::string& s) {
  if (s == "any") return store::ExpectedVersion::Any();
  if (s == "none") return store::ExpectedVersion::NoStream();
  if (s == "exists") return store::ExpectedVersion::StreamExists();
  uint64_t v = 0;
  if (absl::SimpleAtoi(s, &v)) return store::ExpectedVersion::Exact(v);
  return absl::InvalidArgumentError(
      absl::StrCat("--expected-version must be a number, any, none or exists, not \"", s, "\""));
}

// Where append, read and tail work: a data directory or a running ihsd.

class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::StatusOr<store::AppendResult> Append(const store::StreamAppend& a) = 0;
  virtual absl::StatusOr<std::vector<store::AppendResult>> AppendMulti(
      const std::vector<store::StreamAppend>& a) = 0;
  virtual absl::StatusOr<uint64_t> Head() = 0;
  // Print up to `limit` events of a stream from version `from`, or of the log from position
  // `from`; they return how many were printed (0 at the end).
  virtual absl::StatusOr<size_t> PrintStream(const std::string& stream, uint64_t from, size_t limit,
                                             store::ReadDirection dir, bool open,
                                             EventPrinter& printer) = 0;
  virtual absl::StatusOr<size_t> PrintLog(uint64_t from, size_t limit, bool open,
                                          EventPrinter& printer) = 0;
};

template <typename E>
absl::StatusOr<size_t> PrintAll(const absl::StatusOr<std::vector<E>>& events,
                                EventPrinter& printer) {
  if (!events.ok()) return events.status();
  for (const E& e : *events) printer.Print(e);
  return events->size();
}

class LocalBackend final : public Backend {
 public:
  explicit LocalBackend(std::unique_ptr<store::EventStore> store) : store_(std::move(store)) {}
  absl::StatusOr<store::AppendResult> Append(const store::StreamAppend& a) override {
    return store_->Append(a);
  }
  absl::StatusOr<std::vector<store::AppendResult>> AppendMulti(
      const std::vector<store::StreamAppend>& a) override {
    return store_->AppendMulti(a);
  }
  absl::StatusOr<uint64_t> Head() override { return store_->Head(); }
  absl::StatusOr<size_t> PrintStream(const std::string& stream, uint64_t from, size_t limit,
                                     store::ReadDirection dir, bool open,
                                     EventPrinter& printer) override {
    store::ReadOptions ro;
    ro.open_content = open;
    return PrintAll(store_->ReadStream(stream, from, limit, dir, ro), printer);
  }
  absl::StatusOr<size_t> PrintLog(uint64_t from, size_t limit, bool open,
                                  EventPrinter& printer) override {
    store::ReadOptions ro;
    ro.open_content = open;
    return PrintAll(store_->ReadAll(from, limit, ro), printer);
  }

 private:
  std::unique_ptr<store::EventStore> store_;
};

class RemoteBackend final : public Backend {
 public:
  explicit RemoteBackend(std::unique_ptr<client::Client> client) : client_(std::move(client)) {}
  absl::StatusOr<store::AppendResult> Append(const store::StreamAppend& a) override {
    return client_->Append(a);
  }
  absl::StatusOr<std::vector<store::AppendResult>> AppendMulti(
      const std::vector<store::StreamAppend>& a) override {
    return client_->AppendMulti(a);
  }
  absl::StatusOr<uint64_t> Head() override { return client_->Head(); }
  absl::StatusOr<size_t> PrintStream(const std::string& stream, uint64_t from, size_t limit,
                                     store::ReadDirection dir, bool open,
                                     EventPrinter& printer) override {
    return PrintAll(client_->ReadStream(stream, from, limit, dir, open), printer);
  }
  absl::StatusOr<size_t> PrintLog(uint64_t from, size_t limit, bool open,
                                  EventPrinter& printer) override {
    return PrintAll(client_->ReadAll(from, limit, open), printer);
  }
  client::Client& client() { return *client_; }

 private:
  std::unique_ptr<client::Client> client_;
};

// Opens the backend the flags name.
absl::StatusOr<std::unique_ptr<Backend>> OpenBackend(const Common& c, bool write) {
  IHS_RETURN_IF_ERROR(CheckWhere(c));
  if (!c.connect.empty()) {
    IHS_ASSIGN_OR_RETURN(auto client, Connect(c));
    return std::unique_ptr<Backend>(new RemoteBackend(std::move(client)));
  }
  // A backend for writing is append's, which may create the store.
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, write, /*create=*/write);
  if (!st.ok()) return OpenFailure(st.status());
  return std::unique_ptr<Backend>(new LocalBackend(std::move(*st)));
}

struct AppendArgs {
  std::string stream;
  std::string expected = "any";
  bool new_ids = false;
};

// The store names an event by its stream and its place in that stream's append ("append to stream
// S, event K: why"); the input numbers it by line. Says it by line, so that one input is never
// numbered two ways. `lines` holds, per stream of the append, the input line of each event.
absl::Status ByLine(const absl::Status& s,
                    const std::map<std::string, std::vector<size_t>>& lines) {
  constexpr absl::string_view kPrefix = "append to stream ";
  absl::string_view m = s.message();
  if (!absl::ConsumePrefix(&m, kPrefix)) return s;
  const size_t at = m.rfind(", event ");
  if (at == absl::string_view::npos) return s;
  const std::string stream(m.substr(0, at));
  absl::string_view rest = m.substr(at + 8);
  const size_t colon = rest.find(": ");
  size_t index = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, colon), &index)) {
    return s;
  }
  auto it = lines.find(stream);
  if (it == lines.end() || index >= it->second.size()) return s;
  absl::Status out(s.code(), absl::StrCat("line ", it->second[index], " (stream ", stream,
                                          "): ", rest.substr(colon + 2)));
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& p) { out.SetPayload(url, p); });
  return out;
}

// Reads JSONL from stdin, all of it, before anything is appended: a malformed line changes
// nothing. With --stream, all events are one atomic append to that stream. Without it, events
// go to their own streamId, in atomic multi-stream appends of up to kMaxEventsPerAppend events.
int Append(const Common& c, const AppendArgs& a) {
  absl::StatusOr<store::ExpectedVersion> expected = ParseExpected(a.expected);
  if (!expected.ok()) return Fail(expected.status());
  if (a.stream.empty() && a.expected != "any") {
    return Fail(UsageError("--expected-version needs --stream"));
  }
  schema::EventJson json;
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> messages;
  struct Input {
    std::string stream;
    schema::Event::Reader event;
    size_t line;
  };
  std::vector<Input> events;
  std::string line;
  size_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    auto mb = std::make_unique<capnp::MallocMessageBuilder>();
    auto ev = mb->initRoot<schema::Event>();
    absl::Status s = json.Decode(line, ev);
    if (!s.ok()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", s.message())));
    }
    if (ev.getId().size() == 0) {
      if (!a.new_ids) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            "line ", line_no,
            ": \"id\" is required: 16 bytes as 32 hex digits, the same each time the event is "
            "sent, so that a retried append is stored once; or pass --new-ids to have ihs make a "
            "fresh id for each event without one (then a retry stores it again)")));
      }
      unsigned char id[16];
      randombytes_buf(id, sizeof id);
      ev.setId(capnp::Data::Reader(id, sizeof id));
    }
    std::string stream = a.stream.empty() ? std::string(ev.getStreamId().cStr()) : a.stream;
    if (stream.empty()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": streamId is missing (or pass --stream)")));
    }
    events.push_back({stream, ev.asReader(), line_no});
    messages.push_back(std::move(mb));
  }
  if (events.empty()) return Fail(absl::InvalidArgumentError("no events on standard input"));

  absl::StatusOr<std::unique_ptr<Backend>> backend = OpenBackend(c, /*write=*/true);
  if (!backend.ok()) return Fail(backend.status());
  Backend& store = **backend;
  // Over RPC a message must stay under ihsd's limit (32 MiB): smaller chunks.
  const size_t chunk = c.connect.empty() ? store::kMaxEventsPerAppend : 2000;

  uint64_t appended = 0, duplicates = 0;
  auto report = [&](const std::string& stream, const store::AppendResult& r) {
    (r.duplicate ? duplicates : appended) += r.positions.size();
    for (size_t i = 0; i < r.positions.size(); ++i) {
      if (c.json) {
        absl::PrintF("{\"stream\":%s,\"position\":%d,\"streamVersion\":%d,\"duplicate\":%s}\n",
                     schema::JsonQuote(stream), r.positions[i], r.versions[i],
                     r.duplicate ? "true" : "false");
      }
    }
  };
  if (!a.stream.empty()) {
    store::StreamAppend req{a.stream, *expected, {}};
    std::map<std::string, std::vector<size_t>> lines;
    for (const Input& in : events) {
      req.events.push_back(in.event);
      lines[a.stream].push_back(in.line);
    }
    absl::StatusOr<store::AppendResult> r = store.Append(req);
    if (!r.ok()) return Fail(ByLine(r.status(), lines));
    report(a.stream, *r);
  } else {
    // A load of more than one chunk shows progress on stderr.
    Progress progress("append");
    if (c.json || events.size() <= chunk) progress.Disable();
    for (size_t begin = 0; begin < events.size(); begin += chunk) {
      progress.Update(begin, events.size());
      size_t end = std::min(events.size(), begin + chunk);
      std::vector<store::StreamAppend> reqs;
      std::map<std::string, size_t> index;
      std::map<std::string, std::vector<size_t>> lines;
      for (size_t i = begin; i < end; ++i) {
        auto [it, fresh] = index.try_emplace(events[i].stream, reqs.size());
        if (fresh) reqs.push_back({events[i].stream, store::ExpectedVersion::Any(), {}});
        reqs[it->second].events.push_back(events[i].event);
        lines[events[i].stream].push_back(events[i].line);
      }
      absl::StatusOr<std::vector<store::AppendResult>> r = store.AppendMulti(reqs);
      if (!r.ok()) {
        if (begin > 0) {
          std::cerr << "ihs: input lines before line " << events[begin].line
                    << " are stored; appends are idempotent, so fix the input and run it "
                       "again\n";
        }
        return Fail(ByLine(r.status(), lines));
      }
      for (size_t i = 0; i < reqs.size(); ++i) report(reqs[i].stream, (*r)[i]);
    }
    progress.Update(events.size(), events.size());
    progress.Finish();
  }
  if (!c.json) {
    absl::StatusOr<uint64_t> head = store.Head();
    absl::PrintF("appended %s (%d already stored); the log holds %s\n",
                 Counted(static_cast<int64_t>(appended), "event", "events"), duplicates,
                 Counted(static_cast<int64_t>(head.ok() ? *head : 0), "event", "events"));
  }
  return kExitOk;
}

struct ImportArgs {
  std::string file;  // "-": standard input
  bool new_ids = false;
};

// Lines of input per AppendMulti of an import (the store's limit per append).
constexpr size_t kImportChunk = store::kMaxEventsPerAppend;

// One chunk of an import's input, decoded: its events in one arena, with their line numbers.
struct ImportChunk {
  capnp::MallocMessageBuilder arena{size_t{1} << 16};
  std::vector<capnp::Orphan<schema::Event>> events;
  std::vector<size_t> lines;
  uint64_t bytes = 0;  // of input read up to the end of this chunk
  // One AppendMulti per run of the chunk in which no event names (causationId, inReplyTo,
  // corrects) a later one, each stream's events together (workload::CausalAppends): the log
  // holds what an event names before it, and each stream's events in the file's order.
  struct Call {
    std::vector<store::StreamAppend> appends;
    std::unique_ptr<store::PreparedAppends> prepared;
    std::map<std::string, std::vector<size_t>> by_stream;  // input lines, for errors
    size_t first_line = 0;
  };
  std::vector<Call> calls;
};

// Reads, decodes and prepares (EventStore::PrepareAppends) an import's input on a thread of its
// own, up to two chunks ahead of the commits: on two cores they overlap.
class ChunkDecoder {
 public:
  ChunkDecoder(std::istream& in, bool new_ids, store::EventStore& store)
      : in_(in), new_ids_(new_ids), store_(store) {
    thread_ = std::thread([this] { Run(); });
  }
  ~ChunkDecoder() {
    {
      MutexLock l(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  // The next chunk; nullptr after the last; the first bad line's error.
  absl::StatusOr<std::unique_ptr<ImportChunk>> Next() {
    MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](ChunkDecoder* d)
             ABSL_EXCLUSIVE_LOCKS_REQUIRED(d->mu_) { return !d->ready_.empty() || d->ended_; },
        this));
    TsanAcquired(&mu_);
    if (!ready_.empty()) {
      std::unique_ptr<ImportChunk> chunk = std::move(ready_.front());
      ready_.pop_front();
      return chunk;
    }
    if (!failed_.ok()) return failed_;
    return nullptr;
  }

 private:
  static constexpr size_t kAhead = 2;

  void Run() {
    schema::EventJson json;
    std::string line;
    size_t line_no = 0;
    uint64_t bytes = 0;
    for (bool more = true; more;) {
      auto chunk = std::make_unique<ImportChunk>();
      absl::Status s = [&]() -> absl::Status {
        while (chunk->events.size() < kImportChunk &&
               (more = static_cast<bool>(std::getline(in_, line)))) {
          ++line_no;
          bytes += line.size() + 1;
          if (absl::StripAsciiWhitespace(line).empty()) continue;
          IHS_RETURN_IF_ERROR(DecodeLine(json, line, line_no, *chunk));
        }
        return Prepare(*chunk);
      }();
      chunk->bytes = bytes;
      MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](ChunkDecoder* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(d->mu_) {
            return d->ready_.size() < kAhead || d->stop_;
          },
          this));
      TsanAcquired(&mu_);
      if (stop_) break;
      if (!s.ok()) {
        failed_ = s;
        break;
      }
      if (!chunk->events.empty()) ready_.push_back(std::move(chunk));
    }
    MutexLock l(&mu_);
    ended_ = true;
  }

  absl::Status Prepare(ImportChunk& chunk) const {
    std::vector<schema::Event::Reader> readers;
    for (const auto& o : chunk.events) readers.push_back(o.getReader());
    size_t next = 0;
    for (std::vector<store::StreamAppend>& appends : workload::CausalAppends(readers)) {
      ImportChunk::Call& call = chunk.calls.emplace_back();
      size_t n = 0;
      for (const store::StreamAppend& r : appends) n += r.events.size();
      call.first_line = chunk.lines[next];
      for (size_t k = next; k < next + n; ++k) {
        call.by_stream[readers[k].getStreamId().cStr()].push_back(chunk.lines[k]);
      }
      next += n;
      call.appends = std::move(appends);
    }
    // Once every call is in place: a prepared append points at its StreamAppends.
    for (ImportChunk::Call& call : chunk.calls) {
      absl::StatusOr<std::unique_ptr<store::PreparedAppends>> p =
          store_.PrepareAppends(call.appends);
      if (!p.ok()) return ByLine(p.status(), call.by_stream);
      call.prepared = *std::move(p);
    }
    return absl::OkStatus();
  }

  absl::Status DecodeLine(const schema::EventJson& json, const std::string& line, size_t line_no,
                          ImportChunk& chunk) const {
    auto orphan = chunk.arena.getOrphanage().newOrphan<schema::Event>();
    auto ev = orphan.get();
    if (absl::Status s = json.Decode(line, ev); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", s.message()));
    }
    if (ev.getId().size() == 0) {
      if (!new_ids_) {
        return absl::InvalidArgumentError(absl::StrCat(
            "line ", line_no,
            ": \"id\" is required (32 hex digits), so that the history keeps its ids; or "
            "pass --new-ids to make a fresh id for each event without one"));
      }
      unsigned char id[16];
      randombytes_buf(id, sizeof id);
      ev.setId(capnp::Data::Reader(id, sizeof id));
    }
    if (ev.getStreamId().size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": streamId is missing"));
    }
    chunk.events.push_back(std::move(orphan));
    chunk.lines.push_back(line_no);
    return absl::OkStatus();
  }

  std::istream& in_;
  const bool new_ids_;
  store::EventStore& store_;
  absl::Mutex mu_;
  std::deque<std::unique_ptr<ImportChunk>> ready_ ABSL_GUARDED_BY(mu_);
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once the members above exist
};

// The process that holds the store in `dir` open (RocksDB's POSIX lock on DIR/db/LOCK,
// docs/format.md), or 0 when none does or there is no LOCK.
pid_t LockHolder(const std::string& dir) {
  const int fd = ::open((dir + "/db/LOCK").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  struct flock f {};
  f.l_type = F_WRLCK;
  f.l_whence = SEEK_SET;
  const pid_t holder = ::fcntl(fd, F_GETLK, &f) == 0 && f.l_type != F_UNLCK ? f.l_pid : 0;
  ::close(fd);
  return holder;
}

// Loads a whole history into a new store, all or nothing: into DIR.importing, renamed to DIR
// only once every line is stored and synced. A bad line stops it with its line number and
// leaves no DIR behind. Streams the input: memory holds a few chunks of lines.
int Import(const Common& c, const ImportArgs& a) {
  if (c.data.empty()) return Fail(UsageError("import writes a new store: give --data DIR"));
  std::error_code ec;
  if (std::filesystem::exists(c.data, ec) && !std::filesystem::is_empty(c.data, ec)) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        c.data,
        " is not empty: ihs import makes a new store (to add events to a store, use ihs "
        "append)")));
  }
  std::ifstream file;
  std::istream* in = &std::cin;
  uint64_t total_bytes = 0;
  if (a.file != "-") {
    file.open(a.file, std::ios::binary);
    if (!file) return Fail(absl::NotFoundError(absl::StrCat("cannot read ", a.file)));
    total_bytes = std::filesystem::file_size(a.file, ec);
    in = &file;
  }
  const std::string staging = absl::StrCat(absl::StripSuffix(c.data, "/"), ".importing");
  // What an interrupted import left is removed, but not what a running one is writing.
  if (const pid_t holder = LockHolder(staging); holder != 0) {
    return Fail(
        absl::UnavailableError(absl::StrCat(staging, " is in use by another import (pid ", holder,
                                            "): wait for it to end, or stop it and import again")));
  }
  std::filesystem::remove_all(staging, ec);
  bool opened = false;  // only a staging store this import opened is removed on failure
  Common at = c;
  at.data = staging;
  const absl::Time start = absl::Now();
  uint64_t events = 0;
  absl::Status failed = [&]() -> absl::Status {
    // A bulk load: the staging store is new and discarded on failure, so appends skip the WAL and
    // answer their lookups from memory; the Flush at the end makes it durable.
    store::Options options = StoreOptions(at, /*write=*/true, /*create=*/true);
    options.bulk_load = true;
    IHS_ASSIGN_OR_RETURN(std::unique_ptr<store::EventStore> store,
                         store::EventStore::Open(options));
    opened = true;
    Progress progress("import");
    if (c.json) progress.Disable();
    ChunkDecoder decoder(*in, a.new_ids, *store);
    for (;;) {
      IHS_ASSIGN_OR_RETURN(std::unique_ptr<ImportChunk> chunk, decoder.Next());
      if (chunk == nullptr) break;
      for (ImportChunk::Call& call : chunk->calls) {
        absl::StatusOr<std::vector<store::AppendResult>> r = store->AppendPrepared(*call.prepared);
        if (!r.ok()) return ByLine(r.status(), call.by_stream);
        for (const store::AppendResult& one : *r) {
          if (one.duplicate) {
            return absl::InvalidArgumentError(absl::StrCat(
                "near line ", call.first_line, ": an event id appears twice in the input"));
          }
          events += one.positions.size();
        }
      }
      progress.Update(total_bytes > 0 ? chunk->bytes : events, total_bytes);
    }
    progress.Finish();
    if (events == 0) return absl::InvalidArgumentError("the input holds no events");
    IHS_RETURN_IF_ERROR(store->Flush());
    return absl::OkStatus();
  }();
  if (!failed.ok()) {
    if (opened) std::filesystem::remove_all(staging, ec);  // nothing half-loaded stays
    return Fail(failed);
  }
  std::filesystem::remove(c.data, ec);  // an empty directory given as the target
  std::filesystem::rename(staging, c.data, ec);
  if (ec) {
    return Fail(absl::UnavailableError(absl::StrCat(
        "imported into ", staging, " but cannot rename it to ", c.data, ": ", ec.message())));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (c.json) {
    std::cout << JsonLine({{"events", events},
                           {"data", c.data},
                           {"seconds", seconds},
                           {"eventsPerSecond", seconds > 0 ? events / seconds : 0}})
              << "\n";
  } else {
    absl::PrintF(
        "imported %s into %s in %.1f s (%.0f events/s); check it with: ihs verify --data %s\n",
        Counted(static_cast<int64_t>(events), "event", "events"), c.data, seconds,
        seconds > 0 ? events / seconds : 0, c.data);
  }
  return kExitOk;
}

struct ReadArgs {
  std::string stream;
  uint64_t from = 0;
  bool from_set = false;
  bool backward = false;
  size_t limit = 1000;
  bool sealed = false;
};

int Read(const Common& c, const ReadArgs& a) {
  absl::StatusOr<std::unique_ptr<Backend>> backend = OpenBackend(c, false);
  if (!backend.ok()) return Fail(backend.status());
  const auto dir = a.backward ? store::ReadDirection::kBackward : store::ReadDirection::kForward;
  uint64_t from = a.from_set ? a.from : (a.backward ? UINT64_MAX : 0);
  EventPrinter printer(c.json);
  // In pages, so that a long stream never makes one huge reply.
  for (size_t printed = 0; printed < a.limit;) {
    absl::StatusOr<size_t> n = (*backend)->PrintStream(
        a.stream, from, std::min(kReadPage, a.limit - printed), dir, !a.sealed, printer);
    if (!n.ok()) return Fail(n.status());
    if (*n == 0) break;
    printed += *n;
    if (a.backward) {
      if (printer.last_version() == 0) break;
      from = printer.last_version() - 1;
    } else {
      from = printer.last_version() + 1;
    }
  }
  if (a.from_set && !a.backward && printer.printed() == 0 && a.from > 0) {
    // Nothing from there: at the stream's end that is an empty answer, past it an error, as
    // `tail --from` past the log's end is.
    EventPrinter probe(false, /*silent=*/true);
    absl::StatusOr<size_t> n = (*backend)->PrintStream(
        a.stream, UINT64_MAX, 1, store::ReadDirection::kBackward, false, probe);
    if (!n.ok()) return Fail(n.status());
    const uint64_t events = *n == 0 ? 0 : probe.last_version() + 1;
    if (a.from > events) {
      return Fail(absl::OutOfRangeError(absl::StrCat("--from ", a.from, " is past the end of ",
                                                     a.stream, " (", events, " events)")));
    }
  }
  printer.Header();
  if (c.json || printer.printed() == 0) return kExitOk;  // --json: events only, as append takes
  // The stream's person (docs/identity.md). On a data directory the identity projection opens
  // the store for writing, so the read-only handle goes first; if ihsd holds the store, say so.
  backend->reset();
  std::fflush(stdout);
  absl::StatusOr<std::unique_ptr<ProjectionSource>> source = OpenProjections(c);
  absl::StatusOr<std::optional<PersonOfStream>> person =
      source.ok() ? PersonOf(**source, a.stream) : source.status();
  if (!person.ok()) {
    absl::FPrintF(
        stderr, "ihs: the person of %s is not shown: %s%s\n", a.stream, person.status().message(),
        c.connect.empty() ? " (while ihsd serves the store, read through it: --connect)" : "");
  } else if (*person && (*person)->streams.size() > 1) {
    absl::PrintF(
        "%s is one of the streams of person %s (%s): ihs timeline %s --person shows "
        "them all\n",
        a.stream, (*person)->id, absl::StrJoin((*person)->streams, ", "), a.stream);
  }
  return kExitOk;
}

struct TailArgs {
  uint64_t from = 0;
  bool from_set = false;
  size_t limit = 20;
  bool sealed = false;
  bool follow = false;
};

int Tail(const Common& c, const TailArgs& a) {
  if (a.follow && c.connect.empty()) {
    return Fail(UsageError(
        "tail -f follows a running ihsd: give --connect ADDR (a data directory opened read-only "
        "does not see new commits)"));
  }
  absl::StatusOr<std::unique_ptr<Backend>> backend = OpenBackend(c, false);
  if (!backend.ok()) return Fail(backend.status());
  absl::StatusOr<uint64_t> head = (*backend)->Head();
  if (!head.ok()) return Fail(head.status());
  uint64_t pos = a.from_set ? a.from : (*head > a.limit ? *head - a.limit : 0);
  if (pos > *head) {
    return Fail(absl::OutOfRangeError(
        absl::StrCat("--from ", pos, " is past the log's end (", *head, " events)")));
  }
  EventPrinter printer(c.json);
  if (a.follow) {
    // Catch-up and live events come through one subscription: no gap between them. When the
    // connection breaks (ihsd restarts), it connects again, backing off, and resumes after the
    // last event it printed.
    client::SubscribeOptions so;
    so.from_position = pos;
    so.open_content = !a.sealed;
    client::Client* client = &static_cast<RemoteBackend&>(**backend).client();
    std::unique_ptr<client::Client> again;
    absl::Duration backoff = absl::Milliseconds(200);
    for (;;) {
      absl::Status s = client->Subscribe(
          so, [&](const std::vector<client::RemoteEvent>& events, uint64_t scanned_to) {
            for (const auto& e : events) printer.Print(e);
            so.from_position = std::max(so.from_position, scanned_to);
            backoff = absl::Milliseconds(200);  // it serves again
            std::fflush(stdout);
            return !std::ferror(stdout);  // stop when stdout is gone (e.g. `| head`)
          });
      if (!absl::IsUnavailable(s)) return s.ok() ? kExitOk : Fail(s);
      for (;;) {
        std::cerr << "ihs: " << s.message() << "; connecting again in "
                  << absl::FormatDuration(backoff) << " (from position " << so.from_position << ")"
                  << std::endl;
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, absl::Seconds(5));
        absl::StatusOr<std::unique_ptr<client::Client>> next = Connect(c);
        if (next.ok()) {
          again = std::move(*next);
          client = again.get();
          break;
        }
        if (!absl::IsUnavailable(next.status())) return Fail(next.status());
        s = next.status();
      }
    }
  }
  while (pos < *head) {
    absl::StatusOr<size_t> n =
        (*backend)->PrintLog(pos, std::min<uint64_t>(kReadPage, *head - pos), !a.sealed, printer);
    if (!n.ok()) return Fail(n.status());
    if (*n == 0) break;
    pos += *n;
  }
  printer.Header();
  return kExitOk;
}

int Verify(const Common& c) {
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, false);
  if (!st.ok()) {
    if (c.json)
      absl::PrintF("{\"ok\":false,\"error\":%s}\n", schema::JsonQuote(st.status().message()));
    return FailOpen(st.status());
  }
  Progress progress("verify");
  if (c.json) progress.Disable();
  auto report = Verify(**st, [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!report.ok()) {
    if (c.json) {
      absl::PrintF("{\"ok\":false,\"error\":%s}\n", schema::JsonQuote(report.status().message()));
    }
    return Fail(report.status());
  }
  std::string root = absl::BytesToHexString(report->root_hash);
  if (c.json) {
    absl::PrintF("{\"ok\":true,\"events\":%d,\"root\":\"%s\"}\n", report->events_checked, root);
  } else {
    absl::PrintF("ok: %d events verified; Merkle root %s\n", report->events_checked, root);
  }
  return kExitOk;
}

int Stats(const Common& c) {
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, false);
  if (!st.ok()) return FailOpen(st.status());
  auto s = (*st)->Stats();
  if (!s.ok()) return Fail(s.status());
  std::string root = absl::BytesToHexString(s->root_hash);
  if (c.json) {
    absl::PrintF(
        "{\"events\":%d,\"streams\":%d,\"dataKeys\":%d,\"diskBytes\":%d,\"root\":\"%s\","
        "\"formatVersion\":%d}\n",
        s->event_count, s->stream_count, s->key_count, s->disk_bytes, root, s->format_version);
  } else {
    absl::PrintF(
        "events          %d\nstreams         %d\ndata keys       %d\n"
        "disk bytes      %d\nMerkle root     %s\nformat version  %d\n",
        s->event_count, s->stream_count, s->key_count, s->disk_bytes, root, s->format_version);
  }
  return kExitOk;
}

}  // namespace

void RegisterLogCommands(Cli& cli) {
  Common& common = cli.common();
  auto append_args = std::make_shared<AppendArgs>();
  auto* append = cli.app().add_subcommand("append", "append events (JSON lines on stdin)");
  cli.AddWhere(append);
  append->add_option("--stream", append_args->stream,
                     "append every event to this stream, as one atomic append");
  append->add_option("--expected-version", append_args->expected,
                     "N (the stream's last version), any, none (no stream yet) or exists");
  append->add_flag("--new-ids", append_args->new_ids,
                   "make a fresh id for each event that has none (a retry then stores it again)");
  cli.OnRun(append, [&common, append_args] { return Append(common, *append_args); });

  auto import_args = std::make_shared<ImportArgs>();
  auto* import = cli.app().add_subcommand(
      "import", "load a whole history (JSON lines) into a new store, all or nothing");
  cli.AddData(import, true);
  import->add_option("file", import_args->file, "the JSON lines, or - for standard input")
      ->required();
  import->add_flag("--new-ids", import_args->new_ids,
                   "make a fresh id for each event that has none");
  cli.OnRun(import, [&common, import_args] { return Import(common, *import_args); });

  auto read_args = std::make_shared<ReadArgs>();
  auto* read = cli.app().add_subcommand("read", "read one stream");
  cli.AddWhere(read);
  read->add_option("stream", read_args->stream, "stream id (party id)")->required();
  read->add_option("--from", read_args->from, "first version to read")
      ->each([read_args](const std::string&) { read_args->from_set = true; })
      ->check(kWholeNumber);
  read->add_flag("--backward", read_args->backward, "newest first");
  read->add_option("--limit", read_args->limit, "at most this many events (default 1000)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->check(kWholeNumber);
  read->add_flag("--sealed", read_args->sealed, "do not open personal content");
  cli.OnRun(read, [&common, read_args] { return Read(common, *read_args); });

  auto tail_args = std::make_shared<TailArgs>();
  auto* tail = cli.app().add_subcommand("tail", "print the global log");
  cli.AddWhere(tail);
  tail->add_option("--from", tail_args->from, "first position (default: the last --limit)")
      ->each([tail_args](const std::string&) { tail_args->from_set = true; })
      ->check(kWholeNumber);
  tail->add_option("--limit", tail_args->limit, "without --from: how many of the last events")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->check(kWholeNumber);
  tail->add_flag("--sealed", tail_args->sealed, "do not open personal content");
  tail->add_flag("-f,--follow", tail_args->follow,
                 "keep printing events as they commit (needs --connect)");
  cli.OnRun(tail, [&common, tail_args] { return Tail(common, *tail_args); });

  auto* verify = cli.app().add_subcommand("verify", "recompute every hash and the Merkle tree");
  cli.AddData(verify, true);
  cli.OnRun(verify, [&common] { return Verify(common); });
  auto* stats = cli.app().add_subcommand("stats", "size, streams, root hash");
  cli.AddData(stats, true);
  cli.OnRun(stats, [&common] { return Stats(common); });
}

}  // namespace ihs::tools
