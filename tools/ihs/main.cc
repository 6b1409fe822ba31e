// ihs: the command line of the interaction history store, for engineers, auditors and operators.
//
//   ihs append WHERE [--stream S] [--expected-version N|any|none|exists] [--json] < in.jsonl
//   ihs read   WHERE STREAM [--from V] [--backward] [--limit N] [--sealed] [--json]
//   ihs tail   WHERE [--from POS] [--limit N] [-f] [--json]
//   ihs verify --data DIR [--json]
//   ihs stats  --data DIR [--json]
//   ihs generate --parties N --days D [--seed S] [--events N] (--data DIR | --out FILE.jsonl)
//                [--truth FILE.json] [--force] [--json]
//   ihs token new --tokens FILE --role ROLE --name NAME [--json]
//   ihs audit pubkey|head|prove-event|verify-head|verify-party|replay|export --data DIR ...
//   ihs audit verify-export FILE [--key KEYFILE]                         (docs/audit.md)
//   ihs backup WHERE --to DIR [--with-master-key] [--json]
//   ihs retention run --policy FILE --data DIR [--now TIME] [--by NAME] [--dry-run] [--json]
//   ihs erase PARTY --reason TEXT [--by NAME] WHERE [--json]
//   ihs hold  PARTY --reason TEXT [--lift] [--by NAME] WHERE [--json]
//   ihs timeline PARTY WHERE [--from T] [--to T] [--channel C]... [--limit N] [--cursor C]
//                [--html FILE] [--json]
//   ihs projections status WHERE [--json] | ihs projections rebuild NAME WHERE
//
// WHERE is a data directory (--data DIR) or a running ihsd (--connect ADDR --token T, or the
// token in $IHS_TOKEN); the output is the same. Only append and generate create a store.
//
// Events are JSON in and out through capnp::JsonCodec over schema/event.capnp (schema/json.h).
// Exit codes (docs/cli.md): 0 ok, 1 usage, 2 bad input, 3 version conflict, 4 integrity failure,
// 5 store or server unavailable, 6 refused by the server (no such token, or not the role's),
// 7 refused by the party's state (under legal hold, already erased, not held; content for an
// erased party or of an expired class).
#include <capnp/message.h>
#include <capnp/schema.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "workload/generator.h"
#include "workload/load.h"
#include "workload/model.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "projections/registry.h"
#include "projections/runner.h"
#include "projections/timeline/replay.h"
#include "projections/timeline/timeline.h"
#include "schema/json.h"
#include "server/client.h"
#include "server/tokens.h"
#include "store/audit.h"
#include "store/backup.h"
#include "store/event_store.h"
#include "store/governance.h"
#include "store/retention.h"
#include "tools/ihs/audit.h"
#include "tools/ihs/export.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/progress.h"
#include "tools/ihs/timeline_html.h"

namespace ihs::tools {
namespace {

enum ExitCode {
  kExitOk = 0,
  kExitUsage = 1,
  kExitBadInput = 2,
  kExitConflict = 3,
  kExitIntegrity = 4,
  kExitUnavailable = 5,
  kExitRefused = 6,
  kExitPartyState = 7,
};

int ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kOutOfRange:
      return kExitBadInput;
    case absl::StatusCode::kAborted:
      return kExitConflict;
    case absl::StatusCode::kDataLoss:
      return kExitIntegrity;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kExitRefused;
    case absl::StatusCode::kFailedPrecondition:  // stores that cannot open go through FailOpen
      return kExitPartyState;
    default:
      return kExitUnavailable;
  }
}

int Fail(const absl::Status& s) {
  std::cerr << "ihs: " << s.message() << "\n";
  return ExitCodeFor(s);
}

// A store that cannot be opened (missing, not a store, wrong key, locked, newer format) is
// "store unavailable", whatever the status code.
int FailOpen(const absl::Status& s) {
  std::cerr << "ihs: " << s.message() << "\n";
  return s.code() == absl::StatusCode::kDataLoss ? kExitIntegrity : kExitUnavailable;
}

struct Common {
  std::string data;
  std::string master_key;
  std::string connect;  // a running ihsd instead of --data
  std::string token;
  std::string tls_ca, tls_name;
  bool json = false;
};

// Only `create` makes a store where there is none: append and generate, which are meant to.
// Every other command needs one that exists, and says so when --data names a missing or empty
// directory, instead of leaving a new store (with a new master key) behind.
absl::StatusOr<std::unique_ptr<store::EventStore>> OpenStore(const Common& c, bool write,
                                                             bool create = false) {
  store::Options o;
  o.path = c.data;
  o.master_key_path = c.master_key;
  // Reading commands open read-only: they take no lock, so they work beside a running writer
  // (seeing the log as of their start), and never create a store.
  o.create_if_missing = write && create;
  o.read_only = !write;
  return store::EventStore::Open(o);
}

absl::StatusOr<store::ExpectedVersion> ParseExpected(const std::string& s) {
  if (s == "any") return store::ExpectedVersion::Any();
  if (s == "none") return store::ExpectedVersion::NoStream();
  if (s == "exists") return store::ExpectedVersion::StreamExists();
  uint64_t v = 0;
  if (absl::SimpleAtoi(s, &v)) return store::ExpectedVersion::Exact(v);
  return absl::InvalidArgumentError(
      absl::StrCat("--expected-version must be a number, any, none or exists, not \"", s, "\""));
}

// ---------------------------------------------------------------------------------------------
// Output of events.

class EventPrinter {
 public:
  explicit EventPrinter(bool json) : json_(json) {}

  // The table's header, once: before the first event, or at the end when there was none (so an
  // error prints no header).
  void Header() {
    if (json_ || header_done_) return;
    header_done_ = true;
    absl::PrintF("%-8s %-8s %-27s %-18s %-10s %-10s %s\n", "POSITION", "VERSION", "OCCURRED",
                 "STREAM", "CHANNEL", "DIRECTION", "TYPE            SUBJECT / TEXT");
  }

  // `E` is store::StoredEvent or client::RemoteEvent: the same output either way.
  template <typename E>
  void Print(const E& e) {
    Header();
    auto ev = e.event();
    last_version_ = ev.getStreamVersion();
    if (json_) {
      std::cout << JsonOf(e) << "\n";
      return;
    }
    std::string what, channel = "-", direction = "-";
    switch (ev.which()) {
      case schema::Event::TOUCHPOINT: {
        auto tp = ev.getTouchpoint();
        channel = schema::EnumName(tp.getChannel());
        direction = schema::EnumName(tp.getDirection());
        what = schema::EnumName(tp.getType());
        break;
      }
      case schema::Event::PARTY_PROFILE:
        what = "partyProfile";
        break;
      case schema::Event::IDENTITY_LINK:
        what = "identityLink";
        break;
      case schema::Event::ERASURE_REQUEST:
        what = absl::StrCat("erasure by ", ev.getErasureRequest().getRequestedBy().cStr(), ": ",
                            ev.getErasureRequest().getReason().cStr());
        break;
      case schema::Event::LEGAL_HOLD:
        what = absl::StrCat(ev.getLegalHold().getLift() ? "hold lifted by " : "legal hold by ",
                            ev.getLegalHold().getRequestedBy().cStr(), ": ",
                            ev.getLegalHold().getReason().cStr());
        break;
      case schema::Event::CONTENT_EXPIRY: {
        std::vector<std::string> classes;
        for (auto c : ev.getContentExpiry().getExpired()) {
          classes.push_back(absl::StrCat(schema::EnumName(c.getChannel()), " ",
                                         schema::EnumName(c.getType()), " of ", c.getYear()));
        }
        what = absl::StrCat(
            "content expired (", absl::StrJoin(classes, ", "), ") by ",
            ev.getContentExpiry().getRequestedBy().cStr(), ": ",
            absl::StrReplaceAll(ev.getContentExpiry().getRules().cStr(), {{"\n", "; "}}));
        break;
      }
      case schema::Event::RETENTION_RUN: {
        auto r = ev.getRetentionRun();
        what = absl::StrCat("retention run by ", r.getRequestedBy().cStr(), ": ", r.getClasses(),
                            " keys of ", r.getParties(), " parties expired, ", r.getHeld().size(),
                            " held");
        break;
      }
      default:
        what = absl::StrCat("type#", static_cast<int>(ev.which()));
    }
    switch (e.content_state()) {
      case store::ContentState::kOpen: {
        auto c = e.content();
        std::string text = c.hasSubject() ? std::string(c.getSubject().cStr()) : "";
        if (c.hasText()) {
          if (!text.empty()) text += " | ";
          text += c.getText().cStr();
        }
        what = absl::StrFormat("%-15s %s", what, Shorten(text, 60));
        break;
      }
      case store::ContentState::kSealed:
        what = absl::StrFormat("%-15s [sealed]", what);
        break;
      case store::ContentState::kErased:
        what = absl::StrFormat("%-15s [erased]", what);
        break;
      case store::ContentState::kNone:
        break;
    }
    absl::PrintF("%-8d %-8d %-27s %-18s %-10s %-10s %s\n", e.position(), ev.getStreamVersion(),
                 schema::FormatMicros(ev.getOccurredAt()), Shorten(ev.getStreamId().cStr(), 18),
                 channel, direction, what);
  }

