// The segments projection's reads (segments.h).
#include <capnp/message.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "projections/packed_record.h"
#include "projections/segments/segments.h"
#include "projections/segments/state.h"

namespace ihs::projections::segments {
namespace {

constexpr char kWhat[] = "segments";

std::string Time(int64_t us) {
  return absl::FormatTime("%E4Y-%m-%dT%H:%M:%SZ", absl::FromUnixMicros(us), absl::UTCTimeZone());
}

// The segment as the projection has applied it: kNotFound if never defined, kInvalidArgument
// for a moment before its first definition.
absl::StatusOr<const Segment*> FindSegment(const Definitions& defs, const std::string& name,
                                           int64_t as_of) {
  const Segment* s = defs.Find(name);
  if (s == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no segment named \"", name, "\" (ihs segments list shows them)"));
  }
  if (as_of != 0 && as_of < s->versions.front().recorded_at) {
    return absl::InvalidArgumentError(absl::StrCat("segment ", name, " was first defined at ",
                                                   Time(s->versions.front().recorded_at),
                                                   ": --as-of ", Time(as_of), " is before it"));
  }
  return s;
}

// A stream's record: kNotFound if the log has not named it.
absl::StatusOr<StreamRec> StreamOf(const StateView& view, const std::string& party) {
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, view.Get(StreamKey(party)));
  if (!bytes) return absl::NotFoundError(absl::StrCat("no party \"", party, "\" in the log"));
  return DecodeStream(*bytes);
}

absl::StatusOr<PersonRec> PersonOf(const StateView& view, const std::string& person) {
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, view.Get(PersonKey(person)));
  if (!bytes) {
    PersonRec p;
    p.streams = {person};
    return p;
  }
  return DecodePerson(*bytes);
}

// Owns one stored transition and its reader.
struct StoredTransition {
  std::unique_ptr<PackedRecord> record;
  schema::Transition::Reader reader;
};

absl::StatusOr<StoredTransition> ReadTransition(const StateView& view, uint64_t seq) {
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, view.Get(FeedKey(seq)));
  if (!bytes) return absl::DataLossError("segments state: a transition is missing");
  StoredTransition t;
  t.record = std::make_unique<PackedRecord>(*bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(t.reader, t.record->Root<schema::Transition>());
  return t;
}

// The seqs of the person's transitions in the segment, in order.
absl::StatusOr<std::vector<uint64_t>> HistoryOf(const StateView& view, const std::string& segment,
                                                const std::string& person) {
  const std::string prefix = HistoryPrefix(segment, person);
  std::string end = prefix;
  end.back() = '\x01';
  std::vector<uint64_t> seqs;
  IHS_RETURN_IF_ERROR(view.Scan(prefix, end, [&](absl::string_view key, absl::string_view) {
    if (key.size() == prefix.size() + 8) seqs.push_back(GetBigEndian64(key.data() + prefix.size()));
    return true;
  }));
  return seqs;
}

// The last transition at or before `as_of`, if any.
absl::StatusOr<std::optional<StoredTransition>> LastAt(const StateView& view,
                                                       const std::vector<uint64_t>& seqs,
                                                       int64_t as_of) {
  std::optional<StoredTransition> last;
  for (uint64_t seq : seqs) {
    IHS_ASSIGN_OR_RETURN(StoredTransition t, ReadTransition(view, seq));
    if (t.reader.getAt() > as_of) break;
    last = std::move(t);
  }
  return last;
}

void SetMembership(schema::Membership::Builder b, const std::string& segment,
                   const std::string& person, int64_t since, uint32_t version) {
  b.setSegment(segment);
  b.setPerson(person);
  b.setSince(since);
  b.setVersion(version);
}

}  // namespace

absl::StatusOr<Definitions> ReadAppliedDefinitions(const StateView& view) {
  Definitions defs;
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> n, view.Get(kDefinitionCountKey));
  const uint64_t count = n && n->size() == 8 ? GetBigEndian64(n->data()) : 0;
  for (uint64_t i = 0; i < count; ++i) {
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, view.Get(DefinitionKey(i)));
    if (!bytes) return absl::DataLossError("segments state: a definition is missing");
    PackedRecord rec(*bytes, kWhat);
    IHS_ASSIGN_OR_RETURN(schema::Event::Reader ev, rec.Root<schema::Event>());
    defs.Apply(ev);
  }
  return defs;
}

