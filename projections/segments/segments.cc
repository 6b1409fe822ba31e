#include "projections/segments/segments.h"

#include <capnp/message.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "projections/identity/identity.h"
#include "projections/packed_record.h"
#include "projections/segments/evaluate.h"
#include "projections/segments/state.h"
#include "schema/json.h"
#include "store/types.h"

namespace ihs::projections::segments {
namespace {

using schema::Direction;
using schema::TouchpointType;
using schema::TransitionCause;

using store::IsSystemStream;

bool Waits(const StoredTouch& t) {
  return t.direction == Direction::INBOUND &&
         (t.type == TouchpointType::MESSAGE || t.type == TouchpointType::REQUEST ||
          t.type == TouchpointType::COMPLAINT);
}

template <typename T>
struct Cached {
  std::optional<T> value;  // nullopt: no such record (or deleted)
  bool dirty = false;
};

// A live segment as the projection evaluates it.
struct Live {
  std::string name;
  uint32_t version = 0;
  Rule rule;
};

class SegmentsProjection : public Projection {
 public:
  absl::string_view name() const override { return kName; }
  uint32_t version() const override { return 1; }

  absl::Status Apply(const store::StoredEvent& stored, Txn& txn) override {
    IHS_RETURN_IF_ERROR(Begin(txn));
    const schema::Event::Reader ev = stored.event();
    position_ = stored.position();
    IHS_RETURN_IF_ERROR(FireTimers(ev.getRecordedAt()));
    now_ = std::max(now_, ev.getRecordedAt());
    const std::string stream(ev.getStreamId().cStr(), ev.getStreamId().size());
    if (IsSystemStream(stream)) {
      if (stream == store::kSegmentsStream && ev.isSegmentDefinition()) {
        return ApplyDefinition(ev);
      }
      if (ev.isIdentityLink()) return ApplyLink(ev);
      return absl::OkStatus();
    }
    IHS_ASSIGN_OR_RETURN(StreamRec * s, MutableStream(stream));
    bool changed = false;
    TransitionCause cause = TransitionCause::EVENT;
    switch (ev.which()) {
      case schema::Event::TOUCHPOINT: {
        bool appended = false;
        IHS_ASSIGN_OR_RETURN(changed, ApplyTouch(*s, ev, &appended));
        if (!appended) {
          if (changed) facts_.erase(s->person);
          break;
        }
        // A touchpoint that no filter of a live rule picks changes no answer and no timer.
        Touch t = ToTouch(s->touches.back());
        changed = false;
        auto it = facts_.find(s->person);
        const uint32_t index =
            it == facts_.end() ? 0 : static_cast<uint32_t>(it->second.facts.touches.size());
        for (const Condition* c : filters_) {
          if (!Matches(c->filter, t)) continue;
          changed = true;
          if (it != facts_.end()) it->second.index[c].push_back(index);
        }
        if (it != facts_.end()) it->second.facts.touches.push_back(std::move(t));
        break;
      }
      case schema::Event::PARTY_PROFILE:
        facts_.erase(s->person);
        s->kind = ev.getPartyProfile().getKind();
        s->cohort = std::string(View(ev.getPartyProfile().getCohort()));
        s->profile_position = position_;
        changed = true;
        break;
      case schema::Event::ERASURE_REQUEST:
        facts_.erase(s->person);
        // Topics and sentiment may come from the content: they go with it.
        for (StoredTouch& t : s->touches) {
          changed |= !t.topics.empty() || !std::isnan(t.sentiment);
          t.topics.clear();
          t.sentiment = std::nanf("");
        }
        cause = TransitionCause::ERASURE;
        break;
      default:
        break;
    }
    if (!changed) return absl::OkStatus();
    return Reevaluate(s->person, cause);
  }

