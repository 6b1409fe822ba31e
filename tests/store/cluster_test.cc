// The cluster's log on real nats-server processes (three, routed, JetStream R3), started and
// ended by each test (tests/testutil/nats_servers.h).
#include "store/cluster/cluster.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "store/audit.h"
#include "store/cluster/node.h"
#include "store/cluster/ownership.h"
#include "store/cluster/replica.h"
#include "tests/testutil/nats_servers.h"
#include "tests/testutil/testutil.h"

namespace ihs::cluster {
namespace {

using ::ihs::testing::EventFactory;
using ::ihs::testing::EventId;
using ::ihs::testing::NatsServers;
using ::ihs::testing::TempDir;

TEST(PartitionOfTest, IsTheFirstEightBytesOfTheStreamIdsSha256ModuloTheCount) {
  // Known answers, computed apart from ihs (Python's hashlib): docs/scale.md fixes the function,
  // and every node of every version must give these.
  EXPECT_EQ(PartitionOf("customer-ada", 16), 0u);
  EXPECT_EQ(PartitionOf("customer-bo", 16), 10u);
  EXPECT_EQ(PartitionOf("$identity", 1000), 560u);
  EXPECT_EQ(PartitionOf("twitter:@ada", 7), 1u);
  EXPECT_EQ(PartitionOf("x", 4096), 68u);
}

TEST(PartitionOfTest, SpreadsStreamsEvenly) {
  std::map<uint32_t, int> counts;
  for (int i = 0; i < 16000; ++i) ++counts[PartitionOf(absl::StrCat("customer-", i), 16)];
  ASSERT_EQ(counts.size(), 16u);
  for (const auto& [p, n] : counts) {
    EXPECT_GT(n, 850) << "partition " << p;  // 1,000 expected each
    EXPECT_LT(n, 1150) << "partition " << p;
  }
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto servers = NatsServers::Start(dir_.path(), 3);
    ASSERT_TRUE(servers.ok()) << servers.status();
    servers_ = std::move(*servers);
  }

  ClusterOptions Options(const std::string& node, uint32_t partitions) {
    ClusterOptions o;
    o.servers = servers_->urls();
    o.partitions = partitions;
    o.node = node;
    o.timeout = absl::Seconds(10);
    return o;
  }

  std::unique_ptr<Cluster> Connect(const std::string& node, uint32_t partitions) {
    auto c = Cluster::Connect(Options(node, partitions));
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // node-a, which creates the cluster, and node-b, which joins it; both null on failure.
  std::pair<std::unique_ptr<Cluster>, std::unique_ptr<Cluster>> ConnectTwo(uint32_t partitions) {
    auto a = Connect("node-a", partitions);
    if (a == nullptr) return {};
    auto b = Connect("node-b", 0);
    if (b == nullptr) return {};
    return {std::move(a), std::move(b)};
  }

  // One touchpoint without personal content.
  store::StreamAppend Append(const std::string& stream, uint64_t id,
                             store::ExpectedVersion expected = store::ExpectedVersion::Any()) {
    return store::StreamAppend{stream, expected, {Touchpoint(id)}};
  }
  schema::Event::Reader Touchpoint(uint64_t id) {
    return events_.Touchpoint(id, schema::Channel::EMAIL, schema::TouchpointType::COMPLAINT, "",
                              1700000000000000 + static_cast<int64_t>(id));
  }

  // Every message of every partition: (partition, sequence) → (stream, first event id).
  std::map<std::pair<uint32_t, uint64_t>, std::pair<std::string, std::string>> ReadEverything(
      Cluster& c) {
    std::map<std::pair<uint32_t, uint64_t>, std::pair<std::string, std::string>> out;
    for (uint32_t p = 0; p < c.config().partitions; ++p) {
      auto msgs = c.Read(p, 1, 100000);
      EXPECT_TRUE(msgs.ok()) << msgs.status();
      if (!msgs.ok()) continue;
      uint64_t expected_seq = 1;
      for (const auto& m : *msgs) {
        EXPECT_EQ(m.sequence, expected_seq++) << "partition " << p << " has a gap";
        kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(m.data.data()),
                                              m.data.size() / sizeof(capnp::word));
        capnp::FlatArrayMessageReader reader(words);
        auto a = reader.getRoot<schema::PartitionAppend>();
        EXPECT_EQ(m.subject, Cluster::SubjectOf(a.getStream().cStr(), p));
        EXPECT_EQ(PartitionOf(a.getStream().cStr(), c.config().partitions), p);
        auto id = a.getEvents()[0].getId();
        out[{p, m.sequence}] = {a.getStream().cStr(),
                                std::string(reinterpret_cast<const char*>(id.begin()), id.size())};
      }
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<NatsServers> servers_;
  EventFactory events_;
};

TEST_F(ClusterTest, IsCreatedOnceAndJoinedWithItsPartitionCount) {
  auto a = Connect("node-a", 4);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->config().partitions, 4u);
  EXPECT_EQ(a->config().replicas, 3);
  EXPECT_EQ(a->config().created_by, "node-a");
  for (uint32_t p = 0; p < 4; ++p) {
    auto last = a->LastSequence(p);
    ASSERT_TRUE(last.ok()) << last.status();
    EXPECT_EQ(*last, 0u);
  }
  EXPECT_EQ(a->LastSequence(4).status().code(), absl::StatusCode::kOutOfRange);

  // A node that joins without a count takes the cluster's; one with the same count joins too.
  auto b = Connect("node-b", 0);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->config().partitions, 4u);
  EXPECT_EQ(b->config().created_by, "node-a");
  EXPECT_NE(Connect("node-c", 4), nullptr);

