// Erasure and legal holds (store/event_store.h): an erased party's content can no longer be
// read, its key's bytes leave RocksDB's files, and history is not rewritten; holds suspend
// erasure; every refusal leaves the store as it was.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "store/audit.h"
#include "store/event_store.h"
#include "store/governance.h"
#include "store/tlog.h"
#include "tests/testutil/raw_db.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"

namespace ihs::store {
namespace {

using schema::Channel;
using schema::TouchpointType;

class ErasureTest : public ihs::testing::StoreTest {
 protected:
  void SetUp() override {
    real_clock_ = true;
    StoreTest::SetUp();
  }

  // Checks that nothing the store holds changed since `before` (the stored bytes of the log).
  void ExpectUnchanged(const std::vector<std::string>& before) {
    EXPECT_EQ(ihs::testing::AllStoredBytes(*store_), before);
  }
};

TEST_F(ErasureTest, ErasedContentIsGoneWhileTheEventsAndTheTreeStay) {
  for (int i = 0; i < 3; ++i) IHS_ASSERT_OK(Add("ada", absl::StrCat("ada's secret ", i)));
  IHS_ASSERT_OK(Add("bob", "bob's words"));
  ASSERT_EQ(Read("ada")[0].content_state(), ContentState::kOpen);  // the key is cached now
  auto root_before = Root(*store_, 4);
  IHS_ASSERT_OK(root_before);
  auto keys_before = store_->Stats();
  IHS_ASSERT_OK(keys_before);

  auto erased = Erase(*store_, "ada", "GDPR art. 17 request #41", "alice");
  IHS_ASSERT_OK(erased);
  EXPECT_EQ(*erased, 4u);

  std::vector<StoredEvent> ada = Read("ada");
  ASSERT_EQ(ada.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ada[i].content_state(), ContentState::kErased) << i;
  auto request = ada[3].event();
  ASSERT_EQ(request.which(), schema::Event::ERASURE_REQUEST);
  EXPECT_EQ(std::string(request.getErasureRequest().getReason().cStr()),
            "GDPR art. 17 request #41");
  EXPECT_EQ(std::string(request.getErasureRequest().getRequestedBy().cStr()), "alice");
  EXPECT_EQ(ada[3].position(), 4u);
  EXPECT_EQ(Read("bob")[0].content_state(), ContentState::kOpen);

  // History is not rewritten: the old root is the same, the new tree extends it, and the log
  // verifies.
  auto root_after = Root(*store_, 4);
  IHS_ASSERT_OK(root_after);
  EXPECT_EQ(*root_after, *root_before);
  auto proof = ConsistencyProof(*store_, 4, 5);
  IHS_ASSERT_OK(proof);
  auto new_root = Root(*store_, 5);
  IHS_ASSERT_OK(new_root);
  tlog::Hash old_hash{}, new_hash{};
  ASSERT_TRUE(tlog::HashFromBytes(*root_before, &old_hash));
  ASSERT_TRUE(tlog::HashFromBytes(*new_root, &new_hash));
  std::string why;
  EXPECT_TRUE(tlog::VerifyConsistency(4, 5, old_hash, new_hash, *proof, &why)) << why;
  IHS_EXPECT_OK(Verify(*store_));

  auto info = store_->GetStreamInfo("ada");
  IHS_ASSERT_OK(info);
  EXPECT_EQ(info->erased_position, std::optional<uint64_t>(4));
  EXPECT_FALSE(info->hold_position.has_value());
  auto keys_after = store_->Stats();
  IHS_ASSERT_OK(keys_after);
  EXPECT_EQ(keys_after->key_count, keys_before->key_count - 1);

  Reopen();  // and after a restart, from the stored state alone
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Read("ada")[i].content_state(), ContentState::kErased);
  info = store_->GetStreamInfo("ada");
  IHS_ASSERT_OK(info);
  EXPECT_EQ(info->erased_position, std::optional<uint64_t>(4));
}

TEST_F(ErasureTest, TheKeysBytesLeaveEveryFileOfTheDatabase) {
  IHS_ASSERT_OK(Add("ada", "my router is broken"));
  IHS_ASSERT_OK(Add("bob", "bob's words"));
  store_.reset();
  std::string wrapped;
  {
    ihs::testing::RawDb raw(dir_.Sub("data"));
    std::unique_ptr<rocksdb::Iterator> it(
        raw.db->NewIterator(rocksdb::ReadOptions(), raw.cf["content_keys"]));
    it->Seek("ada");  // its one row: the key of its one class (email messages of 2023)
    ASSERT_TRUE(it->Valid());
    ASSERT_EQ(it->key().ToString().substr(0, 4), std::string("ada\0", 4));
    wrapped = it->value().ToString();
  }
  ASSERT_EQ(wrapped.size(), 1u + 4 + 24 + 48);
  // The scan can see the key: it is in the files before the erasure.
  ASSERT_NE(AllFileBytes().find(wrapped), std::string::npos);

  Reopen();
  IHS_ASSERT_OK(Add("bob", "written after, so that a live WAL is not empty"));
  IHS_ASSERT_OK(Erase(*store_, "ada", "asked to be forgotten", "alice"));
  store_.reset();
  const std::string files = AllFileBytes();
  EXPECT_EQ(files.find(wrapped), std::string::npos) << "the wrapped data key is still on disk";
  EXPECT_EQ(files.find(wrapped.substr(29)), std::string::npos) << "its ciphertext is on disk";

  Reopen();
  EXPECT_EQ(Read("bob")[0].content_state(), ContentState::kOpen);
  EXPECT_EQ(std::string(Read("bob")[1].content().getText().cStr()),
            "written after, so that a live WAL is not empty");
}

TEST_F(ErasureTest, EachClassAndYearOfAPartysContentHasItsOwnKeyAndErasureTakesThemAll) {
  constexpr int64_t k2023 = 1690000000000000, k2024 = 1720000000000000;  // July of each
  auto add = [&](const std::string& party, Channel channel, int64_t when) {
    return store_
        ->Append(
            {party,
             ExpectedVersion::Any(),
             {events_.Touchpoint(++next_id_, channel, TouchpointType::MESSAGE, "words", when)}})
        .status();
  };
  IHS_ASSERT_OK(add("ada", Channel::EMAIL, k2023));
  IHS_ASSERT_OK(add("ada", Channel::EMAIL, k2023 + 1));  // same class and year: same key
  IHS_ASSERT_OK(add("ada", Channel::EMAIL, k2024));
  IHS_ASSERT_OK(add("ada", Channel::CHAT, k2024));
  IHS_ASSERT_OK(add("ada2", Channel::CHAT, k2024));  // a party whose id ada's is a prefix of
  auto stats = store_->Stats();
  IHS_ASSERT_OK(stats);
  EXPECT_EQ(stats->key_count, 4u);
  std::vector<StoredEvent> ada = Read("ada");
  EXPECT_EQ(ada[0].event().getSealedContent().getKeyVersion(),
            ada[1].event().getSealedContent().getKeyVersion());
  EXPECT_NE(ada[0].event().getSealedContent().getKeyVersion(),
            ada[2].event().getSealedContent().getKeyVersion());
  EXPECT_NE(ada[2].event().getSealedContent().getKeyVersion(),
            ada[3].event().getSealedContent().getKeyVersion());

  IHS_ASSERT_OK(Erase(*store_, "ada", "asked to be forgotten", "alice"));
  stats = store_->Stats();
  IHS_ASSERT_OK(stats);
  EXPECT_EQ(stats->key_count, 1u);  // ada2's
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Read("ada")[i].content_state(), ContentState::kErased);
  EXPECT_EQ(Read("ada2")[0].content_state(), ContentState::kOpen);
}