  absl::Status Flush(Txn& txn) override {
    txn_ = &txn;
    WriteRecords();
    facts_.clear();  // bounded by a batch
    txn.Put(kNextSeqKey, BigEndian64(next_seq_));
    // The tag: where the batch ends and the projection's clock. Every batch writes it, so the
    // next one knows from it whether this one was committed; and a rebuild that reached the same
    // position and clock writes the same bytes.
    tag_ = BigEndian64(txn.position());
    PutBigEndian64(&tag_, static_cast<uint64_t>(now_));
    txn.Put(kTagKey, tag_);
    verified_ = false;
    mutated_ = false;
    return absl::OkStatus();
  }

  void Discard() override {
    facts_.clear();
    streams_.clear();
    persons_.clear();
    counts_.clear();
    verified_ = false;
    // A batch that failed before its Flush changed what is held across batches: load it again.
    if (mutated_) loaded_ = false;
  }

  absl::StatusOr<int64_t> NextTimer(Txn& txn) override {
    IHS_RETURN_IF_ERROR(Begin(txn));
    return timers_.empty() ? kNoTimer : timers_.begin()->first;
  }

  absl::Status AdvanceClock(int64_t until, Txn& txn) override {
    IHS_RETURN_IF_ERROR(Begin(txn));
    position_ = txn.position();
    return FireTimers(until);
  }

 private:
  // Writes the cached records that changed into the batch (Txn::Scan sees them then).
  void WriteRecords() {
    Txn& txn = *txn_;
    for (auto& [key, c] : streams_) {
      if (!c.dirty) continue;
      c.dirty = false;
      c.value ? txn.Put(key, EncodeStream(*c.value)) : txn.Delete(key);
    }
    for (auto& [key, c] : persons_) {
      if (!c.dirty) continue;
      c.dirty = false;
      c.value ? txn.Put(key, EncodePerson(*c.value)) : txn.Delete(key);
    }
    for (auto& [key, c] : counts_) {
      if (!c.dirty) continue;
      c.dirty = false;
      txn.Put(key, BigEndian64(static_cast<uint64_t>(*c.value)));
    }
  }

  // --- caches ----------------------------------------------------------------------------------

  // Checks, once per batch, that the definitions, timers and seq held in memory are those of the
  // stored state (the tag moves with every batch that wrote), and reloads them if not.
  absl::Status Begin(Txn& txn) {
    txn_ = &txn;
    if (verified_) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> tag, txn.Get(kTagKey));
    const std::string stored = tag.value_or("");
    if (!loaded_ || stored != tag_) {
      IHS_RETURN_IF_ERROR(Load(stored));
      streams_.clear();
      persons_.clear();
      counts_.clear();
    }
    verified_ = true;
    return absl::OkStatus();
  }