  auto wrong = Cluster::Connect(Options("node-d", 8));
  ASSERT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition) << wrong.status();
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), "has 4 partitions")) << wrong.status();
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), "was given 8")) << wrong.status();
}

TEST_F(ClusterTest, JoiningWhereThereIsNoClusterSaysHowToCreateOne) {
  auto c = Cluster::Connect(Options("node-a", 0));
  ASSERT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition) << c.status();
  EXPECT_TRUE(absl::StrContains(c.status().message(), "--partitions")) << c.status();
}

TEST_F(ClusterTest, BadOptionsAreRefusedBeforeAnythingIsCreated) {
  ClusterOptions o = Options("node a", 4);
  EXPECT_EQ(Cluster::Connect(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options("node-a", kMaxPartitions + 1);
  EXPECT_EQ(Cluster::Connect(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options("node-a", 4);
  o.replicas = 6;
  EXPECT_EQ(Cluster::Connect(o).status().code(), absl::StatusCode::kInvalidArgument);
  // None of them created the cluster.
  auto c = Cluster::Connect(Options("node-a", 0));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition) << c.status();
}

TEST_F(ClusterTest, AnAddressThatDoesNotAnswerIsUnavailable) {
  ClusterOptions o = Options("node-a", 4);
  servers_->Kill(0);
  o.servers = {servers_->url(0)};
  o.timeout = absl::Seconds(2);
  absl::Time start = absl::Now();
  auto c = Cluster::Connect(o);
  ASSERT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
  EXPECT_TRUE(absl::StrContains(c.status().message(), servers_->url(0))) << c.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));  // it gives up, it does not hang
}

TEST_F(ClusterTest, AppendsGoToTheirPartitionInOrderAndARetryIsStoredOnce) {
  auto c = Connect("node-a", 4);
  ASSERT_NE(c, nullptr);
  std::map<std::pair<uint32_t, uint64_t>, std::pair<std::string, std::string>> published;
  std::map<uint32_t, uint64_t> last;
  for (uint64_t i = 1; i <= 40; ++i) {
    const std::string stream = absl::StrCat("customer-", i % 10);
    auto p = c->Publish(Append(stream, i));
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_FALSE(p->duplicate);
    EXPECT_EQ(p->partition, PartitionOf(stream, 4));
    EXPECT_EQ(p->sequence, ++last[p->partition]);
    published[{p->partition, p->sequence}] = {stream, EventId(i)};
  }
  // The same append again (a client that lost the acknowledgement): the message it was.
  auto again = c->Publish(Append("customer-1", 1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(published.at({again->partition, again->sequence}).second, EventId(1));

  // Another node reads exactly what was published, in order, nothing twice.
  auto b = Connect("node-b", 0);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(ReadEverything(*b), published);
  for (const auto& [p, n] : last) EXPECT_EQ(*b->LastSequence(p), n);
}

TEST_F(ClusterTest, PersonalContentNeverEntersJetStream) {
  auto c = Connect("node-a", 2);
  ASSERT_NE(c, nullptr);
  auto ev = events_.Touchpoint(1, schema::Channel::EMAIL, schema::TouchpointType::COMPLAINT,
                               "my order never came");
  auto p = c->Publish(store::StreamAppend{"customer-ada", store::ExpectedVersion::Any(), {ev}});
  ASSERT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition) << p.status();
  EXPECT_TRUE(absl::StrContains(p.status().message(), "personal content")) << p.status();
  EXPECT_EQ(*c->LastSequence(PartitionOf("customer-ada", 2)), 0u);
}

TEST_F(ClusterTest, AStaleSubjectSequenceIsRefused) {
  auto a = Connect("node-a", 2);
  auto b = Connect("node-b", 0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto first = a->Publish(Append("customer-ada", 1), 0);  // the stream's first message
  ASSERT_TRUE(first.ok()) << first.status();
  // Node b, which has not seen it, also expects none: refused, nothing stored.
  auto stale = b->Publish(Append("customer-ada", 2), 0);
  ASSERT_EQ(stale.status().code(), absl::StatusCode::kAborted) << stale.status();
  auto after = b->Publish(Append("customer-ada", 3), first->sequence);
  ASSERT_TRUE(after.ok()) << after.status();
  auto everything = ReadEverything(*a);
  ASSERT_EQ(everything.size(), 2u);
  EXPECT_EQ(everything.begin()->second.second, EventId(1));
  EXPECT_EQ(everything.rbegin()->second.second, EventId(3));
}

TEST_F(ClusterTest, WhatWasAcknowledgedSurvivesAServerKilled) {
  auto c = Connect("node-a", 2);
  ASSERT_NE(c, nullptr);
  // Publishes until acknowledged: while JetStream moves a partition's leader, a publish may
  // time out or find no responder; the retry is the same message, so it is stored once.
  std::set<std::string> acknowledged;
  auto publish = [&](uint64_t i) {
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (true) {
      auto p = c->Publish(Append(absl::StrCat("customer-", i % 7), i));
      if (p.ok()) {
        acknowledged.insert(EventId(i));
        return;
      }
      ASSERT_LT(absl::Now(), deadline) << p.status();
      absl::SleepFor(absl::Milliseconds(100));
    }
  };
  for (uint64_t i = 1; i <= 30; ++i) publish(i);
  servers_->Kill(0);
  for (uint64_t i = 31; i <= 60; ++i) publish(i);
  IHS_ASSERT_OK(servers_->Restart(0));
  for (uint64_t i = 61; i <= 90; ++i) publish(i);

  auto everything = ReadEverything(*c);
  std::multiset<std::string> stored;
  for (const auto& [where, what] : everything) stored.insert(what.second);
  EXPECT_EQ(stored.size(), acknowledged.size()) << "an append stored twice, or one lost";
  EXPECT_EQ(std::set<std::string>(stored.begin(), stored.end()), acknowledged);
}

// `ihs ARGS`: its exit code and what it printed on stdout (and stderr after it).
std::pair<int, std::string> RunIhs(const std::string& args) {
  return ::ihs::testing::RunCommand(absl::StrCat(IHS_BINARY, " ", args));
}

TEST_F(ClusterTest, StatusShowsEachPartitionsLogAndItsReplicas) {
  auto c = Connect("node-a", 2);
  ASSERT_NE(c, nullptr);
  std::map<uint32_t, uint64_t> messages;
  for (uint64_t i = 1; i <= 12; ++i) {
    auto p = c->Publish(Append(absl::StrCat("customer-", i), i));
    ASSERT_TRUE(p.ok()) << p.status();
    ++messages[p->partition];
  }
  const std::string urls = absl::StrJoin(servers_->urls(), ",");
  auto [code, out] = RunIhs(absl::StrCat("cluster status --nats ", urls, " --json"));
  ASSERT_EQ(code, 0) << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["partitions"], 2);
  EXPECT_EQ(j["replicas"], 3);
  EXPECT_EQ(j["createdBy"], "node-a");
  ASSERT_EQ(j["logs"].size(), 2u);
  for (const auto& log : j["logs"]) {
    const uint32_t p = log["partition"];
    EXPECT_EQ(log["messages"], messages[p]) << log;
    EXPECT_EQ(log["lastSequence"], messages[p]) << log;
    EXPECT_NE(log["leader"], "") << log;
    EXPECT_EQ(log["replicas"].size(), 2u) << log;  // the leader and two others: R3
  }
  auto [text_code, text] = RunIhs(absl::StrCat("cluster status --nats ", urls));
  EXPECT_EQ(text_code, 0) << text;
  EXPECT_TRUE(absl::StrContains(text, "cluster of 2 partitions, 3 replicas each")) << text;
  EXPECT_TRUE(absl::StrContains(text, "IHS_P0001")) << text;

  // Nothing listens there: unavailable (5), and the message says where it looked.
  servers_->Kill(2);
  auto [down, message] =
      RunIhs(absl::StrCat("cluster status --timeout 2 --nats ", servers_->url(2)));
  EXPECT_EQ(down, 5) << message;
  EXPECT_TRUE(absl::StrContains(message, servers_->url(2))) << message;
}

// Two replicas' stores: the same events, byte for byte, and the same root at every size.
void ExpectSameLog(store::EventStore& a, store::EventStore& b) {
  auto ea = a.ReadAll(0, a.Head() + 1);
  auto eb = b.ReadAll(0, b.Head() + 1);
  ASSERT_TRUE(ea.ok()) << ea.status();
  ASSERT_TRUE(eb.ok()) << eb.status();
  ASSERT_EQ(a.Head(), b.Head());
  ASSERT_EQ(ea->size(), eb->size());
  for (size_t i = 0; i < ea->size(); ++i) {
    EXPECT_EQ((*ea)[i].bytes(), (*eb)[i].bytes()) << "position " << i;
  }
  for (uint64_t size = 1; size <= a.Head(); ++size) {
    auto ra = store::Root(a, size);
    auto rb = store::Root(b, size);
    ASSERT_TRUE(ra.ok()) << ra.status();
    ASSERT_TRUE(rb.ok()) << rb.status();
    EXPECT_EQ(*ra, *rb) << "size " << size;
  }
}

TEST_F(ClusterTest, TwoReplicasOfAPartitionHoldTheSameBytesAndRoots) {
  auto c = Connect("node-a", 1);
  ASSERT_NE(c, nullptr);
  using store::ExpectedVersion;
  // What the log holds, with what every node must decide about it.
  struct Step {
    store::StreamAppend append;
    absl::StatusCode verdict;
  };
  std::vector<Step> steps;
  auto add = [&](store::StreamAppend a, absl::StatusCode v) { steps.push_back({std::move(a), v}); };
  add(Append("customer-ada", 1, ExpectedVersion::NoStream()), absl::StatusCode::kOk);
  add(Append("customer-ada", 2, ExpectedVersion::Exact(0)), absl::StatusCode::kOk);
  add(Append("customer-ada", 3, ExpectedVersion::Exact(0)), absl::StatusCode::kAborted);  // stale
  add(Append("customer-bo", 4, ExpectedVersion::StreamExists()), absl::StatusCode::kAborted);
  add(Append("customer-bo", 5, ExpectedVersion::NoStream()), absl::StatusCode::kOk);
  add(Append("customer-ada", 3, ExpectedVersion::Exact(1)), absl::StatusCode::kOk);  // the retry
  // Event 2 again, asking otherwise: another message for JetStream, the same event for the store.
  add(Append("customer-ada", 2, ExpectedVersion::Any()), absl::StatusCode::kOk);
  {
    auto bad = Append("customer-bo", 6);
    auto ev = events_.New(6);
    ev.setOccurredAt(1700000000000006);
    ev.initTouchpoint().setChannel(schema::Channel::EMAIL);
    ev.setPosition(99);  // set by the store only: refused on input
    bad.events = {ev.asReader()};
    add(std::move(bad), absl::StatusCode::kInvalidArgument);
  }
  for (uint64_t i = 10; i < 40; ++i) {
    add(Append(absl::StrCat("customer-", i % 4), i), absl::StatusCode::kOk);
  }
  for (const Step& step : steps) {
    auto p = c->Publish(step.append);
    ASSERT_TRUE(p.ok()) << p.status();
  }

  TempDir dirs;
  auto a = PartitionReplica::Open(c.get(), 0, dirs.Sub("a"));
  ASSERT_TRUE(a.ok()) << a.status();
  auto caught = (*a)->CatchUp();
  ASSERT_TRUE(caught.ok()) << caught.status();
  EXPECT_EQ(*caught, steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    auto v = (*a)->VerdictOf(i + 1);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->status.code(), steps[i].verdict) << "message " << i + 1 << ": " << v->status;
  }
  auto dup = (*a)->VerdictOf(7);
  EXPECT_TRUE(dup->result.duplicate);
  EXPECT_EQ(dup->result.versions, std::vector<uint64_t>{1});
  auto stale = (*a)->VerdictOf(3);
  EXPECT_EQ(store::ConflictCurrentVersion(stale->status), 1);

  // The second replica applies the first ten, stops, and applies the rest after a restart.
  {
    auto b = PartitionReplica::Open(c.get(), 0, dirs.Sub("b"));
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(*(*b)->CatchUp(10), 10u);
  }
  auto b = PartitionReplica::Open(c.get(), 0, dirs.Sub("b"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->applied(), 10u);
  EXPECT_EQ(*(*b)->CatchUp(), steps.size());
  // The verdicts on messages it applied before it was reopened are recomputed from the log and
  // the store: the same positions and versions; the same refusals, except that a refusal whose
  // cause the store no longer shows (customer-bo exists now) says that it is not known, and
  // that an append whose events a later one stored (message 3, retried as message 6) is
  // answered with where they are, as the store answers a repeat.
  for (size_t i = 0; i < 10; ++i) {
    auto mine = (*b)->VerdictOf(i + 1);
    auto kept = (*a)->VerdictOf(i == 2 ? 6 : i + 1);
    ASSERT_TRUE(mine.ok()) << mine.status();
    const absl::StatusCode want = i == 3   ? absl::StatusCode::kFailedPrecondition
                                  : i == 2 ? absl::StatusCode::kOk
                                           : steps[i].verdict;
    EXPECT_EQ(mine->status.code(), want) << "message " << i + 1 << ": " << mine->status;
    EXPECT_EQ(mine->result.positions, kept->result.positions) << "message " << i + 1;
    EXPECT_EQ(mine->result.versions, kept->result.versions) << "message " << i + 1;
    if (want == absl::StatusCode::kAborted) {
      EXPECT_EQ(store::ConflictCurrentVersion(mine->status), 2) << mine->status;
    }
  }
  ExpectSameLog((*a)->store(), (*b)->store());
  EXPECT_EQ((*a)->store().Head(), steps.size() - 3 /* refused */ - 1 /* duplicate */);

  // A replica that lost its record of how far it got applies everything again, and writes
  // nothing twice.
  b->reset();
  ASSERT_EQ(std::remove(dirs.Sub("b/applied").c_str()), 0);
  b = PartitionReplica::Open(c.get(), 0, dirs.Sub("b"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*(*b)->CatchUp(), steps.size());
  ExpectSameLog((*a)->store(), (*b)->store());
}

// Anyone who can publish on a partition's subjects (the permissions should allow ihs nodes only,
// docs/scale.md) can put any bytes in its log. Every node must refuse such a message alike, as a
// verdict, and go on with the next: a message that stalled its partition would stop every append
// after it.
TEST_F(ClusterTest, HostileMessagesInAPartitionsLogAreRefusedAndTheNextAreApplied) {
  auto c = Connect("node-a", 2);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(PartitionOf("customer-ada", 2), 0u);
  const std::string subject = Cluster::SubjectOf("customer-ada", 0);
  // A well-formed message to start from, as a node publishes it.
  auto good = [&](uint64_t id) {
    auto msg = std::make_unique<capnp::MallocMessageBuilder>();
    auto a = msg->initRoot<schema::PartitionAppend>();
    a.setStream("customer-ada");
    a.setExpect(schema::Expect::ANY);
    a.setAcceptedAt(1700000000000000);
    a.setAcceptedBy("raw");
    auto append = Append("customer-ada", id);
    a.initEvents(1).setWithCaveats(0, append.events[0]);
    return msg;
  };
  auto bytes = [](capnp::MessageBuilder& m) {
    kj::Array<capnp::word> words = capnp::messageToFlatArray(m);
    return std::string(reinterpret_cast<const char*>(words.begin()), words.size() * 8);
  };
  std::vector<std::pair<std::string, std::string>> hostile;  // what, bytes
  hostile.push_back({"empty", ""});
  hostile.push_back({"not whole words", "0123456789"});
  hostile.push_back({"a segment table that claims more than there is",
                     std::string("\0\0\0\0\xff\xff\0\0", 8) + std::string(8, '\0')});
  hostile.push_back({"garbage", std::string(64, '\xa5')});
  {
    auto m = good(1);
    std::string b = bytes(*m);
    hostile.push_back({"truncated", b.substr(0, b.size() - 16)});
  }
  {
    auto m = good(2);
    capnp::AnyStruct::Builder root = m->getRoot<schema::PartitionAppend>();
    root.getPointerSection()[0].initAsAnyStruct(1, 0);  // the stream is a struct, not text
    hostile.push_back({"a stream that is not text", bytes(*m)});
  }
  {
    auto m = good(3);
    capnp::AnyStruct::Builder root = m->getRoot<schema::PartitionAppend>();
    root.getPointerSection()[0].setAs<capnp::Data>(
        kj::StringPtr("customer-ada").asBytes());  // no NUL: not Text
    hostile.push_back({"a stream without its NUL", bytes(*m)});
  }
  {
    auto m = good(4);
    capnp::AnyStruct::Builder root = m->getRoot<schema::PartitionAppend>();
    root.getPointerSection()[1].setAs<capnp::Text>("events");  // a list of bytes, not structs
    hostile.push_back({"events that are text", bytes(*m)});
  }
  {
    auto m = good(5);
    capnp::AnyStruct::Builder event = m->getRoot<schema::PartitionAppend>().getEvents()[0];
    for (auto ptr : event.getPointerSection()) {
      if (!ptr.isNull()) ptr.initAsAnyStruct(3, 3);  // every field of the event the wrong shape
    }
    hostile.push_back({"an event whose fields are the wrong shape", bytes(*m)});
  }
  {
    std::string other = "customer-0";
    for (int i = 1; PartitionOf(other, 2) != 1; ++i) other = absl::StrCat("customer-", i);
    auto m = good(6);
    m->getRoot<schema::PartitionAppend>().setStream(other);
    hostile.push_back({"a stream of another partition", bytes(*m)});
  }
  {
    auto m = good(7);
    auto ev = m->getRoot<schema::PartitionAppend>().getEvents()[0];
    ev.setPosition(5);  // set by the store only
    hostile.push_back({"an event with a position", bytes(*m)});
  }

  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&conn, servers_->url(0).c_str()), NATS_OK);
  ASSERT_EQ(natsConnection_JetStream(&js, conn, nullptr), NATS_OK);
  for (const auto& [what, data] : hostile) {
    jsPubAck* ack = nullptr;
    ASSERT_EQ(js_Publish(&ack, js, subject.c_str(), data.data(), static_cast<int>(data.size()),
                         nullptr, nullptr),
              NATS_OK)
        << what;
    jsPubAck_Destroy(ack);
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(conn);

  // Two nodes' replicas, one applying message by message, the other all at once.
  TempDir dirs;
  auto a = PartitionReplica::Open(c.get(), 0, dirs.Sub("a"));
  auto b = PartitionReplica::Open(c.get(), 0, dirs.Sub("b"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  for (uint64_t seq = 1; seq <= hostile.size(); ++seq) {
    auto v = (*a)->VerdictOf(seq);
    ASSERT_TRUE(v.ok()) << hostile[seq - 1].first << ": " << v.status();
    EXPECT_EQ(v->status.code(), absl::StatusCode::kInvalidArgument)
        << hostile[seq - 1].first << ": " << v->status;
    EXPECT_FALSE(v->status.message().empty()) << hostile[seq - 1].first;
  }
  // The log goes on: an append after them is applied.
  auto next = AppendThrough(*c, **a, Append("customer-ada", 100));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->positions, std::vector<uint64_t>{0});
  auto caught = (*b)->CatchUp();
  ASSERT_TRUE(caught.ok()) << caught.status();
  EXPECT_EQ(*caught, hostile.size() + 1);
  for (uint64_t seq = 1; seq <= hostile.size(); ++seq) {
    EXPECT_EQ((*b)->VerdictOf(seq)->status, (*a)->VerdictOf(seq)->status) << seq;
  }
  ExpectSameLog((*a)->store(), (*b)->store());
  EXPECT_EQ((*b)->store().Head(), 1u);
}

// Ownership: leases in the owners' bucket --------------------------------------------------

constexpr absl::Duration kLease = absl::Milliseconds(1500);

std::unique_ptr<Ownership> MustJoin(Cluster* c) {
  OwnershipOptions o;
  o.lease = kLease;
  auto own = Ownership::Join(c, o);
  EXPECT_TRUE(own.ok()) << own.status();
  return own.ok() ? std::move(*own) : nullptr;
}

OwnershipRound MustRound(Ownership& own) {
  auto r = own.Round();
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : OwnershipRound{};
}

std::set<uint32_t> Range(uint32_t n) {
  std::set<uint32_t> all;
  for (uint32_t p = 0; p < n; ++p) all.insert(p);
  return all;
}

TEST_F(ClusterTest, PartitionsAreSharedAmongTheNodesAndMoveWhenOneStops) {
  auto [ca, cb] = ConnectTwo(6);
  ASSERT_NE(cb, nullptr);
  auto a = MustJoin(ca.get());
  ASSERT_NE(a, nullptr);
  OwnershipRound ra = MustRound(*a);
  EXPECT_EQ(ra.held, Range(6));  // alone, it holds everything
  EXPECT_EQ(ra.live_nodes, 1u);

  // A second node comes: the first gives up half at its next round, the second takes it.
  auto b = MustJoin(cb.get());
  ASSERT_NE(b, nullptr);
  ra = MustRound(*a);
  EXPECT_EQ(ra.live_nodes, 2u);
  EXPECT_EQ(ra.share, 3u);
  EXPECT_EQ(ra.released.size(), 3u);
  EXPECT_EQ(ra.held.size(), 3u);
  OwnershipRound rb = MustRound(*b);
  EXPECT_EQ(rb.held.size(), 3u);
  std::set<uint32_t> both = ra.held;
  both.insert(rb.held.begin(), rb.held.end());
  EXPECT_EQ(both, Range(6)) << "each partition is held by one node";

  // The bucket says the same, and so does `ihs cluster status`.
  auto owners = ReadOwners(*ca);
  ASSERT_TRUE(owners.ok()) << owners.status();
  for (const PartitionOwner& o : owners->partitions) {
    EXPECT_EQ(o.node, ra.held.count(o.partition) ? "node-a" : "node-b") << o.partition;
  }
  ASSERT_EQ(owners->nodes.size(), 2u);
  EXPECT_EQ(owners->nodes[0].node, "node-a");
  auto [code, out] =
      RunIhs(absl::StrCat("cluster status --json --nats ", absl::StrJoin(servers_->urls(), ",")));
  ASSERT_EQ(code, 0) << out;
  auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j["logs"].size(), 6u);
  for (const auto& log : j["logs"]) {
    const uint32_t p = log["partition"];
    EXPECT_EQ(log["owner"], ra.held.count(p) ? "node-a" : "node-b") << log;
    EXPECT_NE(log["ownerRenewedAt"], "") << log;
  }
  EXPECT_EQ(j["nodes"].size(), 2u) << out;

  // The second node stops without a word (a crash): the first keeps to its share while the
  // leases last, then takes the rest.
  const absl::Time stopped = absl::Now();
  b.reset();
  cb.reset();
  OwnershipRound after;
  while (absl::Now() - stopped < 4 * kLease) {
    after = MustRound(*a);
    if (after.held.size() == 6) break;
    EXPECT_EQ(after.held.size(), 3u);
    absl::SleepFor(kLease / 4);
  }
  EXPECT_EQ(after.held, Range(6));
  EXPECT_GE(absl::Now() - stopped, kLease) << "a lease was taken before it expired";
}

TEST_F(ClusterTest, ANodeThatLeavesHandsItsPartitionsOnAtOnce) {
  auto [ca, cb] = ConnectTwo(4);
  ASSERT_NE(cb, nullptr);
  auto a = MustJoin(ca.get());
  auto b = MustJoin(cb.get());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  OwnershipRound rb = MustRound(*b);  // both are present: half each
  EXPECT_EQ(rb.live_nodes, 2u);
  EXPECT_EQ(rb.held.size(), 2u);
  OwnershipRound ra = MustRound(*a);
  EXPECT_EQ(ra.held.size(), 2u);
  IHS_ASSERT_OK(b->Leave());
  ra = MustRound(*a);
  EXPECT_EQ(ra.held, Range(4));
  EXPECT_EQ(ra.live_nodes, 1u);
  EXPECT_FALSE(b->Round().ok()) << "a node that left takes no part";
}

TEST_F(ClusterTest, TwoRunningNodesCannotShareAName) {
  auto ca = Connect("node-a", 3);
  ASSERT_NE(ca, nullptr);
  auto a = MustJoin(ca.get());
  ASSERT_NE(a, nullptr);
  MustRound(*a);
  std::atomic<bool> stop{false};
  std::thread renewing([&] {
    while (!stop) {
      EXPECT_TRUE(a->Round().ok());
      absl::SleepFor(kLease / 4);
    }
  });
  auto twin = Connect("node-a", 0);
  ASSERT_NE(twin, nullptr);
  OwnershipOptions o;
  o.lease = kLease;
  auto refused = Ownership::Join(twin.get(), o);
  stop = true;
  renewing.join();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "node-a")) << refused.status();
  EXPECT_EQ(a->held(), Range(3)) << "the running node keeps its partitions";

  // Once it has stopped (without leaving), the name can be taken again, and with it the
  // partitions the name held, without waiting for the leases.
  a.reset();
  auto again = Ownership::Join(twin.get(), o);
  ASSERT_TRUE(again.ok()) << again.status();
  OwnershipRound r = MustRound(**again);
  EXPECT_EQ(r.held, Range(3));
}

