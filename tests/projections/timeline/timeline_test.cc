// Tests of projections/timeline/timeline.h against the workload generator's ground truth: every
// unanswered message shows as open, every response time matches to the second, every channel
// switch is marked, every correction is applied; plus ordering, paging, the summary and bad
// input.
#include "projections/timeline/timeline.h"

#include <capnp/message.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <sstream>

#include "absl/strings/escaping.h"
#include "nlohmann/json.hpp"
#include "projections/registry.h"
#include "projections/timeline/entry.h"
#include "schema/json.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"
#include "workload/generator.h"
#include "workload/load.h"

namespace ihs::projections::timeline {
namespace {

using schema::Channel;

struct Entry {
  uint64_t position;
  int64_t occurred;
  std::string channel, type, response, reply, switch_from, switch_channel, corrected, retracted;
  int64_t wall = -1, service = -1;
};

class TimelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ihs::testing::TempDir();
    store::Options o;
    o.path = dir_->Sub("data");
    o.sync = false;  // a test fixture; nothing here is about durability
    auto s = store::EventStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = s->release();
    workload::Config c;
    c.parties = 3000;
    c.days = 60;
    c.seed = 11;
    workload::Generator g(c);
    IHS_ASSERT_OK(workload::LoadIntoStore(g, *store_).status());
    std::stringstream truth;
    g.WriteTruth(truth);
    truth_ = new nlohmann::json(nlohmann::json::parse(truth.str()));
    auto r = Runner::Open(store_, AllProjections());
    ASSERT_TRUE(r.ok()) << r.status();
    runner_ = r->release();
    IHS_ASSERT_OK(runner_->CatchUp(kName));
    std::string err;
    ASSERT_TRUE(
        absl::ParseTime(absl::RFC3339_full, (*truth_)["as_of"].get<std::string>(), &as_of_, &err))
        << err;
  }
  static void TearDownTestSuite() {
    delete runner_;
    delete store_;
    delete truth_;
    delete dir_;
  }

  // The party's whole timeline, by event id (hex), read a page at a time.
  static const std::map<std::string, Entry>& TimelineOf(const std::string& party) {
    static std::map<std::string, std::map<std::string, Entry>> cache;
    auto it = cache.find(party);
    if (it != cache.end()) return it->second;
    std::map<std::string, Entry>& out = cache[party];
    auto view = runner_->View(kName);
    EXPECT_TRUE(view.ok()) << view.status();
    Query q;
    q.party = party;
    q.limit = kMaxPageEntries;
    q.as_of = as_of_;
    int64_t last_occurred = INT64_MIN;
    for (;;) {
      capnp::MallocMessageBuilder m;
      absl::Status s = ReadPage(*view, q, m);
      EXPECT_TRUE(s.ok()) << s;
      if (!s.ok()) break;
      auto page = m.getRoot<schema::TimelinePage>();
      for (auto e : page.getEntries()) {
        EXPECT_GE(e.getOccurredAt(), last_occurred) << "out of order in " << party;
        last_occurred = e.getOccurredAt();
        Entry x;
        x.position = e.getPosition();
        x.occurred = e.getOccurredAt();
        x.channel = schema::EnumName(e.getChannel());
        x.type = schema::EnumName(e.getType());
        if (e.getResponse().isOpen()) x.response = "open";
        if (e.getResponse().isAnswered()) {
          x.response = "answered";
          auto a = e.getResponse().getAnswered();
          x.reply = Hex(a.getReplyEventId());
          x.wall = a.getWallSeconds();
          x.service = a.getServiceSeconds();
        }
        if (e.hasSwitchFrom()) {
          x.switch_from = Hex(e.getSwitchFrom().getEventId());
          x.switch_channel = schema::EnumName(e.getSwitchFrom().getChannel());
        }
        x.corrected = Hex(e.getCorrectedBy());
        x.retracted = Hex(e.getRetractedBy());
        out[Hex(e.getEventId())] = x;
      }
      if (page.getNextCursor().size() == 0) break;
      q.cursor = page.getNextCursor().cStr();
    }
    return out;
  }

  static std::string Hex(capnp::Data::Reader d) { return ihs::testing::Hex(d); }

  // Which stream holds an event (the truth names parties only for some records).
  static std::string StreamOf(const std::string& hex_id) {
    auto pos = store_->FindEvent(absl::HexStringToBytes(hex_id));
    EXPECT_TRUE(pos.ok() && pos->has_value()) << hex_id;
    auto ev = store_->ReadAll(**pos, 1);
    EXPECT_TRUE(ev.ok());
    return std::string((*ev)[0].event().getStreamId().cStr());
  }

