// The workload generator: determinism, the shapes docs/workload.md promises (within the stated
// tolerances), and a ground truth that agrees with the events it describes.
#include "workload/generator.h"

#include <capnp/message.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "common/service_hours.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"
#include "workload/load.h"
#include "workload/model.h"

namespace ihs::workload {
namespace {

using schema::Channel;
using schema::Direction;
using schema::TouchpointType;

// One event, in plain values.
struct E {
  uint64_t seq = 0;
  std::string id, stream, causation, in_reply_to, corrects, thread, counterpart;
  int64_t occurred = 0;
  bool touchpoint = false, profile = false, link = false;
  Channel channel = Channel::UNSPECIFIED;
  Direction direction = Direction::UNSPECIFIED;
  TouchpointType type = TouchpointType::UNSPECIFIED;
  uint64_t audience = 0;
  std::string cohort;
  std::vector<std::string> linked;
  std::string text;    // content
  std::string handle;  // the party's own handle (from, or to of an outbound message)
  bool company_reply() const {
    return touchpoint && type == TouchpointType::REPLY && absl::StartsWith(counterpart, "e-") &&
           direction != Direction::INBOUND;
  }
  // docs/projections.md: an inbound message, request or complaint, or a public request or
  // complaint (a public message is a post, not addressed to the company).
  bool needs_answer() const {
    if (!touchpoint) return false;
    if (type == TouchpointType::MESSAGE) return direction == Direction::INBOUND;
    return (type == TouchpointType::REQUEST || type == TouchpointType::COMPLAINT) &&
           (direction == Direction::INBOUND || direction == Direction::PUBLIC);
  }
};

using ihs::testing::Hex;

struct History {
  std::vector<E> events;
  std::map<std::string, size_t> by_id;
  // Times of the company's replies per stream and thread.
  std::map<std::pair<std::string, std::string>, std::vector<int64_t>> replies;
  nlohmann::json truth;
  const E& at(const std::string& id) const { return events[by_id.at(id)]; }
  // Whether the company replied in e's stream and thread at a time in [from, to).
  bool RepliedBetween(const E& e, int64_t from, int64_t to) const {
    auto it = replies.find({e.stream, e.thread});
    if (it == replies.end()) return false;
    for (int64_t t : it->second) {
      if (t >= from && t < to) return true;
    }
    return false;
  }
};

History Generate(const Config& config) {
  Generator g(config);
  History h;
  for (uint64_t seq = 0;; ++seq) {
    capnp::MallocMessageBuilder m;
    auto b = m.initRoot<schema::Event>();
    if (!g.Next(b)) break;
    auto r = b.asReader();
    E e;
    e.seq = seq;
    e.id = Hex(r.getId());
    e.stream = r.getStreamId();
    e.causation = Hex(r.getCausationId());
    e.occurred = r.getOccurredAt();
    e.text = r.getContent().getText();
    if (r.isTouchpoint()) {
      auto t = r.getTouchpoint();
      e.touchpoint = true;
      e.channel = t.getChannel();
      e.direction = t.getDirection();
      e.type = t.getType();
      e.in_reply_to = Hex(t.getInReplyTo());
      e.corrects = Hex(t.getCorrects());
      e.thread = t.getThreadId();
      e.counterpart = t.getCounterpart();
      e.audience = t.getAudienceSize();
      auto c = r.getContent();
      if (e.direction == Direction::OUTBOUND) {
        if (c.getTo().size() == 1) e.handle = c.getTo()[0].getAddress();
      } else if (c.hasFrom()) {
        e.handle = c.getFrom().getAddress();
      }
    } else if (r.isPartyProfile()) {
      e.profile = true;
      e.cohort = r.getPartyProfile().getCohort();
    } else if (r.isIdentityLink()) {
      e.link = true;
      for (auto p : r.getIdentityLink().getParties()) e.linked.push_back(p);
    }
    h.by_id[e.id] = h.events.size();
    if (e.company_reply()) h.replies[{e.stream, e.thread}].push_back(e.occurred);
    h.events.push_back(std::move(e));
  }
  std::stringstream truth;
  g.WriteTruth(truth);
  h.truth = nlohmann::json::parse(truth.str());
  return h;
}

Config Medium() {
  Config c;
  c.parties = 4000;
  c.days = 120;
  c.seed = 3;
  return c;
}

// One medium history shared by the shape and truth tests (generated once).
const History& MediumHistory() {
  static const History* h = new History(Generate(Medium()));
  return *h;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// --- determinism -------------------------------------------------------------------------------

TEST(Generator, SameSeedGivesTheSameBytes) {
  testing::TempDir dir;
  Config c;
  c.parties = 500;
  c.days = 30;
  c.seed = 7;
  std::string truth[2];
  for (int run = 0; run < 2; ++run) {
    Generator g(c);
    auto report = WriteJsonLines(g, dir.path() + "/run" + std::to_string(run) + ".jsonl");
    IHS_ASSERT_OK(report.status());
    EXPECT_GT(report->appended, 1000u);
    std::stringstream t;
    g.WriteTruth(t);
    truth[run] = t.str();
  }
  const std::string a = ReadFile(dir.path() + "/run0.jsonl");
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, ReadFile(dir.path() + "/run1.jsonl"));
  EXPECT_EQ(truth[0], truth[1]);
}

TEST(Generator, DifferentSeedsGiveDifferentHistories) {
  Config a;
  a.parties = 300;
  a.days = 20;
  a.seed = 1;
  Config b = a;
  b.seed = 2;
  const History ha = Generate(a), hb = Generate(b);
  EXPECT_NE(Generator(a).fingerprint(), Generator(b).fingerprint());
  // Not only the ids: the events themselves (streams, times) differ.
  std::vector<std::pair<std::string, int64_t>> ea, eb;
  for (const E& e : ha.events) ea.emplace_back(e.stream, e.occurred);
  for (const E& e : hb.events) eb.emplace_back(e.stream, e.occurred);
  EXPECT_NE(ea, eb);
}

TEST(Generator, StopsAtExactlyMaxEvents) {
  Config c = Medium();
  c.max_events = 1234;
  const History h = Generate(c);
  EXPECT_EQ(h.events.size(), 1234u);
  EXPECT_EQ(h.truth["events"], 1234);
}

TEST(Generator, EventIdsAreFingerprintAndSequence) {
  Config c;
  c.parties = 100;
  c.days = 10;
  Generator g(c);
  const History h = Generate(c);
  for (size_t i = 0; i < h.events.size(); ++i) {
    ASSERT_EQ(h.events[i].id, absl::BytesToHexString(g.EventId(i)));
  }
}

TEST(Generator, RefusesValuesOutOfRange) {
  Config c;
  c.days = 10;
  for (uint64_t parties : {uint64_t{0}, uint64_t{9}, kMaxParties + 1}) {
    c.parties = parties;
    absl::Status s = Validate(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(s.message(), "--parties")) << s;
  }
  c.parties = 100;
  for (uint32_t days : {0u, kMaxDays + 1}) {
    c.days = days;
    absl::Status s = Validate(c);
    EXPECT_TRUE(absl::StrContains(s.message(), "--days")) << s;
  }
  c.days = 10;
  c.max_events = kMaxEvents + 1;
  EXPECT_TRUE(absl::StrContains(Validate(c).message(), "--events"));
  c.max_events = 0;
  IHS_EXPECT_OK(Validate(c));
}

// --- the shapes of docs/workload.md -------------------------------------------------------------

TEST(GeneratorShape, ActivityIsHeavyTailed) {
  // What customers start themselves: dialogues, purchases, public posts. Tolerance: the busiest
  // 1% of customers start at least 8% of it and the busiest 10% at least 35% (a uniform
  // population: 1% and 10%), while the median customer starts less than the mean.
  const History& h = MediumHistory();
  std::map<std::string, int> per_customer;
  for (const E& e : h.events) {
    if (e.touchpoint && absl::StartsWith(e.stream, "c-") && e.causation.empty() &&
        (e.type == TouchpointType::REQUEST || e.type == TouchpointType::COMPLAINT ||
         e.type == TouchpointType::PURCHASE ||
         (e.direction == Direction::PUBLIC && e.type != TouchpointType::LIKE &&
          e.type != TouchpointType::FOLLOW))) {
      ++per_customer[e.stream];
    }
  }
  std::vector<int> counts;
  long total = 0;
  for (auto& [s, n] : per_customer) counts.push_back(n), total += n;
  ASSERT_GT(counts.size(), 1000u);
  std::sort(counts.rbegin(), counts.rend());
  auto top_share = [&](size_t n) {
    long top = 0;
    for (size_t i = 0; i < n; ++i) top += counts[i];
    return static_cast<double>(top) / total;
  };
  EXPECT_GE(top_share(counts.size() / 100), 0.08);
  EXPECT_GE(top_share(counts.size() / 10), 0.35);
  EXPECT_LT(counts[counts.size() / 2], static_cast<double>(total) / counts.size());
}

TEST(GeneratorShape, FollowerCountsAreHeavyTailed) {
  // Tolerance: the largest audience of an original post is at least 50x the median one.
  const History& h = MediumHistory();
  std::vector<uint64_t> audiences;
  for (const E& e : h.events) {
    if (e.touchpoint && e.direction == Direction::PUBLIC && e.causation.empty() && e.audience > 0) {
      audiences.push_back(e.audience);
    }
  }
  ASSERT_GT(audiences.size(), 200u);
  std::sort(audiences.begin(), audiences.end());
  EXPECT_GE(audiences.back(), 50 * audiences[audiences.size() / 2]);
}

TEST(GeneratorShape, CohortsShapeChannelHabits) {
  // First messages of dialogues (inbound requests and complaints not caused by an earlier one).
  // Tolerance: older customers use letter, phone, email or in person for >= 85% of them and the
  // younger ones for <= 35%; the younger use app, chat or SMS for >= 60%, the older for <= 5%;
  // the younger post in public at least 3x as often per customer.
  const History& h = MediumHistory();
  std::map<std::string, std::string> cohort;
  for (const E& e : h.events) {
    if (e.profile && !e.cohort.empty()) cohort[e.stream] = e.cohort;
  }
  auto group = [&](const std::string& stream) -> int {
    auto it = cohort.find(stream);
    if (it == cohort.end()) return -1;
    for (const Cohort& c : kCohorts) {
      if (it->second == c.name) return static_cast<int>(c.group);
    }
    return -1;
  };
  double classic[3] = {}, instant[3] = {}, all[3] = {}, posts[3] = {}, people[3] = {};
  for (auto& [stream, c] : cohort) {
    if (group(stream) >= 0) ++people[group(stream)];
  }
  for (const E& e : h.events) {
    const int g = group(e.stream);
    if (g < 0 || !e.touchpoint) continue;
    if (e.direction == Direction::PUBLIC && e.causation.empty() && !e.company_reply()) ++posts[g];
    if (!(e.direction == Direction::INBOUND &&
          (e.type == TouchpointType::REQUEST || e.type == TouchpointType::COMPLAINT) &&
          e.causation.empty())) {
      continue;
    }
    ++all[g];
    if (e.channel == Channel::LETTER || e.channel == Channel::PHONE ||
        e.channel == Channel::EMAIL || e.channel == Channel::IN_PERSON) {
      ++classic[g];
    }
    if (e.channel == Channel::APP || e.channel == Channel::CHAT || e.channel == Channel::SMS) {
      ++instant[g];
    }
  }
  const int older = static_cast<int>(Group::kOlder), younger = static_cast<int>(Group::kYounger);
  ASSERT_GT(all[older], 200);
  ASSERT_GT(all[younger], 200);
  EXPECT_GE(classic[older] / all[older], 0.85);
  EXPECT_LE(classic[younger] / all[younger], 0.35);
  EXPECT_GE(instant[younger] / all[younger], 0.60);
  EXPECT_LE(instant[older] / all[older], 0.05);
  EXPECT_GE(posts[younger] / people[younger], 3 * posts[older] / people[older]);
}

TEST(GeneratorShape, ShareOfUnansweredComplaints) {
  // The model answers 78% of complaints (kAnswerComplaint); follow-ups and late answers move the
  // share a little. Tolerance: 12% to 32% of inbound complaints are open at the end.
  const History& h = MediumHistory();
  double complaints = 0, open = 0;
  for (const E& e : h.events) {
    if (e.touchpoint && e.direction == Direction::INBOUND && e.type == TouchpointType::COMPLAINT) {
      ++complaints;
    }
  }
  for (const auto& u : h.truth["unanswered"]) open += u["type"] == "complaint";
  ASSERT_GT(complaints, 500);
  EXPECT_GE(open / complaints, 0.12);
  EXPECT_LE(open / complaints, 0.32);
}

TEST(GeneratorShape, EmployeesReplyOnlyInServiceHours) {
  const History& h = MediumHistory();
  const ServiceHours& hours = ServiceHours::Default();
  int replies = 0;
  for (const E& e : h.events) {
    if (!e.company_reply()) continue;
    ++replies;
    // Open at the moment, or the moment is the closing time an answer ran up to.
    ASSERT_TRUE(hours.IsOpen(e.occurred) || hours.IsOpen(e.occurred - 1))
        << "reply " << e.id << " at " << absl::FromUnixMicros(e.occurred);
  }
  EXPECT_GT(replies, 1000);
}

TEST(GeneratorShape, ReplyDelaysFollowTheChannel) {
  // Median service time to the answer: chat < email < letter.
  const History& h = MediumHistory();
  std::map<Channel, std::vector<int64_t>> by_channel;
  for (const auto& r : h.truth["responses"]) {
    by_channel[h.at(r["event"]).channel].push_back(r["service_s"].get<int64_t>());
  }
  auto median = [&](Channel c) {
    auto& v = by_channel[c];
    EXPECT_GT(v.size(), 20u);
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  };
  EXPECT_LT(median(Channel::CHAT), median(Channel::EMAIL));
  EXPECT_LT(median(Channel::EMAIL), median(Channel::LETTER));
}

TEST(GeneratorShape, SomeRecordsArriveLateAndOutOfOrder) {
  // Letters are scanned 1-10 days late with chance 60%: tolerance 45% to 75% of inbound letters
  // arrive after an event that happened over a day later than they did.
  const History& h = MediumHistory();
  int64_t latest = 0;
  double letters = 0, late = 0;
  for (const E& e : h.events) {
    if (e.touchpoint && e.channel == Channel::LETTER && e.direction == Direction::INBOUND &&
        e.causation.empty()) {
      ++letters;
      late += e.occurred < latest - 86400LL * 1000000;
    }
    latest = std::max(latest, e.occurred);
  }
  ASSERT_GT(letters, 100);
  EXPECT_GE(late / letters, 0.45);
  EXPECT_LE(late / letters, 0.75);
}

// --- the ground truth agrees with the events ---------------------------------------------------

TEST(GeneratorTruth, UnansweredAndAnsweredPartitionTheInboundMessages) {
  const History& h = MediumHistory();
  std::set<std::string> open, answered;
  for (const auto& u : h.truth["unanswered"]) {
    const E& e = h.at(u["event"]);
    EXPECT_TRUE(e.needs_answer()) << e.id;
    EXPECT_EQ(u["party"], e.stream);
    open.insert(e.id);
    EXPECT_FALSE(h.RepliedBetween(e, e.occurred, INT64_MAX)) << "unanswered " << e.id;
  }
  const ServiceHours& hours = ServiceHours::Default();
  for (const auto& r : h.truth["responses"]) {
    const E& in = h.at(r["event"]);
    const E& reply = h.at(r["reply"]);
    EXPECT_TRUE(in.needs_answer());
    EXPECT_TRUE(reply.company_reply());
    EXPECT_EQ(in.stream, reply.stream);
    EXPECT_EQ(in.thread, reply.thread);
    EXPECT_EQ(r["wall_s"].get<int64_t>(), (reply.occurred - in.occurred) / 1000000);
    EXPECT_EQ(r["service_s"].get<int64_t>(), hours.Between(in.occurred, reply.occurred) / 1000000);
    EXPECT_TRUE(answered.insert(in.id).second) << "answered twice: " << in.id;
  }
  // Every message that waits for an answer is open or answered, unless it was withdrawn: then
  // it is neither (as the timeline's summary counts it).
  std::set<std::string> retracted;
  for (const E& e : h.events) {
    if (e.touchpoint && e.type == TouchpointType::RETRACTION) retracted.insert(e.corrects);
  }
  size_t waiting = 0, withdrawn = 0, in_public = 0;
  for (const E& e : h.events) {
    if (!e.needs_answer()) continue;
    if (retracted.count(e.id)) {
      ++withdrawn;
      EXPECT_EQ(open.count(e.id) + answered.count(e.id), 0u) << "withdrawn " << e.id;
      continue;
    }
    ++waiting;
    in_public += e.direction == Direction::PUBLIC;
    EXPECT_TRUE(open.count(e.id) + answered.count(e.id) == 1) << e.id;
  }
  EXPECT_EQ(open.size() + answered.size(), waiting);
  EXPECT_GT(in_public, 10u);  // public complaints are among them
  EXPECT_GT(withdrawn, 0u);
}

TEST(GeneratorTruth, ChannelSwitchesFollowAnUnansweredMessage) {
  const History& h = MediumHistory();
  int is_public = 0;
  ASSERT_GT(h.truth["channel_switches"].size(), 50u);
  for (const auto& s : h.truth["channel_switches"]) {
    const E& from = h.at(s["from_event"]);
    const E& to = h.at(s["to_event"]);
    EXPECT_TRUE(from.needs_answer());
    EXPECT_EQ(from.stream, s["party"]);
    EXPECT_EQ(to.stream, s["to_party"]);
    EXPECT_EQ(to.causation, from.id);
    EXPECT_NE(from.channel, to.channel);
    EXPECT_GT(to.occurred, from.occurred);
    EXPECT_EQ(to.type, TouchpointType::COMPLAINT);
    // Nobody had answered the first message when the customer switched.
    EXPECT_FALSE(h.RepliedBetween(from, from.occurred, to.occurred)) << "switch from " << from.id;
    if (s["public"].get<bool>()) {
      ++is_public;
      EXPECT_EQ(to.direction, Direction::PUBLIC);
    }
  }
  EXPECT_GT(is_public, 10);
}

TEST(GeneratorTruth, IdentitiesNameStreamsOfTheLog) {
  const History& h = MediumHistory();
  std::set<std::string> streams;
  std::set<std::pair<std::string, std::string>> links;
  for (const E& e : h.events) {
    streams.insert(e.stream);
    if (e.link) links.insert({e.linked.at(0), e.linked.at(1)});
  }
  int linked = 0, unlinked = 0;
  for (const auto& id : h.truth["identities"]) {
    const std::string a = id["streams"][0], b = id["streams"][1];
    EXPECT_TRUE(streams.count(a) && streams.count(b)) << a << " " << b;
    EXPECT_EQ(id["linked_in_log"].get<bool>(), links.count({a, b}) == 1) << a;
    (id["linked_in_log"].get<bool>() ? linked : unlinked)++;
  }
  // Both kinds exist: links to find in the log, and links only a resolver can find.
  EXPECT_GT(linked, 5);
  EXPECT_GT(unlinked, 5);
  EXPECT_EQ(static_cast<size_t>(linked), links.size());
}

// The traps of identity resolution are in the log as the truth says: a household shares a
// landline or a postal address, a moved landline reaches another customer, a friend quotes an
// order reference; and the accounts that quote their owner's order reference do.
TEST(GeneratorTruth, IdentityTrapsAreInTheLog) {
  const History& h = MediumHistory();
  std::map<std::string, std::set<std::string>> handles, texts;
  for (const E& e : h.events) {
    if (!e.handle.empty() && !absl::StrContains(e.handle, "company")) {
      handles[e.stream].insert(e.handle);
    }
    if (!e.text.empty()) texts[e.stream].insert(e.text);
  }
  auto shares_a_handle = [&](const std::string& a, const std::string& b) {
    for (const std::string& x : handles[a]) {
      if (handles[b].count(x)) return true;
    }
    return false;
  };
  auto quotes = [&](const std::string& stream, const std::string& what) {
    for (const std::string& t : texts[stream]) {
      if (absl::StrContains(t, what)) return true;
    }
    return false;
  };
  std::map<std::string, std::string> order_of;
  for (const auto& id : h.truth["identities"]) order_of[id["person"]] = id["order_ref"];
  std::map<std::string, int> seen, shown;
  for (const auto& n : h.truth["not_same"]) {
    const std::string a = n["streams"][0], b = n["streams"][1], why = n["why"];
    EXPECT_NE(a, b);
    ++seen[why];
    if (why == "friend_quotes_order") {
      // b quotes a's order: a is a customer whose order reference shows in its own texts.
      bool found = false;
      for (const std::string& t : texts[b]) {
        if (absl::StrContains(t, "my friend's order")) found = true;
      }
      EXPECT_TRUE(found) << b;
    } else if (shares_a_handle(a, b)) {
      ++shown[why];
    }
  }
  EXPECT_GT(seen["household"], 10);
  EXPECT_GT(seen["moved_phone"], 5);
  EXPECT_GT(seen["friend_quotes_order"], 5);
  // Not every pair has used the shared line or address yet, but many have.
  EXPECT_GT(shown["household"], seen["household"] / 4);
  EXPECT_GT(shown["moved_phone"], 0);
  int quoting = 0, typos = 0;
  for (const auto& id : h.truth["identities"]) {
    const std::string account = id["streams"][1];
    EXPECT_EQ(id["quotes_order_ref"].get<bool>(), quotes(account, id["order_ref"])) << account;
    quoting += id["quotes_order_ref"].get<bool>();
    typos += id["name_typo"].get<bool>();
  }
  EXPECT_GT(quoting, static_cast<int>(h.truth["identities"].size() * 7 / 10));
  EXPECT_GT(typos, 3);
}

TEST(GeneratorTruth, InfluentialPersonsReachWhatTheirPostsCarried) {
  // Recompute reach from the events: every public post, share and mention adds its audience to
  // the author of the original post at the root of its causation chain, unless that post was
  // retracted before; a retraction takes back what the post's cascade reached until then.
  const History& h = MediumHistory();
  std::map<std::string, uint64_t> reach, cascade;  // by stream; by original post
  std::set<std::string> retracted;
  std::map<std::string, std::string> parent;  // union-find over the log's links
  std::function<std::string(const std::string&)> find = [&](const std::string& s) {
    auto it = parent.find(s);
    return it == parent.end() || it->second == s ? s : find(it->second);
  };
  int retractions = 0;
  for (const E& e : h.events) {
    if (e.link) {
      for (size_t i = 1; i < e.linked.size(); ++i) parent[find(e.linked[i])] = find(e.linked[0]);
    }
    if (!e.touchpoint) continue;
    if (e.type == TouchpointType::RETRACTION) {
      if (cascade.count(e.corrects) && retracted.insert(e.corrects).second) {
        reach[e.stream] -= cascade[e.corrects];
        ++retractions;
      }
      continue;
    }
    if (e.direction != Direction::PUBLIC || e.company_reply() ||
        e.type == TouchpointType::CORRECTION) {
      continue;
    }
    const E* root = &e;
    while (!root->causation.empty()) {
      const E& p = h.at(root->causation);
      if (p.direction != Direction::PUBLIC) break;
      root = &p;
    }
    if (retracted.count(root->id)) continue;
    cascade[root->id] += e.audience;
    reach[root->stream] += e.audience;
  }
  EXPECT_GT(retractions, 0);
  std::map<std::string, uint64_t> person_reach;  // by the group's root
  for (const auto& [s, r] : reach) person_reach[find(s)] += r;
  std::vector<uint64_t> top;
  for (const auto& [p, r] : person_reach) top.push_back(r);
  std::sort(top.rbegin(), top.rend());
  const auto& listed = h.truth["influential"];
  ASSERT_EQ(listed.size(), static_cast<size_t>(kTruthInfluential));
  for (size_t i = 0; i < listed.size(); ++i) {
    EXPECT_EQ(listed[i]["reach"].get<uint64_t>(), person_reach[find(listed[i]["person"])])
        << listed[i];
    EXPECT_EQ(listed[i]["reach"].get<uint64_t>(), top[i]) << "rank " << i;
  }
}

TEST(GeneratorTruth, CorrectionsNameEarlierEvents) {
  const History& h = MediumHistory();
  int retractions = 0;
  ASSERT_GT(h.truth["corrections"].size(), 10u);
  for (const auto& c : h.truth["corrections"]) {
    const E& e = h.at(c["event"]);
    const E& target = h.at(c["corrects"]);
    EXPECT_EQ(e.corrects, target.id);
    EXPECT_EQ(e.stream, target.stream);
    EXPECT_LT(target.seq, e.seq);
    retractions += c["retraction"].get<bool>();
    EXPECT_EQ(e.type, c["retraction"].get<bool>() ? TouchpointType::RETRACTION
                                                  : TouchpointType::CORRECTION);
  }
  EXPECT_GT(retractions, 0);
}

TEST(GeneratorTruth, TheStoryIsThere) {
  // customer-ada: an email complaint nobody answers, and two days later the same complaint in
  // public on Twitter, shared by others.
  const History& h = MediumHistory();
  const auto& story = h.truth["story"];
  ASSERT_EQ(story["party"], Generator::kStoryParty);
  const E& email = h.at(story["email"]);
  const E& tweet = h.at(story["tweet"]);
  EXPECT_EQ(email.stream, "customer-ada");
  EXPECT_EQ(email.channel, Channel::EMAIL);
  EXPECT_EQ(email.type, TouchpointType::COMPLAINT);
  EXPECT_EQ(tweet.channel, Channel::TWITTER);
  EXPECT_EQ(tweet.direction, Direction::PUBLIC);
  EXPECT_EQ(tweet.causation, email.id);
  EXPECT_NEAR(static_cast<double>(tweet.occurred - email.occurred) / 86400e6, 2.0, 0.1);
  for (const E& e : h.events) {
    EXPECT_FALSE(e.company_reply() && e.in_reply_to == email.id) << "the email stays unanswered";
  }
  int shares = 0;
  for (const E& e : h.events) {
    shares +=
        e.type == TouchpointType::SHARE && e.causation == tweet.id && e.stream != email.stream;
  }
  EXPECT_GE(shares, 3);
}

}  // namespace
}  // namespace ihs::workload