TEST_F(ClusterTest, ALeaseAnotherNodeTookIsLost) {
  auto [ca, cb] = ConnectTwo(4);
  ASSERT_NE(cb, nullptr);
  auto a = MustJoin(ca.get());
  ASSERT_NE(a, nullptr);
  MustRound(*a);
  auto leases = cb->ReadLeases();
  ASSERT_TRUE(leases.ok()) << leases.status();
  uint64_t revision = 0;
  for (const LeaseEntry& e : *leases) {
    if (e.key == LeaseKey(2)) revision = e.revision;
  }
  ASSERT_NE(revision, 0u);
  // A write on a revision that is not the key's is refused: the check every lease relies on.
  auto stale = cb->WriteLease(LeaseKey(2), "node-b", revision - 1);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << stale.status();
  auto created = cb->WriteLease(LeaseKey(2), "node-b", 0);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kAborted) << created.status();
  // Another node claims partition 2 (as one whose write passed at the same moment would).
  auto taken = cb->WriteLease(LeaseKey(2), "node-b", revision);
  ASSERT_TRUE(taken.ok()) << taken.status();
  OwnershipRound r = MustRound(*a);
  ASSERT_EQ(r.lost.size(), 1u);
  EXPECT_EQ(r.lost[0].first, 2u);
  EXPECT_TRUE(absl::StrContains(r.lost[0].second, "node-b")) << r.lost[0].second;
  EXPECT_EQ(r.held, (std::set<uint32_t>{0, 1, 3}));
}