absl::Status ReadMembers(const StateView& view, const std::string& segment, int64_t as_of,
                         const std::string& after, size_t limit, capnp::MessageBuilder& out) {
  IHS_ASSIGN_OR_RETURN(Definitions defs, ReadAppliedDefinitions(view));
  IHS_RETURN_IF_ERROR(FindSegment(defs, segment, as_of).status());
  limit = std::min(limit, kMaxMembersPage);
  struct Row {
    std::string person;
    int64_t since = 0;
    uint32_t version = 0;
  };
  std::vector<Row> rows;
  bool more = false;
  uint64_t count = 0;
  const std::string prefix = MemberKey(segment, "");
  if (as_of == 0) {
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> c, view.Get(CountKey(segment)));
    count = c && c->size() == 8 ? GetBigEndian64(c->data()) : 0;
    std::string end = prefix;
    end.back() = '\x01';
    absl::Status error;
    IHS_RETURN_IF_ERROR(view.Scan(after.empty() ? prefix : MemberKey(segment, after), end,
                                  [&](absl::string_view key, absl::string_view value) {
                                    std::string person(key.substr(prefix.size()));
                                    if (!after.empty() && person == after) return true;
                                    if (rows.size() == limit) {
                                      more = true;
                                      return false;
                                    }
                                    absl::StatusOr<MemberRec> m = DecodeMember(value);
                                    if (!m.ok()) {
                                      error = m.status();
                                      return false;
                                    }
                                    rows.push_back({std::move(person), m->since, m->version});
                                    return true;
                                  }));
    IHS_RETURN_IF_ERROR(error);
  } else {
    // Every person's last transition at or before the moment.
    const std::string hprefix = absl::StrCat("H", segment, absl::string_view("\0", 1));
    std::string end = hprefix;
    end.back() = '\x01';
    std::map<std::string, std::vector<uint64_t>> history;
    IHS_RETURN_IF_ERROR(view.Scan(hprefix, end, [&](absl::string_view key, absl::string_view) {
      if (key.size() < hprefix.size() + 9) return true;
      const absl::string_view rest = key.substr(hprefix.size());
      history[std::string(rest.substr(0, rest.size() - 9))].push_back(
          GetBigEndian64(rest.data() + rest.size() - 8));
      return true;
    }));
    for (const auto& [person, seqs] : history) {
      IHS_ASSIGN_OR_RETURN(std::optional<StoredTransition> last, LastAt(view, seqs, as_of));
      if (!last || !last->reader.getEntered()) continue;
      ++count;
      if (!after.empty() && person <= after) continue;
      if (rows.size() == limit) {
        more = true;
        continue;
      }
      rows.push_back({person, last->reader.getAt(), last->reader.getVersion()});
    }
  }
  auto page = out.initRoot<schema::MemberPage>();
  page.setSegment(segment);
  page.setAsOf(as_of);
  page.setCount(count);
  page.setMore(more);
  auto members = page.initMembers(static_cast<unsigned>(rows.size()));
  for (unsigned i = 0; i < rows.size(); ++i) {
    SetMembership(members[i], segment, rows[i].person, rows[i].since, rows[i].version);
  }
  return absl::OkStatus();
}

absl::Status ReadPartySegments(const StateView& view, const std::string& party, int64_t as_of,
                               capnp::MessageBuilder& out) {
  IHS_ASSIGN_OR_RETURN(StreamRec s, StreamOf(view, party));
  IHS_ASSIGN_OR_RETURN(PersonRec p, PersonOf(view, s.person));
  std::vector<MemberRec> members;
  if (as_of == 0) {
    members = p.members;
  } else {
    IHS_ASSIGN_OR_RETURN(Definitions defs, ReadAppliedDefinitions(view));
    for (const auto& [name, seg] : defs.all()) {
      IHS_ASSIGN_OR_RETURN(std::vector<uint64_t> seqs, HistoryOf(view, name, s.person));
      IHS_ASSIGN_OR_RETURN(std::optional<StoredTransition> last, LastAt(view, seqs, as_of));
      if (last && last->reader.getEntered()) {
        members.push_back({name, last->reader.getAt(), last->reader.getVersion()});
      }
    }
  }
  auto r = out.initRoot<schema::PartySegments>();
  r.setParty(party);
  r.setPerson(s.person);
  auto streams = r.initStreams(static_cast<unsigned>(p.streams.size()));
  for (unsigned i = 0; i < p.streams.size(); ++i) streams.set(i, p.streams[i]);
  r.setAsOf(as_of);
  auto list = r.initSegments(static_cast<unsigned>(members.size()));
  for (unsigned i = 0; i < members.size(); ++i) {
    SetMembership(list[i], members[i].segment, s.person, members[i].since, members[i].version);
  }
  return absl::OkStatus();
}