  static ihs::testing::TempDir* dir_;
  static store::EventStore* store_;
  static Runner* runner_;
  static nlohmann::json* truth_;
  static absl::Time as_of_;
};

ihs::testing::TempDir* TimelineTest::dir_;
store::EventStore* TimelineTest::store_;
Runner* TimelineTest::runner_;
nlohmann::json* TimelineTest::truth_;
absl::Time TimelineTest::as_of_;

TEST_F(TimelineTest, EveryUnansweredMessageOfTheTruthShowsAsOpenWithItsWait) {
  const auto& open = (*truth_)["unanswered"];
  ASSERT_GT(open.size(), 20u);
  size_t complaints = 0;
  for (const auto& u : open) {
    const auto& tl = TimelineOf(u["party"]);
    auto it = tl.find(u["event"]);
    ASSERT_NE(it, tl.end()) << u.dump();
    EXPECT_EQ(it->second.response, "open") << u.dump();
    EXPECT_EQ(it->second.channel, u["channel"].get<std::string>());
    complaints += u["type"] == "complaint";
  }
  EXPECT_GT(complaints, 5u);
}

TEST_F(TimelineTest, ResponseTimesMatchTheTruthToTheSecond) {
  const auto& responses = (*truth_)["responses"];
  ASSERT_GT(responses.size(), 100u);
  for (const auto& r : responses) {
    const auto& tl = TimelineOf(StreamOf(r["event"]));
    auto it = tl.find(r["event"]);
    ASSERT_NE(it, tl.end()) << r.dump();
    EXPECT_EQ(it->second.response, "answered") << r.dump();
    EXPECT_EQ(it->second.reply, r["reply"].get<std::string>()) << r.dump();
    EXPECT_EQ(it->second.wall, r["wall_s"].get<int64_t>()) << r.dump();
    EXPECT_EQ(it->second.service, r["service_s"].get<int64_t>()) << r.dump();
  }
}

TEST_F(TimelineTest, EveryChannelSwitchOfTheTruthIsMarked) {
  const auto& switches = (*truth_)["channel_switches"];
  ASSERT_GT(switches.size(), 10u);
  size_t public_ones = 0;
  for (const auto& s : switches) {
    const auto& tl = TimelineOf(s["to_party"]);
    auto it = tl.find(s["to_event"]);
    ASSERT_NE(it, tl.end()) << s.dump();
    EXPECT_EQ(it->second.switch_from, s["from_event"].get<std::string>()) << s.dump();
    EXPECT_EQ(it->second.switch_channel, s["from_channel"].get<std::string>()) << s.dump();
    EXPECT_EQ(it->second.channel, s["to_channel"].get<std::string>()) << s.dump();
    public_ones += s["public"].get<bool>();
  }
  EXPECT_GT(public_ones, 0u);
}

TEST_F(TimelineTest, CorrectionsAndRetractionsChangeTheEntryTheyName) {
  const auto& corrections = (*truth_)["corrections"];
  ASSERT_GT(corrections.size(), 5u);
  for (const auto& c : corrections) {
    const std::string party = StreamOf(c["corrects"]);
    const auto& tl = TimelineOf(party);
    auto it = tl.find(c["corrects"]);
    ASSERT_NE(it, tl.end()) << c.dump();
    if (c["retraction"].get<bool>()) {
      EXPECT_EQ(it->second.retracted, c["event"].get<std::string>()) << c.dump();
      // Withdrawn: it waits for nothing any more, on its entry as in the summary.
      EXPECT_NE(it->second.response, "open") << c.dump();
    } else {
      EXPECT_EQ(it->second.corrected, c["event"].get<std::string>()) << c.dump();
    }
    // The correction itself is not an entry of its own: it changed the one it names.
    EXPECT_EQ(tl.count(c["event"]), 0u) << c.dump();
  }
}