TEST_F(ClusterTest, BadLeasesAreRefused) {
  auto c = Connect("node-a", 2);
  ASSERT_NE(c, nullptr);
  OwnershipOptions o;
  o.lease = absl::Milliseconds(10);
  auto own = Ownership::Join(c.get(), o);
  EXPECT_EQ(own.status().code(), absl::StatusCode::kInvalidArgument) << own.status();
}

// Nodes: ownership, replicas and forwarding together ----------------------------------------

class QuietLog : public LogSink {
 public:
  void Log(absl::string_view) override {}
};

TEST_F(ClusterTest, AnyNodeAnswersForAnyPartitionAndAStoppedNodesPartitionsMove) {
  TempDir dirs;
  QuietLog quiet;
  auto options = [&](const std::string& node, uint32_t partitions) {
    NodeOptions o;
    o.cluster = Options(node, partitions);
    o.dir = dirs.Sub(node);
    o.lease = kLease;
    o.log = &quiet;
    return o;
  };
  auto a = ClusterNode::Start(options("node-a", 4));
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = ClusterNode::Start(options("node-b", 0));
  ASSERT_TRUE(b.ok()) << b.status();
  // Within a few rounds the partitions are shared: two each, none twice.
  for (absl::Time end = absl::Now() + 10 * kLease; absl::Now() < end;) {
    if ((*a)->held().size() == 2 && (*b)->held().size() == 2) break;
    absl::SleepFor(kLease / 5);
  }
  std::set<uint32_t> all = (*a)->held();
  for (uint32_t p : (*b)->held()) EXPECT_TRUE(all.insert(p).second) << p << " held twice";
  ASSERT_EQ(all, Range(4));

  // Appends through either node to streams of every partition; each answered with its versions.
  std::map<std::string, uint64_t> count;
  std::vector<ClusterNode*> nodes = {a->get(), b->get()};
  uint64_t id = 1;
  for (int i = 0; i < 32; ++i, ++id) {
    const std::string stream = absl::StrCat("customer-", i % 8);
    const uint64_t n = count[stream];
    auto r = nodes[i % 2]->Append(
        Append(stream, id,
               n == 0 ? store::ExpectedVersion::NoStream() : store::ExpectedVersion::Exact(n - 1)));
    ASSERT_TRUE(r.ok()) << stream << ": " << r.status();
    EXPECT_EQ(r->versions, std::vector<uint64_t>{count[stream]}) << stream;
    ++count[stream];
  }
  // Either node reads every stream, the same bytes.
  for (const auto& [stream, n] : count) {
    auto ra = (*a)->ReadStream(stream, 0, 100, store::ReadDirection::kForward);
    auto rb = (*b)->ReadStream(stream, 0, 100, store::ReadDirection::kForward);
    ASSERT_TRUE(ra.ok()) << ra.status();
    ASSERT_TRUE(rb.ok()) << rb.status();
    ASSERT_EQ(ra->size(), n) << stream;
    ASSERT_EQ(rb->size(), n) << stream;
    for (size_t v = 0; v < n; ++v) {
      EXPECT_EQ((*ra)[v].bytes(), (*rb)[v].bytes()) << stream << " version " << v;
      EXPECT_EQ((*ra)[v].event().getStreamVersion(), v);
    }
    auto back = (*b)->ReadStream(stream, UINT64_MAX, 2, store::ReadDirection::kBackward);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(back->size(), 2u);
    EXPECT_EQ((*back)[0].event().getStreamVersion(), n - 1);
    auto info = (*a)->GetStreamInfo(stream);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->event_count, n);
  }
  auto missing = (*b)->GetStreamInfo("customer-nobody");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();

  // A stale expected version is refused through either node, whichever holds the stream, with
  // the stream's version in the refusal.
  for (ClusterNode* n : nodes) {
    auto stale = n->Append(Append("customer-0", 5000 + ++id, store::ExpectedVersion::Exact(0)));
    EXPECT_EQ(store::ConflictCurrentVersion(stale.status()),
              static_cast<int64_t>(count["customer-0"] - 1))
        << stale.status();
  }

  // node-b stops without a word, as a crash would: its partitions come to node-a within a
  // lease or so, and appends through node-a to every stream go on meanwhile.
  const std::set<uint32_t> b_held = (*b)->held();
  (*b)->Stop(/*leave=*/false);
  for (auto& [stream, n] : count) {
    auto r = (*a)->Append(Append(stream, ++id, store::ExpectedVersion::Exact(n - 1)));
    ASSERT_TRUE(r.ok()) << stream << ": " << r.status();
    EXPECT_EQ(r->versions, std::vector<uint64_t>{n});
    ++n;
  }
  EXPECT_EQ((*a)->held(), Range(4));
  for (const auto& [stream, n] : count) {
    auto r = (*a)->ReadStream(stream, 0, 100, store::ReadDirection::kForward);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->size(), n) << stream << ": every acknowledged append once";
  }

  // What node-b materialised, brought up to date, is node-a's, byte for byte.
  auto cb = Connect("node-b-check", 0);
  ASSERT_NE(cb, nullptr);
  for (uint32_t p : b_held) {
    auto mine =
        PartitionReplica::Open(cb.get(), p, absl::StrFormat("%s/p%04d", dirs.Sub("node-b"), p));
    ASSERT_TRUE(mine.ok()) << mine.status();
    IHS_ASSERT_OK((*mine)->CatchUp());
    auto theirs = (*a)->replica(p);
    ASSERT_NE(theirs, nullptr);
    IHS_ASSERT_OK(theirs->CatchUp());
    ExpectSameLog((*mine)->store(), theirs->store());
  }
}

