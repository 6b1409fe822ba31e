#include "projections/identity/links.h"

#include <capnp/message.h>
#include <sodium.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "projections/identity/identity.h"
#include "projections/packed_record.h"
#include "store/governance.h"

namespace ihs::projections::identity {

namespace {

absl::Status CheckStream(store::EventStore& store, const std::string& stream, const char* which,
                         bool linking) {
  if (stream.empty()) return absl::InvalidArgumentError(absl::StrCat(which, " stream is empty"));
  if (store::IsSystemStream(stream)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", stream, "\" is a system stream, not a party's"));
  }
  absl::StatusOr<store::StreamInfo> info = store.GetStreamInfo(stream);
  if (absl::IsNotFound(info.status())) {
    return absl::InvalidArgumentError(absl::StrCat("no such stream: \"", stream, "\""));
  }
  IHS_RETURN_IF_ERROR(info.status());
  if (linking && info->erased_position) {
    return absl::FailedPreconditionError(absl::StrCat("\"", stream, "\" was erased at position ",
                                                      *info->erased_position,
                                                      ": an erased party is linked to nobody"));
  }
  return absl::OkStatus();
}

// The links of the person that join a and b directly, and all the person's links.
absl::StatusOr<std::pair<bool, std::vector<std::string>>> DirectLink(const StateView& view,
                                                                     const std::string& a,
                                                                     const std::string& b) {
  capnp::MallocMessageBuilder m;
  IHS_RETURN_IF_ERROR(ReadPerson(view, a, m));
  bool direct = false;
  std::vector<std::string> links;
  for (auto l : m.getRoot<schema::Person>().asReader().getLinks()) {
    const std::string x = l.getA(), y = l.getB();
    if ((x == a && y == b) || (x == b && y == a)) direct = true;
    links.push_back(absl::StrCat(x, "~", y));
  }
  return std::make_pair(direct, links);
}

absl::StatusOr<uint64_t> Append(store::EventStore& store, const LinkRequest& r,
                                const schema::PairScore::Reader* score) {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<schema::Event>();
  std::string id(16, '\0');
  randombytes_buf(id.data(), id.size());
  e.setId(AsData(id));
  e.setStreamId(kIdentityStream);
  e.setOccurredAt(absl::ToUnixMicros(absl::Now()));
  e.setSourceSystem(r.source_system);
  auto l = e.initIdentityLink();
  auto parties = l.initParties(2);
  parties.set(0, r.a);
  parties.set(1, r.b);
  l.setUnlink(r.unlink);
  l.setReason(r.reason);
  l.setRequestedBy(r.requested_by);
  l.setConfidence(1.0f);
  if (score != nullptr) {
    l.setConfidence(score->getScore());
    l.setClues(score->getClues());
  }
  IHS_ASSIGN_OR_RETURN(
      store::AppendResult res,
      store.Append({kIdentityStream, store::ExpectedVersion::Any(), {e.asReader()}}));
  return res.positions.at(0);
}

absl::StatusOr<uint64_t> Checked(store::EventStore& store, const StateView& view,
                                 const LinkRequest& r, const schema::PairScore::Reader* score) {
  if (r.reason.empty()) {
    return absl::InvalidArgumentError(
        "a reason is required: it is kept with the link for the trail");
  }
  if (r.requested_by.empty()) return absl::InvalidArgumentError("requestedBy is empty");
  if (r.a == r.b && !r.a.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", r.a, "\" cannot be linked with itself"));
  }
  IHS_RETURN_IF_ERROR(CheckStream(store, r.a, "the first", !r.unlink));
  IHS_RETURN_IF_ERROR(CheckStream(store, r.b, "the second", !r.unlink));
  if (r.unlink) {
    absl::StatusOr<std::pair<bool, std::vector<std::string>>> d = DirectLink(view, r.a, r.b);
    if (absl::IsNotFound(d.status())) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", r.a, "\" and \"", r.b, "\" are not linked"));
    }
    IHS_RETURN_IF_ERROR(d.status());
    if (!d->first) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", r.a, "\" and \"", r.b, "\" are not linked to each other",
          d->second.empty()
              ? std::string()
              : absl::StrCat(" (the links of the person: ", absl::StrJoin(d->second, ", "), ")")));
    }
  }
  return Append(store, r, score);
}

}  // namespace

absl::StatusOr<uint64_t> AppendLink(store::EventStore& store, const StateView& view,
                                    const LinkRequest& request) {
  return Checked(store, view, request, nullptr);
}

absl::StatusOr<uint64_t> DecideSuggestion(store::EventStore& store, const StateView& view,
                                          const std::string& id, bool accept,
                                          const std::string& reason,
                                          const std::string& requested_by) {
  absl::StatusOr<std::pair<std::string, std::string>> pair = FindSuggestion(view, id);
  if (absl::IsNotFound(pair.status())) return absl::InvalidArgumentError(pair.status().message());
  IHS_RETURN_IF_ERROR(pair.status());
  capnp::MallocMessageBuilder m;
  IHS_RETURN_IF_ERROR(ReadPair(view, pair->first, pair->second, m));
  const schema::PairScore::Reader score = m.getRoot<schema::PairScore>();
  LinkRequest r;
  r.a = pair->first;
  r.b = pair->second;
  r.reason =
      reason.empty() ? absl::StrCat(accept ? "accepted" : "rejected", " suggestion ", id) : reason;
  r.requested_by = requested_by;
  if (accept) return Checked(store, view, r, &score);
  // A rejection: the pair is declared two people. No link joins them, so it is not an unlink of
  // a link but the same event, which the projection reads as "distinct".
  if (r.requested_by.empty()) return absl::InvalidArgumentError("requestedBy is empty");
  r.unlink = true;
  return Append(store, r, &score);
}

absl::StatusOr<std::vector<std::string>> PersonStreams(const StateView& view,
                                                       const std::string& stream) {
  capnp::MallocMessageBuilder m;
  absl::Status s = ReadPerson(view, stream, m);
  if (absl::IsNotFound(s)) return std::vector<std::string>{stream};
  IHS_RETURN_IF_ERROR(s);
  std::vector<std::string> out;
  for (auto x : m.getRoot<schema::Person>().asReader().getStreams()) out.emplace_back(x.cStr());
  return out;
}

absl::StatusOr<std::pair<std::vector<uint64_t>, std::vector<std::string>>> ErasePerson(
    store::EventStore& store, const StateView& view, const std::string& party,
    const std::string& reason, const std::string& requested_by) {
  IHS_ASSIGN_OR_RETURN(std::vector<std::string> streams, PersonStreams(view, party));
  IHS_ASSIGN_OR_RETURN(std::vector<uint64_t> positions,
                       store::EraseAll(store, streams, reason, requested_by));
  return std::make_pair(std::move(positions), std::move(streams));
}

}  // namespace ihs::projections::identity
