// A real ihsd, started as a child process on a free loopback port and a unix socket, driven through
// the client library (server/client.h) and, for faults, through raw sockets.
#include <arpa/inet.h>
#include <capnp/any.h>
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "nlohmann/json.hpp"
#include "projections/registry.h"
#include "projections/timeline/timeline.h"
#include "server/client.h"
#include "server/tokens.h"
#include "store/audit.h"
#include "store/event_store.h"
#include "store/internal/codec.h"
#include "store/tlog.h"
#include "tests/integration/rpc_fixture.h"
#include "tests/testutil/ihsd_process.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"
#include "workload/generator.h"
#include "workload/load.h"

namespace ihs {
namespace {

TEST_F(RpcTest, WrongTokenIsUnauthenticatedAndLogged) {
  StartServer();
  auto c = Client::Connect({tcp(), "not-a-token"});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnauthenticated);
  auto empty = Client::Connect({tcp(), ""});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(server_->Log().find("login refused: no such token"), std::string::npos);
}

TEST_F(RpcTest, EachRoleHasItsCallsAndNoOthers) {
  StartServer();
  auto writer = MustConnect("writer");
  auto reader = MustConnect("reader");
  auto auditor = MustConnect("auditor");
  auto admin = MustConnect("admin");
  ASSERT_TRUE(writer && reader && auditor && admin);
  EXPECT_EQ(writer->role(), rpc::Role::WRITER);
  EXPECT_EQ(reader->role(), rpc::Role::READER);
  EXPECT_EQ(auditor->role(), rpc::Role::AUDITOR);
  EXPECT_EQ(admin->role(), rpc::Role::ADMIN);
  EXPECT_EQ(admin->name(), "test-admin");

  // Allowed.
  IHS_ASSERT_OK(writer->Append(One(
      "customer-1",
      events_.Touchpoint(1, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE, "hello"))));
  IHS_ASSERT_OK(admin->Append(One(
      "customer-1", events_.Touchpoint(2, schema::Channel::SMS, schema::TouchpointType::REPLY))));
  for (Client* c : {writer.get(), reader.get(), auditor.get(), admin.get()}) {
    auto events = c->ReadStream("customer-1", 0, 10, store::ReadDirection::kForward);
    ASSERT_TRUE(events.ok()) << events.status();
    ASSERT_EQ(events->size(), 2u);
    EXPECT_EQ((*events)[0].content_state(), store::ContentState::kOpen);
    EXPECT_EQ(std::string((*events)[0].content().getText()), "hello");
    IHS_EXPECT_OK(c->ReadAll(0, 10));
    EXPECT_EQ(*c->Head(), 2u);
  }
  IHS_EXPECT_OK(auditor->Root(2));
  IHS_EXPECT_OK(admin->Root(2));
  auto status = admin->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->events, 2u);
  EXPECT_EQ(status->connections, 4u);
  EXPECT_EQ(status->root, *admin->Root(2));

  // Refused: the capability has no such method, whatever the client casts it to.
  auto denied = [](const absl::Status& s) {
    return s.code() == absl::StatusCode::kPermissionDenied;
  };
  auto ev = events_.Touchpoint(3, schema::Channel::SMS, schema::TouchpointType::MESSAGE);
  EXPECT_TRUE(denied(reader->Append(One("customer-1", ev)).status()));
  EXPECT_TRUE(denied(reader->AppendMulti({One("customer-1", ev)}).status()));
  EXPECT_TRUE(denied(auditor->Append(One("customer-1", ev)).status()));
  EXPECT_TRUE(denied(reader->Root(1).status()));
  EXPECT_TRUE(denied(writer->Root(1).status()));
  EXPECT_TRUE(denied(reader->Status().status()));
  EXPECT_TRUE(denied(auditor->Status().status()));
  EXPECT_TRUE(denied(writer->Status().status()));
  EXPECT_TRUE(denied(writer->Subscribe({}, [](const auto&, uint64_t) { return false; })));
  // Nothing the refused calls carried was stored.
  EXPECT_EQ(*admin->Head(), 2u);
}