// What reaches a holder on its request subject is anyone's who may publish there: a request
// that is not one is answered as bad input, and the node goes on serving.
TEST_F(ClusterTest, HostileRequestsToAHolderAreAnsweredAsBadInput) {
  TempDir dirs;
  QuietLog quiet;
  NodeOptions o;
  o.cluster = Options("node-a", 1);
  o.dir = dirs.Sub("node-a");
  o.lease = kLease;
  o.log = &quiet;
  auto node = ClusterNode::Start(o);
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_EQ((*node)->held(), Range(1));
  auto other = Connect("prober", 0);
  ASSERT_NE(other, nullptr);
  auto ask = [&](const std::string& request) -> std::pair<uint32_t, std::string> {
    auto reply = other->Request(ClusterNode::ServeSubject(0), request, absl::Seconds(20));
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok() || reply->size() % 8 != 0 || reply->empty()) return {0, "no reply"};
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(reply->size() / 8);
    memcpy(words.begin(), reply->data(), reply->size());
    capnp::FlatArrayMessageReader reader(words);
    auto r = reader.getRoot<schema::ForwardReply>();
    return {r.getCode(), r.getMessage()};
  };
  std::string garbage(64, '\xa5');
  for (const std::string& request : {std::string(), std::string("0123456789"), garbage}) {
    auto [code, message] = ask(request);
    EXPECT_EQ(code, static_cast<uint32_t>(absl::StatusCode::kInvalidArgument)) << message;
    EXPECT_FALSE(message.empty());
  }
  {
    capnp::MallocMessageBuilder m;
    capnp::AnyStruct::Builder root = m.initRoot<schema::ForwardRequest>();
    root.getPointerSection()[0].initAsAnyStruct(1, 1);  // readStream's stream: not text
    m.getRoot<schema::ForwardRequest>().initReadStream();
    kj::Array<capnp::word> words = capnp::messageToFlatArray(m);
    auto [code, message] = ask(std::string(words.asChars().begin(), words.asChars().size()));
    EXPECT_NE(code, 0u) << message;
  }
  // A verdict on a message the log does not hold: not found, after the wait.
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<schema::ForwardRequest>().setVerdict(1);
    kj::Array<capnp::word> words = capnp::messageToFlatArray(m);
    auto [code, message] = ask(std::string(words.asChars().begin(), words.asChars().size()));
    EXPECT_EQ(code, static_cast<uint32_t>(absl::StatusCode::kNotFound)) << message;
  }
  auto r = (*node)->Append(Append("customer-ada", 1, store::ExpectedVersion::NoStream()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->versions, std::vector<uint64_t>{0});
}

