// ihs: the command line of the interaction history store, for engineers, auditors and operators.
//
//   ihs append --data DIR [--stream S] [--expected-version N|any|none|exists] [--json] < in.jsonl
//   ihs read   --data DIR STREAM [--from V] [--backward] [--limit N] [--sealed] [--json]
//   ihs tail   --data DIR [--from POS] [--limit N] [--json]
//   ihs verify --data DIR [--json]
//   ihs stats  --data DIR [--json]
//   ihs generate --parties N --days D [--seed S] [--events N] (--data DIR | --out FILE.jsonl)
//                [--truth FILE.json] [--force] [--json]
//
// Events are JSON in and out through capnp::JsonCodec over schema/event.capnp (schema/json.h).
// Exit codes (docs/cli.md): 0 ok, 1 usage, 2 bad input, 3 version conflict, 4 integrity failure,
// 5 store unavailable.
#include <capnp/message.h>
#include <capnp/schema.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
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
#include "absl/time/clock.h"
#include "bench/workload/generator.h"
#include "bench/workload/load.h"
#include "bench/workload/model.h"
#include "schema/json.h"
#include "store/event_store.h"
#include "tools/ihs/progress.h"

namespace ihs::tools {
namespace {

enum ExitCode {
  kExitOk = 0,
  kExitUsage = 1,
  kExitBadInput = 2,
  kExitConflict = 3,
  kExitIntegrity = 4,
  kExitUnavailable = 5,
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

std::string JsonString(absl::string_view s) {
  return absl::StrCat("\"", absl::CHexEscape(s), "\"");
}

struct Common {
  std::string data;
  std::string master_key;
  bool json = false;
};

absl::StatusOr<std::unique_ptr<store::EventStore>> OpenStore(const Common& c, bool write) {
  store::Options o;
  o.path = c.data;
  o.master_key_path = c.master_key;
  // Reading commands open read-only: they take no lock, so they work beside a running writer
  // (seeing the log as of their start), and never create a store.
  o.create_if_missing = write;
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

  void Header() {
    if (json_) return;
    absl::PrintF("%-8s %-8s %-27s %-18s %-10s %-10s %s\n", "POSITION", "VERSION", "OCCURRED",
                 "STREAM", "CHANNEL", "DIRECTION", "TYPE            SUBJECT / TEXT");
  }

  void Print(const store::StoredEvent& e) {
    auto ev = e.event();
    if (json_) {
      capnp::MallocMessageBuilder mb;
      mb.setRoot(ev);
      auto out = mb.getRoot<schema::Event>();
      if (e.content_state() == store::ContentState::kOpen) {
        out.setContent(e.content());
        out.disownSealedContent();
      }
      std::cout << json_codec_.Encode(out.asReader()) << "\n";
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
        what = "erasureRequest";
        break;
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

 private:
  static std::string Shorten(std::string s, size_t n) {
    for (char& c : s) {
      if (c == '\n' || c == '\t') c = ' ';
    }
    if (s.size() > n) s = s.substr(0, n - 3) + "...";
    return s;
  }
  bool json_;
  schema::EventJson json_codec_;
};

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

  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, /*write=*/true);
  if (!st.ok()) return FailOpen(st.status());
  store::EventStore& store = **st;

  uint64_t appended = 0, duplicates = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> streams;  // first, last position
  auto report = [&](const std::string& stream, const store::AppendResult& r) {
    (r.duplicate ? duplicates : appended) += r.positions.size();
    for (size_t i = 0; i < r.positions.size(); ++i) {
      if (c.json) {
        absl::PrintF("{\"stream\":%s,\"position\":%d,\"streamVersion\":%d,\"duplicate\":%s}\n",
                     JsonString(stream), r.positions[i], r.versions[i],
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
    if (c.json || events.size() <= store::kMaxEventsPerAppend) progress.Disable();
    for (size_t begin = 0; begin < events.size(); begin += store::kMaxEventsPerAppend) {
      progress.Update(begin, events.size());
      size_t end = std::min(events.size(), begin + store::kMaxEventsPerAppend);
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
    absl::PrintF("appended %d events (%d already stored); the log holds %d events\n", appended,
                 duplicates, store.Head());
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
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, false);
  if (!st.ok()) return FailOpen(st.status());
  store::ReadOptions ro;
  ro.open_content = !a.sealed;
  uint64_t from = a.from_set ? a.from : (a.backward ? UINT64_MAX : 0);
  auto events = (*st)->ReadStream(
      a.stream, from, a.limit,
      a.backward ? store::ReadDirection::kBackward : store::ReadDirection::kForward, ro);
  if (!events.ok()) return Fail(events.status());
  EventPrinter printer(c.json);
  printer.Header();
  for (const auto& e : *events) printer.Print(e);
  return kExitOk;
}

struct TailArgs {
  uint64_t from = 0;
  bool from_set = false;
  size_t limit = 20;
  bool sealed = false;
};

int Tail(const Common& c, const TailArgs& a) {
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, false);
  if (!st.ok()) return FailOpen(st.status());
  store::EventStore& store = **st;
  store::ReadOptions ro;
  ro.open_content = !a.sealed;
  uint64_t head = store.Head();
  uint64_t pos = a.from_set ? a.from : (head > a.limit ? head - a.limit : 0);
  if (pos > head) {
    return Fail(absl::OutOfRangeError(
        absl::StrCat("--from ", pos, " is past the log's end (", head, " events)")));
  }
  EventPrinter printer(c.json);
  printer.Header();
  while (pos < head) {
    auto events = store.ReadAll(pos, 1000, ro);
    if (!events.ok()) return Fail(events.status());
    for (const auto& e : *events) printer.Print(e);
    pos += events->size();
  }
  return kExitOk;
}

int Verify(const Common& c) {
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, false);
  if (!st.ok()) {
    if (c.json) absl::PrintF("{\"ok\":false,\"error\":%s}\n", JsonString(st.status().message()));
    return FailOpen(st.status());
  }
  Progress progress("verify");
  if (c.json) progress.Disable();
  auto report = (*st)->Verify([&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!report.ok()) {
    if (c.json) {
      absl::PrintF("{\"ok\":false,\"error\":%s}\n", JsonString(report.status().message()));
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
        : a.days <= 0  ? absl::StrCat("--days ", a.days, " is out of range: give 1 to ",
                                      workload::kMaxDays)
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
    absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, true);
    if (!st.ok()) return FailOpen(st.status());
    report = workload::LoadIntoStore(*generator, **st, on_progress);
    if (!report.ok() && report.status().code() == absl::StatusCode::kAlreadyExists && a.force) {
      // --force: the directory held another history; replace the store (and its default key).
      st->reset();
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::path(c.data) / "db", ec);
      if (c.master_key.empty()) std::filesystem::remove(std::filesystem::path(c.data) / "master.key", ec);
      if (ec) {
        return Fail(absl::UnavailableError(
            absl::StrCat("cannot remove the old store in ", c.data, ": ", ec.message())));
      }
      std::cerr << "ihs: --force: replaced the store in " << c.data << "\n";
      st = OpenStore(c, true);
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
        generator->fingerprint(), JsonString(where));
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

int Main(int argc, char** argv) {
  CLI::App app{"ihs: the interaction history store's command line"};
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 usage, 2 bad input, 3 version conflict, 4 integrity failure, "
      "5 store unavailable.");
  Common common;
  auto add_common = [&](CLI::App* sub, bool json) {
    sub->add_option("--data", common.data, "data directory of the store")->required();
    sub->add_option("--master-key", common.master_key,
                    "master key file (default: DATA/master.key)");
    if (json) sub->add_flag("--json", common.json, "print JSON (one object per line)");
  };

  AppendArgs append_args;
  auto* append = app.add_subcommand("append", "append events (JSON lines on stdin)");
  add_common(append, true);
  append->add_option("--stream", append_args.stream,
                     "append every event to this stream, as one atomic append");
  append->add_option("--expected-version", append_args.expected,
                     "N (the stream's last version), any, none (no stream yet) or exists");

  ReadArgs read_args;
  auto* read = app.add_subcommand("read", "read one stream");
  add_common(read, true);
  read->add_option("stream", read_args.stream, "stream id (party id)")->required();
  read->add_option("--from", read_args.from, "first version to read")
      ->each([&](const std::string&) { read_args.from_set = true; });
  read->add_flag("--backward", read_args.backward, "newest first");
  read->add_option("--limit", read_args.limit, "at most this many events (default 1000)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  read->add_flag("--sealed", read_args.sealed, "do not open personal content");

  TailArgs tail_args;
  auto* tail = app.add_subcommand("tail", "print the global log");
  add_common(tail, true);
  tail->add_option("--from", tail_args.from, "first position (default: the last --limit)")
      ->each([&](const std::string&) { tail_args.from_set = true; });
  tail->add_option("--limit", tail_args.limit, "without --from: how many of the last events")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  tail->add_flag("--sealed", tail_args.sealed, "do not open personal content");

  auto* verify = app.add_subcommand("verify", "recompute every hash and the Merkle tree");
  add_common(verify, true);
  auto* stats = app.add_subcommand("stats", "size, streams, root hash");
  add_common(stats, true);

  GenerateArgs gen_args;
  auto* generate = app.add_subcommand(
      "generate", "generate a realistic touchpoint history (docs/workload.md) into a store or file");
  generate->add_option("--data", common.data, "append to the store in this data directory");
  generate->add_option("--master-key", common.master_key,
                       "master key file (default: DATA/master.key)");
  generate->add_option("--out", gen_args.out, "write JSON lines to this file instead");
  generate->add_option("--parties", gen_args.parties, "parties of all kinds (10 to 5,000,000)")
      ->required();
  generate->add_option("--days", gen_args.days, "length of the history (1 to 3650)")->required();
  generate->add_option("--seed", gen_args.seed, "random seed (default 1): same seed, same history");
  generate->add_option("--events", gen_args.events, "stop after this many events (default: none)");
  generate->add_option("--truth", gen_args.truth, "write the ground truth (JSON) to this file");
  generate->add_flag("--force", gen_args.force,
                     "overwrite existing output files, or replace a store holding another history");
  generate->add_flag("--json", common.json, "print the summary as JSON");

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
  return kExitUsage;
}

}  // namespace
}  // namespace ihs::tools

int main(int argc, char** argv) { return ihs::tools::Main(argc, argv); }