  // The event as one JSON object: as stored, with its content in the clear when it was opened.
  template <typename E>
  std::string JsonOf(const E& e) {
    capnp::MallocMessageBuilder mb;
    mb.setRoot(e.event());
    auto out = mb.getRoot<schema::Event>();
    if (e.content_state() == store::ContentState::kOpen) {
      out.setContent(e.content());
      out.disownSealedContent();
    }
    return json_codec_.Encode(out.asReader());
  }

  // The stream version of the event printed last.
  uint64_t last_version() const { return last_version_; }

 private:
  static std::string Shorten(std::string s, size_t n) {
    for (char& c : s) {
      if (c == '\n' || c == '\t') c = ' ';
    }
    if (s.size() > n) s = s.substr(0, n - 3) + "...";
    return s;
  }
  bool json_;
  bool header_done_ = false;
  uint64_t last_version_ = 0;
  schema::EventJson json_codec_;
};

// ---------------------------------------------------------------------------------------------
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

// Pages of reads; the server caps one read at 10,000 events.
constexpr size_t kReadPage = 1000;

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

// --data or --connect, exactly one.
absl::Status CheckWhere(const Common& c) {
  if (c.connect.empty() == c.data.empty()) {
    return absl::InvalidArgumentError("give exactly one of --data DIR and --connect ADDR");
  }
  return absl::OkStatus();
}

// Connects to the ihsd of --connect with --token (default $IHS_TOKEN) and the TLS flags.
absl::StatusOr<std::unique_ptr<client::Client>> Connect(const Common& c) {
  client::ConnectOptions o;
  o.address = c.connect;
  o.token = c.token;
  o.tls_ca_file = c.tls_ca;
  o.tls_server_name = c.tls_name;
  if (o.token.empty()) {
    const char* env = std::getenv("IHS_TOKEN");
    if (env != nullptr) o.token = env;
  }
  return client::Client::Connect(o);
}

// A store that cannot be opened is "unavailable", whatever the status code (as FailOpen).
absl::Status OpenFailure(const absl::Status& s) {
  return s.code() == absl::StatusCode::kDataLoss ? s : absl::UnavailableError(s.message());
}

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

// ---------------------------------------------------------------------------------------------
// Commands.

struct AppendArgs {
  std::string stream;
  std::string expected = "any";
};

// Reads JSONL from stdin, all of it, before anything is appended: a malformed line changes
// nothing. With --stream, all events are one atomic append to that stream. Without it, events
// go to their own streamId, in atomic multi-stream appends of up to kMaxEventsPerAppend events.
int Append(const Common& c, const AppendArgs& a) {
  absl::StatusOr<store::ExpectedVersion> expected = ParseExpected(a.expected);
  if (!expected.ok()) return Fail(expected.status());
  if (a.stream.empty() && a.expected != "any") {
    return Fail(absl::InvalidArgumentError("--expected-version needs --stream"));
  }
  schema::EventJson json;
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> messages;
  std::vector<std::pair<std::string, schema::Event::Reader>> events;  // stream, event
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
    std::string stream = a.stream.empty() ? std::string(ev.getStreamId().cStr()) : a.stream;
    if (stream.empty()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": streamId is missing (or pass --stream)")));
    }
    events.emplace_back(stream, ev.asReader());
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
    for (auto& [s, ev] : events) req.events.push_back(ev);
    absl::StatusOr<store::AppendResult> r = store.Append(req);
    if (!r.ok()) return Fail(r.status());
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
      for (size_t i = begin; i < end; ++i) {
        auto [it, fresh] = index.try_emplace(events[i].first, reqs.size());
        if (fresh) reqs.push_back({events[i].first, store::ExpectedVersion::Any(), {}});
        reqs[it->second].events.push_back(events[i].second);
      }
      absl::StatusOr<std::vector<store::AppendResult>> r = store.AppendMulti(reqs);
      if (!r.ok()) {
        if (begin > 0) {
          std::cerr << "ihs: input lines before event " << begin + 1
                    << " are stored; appends are idempotent, so fix the input and run it "
                       "again\n";
        }
        return Fail(r.status());
      }
      for (size_t i = 0; i < reqs.size(); ++i) report(reqs[i].stream, (*r)[i]);
    }
    progress.Update(events.size(), events.size());
    progress.Finish();
  }
  if (!c.json) {
    absl::StatusOr<uint64_t> head = store.Head();
    absl::PrintF("appended %d events (%d already stored); the log holds %d events\n", appended,
                 duplicates, head.ok() ? *head : 0);
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
  printer.Header();
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
    return Fail(absl::InvalidArgumentError(
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
    // Catch-up and live events come through one subscription: no gap between them.
    client::SubscribeOptions so;
    so.from_position = pos;
    so.open_content = !a.sealed;
    auto& remote = static_cast<RemoteBackend&>(**backend);
    absl::Status s = remote.client().Subscribe(
        so, [&](const std::vector<client::RemoteEvent>& events, uint64_t) {
          for (const auto& e : events) printer.Print(e);
          std::fflush(stdout);
          return !std::ferror(stdout);  // stop when stdout is gone (e.g. `| head`)
        });
    return s.ok() ? kExitOk : Fail(s);
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

// ihs backup: a consistent copy of the store (EventStore::Backup), then the copy verified.
struct BackupArgs {
  std::string to;
  bool with_master_key = false;
};

int Backup(const Common& c, const BackupArgs& a) {
  if (absl::Status s = CheckWhere(c); !s.ok()) return Fail(s);
  absl::StatusOr<uint64_t> size;
  if (!c.connect.empty()) {
    absl::StatusOr<std::unique_ptr<client::Client>> client = Connect(c);
    if (!client.ok()) return Fail(client.status());
    size = (*client)->Backup(a.to, a.with_master_key);
  } else {
    // Read-only: no lock, so this works beside a running ihsd.
    absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, false);
    if (!st.ok()) return FailOpen(st.status());
    size = Backup(**st, a.to, a.with_master_key);
  }
  if (!size.ok()) return Fail(size.status());
  // The copy must open and verify on its own, with its own master key, the one given, or (from
  // a data directory) the original's; over RPC without either, there is no key to open it with.
  Common copy = c;
  copy.connect.clear();
  copy.data = a.to;
  if (a.with_master_key) {
    copy.master_key.clear();  // the copy's own
  } else if (c.master_key.empty() && c.connect.empty()) {
    copy.master_key = (std::filesystem::path(c.data) / "master.key").string();
  }
  nlohmann::json j = {{"to", a.to}, {"sizeAtStart", *size}};
  if (!a.with_master_key && copy.master_key.empty()) {
    if (c.json) {
      j["verified"] = false;
      std::cout << JsonLine(j) << "\n";
    } else {
      absl::PrintF(
          "copied %s (%d events when it began); not verified here: run ihs verify "
          "--data %s --master-key FILE\n",
          a.to, *size, a.to);
    }
    return kExitOk;
  }
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened = OpenStore(copy, false);
  if (!opened.ok()) return FailOpen(opened.status());
  Progress progress("verify the copy");
  if (c.json) progress.Disable();
  auto report =
      Verify(**opened, [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!report.ok()) return Fail(report.status());
  const std::string root = absl::BytesToHexString(report->root_hash);
  if (c.json) {
    j["verified"] = true;
    j["events"] = report->events_checked;
    j["root"] = root;
    std::cout << JsonLine(j) << "\n";
  } else {
    absl::PrintF("copied %s: %d events, verified; Merkle root %s\n", a.to, report->events_checked,
                 root);
  }
  return kExitOk;
}

// ihs erase and ihs hold: an admin's change to a party, recorded as an event (docs/audit.md).
struct PartyControlArgs {
  std::string party;
  std::string reason;
  std::string by;  // --data only: who asks (default: the login name)
  bool lift = false;
};

std::string LoginName() {
  const char* user = std::getenv("USER");
  if (user != nullptr && *user != '\0') return user;
  return absl::StrCat("uid ", ::geteuid());
}

int PartyControl(const Common& c, const PartyControlArgs& a, bool erase) {
  if (absl::Status s = CheckWhere(c); !s.ok()) return Fail(s);
  if (!c.connect.empty() && !a.by.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--by is for --data only: over RPC, ihsd records the token's holder"));
  }
  absl::StatusOr<uint64_t> position;
  std::string by = a.by.empty() ? LoginName() : a.by;
  if (!c.connect.empty()) {
    absl::StatusOr<std::unique_ptr<client::Client>> client = Connect(c);
    if (!client.ok()) return Fail(client.status());
    by = (*client)->name();
    position = erase ? (*client)->Erase(a.party, a.reason)
                     : (*client)->SetLegalHold(a.party, a.lift, a.reason);
  } else {
    absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, true);
    if (!st.ok()) return FailOpen(st.status());
    position = erase ? Erase(**st, a.party, a.reason, by)
                     : SetLegalHold(**st, a.party, a.lift, a.reason, by);
  }
  if (!position.ok()) return Fail(position.status());
  const char* what = erase ? "erased" : (a.lift ? "hold lifted" : "held");
  if (c.json) {
    nlohmann::json j = {{"party", a.party},
                        {"action", what},
                        {"position", *position},
                        {"reason", a.reason},
                        {"requestedBy", by}};
    std::cout << JsonLine(j) << "\n";
  } else if (erase) {
    absl::PrintF(
        "erased %s: erasure recorded at position %d; its data key is deleted and "
        "compacted out of the store's files\n",
        a.party, *position);
  } else {
    absl::PrintF("%s %s: recorded at position %d\n",
                 a.lift ? "lifted the legal hold on" : "placed a legal hold on", a.party,
                 *position);
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

// ---------------------------------------------------------------------------------------------
// ihs generate

struct GenerateArgs {
  int64_t parties = 0, days = 0, events = 0;
  uint64_t seed = 1;
  std::string out, truth;
  bool force = false;
};

// An output file that exists is kept unless --force; one that cannot be written is named.
absl::Status CheckOutputPath(const std::string& flag, const std::string& path, bool force) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, " is a directory; name a file"));
  }
  if (std::filesystem::exists(path, ec) && !force) {
    return absl::AlreadyExistsError(
        absl::StrCat(flag, " ", path, " exists; give --force to overwrite it"));
  }
  const std::string probe = path + ".tmp";
  FILE* f = std::fopen(probe.c_str(), "w");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write ", flag, " ", path, ": ", std::strerror(errno)));
  }
  std::fclose(f);
  std::remove(probe.c_str());
  return absl::OkStatus();
}

