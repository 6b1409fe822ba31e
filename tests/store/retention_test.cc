// Retention (store/retention.h, EventStore::RunRetention): content of a class and year expires
// as a whole once the policy's period has passed, by deleting its data key; holds suspend it;
// the trail records every run; expired content cannot come back.
#include "store/retention.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/match.h"
#include "store/audit.h"
#include "store/event_store.h"
#include "store/governance.h"
#include "store/internal/content_keys.h"
#include "tests/testutil/raw_db.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"

namespace ihs::store {
namespace {

using schema::Channel;
using schema::TouchpointType;

constexpr int64_t k2023 = 1690000000000000, k2024 = 1720000000000000;  // July of each
const absl::Time kJune2026 = absl::FromUnixSeconds(1780000000);

class RetentionTest : public ihs::testing::StoreTest {
 protected:
  void SetUp() override {
    real_clock_ = true;
    StoreTest::SetUp();
  }
  absl::Status Add(const std::string& party, Channel channel, int64_t when,
                   const std::string& text = "words") {
    return StoreTest::Add(party, text, channel, when);
  }
  RetentionPolicy Policy(absl::string_view text) {
    auto p = RetentionPolicy::Parse(text);
    EXPECT_TRUE(p.ok()) << p.status();
    return *p;
  }
};

TEST(RetentionPolicy, ParsesRulesAndNamesTheLineOfAMistake) {
  auto p = RetentionPolicy::Parse(
      "# business letters\nchannel=letter type=message 10y\nchannel=chat 2y\n"
      "type=complaint 6y  # any channel\nchannel=sms 90d\n");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->rules().size(), 4u);
  const auto chat = static_cast<uint16_t>(Channel::CHAT);
  const auto letter = static_cast<uint16_t>(Channel::LETTER);
  const auto message = static_cast<uint16_t>(TouchpointType::MESSAGE);
  const auto complaint = static_cast<uint16_t>(TouchpointType::COMPLAINT);
  EXPECT_EQ(p->RuleFor(chat, message)->text, "channel=chat 2y");
  EXPECT_EQ(p->RuleFor(chat, complaint)->text, "type=complaint 6y");  // type beats channel
  EXPECT_EQ(p->RuleFor(letter, message)->text, "channel=letter type=message 10y");
  EXPECT_EQ(p->RuleFor(letter, complaint)->text, "type=complaint 6y");
  EXPECT_EQ(p->RuleFor(static_cast<uint16_t>(Channel::EMAIL), message), nullptr);  // kept
  EXPECT_EQ(RetentionPolicy::ExpiresAt(*p->RuleFor(chat, message), 2024),
            absl::FromCivil(absl::CivilYear(2027), absl::UTCTimeZone()));
  EXPECT_EQ(
      RetentionPolicy::ExpiresAt(*p->RuleFor(static_cast<uint16_t>(Channel::SMS), message), 2024),
      absl::FromCivil(absl::CivilDay(2025, 4, 1), absl::UTCTimeZone()));

