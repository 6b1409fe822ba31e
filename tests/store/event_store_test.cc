// Tests of store/event_store.h: append and read, expected versions, idempotency, atomicity,
// sealed content, the Merkle tree, Verify, group commit, and every bad input of the issue.
#include "store/event_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <sodium.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/big_endian.h"
#include "common/time_math.h"
#include "schema/json.h"
#include "store/audit.h"
#include "store/governance.h"
#include "store/state_store.h"
#include "tests/testutil/raw_db.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"

namespace ihs::store {
namespace {

using ihs::testing::EventFactory;
using schema::Channel;
using schema::TouchpointType;

using ihs::testing::RawDb;

class EventStoreTest : public ihs::testing::StoreTest {
 protected:
  absl::StatusOr<AppendResult> AppendOne(const std::string& stream, uint64_t id,
                                         ExpectedVersion expected = ExpectedVersion::Any(),
                                         const std::string& text = "") {
    return store_->Append(
        {stream,
         expected,
         {events_.Touchpoint(id, Channel::EMAIL, TouchpointType::MESSAGE, text)}});
  }

  // Reopens with test hooks that hold the first group leader until `writers - 1` other writers
  // are queued behind it, so that all of them land in one group: the race is forced.
  void ReopenHoldingFirstLeaderFor(int writers) {
    Options o;
    o.hooks.on_queued = [this] { queued_.fetch_add(1); };
    o.hooks.on_group_leader = [this, writers] {
      if (!first_leader_.exchange(false)) return;
      absl::Time deadline = absl::Now() + absl::Seconds(30);
      while (queued_.load() < writers - 1 && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(1));
      }
    };
    Reopen(o);
  }

  std::vector<std::string> AllBytes() { return ihs::testing::AllStoredBytes(*store_); }

  std::atomic<int> queued_{0};
  std::atomic<bool> first_leader_{true};
};

TEST_F(EventStoreTest, AppendThenReadStreamForwardAndBackward) {
  StreamAppend req{"customer-ada", ExpectedVersion::NoStream(), {}};
  for (uint64_t i = 1; i <= 5; ++i) {
    req.events.push_back(events_.Touchpoint(i, Channel::EMAIL, TouchpointType::MESSAGE));
  }
  auto r = store_->Append(req);
  IHS_ASSERT_OK(r);
  EXPECT_EQ(r->positions, (std::vector<uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(r->versions, (std::vector<uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_FALSE(r->duplicate);
  IHS_ASSERT_OK(AppendOne("customer-bert", 100));

  auto fwd = store_->ReadStream("customer-ada", 1, 3, ReadDirection::kForward);
  IHS_ASSERT_OK(fwd);
  ASSERT_EQ(fwd->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*fwd)[i].event().getStreamVersion(), i + 1);
    EXPECT_EQ((*fwd)[i].position(), i + 1);
    EXPECT_EQ(std::string((*fwd)[i].event().getStreamId().cStr()), "customer-ada");
    EXPECT_EQ((*fwd)[i].event().getRecordedAt(), absl::ToUnixMicros(clock_.Now()));
  }
  auto back = store_->ReadStream("customer-ada", UINT64_MAX, 2, ReadDirection::kBackward);
  IHS_ASSERT_OK(back);
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].event().getStreamVersion(), 4u);
  EXPECT_EQ((*back)[1].event().getStreamVersion(), 3u);
  auto back_from_1 = store_->ReadStream("customer-ada", 1, 10, ReadDirection::kBackward);
  IHS_ASSERT_OK(back_from_1);
  ASSERT_EQ(back_from_1->size(), 2u);
  EXPECT_EQ((*back_from_1)[1].event().getStreamVersion(), 0u);
  auto past_end = store_->ReadStream("customer-ada", 5, 10, ReadDirection::kForward);
  IHS_ASSERT_OK(past_end);
  EXPECT_TRUE(past_end->empty());
  EXPECT_EQ(store_->ReadStream("nobody", 0, 10, ReadDirection::kForward).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EventStoreTest, ReadAllReturnsTheLogInPositionOrderAndRefusesPastTheEnd) {
  IHS_ASSERT_OK(AppendOne("a", 1));
  IHS_ASSERT_OK(AppendOne("b", 2));
  IHS_ASSERT_OK(AppendOne("a", 3));
  auto all = store_->ReadAll(1, 10);
  IHS_ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(std::string((*all)[0].event().getStreamId().cStr()), "b");
  EXPECT_EQ((*all)[1].event().getStreamVersion(), 1u);
  auto at_end = store_->ReadAll(3, 10);
  IHS_ASSERT_OK(at_end);
  EXPECT_TRUE(at_end->empty());
  EXPECT_EQ(store_->ReadAll(4, 10).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store_->Head(), 3u);
  // One event at a time (a point lookup inside) gives the same bytes as the range.
  auto range = store_->ReadAll(0, 3);
  IHS_ASSERT_OK(range);
  for (uint64_t p = 0; p < 3; ++p) {
    auto one = store_->ReadAll(p, 1);
    IHS_ASSERT_OK(one);
    ASSERT_EQ(one->size(), 1u);
    EXPECT_EQ((*one)[0].position(), p);
    EXPECT_EQ((*one)[0].bytes(), (*range)[p].bytes());
  }
  auto one_at_end = store_->ReadAll(3, 1);
  IHS_ASSERT_OK(one_at_end);
  EXPECT_TRUE(one_at_end->empty());
}

TEST_F(EventStoreTest, ReadAllStopsAtItsByteBoundAfterAtLeastOneEvent) {
  for (uint64_t i = 1; i <= 10; ++i) IHS_ASSERT_OK(AppendOne("a", i, ExpectedVersion::Any(), "x"));
  auto all = store_->ReadAll(0, 10);
  IHS_ASSERT_OK(all);
  const size_t each = (*all)[0].bytes().size();
  ReadOptions ro;
  ro.max_bytes = 1;  // less than one event: still one
  auto one = store_->ReadAll(2, 10, ro);
  IHS_ASSERT_OK(one);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].position(), 2u);
  ro.max_bytes = 3 * each;
  auto three = store_->ReadAll(0, 10, ro);
  IHS_ASSERT_OK(three);
  EXPECT_EQ(three->size(), 3u);
  ro.max_bytes = 100 * each;  // the count bounds it first
  auto four = store_->ReadAll(6, 4, ro);
  IHS_ASSERT_OK(four);
  EXPECT_EQ(four->size(), 4u);
}