uint64_t PeakRssBytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

int Generate(const Common& c, const GenerateArgs& a) {
  // Values are read as signed so that a negative one is named, not wrapped.
  if (a.parties <= 0 || a.days <= 0 || a.events < 0) {
    return Fail(absl::InvalidArgumentError(
        a.parties <= 0 ? absl::StrCat("--parties ", a.parties, " is out of range: give 10 to ",
                                      workload::kMaxParties)
        : a.days <= 0
            ? absl::StrCat("--days ", a.days, " is out of range: give 1 to ", workload::kMaxDays)
            : absl::StrCat("--events ", a.events, " is out of range: give 1 to ",
                           workload::kMaxEvents)));
  }
  workload::Config config;
  config.parties = static_cast<uint64_t>(a.parties);
  config.days = static_cast<uint32_t>(std::min<int64_t>(a.days, UINT32_MAX));
  config.seed = a.seed;
  config.max_events = static_cast<uint64_t>(a.events);
  if (absl::Status s = workload::Validate(config); !s.ok()) return Fail(s);
  if (c.data.empty() == a.out.empty()) {
    return Fail(absl::InvalidArgumentError("give exactly one of --data DIR and --out FILE"));
  }
  if (!a.out.empty()) {
    if (absl::Status s = CheckOutputPath("--out", a.out, a.force); !s.ok()) return Fail(s);
  }
  if (!a.truth.empty()) {
    if (absl::Status s = CheckOutputPath("--truth", a.truth, a.force); !s.ok()) return Fail(s);
  }

  auto generator = std::make_unique<workload::Generator>(config);
  Progress progress(c.data.empty() ? "generating" : "generating and appending");
  if (c.json) progress.Disable();
  auto on_progress = [&](uint64_t events, double fraction) {
    uint64_t total = config.max_events;
    if (total == 0) {
      total = fraction > 0.01 ? static_cast<uint64_t>(events / fraction) : events + 1;
    }
    progress.Update(events, std::max(total, events));
  };
  absl::StatusOr<workload::LoadReport> report;
  if (!a.out.empty()) {
    report = workload::WriteJsonLines(*generator, a.out, on_progress);
  } else {
    absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, true, /*create=*/true);
    if (!st.ok()) return FailOpen(st.status());
    report = workload::LoadIntoStore(*generator, **st, on_progress);
    if (!report.ok() && report.status().code() == absl::StatusCode::kAlreadyExists && a.force) {
      // --force: the directory held another history; replace the store, its default master key
      // and its signing key (heads of the old history must not verify as the new store's).
      st->reset();
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::path(c.data) / "db", ec);
      if (c.master_key.empty())
        std::filesystem::remove(std::filesystem::path(c.data) / "master.key", ec);
      if (!ec) std::filesystem::remove(std::filesystem::path(c.data) / "signing.key", ec);
      if (ec) {
        return Fail(absl::UnavailableError(
            absl::StrCat("cannot remove the old store in ", c.data, ": ", ec.message())));
      }
      std::cerr << "ihs: --force: replaced the store in " << c.data << "\n";
      st = OpenStore(c, true, /*create=*/true);
      if (!st.ok()) return FailOpen(st.status());
      generator = std::make_unique<workload::Generator>(config);
      report = workload::LoadIntoStore(*generator, **st, on_progress);
    }
  }
  if (!report.ok()) return Fail(report.status());
  progress.Finish();

  if (!a.truth.empty()) {
    const std::string tmp = a.truth + ".tmp";
    std::ofstream f(tmp, std::ios::trunc);
    generator->WriteTruth(f);
    f.close();
    if (!f || std::rename(tmp.c_str(), a.truth.c_str()) != 0) {
      std::remove(tmp.c_str());
      return Fail(absl::UnavailableError(absl::StrCat("cannot write --truth ", a.truth)));
    }
  }
  const double seconds = absl::ToDoubleSeconds(report->elapsed);
  const double rate = seconds > 0 ? report->appended / seconds : 0;
  const std::string where = a.out.empty() ? c.data : a.out;
  if (c.json) {
    absl::PrintF(
        "{\"events\":%d,\"written\":%d,\"alreadyPresent\":%d,\"seconds\":%.3f,"
        "\"eventsPerSecond\":%.0f,\"peakRssBytes\":%d,\"fingerprint\":\"%016x\",\"to\":%s}\n",
        generator->emitted(), report->appended, report->present, seconds, rate, PeakRssBytes(),
        generator->fingerprint(), schema::JsonQuote(where));
  } else {
    if (report->present > 0) {
      absl::PrintF("%d events of this history were already in %s; resumed after them\n",
                   report->present, where);
    }
    absl::PrintF("generated %d events (seed %d, %d parties, %d days) into %s\n",
                 generator->emitted(), config.seed, config.parties, config.days, where);
    absl::PrintF("wrote %d in %.1f s: %.0f events/s; peak memory %.0f MiB\n", report->appended,
                 seconds, rate, PeakRssBytes() / 1048576.0);
    if (!a.truth.empty()) absl::PrintF("ground truth: %s\n", a.truth);
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// ihs token new

struct TokenArgs {
  std::string file, role, name;
};

int TokenNew(const Common& c, const TokenArgs& a) {
  std::optional<rpc::Role> role = server::ParseRole(a.role);
  if (!role) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--role ", a.role, ": give writer, reader, auditor or admin")));
  }
  if (!server::ValidTokenName(a.name)) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--name \"", a.name, "\": use 1 to 128 letters, digits and . _ @ -")));
  }
  // The file must stay a valid tokens file: check what is there before adding to it.
  std::error_code ec;
  if (std::filesystem::exists(a.file, ec)) {
    absl::StatusOr<server::Tokens> existing = server::Tokens::Load(a.file);
    if (!existing.ok()) return Fail(existing.status());
  }
  const std::string token = server::NewToken();
  {
    std::ofstream out(a.file, std::ios::app);
    out << server::TokenLine(*role, a.name, token);
    out.close();
    if (!out) {
      return Fail(absl::UnavailableError(absl::StrCat("cannot write tokens file ", a.file)));
    }
  }
  std::filesystem::permissions(
      a.file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  if (c.json) {
    absl::PrintF("{\"role\":\"%s\",\"name\":%s,\"token\":\"%s\"}\n", a.role,
                 schema::JsonQuote(a.name), token);
  } else {
    absl::PrintF("%s\n", token);
    std::cerr << "ihs: added a " << a.role << " token for " << a.name << " to " << a.file
              << " (only its hash is stored: keep the token now, it is not shown again)\n";
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// Projections and the timeline (docs/projections.md): on a data directory, where the runner runs
// in this process, or on a running ihsd.

class ProjectionSource {
 public:
  virtual ~ProjectionSource() = default;
  virtual absl::StatusOr<std::vector<projections::ProjectionStatus>> Status() = 0;
  // Rebuilds `name` and returns once the new generation serves.
  virtual absl::Status Rebuild(const std::string& name, const store::ProgressFn& progress) = 0;
  // The party's summary and one page, both as of the log's head when the command started.
  virtual absl::Status ReadTimeline(const projections::timeline::Query& q,
                                    capnp::MessageBuilder& summary,
                                    capnp::MessageBuilder& page) = 0;
};

// Projections write their state, so on a data directory these commands open the store for
// writing (and so not while ihsd holds it).
class LocalProjections final : public ProjectionSource {
 public:
  LocalProjections(const Common& c, std::unique_ptr<store::EventStore> store,
                   std::unique_ptr<projections::Runner> runner)
      : c_(c), store_(std::move(store)), runner_(std::move(runner)) {}

  absl::StatusOr<std::vector<projections::ProjectionStatus>> Status() override {
    return runner_->Status();
  }
  absl::Status Rebuild(const std::string& name, const store::ProgressFn& progress) override {
    return runner_->Rebuild(name, progress);
  }
  // Catches up first; corrupt state is reported, rebuilt, and only then answered.
  absl::Status ReadTimeline(const projections::timeline::Query& q, capnp::MessageBuilder& summary,
                            capnp::MessageBuilder& page) override {
    for (int attempt = 0;; ++attempt) {
      IHS_RETURN_IF_ERROR(CatchUp(projections::timeline::kName));
      absl::StatusOr<projections::StateView> view = runner_->View(projections::timeline::kName);
      absl::Status s = view.status();
      if (s.ok()) s = projections::timeline::ReadSummary(*view, q.party, q.as_of, summary);
      if (s.ok()) s = projections::timeline::ReadPage(*view, q, page, store_.get());
      const bool corrupt =
          s.code() == absl::StatusCode::kDataLoss || s.code() == absl::StatusCode::kUnavailable;
      if (!corrupt || attempt > 0) return s;
      std::cerr << "ihs: " << s.message() << "; rebuilding the timeline" << std::endl;
    }
  }

 private:
  absl::Status CatchUp(const std::string& name) {
    Progress progress(absl::StrCat("projection ", name));
    if (c_.json) progress.Disable();
    absl::Status s = runner_->CatchUp(
        name, [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
    progress.Finish();
    return s;
  }

  const Common& c_;
  std::unique_ptr<store::EventStore> store_;
  std::unique_ptr<projections::Runner> runner_;
};

class RemoteProjections final : public ProjectionSource {
 public:
  explicit RemoteProjections(std::unique_ptr<client::Client> client) : client_(std::move(client)) {}

  absl::StatusOr<std::vector<projections::ProjectionStatus>> Status() override {
    return client_->Projections();
  }

  // Starts the rebuild in ihsd (admin), then follows it through the status until the new
  // generation serves.
  absl::Status Rebuild(const std::string& name, const store::ProgressFn& progress) override {
    IHS_ASSIGN_OR_RETURN(projections::ProjectionStatus before, Find(name));
    IHS_RETURN_IF_ERROR(client_->RebuildProjection(name));
    for (;;) {
      IHS_ASSIGN_OR_RETURN(projections::ProjectionStatus now, Find(name));
      if (now.rebuild_checkpoint) {
        if (progress) progress(*now.rebuild_checkpoint, now.head);
      } else if (now.family != before.family) {
        if (progress) progress(now.checkpoint, now.checkpoint);
        return absl::OkStatus();
      } else {
        // The rebuild ended without a swap (ihsd claims it before answering, so this is not a
        // rebuild that has yet to start).
        return absl::UnavailableError(
            now.error.empty() ? std::string("the rebuild stopped (is ihsd shutting down?)")
                              : now.error);
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

  // As of the head when asked: ihsd answers once the timeline has applied it, or (after its 5 s
  // wait) the page is read as it is, with a warning that it is behind.
  absl::Status ReadTimeline(const projections::timeline::Query& q, capnp::MessageBuilder& summary,
                            capnp::MessageBuilder& page) override {
    IHS_ASSIGN_OR_RETURN(const uint64_t head, client_->Head());
    client::Client::TimelineOptions o;
    o.open_content = true;
    o.min_position = head;
    absl::Status s = client_->Summary(q.party, q.as_of, o.min_position, summary);
    if (s.code() == absl::StatusCode::kUnavailable) {
      // Behind after the wait (or not serving at all: then this fails the same way).
      o.min_position = 0;
      s = client_->Summary(q.party, q.as_of, o.min_position, summary);
    }
    IHS_RETURN_IF_ERROR(s);
    IHS_RETURN_IF_ERROR(client_->Timeline(q, o, page));
    const uint64_t checkpoint = page.getRoot<schema::TimelinePage>().getCheckpoint();
    if (checkpoint < head) {
      std::cerr << "ihs: the timeline is " << head - checkpoint << " events behind the log"
                << std::endl;
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<projections::ProjectionStatus> Find(const std::string& name) {
    IHS_ASSIGN_OR_RETURN(auto all, client_->Projections());
    std::vector<std::string> names;
    for (const projections::ProjectionStatus& st : all) {
      if (st.name == name) return st;
      names.push_back(st.name);
    }
    return absl::NotFoundError(absl::StrCat("no projection named \"", name,
                                            "\" (there are: ", absl::StrJoin(names, ", "), ")"));
  }

  std::unique_ptr<client::Client> client_;
};

absl::StatusOr<std::unique_ptr<ProjectionSource>> OpenProjections(const Common& c) {
  IHS_RETURN_IF_ERROR(CheckWhere(c));
  if (!c.connect.empty()) {
    IHS_ASSIGN_OR_RETURN(auto client, Connect(c));
    return std::unique_ptr<ProjectionSource>(new RemoteProjections(std::move(client)));
  }
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, /*write=*/true);
  if (!st.ok()) return OpenFailure(st.status());
  IHS_ASSIGN_OR_RETURN(auto runner,
                       projections::Runner::Open(st->get(), projections::AllProjections()));
  return std::unique_ptr<ProjectionSource>(
      new LocalProjections(c, std::move(*st), std::move(runner)));
}

nlohmann::json ProjectionStatusJson(const projections::ProjectionStatus& st) {
  nlohmann::json j = {{"name", st.name},
                      {"version", st.version},
                      {"family", st.family},
                      {"state", st.state},
                      {"checkpoint", st.checkpoint},
                      {"head", st.head},
                      {"lagEvents", st.lag_events},
                      {"lagSeconds", st.lag_seconds},
                      {"eventsPerSecond", st.events_per_second}};
  if (!st.error.empty()) j["error"] = st.error;
  if (st.rebuild_checkpoint) j["rebuildCheckpoint"] = *st.rebuild_checkpoint;
  return j;
}

int ProjectionsStatus(const Common& c) {
  absl::StatusOr<std::unique_ptr<ProjectionSource>> source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  absl::StatusOr<std::vector<projections::ProjectionStatus>> all = (*source)->Status();
  if (!all.ok()) return Fail(all.status());
  for (const projections::ProjectionStatus& st : *all) {
    if (c.json) {
      std::cout << JsonLine(ProjectionStatusJson(st)) << "\n";
    } else {
      absl::PrintF("%-12s %-12s checkpoint %d of %d  lag %d events (%.1f s)  %s%s\n", st.name,
                   st.state, st.checkpoint, st.head, st.lag_events, st.lag_seconds, st.family,
                   st.error.empty() ? "" : absl::StrCat("  (", st.error, ")"));
    }
  }
  return kExitOk;
}

int ProjectionsRebuild(const Common& c, const std::string& name) {
  absl::StatusOr<std::unique_ptr<ProjectionSource>> source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  Progress progress(absl::StrCat("rebuild ", name));
  if (c.json) progress.Disable();
  const absl::Time start = absl::Now();
  absl::Status s = (*source)->Rebuild(
      name, [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!s.ok()) return Fail(s);
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  absl::StatusOr<std::vector<projections::ProjectionStatus>> all = (*source)->Status();
  if (!all.ok()) return Fail(all.status());
  for (const projections::ProjectionStatus& st : *all) {
    if (st.name != name) continue;
    if (c.json) {
      nlohmann::json j = ProjectionStatusJson(st);
      j["seconds"] = secs;
      std::cout << JsonLine(j) << "\n";
    } else {
      absl::PrintF("rebuilt %s: %d events in %.1f s; now %s\n", name, st.checkpoint, secs,
                   st.family);
    }
  }
  return kExitOk;
}

struct TimelineArgs {
  std::string party;
  std::string from, to;
  std::vector<std::string> channels;
  uint32_t limit = 100;
  std::string cursor;
  std::string html;
};

absl::StatusOr<int64_t> ParseTimeFlag(const std::string& flag, const std::string& value) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, value, &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": \"", value, "\" is not an RFC 3339 time (e.g. 2026-03-01T00:00:00Z)"));
  }
  return absl::ToUnixMicros(t);
}

absl::StatusOr<schema::Channel> ParseChannel(const std::string& name) {
  const auto enumerants = capnp::Schema::from<schema::Channel>().getEnumerants();
  std::vector<std::string> names;
  for (unsigned i = 1; i < enumerants.size(); ++i) {
    const std::string n = enumerants[i].getProto().getName().cStr();
    if (n == name) return static_cast<schema::Channel>(i);
    names.push_back(n);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown channel \"", name, "\" (one of: ", absl::StrJoin(names, ", "), ")"));
}

std::string HexData(capnp::Data::Reader d) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size()));
}

nlohmann::json EntryJson(schema::TimelineEntry::Reader e) {
  nlohmann::json j = {{"position", e.getPosition()},
                      {"eventId", HexData(e.getEventId())},
                      {"occurredAt", schema::FormatMicros(e.getOccurredAt())},
                      {"recordedAt", schema::FormatMicros(e.getRecordedAt())},
                      {"channel", schema::EnumName(e.getChannel())},
                      {"direction", schema::EnumName(e.getDirection())},
                      {"type", schema::EnumName(e.getType())}};
  if (!std::isnan(e.getSentiment())) j["sentiment"] = e.getSentiment();
  if (e.getTopics().size() > 0) {
    j["topics"] = nlohmann::json::array();
    for (auto t : e.getTopics()) j["topics"].push_back(t.cStr());
  }
  if (e.getThread().size() > 0) j["thread"] = e.getThread().cStr();
  if (e.getInReplyTo().size() > 0) j["inReplyTo"] = HexData(e.getInReplyTo());
  if (e.getCounterpart().size() > 0) j["counterpart"] = e.getCounterpart().cStr();
  if (e.getCampaignId().size() > 0) j["campaignId"] = e.getCampaignId().cStr();
  if (e.getAudienceSize() > 0) j["audienceSize"] = e.getAudienceSize();
  if (e.getCompanyReply()) j["companyReply"] = true;
  auto r = e.getResponse();
  if (r.isOpen()) j["response"] = {{"open", true}, {"waitingSeconds", e.getWaitingSeconds()}};
  if (r.isAnswered()) {
    auto a = r.getAnswered();
    j["response"] = {{"replyEventId", HexData(a.getReplyEventId())},
                     {"replyPosition", a.getReplyPosition()},
                     {"replyChannel", schema::EnumName(a.getReplyChannel())},
                     {"repliedAt", schema::FormatMicros(a.getRepliedAt())},
                     {"wallSeconds", a.getWallSeconds()},
                     {"serviceSeconds", a.getServiceSeconds()}};
  }
  if (e.hasSwitchFrom()) {
    auto sw = e.getSwitchFrom();
    j["switchFrom"] = {{"party", sw.getParty().cStr()},
                       {"eventId", HexData(sw.getEventId())},
                       {"channel", schema::EnumName(sw.getChannel())},
                       {"occurredAt", schema::FormatMicros(sw.getOccurredAt())}};
  }
  if (e.getCorrectedBy().size() > 0) j["correctedBy"] = HexData(e.getCorrectedBy());
  if (e.getRetractedBy().size() > 0) j["retractedBy"] = HexData(e.getRetractedBy());
  if (e.getSubject().size() > 0) j["subject"] = e.getSubject().cStr();
  if (e.getText().size() > 0) j["text"] = e.getText().cStr();
  return j;
}

nlohmann::json SummaryJson(schema::TimelineSummary::Reader s) {
  nlohmann::json j = {{"party", s.getParty().cStr()},
                      {"kind", schema::EnumName(s.getKind())},
                      {"entries", s.getEntries()},
                      {"answered", s.getAnswered()},
                      {"medianResponseSeconds", s.getMedianResponseSeconds()},
                      {"medianResponseServiceSeconds", s.getMedianResponseServiceSeconds()},
                      {"channelSwitches", s.getChannelSwitches()},
                      {"sentimentCount90d", s.getSentimentCount90d()},
                      {"asOf", schema::FormatMicros(s.getAsOf())}};
  if (!std::isnan(s.getSentiment90d())) j["sentiment90d"] = s.getSentiment90d();
  j["channels"] = nlohmann::json::array();
  for (auto c : s.getChannels()) {
    j["channels"].push_back({{"channel", schema::EnumName(c.getChannel())},
                             {"firstAt", schema::FormatMicros(c.getFirstAt())},
                             {"lastAt", schema::FormatMicros(c.getLastAt())},
                             {"inbound", c.getInbound()},
                             {"outbound", c.getOutbound()},
                             {"public", c.getPublic()}});
  }
  j["open"] = nlohmann::json::array();
  for (auto o : s.getOpen()) {
    j["open"].push_back({{"eventId", HexData(o.getEventId())},
                         {"position", o.getPosition()},
                         {"channel", schema::EnumName(o.getChannel())},
                         {"type", schema::EnumName(o.getType())},
                         {"occurredAt", schema::FormatMicros(o.getOccurredAt())},
                         {"waitingSeconds", o.getWaitingSeconds()}});
  }
  return j;
}

std::string Duration(int64_t seconds) {
  if (seconds < 3600) return absl::StrCat(seconds / 60, "m");
  if (seconds < 86400) return absl::StrCat(seconds / 3600, "h", (seconds % 3600) / 60, "m");
  return absl::StrCat(seconds / 86400, "d", (seconds % 86400) / 3600, "h");
}

nlohmann::json TimelineJson(schema::TimelineSummary::Reader summary,
                            schema::TimelinePage::Reader page) {
  nlohmann::json j = {{"summary", SummaryJson(summary)}, {"entries", nlohmann::json::array()}};
  for (auto e : page.getEntries()) j["entries"].push_back(EntryJson(e));
  if (page.getNextCursor().size() > 0) j["nextCursor"] = page.getNextCursor().cStr();
  j["checkpoint"] = page.getCheckpoint();
  return j;
}

void PrintTimeline(const std::string& party, schema::TimelineSummary::Reader summary,
                   schema::TimelinePage::Reader page) {
  absl::PrintF(
      "%s (%s): %d touchpoints, %d open, %d answered (median %s, %s in service hours), "
      "%d channel switches\n",
      party, schema::EnumName(summary.getKind()), summary.getEntries(), summary.getOpen().size(),
      summary.getAnswered(), Duration(summary.getMedianResponseSeconds()),
      Duration(summary.getMedianResponseServiceSeconds()), summary.getChannelSwitches());
  for (auto e : page.getEntries()) {
    std::string note;
    if (e.getResponse().isOpen()) {
      note = absl::StrCat("OPEN, waiting ", Duration(e.getWaitingSeconds()));
    } else if (e.getResponse().isAnswered()) {
      auto ans = e.getResponse().getAnswered();
      note = absl::StrCat("answered on ", schema::EnumName(ans.getReplyChannel()), " after ",
                          Duration(ans.getWallSeconds()), " (", Duration(ans.getServiceSeconds()),
                          " service)");
    }
    if (e.hasSwitchFrom()) {
      absl::StrAppend(&note, note.empty() ? "" : "; ", "SWITCH from ",
                      schema::EnumName(e.getSwitchFrom().getChannel()));
    }
    if (e.getRetractedBy().size() > 0)
      absl::StrAppend(&note, note.empty() ? "" : "; ", "RETRACTED");
    if (e.getCorrectedBy().size() > 0)
      absl::StrAppend(&note, note.empty() ? "" : "; ", "corrected");
    absl::PrintF("%s  %-10s %-8s %-14s %-10s %s\n", schema::FormatMicros(e.getOccurredAt()),
                 schema::EnumName(e.getChannel()), schema::EnumName(e.getDirection()),
                 schema::EnumName(e.getType()), e.getThread().cStr(), note);
  }
  if (page.getNextCursor().size() > 0) {
    absl::PrintF("more: --cursor %s\n", page.getNextCursor().cStr());
  }
}

int Timeline(const Common& c, const TimelineArgs& a) {
  projections::timeline::Query q;
  q.party = a.party;
  q.limit = a.limit;
  q.cursor = a.cursor;
  q.as_of = absl::Now();
  for (const std::string& ch : a.channels) {
    absl::StatusOr<schema::Channel> parsed = ParseChannel(ch);
    if (!parsed.ok()) return Fail(parsed.status());
    q.channels.push_back(*parsed);
  }
  if (!a.from.empty()) {
    absl::StatusOr<int64_t> t = ParseTimeFlag("--from", a.from);
    if (!t.ok()) return Fail(t.status());
    q.from = *t;
  }
  if (!a.to.empty()) {
    absl::StatusOr<int64_t> t = ParseTimeFlag("--to", a.to);
    if (!t.ok()) return Fail(t.status());
    q.to = *t;
  }
  if (absl::Status s = projections::timeline::Validate(q); !s.ok()) return Fail(s);
  if (!a.html.empty()) {  // before any work: an --html that cannot be written is bad input
    if (absl::Status s = CheckOutputPath("--html", a.html, /*force=*/true); !s.ok()) return Fail(s);
  }
  absl::StatusOr<std::unique_ptr<ProjectionSource>> source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  capnp::MallocMessageBuilder summary_msg, page_msg;
  if (absl::Status s = (*source)->ReadTimeline(q, summary_msg, page_msg); !s.ok()) return Fail(s);
  auto summary = summary_msg.getRoot<schema::TimelineSummary>();
  auto page = page_msg.getRoot<schema::TimelinePage>();
  if (!a.html.empty()) {
    absl::Status hs = WriteTimelineHtml(a.html, summary, page);
    if (!hs.ok()) return Fail(hs);
  }
  if (c.json) {
    std::cout << JsonLine(TimelineJson(summary, page)) << "\n";
    return kExitOk;
  }
  PrintTimeline(q.party, summary, page);
  return kExitOk;
}

// ihs audit replay: the party's events and timeline as the log held them at a moment.
struct ReplayArgs {
  std::string party;
  std::string as_of;      // RFC 3339: the events recorded at or before it
  int64_t position = -1;  // or: the log up to and including this position
  uint32_t limit = 100;
  std::string cursor;
};

int AuditReplay(const Common& c, const ReplayArgs& a) {
  if (a.as_of.empty() == (a.position < 0)) {
    return Fail(absl::InvalidArgumentError("give exactly one of --as-of TIME and --position P"));
  }
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, false);
  if (!st.ok()) return FailOpen(st.status());
  store::EventStore& store = **st;
  uint64_t size = 0;
  absl::Time moment;
  if (a.position >= 0) {
    if (static_cast<uint64_t>(a.position) >= store.Head()) {
      return Fail(absl::OutOfRangeError(absl::StrCat(
          "--position ", a.position, " is past the log's end (", store.Head(), " events)")));
    }
    size = static_cast<uint64_t>(a.position) + 1;
    store::ReadOptions ro;
    ro.open_content = false;
    absl::StatusOr<std::vector<store::StoredEvent>> last = store.ReadAll(size - 1, 1, ro);
    if (!last.ok()) return Fail(last.status());
    moment = absl::FromUnixMicros((*last)[0].event().getRecordedAt());
  } else {
    absl::StatusOr<int64_t> t = ParseTimeFlag("--as-of", a.as_of);
    if (!t.ok()) return Fail(t.status());
    moment = absl::FromUnixMicros(*t);
    absl::StatusOr<uint64_t> n = store::LogSizeAt(store, *t);
    if (!n.ok()) return Fail(n.status());
    size = *n;
  }
  projections::timeline::Query q;
  q.party = a.party;
  q.limit = a.limit;
  q.cursor = a.cursor;
  q.as_of = moment;
  capnp::MallocMessageBuilder summary_msg, page_msg;
  if (absl::Status s =
          projections::timeline::ReplayTimeline(&store, size, q, summary_msg, page_msg);
      !s.ok()) {
    return Fail(s);
  }
  auto summary = summary_msg.getRoot<schema::TimelineSummary>();
  auto page = page_msg.getRoot<schema::TimelinePage>();

  // The party's events recorded by then, content opened where it still can be.
  EventPrinter printer(c.json);
  nlohmann::json events = nlohmann::json::array();
  const std::string moment_text = absl::FormatTime(absl::RFC3339_full, moment, absl::UTCTimeZone());
  if (!c.json) {
    absl::PrintF("%s as of %s: the log held %d events; the party's, by recorded_at:\n", a.party,
                 moment_text, size);
  }
  for (uint64_t version = 0;;) {
    absl::StatusOr<std::vector<store::StoredEvent>> batch =
        store.ReadStream(a.party, version, kReadPage, store::ReadDirection::kForward);
    if (!batch.ok()) return Fail(batch.status());
    bool done = batch->size() < kReadPage;
    for (const store::StoredEvent& e : *batch) {
      if (e.position() >= size) {
        done = true;
        break;
      }
      if (c.json) {
        events.push_back(nlohmann::json::parse(printer.JsonOf(e)));
      } else {
        printer.Print(e);
      }
    }
    if (done) break;
    version += batch->size();
  }
  if (c.json) {
    nlohmann::json j = TimelineJson(summary, page);
    j["party"] = a.party;
    j["asOf"] = moment_text;
    j["logSize"] = size;
    j["events"] = std::move(events);
    std::cout << JsonLine(j) << "\n";
    return kExitOk;
  }
  absl::PrintF("\nthe timeline as it was known then:\n");
  PrintTimeline(a.party, summary, page);
  return kExitOk;
}