TEST_F(RpcTest, AuditorsGetHeadsAndProofsThatVerifyAndOnlyAdminsEraseOrHold) {
  StartServer();
  auto writer = MustConnect("writer");
  auto auditor = MustConnect("auditor");
  auto admin = MustConnect("admin");
  ASSERT_TRUE(writer && auditor && admin);
  for (uint64_t i = 1; i <= 5; ++i) {
    IHS_ASSERT_OK(writer->Append(
        One(i % 2 ? "customer-1" : "customer-2",
            events_.Touchpoint(i, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE,
                               absl::StrCat("note ", i)))));
  }

  // A head, checked with the key alone; an audit path and a consistency proof against it.
  auto key_text = auditor->VerifierKey();
  IHS_ASSERT_OK(key_text);
  tlog::VerifierKey key;
  std::string why;
  ASSERT_TRUE(tlog::ParseVerifierKey(*key_text, &key, &why)) << why;
  auto head_text = auditor->SignedHead();
  IHS_ASSERT_OK(head_text);
  tlog::TreeHead head;
  ASSERT_TRUE(tlog::OpenHead(*head_text, key, &head, &why)) << why;
  EXPECT_EQ(head.size, 5u);
  auto event2 = auditor->ReadAll(2, 1, /*open_content=*/false);
  IHS_ASSERT_OK(event2);
  const tlog::Hash leaf = tlog::LeafHash(store::internal::EncodeRecord((*event2)[0].event()));
  auto path = auditor->InclusionProof(2, 5);
  IHS_ASSERT_OK(path);
  EXPECT_TRUE(tlog::VerifyInclusion(2, 5, leaf, *path, head.root, &why)) << why;
  EXPECT_FALSE(tlog::VerifyInclusion(1, 5, leaf, *path, head.root, &why));
  EXPECT_EQ(auditor->InclusionProof(5, 5).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(auditor->ConsistencyProof(4, 9).status().code(), absl::StatusCode::kOutOfRange);

  // Only an admin erases or holds; the others' capabilities have no such call.
  for (Client* c : {writer.get(), auditor.get()}) {
    EXPECT_EQ(c->Erase("customer-1", "asked").status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(c->SetLegalHold("customer-1", false, "case").status().code(),
              absl::StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(writer->SignedHead().status().code(), absl::StatusCode::kPermissionDenied);
  auto forged = events_.New(50);
  forged.setOccurredAt(1700000000000000);
  forged.initErasureRequest().setReason("no admin needed?");
  EXPECT_EQ(writer->Append(One("customer-1", forged.asReader())).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto no_reason = admin->Erase("customer-1", "");
  EXPECT_EQ(no_reason.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(admin->Erase("nobody", "asked").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*admin->Head(), 5u);  // nothing refused was recorded

  auto held = admin->SetLegalHold("customer-1", false, "litigation 17");
  IHS_ASSERT_OK(held);
  EXPECT_EQ(*held, 5u);
  auto refused = admin->Erase("customer-1", "asked to be forgotten");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("legal hold"), absl::string_view::npos);
  IHS_ASSERT_OK(admin->SetLegalHold("customer-1", true, "case closed"));
  auto erased = admin->Erase("customer-1", "asked to be forgotten");
  IHS_ASSERT_OK(erased);
  EXPECT_EQ(*erased, 7u);

  auto trail = auditor->ReadStream("customer-1", 0, 10, store::ReadDirection::kForward);
  IHS_ASSERT_OK(trail);
  ASSERT_EQ(trail->size(), 6u);
  EXPECT_EQ((*trail)[0].content_state(), store::ContentState::kErased);
  auto request = (*trail)[5].event();
  ASSERT_EQ(request.which(), schema::Event::ERASURE_REQUEST);
  EXPECT_EQ(std::string(request.getErasureRequest().getRequestedBy().cStr()), "test-admin");
  auto other = auditor->ReadStream("customer-2", 0, 10, store::ReadDirection::kForward);
  IHS_ASSERT_OK(other);
  EXPECT_EQ((*other)[0].content_state(), store::ContentState::kOpen);
  auto info = auditor->GetStreamInfo("customer-1");
  IHS_ASSERT_OK(info);
  EXPECT_EQ(info->erased_position, std::optional<uint64_t>(7));
  EXPECT_NE(server_->Log().find("test-admin erases party customer-1 at position 7"),
            std::string::npos)
      << server_->Log();

  // History was extended, not rewritten: the first head's tree is a prefix of the new one.
  auto later_text = auditor->SignedHead();
  IHS_ASSERT_OK(later_text);
  tlog::TreeHead later;
  ASSERT_TRUE(tlog::OpenHead(*later_text, key, &later, &why)) << why;
  auto consistency = auditor->ConsistencyProof(head.size, later.size);
  IHS_ASSERT_OK(consistency);
  EXPECT_TRUE(
      tlog::VerifyConsistency(head.size, later.size, head.root, later.root, *consistency, &why))
      << why;
}

TEST_F(RpcTest, ConflictsAndIdempotentRetriesCrossTheWireTyped) {
  StartServer();
  auto w = MustConnect("writer");
  ASSERT_TRUE(w);
  auto e1 = events_.Touchpoint(1, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE, "a");
  auto e2 = events_.Touchpoint(2, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE, "b");
  auto first = w->Append(One("s", e1, ExpectedVersion::NoStream()));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->duplicate);

  // A stale expected version: kAborted, with the current version readable without parsing text.
  auto conflict = w->Append(One("s", e2, ExpectedVersion::NoStream()));
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store::ConflictCurrentVersion(conflict.status()), 0);
  auto conflict2 = w->Append(One("other", e2, ExpectedVersion::Exact(4)));
  EXPECT_EQ(store::ConflictCurrentVersion(conflict2.status()), -1);

  // A retry of the same event id: the original positions, nothing written.
  auto retry = w->Append(One("s", e1, ExpectedVersion::NoStream()));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->positions, first->positions);

  // The same id with other content.
  auto other = events_.Touchpoint(1, schema::Channel::SMS, schema::TouchpointType::MESSAGE, "x");
  EXPECT_EQ(w->Append(One("s", other)).status().code(), absl::StatusCode::kAlreadyExists);

  // Bad input names the problem; limits name the field.
  auto bad = events_.New(9);
  bad.initTouchpoint().setSentiment(3);
  auto s = w->Append(One("s", bad.asReader())).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("touchpoint.channel"), absl::string_view::npos) << s;
  auto zero = w->ReadStream("s", 0, 0, store::ReadDirection::kForward);
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client::ErrorField(zero.status()), "limit");
  EXPECT_EQ(w->ReadStream("nobody", 0, 10, store::ReadDirection::kForward).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(w->Append({"", ExpectedVersion::Any(), {e2}}).status().code(),
            absl::StatusCode::kInvalidArgument);

  // Atomic multi-stream appends: one conflict fails all.
  auto multi = w->AppendMulti(
      {One("m1", e2),
       One("s", events_.Touchpoint(5, schema::Channel::SMS, schema::TouchpointType::REPLY),
           ExpectedVersion::Exact(7))});
  EXPECT_EQ(multi.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(w->GetStreamInfo("m1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*w->Head(), 1u);
}

TEST_F(RpcTest, UnixSocketServesTheSameStore) {
  StartServer();
  auto w = Connect("writer", unix_socket());
  ASSERT_TRUE(w.ok()) << w.status();
  IHS_ASSERT_OK((*w)->Append(
      One("u", events_.Touchpoint(1, schema::Channel::CHAT, schema::TouchpointType::MESSAGE))));
  auto r = MustConnect("reader");
  auto info = r->GetStreamInfo("u");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->event_count, 1u);
}

// Appends `n` events in batches straight into a store (no server), for a quick backlog.
void Preload(const std::string& path, uint64_t n, EventFactory& events) {
  store::Options o;
  o.path = path;
  o.sync = false;
  auto st = store::EventStore::Open(o);
  ASSERT_TRUE(st.ok()) << st.status();
  for (uint64_t i = 0; i < n; i += 1000) {
    std::vector<store::StreamAppend> batch;
    for (uint64_t j = i; j < std::min(n, i + 1000); ++j) {
      if (batch.empty() || batch.back().events.size() == 100) {
        batch.push_back({absl::StrCat("pre-", j / 100), ExpectedVersion::Any(), {}});
      }
      batch.back().events.push_back(
          events.Touchpoint(1000000 + j, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE));
    }
    IHS_ASSERT_OK((*st)->AppendMulti(batch));
  }
}

TEST_F(RpcTest, SubscriptionCatchesUpThenFollowsFourWritersWithoutGapOrDuplicate) {
  constexpr uint64_t kBacklog = 100000;
  constexpr uint64_t kPerWriter = 300;
  ASSERT_NO_FATAL_FAILURE(Preload(dir_.Sub("data"), kBacklog, events_));
  StartServer();
  const uint64_t total = kBacklog + 4 * kPerWriter;

  std::vector<uint64_t> positions;
  std::map<std::string, std::vector<uint64_t>> ids_by_writer;  // id order per writer
  absl::Notification caught_up;
  std::thread subscriber([&] {
    auto c = Connect("reader");
    ASSERT_TRUE(c.ok()) << c.status();
    absl::Status s = (*c)->Subscribe({}, [&](const std::vector<RemoteEvent>& batch, uint64_t) {
      for (const auto& e : batch) {
        positions.push_back(e.position());
        std::string stream = e.event().getStreamId();
        if (stream.rfind("live-", 0) == 0) {
          auto id = e.event().getId();
          uint64_t n = 0;
          for (size_t i = 8; i < 16; ++i) n = n << 8 | id[i];
          ids_by_writer[stream].push_back(n);
        }
      }
      if (positions.size() >= kBacklog && !caught_up.HasBeenNotified()) caught_up.Notify();
      return positions.size() < total;
    });
    EXPECT_TRUE(s.ok()) << s;
  });
  ASSERT_TRUE(caught_up.WaitForNotificationWithTimeout(absl::Seconds(120)));
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      auto c = Connect("writer");
      ASSERT_TRUE(c.ok()) << c.status();
      for (uint64_t i = 0; i < kPerWriter; ++i) {
        uint64_t id = (w + 1) * 10000000 + i;
        IHS_ASSERT_OK((*c)->Append(
            One(absl::StrCat("live-", w),
                events_.Touchpoint(id, schema::Channel::CHAT, schema::TouchpointType::MESSAGE))));
      }
    });
  }
  for (auto& t : writers) t.join();
  subscriber.join();
  ASSERT_EQ(positions.size(), total);
  for (uint64_t i = 0; i < total; ++i) ASSERT_EQ(positions[i], i) << "gap or duplicate";
  ASSERT_EQ(ids_by_writer.size(), 4u);
  for (auto& [stream, ids] : ids_by_writer) {
    ASSERT_EQ(ids.size(), kPerWriter) << stream;
    for (size_t i = 1; i < ids.size(); ++i) ASSERT_EQ(ids[i], ids[i - 1] + 1) << stream;
  }
}

