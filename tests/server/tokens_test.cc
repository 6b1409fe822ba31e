#include "server/tokens.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace ihs::server {
namespace {

TEST(Tokens, AuthenticateFindsTheRoleOfAKnownTokenOnly) {
  const std::string reader = NewToken(), admin = NewToken();
  auto t = Tokens::Parse(absl::StrCat("# comment\n\n", TokenLine(rpc::Role::READER, "svc", reader),
                                      TokenLine(rpc::Role::ADMIN, "ops@example", admin)));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->size(), 2u);
  EXPECT_FALSE(t->open());
  auto who = t->Authenticate(reader);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->role, rpc::Role::READER);
  EXPECT_EQ(who->name, "svc");
  EXPECT_EQ(t->Authenticate(admin)->role, rpc::Role::ADMIN);
  EXPECT_FALSE(t->Authenticate(NewToken()));
  EXPECT_FALSE(t->Authenticate(""));
  EXPECT_FALSE(t->Authenticate(HashTokenHex(reader)));  // the stored hash is not a token
}

TEST(Tokens, HashIsSha256HexOfTheToken) {
  // sha256("abc"), FIPS 180-2 test vector.
  EXPECT_EQ(HashTokenHex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(NewToken().size(), 64u);
  EXPECT_NE(NewToken(), NewToken());
}

TEST(Tokens, ParseErrorsNameTheLine) {
  const std::string hash(64, 'a');
  struct Case {
    std::string text, want;
  } cases[] = {
      {"reader a\n", "line 1: want three fields"},
      {"# x\nboss a " + hash, "line 2: unknown role \"boss\""},
      {"reader a/b " + hash, "bad name"},
      {"reader a " + std::string(63, 'a'), "64 lowercase hex"},
      {"reader a " + std::string(64, 'A'), "64 lowercase hex"},
  };
  for (const auto& c : cases) {
    auto t = Tokens::Parse(c.text);
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.want), absl::string_view::npos) << t.status();
  }
  EXPECT_EQ(Tokens::Load("/nonexistent/tokens").status().code(), absl::StatusCode::kNotFound);
}

TEST(Tokens, OpenModeLogsEveryoneInAsAdmin) {
  Tokens t = Tokens::Open();
  EXPECT_TRUE(t.open());
  EXPECT_EQ(t.Authenticate("whatever")->role, rpc::Role::ADMIN);
}

}  // namespace
}  // namespace ihs::server