// ihs retention run: the retention policy applied as of now (EventStore::RunRetention).
struct RetentionArgs {
  std::string policy_file;
  std::string now;  // RFC 3339; default: now
  std::string by;
  bool dry_run = false;
};

int RetentionRun(const Common& c, const RetentionArgs& a) {
  absl::StatusOr<std::string> text = ReadFile(a.policy_file, "retention policy");
  if (!text.ok()) return Fail(text.status());
  absl::StatusOr<store::RetentionPolicy> policy = store::RetentionPolicy::Parse(*text);
  if (!policy.ok()) return Fail(policy.status());
  absl::Time now = absl::Now();
  if (!a.now.empty()) {
    absl::StatusOr<int64_t> t = ParseTimeFlag("--now", a.now);
    if (!t.ok()) return Fail(t.status());
    now = absl::FromUnixMicros(*t);
  }
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, !a.dry_run);
  if (!st.ok()) return FailOpen(st.status());
  const std::string by = a.by.empty() ? LoginName() : a.by;
  absl::StatusOr<store::RetentionReport> report = RunRetention(**st, *policy, now, by, a.dry_run);
  if (!report.ok()) return Fail(report.status());
  if (c.json) {
    nlohmann::json j = {{"dryRun", a.dry_run},
                        {"parties", report->parties},
                        {"keys", report->classes},
                        {"held", report->held},
                        {"requestedBy", by}};
    if (report->run_position) j["position"] = *report->run_position;
    std::cout << JsonLine(j) << "\n";
    return kExitOk;
  }
  absl::PrintF("%s%d data keys of %d parties %s; %d parties under legal hold left alone%s\n",
               a.dry_run ? "dry run: " : "", report->classes, report->parties,
               a.dry_run ? "would expire" : "expired", report->held.size(),
               report->run_position ? absl::StrCat("; recorded at position ", *report->run_position)
                                    : std::string());
  for (const std::string& p : report->held) absl::PrintF("  held: %s\n", p);
  return kExitOk;
}