TEST_F(RpcTest, SubscriptionFilterDeliversOnlyMatchingEvents) {
  StartServer();
  auto w = MustConnect("writer");
  for (uint64_t i = 0; i < 30; ++i) {
    auto ch = i % 3 == 0 ? schema::Channel::TWITTER : schema::Channel::EMAIL;
    IHS_ASSERT_OK(w->Append(One(i % 2 ? "customer-odd" : "partner-even",
                                events_.Touchpoint(i + 1, ch, schema::TouchpointType::MESSAGE))));
  }
  auto r = MustConnect("reader");
  client::SubscribeOptions o;
  o.stream_prefix = "customer-";
  o.channels = {schema::Channel::TWITTER};
  std::vector<uint64_t> got;
  IHS_ASSERT_OK(r->Subscribe(o, [&](const std::vector<RemoteEvent>& batch, uint64_t scanned) {
    for (const auto& e : batch) got.push_back(e.position());
    return scanned < 30;
  }));
  std::vector<uint64_t> want;
  for (uint64_t i = 0; i < 30; ++i) {
    if (i % 2 == 1 && i % 3 == 0) want.push_back(i);
  }
  EXPECT_EQ(got, want);
}

TEST_F(RpcTest, StalledSubscribersNeitherStallWritersNorGrowServerMemory) {
  StartServer();
  constexpr int kStalled = 6;
  constexpr uint64_t kEvents = 6000;
  const std::string text(4000, 'x');  // ~4 KB of content each: 24 MB appended in all
  std::atomic<bool> release{false};
  std::atomic<int> subscribed{0};
  std::vector<uint64_t> received(kStalled, 0);
  std::vector<std::thread> subs;
  for (int s = 0; s < kStalled; ++s) {
    subs.emplace_back([&, s] {
      auto c = Connect("reader");
      ASSERT_TRUE(c.ok()) << c.status();
      ++subscribed;
      IHS_EXPECT_OK((*c)->Subscribe({}, [&](const std::vector<RemoteEvent>& batch, uint64_t) {
        // Never reads on until the writers are done: this client's socket fills up.
        while (!release.load()) absl::SleepFor(absl::Milliseconds(20));
        received[s] += batch.size();
        return received[s] < kEvents;
      }));
    });
  }
  while (subscribed.load() < kStalled) absl::SleepFor(absl::Milliseconds(10));
  absl::SleepFor(absl::Milliseconds(200));
  const uint64_t rss_before = server_->RssBytes();

  auto w = MustConnect("writer");
  for (uint64_t i = 0; i < kEvents; i += 50) {
    std::vector<store::StreamAppend> batch(1);
    batch[0].stream = absl::StrCat("big-", i / 500);
    for (uint64_t j = i; j < i + 50; ++j) {
      batch[0].events.push_back(
          events_.Touchpoint(j + 1, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE, text));
    }
    IHS_ASSERT_OK(w->AppendMulti(batch));
  }
  const uint64_t rss_after = server_->RssBytes();
  // Every stalled subscriber buffered in full would be kStalled x 24 MB = 144 MB more.
  EXPECT_LT(rss_after, rss_before + (96ull << 20))
      << "before " << rss_before << " after " << rss_after;
  release = true;
  for (auto& t : subs) t.join();
  for (int s = 0; s < kStalled; ++s) EXPECT_EQ(received[s], kEvents) << "subscriber " << s;
}

