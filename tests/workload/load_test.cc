// Loading a generated history: into a store (resumable, refusing another history) and to JSON
// Lines that `ihs append` takes back.
#include "workload/load.h"

#include <capnp/message.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "schema/json.h"
#include "store/audit.h"
#include "tests/testutil/testutil.h"

namespace ihs::workload {
namespace {

Config Small() {
  Config c;
  c.parties = 400;
  c.days = 40;
  c.seed = 11;
  return c;
}

std::unique_ptr<store::EventStore> OpenStore(const std::string& path) {
  store::Options o;
  o.path = path;
  auto s = store::EventStore::Open(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

std::set<std::string> StoredIds(store::EventStore& store) {
  std::set<std::string> ids;
  store::ReadOptions ro;
  ro.open_content = false;
  for (uint64_t pos = 0; pos < store.Head();) {
    auto batch = store.ReadAll(pos, 5000, ro);
    EXPECT_TRUE(batch.ok());
    if (!batch.ok() || batch->empty()) break;
    for (const auto& e : *batch) {
      auto id = e.event().getId();
      ids.insert(std::string(reinterpret_cast<const char*>(id.begin()), id.size()));
    }
    pos += batch->size();
  }
  return ids;
}

std::set<std::string> GeneratedIds(const Config& c) {
  Generator g(c);
  std::set<std::string> ids;
  capnp::MallocMessageBuilder m;
  for (uint64_t i = 0;; ++i) {
    capnp::MallocMessageBuilder message;
    if (!g.Next(message.initRoot<schema::Event>())) break;
    ids.insert(g.EventId(i));
  }
  return ids;
}

TEST(LoadIntoStore, StoresEveryGeneratedEventOnce) {
  testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"));
  Generator g(Small());
  uint64_t last_progress = 0;
  auto report = LoadIntoStore(g, *store, [&](uint64_t events, double) { last_progress = events; });
  IHS_ASSERT_OK(report.status());
  EXPECT_EQ(report->present, 0u);
  EXPECT_EQ(report->appended, g.emitted());
  EXPECT_EQ(last_progress, g.emitted());
  EXPECT_EQ(store->Head(), g.emitted());
  EXPECT_EQ(StoredIds(*store), GeneratedIds(Small()));
  IHS_ASSERT_OK(Verify(*store).status());
}

TEST(LoadIntoStore, RerunOfTheSameHistoryWritesNothing) {
  testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"));
  Generator first(Small());
  IHS_ASSERT_OK(LoadIntoStore(first, *store).status());
  const uint64_t head = store->Head();
  auto root = Root(*store, head);
  IHS_ASSERT_OK(root.status());

  Generator again(Small());
  auto report = LoadIntoStore(again, *store);
  IHS_ASSERT_OK(report.status());
  EXPECT_EQ(report->present, head);
  EXPECT_EQ(report->appended, 0u);
  EXPECT_EQ(store->Head(), head);
  EXPECT_EQ(*Root(*store, head), *root);
}

TEST(LoadIntoStore, AnotherHistoryIsRefusedAndNothingChanges) {
  testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"));
  Generator first(Small());
  IHS_ASSERT_OK(LoadIntoStore(first, *store).status());
  const uint64_t head = store->Head();
  const std::string root = *Root(*store, head);

  Config other = Small();
  other.seed = 12;
  Generator g(other);
  auto report = LoadIntoStore(g, *store);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(report.status().message(), "different history")) << report.status();
  EXPECT_EQ(store->Head(), head);
  EXPECT_EQ(*Root(*store, head), root);
}

TEST(LoadIntoStore, AnInterruptedLoadResumesWhereItStopped) {
  testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"));
  Config partial = Small();
  partial.max_events = 2 * kLoadBatch;  // as if stopped after two batches
  Generator first(partial);
  IHS_ASSERT_OK(LoadIntoStore(first, *store).status());
  ASSERT_EQ(store->Head(), 2 * kLoadBatch);

  Generator rest(Small());
  auto report = LoadIntoStore(rest, *store);
  IHS_ASSERT_OK(report.status());
  EXPECT_EQ(report->present, 2 * kLoadBatch);
  EXPECT_EQ(report->present + report->appended, rest.emitted());
  EXPECT_EQ(StoredIds(*store), GeneratedIds(Small()));
}

// A demo's store: the history, then what a user appended and ihsd's own events; and a load
// stopped after two batches, with an append between them and the rest. Run again, the load
// writes nothing twice and what others appended stays.
TEST(LoadIntoStore, OthersAppendsAfterOrBetweenItsBatchesAreLeftAlone) {
  testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"));
  testing::EventFactory events;
  std::set<std::string> others;
  auto append_other = [&](uint64_t id) {
    schema::Event::Reader e =
        events.Touchpoint(id, schema::Channel::CHAT, schema::TouchpointType::MESSAGE);
    others.emplace(reinterpret_cast<const char*>(e.getId().begin()), e.getId().size());
    return store->Append({"someone-else", store::ExpectedVersion::Any(), {e}}).status();
  };
  Config partial = Small();
  partial.max_events = 2 * kLoadBatch;
  Generator first(partial);
  IHS_ASSERT_OK(LoadIntoStore(first, *store).status());
  IHS_ASSERT_OK(append_other(1));
  Generator rest(Small());
  auto report = LoadIntoStore(rest, *store);
  IHS_ASSERT_OK(report.status());
  EXPECT_EQ(report->present, 2 * kLoadBatch);
  EXPECT_EQ(report->present + report->appended, rest.emitted());
  IHS_ASSERT_OK(append_other(2));
  IHS_ASSERT_OK(append_other(3));
  const uint64_t head = store->Head();
  EXPECT_EQ(head, rest.emitted() + 3);

  Generator again(Small());
  report = LoadIntoStore(again, *store);
  IHS_ASSERT_OK(report.status());
  EXPECT_EQ(report->present, again.emitted());
  EXPECT_EQ(report->appended, 0u);
  EXPECT_EQ(store->Head(), head);
  std::set<std::string> want = GeneratedIds(Small());
  want.insert(others.begin(), others.end());
  EXPECT_EQ(StoredIds(*store), want);
}

TEST(WriteJsonLines, WritesEventsThatAppendTakesBack) {
  testing::TempDir dir;
  const std::string path = dir.Sub("history.jsonl");
  Generator g(Small());
  auto report = WriteJsonLines(g, path);
  IHS_ASSERT_OK(report.status());
  EXPECT_FALSE(std::ifstream(path + ".tmp").good()) << "the temporary file is renamed";

  auto store = OpenStore(dir.Sub("data"));
  schema::EventJson json;
  std::ifstream in(path);
  std::string line;
  uint64_t lines = 0;
  while (std::getline(in, line)) {
    capnp::MallocMessageBuilder m;
    auto e = m.initRoot<schema::Event>();
    IHS_ASSERT_OK(json.Decode(line, e));
    store::StreamAppend a;
    a.stream = e.getStreamId().cStr();
    a.events.push_back(e.asReader());
    IHS_ASSERT_OK(store->Append(a).status());
    ++lines;
  }
  EXPECT_EQ(lines, report->appended);
  EXPECT_EQ(StoredIds(*store), GeneratedIds(Small()));
}

TEST(WriteJsonLines, AnUnwritablePathIsNamed) {
  Generator g(Small());
  auto report = WriteJsonLines(g, "/nonexistent-dir/history.jsonl");
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(report.status().message(), "/nonexistent-dir/history.jsonl"))
      << report.status();
}

}  // namespace
}  // namespace ihs::workload
