// Session: reads of projections (timeline, identity) and the decisions that append to them
// (identity links, segment definitions) (server/internal/session.h).
#include <set>

#include "schema/community.capnp.h"
#include "server/internal/session.h"

namespace ihs::server::internal {

kj::Promise<void> Session::Link(LinkCtx c) {
  projections::identity::LinkRequest r;
  r.a = c.getParams().getA();
  r.b = c.getParams().getB();
  r.unlink = c.getParams().getUnlink();
  r.reason = c.getParams().getReason();
  r.requested_by = name_;
  store::EventStore* store = &shared_.store;
  return Control(c, absl::OkStatus(),
                 absl::StrCat(r.unlink ? "unlinks " : "links ", r.a, " and ", r.b),
                 WithIdentity([store, r](const projections::StateView& view) {
                   return projections::identity::AppendLink(*store, view, r);
                 }));
}

kj::Promise<void> Session::DecideSuggestion(DecideCtx c) {
  std::string id = c.getParams().getId(), reason = c.getParams().getReason();
  const bool accept = c.getParams().getAccept();
  store::EventStore* store = &shared_.store;
  return Control(
      c, absl::OkStatus(), absl::StrCat(accept ? "accepts" : "rejects", " suggestion ", id),
      WithIdentity([store, id, accept, reason, by = name_](const projections::StateView& view) {
        return projections::identity::DecideSuggestion(*store, view, id, accept, reason, by);
      }));
}

kj::Promise<void> Session::DefineSegment(DefineSegmentCtx c) {
  auto p = c.getParams();
  namespace sg = projections::segments;
  sg::DefineRequest r;
  absl::StatusOr<sg::Definitions::Op> op = sg::OpOf(p.getOp());
  if (op.ok()) r.op = *op;
  r.name = p.getName();
  r.rule = p.getRule();
  r.description = p.getDescription();
  r.requested_by = name_;
  r.source_system = "ihsd";
  store::EventStore* store = &shared_.store;
  return Control(c, op.ok() ? absl::OkStatus() : BadField("op", op.status().message()),
                 absl::StrCat(schema::EnumName(p.getOp()), "s segment ", r.name),
                 [store, r]() -> absl::StatusOr<uint64_t> {
                   IHS_ASSIGN_OR_RETURN(sg::DefineResult d, sg::AppendDefinition(*store, r));
                   return d.position;
                 });
}

kj::Promise<void> Session::SegmentDefinitions(SegmentDefinitionsCtx c) {
  auto result = c.getResults().initResult();
  std::string after = c.getParams().getAfter();
  const uint32_t limit = c.getParams().getLimit();
  auto admitted = Admit(limit == 0 || limit > 1000 ? BadField("limit", "limit must be 1 to 1000")
                                                   : absl::OkStatus());
  if (!admitted.ok()) return Refuse(result, admitted.status());
  store::EventStore* store = &shared_.store;
  return shared_.reads
      .Run([store, after, limit]() -> ReadAnswer {
        IHS_ASSIGN_OR_RETURN(projections::segments::Definitions d,
                             projections::segments::ReadDefinitions(*store));
        auto m = std::make_shared<capnp::MallocMessageBuilder>();
        projections::segments::ToList(d, after, limit, m->initRoot<schema::SegmentList>());
        return m;
      })
      .then([c](ReadAnswer answer) mutable {
        SetAnswer<schema::SegmentList>(c.getResults().getResult(), answer);
      })
      .attach(kj::mv(*admitted));
}

namespace {

absl::Status CheckAsOf(int64_t as_of) {
  return as_of < 0 ? BadField("asOf", "asOf is before 1970") : absl::OkStatus();
}

}  // namespace

kj::Promise<void> Session::SegmentMembers(SegmentMembersCtx c) {
  auto p = c.getParams();
  std::string segment = p.getSegment(), after = p.getAfter();
  const int64_t as_of = p.getAsOf();
  const uint32_t limit = p.getLimit();
  absl::Status bad = CheckAsOf(as_of);
  if (limit == 0 || limit > projections::segments::kMaxMembersPage) {
    bad = BadField("limit",
                   absl::StrCat("limit must be 1 to ", projections::segments::kMaxMembersPage));
  }
  return StateRead<schema::MemberPage>(
      projections::segments::kName, c, bad, p.getMinPosition(),
      [segment, after, as_of, limit](const projections::StateView& view, capnp::MessageBuilder& m) {
        return projections::segments::ReadMembers(view, segment, as_of, after, limit, m);
      });
}

kj::Promise<void> Session::PartySegments(PartySegmentsCtx c) {
  auto p = c.getParams();
  std::string party = p.getParty();
  const int64_t as_of = p.getAsOf();
  absl::Status bad = party.empty() ? BadField("party", "party is empty") : CheckAsOf(as_of);
  return StateRead<schema::PartySegments>(
      projections::segments::kName, c, bad, p.getMinPosition(),
      [party, as_of](const projections::StateView& view, capnp::MessageBuilder& m) {
        return projections::segments::ReadPartySegments(view, party, as_of, m);
      });
}

kj::Promise<void> Session::SegmentWhy(SegmentWhyCtx c) {
  auto p = c.getParams();
  std::string party = p.getParty(), segment = p.getSegment();
  const int64_t as_of = p.getAsOf();
  absl::Status bad = party.empty() ? BadField("party", "party is empty") : CheckAsOf(as_of);
  return StateRead<schema::SegmentWhy>(
      projections::segments::kName, c, bad, p.getMinPosition(),
      [party, segment, as_of](const projections::StateView& view, capnp::MessageBuilder& m) {
        return projections::segments::ReadWhy(view, party, segment, as_of, m);
      });
}

kj::Promise<void> Session::Community(CommunityCtx c) {
  auto p = c.getParams();
  std::string party = p.getParty();
  const int64_t as_of = p.getAsOf();
  absl::Status bad = party.empty() ? BadField("party", "party is empty") : CheckAsOf(as_of);
  return StateRead<schema::CommunityCard>(
      projections::community::kName, c, bad, p.getMinPosition(),
      [party, as_of](const projections::StateView& view, capnp::MessageBuilder& m) {
        return projections::community::ReadCard(
            view, party, as_of != 0 ? as_of : absl::ToUnixMicros(absl::Now()), m);
      });
}

kj::Promise<void> Session::CommunityTop(CommunityTopCtx c) {
  auto p = c.getParams();
  const uint32_t n = p.getN();
  const projections::community::TopBy by = projections::community::TopByOf(p.getBy());
  absl::Status bad;
  if (n == 0 || n > projections::community::kMaxTop) {
    bad = BadField("n", absl::StrCat("n must be 1 to ", projections::community::kMaxTop));
  } else if (static_cast<uint16_t>(p.getBy()) >
             static_cast<uint16_t>(schema::CommunityRank::RISK)) {
    bad = BadField("by", absl::StrCat("by ", static_cast<uint16_t>(p.getBy()),
                                      " is not one the community projection ranks by: reach, "
                                      "standing, value, risk"));
  }
  return StateRead<schema::CommunityTop>(
      projections::community::kName, c, bad, p.getMinPosition(),
      [n, by](const projections::StateView& view, capnp::MessageBuilder& m) {
        return projections::community::ReadTop(view, n, by, m);
      });
}

kj::Promise<void> Session::SubscribeSegments(SubscribeSegmentsCtx c) {
  namespace sg = projections::segments;
  auto p = c.getParams();
  auto result = c.getResults().initResult();
  constexpr size_t kMaxNames = 100;
  absl::Status bad;
  std::set<std::string> names;
  if (!p.hasSubscriber()) {
    bad = BadField("subscriber", "subscriber is missing");
  } else if (p.getSegments().size() == 0 || p.getSegments().size() > kMaxNames) {
    bad = BadField("segments", absl::StrCat("name 1 to ", kMaxNames, " segments, not ",
                                            p.getSegments().size()));
  } else if (shared_.runner == nullptr) {
    bad = absl::UnavailableError("this ihsd runs no projections");
  }
  if (bad.ok()) {
    for (auto name : p.getSegments()) {
      if (!sg::ValidSegmentName(name.cStr())) {
        bad = BadField("segments", absl::StrCat("\"", name.cStr(), "\" is not a segment's name"));
        break;
      }
      names.emplace(name.cStr());
    }
  }
  if (bad.ok()) bad = CheckSubscriptionLimits();
  auto admitted = Admit(bad);
  if (!admitted.ok()) return Refuse(result, admitted.status());
  projections::Runner* runner = shared_.runner;
  const uint64_t from = p.getFromSeq();
  const bool from_now = p.getFromNow();
  const uint64_t head = shared_.store.Head();
  const absl::Time deadline = absl::Now() + kMaxProjectionWait;
  WorkerPool* reads = &shared_.reads;
  // The names and the starting seq are checked against the projection, on a read worker, once it
  // has applied what the log held when the call came (a segment defined just before is known),
  // or, past kMaxProjectionWait, against what it has applied by then. The wait is on the pool
  // that reads with a minPosition wait on (ReadProjection), not on a read worker.
  return shared_.waits
      .Run([runner, head, deadline] { return runner->WaitFor(sg::kName, head, deadline); })
      .then([reads, runner, names, from, from_now](bool) {
        return reads->Run([runner, names, from, from_now]() -> absl::StatusOr<uint64_t> {
          IHS_ASSIGN_OR_RETURN(projections::StateView view, runner->View(sg::kName));
          IHS_ASSIGN_OR_RETURN(sg::Definitions defs, sg::ReadAppliedDefinitions(view));
          for (const std::string& n : names) {
            if (defs.Find(n) == nullptr) {
              return absl::NotFoundError(absl::StrCat("no segment named \"", n, "\""));
            }
          }
          IHS_ASSIGN_OR_RETURN(const uint64_t next, sg::NextSeq(view));
          if (from_now) return next;
          if (from > next) {
            return absl::OutOfRangeError(
                absl::StrCat("fromSeq ", from, " is past the feed's end (", next, " transitions)"));
          }
          return from;
        });
      })
      .then([this, c, names](absl::StatusOr<uint64_t> start) mutable {
        auto result = c.getResults().getResult();
        absl::Status limits = start.ok() ? CheckSubscriptionLimits() : start.status();
        if (!limits.ok()) {
          SetError(result.initError(), limits);
          return;
        }
        result.setOk(kj::heap<Server::TransitionSubscription>(
            shared_, conn_, *start, std::move(names), c.getParams().getSubscriber()));
      })
      .attach(kj::mv(*admitted));
}

kj::Promise<void> Session::Resolve(ResolveCtx c) {
  std::string stream = c.getParams().getStream();
  return IdentityRead<schema::Resolution>(
      c, stream.empty() ? BadField("stream", "stream is empty") : absl::OkStatus(),
      c.getParams().getMinPosition(),
      [stream](const projections::StateView& view, capnp::MessageBuilder& m) {
        return projections::identity::Resolve(view, stream, m);
      });
}

kj::Promise<void> Session::Person(PersonCtx c) {
  std::string id = c.getParams().getId();
  return IdentityRead<schema::Person>(
      c, id.empty() ? BadField("id", "id is empty") : absl::OkStatus(),
      c.getParams().getMinPosition(),
      [id](const projections::StateView& view, capnp::MessageBuilder& m) {
        return projections::identity::ReadPerson(view, id, m);
      });
}

kj::Promise<void> Session::FindHandle(FindHandleCtx c) {
  const schema::HandleKind kind = c.getParams().getHandle().getKind();
  std::string address = c.getParams().getHandle().getAddress();
  absl::StatusOr<std::string> key = shared_.store.BlindIndexKey();
  return IdentityRead<rpc::StreamsResult>(
      c, key.status(), c.getParams().getMinPosition(),
      [kind, address, key](const projections::StateView& view, capnp::MessageBuilder& m) {
        absl::StatusOr<std::vector<std::string>> streams =
            projections::identity::FindHandle(view, *key, kind, address);
        if (absl::IsInvalidArgument(streams.status())) {
          return BadField("handle", streams.status().message());
        }
        IHS_RETURN_IF_ERROR(streams.status());
        auto list = m.initRoot<rpc::StreamsResult>().initOk(static_cast<unsigned>(streams->size()));
        for (unsigned i = 0; i < streams->size(); ++i) list.set(i, (*streams)[i]);
        return absl::OkStatus();
      });
}

kj::Promise<void> Session::IdentitySuggestions(SuggestionsCtx c) {
  std::string after = c.getParams().getAfter();
  const uint32_t limit = c.getParams().getLimit();
  absl::Status bad =
      limit == 0 || limit > 1000 ? BadField("limit", "limit must be 1 to 1000") : absl::OkStatus();
  return IdentityRead<rpc::SuggestionsResult>(
      c, bad, c.getParams().getMinPosition(),
      [after, limit](const projections::StateView& view, capnp::MessageBuilder& m) {
        std::string from = after;
        std::replace(from.begin(), from.end(), ' ', '\0');
        IHS_ASSIGN_OR_RETURN(auto pairs, projections::identity::ListPairs(
                                             view, schema::PairState::SUGGESTED, limit, from));
        auto list =
            m.initRoot<rpc::SuggestionsResult>().initOk(static_cast<unsigned>(pairs.size()));
        for (unsigned i = 0; i < pairs.size(); ++i) {
          capnp::MallocMessageBuilder one;
          IHS_RETURN_IF_ERROR(
              projections::identity::ReadPair(view, pairs[i].first, pairs[i].second, one));
          list.setWithCaveats(i, one.getRoot<schema::PairScore>().asReader());
        }
        return absl::OkStatus();
      });
}

kj::Promise<void> Session::IdentityStats(IdentityStatsCtx c) {
  return IdentityRead<schema::IdentityStats>(
      c, absl::OkStatus(), c.getParams().getMinPosition(),
      [](const projections::StateView& view, capnp::MessageBuilder& m) {
        return projections::identity::ReadStats(view, m);
      });
}

kj::Promise<void> Session::Timeline(TimelineCtx c) {
  auto p = c.getParams().getQuery();
  auto result = c.getResults().initResult();
  namespace tl = projections::timeline;
  tl::Query q;
  q.party = p.getParty();
  q.from = p.getFrom();
  q.to = p.getTo();
  for (auto ch : p.getChannels()) q.channels.push_back(ch);
  q.cursor = p.getCursor();
  q.limit = p.getLimit();
  q.as_of = AsOf(p.getAsOf());
  absl::Status bad = tl::Validate(q);
  if (bad.ok()) bad = CheckMinPosition(p.getMinPosition());
  auto admitted = Admit(bad);
  if (!admitted.ok()) return Refuse(result, admitted.status());
  store::EventStore* content = p.getOpenContent() ? &shared_.store : nullptr;
  const uint64_t min_position = p.getMinPosition();
  kj::Promise<ReadAnswer> person = ReadAnswer(nullptr);
  if (p.getPerson()) {
    const std::string party = q.party;
    person = ReadProjection(projections::identity::kName, min_position,
                            [party](const projections::StateView& view, capnp::MessageBuilder& m) {
                              absl::Status s = projections::identity::ReadPerson(view, party, m);
                              return absl::IsNotFound(s) ? absl::OkStatus()
                                                         : s;  // no identity yet: the party alone
                            });
  }
  return person
      .then([this, q, content, min_position](ReadAnswer person) mutable -> kj::Promise<ReadAnswer> {
        if (!person.ok()) return ReadAnswer(person.status());
        if (*person != nullptr && (*person)->getRoot<schema::Person>().hasStreams()) {
          for (auto s : (*person)->getRoot<schema::Person>().asReader().getStreams()) {
            q.also.emplace_back(s.cStr(), s.size());
          }
        }
        return ReadProjection(
            tl::kName, min_position,
            [q, content](const projections::StateView& view, capnp::MessageBuilder& m) {
              return tl::ReadPage(view, q, m, content);
            });
      })
      .then([c](ReadAnswer answer) mutable {
        SetAnswer<schema::TimelinePage>(c.getResults().getResult(), answer);
      })
      .attach(kj::mv(*admitted));
}

kj::Promise<void> Session::Summary(SummaryCtx c) {
  auto p = c.getParams();
  auto result = c.getResults().initResult();
  std::string party = p.getParty();
  absl::Status bad =
      party.empty() ? BadField("party", "a summary needs a party") : absl::OkStatus();
  if (bad.ok()) bad = CheckMinPosition(p.getMinPosition());
  auto admitted = Admit(bad);
  if (!admitted.ok()) return Refuse(result, admitted.status());
  const absl::Time as_of = AsOf(p.getAsOf());
  return ReadProjection(
             projections::timeline::kName, p.getMinPosition(),
             [party, as_of](const projections::StateView& view, capnp::MessageBuilder& m) {
               return projections::timeline::ReadSummary(view, party, as_of, m);
             })
      .then([c](ReadAnswer answer) mutable {
        SetAnswer<schema::TimelineSummary>(c.getResults().getResult(), answer);
      })
      .attach(kj::mv(*admitted));
}

}  // namespace ihs::server::internal
