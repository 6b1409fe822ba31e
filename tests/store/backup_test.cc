// EventStore::Backup: a consistent copy that opens, verifies and signs as the same store, taken
// from a store open for writing, or from a read-only open while another instance appends.
#include "store/backup.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "store/audit.h"
#include "store/event_store.h"
#include "store/tlog.h"
#include "tests/testutil/testutil.h"

namespace ihs::store {
namespace {

using ihs::testing::EventFactory;
using schema::Channel;
using schema::TouchpointType;

class BackupTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<EventStore>> OpenAt(const std::string& dir, bool read_only,
                                                     const std::string& master_key = "") {
    Options o;
    o.path = dir_.Sub(dir);
    o.read_only = read_only;
    o.master_key_path = master_key;
    return EventStore::Open(o);
  }

  absl::Status Add(EventStore& store, uint64_t id) {
    return store
        .Append({absl::StrCat("party-", id % 7),
                 ExpectedVersion::Any(),
                 {events_.Touchpoint(id, Channel::EMAIL, TouchpointType::MESSAGE,
                                     absl::StrCat("words ", id))}})
        .status();
  }

  tlog::TreeHead Head(EventStore& store, const tlog::VerifierKey& key) {
    auto note = SignedHead(store);
    EXPECT_TRUE(note.ok()) << note.status();
    tlog::TreeHead head;
    std::string why;
    EXPECT_TRUE(tlog::OpenHead(*note, key, &head, &why)) << why;
    return head;
  }

  ihs::testing::TempDir dir_;
  EventFactory events_;
};

TEST_F(BackupTest, TheCopyOpensVerifiesAndExtendsTheHeadsOfTheOriginal) {
  auto store = OpenAt("data", false);
  ASSERT_TRUE(store.ok()) << store.status();
  for (uint64_t i = 1; i <= 50; ++i) IHS_ASSERT_OK(Add(**store, i));
  auto key = VerifierKey(**store);
  IHS_ASSERT_OK(key);
  const tlog::TreeHead before = Head(**store, *key);

  auto copied = Backup(**store, dir_.Sub("backup"), /*include_master_key=*/true);
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(*copied, 50u);
  IHS_ASSERT_OK(Add(**store, 51));  // the original goes on; the copy does not see it

  auto copy = OpenAt("backup", true);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ((*copy)->Head(), 50u);
  auto report = Verify(**copy);
  ASSERT_TRUE(report.ok()) << report.status();
  // It signs as the same store, and its log is the one the earlier head attests.
  auto copy_key = VerifierKey(**copy);
  IHS_ASSERT_OK(copy_key);
  EXPECT_EQ(tlog::FormatVerifierKey(*copy_key), tlog::FormatVerifierKey(*key));
  const tlog::TreeHead restored = Head(**copy, *key);
  EXPECT_EQ(restored.size, 50u);
  EXPECT_EQ(restored.root, before.root);
  // Its content opens with the copied master key.
  auto events = (*copy)->ReadStream("party-1", 0, 1, ReadDirection::kForward);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(std::string((*events)[0].content().getText().cStr()), "words 1");

  // Into a directory that holds something: refused, nothing written there.
  std::filesystem::create_directories(dir_.Sub("busy"));
  std::ofstream(dir_.Sub("busy/keep")) << "x";
  auto busy = Backup(**store, dir_.Sub("busy"), false);
  EXPECT_EQ(busy.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("busy/db")));
}

// Four flushes (each backup flushes the memtable) leave four files on level 0, which is what
// starts a compaction; the store's background work then settles to none, and says so.
TEST_F(BackupTest, TheBackgroundWorkOfFlushesSettlesToNone) {
  auto store = OpenAt("data", false);
  ASSERT_TRUE(store.ok()) << store.status();
  for (uint64_t round = 0; round < 4; ++round) {
    for (uint64_t i = 1; i <= 20; ++i) IHS_ASSERT_OK(Add(**store, round * 20 + i));
    IHS_ASSERT_OK(Backup(**store, dir_.Sub(absl::StrCat("backup-", round)), false).status());
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  absl::StatusOr<uint64_t> work = BackgroundWork(**store);
  while (work.ok() && *work != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    work = BackgroundWork(**store);
  }
  ASSERT_TRUE(work.ok()) << work.status();
  EXPECT_EQ(*work, 0u);
  EXPECT_EQ((*store)->Head(), 80u);
}

TEST_F(BackupTest, AReadOnlyOpenCopiesWhileAnotherInstanceAppends) {
  auto writer = OpenAt("data", false);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (uint64_t i = 1; i <= 200; ++i) IHS_ASSERT_OK(Add(**writer, i));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acknowledged{200};
  std::thread appender([&] {
    for (uint64_t i = 201; !stop && i <= 5000; ++i) {
      if (!Add(**writer, i).ok()) return;
      acknowledged = i;
    }
  });
  auto reader = OpenAt("data", true);
  ASSERT_TRUE(reader.ok()) << reader.status();
  const uint64_t seen_at_open = acknowledged;
  auto copied = Backup(**reader, dir_.Sub("backup"), /*include_master_key=*/false);
  stop = true;
  appender.join();
  ASSERT_TRUE(copied.ok()) << copied.status();

  // Without its own master key, the copy opens with the original's.
  auto no_key = OpenAt("backup", true);
  EXPECT_FALSE(no_key.ok());
  auto copy = OpenAt("backup", true, dir_.Sub("data/master.key"));
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_GE((*copy)->Head(), seen_at_open);
  auto report = Verify(**copy);
  ASSERT_TRUE(report.ok()) << report.status();
  auto key = VerifierKey(**writer);
  IHS_ASSERT_OK(key);
  const tlog::TreeHead restored = Head(**copy, *key);
  auto original_root = Root(**writer, restored.size);
  IHS_ASSERT_OK(original_root);
  EXPECT_EQ(*original_root, std::string(tlog::AsBytes(restored.root)))
      << "the copy is a prefix of the original's log";
}

}  // namespace
}  // namespace ihs::store