TEST_F(ClusterTest, OfTwoNodesAppendingOneVersionAtOnceExactlyOneWins) {
  auto ca = Connect("node-a", 1);
  auto cb = Connect("node-b", 0);
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(cb, nullptr);
  TempDir dirs;
  auto ra = PartitionReplica::Open(ca.get(), 0, dirs.Sub("a"));
  auto rb = PartitionReplica::Open(cb.get(), 0, dirs.Sub("b"));
  ASSERT_TRUE(ra.ok()) << ra.status();
  ASSERT_TRUE(rb.ok()) << rb.status();
  auto first =
      AppendThrough(*ca, **ra, Append("customer-ada", 1, store::ExpectedVersion::NoStream()));
  ASSERT_TRUE(first.ok()) << first.status();
  const int rounds = ::ihs::testing::Rounds("IHS_CLUSTER_ROUNDS", 20);
  uint64_t version = 0;
  for (int round = 0; round < rounds; ++round) {
    const uint64_t id_a = 1000 + 2 * round, id_b = id_a + 1;
    absl::StatusOr<store::AppendResult> result_b;
    std::thread other([&] {
      result_b = AppendThrough(
          *cb, **rb, Append("customer-ada", id_b, store::ExpectedVersion::Exact(version)));
    });
    auto result_a = AppendThrough(
        *ca, **ra, Append("customer-ada", id_a, store::ExpectedVersion::Exact(version)));
    other.join();
    ASSERT_NE(result_a.ok(), result_b.ok())
        << "round " << round << ": " << result_a.status() << " / " << result_b.status();
    const auto& winner = result_a.ok() ? result_a : result_b;
    const auto& loser = result_a.ok() ? result_b : result_a;
    EXPECT_EQ(winner->versions, std::vector<uint64_t>{version + 1});
    EXPECT_EQ(store::ConflictCurrentVersion(loser.status()), static_cast<int64_t>(version + 1));
    ++version;
  }
  IHS_ASSERT_OK((*ra)->CatchUp());
  IHS_ASSERT_OK((*rb)->CatchUp());
  ExpectSameLog((*ra)->store(), (*rb)->store());
  auto info = (*ra)->store().GetStreamInfo("customer-ada");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ((*ra)->store().Head(), static_cast<uint64_t>(rounds) + 1);
}

}  // namespace
}  // namespace ihs::cluster
