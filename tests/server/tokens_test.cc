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

TEST(Tokens, WithoutHolderRemovesOnlyThatHoldersLines) {
  const std::string a = NewToken(), b = NewToken(), c = NewToken();
  const std::string text = absl::StrCat("# ops tokens\n", TokenLine(rpc::Role::READER, "svc", a),
                                        "\n", TokenLine(rpc::Role::ADMIN, "ops", b),
                                        "# svc again\n", TokenLine(rpc::Role::WRITER, "svc", c));
  size_t removed = 0;
  auto kept = Tokens::WithoutHolder(text, "svc", &removed);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(removed, 2u);
  EXPECT_EQ(*kept, absl::StrCat("# ops tokens\n\n", TokenLine(rpc::Role::ADMIN, "ops", b),
                                "# svc again\n"));
  auto t = Tokens::Parse(*kept);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->Authenticate(a));
  EXPECT_FALSE(t->Authenticate(c));
  EXPECT_EQ(t->Authenticate(b)->name, "ops");

  // A name that is only a prefix, or no such holder: nothing goes.
  kept = Tokens::WithoutHolder(text, "sv", &removed);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(removed, 0u);
  EXPECT_EQ(*kept, text);

  // A file that does not parse is refused as Parse refuses it, not rewritten.
  kept = Tokens::WithoutHolder(text + "boss x " + std::string(64, 'a') + "\n", "svc", &removed);
  ASSERT_FALSE(kept.ok());
  EXPECT_NE(kept.status().message().find("line 7: unknown role"), absl::string_view::npos)
      << kept.status();
}

TEST(Tokens, StillHoldsOnlyTheSameTokenWithTheSameRole) {
  const std::string a = NewToken(), b = NewToken();
  auto before = Tokens::Parse(
      absl::StrCat(TokenLine(rpc::Role::READER, "svc", a), TokenLine(rpc::Role::WRITER, "w", b)));
  ASSERT_TRUE(before.ok());
  const Identity reader = *before->Authenticate(a), writer = *before->Authenticate(b);
  EXPECT_TRUE(before->StillHolds(reader));
  // After a reload: a's line gone, b's role changed; the holders never show a hash.
  auto after = Tokens::Parse(absl::StrCat(TokenLine(rpc::Role::ADMIN, "w", b)));
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->StillHolds(reader));
  EXPECT_FALSE(after->StillHolds(writer));
  EXPECT_TRUE(after->StillHolds(*after->Authenticate(b)));
  for (const Identity& who : after->holders()) EXPECT_TRUE(who.token_hash.empty());
  EXPECT_TRUE(Tokens::Open().StillHolds(reader));
}

TEST(Tokens, ATokenWithAnExpiryLogsInUntilThenOnly) {
  const std::string a = NewToken();
  const absl::Time until = absl::FromUnixSeconds(1800000000);
  const std::string line = TokenLine(rpc::Role::READER, "brief", a, until);
  EXPECT_NE(line.find(" expires=2027-01-15T08:00:00Z"), std::string::npos) << line;
  auto t = Tokens::Parse(line);
  ASSERT_TRUE(t.ok()) << t.status();
  auto who = t->Authenticate(a, until - absl::Seconds(1));
  ASSERT_TRUE(who);
  EXPECT_EQ(who->expires, until);
  EXPECT_TRUE(t->StillHolds(*who, until - absl::Seconds(1)));
  EXPECT_FALSE(t->StillHolds(*who, until));
  std::optional<absl::Time> expired;
  EXPECT_FALSE(t->Authenticate(a, until, &expired));
  ASSERT_TRUE(expired);
  EXPECT_EQ(*expired, until);
  auto bad = Tokens::Parse(absl::StrCat("reader x ", std::string(64, 'a'), " expires=soon"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 1: the fourth field \"expires=soon\""),
            absl::string_view::npos)
      << bad.status();
}

TEST(Tokens, OpenModeLogsEveryoneInAsAdmin) {
  Tokens t = Tokens::Open();
  EXPECT_TRUE(t.open());
  EXPECT_EQ(t.Authenticate("whatever")->role, rpc::Role::ADMIN);
}

}  // namespace
}  // namespace ihs::server