TEST_F(EventStoreTest, StreamInfoTracksCountPositionsAndOccurredRange) {
  IHS_ASSERT_OK(AppendOne("x", 1));
  IHS_ASSERT_OK(
      store_->Append({"ada",
                      ExpectedVersion::Any(),
                      {events_.Touchpoint(2, Channel::LETTER, TouchpointType::REQUEST, "", 5000),
                       events_.Touchpoint(3, Channel::PHONE, TouchpointType::REPLY, "", 1000),
                       events_.Touchpoint(4, Channel::EMAIL, TouchpointType::MESSAGE, "", 3000)}}));
  auto info = store_->GetStreamInfo("ada");
  IHS_ASSERT_OK(info);
  EXPECT_EQ(info->event_count, 3u);
  EXPECT_EQ(info->current_version, 2u);
  EXPECT_EQ(info->first_position, 1u);
  EXPECT_EQ(info->last_position, 3u);
  EXPECT_EQ(info->first_occurred_at, 1000);  // a late event moves the range back
  EXPECT_EQ(info->last_occurred_at, 5000);
  EXPECT_EQ(store_->GetStreamInfo("nobody").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EventStoreTest, ExpectedVersionAnyNoStreamExistsAndExact) {
  // No stream yet.
  auto exists = AppendOne("s", 1, ExpectedVersion::StreamExists());
  EXPECT_EQ(exists.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ConflictCurrentVersion(exists.status()), -1);
  auto exact = AppendOne("s", 1, ExpectedVersion::Exact(0));
  EXPECT_EQ(ConflictCurrentVersion(exact.status()), -1);
  IHS_ASSERT_OK(AppendOne("s", 1, ExpectedVersion::NoStream()));
  // Stream at version 0.
  auto none = AppendOne("s", 2, ExpectedVersion::NoStream());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ConflictCurrentVersion(none.status()), 0);
  IHS_ASSERT_OK(AppendOne("s", 2, ExpectedVersion::StreamExists()));
  // Stream at version 1.
  auto stale = AppendOne("s", 3, ExpectedVersion::Exact(0));
  ASSERT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ConflictCurrentVersion(stale.status()), 1);
  EXPECT_NE(stale.status().message().find("current version is 1"), std::string::npos)
      << stale.status();
  IHS_ASSERT_OK(AppendOne("s", 3, ExpectedVersion::Exact(1)));
  IHS_ASSERT_OK(AppendOne("s", 4, ExpectedVersion::Any()));
  EXPECT_EQ(store_->GetStreamInfo("s")->current_version, 3u);
  EXPECT_EQ(ConflictCurrentVersion(absl::InvalidArgumentError("x")), std::nullopt);
}

TEST_F(EventStoreTest, AMarkIsWrittenWithTheEventsOfItsAppendAndOnlyThen) {
  auto mark = [this] {
    auto m = store_->ReadMark("replica/applied");
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : std::optional<std::string>("error");
  };
  auto append = [this](uint64_t id, ExpectedVersion expected, const std::string& value) {
    return store_->AppendMarked(
        {"s", expected, {events_.Touchpoint(id, Channel::EMAIL, TouchpointType::MESSAGE)}},
        "replica/applied", value);
  };
  EXPECT_EQ(mark(), std::nullopt);
  IHS_ASSERT_OK(append(1, ExpectedVersion::NoStream(), "1"));
  EXPECT_EQ(mark(), "1");
  // A refusal and a repeat write no events, and so no mark.
  EXPECT_EQ(append(2, ExpectedVersion::NoStream(), "2").status().code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(mark(), "1");
  auto repeat = append(1, ExpectedVersion::NoStream(), "3");
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_TRUE(repeat->duplicate);
  EXPECT_EQ(mark(), "1");
  IHS_ASSERT_OK(append(4, ExpectedVersion::Exact(0), "4"));
  EXPECT_EQ(mark(), "4");
  // Kept across a restart, and not in the log.
  Reopen();
  EXPECT_EQ(mark(), "4");
  EXPECT_EQ(store_->Head(), 2u);
  EXPECT_EQ(store_->AppendMarked({"s", ExpectedVersion::Any(), {}}, "", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mark(), "4");
}

TEST_F(EventStoreTest, AppendEachWritesWhatAppendsOneByOneWrite) {
  // One store takes the appends one by one, each with the clock at its time; another takes them
  // with AppendEach in two batches. Refusals, repeats, bad events and a time that goes back
  // among them.
  struct Step {
    std::string stream;
    uint64_t id;
    ExpectedVersion expected;
    int64_t at;
    bool bad = false;
  };
  const int64_t t = 1800000000000000;
  const std::vector<Step> steps = {
      {"a", 1, ExpectedVersion::NoStream(), t},
      {"a", 2, ExpectedVersion::Exact(0), t + 10},
      {"a", 3, ExpectedVersion::Exact(0), t + 20},  // stale: refused
      {"b", 4, ExpectedVersion::Any(), t + 5},      // earlier than the last: raised to it
      {"a", 2, ExpectedVersion::Any(), t + 30},     // a repeat: nothing written
      {"b", 5, ExpectedVersion::Any(), t + 40, /*bad=*/true},
      {"b", 6, ExpectedVersion::Exact(0), t + 50},
      {"c", 7, ExpectedVersion::StreamExists(), t + 60},  // refused
      {"c", 8, ExpectedVersion::NoStream(), t + 70},
      {"a", 9, ExpectedVersion::Exact(1), t + 80},
  };
  auto event = [this](const Step& st) {
    auto ev = events_.New(st.id);
    ev.setOccurredAt(1700000000000000);
    auto tp = ev.initTouchpoint();
    tp.setChannel(Channel::EMAIL);
    tp.setDirection(schema::Direction::INBOUND);
    tp.setType(TouchpointType::MESSAGE);
    if (st.bad) ev.setPosition(3);  // set by the store only
    return ev.asReader();
  };
  std::vector<absl::StatusCode> one_by_one;
  for (const Step& st : steps) {
    clock_.Set(absl::FromUnixMicros(st.at));
    auto r = store_->AppendMarked({st.stream, st.expected, {event(st)}}, "m", absl::StrCat(st.id));
    one_by_one.push_back(r.status().code());
  }

  FakeClock other_clock(absl::FromUnixSeconds(1));  // AppendEach must not read it
  Options o;
  o.path = dir_.Sub("each");
  o.clock = &other_clock;
  auto each = EventStore::Open(o);
  ASSERT_TRUE(each.ok()) << each.status();
  std::vector<absl::StatusCode> in_order;
  for (size_t from : {size_t{0}, size_t{4}}) {
    std::vector<EventStore::OrderedAppend> batch;
    for (size_t i = from; i < (from == 0 ? 4 : steps.size()); ++i) {
      const Step& st = steps[i];
      batch.push_back({{st.stream, st.expected, {event(st)}}, st.at, "m", absl::StrCat(st.id)});
    }
    auto results = (*each)->AppendEach(batch);
    ASSERT_TRUE(results.ok()) << results.status();
    for (const auto& r : *results) in_order.push_back(r.status().code());
  }
  EXPECT_EQ(in_order, one_by_one);
  EXPECT_EQ(one_by_one[2], absl::StatusCode::kAborted);
  EXPECT_EQ(one_by_one[5], absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Head(), 6u);
  EXPECT_EQ(AllBytes(), ihs::testing::AllStoredBytes(**each));
  EXPECT_EQ(*store_->ReadMark("m"), *(*each)->ReadMark("m"));
  EXPECT_EQ(*(*each)->ReadMark("m"), std::optional<std::string>("9"));
}

TEST_F(EventStoreTest, RetryWithSameContentReturnsOriginalPositions) {
  IHS_ASSERT_OK(AppendOne("other", 50));
  StreamAppend req{"ada",
                   ExpectedVersion::NoStream(),
                   {events_.Touchpoint(1, Channel::EMAIL, TouchpointType::COMPLAINT, "broken"),
                    events_.Touchpoint(2, Channel::TWITTER, TouchpointType::COMPLAINT, "still")}};
  auto first = store_->Append(req);
  IHS_ASSERT_OK(first);
  clock_.Advance(absl::Hours(1));
  // The retry passes even though its expected version is now stale: the id decides.
  auto retry = store_->Append(req);
  IHS_ASSERT_OK(retry);
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->positions, first->positions);
  EXPECT_EQ(retry->versions, first->versions);
  EXPECT_EQ(store_->Head(), 3u);
}

TEST_F(EventStoreTest, SameIdWithOtherContentIsAnError) {
  IHS_ASSERT_OK(AppendOne("ada", 1, ExpectedVersion::Any(), "first text"));
  std::string root = *Root(*store_, 1);
  auto other = AppendOne("ada", 1, ExpectedVersion::Any(), "other text");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(other.status().message().find("other content"), std::string::npos);
  auto other_stream = AppendOne("bert", 1, ExpectedVersion::Any(), "first text");
  EXPECT_EQ(other_stream.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Head(), 1u);
  EXPECT_EQ(*Root(*store_, 1), root);
}

TEST_F(EventStoreTest, PartlyStoredBatchIsRefused) {
  IHS_ASSERT_OK(AppendOne("ada", 1));
  auto mixed = store_->Append({"ada",
                               ExpectedVersion::Any(),
                               {events_.Touchpoint(1, Channel::EMAIL, TouchpointType::MESSAGE),
                                events_.Touchpoint(2, Channel::EMAIL, TouchpointType::MESSAGE)}});
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Head(), 1u);
}