TEST_F(RpcTest, SigtermDuringLoadKeepsEveryAcknowledgedEvent) {
  StartServer();
  std::mutex mu;
  std::map<std::string, std::pair<std::string, uint64_t>> acked;  // id -> stream, position
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      auto c = Connect("writer");
      ASSERT_TRUE(c.ok()) << c.status();
      for (uint64_t i = 0; !stop.load(); ++i) {
        const uint64_t id = (w + 1) * 10000000 + i;
        std::string stream = absl::StrCat("w", w);
        auto r = (*c)->Append(One(
            stream, events_.Touchpoint(id, schema::Channel::SMS, schema::TouchpointType::MESSAGE)));
        if (!r.ok()) {
          EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
          return;
        }
        std::lock_guard<std::mutex> lock(mu);
        acked[testing::EventId(id)] = {stream, r->positions[0]};
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(700));
  EXPECT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
  stop = true;
  for (auto& t : writers) t.join();
  ASSERT_GT(acked.size(), 20u);

  store::Options o;
  o.path = dir_.Sub("data");
  o.read_only = true;
  auto st = store::EventStore::Open(o);
  ASSERT_TRUE(st.ok()) << st.status();
  auto all = (*st)->ReadAll(0, 1000000);
  ASSERT_TRUE(all.ok());
  std::map<std::string, uint64_t> stored;
  for (const auto& e : *all) {
    auto id = e.event().getId();
    stored[std::string(reinterpret_cast<const char*>(id.begin()), id.size())] = e.position();
  }
  for (const auto& [id, where] : acked) {
    auto it = stored.find(id);
    ASSERT_NE(it, stored.end()) << "acknowledged event lost at " << where.second;
    EXPECT_EQ(it->second, where.second);
  }
  IHS_EXPECT_OK(Verify(**st));
}