  for (const auto& [text, want] : std::vector<std::pair<std::string, std::string>>{
           {"channel=pigeon 2y", "line 1 (\"channel=pigeon 2y\"): unknown channel \"pigeon\""},
           {"\nchannel=chat", "line 2 (\"channel=chat\"): give how long"},
           {"2y", "name a channel=, a type= or both"},
           {"channel=chat forever", "\"forever\" is not"},
           {"channel=chat 2y\nchannel=chat 3y", "line 2 (\"channel=chat 3y\"): the same content"},
       }) {
    auto bad = RetentionPolicy::Parse(text);
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_TRUE(absl::StrContains(bad.status().message(), want)) << bad.status();
  }
}

TEST_F(RetentionTest, ExpiredClassesLoseTheirKeysHeldPartiesAreSkippedAndTheTrailSaysSo) {
  IHS_ASSERT_OK(Add("ada", Channel::CHAT, k2023, "old chat"));
  IHS_ASSERT_OK(Add("ada", Channel::CHAT, k2024, "newer chat"));
  IHS_ASSERT_OK(Add("ada", Channel::EMAIL, k2023, "old email"));
  IHS_ASSERT_OK(Add("bob", Channel::CHAT, k2023, "bob's old chat"));
  IHS_ASSERT_OK(SetLegalHold(*store_, "bob", false, "litigation 9", "legal"));
  const RetentionPolicy policy = Policy("channel=chat 2y\n");

  auto dry = RunRetention(*store_, policy, kJune2026, "ops", /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->parties, 2u);
  EXPECT_EQ(dry->classes, 2u);
  EXPECT_FALSE(dry->run_position.has_value());
  EXPECT_EQ(Read("ada")[0].content_state(), ContentState::kOpen);  // a dry run changes nothing

  // The wrapped key of ada's chat of 2023, to look for in the files afterwards.
  const uint64_t head_before = store_->Head();
  store_.reset();
  std::string chat2023, email2023;
  {
    ihs::testing::RawDb raw(dir_.Sub("data"));
    auto row = [](Channel c, int64_t when) {
      return internal::ContentKeyRow(
          "ada", internal::ClassKeyVersion(static_cast<uint16_t>(c),
                                           static_cast<uint16_t>(TouchpointType::MESSAGE), when));
    };
    ASSERT_TRUE(raw.db
                    ->Get(rocksdb::ReadOptions(), raw.cf["content_keys"], row(Channel::CHAT, k2023),
                          &chat2023)
                    .ok());
    ASSERT_TRUE(raw.db
                    ->Get(rocksdb::ReadOptions(), raw.cf["content_keys"],
                          row(Channel::EMAIL, k2023), &email2023)
                    .ok());
  }
  ASSERT_EQ(chat2023.size(), 77u);
  ASSERT_NE(AllFileBytes().find(chat2023), std::string::npos);  // the scan can see a key
  Reopen();

  auto run = RunRetention(*store_, policy, kJune2026, "ops", /*dry_run=*/false);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->parties, 1u);
  EXPECT_EQ(run->classes, 1u);
  EXPECT_EQ(run->held, std::vector<std::string>{"bob"});
  std::vector<StoredEvent> ada = Read("ada");
  ASSERT_EQ(ada.size(), 4u);
  EXPECT_EQ(ada[0].content_state(), ContentState::kErased);  // chat of 2023
  EXPECT_EQ(std::string(ada[1].content().getText().cStr()), "newer chat");
  EXPECT_EQ(std::string(ada[2].content().getText().cStr()), "old email");
  ASSERT_EQ(ada[3].event().which(), schema::Event::CONTENT_EXPIRY);
  auto expiry = ada[3].event().getContentExpiry();
  ASSERT_EQ(expiry.getExpired().size(), 1u);
  EXPECT_EQ(expiry.getExpired()[0].getChannel(), Channel::CHAT);
  EXPECT_EQ(expiry.getExpired()[0].getYear(), 2023);
  EXPECT_EQ(std::string(expiry.getRules().cStr()), "channel=chat 2y");
  EXPECT_EQ(std::string(expiry.getRequestedBy().cStr()), "ops");
  EXPECT_EQ(Read("bob")[0].content_state(), ContentState::kOpen);  // held
  std::vector<StoredEvent> runs = Read(kRetentionStream);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].position(), *run->run_position);
  auto r = runs[0].event().getRetentionRun();
  EXPECT_EQ(r.getClasses(), 1u);
  ASSERT_EQ(r.getHeld().size(), 1u);
  EXPECT_EQ(std::string(r.getHeld()[0].cStr()), "bob");
  EXPECT_EQ(store_->Head(), head_before + 2);
  IHS_EXPECT_OK(Verify(*store_));

  // Content of an expired class and year cannot come back under a new key.
  absl::Status again = Add("ada", Channel::CHAT, k2023 + 5, "sneaking back");
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(again.message(), "chat message of 2023) has expired")) << again;
  IHS_EXPECT_OK(Add("ada", Channel::CHAT, k2023 + 6, ""));  // the envelope alone is fine

  store_.reset();
  const std::string files = AllFileBytes();
  EXPECT_EQ(files.find(chat2023), std::string::npos) << "the expired key is still on disk";
  EXPECT_NE(files.find(email2023), std::string::npos) << "a kept key vanished";
  Reopen();  // the expiry is stored, not remembered
  EXPECT_EQ(Read("ada")[0].content_state(), ContentState::kErased);
  EXPECT_EQ(Add("ada", Channel::CHAT, k2023 + 7, "again").code(),
            absl::StatusCode::kFailedPrecondition);
  // A second run finds nothing new to expire (bob is still held).
  auto second = RunRetention(*store_, policy, kJune2026, "ops", false);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->classes, 0u);
  EXPECT_EQ(second->held, std::vector<std::string>{"bob"});
}

TEST_F(RetentionTest, APlainAppendCannotForgeAnExpiryOrARun) {
  IHS_ASSERT_OK(Add("ada", Channel::CHAT, k2023));
  auto forged = events_.New(++next_id_);
  forged.setOccurredAt(k2023);
  forged.initContentExpiry().setRules("channel=chat 0y");
  auto s = store_->Append({"ada", ExpectedVersion::Any(), {forged.asReader()}});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.status().message(), "ihs retention run")) << s.status();
  EXPECT_EQ(RunRetention(*store_, Policy("channel=chat 1y"), kJune2026, " ", false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Read("ada")[0].content_state(), ContentState::kOpen);
}

}  // namespace
}  // namespace ihs::store
