// Reads of the identity projection's state (identity.h): safe from any thread.
#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "projections/identity/clues.h"
#include "projections/identity/format.h"
#include "projections/identity/identity.h"
#include "projections/packed_record.h"

namespace ihs::projections::identity {

namespace {

absl::StatusOr<std::optional<Node>> GetNode(const StateView& view, const std::string& stream) {
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, view.Get(StreamKey(stream)));
  if (!v) return std::nullopt;
  IHS_ASSIGN_OR_RETURN(Node n, DecodeNode(*v));
  return n;
}

absl::StatusOr<PersonRec> GetPerson(const StateView& view, const std::string& id) {
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, view.Get(PersonKey(id)));
  if (!v) {
    PersonRec p;
    p.id = id;
    p.streams = {id};
    return p;
  }
  return DecodePerson(*v);
}

absl::Status NoSuchStream(const std::string& stream) {
  return absl::NotFoundError(absl::StrCat("no such stream in the identity projection: \"", stream,
                                          "\" (its events may not be applied yet)"));
}

// The pair's record as read: score and state from the record, clues scored again from the
// nodes, so that the evidence shown is the evidence that counted.
absl::Status FillPair(const StateView& view, const std::string& a, const std::string& b,
                      const PairRec& p, schema::PairScore::Builder out) {
  IHS_ASSIGN_OR_RETURN(std::optional<Node> na, GetNode(view, a));
  IHS_ASSIGN_OR_RETURN(std::optional<Node> nb, GetNode(view, b));
  out.setA(a);
  out.setB(b);
  out.setScore(p.score);
  out.setState(p.state);
  out.setSuggestionId(SuggestionId(a, b));
  out.setEvidenceAt(p.at);
  if (!na || !nb) return absl::OkStatus();
  absl::Status error;
  const Score s = ScorePair(*na, *nb, p, [&](absl::string_view key) {
    absl::StatusOr<std::optional<std::string>> v = view.Get(MembersKey(key));
    if (!v.ok()) {
      error.Update(v.status());
      return true;
    }
    if (!*v) return false;
    absl::StatusOr<Members> m = DecodeMembers(**v);
    if (!m.ok()) {
      error.Update(m.status());
      return true;
    }
    return m->count > kMaxIdentifying;
  });
  IHS_RETURN_IF_ERROR(error);
  auto clues = out.initClues(static_cast<unsigned>(s.clues.size()));
  for (unsigned i = 0; i < s.clues.size(); ++i) ToClue(s.clues[i], clues[i]);
  return absl::OkStatus();
}

}  // namespace

absl::Status Resolve(const StateView& view, const std::string& stream, capnp::MessageBuilder& out) {
  IHS_ASSIGN_OR_RETURN(std::optional<Node> node, GetNode(view, stream));
  if (!node) return NoSuchStream(stream);
  IHS_ASSIGN_OR_RETURN(PersonRec person, GetPerson(view, node->person));
  auto r = out.initRoot<schema::Resolution>();
  r.setStream(stream);
  r.setCheckpoint(view.checkpoint());
  ToPerson(person, r.initPerson());
  std::vector<std::pair<std::string, PairRec>> pairs;
  for (const std::string& other : node->partners) {
    const auto [a, b] = std::minmax(stream, other);
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, view.Get(PairKey('Q', a, b)));
    if (!v) continue;
    IHS_ASSIGN_OR_RETURN(PairRec p, DecodePair(*v));
    pairs.emplace_back(other, std::move(p));
  }
  auto list = r.initPairs(static_cast<unsigned>(pairs.size()));
  for (unsigned i = 0; i < pairs.size(); ++i) {
    const auto [a, b] = std::minmax(stream, pairs[i].first);
    IHS_RETURN_IF_ERROR(FillPair(view, a, b, pairs[i].second, list[i]));
  }
  return absl::OkStatus();
}

absl::Status ReadPerson(const StateView& view, const std::string& id, capnp::MessageBuilder& out) {
  IHS_ASSIGN_OR_RETURN(std::optional<Node> node, GetNode(view, id));
  if (!node) return NoSuchStream(id);
  IHS_ASSIGN_OR_RETURN(PersonRec person, GetPerson(view, node->person));
  ToPerson(person, out.initRoot<schema::Person>());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListPairs(
    const StateView& view, schema::PairState state, size_t limit, const std::string& after) {
  const char prefix = state == schema::PairState::PENDING ? 'R' : 'G';
  std::string from(1, prefix);
  if (!after.empty()) {
    from += after;
    from.push_back('\0');  // just past `after`
  }
  const std::string to(1, static_cast<char>(prefix + 1));
  std::vector<std::pair<std::string, std::string>> out;
  IHS_RETURN_IF_ERROR(view.Scan(from, to, [&](absl::string_view key, absl::string_view) {
    out.push_back(SplitPairKey(key.substr(1)));
    return out.size() < limit;
  }));
  return out;
}

absl::Status ReadPair(const StateView& view, const std::string& x, const std::string& y,
                      capnp::MessageBuilder& out) {
  const auto [a, b] = std::minmax(x, y);
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, view.Get(PairKey('Q', a, b)));
  if (!v) {
    return absl::NotFoundError(
        absl::StrCat("no evidence and no link joins \"", a, "\" and \"", b, "\""));
  }
  IHS_ASSIGN_OR_RETURN(PairRec p, DecodePair(*v));
  return FillPair(view, a, b, p, out.initRoot<schema::PairScore>());
}