TEST_F(ErasureTest, RefusalsNameTheProblemAndChangeNothing) {
  IHS_ASSERT_OK(Add("ada", "personal"));
  const std::vector<std::string> before = ihs::testing::AllStoredBytes(*store_);

  auto no_reason = Erase(*store_, "ada", "  ", "alice");
  EXPECT_EQ(no_reason.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(no_reason.status().message(), "needs a reason"))
      << no_reason.status();
  auto no_one = Erase(*store_, "ada", "asked", "");
  EXPECT_EQ(no_one.status().code(), absl::StatusCode::kInvalidArgument);
  auto nobody = Erase(*store_, "nobody", "asked", "alice");
  EXPECT_EQ(nobody.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(nobody.status().message(), "no such party: nobody"));
  auto hold_nobody = SetLegalHold(*store_, "nobody", false, "case 7", "alice");
  EXPECT_EQ(hold_nobody.status().code(), absl::StatusCode::kNotFound);
  auto lift_unheld = SetLegalHold(*store_, "ada", true, "case 7", "alice");
  EXPECT_EQ(lift_unheld.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(lift_unheld.status().message(), "not under legal hold"));
  ExpectUnchanged(before);

  // A plain append cannot carry an erasure or a hold: it would bypass the key and the checks.
  auto forged = events_.New(++next_id_);
  forged.setOccurredAt(1700000000000000);
  forged.initErasureRequest().setReason("sneaky");
  auto plain = store_->Append({"ada", ExpectedVersion::Any(), {forged.asReader()}});
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(plain.status().message(), "ihs erase")) << plain.status();
  auto forged_hold = events_.New(++next_id_);
  forged_hold.setOccurredAt(1700000000000000);
  forged_hold.initLegalHold().setReason("sneaky");
  EXPECT_EQ(
      store_->Append({"ada", ExpectedVersion::Any(), {forged_hold.asReader()}}).status().code(),
      absl::StatusCode::kInvalidArgument);
  ExpectUnchanged(before);
  EXPECT_EQ(Read("ada")[0].content_state(), ContentState::kOpen);
}

