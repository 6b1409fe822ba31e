// Mutation tests of the two places where outside bytes are decoded: stored records
// (store/internal/codec.h) and event JSON (schema/json.h). Thousands of damaged inputs, made
// deterministically from valid ones, must each give a clean status (kDataLoss for records,
// kInvalidArgument for JSON) or a valid result: never a crash, never an exception. The ASan and
// UBSan build of CI runs these too, so memory errors in the decoding paths show up there.
#include <capnp/message.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

#include "schema/json.h"
#include "store/audit.h"
#include "store/event_store.h"
#include "store/internal/codec.h"
#include "tests/testutil/testutil.h"

namespace ihs::store {
namespace {

std::string Mutate(std::string s, std::mt19937& rng) {
  switch (rng() % 4) {
    case 0:  // flip bits
      for (int i = 0, n = 1 + rng() % 4; i < n && !s.empty(); ++i) {
        s[rng() % s.size()] ^= static_cast<char>(1 << (rng() % 8));
      }
      break;
    case 1:  // truncate
      s.resize(rng() % (s.size() + 1));
      break;
    case 2:  // overwrite a run with one byte value (e.g. huge pointers or list sizes)
      if (!s.empty()) {
        size_t at = rng() % s.size();
        size_t len = std::min<size_t>(s.size() - at, 1 + rng() % 16);
        s.replace(at, len, len, static_cast<char>(rng() % 2 ? 0xff : 0x00));
      }
      break;
    default:  // duplicate a slice
      if (!s.empty()) {
        size_t at = rng() % s.size();
        s.insert(at, s.substr(at, rng() % 32));
      }
  }
  return s;
}

TEST(DecodeMutation, DamagedRecordsAreDataLossOrValidNeverACrash) {
  ihs::testing::EventFactory events;
  capnp::MallocMessageBuilder m;
  m.setRoot(events.Touchpoint(7, schema::Channel::TWITTER, schema::TouchpointType::COMPLAINT,
                              "two days and not a word"));
  auto ev = m.getRoot<schema::Event>();
  ev.setPosition(3);
  auto sc = ev.initSealedContent();
  sc.setNonce(kj::heapArray<kj::byte>(24));
  sc.setCiphertext(kj::heapArray<kj::byte>(64));
  ev.disownContent();
  const std::string record = internal::EncodeRecord(ev.asReader());
  ASSERT_TRUE(internal::DecodeRecord(3, record).ok());

  std::mt19937 rng(12345);
  int data_loss = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string damaged = Mutate(record, rng);
    auto rep = internal::DecodeRecord(3, damaged);
    if (rep.ok()) {
      // Whatever decoded must be readable without throwing.
      auto r = (*rep)->event->root<schema::Event>();
      (void)r.getStreamId().size();
      (void)r.which();
      EXPECT_EQ((*rep)->event->prefixed(), damaged);
    } else {
      ASSERT_EQ(rep.status().code(), absl::StatusCode::kDataLoss) << rep.status();
      ++data_loss;
    }
  }
  EXPECT_GT(data_loss, 1000);  // most damage is detected at decode time
}

TEST(DecodeMutation, DamagedJsonIsInvalidArgumentOrValidNeverACrash) {
  const std::string line =
      R"({"id":"5a3e0000000000000000000000000011","streamId":"customer-ada",)"
      R"("occurredAt":"2026-10-10T19:47:00Z","touchpoint":{"channel":"twitter",)"
      R"("direction":"public","type":"complaint","sentiment":-0.9,"topics":["router"],)"
      R"("inReplyTo":"5a3e0000000000000000000000000010","audienceSize":4200},)"
      R"("content":{"text":"two days","to":[{"kind":"email","address":"a@b.c"}]}})";
  schema::EventJson json;
  std::mt19937 rng(777);
  int invalid = 0;
  for (int i = 0; i < 5000; ++i) {
    capnp::MallocMessageBuilder m;
    absl::Status s = json.Decode(Mutate(line, rng), m.initRoot<schema::Event>());
    if (!s.ok()) {
      ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
      ++invalid;
    }
  }
  EXPECT_GT(invalid, 1000);
}

// Damaged input messages (as the RPC server will receive them) are refused with
// kInvalidArgument, or stored if they still make a valid event; the store keeps verifying.
TEST(DecodeMutation, DamagedInputEventsAreRefusedOrStoredNeverACrash) {
  ihs::testing::TempDir dir;
  Options options;
  options.path = dir.Sub("data");
  options.sync = false;  // thousands of appends; durability is not what this test is about
  auto store = EventStore::Open(options);
  IHS_ASSERT_OK(store);
  ihs::testing::EventFactory events;
  const std::string input = internal::CanonicalBytes(events.Touchpoint(
      9, schema::Channel::EMAIL, schema::TouchpointType::COMPLAINT, "router broken"));
  std::mt19937 rng(4242);
  int refused = 0, stored = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string damaged = Mutate(input, rng);
    damaged.resize((damaged.size() + 7) / 8 * 8, '\0');
    if (damaged.empty()) continue;
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(damaged.size() / 8);
    std::memcpy(words.begin(), damaged.data(), damaged.size());
    kj::ArrayPtr<const capnp::word> segments[1] = {words.asPtr()};
    capnp::SegmentArrayMessageReader reader(kj::arrayPtr(segments, 1));
    schema::Event::Reader ev;
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { ev = reader.getRoot<schema::Event>(); })) {
      continue;  // not even a root pointer: nothing a server would pass on
    }
    auto r = (*store)->Append({"fuzz", ExpectedVersion::Any(), {ev}});
    if (r.ok()) {
      if (!r->duplicate) ++stored;  // a harmless mutation can repeat an earlier event exactly
    } else {
      ASSERT_TRUE(r.status().code() == absl::StatusCode::kInvalidArgument ||
                  r.status().code() == absl::StatusCode::kAlreadyExists)
          << r.status();
      ++refused;
    }
  }
  EXPECT_GT(refused, 500);
  IHS_EXPECT_OK(Verify(**store));
  // What was stored reads back, content included.
  auto all = (*store)->ReadAll(0, 10000);
  IHS_ASSERT_OK(all);
  EXPECT_EQ(all->size(), static_cast<size_t>(stored));
}

}  // namespace
}  // namespace ihs::store