absl::StatusOr<std::pair<std::string, std::string>> FindSuggestion(const StateView& view,
                                                                   const std::string& id) {
  std::optional<std::pair<std::string, std::string>> found;
  IHS_RETURN_IF_ERROR(view.Scan("G", "H", [&](absl::string_view key, absl::string_view) {
    auto pair = SplitPairKey(key.substr(1));
    if (SuggestionId(pair.first, pair.second) != id) return true;
    found = std::move(pair);
    return false;
  }));
  if (!found) {
    return absl::NotFoundError(absl::StrCat("no suggestion has the id \"", id,
                                            "\" (`ihs identity suggestions` lists them)"));
  }
  return *found;
}

absl::StatusOr<std::vector<std::string>> FindHandle(const StateView& view,
                                                    const std::string& blind_key,
                                                    schema::HandleKind kind,
                                                    const std::string& address) {
  IHS_ASSIGN_OR_RETURN(std::string normal, NormalizeHandle(kind, address));
  const ClueKind clue = ClueKindOf(kind);
  if (clue == ClueKind::UNSPECIFIED) {
    return absl::InvalidArgumentError("handles of this kind are not indexed");
  }
  const BlindIndex index(blind_key);
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> v,
                       view.Get(MembersKey(index.ClueKey(clue, normal))));
  if (!v) return std::vector<std::string>{};
  IHS_ASSIGN_OR_RETURN(Members m, DecodeMembers(*v));
  return m.streams;
}

absl::Status ForEachPerson(const StateView& view,
                           const std::function<bool(schema::Person::Reader)>& visit) {
  absl::Status error;
  IHS_RETURN_IF_ERROR(view.Scan("P", "Q", [&](absl::string_view, absl::string_view value) {
    absl::StatusOr<PersonRec> p = DecodePerson(value);
    if (!p.ok()) {
      error = p.status();
      return false;
    }
    capnp::MallocMessageBuilder m;
    ToPerson(*p, m.initRoot<schema::Person>());
    return visit(m.getRoot<schema::Person>().asReader());
  }));
  return error;
}

absl::Status ReadStats(const StateView& view, capnp::MessageBuilder& out) {
  Counters c;
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, view.Get(kCountersKey));
  if (v) {
    IHS_ASSIGN_OR_RETURN(c, DecodeCounters(*v));
  }
  uint64_t multi = 0, in_multi = 0, largest = 1, pending = 0, suggested = 0;
  IHS_RETURN_IF_ERROR(ForEachPerson(view, [&](schema::Person::Reader p) {
    ++multi;
    in_multi += p.getStreams().size();
    largest = std::max<uint64_t>(largest, p.getStreams().size());
    return true;
  }));
  IHS_RETURN_IF_ERROR(view.Scan("R", "S", [&](absl::string_view, absl::string_view) {
    ++pending;
    return true;
  }));
  IHS_RETURN_IF_ERROR(view.Scan("G", "H", [&](absl::string_view, absl::string_view) {
    ++suggested;
    return true;
  }));
  auto s = out.initRoot<schema::IdentityStats>();
  s.setStreams(c.streams);
  s.setPersons(c.streams - in_multi + multi);
  s.setMultiStreamPersons(multi);
  s.setLargestPerson(c.streams == 0 ? 0 : largest);
  s.setExplicitLinks(c.explicit_links);
  s.setInferredLinks(c.inferred_links);
  s.setUnlinks(c.unlinks);
  s.setPending(pending);
  s.setSuggestions(suggested);
  s.setCheckpoint(view.checkpoint());
  return absl::OkStatus();
}

std::optional<schema::HandleKind> GuessHandleKind(absl::string_view h) {
  using schema::HandleKind;
  if (absl::StartsWith(h, "@")) return HandleKind::TWITTER;
  if (absl::StartsWith(h, "fb:")) return HandleKind::FACEBOOK;
  if (absl::StartsWith(h, "yt:")) return HandleKind::YOUTUBE;
  if (absl::StartsWith(h, "forum:")) return HandleKind::FORUM;
  if (absl::StartsWith(h, "app:")) return HandleKind::APP_USER;
  if (absl::StrContains(h, "@")) return HandleKind::EMAIL;
  if (!h.empty() && (h[0] == '+' || absl::ascii_isdigit(static_cast<unsigned char>(h[0])))) {
    return HandleKind::PHONE;
  }
  if (absl::StrContains(h, ",")) return HandleKind::POSTAL;
  return std::nullopt;
}

}  // namespace ihs::projections::identity