// Raw bytes to the TCP port: returns once the server closed the socket or 5 s passed.
void SendRaw(const std::string& address, const std::string& bytes, bool wait_for_close) {
  std::string host = address.substr(0, address.rfind(':'));
  int port = std::stoi(address.substr(address.rfind(':') + 1));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  if (!bytes.empty()) {
    ASSERT_GT(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), 0);
  }
  if (wait_for_close) {
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
  }
  close(fd);
}

TEST_F(RpcTest, BadMessagesAndDroppedConnectionsLeaveTheServerServing) {
  StartServer({"--max-message-bytes", "1048576"});
  auto w = MustConnect("writer");
  IHS_ASSERT_OK(w->Append(
      One("keep", events_.Touchpoint(1, schema::Channel::SMS, schema::TouchpointType::MESSAGE))));

  // Garbage, a truncated frame, a frame that claims to be huge.
  std::mt19937 rng(7);
  std::string garbage(4096, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  SendRaw(tcp(), garbage, true);
  SendRaw(tcp(), std::string("\x00\x00\x00\x00\x10\x00\x00\x00\x01\x02", 10), false);
  SendRaw(tcp(), std::string("\x00\x00\x00\x00\xff\xff\xff\x0f", 8) + std::string(64, 'a'), true);

  // A message over the limit closes that connection only, with a typed status.
  {
    auto big = MustConnect("writer");
    std::vector<schema::Event::Reader> evs;
    const std::string text(60000, 'y');
    store::StreamAppend a{"big", ExpectedVersion::Any(), {}};
    for (int i = 0; i < 40; ++i) {
      a.events.push_back(events_.Touchpoint(100 + i, schema::Channel::EMAIL,
                                            schema::TouchpointType::MESSAGE, text));
    }
    auto r = big->Append(a);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  }

  // 1,000 connections opened and dropped: half at once, half after logging in.
  for (int i = 0; i < 500; ++i) SendRaw(tcp(), "", false);
  for (int i = 0; i < 500; ++i) {
    auto c = Connect("reader");
    ASSERT_TRUE(c.ok()) << c.status();
  }
  // A subscriber that disconnects mid-stream.
  {
    std::thread t([&] {
      auto c = Connect("reader");
      ASSERT_TRUE(c.ok());
      IHS_EXPECT_OK((*c)->Subscribe({}, [](const auto&, uint64_t) { return false; }));
    });
    t.join();
  }

  ASSERT_TRUE(server_->Running());
  auto after = MustConnect("admin");
  ASSERT_TRUE(after);
  auto events = after->ReadStream("keep", 0, 10, store::ReadDirection::kForward);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(events->size(), 1u);
  EXPECT_EQ(*after->Head(), 1u);  // the oversized append stored nothing
  auto status = after->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_GE(status->connections_total, 1000u);
  const std::string log = server_->Log();
  EXPECT_NE(log.find("a malformed message, or one over the 1048576-byte limit"), std::string::npos)
      << log;
  EXPECT_NE(log.find("hung up without logging in"), std::string::npos) << log;
}

TEST_F(RpcTest, CallsBeyondTheInFlightLimitAreOverloadedNotQueued) {
  StartServer({"--max-calls-in-flight", "2"});
  // Pipelined appends on one connection, through raw Cap'n Proto: more than two wait for syncs.
  int ok = 0, overloaded = 0;
  std::thread raw([&] {  // a thread of its own: it runs its own event loop
    auto io = kj::setupAsyncIo();
    auto addr = io.provider->getNetwork().parseAddress(tcp()).wait(io.waitScope);
    auto stream = addr->connect().wait(io.waitScope);
    capnp::TwoPartyClient rpc(*stream);
    auto login = rpc.bootstrap().castAs<rpc::Gateway>().loginRequest();
    login.setToken(tokens_["writer"]);
    auto session = login.send().wait(io.waitScope);
    auto writer = session.getResult().getOk().getWriterCap();
    std::vector<kj::Promise<capnp::Response<rpc::Writer::AppendResults>>> calls;
    for (int i = 0; i < 200; ++i) {
      auto req = writer.appendRequest();
      auto a = req.initAppend();
      a.setStream(absl::StrCat("p", i));
      a.initExpected().setKind(rpc::ExpectedKind::ANY);
      a.initEvents(1).setWithCaveats(
          0, events_.Touchpoint(i + 1, schema::Channel::SMS, schema::TouchpointType::MESSAGE));
      calls.push_back(req.send());
    }
    for (auto& p : calls) {
      auto response = p.wait(io.waitScope);  // owns the message the reader points into
      auto r = response.getResult();
      if (r.isOk()) {
        ++ok;
      } else {
        EXPECT_EQ(r.getError().getKind(), rpc::ErrorKind::OVERLOADED);
        ++overloaded;
      }
    }
  });
  raw.join();
  EXPECT_GT(ok, 0);
  EXPECT_GT(overloaded, 0);
  auto admin = MustConnect("admin");
  EXPECT_EQ(*admin->Head(), static_cast<uint64_t>(ok));
  EXPECT_NE(server_->Log().find("calls in flight"), std::string::npos);
}

TEST_F(RpcTest, WithoutTokensItIsOpenOnLoopbackOnlyAndSaysSo) {
  IhsdOptions o;
  o.binary = IHS_IHSD;
  o.data = dir_.Sub("open");
  o.listen = {"0.0.0.0:0"};
  auto refused = IhsdProcess::Start(o);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("not loopback"), std::string::npos)
      << refused.status();
  EXPECT_FALSE(std::filesystem::exists(o.data)) << "a refused configuration created a store";

  o.listen = {"127.0.0.1:0"};
  auto open = IhsdProcess::Start(o);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_NE((*open)->Log().find("WARNING"), std::string::npos);
  auto c = Client::Connect({(*open)->addresses()[0], "anything"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->role(), rpc::Role::ADMIN);
}

TEST_F(RpcTest, TlsListenerServesClientsThatTrustItsCertificateOnly) {
  const std::string cert = dir_.Sub("cert.pem"), key = dir_.Sub("key.pem");
  const std::string openssl = absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost -keyout ",
      key, " -out ", cert, " 2>/dev/null");
  ASSERT_EQ(std::system(openssl.c_str()), 0) << "openssl (installed by tools/setup.sh) failed";
  StartServer({"--tls-cert", cert, "--tls-key", key});
  client::ConnectOptions o{tcp(), tokens_["writer"]};
  o.tls_ca_file = cert;
  o.tls_server_name = "localhost";
  auto c = Client::Connect(o);
  ASSERT_TRUE(c.ok()) << c.status();
  IHS_ASSERT_OK((*c)->Append(
      One("tls", events_.Touchpoint(1, schema::Channel::CHAT, schema::TouchpointType::MESSAGE))));
  EXPECT_EQ(*(*c)->Head(), 1u);

  // A client that does not trust the certificate, or expects another name, is refused; so is
  // one that speaks plain Cap'n Proto to the TLS port. The server goes on serving.
  const std::string other_cert = dir_.Sub("other.pem");
  ASSERT_EQ(std::system(absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
                                     "-subj /CN=localhost -keyout ",
                                     dir_.Sub("other.key"), " -out ", other_cert, " 2>/dev/null")
                            .c_str()),
            0);
  client::ConnectOptions untrusted = o;
  untrusted.tls_ca_file = other_cert;
  EXPECT_EQ(Client::Connect(untrusted).status().code(), absl::StatusCode::kUnavailable);
  client::ConnectOptions wrong_name = o;
  wrong_name.tls_server_name = "example.org";
  EXPECT_EQ(Client::Connect(wrong_name).status().code(), absl::StatusCode::kUnavailable);
  client::ConnectOptions plain{tcp(), tokens_["writer"]};
  plain.timeout = absl::Seconds(5);
  EXPECT_FALSE(Client::Connect(plain).ok());
  // The unix socket stays plain.
  auto local = Connect("reader", unix_socket());
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(*(*local)->Head(), 1u);
  EXPECT_TRUE(server_->Running());
}