TEST_F(TimelineTest, SummaryCountsOpenMessagesAndTheMedianResponse) {
  // The story party: an unanswered email, then a public complaint on Twitter (a switch).
  const std::string party = (*truth_)["story"]["party"];
  auto view = runner_->View(kName);
  IHS_ASSERT_OK(view);
  capnp::MallocMessageBuilder m;
  IHS_ASSERT_OK(ReadSummary(*view, party, as_of_, m));
  auto s = m.getRoot<schema::TimelineSummary>();
  size_t truth_open = 0;
  for (const auto& u : (*truth_)["unanswered"]) truth_open += u["party"] == party;
  EXPECT_EQ(s.getOpen().size(), truth_open);
  EXPECT_GE(s.getChannelSwitches(), 1u);
  const auto& tweet = TimelineOf(party).at((*truth_)["story"]["tweet"]);
  EXPECT_EQ(tweet.switch_from, (*truth_)["story"]["email"].get<std::string>());
  // The public complaint waits for an answer too, and the company's public reply answers it and
  // the email of the same thread: the summary's open and answered partition what waited.
  EXPECT_EQ(tweet.response, "answered");
  EXPECT_EQ(TimelineOf(party).at((*truth_)["story"]["email"]).response, "answered");
  size_t waited = 0;
  for (const auto& [id, e] : TimelineOf(party))
    waited += !e.response.empty() && e.retracted.empty();
  EXPECT_EQ(s.getOpen().size() + s.getAnswered(), waited);
  // Across the parties with open messages, the summary lists exactly the truth's.
  std::map<std::string, size_t> open_by_party;
  for (const auto& u : (*truth_)["unanswered"]) ++open_by_party[u["party"]];
  for (const auto& [p, n] : open_by_party) {
    capnp::MallocMessageBuilder mm;
    IHS_ASSERT_OK(ReadSummary(*view, p, as_of_, mm));
    EXPECT_EQ(mm.getRoot<schema::TimelineSummary>().getOpen().size(), n) << p;
  }
  EXPECT_EQ(s.getEntries(), TimelineOf(party).size());
  // For every party with answers, the summary's median is the truth's.
  size_t checked = 0;
  std::map<std::string, std::vector<int64_t>> walls;
  for (const auto& r : (*truth_)["responses"]) {
    walls[StreamOf(r["event"])].push_back(r["wall_s"].get<int64_t>());
  }
  for (auto& [p, w] : walls) {
    capnp::MallocMessageBuilder mm;
    IHS_ASSERT_OK(ReadSummary(*view, p, as_of_, mm));
    auto ps = mm.getRoot<schema::TimelineSummary>();
    EXPECT_EQ(ps.getAnswered(), w.size()) << p;
    std::sort(w.begin(), w.end());
    EXPECT_EQ(ps.getMedianResponseSeconds(), w[(w.size() - 1) / 2]) << p;
    ++checked;
  }
  EXPECT_GT(checked, 100u);
}

// asOf is the caller's: at the ends of time, waits are 0 (before everything) or counted to the
// end of int64, never an overflow.
TEST_F(TimelineTest, WaitsAsOfTheEndsOfTimeSaturate) {
  const std::string party = (*truth_)["unanswered"][0]["party"];
  auto view = runner_->View(kName);
  IHS_ASSERT_OK(view);
  for (absl::Time as_of : {absl::InfinitePast(), absl::InfiniteFuture()}) {
    auto want = [&](int64_t occurred) -> int64_t {
      EXPECT_GT(occurred, 0);  // the generator's times: the difference to the end is exact
      return as_of == absl::InfinitePast()
                 ? 0
                 : (std::numeric_limits<int64_t>::max() - occurred) / 1'000'000;
    };
    capnp::MallocMessageBuilder m;
    IHS_ASSERT_OK(ReadSummary(*view, party, as_of, m));
    auto open = m.getRoot<schema::TimelineSummary>().getOpen();
    ASSERT_GT(open.size(), 0u);
    for (auto o : open) EXPECT_EQ(o.getWaitingSeconds(), want(o.getOccurredAt()));
    Query q;
    q.party = party;
    q.limit = kMaxPageEntries;
    q.as_of = as_of;
    capnp::MallocMessageBuilder p;
    IHS_ASSERT_OK(ReadPage(*view, q, p));
    size_t seen = 0;
    for (auto e : p.getRoot<schema::TimelinePage>().getEntries()) {
      if (!e.getResponse().isOpen()) continue;
      ++seen;
      EXPECT_EQ(e.getWaitingSeconds(), want(e.getOccurredAt()));
    }
    EXPECT_EQ(seen, open.size());
  }
}