TEST_F(EventStoreTest, AppendMultiIsAtomicAcrossStreams) {
  IHS_ASSERT_OK(AppendOne("employee-eva", 1));
  // The same reply to Ada, written to both streams; only Eva's expected version varies.
  auto reply = [&](ExpectedVersion eva_expected) {
    return store_->AppendMulti(
        {{"customer-ada",
          ExpectedVersion::NoStream(),
          {events_.Touchpoint(2, Channel::TWITTER, TouchpointType::REPLY)}},
         {"employee-eva",
          eva_expected,
          {events_.Touchpoint(3, Channel::TWITTER, TouchpointType::REPLY)}}});
  };
  // One stale expected version fails the whole multi-append.
  auto failed = reply(ExpectedVersion::Exact(5));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ConflictCurrentVersion(failed.status()), 0);
  EXPECT_EQ(store_->Head(), 1u);
  EXPECT_EQ(store_->GetStreamInfo("customer-ada").status().code(), absl::StatusCode::kNotFound);

  auto ok = reply(ExpectedVersion::Exact(0));
  IHS_ASSERT_OK(ok);
  EXPECT_EQ((*ok)[0].positions, std::vector<uint64_t>{1});
  EXPECT_EQ((*ok)[1].positions, std::vector<uint64_t>{2});
  EXPECT_EQ((*ok)[1].versions, std::vector<uint64_t>{1});
}

TEST_F(EventStoreTest, ContentIsSealedAtRestAndOpensOnRead) {
  IHS_ASSERT_OK(AppendOne("ada", 1, ExpectedVersion::Any(), "my router is broken"));
  auto sealed = store_->ReadStream("ada", 0, 1, ReadDirection::kForward, ReadOptions{false});
  IHS_ASSERT_OK(sealed);
  const StoredEvent& s = (*sealed)[0];
  EXPECT_EQ(s.content_state(), ContentState::kSealed);
  EXPECT_FALSE(s.event().hasContent());
  EXPECT_TRUE(s.event().hasSealedContent());
  EXPECT_EQ(std::string(s.bytes()).find("router"), std::string::npos);
  EXPECT_EQ(std::string(s.bytes()).find("subject of"), std::string::npos);

  auto open = store_->ReadStream("ada", 0, 1, ReadDirection::kForward);
  IHS_ASSERT_OK(open);
  ASSERT_EQ((*open)[0].content_state(), ContentState::kOpen);
  EXPECT_EQ(std::string((*open)[0].content().getText().cStr()), "my router is broken");

  // Nothing on disk holds the plaintext either (flushed SST files and the WAL).
  store_.reset();
  for (const auto& entry : std::filesystem::directory_iterator(dir_.Sub("data/db"))) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find("router is broken"), std::string::npos) << entry.path();
  }
  Reopen();
  auto reopened = store_->ReadStream("ada", 0, 1, ReadDirection::kForward);
  IHS_ASSERT_OK(reopened);
  EXPECT_EQ(std::string((*reopened)[0].content().getText().cStr()), "my router is broken");
}

TEST_F(EventStoreTest, ErasedKeyLeavesTheEventButNotItsContent) {
  IHS_ASSERT_OK(AppendOne("ada", 1, ExpectedVersion::Any(), "personal"));
  store_.reset();
  {
    RawDb raw(dir_.Sub("data"));
    // Every key of the party (its rows are "ada" and "ada" | 0x00 | version).
    ASSERT_TRUE(raw.db
                    ->DeleteRange(rocksdb::WriteOptions(), raw.cf["content_keys"], "ada",
                                  std::string("ada\x01"))
                    .ok());
  }
  Reopen();
  auto read = store_->ReadStream("ada", 0, 1, ReadDirection::kForward);
  IHS_ASSERT_OK(read);
  EXPECT_EQ((*read)[0].content_state(), ContentState::kErased);
  IHS_EXPECT_OK(Verify(*store_));  // the tree covers ciphertext: it still verifies
}

TEST_F(EventStoreTest, WrongOrMissingMasterKeyIsRefused) {
  IHS_ASSERT_OK(AppendOne("ada", 1, ExpectedVersion::Any(), "personal"));
  store_.reset();
  std::ofstream(dir_.Sub("other.key")) << std::string(64, 'a') << "\n";
  Options wrong;
  wrong.path = dir_.Sub("data");
  wrong.master_key_path = dir_.Sub("other.key");
  auto s = EventStore::Open(wrong);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("not the key"), std::string::npos) << s.status();
  Options missing;
  missing.path = dir_.Sub("data");
  missing.master_key_path = dir_.Sub("nowhere.key");
  s = EventStore::Open(missing);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("missing"), std::string::npos) << s.status();
  Reopen();
  EXPECT_EQ(store_->Head(), 1u);
}