  absl::Status Load(const std::string& tag) {
    if (!tag.empty() && tag.size() != 16) return absl::DataLossError("segments state: a bad tag");
    now_ = tag.empty() ? 0 : static_cast<int64_t>(GetBigEndian64(tag.data() + 8));
    defs_ = Definitions();
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> n, txn_->Get(kDefinitionCountKey));
    def_count_ = n && n->size() == 8 ? GetBigEndian64(n->data()) : 0;
    for (uint64_t i = 0; i < def_count_; ++i) {
      IHS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, txn_->Get(DefinitionKey(i)));
      if (!bytes) return absl::DataLossError("segments state: a definition is missing");
      PackedRecord rec(*bytes, "segments");
      IHS_ASSIGN_OR_RETURN(schema::Event::Reader ev, rec.Root<schema::Event>());
      defs_.Apply(ev);
    }
    IHS_RETURN_IF_ERROR(Order());
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> seq, txn_->Get(kNextSeqKey));
    next_seq_ = seq && seq->size() == 8 ? GetBigEndian64(seq->data()) : 0;
    timers_.clear();
    absl::Status error;
    IHS_RETURN_IF_ERROR(txn_->Scan("W", "X", [&](absl::string_view key, absl::string_view) {
      if (key.size() < 9) {
        error = absl::DataLossError("segments state: a timer key is short");
        return false;
      }
      const int64_t due =
          static_cast<int64_t>(GetBigEndian64(key.data() + 1) ^ (uint64_t{1} << 63));
      timers_.emplace(due, std::string(key.substr(9)));
      return true;
    }));
    IHS_RETURN_IF_ERROR(error);
    tag_ = tag;
    loaded_ = true;
    mutated_ = false;
    return absl::OkStatus();
  }

  // The live segments in an order where a segment comes after those it names.
  absl::Status Order() {
    order_.clear();
    filters_.clear();
    facts_.clear();                    // their indexes name the old rules' conditions
    std::map<std::string, int> state;  // 1: visiting, 2: done
    std::function<absl::Status(const Segment&)> visit = [&](const Segment& s) -> absl::Status {
      int& st = state[s.name];
      if (st == 2) return absl::OkStatus();
      if (st == 1) return absl::DataLossError("segments state: definitions form a cycle");
      st = 1;
      for (const std::string& n : s.current().named) {
        const Segment* other = defs_.Find(n);
        if (other == nullptr || !other->live()) {
          return absl::DataLossError("segments state: a rule names a segment that is not live");
        }
        IHS_RETURN_IF_ERROR(visit(*other));
      }
      state[s.name] = 2;
      Live l;
      l.name = s.name;
      l.version = s.current().version;
      IHS_ASSIGN_OR_RETURN(l.rule, ParseRule(s.current().rule));
      order_.push_back(std::move(l));
      return absl::OkStatus();
    };
    for (const auto& [name, s] : defs_.all()) {
      if (s.live()) IHS_RETURN_IF_ERROR(visit(s));
    }
    std::vector<const Condition*> all;
    for (const Live& l : order_) Conditions(l.rule, &all);
    for (const Condition* c : all) {
      if (HasFilter(*c)) filters_.push_back(c);
    }
    return absl::OkStatus();
  }

  template <typename T, typename Decode>
  absl::StatusOr<Cached<T>*> LoadCached(absl::node_hash_map<std::string, Cached<T>>& cache,
                                        const std::string& key, Decode decode) {
    auto [it, inserted] = cache.try_emplace(key);
    if (inserted) {
      IHS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, txn_->Get(key));
      if (bytes) {
        IHS_ASSIGN_OR_RETURN(it->second.value, decode(*bytes));
      }
    }
    return &it->second;
  }

  // The stream's record, or nullptr if the log has not named it.
  absl::StatusOr<const StreamRec*> FindStream(const std::string& stream) {
    IHS_ASSIGN_OR_RETURN(Cached<StreamRec> * c,
                         LoadCached(streams_, StreamKey(stream), DecodeStream));
    return c->value ? &*c->value : nullptr;
  }

  // The stream's record, made at the current position if the log names it for the first time.
  absl::StatusOr<StreamRec*> MutableStream(const std::string& stream) {
    IHS_ASSIGN_OR_RETURN(Cached<StreamRec> * c,
                         LoadCached(streams_, StreamKey(stream), DecodeStream));
    if (!c->value) {
      StreamRec s;
      s.first_position = position_;
      s.person = stream;
      c->value = std::move(s);
      // Every stream is a person from the start, so that a segment defined later finds it.
      IHS_RETURN_IF_ERROR(MutablePerson(stream).status());
    }
    c->dirty = true;
    return &*c->value;
  }

  // The person's record; a person of one stream has one as soon as it is evaluated.
  absl::StatusOr<PersonRec*> MutablePerson(const std::string& person) {
    IHS_ASSIGN_OR_RETURN(Cached<PersonRec> * c,
                         LoadCached(persons_, PersonKey(person), DecodePerson));
    if (!c->value) {
      PersonRec p;
      p.streams = {person};
      c->value = std::move(p);
    }
    c->dirty = true;
    return &*c->value;
  }

  void DeletePerson(const std::string& person) {
    Cached<PersonRec>& c = persons_[PersonKey(person)];
    c.value.reset();
    c.dirty = true;
  }

  absl::StatusOr<int64_t*> CountOf(const std::string& segment) {
    IHS_ASSIGN_OR_RETURN(
        Cached<int64_t> * c,
        LoadCached(counts_, CountKey(segment), [](absl::string_view b) -> absl::StatusOr<int64_t> {
          if (b.size() != 8) return absl::DataLossError("segments state: a count is not 8 bytes");
          return static_cast<int64_t>(GetBigEndian64(b.data()));
        }));
    if (!c->value) c->value = 0;
    c->dirty = true;
    return &*c->value;
  }

  // --- touchpoints -----------------------------------------------------------------------------

  // Adds the touchpoint to the stream's record (or applies a correction or retraction); false if
  // nothing changed.
  // `appended`: the touchpoint was added at the end and nothing else changed (a person's facts
  // held in memory can take it as it is).
  absl::StatusOr<bool> ApplyTouch(StreamRec& s, schema::Event::Reader ev, bool* appended) {
    *appended = false;
    bool others = false;  // an earlier touchpoint or the consent changed too
    const schema::Touchpoint::Reader t = ev.getTouchpoint();
    if (t.getType() == TouchpointType::CORRECTION || t.getType() == TouchpointType::RETRACTION) {
      const absl::string_view target = View(t.getCorrects());
      auto it = std::find_if(s.touches.begin(), s.touches.end(),
                             [&](const StoredTouch& x) { return x.event_id == target; });
      if (it == s.touches.end() || it->retracted) return false;
      if (t.getType() == TouchpointType::RETRACTION) {
        it->retracted = true;
      } else {
        it->sentiment = t.getSentiment();
        it->topics.clear();
        for (auto topic : t.getTopics()) it->topics.emplace_back(View(topic));
      }
      return true;
    }
    StoredTouch n;
    n.occurred = ev.getOccurredAt();
    n.position = position_;
    n.event_id = std::string(View(ev.getId()));
    n.channel = t.getChannel();
    n.direction = t.getDirection();
    n.type = t.getType();
    for (auto topic : t.getTopics()) n.topics.emplace_back(View(topic));
    n.campaign = std::string(View(t.getCampaignId()));
    n.source = std::string(View(ev.getSourceSystem()));
    n.sentiment = t.getSentiment();
    n.audience = t.getAudienceSize();
    n.original = ev.getCausationId().size() == 0;
    IHS_ASSIGN_OR_RETURN(n.company_reply, IsCompanyReply(t));
    n.thread = ThreadName(s, ev);
    if (!n.thread.empty()) {
      if (Waits(n)) {
        // The company's first reply in the thread at or after it, on any channel.
        for (const StoredTouch& r : s.touches) {
          if (r.company_reply && r.thread == n.thread && r.occurred >= n.occurred &&
              (n.answered == 0 || r.occurred < n.answered)) {
            n.answered = r.occurred;
          }
        }
      } else if (n.company_reply) {
        // Answers every message of the thread at or before it that has no earlier answer.
        for (StoredTouch& m : s.touches) {
          if (Waits(m) && m.thread == n.thread && m.occurred <= n.occurred &&
              (m.answered == 0 || m.answered > n.occurred)) {
            m.answered = n.occurred;
            others = true;
          }
        }
      }
    }
    if (n.type == TouchpointType::CONSENT_GIVEN || n.type == TouchpointType::CONSENT_REVOKED ||
        n.type == TouchpointType::UNSUBSCRIBE) {
      const bool given = n.type == TouchpointType::CONSENT_GIVEN;
      others = true;
      auto c = std::find_if(s.consents.begin(), s.consents.end(),
                            [&](const ConsentState& x) { return x.channel == n.channel; });
      if (c == s.consents.end()) {
        s.consents.push_back({n.channel, given, position_});
      } else {
        *c = {n.channel, given, position_};
      }
    }
    s.touches.push_back(std::move(n));
    *appended = !others;
    return true;
  }

  // The timeline's rule (projections/timeline/timeline.cc): the company's reply is an outbound
  // reply, or a public one by an employee.
  absl::StatusOr<bool> IsCompanyReply(schema::Touchpoint::Reader t) {
    if (t.getType() != TouchpointType::REPLY) return false;
    if (t.getDirection() == Direction::OUTBOUND) return true;
    if (t.getDirection() != Direction::PUBLIC || t.getCounterpart().size() == 0) return false;
    IHS_ASSIGN_OR_RETURN(const StreamRec* c, FindStream(std::string(View(t.getCounterpart()))));
    return c != nullptr && c->kind == schema::PartyKind::EMPLOYEE;
  }

  // The thread as the timeline names it (schema/timeline.capnp TimelineEntry.thread).
  static std::string ThreadName(const StreamRec& s, schema::Event::Reader ev) {
    const auto t = ev.getTouchpoint();
    if (t.getThreadId().size() > 0) return std::string(View(t.getThreadId()));
    if (t.getInReplyTo().size() == 16) {
      const absl::string_view target = View(t.getInReplyTo());
      for (const StoredTouch& x : s.touches) {
        if (x.event_id == target && !absl::StartsWith(x.thread, "event:") && !x.thread.empty()) {
          return x.thread;
        }
      }
      return absl::StrCat("event:", absl::BytesToHexString(target));
    }
    if (t.getDirection() == Direction::INBOUND &&
        (t.getType() == TouchpointType::MESSAGE || t.getType() == TouchpointType::REQUEST ||
         t.getType() == TouchpointType::COMPLAINT)) {
      return absl::StrCat("event:", absl::BytesToHexString(View(ev.getId())));
    }
    return std::string();
  }

  // --- evaluation ------------------------------------------------------------------------------

  absl::StatusOr<Facts> FactsOf(const PersonRec& p) {
    Facts f;
    size_t touches = 0;
    for (const std::string& stream : p.streams) {
      IHS_ASSIGN_OR_RETURN(const StreamRec* s, FindStream(stream));
      if (s != nullptr) touches += s->touches.size();
    }
    f.touches.reserve(touches);
    uint64_t profile_at = 0;
    std::map<schema::Channel, std::pair<uint64_t, bool>> consent;
    for (const std::string& stream : p.streams) {
      IHS_ASSIGN_OR_RETURN(const StreamRec* s, FindStream(stream));
      if (s == nullptr) continue;
      for (const StoredTouch& t : s->touches) {
        if (!t.retracted) f.touches.push_back(ToTouch(t));
      }
      // The latest profile of any of the person's streams speaks for the person.
      if (s->profile_position != 0 && s->profile_position >= profile_at) {
        profile_at = s->profile_position;
        f.kind = s->kind == schema::PartyKind::UNSPECIFIED ? "" : schema::EnumName(s->kind);
        f.cohort = s->cohort;
      }
      for (const ConsentState& c : s->consents) {
        auto& [at, given] = consent[c.channel];
        if (c.position >= at) {
          at = c.position;
          given = c.given;
        }
      }
    }
    for (const auto& [channel, v] : consent) f.consent[schema::EnumName(channel)] = v.second;
    return f;
  }

  // Evaluates every live segment for the person at now_, records what changed, and sets the
  // person's next timer.
  absl::Status Reevaluate(const std::string& person, TransitionCause cause) {
    IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(person));
    auto cached = facts_.find(person);
    if (cached == facts_.end()) {
      IHS_ASSIGN_OR_RETURN(Facts f, FactsOf(*p));
      cached = facts_.try_emplace(person).first;
      PersonFacts& pf = cached->second;
      pf.facts = std::move(f);
      for (const Condition* c : filters_) {
        std::vector<uint32_t>& picks = pf.index[c];
        for (uint32_t i = 0; i < pf.facts.touches.size(); ++i) {
          if (Matches(c->filter, pf.facts.touches[i])) picks.push_back(i);
        }
      }
      pf.facts.index = &pf.index;
    }
    const Facts& facts = cached->second.facts;
    std::map<std::string, bool> member;
    auto member_of = [&member](const std::string& name) {
      auto it = member.find(name);
      return it != member.end() && it->second;
    };
    int64_t next = kNever;
    for (const Live& seg : order_) {
      const Verdict v = Evaluate(seg.rule, facts, now_, member_of);
      member[seg.name] = v.member;
      next = std::min(next, v.next_change);
      auto it =
          std::lower_bound(p->members.begin(), p->members.end(), seg.name,
                           [](const MemberRec& m, const std::string& n) { return m.segment < n; });
      const bool was = it != p->members.end() && it->segment == seg.name;
      if (v.member == was) continue;
      const std::vector<Account> why = Explain(seg.rule, facts, now_, member_of);
      IHS_RETURN_IF_ERROR(Record(seg.name, person, v.member, seg.version, cause, &why));
      if (v.member) {
        p->members.insert(it, MemberRec{seg.name, now_, seg.version});
      } else {
        p->members.erase(it);
      }
    }
    if (next != kNever && next <= now_) next = now_ + 1;  // time moves on whatever the rule says
    SetDue(person, *p, next == kNever ? 0 : next);
    return absl::OkStatus();
  }

  // Writes one transition: the feed, the person's history, the member key and the count.
  absl::Status Record(const std::string& segment, const std::string& person, bool entered,
                      uint32_t version, TransitionCause cause, const std::vector<Account>* why) {
    const uint64_t seq = next_seq_++;
    mutated_ = true;
    capnp::MallocMessageBuilder m;
    auto t = m.initRoot<schema::Transition>();
    t.setSeq(seq);
    t.setSegment(segment);
    t.setPerson(person);
    t.setAt(now_);
    t.setEntered(entered);
    t.setVersion(version);
    t.setCause(cause);
    t.setPosition(position_);
    if (why != nullptr) {
      auto clauses = t.initClauses(static_cast<unsigned>(why->size()));
      for (unsigned i = 0; i < why->size(); ++i) {
        const Account& a = (*why)[i];
        clauses[i].setText(a.clause);
        clauses[i].setHolds(a.holds);
        clauses[i].setValue(a.value);
        auto events = clauses[i].initEvents(static_cast<unsigned>(a.events.size()));
        for (unsigned j = 0; j < a.events.size(); ++j) events.set(j, AsData(a.events[j]));
      }
    }
    txn_->Put(FeedKey(seq), Encode(m));
    txn_->Put(HistoryKey(segment, person, seq), "");
    IHS_ASSIGN_OR_RETURN(int64_t * count, CountOf(segment));
    if (entered) {
      txn_->Put(MemberKey(segment, person), EncodeMember(now_, version));
      ++*count;
    } else {
      txn_->Delete(MemberKey(segment, person));
      --*count;
    }
    return absl::OkStatus();
  }

  void SetDue(const std::string& person, PersonRec& p, int64_t due) {
    if (p.due == due) return;
    mutated_ = true;
    if (p.due != 0) {
      timers_.erase({p.due, person});
      txn_->Delete(TimerKey(p.due, person));
    }
    if (due != 0) {
      timers_.emplace(due, person);
      txn_->Put(TimerKey(due, person), "");
    }
    p.due = due;
  }

  // Fires the timers due before `until`, in (due, person) order, each at its moment.
  absl::Status FireTimers(int64_t until) {
    while (!timers_.empty() && timers_.begin()->first < until) {
      const auto [due, person] = *timers_.begin();
      now_ = std::max(now_, due);
      IHS_RETURN_IF_ERROR(Reevaluate(person, TransitionCause::CLOCK));
    }
    return absl::OkStatus();
  }

  // --- definitions -----------------------------------------------------------------------------

  absl::Status ApplyDefinition(schema::Event::Reader ev) {
    mutated_ = true;
    {
      capnp::MallocMessageBuilder m;
      m.setRoot(ev);
      txn_->Put(DefinitionKey(def_count_++), Encode(m));
      txn_->Put(kDefinitionCountKey, BigEndian64(def_count_));
    }
    const std::string name(View(ev.getSegmentDefinition().getName()));
    const Segment* before = defs_.Find(name);
    const size_t versions = before == nullptr ? 0 : before->versions.size();
    defs_.Apply(ev);
    const Segment* after = defs_.Find(name);
    if (after == nullptr || after->versions.size() == versions) return absl::OkStatus();  // refused
    IHS_RETURN_IF_ERROR(Order());
    // Every person is evaluated again at this moment: a retired segment's members leave, a new
    // or changed one takes the members its rule gives.
    WriteRecords();
    std::vector<std::string> persons;
    const std::string from = after->live() ? "P" : MemberKey(name, "");
    std::string to = from;
    to.back() = static_cast<char>(to.back() + 1);
    IHS_RETURN_IF_ERROR(txn_->Scan(from, to, [&](absl::string_view key, absl::string_view) {
      persons.emplace_back(key.substr(from.size()));
      return true;
    }));
    if (after->live()) {
      for (const std::string& p : persons) {
        IHS_RETURN_IF_ERROR(Reevaluate(p, TransitionCause::DEFINITION));
      }
      return absl::OkStatus();
    }
    const uint32_t version = after->current().version;
    for (const std::string& person : persons) {
      IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(person));
      auto it = std::find_if(p->members.begin(), p->members.end(),
                             [&](const MemberRec& m) { return m.segment == name; });
      if (it == p->members.end()) continue;
      p->members.erase(it);
      IHS_RETURN_IF_ERROR(
          Record(name, person, false, version, TransitionCause::DEFINITION, nullptr));
    }
    return absl::OkStatus();
  }

  // --- identity --------------------------------------------------------------------------------

  absl::Status ApplyLink(schema::Event::Reader ev) {
    const auto l = ev.getIdentityLink();
    const std::vector<std::string> parties = identity::LinkedParties(l);
    if (parties.size() < 2) return absl::OkStatus();
    if (l.getUnlink()) {
      for (size_t i = 0; i < parties.size(); ++i) {
        for (size_t j = i + 1; j < parties.size(); ++j) {
          IHS_RETURN_IF_ERROR(Unlink(parties[i], parties[j]));
        }
      }
      return absl::OkStatus();
    }
    for (size_t i = 1; i < parties.size(); ++i) {
      if (parties[i] != parties[0]) IHS_RETURN_IF_ERROR(Join(parties[0], parties[i]));
    }
    return absl::OkStatus();
  }

  absl::Status Join(const std::string& a, const std::string& b) {
    IHS_ASSIGN_OR_RETURN(StreamRec * sa, MutableStream(a));
    const std::string pa = sa->person;
    IHS_ASSIGN_OR_RETURN(StreamRec * sb, MutableStream(b));
    const std::string pb = sb->person;
    IHS_ASSIGN_OR_RETURN(PersonRec * first, MutablePerson(pa));
    PersonRec merged = *first;
    merged.links.emplace_back(std::min(a, b), std::max(a, b));
    std::vector<std::string> old{pa};
    if (pb != pa) {
      IHS_ASSIGN_OR_RETURN(PersonRec * second, MutablePerson(pb));
      merged.streams.insert(merged.streams.end(), second->streams.begin(), second->streams.end());
      std::sort(merged.streams.begin(), merged.streams.end());
      merged.links.insert(merged.links.end(), second->links.begin(), second->links.end());
      old.push_back(pb);
    }
    return Regroup(std::move(merged.streams), std::move(merged.links), old);
  }

  absl::Status Unlink(const std::string& a, const std::string& b) {
    IHS_ASSIGN_OR_RETURN(StreamRec * sa, MutableStream(a));
    const std::string pa = sa->person;
    IHS_ASSIGN_OR_RETURN(StreamRec * sb, MutableStream(b));
    if (sb->person != pa) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(pa));
    PersonRec person = *p;
    const size_t before = person.links.size();
    person.links.erase(std::remove_if(person.links.begin(), person.links.end(),
                                      [&](const auto& l) {
                                        return (l.first == a && l.second == b) ||
                                               (l.first == b && l.second == a);
                                      }),
                       person.links.end());
    if (person.links.size() == before) return absl::OkStatus();
    return Regroup(std::move(person.streams), std::move(person.links), {pa});
  }

  // Makes persons of `streams` joined by `links`, one per connected group, named by its stream
  // seen first. A group named as one of the `old` persons keeps its memberships; the other old
  // persons leave their segments. Every group is then evaluated again.
  absl::Status Regroup(std::vector<std::string> streams,
                       std::vector<std::pair<std::string, std::string>> links,
                       const std::vector<std::string>& old) {
    std::map<std::string, std::string> parent;
    for (const std::string& s : streams) parent[s] = s;
    std::function<std::string(const std::string&)> find = [&](const std::string& s) {
      std::string r = s;
      while (parent[r] != r) r = parent[r];
      return r;
    };
    for (const auto& [a, b] : links) {
      if (!parent.count(a) || !parent.count(b)) continue;
      parent[find(a)] = find(b);
    }
    std::map<std::string, PersonRec> groups;  // by root
    for (const std::string& s : streams) groups[find(s)].streams.push_back(s);
    for (const auto& l : links) groups[find(l.first)].links.push_back(l);
    std::map<std::string, PersonRec> named;  // by person id
    for (auto& [root, g] : groups) {
      std::sort(g.streams.begin(), g.streams.end());
      std::string id;
      uint64_t first = 0;
      for (const std::string& s : g.streams) {
        IHS_ASSIGN_OR_RETURN(const StreamRec* r, FindStream(s));
        const uint64_t at = r == nullptr ? position_ : r->first_position;
        if (id.empty() || at < first) {
          id = s;
          first = at;
        }
      }
      named[id] = std::move(g);
    }
    for (const std::string& o : old) facts_.erase(o);
    for (const auto& [id, g] : named) facts_.erase(id);
    // The old persons: those that no group continues leave every segment.
    std::map<std::string, PersonRec> previous;
    for (const std::string& o : old) {
      IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(o));
      previous[o] = *p;
      if (named.count(o)) continue;
      for (const MemberRec& m : p->members) {
        const Segment* seg = defs_.Find(m.segment);
        IHS_RETURN_IF_ERROR(Record(m.segment, o, false,
                                   seg != nullptr ? seg->current().version : m.version,
                                   TransitionCause::IDENTITY, nullptr));
      }
      p->members.clear();
      SetDue(o, *p, 0);
      DeletePerson(o);
    }
    for (auto& [id, g] : named) {
      for (const std::string& s : g.streams) {
        IHS_ASSIGN_OR_RETURN(StreamRec * r, MutableStream(s));
        r->person = id;
      }
      IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(id));
      if (auto it = previous.find(id); it != previous.end()) {
        g.members = it->second.members;
        g.due = it->second.due;
      } else {  // a stream that becomes a person of its own: nothing yet
        g.members = p->members;
        g.due = p->due;
      }
      *p = std::move(g);
      IHS_RETURN_IF_ERROR(Reevaluate(id, TransitionCause::IDENTITY));
    }
    return absl::OkStatus();
  }

  Txn* txn_ = nullptr;
  uint64_t position_ = 0;
  int64_t now_ = 0;

  // Held across batches while the tag says they are current.
  bool loaded_ = false, verified_ = false;
  bool mutated_ = false;  // definitions, timers or seq changed since the last Flush
  std::string tag_;
  Definitions defs_;
  uint64_t def_count_ = 0;
  std::vector<Live> order_;
  std::vector<const Condition*> filters_;  // of order_'s rules: those with a touchpoint filter
  std::set<std::pair<int64_t, std::string>> timers_;
  uint64_t next_seq_ = 0;

  // Dropped at the head.
  absl::node_hash_map<std::string, Cached<StreamRec>> streams_;
  absl::node_hash_map<std::string, Cached<PersonRec>> persons_;
  absl::node_hash_map<std::string, Cached<int64_t>> counts_;
  // The facts of persons evaluated in this batch, kept as their streams change, with the
  // touchpoints each filter picks.
  struct PersonFacts {
    Facts facts;
    MatchIndex index;
  };
  absl::node_hash_map<std::string, PersonFacts> facts_;
};

}  // namespace

std::unique_ptr<Projection> NewSegmentsProjection() {
  return std::make_unique<SegmentsProjection>();
}

}  // namespace ihs::projections::segments