TEST_F(TimelineTest, PagesFollowedByCursorEqualOneLargePage) {
  const std::string party = (*truth_)["story"]["party"];
  auto view = runner_->View(kName);
  IHS_ASSERT_OK(view);
  Query all;
  all.party = party;
  all.limit = kMaxPageEntries;
  capnp::MallocMessageBuilder big;
  IHS_ASSERT_OK(ReadPage(*view, all, big));
  std::vector<uint64_t> expected;
  for (auto e : big.getRoot<schema::TimelinePage>().getEntries())
    expected.push_back(e.getPosition());
  ASSERT_GT(expected.size(), 3u);
  Query q = all;
  q.limit = 2;
  std::vector<uint64_t> got;
  for (int pages = 0; pages < 1000; ++pages) {
    capnp::MallocMessageBuilder m;
    IHS_ASSERT_OK(ReadPage(*view, q, m));
    auto page = m.getRoot<schema::TimelinePage>();
    EXPECT_LE(page.getEntries().size(), 2u);
    for (auto e : page.getEntries()) got.push_back(e.getPosition());
    if (page.getNextCursor().size() == 0) break;
    q.cursor = page.getNextCursor().cStr();
  }
  EXPECT_EQ(got, expected);
}

// A person's page (Query::also, docs/identity.md): every stream's entries once, in the order of
// occurred_at and position, each marked with its stream, and paged without a gap or a repeat.
TEST_F(TimelineTest, APersonsPagesMergeItsStreamsInOrder) {
  auto view = runner_->View(kName);
  IHS_ASSERT_OK(view);
  Query q;
  q.party = "c-000001";
  q.also = {"c-000002", "c-000003", "c-000001"};  // the party again is ignored
  q.limit = kMaxPageEntries;
  capnp::MallocMessageBuilder big;
  IHS_ASSERT_OK(ReadPage(*view, q, big));
  auto page = big.getRoot<schema::TimelinePage>();
  ASSERT_EQ(page.getStreams().size(), 3u);
  std::map<std::string, size_t> per_stream;
  std::vector<std::pair<int64_t, uint64_t>> order;
  for (auto e : page.getEntries()) {
    ++per_stream[e.getParty().cStr()];
    order.emplace_back(e.getOccurredAt(), e.getPosition());
  }
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  for (const char* s : {"c-000001", "c-000002", "c-000003"}) {
    Query one;
    one.party = s;
    one.limit = kMaxPageEntries;
    capnp::MallocMessageBuilder m;
    IHS_ASSERT_OK(ReadPage(*view, one, m));
    EXPECT_EQ(per_stream[s], m.getRoot<schema::TimelinePage>().getEntries().size()) << s;
  }
  q.limit = 3;
  std::vector<std::pair<int64_t, uint64_t>> paged;
  for (int pages = 0; pages < 1000; ++pages) {
    capnp::MallocMessageBuilder m;
    IHS_ASSERT_OK(ReadPage(*view, q, m));
    for (auto e : m.getRoot<schema::TimelinePage>().getEntries()) {
      paged.emplace_back(e.getOccurredAt(), e.getPosition());
    }
    if (m.getRoot<schema::TimelinePage>().getNextCursor().size() == 0) break;
    q.cursor = m.getRoot<schema::TimelinePage>().getNextCursor().cStr();
  }
  EXPECT_EQ(paged, order);
}

TEST_F(TimelineTest, TimeRangeAndChannelFilterSelectEntries) {
  const std::string party = (*truth_)["story"]["party"];
  auto view = runner_->View(kName);
  IHS_ASSERT_OK(view);
  Query q;
  q.party = party;
  q.limit = kMaxPageEntries;
  q.channels = {Channel::TWITTER};
  capnp::MallocMessageBuilder m;
  IHS_ASSERT_OK(ReadPage(*view, q, m));
  auto entries = m.getRoot<schema::TimelinePage>().getEntries();
  ASSERT_GE(entries.size(), 1u);
  for (auto e : entries) EXPECT_EQ(e.getChannel(), Channel::TWITTER);
  q.channels.clear();
  q.from = entries[0].getOccurredAt();
  q.to = q.from + 1;
  capnp::MallocMessageBuilder one;
  IHS_ASSERT_OK(ReadPage(*view, q, one));
  for (auto e : one.getRoot<schema::TimelinePage>().getEntries()) {
    EXPECT_EQ(e.getOccurredAt(), q.from);
  }
}

