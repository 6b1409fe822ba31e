// Tests of store/internal/content_keys.h: sealing, key wrapping, the master key file.
#include "store/internal/content_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/testutil/testutil.h"

namespace ihs::store::internal {
namespace {

class ContentKeysTest : public ::testing::Test {
 protected:
  void SetUp() override { IHS_ASSERT_OK(SodiumInit()); }
  ihs::testing::TempDir dir_;
};

TEST_F(ContentKeysTest, SealedContentOpensWithItsKeyAndAdditionalData) {
  DataKey key = NewDataKey(1);
  Sealed s = SealContent(key, RandomBytes(24), "id|stream", "Ada's complaint about the router");
  EXPECT_EQ(s.nonce.size(), 24u);
  EXPECT_EQ(s.ciphertext.find("router"), std::string::npos);
  auto plain = OpenContent(key, "id|stream", s.nonce, s.ciphertext);
  IHS_ASSERT_OK(plain);
  EXPECT_EQ(*plain, "Ada's complaint about the router");
}

TEST_F(ContentKeysTest, WrongKeyOrOtherEventOrTamperingFailsToOpen) {
  DataKey key = NewDataKey(1);
  Sealed s = SealContent(key, RandomBytes(24), "id|stream", "secret");
  EXPECT_EQ(OpenContent(NewDataKey(1), "id|stream", s.nonce, s.ciphertext).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(OpenContent(key, "other|stream", s.nonce, s.ciphertext).status().code(),
            absl::StatusCode::kDataLoss);
  std::string tampered = s.ciphertext;
  tampered[0] ^= 1;
  EXPECT_EQ(OpenContent(key, "id|stream", s.nonce, tampered).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(ContentKeysTest, DataKeyUnwrapsOnlyUnderItsMasterAndStream) {
  SecretKey master{}, other{};
  master[0] = 1;
  other[0] = 2;
  DataKey key = NewDataKey(3);
  std::string wrapped = WrapDataKey(master, "customer-ada", key);
  auto back = UnwrapDataKey(master, "customer-ada", wrapped);
  IHS_ASSERT_OK(back);
  EXPECT_EQ(back->key, key.key);
  EXPECT_EQ(back->version, 3u);
  EXPECT_EQ(UnwrapDataKey(other, "customer-ada", wrapped).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(UnwrapDataKey(master, "customer-bert", wrapped).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(ContentKeysTest, MasterKeyFileIsCreatedPrivateAndReadBack) {
  std::string path = dir_.Sub("master.key");
  auto created = LoadOrCreateMasterKey(path, /*create=*/true);
  IHS_ASSERT_OK(created);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = LoadOrCreateMasterKey(path, /*create=*/false);
  IHS_ASSERT_OK(again);
  EXPECT_EQ(*again, *created);
  EXPECT_NE(MasterKeyCheck(*again), MasterKeyCheck(SecretKey{}));
}

TEST_F(ContentKeysTest, MissingOrMalformedMasterKeyFileIsAClearError) {
  auto missing = LoadOrCreateMasterKey(dir_.Sub("absent.key"), /*create=*/false);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("missing"), std::string::npos);
  std::ofstream(dir_.Sub("bad.key")) << "not hex at all";
  auto bad = LoadOrCreateMasterKey(dir_.Sub("bad.key"), /*create=*/false);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(bad.status().message().find("64 hexadecimal"), std::string::npos);
}

TEST_F(ContentKeysTest, DigestIsKeyed) {
  SecretKey a{}, b{};
  b[5] = 9;
  EXPECT_EQ(KeyedDigest(a, "event"), KeyedDigest(a, "event"));
  EXPECT_NE(KeyedDigest(a, "event"), KeyedDigest(b, "event"));
  EXPECT_NE(KeyedDigest(a, "event"), KeyedDigest(a, "event2"));
}

TEST(ClassKeys, VersionsAndRowsRoundTripAndKeepPartiesApart) {
  const uint32_t v = ClassKeyVersion(8, 3, 1720000000000000);  // chat, complaint, July 2024
  auto c = ClassOfKeyVersion(v);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->channel, 8);
  EXPECT_EQ(c->type, 3);
  EXPECT_EQ(c->year, 2024);
  EXPECT_FALSE(ClassOfKeyVersion(kPartyKeyVersion).has_value());
  EXPECT_NE(ClassKeyVersion(8, 3, 1690000000000000), v);  // 2023
  EXPECT_NE(ClassKeyVersion(3, 3, 1720000000000000), v);  // email

  EXPECT_EQ(ContentKeyRow("ada", kPartyKeyVersion), "ada");
  std::string stream;
  uint32_t version = 0;
  ASSERT_TRUE(ParseContentKeyRow(ContentKeyRow("ada", v), &stream, &version));
  EXPECT_EQ(stream, "ada");
  EXPECT_EQ(version, v);
  ASSERT_TRUE(ParseContentKeyRow("ada", &stream, &version));
  EXPECT_EQ(version, kPartyKeyVersion);
  EXPECT_FALSE(ParseContentKeyRow(std::string("ada\0\1", 5), &stream, &version));
  // A party's rows sort together, before any other party whose id starts with its own.
  EXPECT_LT(ContentKeyRow("ada", v), std::string("ada\x01"));
  EXPECT_GT(ContentKeyRow("ada2", kPartyKeyVersion), std::string("ada\x01"));
}

}  // namespace
}  // namespace ihs::store::internal
