// The timeline's commands (docs/projections.md): ihs timeline, one party's touchpoints across
// channels; ihs audit replay, a party's events and timeline as the log held them at a moment.
#include <capnp/message.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "projections/community/community.h"
#include "projections/timeline/replay.h"
#include "projections/timeline/timeline.h"
#include "schema/community.capnp.h"
#include "schema/json.h"
#include "store/audit.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/event_printer.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/projection_source.h"
#include "tools/ihs/timeline_html.h"

namespace ihs::tools {
namespace {

struct TimelineArgs {
  std::string party;
  std::string from, to;
  std::vector<std::string> channels;
  uint32_t limit = 100;
  std::string cursor;
  std::string html;
  bool person = false;
};

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

std::string Duration(int64_t seconds) {
  if (seconds < 3600) return absl::StrCat(seconds / 60, "m");
  if (seconds < 86400) return absl::StrCat(seconds / 3600, "h", (seconds % 3600) / 60, "m");
  return absl::StrCat(seconds / 86400, "d", (seconds % 86400) / 3600, "h");
}

// A thread as a person reads it: its name, or for a thread that a message opened (the timeline
// names it "event:" and the message's id) "#" and the id's last six hex digits.
std::string ThreadLabel(absl::string_view thread) {
  if (!absl::StartsWith(thread, "event:")) return std::string(thread);
  return absl::StrCat("#", thread.substr(thread.size() >= 6 ? thread.size() - 6 : 0));
}

// What an entry says: its subject, else the first words of its text, quoted and cut to 48
// characters at a character boundary; empty when the content is not opened or erased.
std::string Gist(schema::TimelineEntry::Reader e) {
  std::string text(e.getSubject().size() > 0 ? e.getSubject().cStr() : e.getText().cStr());
  for (char& ch : text) {
    if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
  }
  if (text.empty()) return "";
  constexpr size_t kMax = 48;
  if (text.size() > kMax) {
    size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = absl::StrCat(text.substr(0, cut), "…");
  }
  return absl::StrCat("\"", text, "\"");
}

// What the community projection says is at risk for the party's person; nullopt if it cannot
// say (a store or an ihsd without the projection, a party it does not know).
std::optional<AtRisk> ReadAtRisk(ProjectionSource& source, const std::string& party) {
  namespace cm = projections::community;
  capnp::MallocMessageBuilder m;
  const int64_t now = absl::ToUnixMicros(absl::Now());
  absl::Status s = source.Read(
      cm::kName,
      [&](const projections::StateView& view, store::EventStore*) {
        return cm::ReadCard(view, party, now, m);
      },
      [&](client::Client& client, uint64_t min) { return client.Community(party, now, min, m); });
  if (!s.ok()) return std::nullopt;
  auto card = m.getRoot<schema::CommunityCard>();
  AtRisk r;
  r.risk = card.getRisk();
  r.chance = card.getPublicChance();
  r.reach_per_post =
      card.getPosts() == 0 ? 0 : static_cast<double>(card.getReach()) / card.getPosts();
  return r;
}

void PrintTimeline(const std::string& party, schema::TimelineSummary::Reader summary,
                   schema::TimelinePage::Reader page, const AtRisk* at_risk = nullptr) {
  // No median of nothing: "median —" when no message was answered.
  const std::string median =
      summary.getAnswered() == 0
          ? "median —"
          : absl::StrCat("median ", Duration(summary.getMedianResponseSeconds()), ", ",
                         Duration(summary.getMedianResponseServiceSeconds()), " in service hours");
  absl::PrintF("%s (%s): %s, %d open, %d answered (%s), %s\n", party,
               schema::EnumName(summary.getKind()),
               Counted(summary.getEntries(), "touchpoint", "touchpoints"), summary.getOpen().size(),
               summary.getAnswered(), median,
               Counted(summary.getChannelSwitches(), "channel switch", "channel switches"));
  if (at_risk != nullptr && summary.getOpen().size() > 0) {
    absl::PrintF(
        "at risk: an audience of %.0f if an open message is taken public (chance %.2f, %.0f "
        "reached per post): ihs community %s\n",
        at_risk->risk, at_risk->chance, at_risk->reach_per_post, party);
  }
  if (page.hasStreams()) {
    std::vector<std::string> streams;
    for (auto s : page.getStreams()) streams.emplace_back(s.cStr());
    absl::PrintF("the whole person: %s\n", absl::StrJoin(streams, ", "));
  }
  for (auto e : page.getEntries()) {
    std::string note;
    if (e.getParty().size() > 0 && e.getParty() != page.getParty()) {
      note = absl::StrCat("[", e.getParty().cStr(), "]");
    }
    if (e.getResponse().isOpen()) {
      absl::StrAppend(&note, note.empty() ? "" : " ", "OPEN, waiting ",
                      Duration(e.getWaitingSeconds()));
      if (at_risk != nullptr) absl::StrAppendFormat(&note, ", %.0f at risk", at_risk->risk);
    } else if (e.getResponse().isAnswered()) {
      auto ans = e.getResponse().getAnswered();
      absl::StrAppend(&note, note.empty() ? "" : " ", "answered on ",
                      schema::EnumName(ans.getReplyChannel()), " after ",
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
    absl::PrintF("%s  %-10s %-8s %-14s %-10s %s%s\n", schema::FormatMicros(e.getOccurredAt()),
                 schema::EnumName(e.getChannel()), schema::EnumName(e.getDirection()),
                 schema::EnumName(e.getType()), ThreadLabel(e.getThread().cStr()), Gist(e),
                 note.empty() ? "" : absl::StrCat("  ", note));
  }
  if (page.getNextCursor().size() > 0) {
    absl::PrintF("more: --cursor %s\n", page.getNextCursor().cStr());
  }
}

// The most entries `--html` draws: beyond, the page says where it stopped.
constexpr size_t kHtmlMaxEntries = 10000;

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
  // The party's person (docs/identity.md): named on every timeline, and with --person its
  // streams merged in (ihsd merges them itself for TimelineQuery.person).
  std::vector<std::string> person_streams;
  std::string person_id;
  {
    absl::StatusOr<std::optional<PersonOfStream>> p = PersonOf(**source, q.party);
    if (!p.ok()) return Fail(p.status());
    if (*p) {
      person_id = (*p)->id;
      person_streams = (*p)->streams;
    }
  }
  if (a.person && c.connect.empty()) q.also = person_streams;
  absl::Status read = (*source)->Read(
      projections::timeline::kName,
      [&](const projections::StateView& view, store::EventStore* store) {
        IHS_RETURN_IF_ERROR(
            projections::timeline::ReadSummary(view, q.party, q.as_of, summary_msg));
        return projections::timeline::ReadPage(view, q, page_msg, store);
      },
      [&](client::Client& client, uint64_t min_position) {
        client::Client::TimelineOptions o;
        o.open_content = true;
        o.min_position = min_position;
        o.person = a.person;
        IHS_RETURN_IF_ERROR(client.Summary(q.party, q.as_of, min_position, summary_msg));
        return client.Timeline(q, o, page_msg);
      });
  if (!read.ok()) return Fail(read);
  auto summary = summary_msg.getRoot<schema::TimelineSummary>();
  auto page = page_msg.getRoot<schema::TimelinePage>();
  // With open messages, what is at risk if the person takes one public (a read of the community
  // projection, joined here; an ihsd or a store without it shows the timeline alone).
  std::optional<AtRisk> at_risk;
  if (summary.getOpen().size() > 0) at_risk = ReadAtRisk(**source, q.party);
  const AtRisk* risk = at_risk ? &*at_risk : nullptr;
  if (!a.html.empty()) {
    // The page draws every entry of the range, not only this page's: the following pages are
    // read and joined, up to kHtmlMaxEntries (the page says so when it stops there).
    std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> more;
    std::string cursor = page.getNextCursor().cStr();
    size_t total = page.getEntries().size();
    while (!cursor.empty() && total < kHtmlMaxEntries) {
      projections::timeline::Query next = q;
      next.cursor = cursor;
      next.limit = projections::timeline::kMaxPageEntries;
      auto m = std::make_unique<capnp::MallocMessageBuilder>();
      absl::Status r = (*source)->Read(
          projections::timeline::kName,
          [&](const projections::StateView& view, store::EventStore* store) {
            return projections::timeline::ReadPage(view, next, *m, store);
          },
          [&](client::Client& client, uint64_t min_position) {
            client::Client::TimelineOptions o;
            o.open_content = true;
            o.min_position = min_position;
            o.person = a.person;
            return client.Timeline(next, o, *m);
          });
      if (!r.ok()) return Fail(r);
      auto p = m->getRoot<schema::TimelinePage>().asReader();
      total += p.getEntries().size();
      cursor = p.getNextCursor().cStr();
      more.push_back(std::move(m));
    }
    capnp::MallocMessageBuilder joined;
    auto all = joined.initRoot<schema::TimelinePage>();
    all.setParty(page.getParty());
    all.setCheckpoint(page.getCheckpoint());
    if (page.hasStreams()) all.setStreams(page.getStreams());
    all.setNextCursor(cursor);
    auto entries = all.initEntries(static_cast<unsigned>(std::min(total, kHtmlMaxEntries)));
    unsigned i = 0;
    auto add = [&](schema::TimelinePage::Reader p) {
      for (auto e : p.getEntries()) {
        if (i < entries.size()) entries.setWithCaveats(i++, e);
      }
    };
    add(page.asReader());
    for (const auto& m : more) add(m->getRoot<schema::TimelinePage>().asReader());
    absl::Status hs = WriteTimelineHtml(a.html, summary, all.asReader(), risk);
    if (!hs.ok()) return Fail(hs);
  }
  if (c.json) {
    nlohmann::json j = TimelinePageJson(summary, page);
    if (!person_id.empty()) j["person"] = {{"id", person_id}, {"streams", person_streams}};
    if (risk != nullptr) {
      j["atRisk"] = {{"audience", risk->risk},
                     {"publicChance", risk->chance},
                     {"reachPerPost", risk->reach_per_post}};
    }
    std::cout << JsonLine(j) << "\n";
    return kExitOk;
  }
  PrintTimeline(q.party, summary, page, risk);
  if (person_streams.size() > 1 && !a.person) {
    absl::PrintF("%s is one of the streams of person %s (%s): --person shows them all\n", q.party,
                 person_id, absl::StrJoin(person_streams, ", "));
  }
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
    return Fail(UsageError("give exactly one of --as-of TIME and --position P"));
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
    nlohmann::json j = TimelinePageJson(summary, page);
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

}  // namespace

void RegisterTimelineCommands(Cli& cli) {
  Common& common = cli.common();
  auto tl_args = std::make_shared<TimelineArgs>();
  auto* timeline = cli.app().add_subcommand(
      "timeline", "one party's touchpoints across channels, with responses and switches");
  cli.AddWhere(timeline);
  timeline->add_option("party", tl_args->party, "party id (stream id)")->required();
  timeline->add_option("--from", tl_args->from, "first moment (RFC 3339), by occurred_at");
  timeline->add_option("--to", tl_args->to, "end (RFC 3339, exclusive)");
  timeline->add_option("--channel", tl_args->channels, "only these channels (repeat)");
  timeline->add_option("--limit", tl_args->limit, "entries per page (1 to 1000, default 100)")
      ->check(kWholeNumber);
  timeline->add_option("--cursor", tl_args->cursor, "the next page: a previous page's cursor");
  timeline->add_option("--html", tl_args->html,
                       "also write the page as one self-contained HTML file (lanes per channel)");
  timeline->add_flag("--person", tl_args->person,
                     "the party's whole person: the touchpoints of every linked stream too");
  cli.OnRun(timeline, [&common, tl_args] { return Timeline(common, *tl_args); });

  auto replay_args = std::make_shared<ReplayArgs>();
  auto* audit =
      cli.Group("audit", "signed tree heads and proofs: hold the store to what it published");
  auto* audit_replay = audit->add_subcommand(
      "replay", "a party's events and timeline as they were known at a moment");
  cli.AddData(audit_replay, true);
  audit_replay->add_option("party", replay_args->party, "party id (stream id)")->required();
  audit_replay->add_option("--as-of", replay_args->as_of,
                           "the moment (RFC 3339): events recorded at or before it");
  audit_replay
      ->add_option("--position", replay_args->position,
                   "or: the log up to and including this position")
      ->check(kWholeNumber);
  audit_replay
      ->add_option("--limit", replay_args->limit, "timeline entries (1 to 1000, default 100)")
      ->check(kWholeNumber);
  audit_replay->add_option("--cursor", replay_args->cursor, "the next page of the timeline");
  cli.OnRun(audit_replay, [&common, replay_args] { return AuditReplay(common, *replay_args); });
}

}  // namespace ihs::tools