TEST_F(TimelineTest, BadQueriesAreClearErrors) {
  auto view = runner_->View(kName);
  IHS_ASSERT_OK(view);
  auto code = [&](const Query& q) {
    capnp::MallocMessageBuilder m;
    absl::Status s = ReadPage(*view, q, m);
    return std::make_pair(s.code(), std::string(s.message()));
  };
  Query q;
  q.party = "no-such-party";
  EXPECT_EQ(code(q), std::make_pair(absl::StatusCode::kNotFound,
                                    std::string("no such party: no-such-party")));
  capnp::MallocMessageBuilder m;
  EXPECT_EQ(ReadSummary(*view, "no-such-party", as_of_, m).code(), absl::StatusCode::kNotFound);
  q.party = (*truth_)["story"]["party"];
  Query bad = q;
  bad.from = 10, bad.to = 5;
  EXPECT_EQ(code(bad).first, absl::StatusCode::kInvalidArgument);
  EXPECT_NE(code(bad).second.find("backwards"), std::string::npos);
  bad = q;
  bad.limit = 0;
  EXPECT_EQ(code(bad).first, absl::StatusCode::kInvalidArgument);
  bad.limit = kMaxPageEntries + 1;
  EXPECT_NE(code(bad).second.find("limit 1001"), std::string::npos);
  bad = q;
  bad.channels = {static_cast<Channel>(99)};
  EXPECT_NE(code(bad).second.find("unknown channel 99"), std::string::npos);
  bad = q;
  bad.cursor = "zz";
  EXPECT_NE(code(bad).second.find("bad cursor"), std::string::npos);
}