TEST_F(RpcTest, BadTokensFileIsRefusedNamingTheLine) {
  std::ofstream(dir_.Sub("bad-tokens"))
      << "# ok\nreader alice " << std::string(64, 'a') << "\nwriter bob nothex\n";
  IhsdOptions o;
  o.binary = IHS_IHSD;
  o.data = dir_.Sub("data");
  o.tokens = dir_.Sub("bad-tokens");
  auto p = IhsdProcess::Start(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(std::string(p.status().message()).find("line 3"), std::string::npos) << p.status();
}

// ---------------------------------------------------------------------------------------------
// The timeline over RPC (docs/rpc.md, docs/projections.md).

namespace tl = projections::timeline;

// A generated history, appended over RPC in AppendMulti batches; returns its ground truth.
absl::Time TruthTime(const nlohmann::json& truth) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, truth["as_of"].get<std::string>(), &t, &err))
      << err;
  return t;
}

// A party's first 1,000 entries, waiting times counted to `as_of`.
tl::Query WholeTimeline(const std::string& party, absl::Time as_of) {
  tl::Query q;
  q.party = party;
  q.limit = tl::kMaxPageEntries;
  q.as_of = as_of;
  return q;
}

using ihs::testing::Hex;

// The canonical bytes of a message's root: equal bytes, equal content.
template <typename T>
std::string Canonical(capnp::MessageBuilder& m) {
  auto words = capnp::AnyStruct::Reader(m.getRoot<T>().asReader()).canonicalize();
  return std::string(reinterpret_cast<const char*>(words.begin()), words.asBytes().size());
}