// Numbers on the command line are whole and in range, or refused: CLI11 would read "-1" into an
// unsigned option as 2^64-1, and clamp what does not fit.
const CLI::Validator kWholeNumber(
    [](std::string& text) -> std::string {
      uint64_t v = 0;
      if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
          !absl::SimpleAtoi(text, &v)) {
        return absl::StrCat("\"", text, "\" is not a whole number from 0 to 2^64-1");
      }
      return std::string();
    },
    "NUMBER");

int Main(int argc, char** argv) {
  CLI::App app{"ihs: the interaction history store's command line"};
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 usage, 2 bad input, 3 version conflict, 4 integrity failure, "
      "5 store or server unavailable, 6 refused by the server (token or role), 7 refused by the "
      "party's state (legal hold, already erased).");
  Common common;
  auto add_common = [&](CLI::App* sub, bool json) {
    sub->add_option("--data", common.data, "data directory of the store")->required();
    sub->add_option("--master-key", common.master_key,
                    "master key file (default: DATA/master.key)");
    if (json) sub->add_flag("--json", common.json, "print JSON (one object per line)");
  };
  // Commands that work on a data directory or a running ihsd.
  auto add_where = [&](CLI::App* sub) {
    sub->add_option("--data", common.data, "data directory of the store");
    sub->add_option("--master-key", common.master_key,
                    "master key file (default: DATA/master.key)");
    sub->add_option("--connect", common.connect, "a running ihsd instead: HOST:PORT or unix:PATH");
    sub->add_option("--token", common.token, "with --connect: the token (default: $IHS_TOKEN)");
    sub->add_option("--tls-ca", common.tls_ca,
                    "with --connect to a TLS listener: PEM certificate(s) to trust");
    sub->add_option("--tls-name", common.tls_name,
                    "the name the server's certificate must carry (default: the host of ADDR)");
    sub->add_flag("--json", common.json, "print JSON (one object per line)");
  };

  AppendArgs append_args;
  auto* append = app.add_subcommand("append", "append events (JSON lines on stdin)");
  add_where(append);
  append->add_option("--stream", append_args.stream,
                     "append every event to this stream, as one atomic append");
  append->add_option("--expected-version", append_args.expected,
                     "N (the stream's last version), any, none (no stream yet) or exists");

  ReadArgs read_args;
  auto* read = app.add_subcommand("read", "read one stream");
  add_where(read);
  read->add_option("stream", read_args.stream, "stream id (party id)")->required();
  read->add_option("--from", read_args.from, "first version to read")
      ->each([&](const std::string&) { read_args.from_set = true; })
      ->check(kWholeNumber);
  read->add_flag("--backward", read_args.backward, "newest first");
  read->add_option("--limit", read_args.limit, "at most this many events (default 1000)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->check(kWholeNumber);
  read->add_flag("--sealed", read_args.sealed, "do not open personal content");

  TailArgs tail_args;
  auto* tail = app.add_subcommand("tail", "print the global log");
  add_where(tail);
  tail->add_option("--from", tail_args.from, "first position (default: the last --limit)")
      ->each([&](const std::string&) { tail_args.from_set = true; })
      ->check(kWholeNumber);
  tail->add_option("--limit", tail_args.limit, "without --from: how many of the last events")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->check(kWholeNumber);
  tail->add_flag("--sealed", tail_args.sealed, "do not open personal content");
  tail->add_flag("-f,--follow", tail_args.follow,
                 "keep printing events as they commit (needs --connect)");

  auto* verify = app.add_subcommand("verify", "recompute every hash and the Merkle tree");
  add_common(verify, true);
  auto* stats = app.add_subcommand("stats", "size, streams, root hash");
  add_common(stats, true);

  GenerateArgs gen_args;
  auto* generate = app.add_subcommand(
      "generate",
      "generate a realistic touchpoint history (docs/workload.md) into a store or file");
  generate->add_option("--data", common.data, "append to the store in this data directory");
  generate->add_option("--master-key", common.master_key,
                       "master key file (default: DATA/master.key)");
  generate->add_option("--out", gen_args.out, "write JSON lines to this file instead");
  generate->add_option("--parties", gen_args.parties, "parties of all kinds (10 to 5,000,000)")
      ->required();
  generate->add_option("--days", gen_args.days, "length of the history (1 to 3650)")->required();
  generate->add_option("--seed", gen_args.seed, "random seed (default 1): same seed, same history")
      ->check(kWholeNumber);
  generate->add_option("--events", gen_args.events, "stop after this many events (default: none)");
  generate->add_option("--truth", gen_args.truth, "write the ground truth (JSON) to this file");
  generate->add_flag("--force", gen_args.force,
                     "overwrite existing output files, or replace a store holding another history");
  generate->add_flag("--json", common.json, "print the summary as JSON");

  auto* proj = app.add_subcommand("projections", "projection workers: status and rebuild");
  proj->require_subcommand(1);
  auto* proj_status = proj->add_subcommand(
      "status", "each projection's checkpoint, lag and state (--data opens the store for writing)");
  add_where(proj_status);
  std::string rebuild_name;
  auto* proj_rebuild = proj->add_subcommand(
      "rebuild", "rebuild a projection from position 0 into a fresh generation, then swap it in");
  add_where(proj_rebuild);
  proj_rebuild->add_option("name", rebuild_name, "the projection, e.g. timeline")->required();

  TimelineArgs tl_args;
  auto* timeline = app.add_subcommand(
      "timeline", "one party's touchpoints across channels, with responses and switches");
  add_where(timeline);
  timeline->add_option("party", tl_args.party, "party id (stream id)")->required();
  timeline->add_option("--from", tl_args.from, "first moment (RFC 3339), by occurred_at");
  timeline->add_option("--to", tl_args.to, "end (RFC 3339, exclusive)");
  timeline->add_option("--channel", tl_args.channels, "only these channels (repeat)");
  timeline->add_option("--limit", tl_args.limit, "entries per page (1 to 1000, default 100)")
      ->check(kWholeNumber);
  timeline->add_option("--cursor", tl_args.cursor, "the next page: a previous page's cursor");
  timeline->add_option("--html", tl_args.html,
                       "also write the page as one self-contained HTML file (lanes per channel)");

  TokenArgs token_args;
  auto* token = app.add_subcommand("token", "manage ihsd's tokens file");
  token->require_subcommand(1);
  auto* token_new = token->add_subcommand(
      "new", "make a token, add its hash to the tokens file, print the token once");
  token_new->add_option("--tokens", token_args.file, "the tokens file (created if missing)")
      ->required();
  token_new->add_option("--role", token_args.role, "writer, reader, auditor or admin")->required();
  token_new->add_option("--name", token_args.name, "who holds it (letters, digits, . _ @ -)")
      ->required();
  token_new->add_flag("--json", common.json, "print {role, name, token} as JSON");

  auto* audit = app.add_subcommand(
      "audit", "signed tree heads and proofs: hold the store to what it published");
  audit->require_subcommand(1);
  auto* audit_pubkey = audit->add_subcommand("pubkey", "the key that checks this store's heads");
  add_common(audit_pubkey, true);
  std::string audit_out, audit_head_file, audit_old, audit_new, audit_party;
  uint64_t audit_position = 0;
  auto* audit_head = audit->add_subcommand("head", "a signed tree head of the log as it is now");
  add_common(audit_head, true);
  audit_head->add_option("--out", audit_out, "also write the head to this file");
  auto* audit_prove = audit->add_subcommand(
      "prove-event", "prove that one event is in the tree of a head you kept");
  add_common(audit_prove, true);
  audit_prove->add_option("position", audit_position, "the event's position")
      ->required()
      ->check(kWholeNumber);
  audit_prove->add_option("--head", audit_head_file, "a head from `ihs audit head`")->required();
  audit_prove->add_option("--out", audit_out, "write the proof file for ihs-verify here");
  auto* audit_verify_head = audit->add_subcommand(
      "verify-head", "prove that the log of NEW extends the log of OLD unchanged");
  add_common(audit_verify_head, true);
  audit_verify_head->add_option("old", audit_old, "the earlier head")->required();
  audit_verify_head->add_option("new", audit_new, "the later head")->required();
  audit_verify_head->add_option("--out", audit_out, "write the proof file for ihs-verify here");
  std::string export_party, export_key;
  bool export_all = false;
  auto* audit_export = audit->add_subcommand(
      "export", "an archive of a party's events (or --all) with the head and proofs");
  add_common(audit_export, true);
  audit_export->add_option("party", export_party, "party id (stream id)");
  audit_export->add_flag("--all", export_all, "the whole log instead of one party");
  audit_export->add_option("--out", audit_out, "the archive; FILE.jsonl is written beside it")
      ->required();
  auto* audit_verify_export = audit->add_subcommand(
      "verify-export", "verify an archive of `ihs audit export`, without the store");
  audit_verify_export->add_option("file", audit_head_file, "the archive (packed or .jsonl)")
      ->required();
  audit_verify_export->add_option("--key", export_key,
                                  "the verifier key (`ihs audit pubkey`) you trust");
  audit_verify_export->add_flag("--json", common.json, "print JSON");
  ReplayArgs replay_args;
  auto* audit_replay = audit->add_subcommand(
      "replay", "a party's events and timeline as they were known at a moment");
  add_common(audit_replay, true);
  audit_replay->add_option("party", replay_args.party, "party id (stream id)")->required();
  audit_replay->add_option("--as-of", replay_args.as_of,
                           "the moment (RFC 3339): events recorded at or before it");
  audit_replay
      ->add_option("--position", replay_args.position,
                   "or: the log up to and including this position")
      ->check(kWholeNumber);
  audit_replay
      ->add_option("--limit", replay_args.limit, "timeline entries (1 to 1000, default 100)")
      ->check(kWholeNumber);
  audit_replay->add_option("--cursor", replay_args.cursor, "the next page of the timeline");
  auto* audit_verify_party =
      audit->add_subcommand("verify-party", "prove every event of one party against a head");
  add_common(audit_verify_party, true);
  audit_verify_party->add_option("party", audit_party, "party id (stream id)")->required();
  audit_verify_party->add_option("--head", audit_head_file, "a head from `ihs audit head`")
      ->required();

  BackupArgs backup_args;
  auto* backup = app.add_subcommand(
      "backup", "a consistent copy of the store, taken while it serves, then verified");
  add_where(backup);
  backup->add_option("--to", backup_args.to, "a new directory for the copy")->required();
  backup->add_flag("--with-master-key", backup_args.with_master_key,
                   "copy the master key into it too (then the copy alone opens everything)");

  RetentionArgs retention_args;
  auto* retention = app.add_subcommand("retention", "content retention by channel and type");
  retention->require_subcommand(1);
  auto* retention_run = retention->add_subcommand(
      "run", "erase the content whose retention has passed (parties under legal hold excepted)");
  add_common(retention_run, true);
  retention_run
      ->add_option("--policy", retention_args.policy_file,
                   "the policy file: lines such as `channel=chat 2y` (docs/audit.md)")
      ->required();
  retention_run->add_option("--now", retention_args.now,
                            "judge expiry as of this moment (RFC 3339; default: now)");
  retention_run->add_option("--by", retention_args.by,
                            "who runs it, for the trail (default: $USER)");
  retention_run->add_flag("--dry-run", retention_args.dry_run,
                          "report what would expire; change nothing");

  PartyControlArgs control_args;
  auto add_control = [&](CLI::App* sub) {
    add_where(sub);
    sub->add_option("party", control_args.party, "party id (stream id)")->required();
    sub->add_option("--reason", control_args.reason, "why, for the audit trail")->required();
    sub->add_option("--by", control_args.by,
                    "with --data: who asks, for the trail (default: $USER); over RPC ihsd "
                    "records the token's holder");
  };
  auto* erase = app.add_subcommand(
      "erase", "erase a party's personal content: an erasure event, and its data key deleted");
  add_control(erase);
  auto* hold = app.add_subcommand(
      "hold", "place a legal hold on a party (it cannot be erased while held), or --lift it");
  add_control(hold);
  hold->add_flag("--lift", control_args.lift, "lift the hold in force");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (*append) return Append(common, append_args);
  if (*read) return Read(common, read_args);
  if (*tail) return Tail(common, tail_args);
  if (*verify) return Verify(common);
  if (*stats) return Stats(common);
  if (*generate) return Generate(common, gen_args);
  if (*token_new) return TokenNew(common, token_args);
  if (*proj_status) return ProjectionsStatus(common);
  if (*proj_rebuild) return ProjectionsRebuild(common, rebuild_name);
  if (*timeline) return Timeline(common, tl_args);
  if (*backup) return Backup(common, backup_args);
  if (*retention_run) return RetentionRun(common, retention_args);
  if (*erase) return PartyControl(common, control_args, /*erase=*/true);
  if (*hold) return PartyControl(common, control_args, /*erase=*/false);
  if (*audit_replay) return AuditReplay(common, replay_args);  // opens the store itself
  if (*audit_verify_export) {                                  // needs no store
    absl::Status r = AuditVerifyExport(audit_head_file, export_key, common.json);
    return r.ok() ? kExitOk : Fail(r);
  }
  if (*audit_export && export_all == !export_party.empty()) {
    return Fail(absl::InvalidArgumentError("give a PARTY or --all, not both and not neither"));
  }
  if (*audit) {
    absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(common, false);
    if (!st.ok()) return FailOpen(st.status());
    store::EventStore& s = **st;
    absl::Status r;
    if (*audit_pubkey) r = AuditPubkey(s, common.json);
    if (*audit_head) r = AuditHead(s, audit_out, common.json);
    if (*audit_prove)
      r = AuditProveEvent(s, audit_position, audit_head_file, audit_out, common.json);
    if (*audit_verify_head) r = AuditVerifyHead(s, audit_old, audit_new, audit_out, common.json);
    if (*audit_verify_party) r = AuditVerifyParty(s, audit_party, audit_head_file, common.json);
    if (*audit_export) r = AuditExport(s, export_party, audit_out, common.json);
    if (r.code() == absl::StatusCode::kFailedPrecondition) return FailOpen(r);  // no signing key
    return r.ok() ? kExitOk : Fail(r);
  }
  return kExitUsage;
}

}  // namespace
}  // namespace ihs::tools

int main(int argc, char** argv) { return ihs::tools::Main(argc, argv); }
