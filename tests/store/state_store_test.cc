// Tests of store/state_store.h: state families, where projections keep their state beside the
// log: atomic writes, scans, drops, bulk loads through ingested files, and bad names.
#include "store/state_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "store/audit.h"
#include "store/event_store.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"

namespace ihs::store {
namespace {

using schema::Channel;
using schema::TouchpointType;

class StateStoreTest : public ihs::testing::StoreTest {
 protected:
  absl::StatusOr<AppendResult> AppendOne(const std::string& stream, uint64_t id) {
    return store_->Append({stream,
                           ExpectedVersion::Any(),
                           {events_.Touchpoint(id, Channel::EMAIL, TouchpointType::MESSAGE)}});
  }
};

TEST_F(StateStoreTest, StateFamilyWritesAreAtomicAndSurviveReopen) {
  IHS_ASSERT_OK(StateStoreOf(*store_)->CreateStateFamily("timeline@1"));
  IHS_ASSERT_OK(StateStoreOf(*store_)->CreateStateFamily("timeline@1"));  // exists: nothing happens
  StateBatch batch;
  batch.Put("a", "1");
  batch.Put("b", "2");
  batch.Put("c", "3");
  batch.Delete("b");
  IHS_ASSERT_OK(StateStoreOf(*store_)->WriteState("timeline@1", batch));
  Reopen();
  EXPECT_EQ(StateStoreOf(*store_)->StateFamilies(), std::vector<std::string>{"timeline@1"});
  std::vector<std::string> seen;
  IHS_ASSERT_OK(StateStoreOf(*store_)->ScanState("timeline@1", "", "",
                                                 [&](absl::string_view k, absl::string_view v) {
                                                   seen.push_back(absl::StrCat(k, "=", v));
                                                   return true;
                                                 }));
  EXPECT_EQ(seen, (std::vector<std::string>{"a=1", "c=3"}));
  auto got = StateStoreOf(*store_)->GetState("timeline@1", "b");
  IHS_ASSERT_OK(got);
  EXPECT_FALSE(got->has_value());
  // Read-only (beside the process that holds the store): a family that exists is there to read;
  // one that does not cannot be made, and the refusal names it.
  Options ro;
  ro.read_only = true;
  Reopen(ro);
  IHS_ASSERT_OK(StateStoreOf(*store_)->CreateStateFamily("timeline@1"));
  absl::Status made = StateStoreOf(*store_)->CreateStateFamily("timeline@2");
  EXPECT_EQ(made.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(made.message().find("read-only: cannot create state family timeline@2"),
            absl::string_view::npos)
      << made;
  EXPECT_EQ(StateStoreOf(*store_)->StateFamilies(), std::vector<std::string>{"timeline@1"});
}

TEST_F(StateStoreTest, ScanStateStopsAtTheUpperBoundAndWhenTheVisitorSaysSo) {
  IHS_ASSERT_OK(StateStoreOf(*store_)->CreateStateFamily("s"));
  StateBatch batch;
  for (char c = 'a'; c <= 'f'; ++c) batch.Put(std::string(1, c), "");
  IHS_ASSERT_OK(StateStoreOf(*store_)->WriteState("s", batch));
  std::string keys;
  IHS_ASSERT_OK(
      StateStoreOf(*store_)->ScanState("s", "b", "e", [&](absl::string_view k, absl::string_view) {
        absl::StrAppend(&keys, k);
        return true;
      }));
  EXPECT_EQ(keys, "bcd");
  keys.clear();
  IHS_ASSERT_OK(
      StateStoreOf(*store_)->ScanState("s", "", "", [&](absl::string_view k, absl::string_view) {
        absl::StrAppend(&keys, k);
        return keys.size() < 2;
      }));
  EXPECT_EQ(keys, "ab");
}

TEST_F(StateStoreTest, DroppedStateFamilyIsGoneAfterReopenAndTheLogIsUntouched) {
  IHS_ASSERT_OK(AppendOne("a", 1));
  IHS_ASSERT_OK(StateStoreOf(*store_)->CreateStateFamily("old"));
  StateBatch batch;
  batch.Put("k", "v");
  IHS_ASSERT_OK(StateStoreOf(*store_)->WriteState("old", batch));
  IHS_ASSERT_OK(StateStoreOf(*store_)->DropStateFamily("old"));
  EXPECT_EQ(StateStoreOf(*store_)->GetState("old", "k").status().code(),
            absl::StatusCode::kNotFound);
  Reopen();
  EXPECT_TRUE(StateStoreOf(*store_)->StateFamilies().empty());
  EXPECT_EQ(store_->Head(), 1u);
  IHS_EXPECT_OK(Verify(*store_));
}

std::vector<std::string> ScanAll(EventStore& store, const std::string& family) {
  std::vector<std::string> seen;
  absl::Status s =
      StateStoreOf(store)->ScanState(family, "", "", [&](absl::string_view k, absl::string_view v) {
        seen.push_back(absl::StrCat(k, "=", v));
        return true;
      });
  EXPECT_TRUE(s.ok()) << s;
  return seen;
}

TEST_F(StateStoreTest, IngestedStateFilesAppearTogetherWinOverOlderStateAndSurviveReopen) {
  IHS_ASSERT_OK(StateStoreOf(*store_)->CreateStateFamily("s"));
  StateBatch batch;
  batch.Put("a", "old");
  batch.Put("d", "old");
  batch.Put("z", "old");
  IHS_ASSERT_OK(StateStoreOf(*store_)->WriteState("s", batch));
  auto low = StateStoreOf(*store_)->NewStateFile("s");
  auto high = StateStoreOf(*store_)->NewStateFile("s");
  IHS_ASSERT_OK(low);
  IHS_ASSERT_OK(high);
  IHS_ASSERT_OK((*low)->Put("a", "1"));
  IHS_ASSERT_OK((*low)->Put("b", "1"));
  IHS_ASSERT_OK((*low)->Delete("d"));
  IHS_ASSERT_OK((*high)->Put("m", "2"));
  EXPECT_EQ((*low)->entries(), 3u);
  // Nothing is visible before the ingest.
  EXPECT_EQ(ScanAll(*store_, "s"), (std::vector<std::string>{"a=old", "d=old", "z=old"}));
  std::vector<std::unique_ptr<StateFile>> files;
  files.push_back(std::move(*low));
  files.push_back(std::move(*high));
  IHS_ASSERT_OK(StateStoreOf(*store_)->IngestState("s", std::move(files)));
  const std::vector<std::string> want{"a=1", "b=1", "m=2", "z=old"};
  EXPECT_EQ(ScanAll(*store_, "s"), want);
  // The files were moved into the database: nothing is left beside it.
  const std::filesystem::path ingest = std::filesystem::path(dir_.Sub("data")) / "ingest";
  EXPECT_TRUE(!std::filesystem::exists(ingest) || std::filesystem::is_empty(ingest));
  Reopen();
  EXPECT_EQ(ScanAll(*store_, "s"), want);
}

TEST_F(StateStoreTest, StateFilesRefuseKeysOutOfOrderAndAbsentFamilies) {
  IHS_ASSERT_OK(StateStoreOf(*store_)->CreateStateFamily("s"));
  auto f = StateStoreOf(*store_)->NewStateFile("s");
  IHS_ASSERT_OK(f);
  IHS_ASSERT_OK((*f)->Put("b", "1"));
  EXPECT_EQ((*f)->Put("a", "1").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*f)->Put("b", "2").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StateStoreOf(*store_)->NewStateFile("absent").status().code(),
            absl::StatusCode::kNotFound);
  // An empty file is allowed and adds nothing.
  auto empty = StateStoreOf(*store_)->NewStateFile("s");
  IHS_ASSERT_OK(empty);
  std::vector<std::unique_ptr<StateFile>> files;
  files.push_back(std::move(*empty));
  IHS_ASSERT_OK(StateStoreOf(*store_)->IngestState("s", std::move(files)));
  EXPECT_TRUE(ScanAll(*store_, "s").empty());
}

TEST_F(StateStoreTest, StateFilesACrashLeftBehindAreRemovedAtOpen) {
  IHS_ASSERT_OK(StateStoreOf(*store_)->CreateStateFamily("s"));
  auto f = StateStoreOf(*store_)->NewStateFile("s");
  IHS_ASSERT_OK(f);
  IHS_ASSERT_OK((*f)->Put("k", "v"));
  const std::filesystem::path ingest = std::filesystem::path(dir_.Sub("data")) / "ingest";
  ASSERT_FALSE(std::filesystem::is_empty(ingest));
  // A second open for writing fails on RocksDB's lock, and leaves the first one's files alone.
  Options again;
  again.path = dir_.Sub("data");
  EXPECT_FALSE(EventStore::Open(again).ok());
  ASSERT_FALSE(std::filesystem::is_empty(ingest));
  IHS_ASSERT_OK((*f)->Put("l", "v"));
  // As a crash would leave it: the file never ingested, the store closed without a word.
  std::ofstream(ingest / "99.sst") << "half a file";
  f->reset();
  Reopen();
  EXPECT_FALSE(std::filesystem::exists(ingest));
  EXPECT_TRUE(ScanAll(*store_, "s").empty());
}

TEST_F(StateStoreTest, StateFamilyBadNamesAndAbsentFamiliesAreClearErrors) {
  EXPECT_EQ(StateStoreOf(*store_)->CreateStateFamily("").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StateStoreOf(*store_)->CreateStateFamily("Time Line").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StateStoreOf(*store_)->CreateStateFamily(std::string(65, 'a')).code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status s = StateStoreOf(*store_)->WriteState("absent", StateBatch());
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("absent"), std::string::npos) << s;
  EXPECT_EQ(StateStoreOf(*store_)->DropStateFamily("absent").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ihs::store