TEST_F(RpcTest, TimelineOverRpcIsTheProjectionsStateAndMarksTheTruth) {
  StartServer();
  auto writer = MustConnect("writer");
  auto reader = MustConnect("reader");
  ASSERT_TRUE(writer && reader);
  workload::Config config;
  config.parties = 300;
  config.days = 30;
  config.seed = 23;
  const nlohmann::json truth = AppendHistory(*writer, config);
  SettleIdentity(*reader);
  const uint64_t head = *reader->Head();
  ASSERT_GT(head, 1000u);
  const absl::Time as_of = TruthTime(truth);

  // Read your own writes: with minPosition = head, the answer covers the whole log.
  Client::TimelineOptions fresh;
  fresh.min_position = head;
  fresh.open_content = true;

  // Every channel switch in the truth is marked on the party it landed on (the first 15).
  ASSERT_FALSE(truth["channel_switches"].empty());
  std::set<std::string> parties;
  size_t checked = 0;
  for (const auto& sw : truth["channel_switches"]) {
    if (++checked > 15) break;
    tl::Query q = WholeTimeline(sw["to_party"], as_of);
    parties.insert(q.party);
    capnp::MallocMessageBuilder m;
    IHS_ASSERT_OK(reader->Timeline(q, fresh, m));
    auto page = m.getRoot<schema::TimelinePage>();
    // At least the head read above: ihsd's identity resolver may have appended links since.
    EXPECT_GE(page.getCheckpoint(), head);
    bool found = false;
    for (auto e : page.getEntries()) {
      if (Hex(e.getEventId()) != sw["to_event"].get<std::string>()) continue;
      found = true;
      ASSERT_TRUE(e.hasSwitchFrom()) << sw.dump();
      EXPECT_EQ(Hex(e.getSwitchFrom().getEventId()), sw["from_event"].get<std::string>());
    }
    EXPECT_TRUE(found) << "switch not on the timeline: " << sw.dump();
  }

  // Every unanswered message is open in the summary, waiting as long as the truth says.
  ASSERT_FALSE(truth["unanswered"].empty());
  const auto& open = truth["unanswered"][0];
  capnp::MallocMessageBuilder sm;
  IHS_ASSERT_OK(reader->Summary(open["party"], as_of, head, sm));
  bool listed = false;
  for (auto o : sm.getRoot<schema::TimelineSummary>().getOpen()) {
    if (Hex(o.getEventId()) != open["event"].get<std::string>()) continue;
    listed = true;
    EXPECT_EQ(o.getWaitingSeconds(), open["waiting_s"].get<int64_t>());
  }
  EXPECT_TRUE(listed) << open.dump();
  parties.insert(open["party"]);

  // What ihsd served is byte for byte what the projection gives in process, once ihsd is gone.
  std::map<std::string, std::pair<std::string, std::string>> served;  // party -> page, summary
  for (const std::string& party : parties) {
    tl::Query q = WholeTimeline(party, as_of);
    capnp::MallocMessageBuilder page, summary;
    IHS_ASSERT_OK(reader->Timeline(q, fresh, page));
    IHS_ASSERT_OK(reader->Summary(party, as_of, head, summary));
    served[party] = {Canonical<schema::TimelinePage>(page),
                     Canonical<schema::TimelineSummary>(summary)};
  }
  reader.reset();
  writer.reset();
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  store::Options so;
  so.path = dir_.Sub("data");
  auto st = store::EventStore::Open(so);
  ASSERT_TRUE(st.ok()) << st.status();
  auto runner = projections::Runner::Open(st->get(), projections::AllProjections());
  ASSERT_TRUE(runner.ok()) << runner.status();
  IHS_ASSERT_OK((*runner)->CatchUp(tl::kName));
  auto view = (*runner)->View(tl::kName);
  ASSERT_TRUE(view.ok()) << view.status();
  for (const auto& [party, bytes] : served) {
    tl::Query q = WholeTimeline(party, as_of);
    capnp::MallocMessageBuilder page, summary;
    IHS_ASSERT_OK(tl::ReadPage(*view, q, page, st->get()));
    IHS_ASSERT_OK(tl::ReadSummary(*view, party, as_of, summary));
    EXPECT_EQ(Canonical<schema::TimelinePage>(page), bytes.first) << party;
    EXPECT_EQ(Canonical<schema::TimelineSummary>(summary), bytes.second) << party;
  }
}