TEST_F(EventStoreTest, RootOfEveryPrefixEqualsTheReferenceTree) {
  for (uint64_t i = 1; i <= 70; ++i) {
    IHS_ASSERT_OK(
        AppendOne(absl::StrCat("s", i % 4), i, ExpectedVersion::Any(), i % 3 ? "text" : ""));
  }
  std::vector<std::string> leaves = AllBytes();
  ASSERT_EQ(leaves.size(), 70u);
  for (uint64_t n = 0; n <= 70; ++n) {
    auto root = Root(*store_, n);
    IHS_ASSERT_OK(root);
    EXPECT_EQ(*root, ihs::testing::ReferenceTreeHash(leaves, 0, n)) << "size " << n;
  }
  EXPECT_EQ(Root(*store_, 71).status().code(), absl::StatusCode::kOutOfRange);
  // And after a reopen the tree goes on from where it was.
  Reopen();
  IHS_ASSERT_OK(AppendOne("s9", 1000));
  leaves = AllBytes();
  EXPECT_EQ(*Root(*store_, 71), ihs::testing::ReferenceTreeHash(leaves, 0, 71));
  auto report = Verify(*store_);
  IHS_ASSERT_OK(report);
  EXPECT_EQ(report->events_checked, 71u);
  EXPECT_EQ(report->root_hash, ihs::testing::ReferenceTreeHash(leaves, 0, 71));
}

