// Tests of store/internal/keys.h and common/big_endian.h: byte order is numeric order.
#include "store/internal/keys.h"

#include <gtest/gtest.h>

#include <random>

#include "common/big_endian.h"

namespace ihs::store::internal {
namespace {

TEST(BigEndian, ByteOrderIsNumericOrder) {
  std::mt19937_64 rng(42);
  std::vector<uint64_t> edge = {
      0,          1,    255, 256, 65535, 65536, (1ull << 32) - 1, 1ull << 32, (1ull << 63) - 1,
      1ull << 63, ~0ull};
  for (int i = 0; i < 10000; ++i) {
    uint64_t a = i < static_cast<int>(edge.size()) ? edge[i] : rng() >> (rng() % 64);
    uint64_t b = rng() >> (rng() % 64);
    EXPECT_EQ(a < b, EventKey(a) < EventKey(b)) << a << " vs " << b;
    EXPECT_EQ(GetBigEndian64(EventKey(a).data()), a);
  }
}

TEST(BigEndian, ThirtyTwoBitRoundTrip) {
  for (uint32_t v : {0u, 1u, 0x01020304u, 0xffffffffu}) {
    std::string s;
    PutBigEndian32(&s, v);
    ASSERT_EQ(s.size(), 4u);
    EXPECT_EQ(GetBigEndian32(s.data()), v);
  }
}

TEST(StreamIndexKey, OrdersByStreamThenVersion) {
  EXPECT_LT(StreamIndexKey(1, 900), StreamIndexKey(2, 0));
  EXPECT_LT(StreamIndexKey(7, 255), StreamIndexKey(7, 256));
  EXPECT_LT(StreamIndexKey(7, 0), StreamIndexKey(7, 1));
  EXPECT_EQ(StreamIndexKey(3, 4).size(), 16u);
}

TEST(MerkleKey, OrdersByLevelThenIndex) {
  EXPECT_LT(MerkleKey(0, ~0ull), MerkleKey(1, 0));
  EXPECT_LT(MerkleKey(3, 255), MerkleKey(3, 256));
  EXPECT_EQ(MerkleKey(0, 0).size(), 9u);
}

TEST(StreamMeta, RoundTripsIncludingNegativeTimes) {
  StreamMeta m{12, 34, 56, 78, -1000, 1700000000000000, std::nullopt, std::nullopt};
  EXPECT_EQ(EncodeStreamMeta(m).size(), kStreamMetaBytes);  // what older readers know exactly
  std::optional<StreamMeta> d = DecodeStreamMeta(EncodeStreamMeta(m));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->stream_no, 12u);
  EXPECT_EQ(d->event_count, 34u);
  EXPECT_EQ(d->first_position, 56u);
  EXPECT_EQ(d->last_position, 78u);
  EXPECT_EQ(d->first_occurred_at, -1000);
  EXPECT_EQ(d->last_occurred_at, 1700000000000000);
  EXPECT_FALSE(d->hold_position.has_value());
  EXPECT_FALSE(d->erased_position.has_value());
}

TEST(StreamMeta, HoldAndErasureRoundTripAfterTheFieldsOlderReadersKnow) {
  StreamMeta m{1, 2, 3, 4, 5, 6, 0, std::nullopt};  // a hold placed at position 0
  std::optional<StreamMeta> d = DecodeStreamMeta(EncodeStreamMeta(m));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->hold_position, std::optional<uint64_t>(0));
  EXPECT_FALSE(d->erased_position.has_value());
  m.hold_position.reset();
  m.erased_position = 77;
  d = DecodeStreamMeta(EncodeStreamMeta(m));
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->hold_position.has_value());
  EXPECT_EQ(d->erased_position, std::optional<uint64_t>(77));
  EXPECT_EQ(d->event_count, 2u);
}

TEST(StreamMeta, NewerLongerValueStillDecodesAndGarbageDoesNot) {
  std::string v =
      EncodeStreamMeta(StreamMeta{1, 2, 3, 4, 5, 6, std::nullopt, std::nullopt}) + "future fields";
  ASSERT_TRUE(DecodeStreamMeta(v).has_value());
  EXPECT_EQ(DecodeStreamMeta(v)->event_count, 2u);
  EXPECT_FALSE(DecodeStreamMeta("short").has_value());
  std::string wrong_format = EncodeStreamMeta(StreamMeta{});
  wrong_format[0] = '\x02';
  EXPECT_FALSE(DecodeStreamMeta(wrong_format).has_value());
}

TEST(EventIdValue, RoundTripsAndRefusesAnyOtherSize) {
  const std::string digest(kDigestBytes, '\x5a');
  const std::string v = EncodeEventIdValue(0x0102030405060708, 42, digest);
  EXPECT_EQ(v.size(), 16 + kDigestBytes);
  EXPECT_EQ(v.substr(0, 8), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));  // big-endian
  std::optional<EventIdValue> d = DecodeEventIdValue(v);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->position, 0x0102030405060708u);
  EXPECT_EQ(d->stream_version, 42u);
  EXPECT_EQ(d->digest, digest);
  EXPECT_FALSE(DecodeEventIdValue(v.substr(0, 16)).has_value());
  EXPECT_FALSE(DecodeEventIdValue(v + "x").has_value());
  EXPECT_FALSE(DecodeEventIdValue("").has_value());
}

}  // namespace
}  // namespace ihs::store::internal