TEST_F(RpcTest, TimelineReadsYourOwnWritesAndRefusesBadQueriesByField) {
  StartServer();
  auto writer = MustConnect("writer");
  auto reader = MustConnect("reader");
  ASSERT_TRUE(writer && reader);
  auto appended = writer->Append(One(
      "customer-zoe", events_.Touchpoint(1, schema::Channel::EMAIL,
                                         schema::TouchpointType::COMPLAINT, "where is my parcel")));
  ASSERT_TRUE(appended.ok()) << appended.status();
  Client::TimelineOptions o;
  o.open_content = true;
  o.min_position = appended->positions[0] + 1;
  tl::Query q;
  q.party = "customer-zoe";
  capnp::MallocMessageBuilder m;
  IHS_ASSERT_OK(reader->Timeline(q, o, m));
  auto page = m.getRoot<schema::TimelinePage>();
  ASSERT_EQ(page.getEntries().size(), 1u);
  EXPECT_TRUE(page.getEntries()[0].getResponse().isOpen());
  EXPECT_EQ(std::string(page.getEntries()[0].getText().cStr()), "where is my parcel");
  // Without openContent the personal content stays out of the answer.
  capnp::MallocMessageBuilder sealed;
  IHS_ASSERT_OK(reader->Timeline(q, {false, o.min_position}, sealed));
  EXPECT_EQ(sealed.getRoot<schema::TimelinePage>().getEntries()[0].getText().size(), 0u);

  auto refused = [&](tl::Query bad, const std::string& field) {
    capnp::MallocMessageBuilder out;
    absl::Status s = reader->Timeline(bad, o, out);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field << ": " << s;
    EXPECT_EQ(client::ErrorField(s), field) << s;
  };
  tl::Query bad = q;
  bad.limit = 0;
  refused(bad, "limit");
  bad.limit = tl::kMaxPageEntries + 1;
  refused(bad, "limit");
  bad = q;
  bad.from = 10;
  bad.to = 5;
  refused(bad, "to");
  bad = q;
  bad.channels = {static_cast<schema::Channel>(999)};
  refused(bad, "channels");
  bad = q;
  bad.cursor = "not-a-cursor";
  refused(bad, "cursor");
  bad = q;
  bad.party = "";
  refused(bad, "party");

  capnp::MallocMessageBuilder out;
  absl::Status none = reader->Timeline(
      [&] {
        tl::Query n = q;
        n.party = "nobody";
        return n;
      }(),
      o, out);
  EXPECT_EQ(none.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(none.message().find("no such party: nobody"), std::string::npos) << none;
  EXPECT_EQ(reader->Summary("nobody", absl::Now(), 0, out).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reader->Timeline(q, {false, 1000}, out).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(client::ErrorField(reader->Summary("", absl::Now(), 0, out)), "party");

  // A writer has no timeline; a reader no rebuild.
  EXPECT_EQ(writer->Timeline(q, o, out).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(reader->RebuildProjection("timeline").code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(RpcTest, AdminRebuildsTheTimelineWhileItServesAndTheResultIsTheSame) {
  StartServer();
  auto writer = MustConnect("writer");
  auto admin = MustConnect("admin");
  auto auditor = MustConnect("auditor");
  ASSERT_TRUE(writer && admin && auditor);
  workload::Config config;
  config.parties = 200;
  config.days = 20;
  config.seed = 4;
  const nlohmann::json truth = AppendHistory(*writer, config);
  SettleIdentity(*admin);
  const uint64_t head = *admin->Head();
  tl::Query q = WholeTimeline(workload::Generator::kStoryParty, TruthTime(truth));
  capnp::MallocMessageBuilder before;
  IHS_ASSERT_OK(auditor->Timeline(q, {true, head}, before));

  auto status = admin->Projections();
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_EQ(status->size(), 4u);  // timeline, identity, segments, community
  const std::string family = (*status)[0].family;
  EXPECT_EQ((*status)[0].name, "timeline");
  EXPECT_EQ((*status)[0].checkpoint, head);
  EXPECT_EQ((*status)[0].state, "live");

  EXPECT_EQ(admin->RebuildProjection("nope").code(), absl::StatusCode::kNotFound);
  IHS_ASSERT_OK(admin->RebuildProjection("timeline"));
  // Reads and appends go on while it rebuilds.
  IHS_ASSERT_OK(
      writer->Append(One("customer-late", events_.Touchpoint(999999, schema::Channel::CHAT,
                                                             schema::TouchpointType::MESSAGE))));
  capnp::MallocMessageBuilder during;
  IHS_EXPECT_OK(auditor->Timeline(q, {true, 0}, during));
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  std::string now_family = family;
  while (now_family == family && absl::Now() < deadline) {
    auto s = admin->Projections();
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE((*s)[0].rebuild_checkpoint || (*s)[0].family != family)
        << "the rebuild ended without taking over: " << (*s)[0].error << " " << (*s)[0].family
        << " " << (*s)[0].state << "\n"
        << server_->Log();
    now_family = (*s)[0].family;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_NE(now_family, family) << "no swap within 60 s";
  capnp::MallocMessageBuilder after;
  IHS_ASSERT_OK(auditor->Timeline(q, {true, head + 1}, after));
  auto a = after.getRoot<schema::TimelinePage>();
  a.setCheckpoint(head);  // the one thing that moved: the late append (another party)
  EXPECT_EQ(Canonical<schema::TimelinePage>(after), Canonical<schema::TimelinePage>(before));
}

}  // namespace
}  // namespace ihs
