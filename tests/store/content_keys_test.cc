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

}  // namespace
}  // namespace ihs::store::internal