absl::Status ReadWhy(const StateView& view, const std::string& party, const std::string& segment,
                     int64_t as_of, capnp::MessageBuilder& out) {
  IHS_ASSIGN_OR_RETURN(Definitions defs, ReadAppliedDefinitions(view));
  IHS_RETURN_IF_ERROR(FindSegment(defs, segment, as_of).status());
  IHS_ASSIGN_OR_RETURN(StreamRec s, StreamOf(view, party));
  IHS_ASSIGN_OR_RETURN(std::vector<uint64_t> seqs, HistoryOf(view, segment, s.person));
  std::vector<StoredTransition> shown;
  for (uint64_t seq : seqs) {
    IHS_ASSIGN_OR_RETURN(StoredTransition t, ReadTransition(view, seq));
    if (as_of != 0 && t.reader.getAt() > as_of) break;
    shown.push_back(std::move(t));
  }
  auto r = out.initRoot<schema::SegmentWhy>();
  r.setParty(party);
  r.setPerson(s.person);
  r.setSegment(segment);
  r.setAsOf(as_of);
  r.setMember(!shown.empty() && shown.back().reader.getEntered());
  auto list = r.initTransitions(static_cast<unsigned>(shown.size()));
  for (unsigned i = 0; i < shown.size(); ++i) list.setWithCaveats(i, shown[i].reader);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> NextSeq(const StateView& view) {
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> n, view.Get(kNextSeqKey));
  return n && n->size() == 8 ? GetBigEndian64(n->data()) : 0;
}

absl::Status ReadTransitions(const StateView& view, uint64_t from_seq,
                             const std::set<std::string>& segments, size_t max, size_t max_bytes,
                             capnp::MessageBuilder& out) {
  std::vector<std::string> kept;  // the packed records
  size_t bytes = 0;
  uint64_t scanned = from_seq;
  absl::Status error;
  IHS_RETURN_IF_ERROR(
      view.Scan(FeedKey(from_seq), "G", [&](absl::string_view key, absl::string_view value) {
        if (kept.size() == max || bytes >= max_bytes) return false;
        PackedRecord rec(value, kWhat);
        absl::StatusOr<schema::Transition::Reader> t = rec.Root<schema::Transition>();
        if (!t.ok()) {
          error = t.status();
          return false;
        }
        if (segments.empty() || segments.count(t->getSegment().cStr())) {
          kept.emplace_back(value);
          bytes += value.size();
        }
        scanned = GetBigEndian64(key.data() + 1) + 1;
        return true;
      }));
  IHS_RETURN_IF_ERROR(error);
  auto page = out.initRoot<schema::TransitionPage>();
  page.setScannedTo(scanned);
  auto list = page.initTransitions(static_cast<unsigned>(kept.size()));
  for (unsigned i = 0; i < kept.size(); ++i) {
    PackedRecord rec(kept[i], kWhat);
    IHS_ASSIGN_OR_RETURN(schema::Transition::Reader t, rec.Root<schema::Transition>());
    list.setWithCaveats(i, t);
  }
  return absl::OkStatus();
}

absl::Status ForEachTransition(const StateView& view, uint64_t from_seq,
                               const std::function<bool(schema::Transition::Reader)>& visit) {
  absl::Status error;
  IHS_RETURN_IF_ERROR(
      view.Scan(FeedKey(from_seq), "G", [&](absl::string_view, absl::string_view value) {
        PackedRecord rec(value, kWhat);
        absl::StatusOr<schema::Transition::Reader> t = rec.Root<schema::Transition>();
        if (!t.ok()) {
          error = t.status();
          return false;
        }
        return visit(*t);
      }));
  return error;
}

}  // namespace ihs::projections::segments