TEST_F(ErasureTest, AHoldSuspendsErasureUntilItIsLifted) {
  IHS_ASSERT_OK(Add("ada", "personal"));
  auto held = SetLegalHold(*store_, "ada", false, "litigation 2026-17", "legal@corp");
  IHS_ASSERT_OK(held);
  EXPECT_EQ(*held, 1u);
  auto info = store_->GetStreamInfo("ada");
  IHS_ASSERT_OK(info);
  EXPECT_EQ(info->hold_position, std::optional<uint64_t>(1));
  auto again = SetLegalHold(*store_, "ada", false, "another", "legal@corp");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(again.status().message(), "already under legal hold"));

  const std::vector<std::string> before = ihs::testing::AllStoredBytes(*store_);
  auto refused = Erase(*store_, "ada", "asked to be forgotten", "alice");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      absl::StrContains(refused.status().message(), "under legal hold (placed at position 1)"))
      << refused.status();
  ExpectUnchanged(before);
  EXPECT_EQ(Read("ada")[0].content_state(), ContentState::kOpen);

  Reopen();  // the hold is stored, not remembered
  EXPECT_EQ(Erase(*store_, "ada", "asked", "alice").status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto lifted = SetLegalHold(*store_, "ada", true, "case closed", "legal@corp");
  IHS_ASSERT_OK(lifted);
  std::vector<StoredEvent> trail = Read("ada");
  ASSERT_EQ(trail.size(), 3u);
  ASSERT_EQ(trail[2].event().which(), schema::Event::LEGAL_HOLD);
  EXPECT_TRUE(trail[2].event().getLegalHold().getLift());
  EXPECT_EQ(std::string(trail[2].event().getLegalHold().getRequestedBy().cStr()), "legal@corp");

  auto erased = Erase(*store_, "ada", "asked to be forgotten", "alice");
  IHS_ASSERT_OK(erased);
  EXPECT_EQ(Read("ada")[0].content_state(), ContentState::kErased);
  auto twice = Erase(*store_, "ada", "again", "alice");
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(twice.status().message(), "already erased (position 3)"));
  auto hold_erased = SetLegalHold(*store_, "ada", false, "late", "legal@corp");
  EXPECT_EQ(hold_erased.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ErasureTest, AnErasedPartysNewEventsCarryNoContent) {
  IHS_ASSERT_OK(Add("ada", "personal"));
  IHS_ASSERT_OK(Erase(*store_, "ada", "asked to be forgotten", "alice"));
  absl::Status with_content = Add("ada", "new secret");
  EXPECT_EQ(with_content.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(with_content.message(), "was erased (position 1)")) << with_content;
  IHS_EXPECT_OK(Add("ada", ""));  // the envelope alone is still history worth keeping
  EXPECT_EQ(Read("ada").size(), 3u);
}

TEST_F(ErasureTest, AReadOnlyStoreRefuses) {
  IHS_ASSERT_OK(Add("ada", "personal"));
  Options read_only;
  read_only.read_only = true;
  Reopen(read_only);
  EXPECT_EQ(Erase(*store_, "ada", "asked", "alice").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(SetLegalHold(*store_, "ada", false, "case", "alice").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ihs::store