TEST_F(EventStoreTest, VerifyNamesTheFirstTamperedPosition) {
  for (uint64_t i = 1; i <= 40; ++i) IHS_ASSERT_OK(AppendOne("s", i, ExpectedVersion::Any(), "t"));
  IHS_ASSERT_OK(Verify(*store_));
  std::vector<std::string> bytes = AllBytes();
  store_.reset();
  {
    RawDb raw(dir_.Sub("data"));
    for (uint64_t p : {17, 30}) {
      std::string changed = bytes[p];
      changed[changed.size() - 3] ^= 0x01;  // one bit, deep in the ciphertext
      ASSERT_TRUE(
          raw.db->Put(rocksdb::WriteOptions(), raw.cf["events"], BigEndian64(p), changed).ok());
    }
  }
  Reopen();
  auto report = Verify(*store_);
  ASSERT_EQ(report.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(report.status().message().find("position 17"), std::string::npos) << report.status();
}

TEST_F(EventStoreTest, VerifyCatchesARewrittenLeafHashThroughItsParent) {
  for (uint64_t i = 1; i <= 8; ++i) IHS_ASSERT_OK(AppendOne("s", i));
  std::vector<std::string> bytes = AllBytes();
  store_.reset();
  {
    RawDb raw(dir_.Sub("data"));
    std::string changed = bytes[5];
    changed[changed.size() - 1] ^= 0x40;
    std::string leaf_input = std::string(1, '\0') + changed;
    std::string leaf(32, '\0');
    crypto_hash_sha256(reinterpret_cast<uint8_t*>(leaf.data()),
                       reinterpret_cast<const uint8_t*>(leaf_input.data()), leaf_input.size());
    std::string leaf_key(1, '\0');
    leaf_key += BigEndian64(5);
    ASSERT_TRUE(
        raw.db->Put(rocksdb::WriteOptions(), raw.cf["events"], BigEndian64(5), changed).ok());
    ASSERT_TRUE(raw.db->Put(rocksdb::WriteOptions(), raw.cf["merkle"], leaf_key, leaf).ok());
  }
  Reopen();
  auto report = Verify(*store_);
  ASSERT_EQ(report.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(report.status().message().find("[4, 6)"), std::string::npos) << report.status();
}

TEST_F(EventStoreTest, VerifyCatchesAStreamIndexThatPointsElsewhere) {
  IHS_ASSERT_OK(AppendOne("a", 1));
  IHS_ASSERT_OK(AppendOne("a", 2));
  store_.reset();
  {
    RawDb raw(dir_.Sub("data"));
    std::string key = BigEndian64(0) + BigEndian64(1);  // stream 0, version 1
    ASSERT_TRUE(
        raw.db->Put(rocksdb::WriteOptions(), raw.cf["stream_index"], key, BigEndian64(0)).ok());
  }
  Reopen();
  auto report = Verify(*store_);
  ASSERT_EQ(report.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(report.status().message().find("position 1"), std::string::npos) << report.status();
}

TEST_F(EventStoreTest, VerifyCatchesAMissingEventIdAndAnIndexEntryNoEventImplies) {
  for (uint64_t i = 1; i <= 4; ++i) IHS_ASSERT_OK(AppendOne("a", i));
  store_.reset();
  std::string kept;
  {
    RawDb raw(dir_.Sub("data"));
    const std::string id = ihs::testing::EventId(3);
    ASSERT_TRUE(raw.db->Get(rocksdb::ReadOptions(), raw.cf["event_ids"], id, &kept).ok());
    ASSERT_TRUE(raw.db->Delete(rocksdb::WriteOptions(), raw.cf["event_ids"], id).ok());
  }
  Reopen();
  auto report = Verify(*store_);
  ASSERT_EQ(report.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(report.status().message().find("position 2: event id"), std::string::npos)
      << report.status();

  store_.reset();
  {
    RawDb raw(dir_.Sub("data"));
    ASSERT_TRUE(
        raw.db->Put(rocksdb::WriteOptions(), raw.cf["event_ids"], ihs::testing::EventId(3), kept)
            .ok());
  }
  Reopen();
  IHS_ASSERT_OK(Verify(*store_));  // repaired
  store_.reset();
  {
    RawDb raw(dir_.Sub("data"));
    std::string key = BigEndian64(0) + BigEndian64(9);  // stream 0, version 9: no such event
    ASSERT_TRUE(
        raw.db->Put(rocksdb::WriteOptions(), raw.cf["stream_index"], key, BigEndian64(1)).ok());
  }
  Reopen();
  report = Verify(*store_);
  ASSERT_EQ(report.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(report.status().message().find("entries that no event of the log implies"),
            std::string::npos)
      << report.status();
}

// The watermark: every event recorded before it is in the log, and no event will be recorded
// before it, in this process or after a restart (projections fire their timers by it).
TEST_F(EventStoreTest, NothingIsRecordedBeforeAWatermarkEvenAfterARestart) {
  IHS_ASSERT_OK(AppendOne("a", 1));
  clock_.Advance(absl::Seconds(10));
  absl::StatusOr<int64_t> w = store_->Watermark();
  IHS_ASSERT_OK(w);
  EXPECT_EQ(*w, absl::ToUnixMicros(clock_.Now()));
  clock_.Advance(absl::Hours(-1));  // the clock steps back
  IHS_ASSERT_OK(AppendOne("a", 2));
  Reopen();
  IHS_ASSERT_OK(AppendOne("a", 3));
  auto events = store_->ReadAll(0, 10);
  IHS_ASSERT_OK(events);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_GE((*events)[1].event().getRecordedAt(), *w);
  EXPECT_GE((*events)[2].event().getRecordedAt(), *w);
  // A store opened for reading answers the last event's time and moves nothing.
  store::Options ro;
  ro.read_only = true;
  Reopen(ro);
  absl::StatusOr<int64_t> r = store_->Watermark();
  IHS_ASSERT_OK(r);
  EXPECT_EQ(*r, (*events)[2].event().getRecordedAt());
}

TEST_F(EventStoreTest, RecordedAtNeverDecreasesAlongTheLogEvenWhenTheClockStepsBack) {
  IHS_ASSERT_OK(AppendOne("a", 1));
  const int64_t first = absl::ToUnixMicros(clock_.Now());
  clock_.Advance(absl::Hours(-2));  // an NTP step back
  IHS_ASSERT_OK(AppendOne("a", 2));
  Reopen();  // and across a restart, from the last stored event
  IHS_ASSERT_OK(AppendOne("a", 3));
  clock_.Advance(absl::Hours(3));
  IHS_ASSERT_OK(AppendOne("a", 4));
  auto events = store_->ReadAll(0, 10);
  IHS_ASSERT_OK(events);
  ASSERT_EQ(events->size(), 4u);
  EXPECT_EQ((*events)[1].event().getRecordedAt(), first);
  EXPECT_EQ((*events)[2].event().getRecordedAt(), first);
  EXPECT_EQ((*events)[3].event().getRecordedAt(),
            first + absl::ToInt64Microseconds(absl::Hours(1)));
  // So "as of a time" is a prefix of the log.
  EXPECT_EQ(*LogSizeAt(*store_, first - 1), 0u);
  EXPECT_EQ(*LogSizeAt(*store_, first), 3u);
  EXPECT_EQ(*LogSizeAt(*store_, first + 1), 3u);
  EXPECT_EQ(*LogSizeAt(*store_, INT64_MAX), 4u);
}

const kj::byte kZeroId[16] = {};

// Each bad input gets a clear error that names the problem, and nothing stored changes.
TEST_F(EventStoreTest, BadInputIsRefusedAndChangesNothing) {
  IHS_ASSERT_OK(AppendOne("ada", 1, ExpectedVersion::Any(), "kept"));
  const std::string root = *Root(*store_, 1);

  struct Case {
    std::string name;
    std::function<StreamAppend()> make;
    std::string message;
  };
  auto one = [&](std::function<void(schema::Event::Builder)> edit, std::string stream = "ada") {
    return [this, edit, stream]() {
      auto ev = events_.New(77);
      auto tp = ev.initTouchpoint();
      tp.setChannel(Channel::SMS);
      tp.setDirection(schema::Direction::INBOUND);
      tp.setType(TouchpointType::MESSAGE);
      edit(ev);
      return StreamAppend{stream, ExpectedVersion::Any(), {ev.asReader()}};
    };
  };
  std::vector<Case> cases = {
      {"missing stream id", one([](auto) {}, ""), "stream id is missing"},
      {"empty batch",
       [] {
         return StreamAppend{"ada", ExpectedVersion::Any(), {}};
       },
       "empty batch"},
      {"sentiment above 1", one([](auto e) { e.getTouchpoint().setSentiment(1.5f); }),
       "outside [-1, 1]"},
      {"sentiment below -1", one([](auto e) { e.getTouchpoint().setSentiment(-2.0f); }),
       "outside [-1, 1]"},
      {"unknown channel",
       one([](auto e) { e.getTouchpoint().setChannel(static_cast<Channel>(999)); }),
       "touchpoint.channel 999"},
      {"unknown type",
       one([](auto e) { e.getTouchpoint().setType(static_cast<TouchpointType>(500)); }),
       "touchpoint.type 500"},
      {"missing direction",
       one([](auto e) { e.getTouchpoint().setDirection(schema::Direction::UNSPECIFIED); }),
       "touchpoint.direction"},
      {"no event type", one([](auto e) { e.setUnspecified(); }), "event type is missing"},
      {"short id", one([](auto e) { e.setId(kj::heapArray<kj::byte>(4)); }), "id must be 16"},
      {"zero id", one([](auto e) { e.setId(capnp::Data::Reader(kZeroId, 16)); }), "not all zero"},
      {"no occurredAt", one([](auto e) { e.setOccurredAt(0); }), "occurredAt is missing"},
      {"occurredAt before year 1", one([](auto e) { e.setOccurredAt(kEarliestTime - 1); }),
       "occurredAt -62135596800000001 is outside the years 1 to 9999"},
      {"occurredAt after year 9999", one([](auto e) { e.setOccurredAt(kLatestTime + 1); }),
       "occurredAt 253402300800000000 is outside the years 1 to 9999"},
      {"occurredAt at the end of int64",
       one([](auto e) { e.setOccurredAt(std::numeric_limits<int64_t>::min()); }),
       "outside the years 1 to 9999"},
      {"store-set position", one([](auto e) { e.setPosition(9); }), "set by the store"},
      {"other stream in event", one([](auto e) { e.setStreamId("bert"); }), "differs"},
      {"oversized event",
       one([](auto e) { e.initContent().setText(std::string(kMaxEventBytes, 'x')); }),
       "the limit is 65536"},
      {"correction without target",
       one([](auto e) { e.getTouchpoint().setType(TouchpointType::CORRECTION); }),
       "corrects is required"},
      {"control character in stream", one([](auto) {}, "ada\nbert"), "control character"},
      {"stream id not UTF-8", one([](auto) {}, "ada\xc3"), "is not UTF-8"},
      {"stream id with a surrogate", one([](auto) {}, "ada\xed\xa0\x80"), "is not UTF-8"},
      {"text not UTF-8", one([](auto e) { e.initContent().setText("caf\xe9 au lait"); }),
       "content.text: not UTF-8 (byte 3"},
      {"text with a NUL", one([](auto e) {
         const char bytes[] = "a\0b";
         e.initContent().setText(capnp::Text::Reader(bytes, 3));
       }),
       "content.text: a NUL byte at offset 1"},
      {"handle not UTF-8",
       one([](auto e) { e.initContent().initTo(2)[1].setAddress("\xff@example.org"); }),
       "content.to[1].address: not UTF-8"},
      {"topic not UTF-8", one([](auto e) { e.getTouchpoint().initTopics(1).set(0, "\xc0\xaf"); }),
       "touchpoint.topics[0]: not UTF-8"},
      {"source system not UTF-8", one([](auto e) { e.setSourceSystem("crm\x80"); }),
       "sourceSystem: not UTF-8"},
  };
  for (const auto& c : cases) {
    auto r = store_->Append(c.make());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name << ": " << r.status();
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << c.name << ": " << r.status();
  }
  // Two events with one id in one append.
  auto dup = store_->Append({"ada",
                             ExpectedVersion::Any(),
                             {events_.Touchpoint(5, Channel::SMS, TouchpointType::MESSAGE),
                              events_.Touchpoint(5, Channel::SMS, TouchpointType::MESSAGE)}});
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->AppendMulti({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Head(), 1u);
  EXPECT_EQ(*Root(*store_, 1), root);
  IHS_EXPECT_OK(Verify(*store_));
}

// occurredAt takes every moment RFC 3339 can write, the first and last included.
TEST_F(EventStoreTest, OccurredAtTakesTheYearsOneTo9999EndsIncluded) {
  for (int64_t at : {kEarliestTime, kLatestTime}) {
    IHS_ASSERT_OK(store_->Append({"ada",
                                  ExpectedVersion::Any(),
                                  {events_.Touchpoint(at == kEarliestTime ? 1 : 2, Channel::SMS,
                                                      TouchpointType::MESSAGE, "", at)}}));
  }
  auto read = store_->ReadStream("ada", 0, 10, ReadDirection::kForward);
  IHS_ASSERT_OK(read);
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].event().getOccurredAt(), kEarliestTime);
  EXPECT_EQ((*read)[1].event().getOccurredAt(), kLatestTime);
  EXPECT_EQ(schema::FormatMicros(kEarliestTime), "0001-01-01T00:00:00.000000Z");
  EXPECT_EQ(schema::FormatMicros(kLatestTime), "9999-12-31T23:59:59.999999Z");
  IHS_EXPECT_OK(Verify(*store_));
}

TEST_F(EventStoreTest, TooManyEventsInOneAppendIsRefused) {
  StreamAppend req{"bulk", ExpectedVersion::Any(), {}};
  auto ev = events_.Touchpoint(1, Channel::SMS, TouchpointType::MESSAGE);
  for (size_t i = 0; i <= kMaxEventsPerAppend; ++i) req.events.push_back(ev);
  auto r = store_->Append(req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("more than 10000"), std::string::npos);
}

TEST_F(EventStoreTest, DirectoryThatIsNotAStoreIsRefusedAndLeftAlone) {
  std::string other = dir_.Sub("photos");
  std::filesystem::create_directories(other);
  std::ofstream(other + "/holiday.jpg") << "jpeg";
  Options o;
  o.path = other;
  auto s = EventStore::Open(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("not an ihs store"), std::string::npos) << s.status();
  EXPECT_FALSE(std::filesystem::exists(other + "/db"));
  EXPECT_FALSE(std::filesystem::exists(other + "/master.key"));
}

TEST_F(EventStoreTest, NewerFormatVersionIsRefused) {
  IHS_ASSERT_OK(AppendOne("ada", 1));
  store_.reset();
  {
    RawDb raw(dir_.Sub("data"));
    std::string v;
    PutBigEndian32(&v, kFormatVersion + 1);
    ASSERT_TRUE(raw.db->Put(rocksdb::WriteOptions(), raw.cf["default"], "format_version", v).ok());
  }
  Options o;
  o.path = dir_.Sub("data");
  auto s = EventStore::Open(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("newer than this build"), std::string::npos) << s.status();
}

TEST_F(EventStoreTest, SecondWriterOnTheSameDirectoryIsRefused) {
  Options o;
  o.path = dir_.Sub("data");
  auto second = EventStore::Open(o);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_NE(second.status().message().find("already open"), std::string::npos) << second.status();
  IHS_ASSERT_OK(AppendOne("ada", 1));  // the first is unharmed
}

TEST_F(EventStoreTest, ReadOnlyStoreReadsBesideTheWriterAndRefusesAppends) {
  IHS_ASSERT_OK(AppendOne("ada", 1, ExpectedVersion::Any(), "hello"));
  Options o;
  o.path = dir_.Sub("data");
  o.read_only = true;
  auto reader = EventStore::Open(o);
  IHS_ASSERT_OK(reader);
  auto read = (*reader)->ReadStream("ada", 0, 10, ReadDirection::kForward);
  IHS_ASSERT_OK(read);
  EXPECT_EQ(std::string((*read)[0].content().getText().cStr()), "hello");
  auto refused = (*reader)->Append(
      {"ada", ExpectedVersion::Any(), {events_.Touchpoint(2, Channel::SMS, TouchpointType::LIKE)}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
}

// `ihs read` beside a running ihsd: a read-only open raced the writer's compactions and reported
// "Corruption: Can't access ...sst" (exit 4, an integrity alarm) now and then. Each erasure here
// flushes every family and compacts one, so files come and go while readers open and read.
TEST_F(EventStoreTest, ReadOnlyOpensBesideACompactingWriterSeeNoFalseCorruption) {
  std::atomic<bool> stop{false};
  std::atomic<int> erasures{0};
  std::thread writer([&] {
    for (uint64_t i = 0; !stop && i < 400; ++i) {  // ASSERTs here end the thread, not the test
      const std::string party = absl::StrCat("p", i);
      StreamAppend a{party, ExpectedVersion::Any(), {}};
      for (uint64_t k = 0; k < 20; ++k) {
        a.events.push_back(events_.Touchpoint(i * 100 + k + 1, Channel::EMAIL,
                                              TouchpointType::MESSAGE, "content to erase"));
      }
      ASSERT_TRUE(store_->Append(a).ok());
      if (i % 4 == 3) {  // bursts of file churn, as ihsd's flushes and compactions come
        ASSERT_TRUE(Erase(*store_, party, "test", "test").ok());
        ++erasures;
        absl::SleepFor(absl::Milliseconds(30));
      }
    }
  });
  Options o;
  o.path = dir_.Sub("data");
  o.read_only = true;
  int opens = 0;
  const absl::Time end = absl::Now() + absl::Seconds(3);
  while (absl::Now() < end && erasures < 100) {
    auto reader = EventStore::Open(o);
    ASSERT_TRUE(reader.ok()) << "open " << opens << ": " << reader.status();
    ++opens;
    // The whole log as of the open, without a gap.
    const uint64_t head = (*reader)->Head();
    for (uint64_t from = 0; from < head; from += 1000) {
      auto page = (*reader)->ReadAll(from, 1000);
      ASSERT_TRUE(page.ok()) << "open " << opens << ", from " << from << ": " << page.status();
    }
    IHS_ASSERT_OK((*reader)->Stats());
  }
  stop = true;
  writer.join();
  EXPECT_GT(erasures.load(), 5);
  EXPECT_GT(opens, 5);
}

TEST_F(EventStoreTest, TwoStoresInOneProcessAreIndependent) {
  Options o;
  o.path = dir_.Sub("second");
  auto second = EventStore::Open(o);
  IHS_ASSERT_OK(second);
  IHS_ASSERT_OK(AppendOne("ada", 1));
  IHS_ASSERT_OK((*second)->Append({"ada",
                                   ExpectedVersion::NoStream(),
                                   {events_.Touchpoint(1, Channel::SMS, TouchpointType::LIKE)}}));
  EXPECT_EQ(store_->Head(), 1u);
  EXPECT_EQ((*second)->Head(), 1u);
}

TEST_F(EventStoreTest, ConcurrentAppendsShareOneSync) {
  constexpr int kWriters = 8;
  ReopenHoldingFirstLeaderFor(kWriters);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      if (AppendOne(absl::StrCat("stream-", t), t + 1).ok()) ok.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kWriters);
  auto stats = store_->Stats();
  IHS_ASSERT_OK(stats);
  EXPECT_EQ(stats->appends, static_cast<uint64_t>(kWriters));
  EXPECT_EQ(stats->syncs, 1u);  // the leader's one sync carried all eight appends
  EXPECT_EQ(stats->largest_group, static_cast<uint64_t>(kWriters));
  // /metrics' histogram has the group in the bucket of groups of 5 to 8 appends.
  const StoreMetrics m = store_->Metrics();
  EXPECT_EQ(m.groups, 1u);
  EXPECT_EQ(m.appends, static_cast<uint64_t>(kWriters));
  EXPECT_EQ(m.group_buckets[3], 1u);
  EXPECT_EQ(std::accumulate(m.group_buckets.begin(), m.group_buckets.end(), uint64_t{0}), 1u);
  IHS_EXPECT_OK(Verify(*store_));
}

// What ihsd's /metrics shows of the store: the log's size, streams, appends and their events,
// one group per sequential append, each group's write timed, and the files on disk.
TEST_F(EventStoreTest, MetricsCountAppendsEventsGroupsAndTheirWrites) {
  IHS_ASSERT_OK(AppendOne("ada", 1));
  IHS_ASSERT_OK(AppendOne("bob", 2));
  std::vector<schema::Event::Reader> three;
  for (uint64_t id = 3; id <= 5; ++id) {
    three.push_back(events_.Touchpoint(id, Channel::EMAIL, TouchpointType::MESSAGE));
  }
  IHS_ASSERT_OK(store_->Append({"ada", ExpectedVersion::Exact(0), three}));
  // A duplicate writes nothing and is no group.
  IHS_ASSERT_OK(AppendOne("bob", 2));
  const StoreMetrics m = store_->Metrics();
  EXPECT_EQ(m.events, 5u);
  EXPECT_EQ(m.streams, 2u);
  EXPECT_EQ(m.appends, 3u);
  EXPECT_EQ(m.appended_events, 5u);
  EXPECT_EQ(m.groups, 3u);
  EXPECT_EQ(m.group_buckets[0], 3u);  // each of one append
  EXPECT_EQ(std::accumulate(m.write_buckets.begin(), m.write_buckets.end(), uint64_t{0}), 3u);
  EXPECT_GT(m.write_seconds, 0);
  EXPECT_GT(m.disk_bytes, 0u);
}

TEST_F(EventStoreTest, ConflictInAGroupFailsOnlyThatWriter) {
  constexpr int kWriters = 4;
  ReopenHoldingFirstLeaderFor(kWriters);
  // Four writers all claim the same new stream: exactly one wins, in one group.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, conflicts{0};
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      auto r = AppendOne("contested", t + 1, ExpectedVersion::NoStream());
      if (r.ok()) ok.fetch_add(1);
      if (r.status().code() == absl::StatusCode::kAborted) conflicts.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflicts.load(), kWriters - 1);
  EXPECT_EQ(store_->Head(), 1u);
  EXPECT_EQ(store_->Stats()->syncs, 1u);
  IHS_EXPECT_OK(Verify(*store_));
}

TEST_F(EventStoreTest, ManyThreadsAppendEveryEventOnceInStreamOrder) {
  constexpr int kThreads = 8, kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Each thread owns its stream, so the exact expected version always holds.
        auto r = AppendOne(absl::StrCat("s", t), t * 10000 + i + 1,
                           i == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exact(i - 1));
        ASSERT_TRUE(r.ok()) << r.status();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store_->Head(), static_cast<uint64_t>(kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t) {
    auto events = store_->ReadStream(absl::StrCat("s", t), 0, 1000, ReadDirection::kForward);
    IHS_ASSERT_OK(events);
    ASSERT_EQ(events->size(), static_cast<size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) {
      EXPECT_EQ((*events)[i].event().getStreamVersion(), static_cast<uint64_t>(i));
    }
  }
  IHS_EXPECT_OK(Verify(*store_));
}

TEST_F(EventStoreTest, WaitForCommitWakesOnAppendAndTimesOutWhenIdle) {
  EXPECT_EQ(store_->WaitForCommit(0, absl::Now() + absl::Milliseconds(20)), 0u);
  std::thread appender([&] {
    absl::SleepFor(absl::Milliseconds(50));
    ASSERT_TRUE(AppendOne("ada", 1).ok());
  });
  uint64_t head = store_->WaitForCommit(0, absl::Now() + absl::Seconds(30));
  appender.join();
  EXPECT_EQ(head, 1u);
  EXPECT_EQ(store_->WaitForCommit(0, absl::InfinitePast()), 1u);  // already past: no wait
}

TEST_F(EventStoreTest, NoSyncModeStillAppendsAndReadsBack) {
  Options o;
  o.sync = false;  // Open warns on stderr; appends are acknowledged before their WAL sync
  Reopen(o);
  IHS_ASSERT_OK(AppendOne("bulk", 1, ExpectedVersion::Any(), "loaded"));
  Reopen();  // a clean close keeps them, as a crash would not
  auto read = store_->ReadStream("bulk", 0, 1, ReadDirection::kForward);
  IHS_ASSERT_OK(read);
  EXPECT_EQ(std::string((*read)[0].content().getText().cStr()), "loaded");
}

// ihs import's store: lookups answered from memory, no WAL, durable after Flush. The same appends
// give the same answers as in an ordinary store (duplicates, changed repeats, expected versions),
// and after Flush and a reopen the store verifies and reads back whole.
TEST_F(EventStoreTest, ABulkLoadAnswersAsAnOrdinaryStoreAndKeepsAllAfterFlush) {
  auto script = [this](EventStore& store) {
    std::vector<std::string> answers;
    auto note = [&](const absl::StatusOr<AppendResult>& r) {
      if (!r.ok()) {
        answers.push_back(absl::StatusCodeToString(r.status().code()));
      } else {
        answers.push_back(absl::StrCat(r->duplicate ? "dup " : "new ",
                                       absl::StrJoin(r->positions, ","), " v",
                                       absl::StrJoin(r->versions, ",")));
      }
    };
    StreamAppend ada{"ada",
                     ExpectedVersion::NoStream(),
                     {events_.Touchpoint(1, Channel::EMAIL, TouchpointType::COMPLAINT, "broken"),
                      events_.Touchpoint(2, Channel::TWITTER, TouchpointType::COMPLAINT, "still")}};
    note(store.Append(ada));
    note(store.Append({"bert",
                       ExpectedVersion::Any(),
                       {events_.Touchpoint(3, Channel::EMAIL, TouchpointType::MESSAGE, "hello")}}));
    note(store.Append(ada));    // a retry: the stored positions
    note(store.Append({"carl",  // a stored id with other content
                       ExpectedVersion::Any(),
                       {events_.Touchpoint(3, Channel::EMAIL, TouchpointType::MESSAGE, "other")}}));
    note(store.Append({"ada",  // a stale expected version
                       ExpectedVersion::Exact(0),
                       {events_.Touchpoint(4, Channel::EMAIL, TouchpointType::MESSAGE, "late")}}));
    note(store.Append({"ada",
                       ExpectedVersion::Exact(1),
                       {events_.Touchpoint(5, Channel::EMAIL, TouchpointType::MESSAGE, "again")}}));
    note(store.Append({"bert",  // a stream that exists
                       ExpectedVersion::NoStream(),
                       {events_.Touchpoint(6, Channel::EMAIL, TouchpointType::MESSAGE, "no")}}));
    return answers;
  };
  const std::vector<std::string> ordinary = script(*store_);
  Options bulk;
  bulk.bulk_load = true;
  Reopen(bulk, "bulk");
  EXPECT_EQ(script(*store_), ordinary);
  EXPECT_EQ(ordinary[2], "dup 0,1 v0,1");
  EXPECT_EQ(ordinary[3], "ALREADY_EXISTS");
  EXPECT_EQ(ordinary[4], "ABORTED");
  IHS_ASSERT_OK(store_->Flush());

  Reopen({}, "bulk");
  EXPECT_EQ(store_->Head(), 4u);
  IHS_EXPECT_OK(Verify(*store_));
  std::vector<std::string> texts;
  for (const StoredEvent& e : Read("ada")) texts.push_back(e.content().getText().cStr());
  EXPECT_EQ(texts, (std::vector<std::string>{"broken", "still", "again"}));
  auto info = store_->GetStreamInfo("ada");
  IHS_ASSERT_OK(info);
  EXPECT_EQ(info->event_count, 3u);
  auto stats = store_->Stats();
  IHS_ASSERT_OK(stats);
  EXPECT_EQ(stats->stream_count, 2u);
  // One key per party and class: ada's email and twitter complaints and email message, bert's.
  EXPECT_EQ(stats->key_count, 4u);

  // Only for a new store, opened for writing.
  store_.reset();
  Options again;
  again.path = dir_.Sub("bulk");
  again.bulk_load = true;
  auto refused = EventStore::Open(again);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("holds 4 events"));
}

// AppendMulti in two steps on two threads (ihs import): the same answers, content sealed with the
// party's key whether it existed at preparation or not, bad input refused before anything is
// written, and a prepared batch committed once, by its own store.
TEST_F(EventStoreTest, PreparedAppendsCommitAsAppendMultiDoesAndOnlyOnce) {
  IHS_ASSERT_OK(AppendOne("ada", 1, ExpectedVersion::Any(), "first"));
  std::vector<StreamAppend> appends = {
      {"ada",
       ExpectedVersion::Exact(0),
       {events_.Touchpoint(2, Channel::EMAIL, TouchpointType::MESSAGE, "second")}},
      {"bert",
       ExpectedVersion::NoStream(),
       {events_.Touchpoint(3, Channel::SMS, TouchpointType::MESSAGE, "hello")}}};
  absl::StatusOr<std::unique_ptr<PreparedAppends>> prepared;
  std::thread([&] { prepared = store_->PrepareAppends(appends); }).join();
  IHS_ASSERT_OK(prepared);
  EXPECT_EQ(store_->Head(), 1u);  // nothing written by preparing
  auto r = store_->AppendPrepared(**prepared);
  IHS_ASSERT_OK(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].positions, std::vector<uint64_t>{1});
  EXPECT_EQ((*r)[1].positions, std::vector<uint64_t>{2});
  EXPECT_EQ(Read("ada")[1].content().getText().cStr(), std::string("second"));
  EXPECT_EQ(Read("bert")[0].content().getText().cStr(), std::string("hello"));
  EXPECT_EQ(store_->AppendPrepared(**prepared).status().code(),
            absl::StatusCode::kFailedPrecondition);

  // A conflict is the commit's answer, as AppendMulti's.
  std::vector<StreamAppend> stale = {
      {"ada",
       ExpectedVersion::Exact(0),
       {events_.Touchpoint(4, Channel::EMAIL, TouchpointType::MESSAGE, "late")}}};
  auto late = store_->PrepareAppends(stale);
  IHS_ASSERT_OK(late);
  EXPECT_EQ(store_->AppendPrepared(**late).status().code(), absl::StatusCode::kAborted);

  // Bad input is refused by the preparation, with AppendMulti's words.
  auto bad_event = events_.New(5);
  bad_event.setId(capnp::Data::Reader(reinterpret_cast<const kj::byte*>("short"), 5));
  std::vector<StreamAppend> bad = {{"ada", ExpectedVersion::Any(), {bad_event.asReader()}}};
  auto refused = store_->PrepareAppends(bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), store_->AppendMulti(bad).status().message());

  // Another store's batch.
  Options other_options;
  other_options.path = dir_.Sub("other");
  auto other = EventStore::Open(other_options);
  IHS_ASSERT_OK(other);
  std::vector<StreamAppend> elsewhere = {
      {"carl",
       ExpectedVersion::Any(),
       {events_.Touchpoint(6, Channel::SMS, TouchpointType::LIKE)}}};
  auto theirs = (*other)->PrepareAppends(elsewhere);
  IHS_ASSERT_OK(theirs);
  EXPECT_EQ(store_->AppendPrepared(**theirs).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Head(), 3u);
  IHS_EXPECT_OK(Verify(*store_));
}

TEST_F(EventStoreTest, VerifyReportsProgressUpToTheLogSize) {
  for (uint64_t i = 1; i <= 20000; i += 100) {
    StreamAppend req{"many", ExpectedVersion::Any(), {}};
    for (uint64_t j = i; j < i + 100; ++j) {
      req.events.push_back(events_.Touchpoint(j, Channel::APP, TouchpointType::LIKE));
    }
    IHS_ASSERT_OK(store_->Append(req));
  }
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  IHS_ASSERT_OK(Verify(*store_, [&](uint64_t done, uint64_t total) {
    calls.push_back({done, total});
  }));
  ASSERT_GE(calls.size(), 2u);
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_GE(calls[i].first, calls[i - 1].first);
  EXPECT_EQ(calls.back(), std::make_pair(uint64_t{20000}, uint64_t{20000}));
}

TEST_F(EventStoreTest, ReopenKeepsEverything) {
  IHS_ASSERT_OK(AppendOne("ada", 1, ExpectedVersion::Any(), "first"));
  IHS_ASSERT_OK(AppendOne("bert", 2));
  std::string root = *Root(*store_, 2);
  Reopen();
  EXPECT_EQ(store_->Head(), 2u);
  EXPECT_EQ(*Root(*store_, 2), root);
  auto r = AppendOne("carl", 3, ExpectedVersion::NoStream(), "third");
  IHS_ASSERT_OK(r);
  EXPECT_EQ(r->positions, std::vector<uint64_t>{2});
  auto stats = store_->Stats();
  IHS_ASSERT_OK(stats);
  EXPECT_EQ(stats->stream_count, 3u);
  EXPECT_EQ(stats->key_count, 2u);
  auto ada = store_->ReadStream("ada", 0, 1, ReadDirection::kForward);
  EXPECT_EQ(std::string((*ada)[0].content().getText().cStr()), "first");
}

// --- FindEvent and state families ----------------------------------------------------------

TEST_F(EventStoreTest, FindEventGivesThePositionOfAnAcknowledgedId) {
  IHS_ASSERT_OK(AppendOne("a", 1));
  IHS_ASSERT_OK(AppendOne("b", 2));
  auto found = store_->FindEvent(ihs::testing::EventId(2));
  IHS_ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, 1u);
  auto missing = store_->FindEvent(ihs::testing::EventId(3));
  IHS_ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(store_->FindEvent("short").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ihs::store