// The stored form of an entry: every field survives, the bytes depend only on the fields, and
// damaged bytes are kDataLoss, not a wrong entry.
TEST(TimelineEntryForm, EveryFieldRoundTripsAndDamageIsDataLoss) {
  using StoredEntry = ::ihs::projections::timeline::Entry;  // not the test's Entry above
  StoredEntry e;
  e.position = 1234567890123;
  e.event_id = std::string(16, '\x11');
  e.occurred_at = -5;  // before the epoch
  e.recorded_at = 1700000000000001;
  e.channel = schema::Channel::TWITTER;
  e.direction = schema::Direction::PUBLIC;
  e.type = schema::TouchpointType::COMPLAINT;
  e.sentiment = -0.75f;
  e.topics = {"billing", std::string(300, 't')};  // a length that takes two varint bytes
  e.thread = "event:00ff";
  e.in_reply_to = std::string(16, '\x22');
  e.counterpart = "e-7";
  e.campaign_id = "spring";
  e.audience_size = 42;
  e.source_system = "crm";
  e.company_reply = true;
  e.response = StoredEntry::Response::kAnswered;
  e.answer = {99, std::string(16, '\x33'), schema::Channel::EMAIL, 1700000000000002, 3600, 1800};
  e.has_switch = true;
  e.switch_from = {"c-1", std::string(16, '\x44'), schema::Channel::LETTER, 17, 98};
  e.corrected_by = std::string(16, '\x55');
  e.retracted_by = std::string(16, '\x66');
  const std::string bytes = EncodeEntry(e);
  // The key holds occurred_at and position: the value comes back with them.
  auto back = DecodeEntry(bytes, e.occurred_at, e.position);
  IHS_ASSERT_OK(back);
  EXPECT_EQ(EncodeEntry(*back), bytes);
  capnp::MallocMessageBuilder m;
  ToRecord(*back, m.initRoot<schema::TimelineEntry>());
  auto r = m.getRoot<schema::TimelineEntry>().asReader();
  EXPECT_EQ(r.getPosition(), e.position);
  EXPECT_EQ(r.getOccurredAt(), -5);
  EXPECT_EQ(r.getChannel(), schema::Channel::TWITTER);
  EXPECT_EQ(r.getDirection(), schema::Direction::PUBLIC);
  EXPECT_EQ(r.getType(), schema::TouchpointType::COMPLAINT);
  EXPECT_EQ(r.getSentiment(), -0.75f);
  ASSERT_EQ(r.getTopics().size(), 2u);
  EXPECT_EQ(r.getTopics()[1].size(), 300u);
  EXPECT_EQ(std::string(r.getThread().cStr()), "event:00ff");
  EXPECT_EQ(std::string(r.getCounterpart().cStr()), "e-7");
  EXPECT_EQ(std::string(r.getCampaignId().cStr()), "spring");
  EXPECT_EQ(r.getAudienceSize(), 42u);
  EXPECT_EQ(std::string(r.getSourceSystem().cStr()), "crm");
  EXPECT_TRUE(r.getCompanyReply());
  ASSERT_TRUE(r.getResponse().isAnswered());
  EXPECT_EQ(r.getRecordedAt(), 1700000000000001);
  EXPECT_EQ(r.getResponse().getAnswered().getReplyPosition(), 99u);  // before the entry
  EXPECT_EQ(r.getResponse().getAnswered().getRepliedAt(), 1700000000000002);
  EXPECT_EQ(r.getResponse().getAnswered().getWallSeconds(), 3600);
  EXPECT_EQ(r.getResponse().getAnswered().getServiceSeconds(), 1800);
  EXPECT_EQ(r.getResponse().getAnswered().getReplyChannel(), schema::Channel::EMAIL);
  EXPECT_EQ(std::string(r.getSwitchFrom().getParty().cStr()), "c-1");
  EXPECT_EQ(r.getSwitchFrom().getPosition(), 98u);
  EXPECT_EQ(r.getCorrectedBy().size(), 16u);
  EXPECT_EQ(r.getRetractedBy()[0], 0x66);
  // An entry with nothing optional, and an unset (NaN) sentiment, round-trips too.
  StoredEntry plain;
  plain.response = StoredEntry::Response::kOpen;
  auto plain_back = DecodeEntry(EncodeEntry(plain), 0, 0);
  IHS_ASSERT_OK(plain_back);
  EXPECT_TRUE(std::isnan(plain_back->sentiment));
  EXPECT_EQ(plain_back->audience_size, 0u);
  EXPECT_EQ(plain_back->response, StoredEntry::Response::kOpen);
  EXPECT_EQ(EncodeEntry(*plain_back), EncodeEntry(plain));
  // What is absent takes no room: a plain entry is 13 bytes (form 3 took 51).
  EXPECT_LE(EncodeEntry(plain).size(), 13u);
  // Differences at the ends of the ranges round-trip.
  StoredEntry far = plain;
  far.occurred_at = INT64_MIN;
  far.recorded_at = INT64_MAX;
  far.position = UINT64_MAX;
  far.response = StoredEntry::Response::kAnswered;
  far.answer = {0, std::string(16, '\x01'), schema::Channel::SMS, INT64_MAX, INT64_MIN, -1};
  auto far_back = DecodeEntry(EncodeEntry(far), far.occurred_at, far.position);
  IHS_ASSERT_OK(far_back);
  EXPECT_EQ(far_back->recorded_at, INT64_MAX);
  EXPECT_EQ(far_back->answer.reply_position, 0u);
  EXPECT_EQ(far_back->answer.replied_at, INT64_MAX);
  EXPECT_EQ(far_back->answer.wall_seconds, INT64_MIN);
  EXPECT_EQ(far_back->answer.service_seconds, -1);
  EXPECT_EQ(EncodeEntry(*far_back), EncodeEntry(far));
  // Every cut, a byte too many, and another form.
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(DecodeEntry(bytes.substr(0, n), 0, 0).status().code(), absl::StatusCode::kDataLoss)
        << n;
  }
  EXPECT_EQ(DecodeEntry(bytes + "x", 0, 0).status().code(), absl::StatusCode::kDataLoss);
  std::string other = bytes;
  other[0] = 3;  // the form before
  EXPECT_EQ(DecodeEntry(other, 0, 0).status().code(), absl::StatusCode::kDataLoss);
  // A flag for a sentiment whose bits are NaN, or for an audience of 0: not what EncodeEntry
  // writes, so not an entry.
  std::string nan_sentiment = EncodeEntry(plain);
  nan_sentiment[1] = static_cast<char>(nan_sentiment[1] | 64);
  const float nan = std::nanf("");
  uint32_t nan_bits;
  std::memcpy(&nan_bits, &nan, sizeof(nan_bits));
  nan_sentiment.insert(
      6, std::string{static_cast<char>(nan_bits >> 24), static_cast<char>(nan_bits >> 16),
                     static_cast<char>(nan_bits >> 8), static_cast<char>(nan_bits)});
  EXPECT_EQ(DecodeEntry(nan_sentiment, 0, 0).status().code(), absl::StatusCode::kDataLoss);
  std::string zero_audience = EncodeEntry(plain);
  zero_audience[1] = static_cast<char>(zero_audience[1] | 128);
  zero_audience.insert(6, std::string(1, '\0'));
  EXPECT_EQ(DecodeEntry(zero_audience, 0, 0).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ihs::projections::timeline
