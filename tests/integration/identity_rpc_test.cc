// Identity over RPC, on a real ihsd: its resolver links what the log makes inferable without
// being asked; readers resolve streams and handles; writers link, unlink and decide suggestions,
// with the same checks as on a data directory; readers cannot decide anything.
#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "projections/timeline/query.h"
#include "tests/integration/rpc_fixture.h"

namespace ihs {
namespace {

// Polls until `done` or 20 s pass.
template <typename F>
bool Eventually(F done) {
  for (absl::Time end = absl::Now() + absl::Seconds(20); absl::Now() < end;) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

std::string PersonId(Client& c, const std::string& stream, uint64_t min = 0) {
  capnp::MallocMessageBuilder m;
  absl::Status s = c.Resolve(stream, min, m);
  if (!s.ok()) return s.ToString();
  return m.getRoot<schema::Resolution>().getPerson().getId().cStr();
}

TEST_F(RpcTest, IdentityOverRpc) {
  StartServer();
  auto writer = MustConnect("writer");
  auto reader = MustConnect("reader");
  ASSERT_TRUE(writer && reader);
  workload::Config config;
  config.parties = 400;
  config.days = 60;
  config.seed = 5;
  const nlohmann::json truth = AppendHistory(*writer, config);

  // ihsd's resolver links accounts the log makes inferable, by itself.
  capnp::MallocMessageBuilder stats;
  ASSERT_TRUE(Eventually([&] {
    return reader->IdentityStats(0, stats).ok() &&
           stats.getRoot<schema::IdentityStats>().getInferredLinks() > 0 &&
           stats.getRoot<schema::IdentityStats>().getPending() == 0;
  })) << "the resolver appended nothing";
  int joined = 0;
  for (const auto& id : truth["identities"]) {
    if (!id["linked_in_log"].get<bool>() &&
        PersonId(*reader, id["streams"][1]) == PersonId(*reader, id["streams"][0])) {
      ++joined;
    }
  }
  EXPECT_GT(joined, 0);

  // A handle finds its stream through the blind index, written another way.
  std::string owner, email;
  for (int i = 1; i <= 100 && email.empty(); ++i) {
    owner = absl::StrFormat("c-%06d", i);
    auto events = reader->ReadStream(owner, 0, 1000, store::ReadDirection::kForward, true);
    if (!events.ok()) continue;
    for (const auto& e : *events) {
      auto c = e.content();  // opened content travels beside the sealed event
      const bool inbound = e.event().isTouchpoint() &&
                           e.event().getTouchpoint().getDirection() == schema::Direction::INBOUND;
      if (inbound && c.hasFrom() && c.getFrom().getKind() == schema::HandleKind::EMAIL) {
        email = c.getFrom().getAddress().cStr();
        break;
      }
    }
  }
  ASSERT_FALSE(email.empty()) << "no customer wrote an email";
  auto found = reader->FindHandle(schema::HandleKind::EMAIL, absl::AsciiStrToUpper(email), 0);
  IHS_ASSERT_OK(found);
  EXPECT_EQ(*found, std::vector<std::string>{owner});
  auto bad = reader->FindHandle(schema::HandleKind::PHONE, "+49 30 12x", 0);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);

  // A writer links and unlinks; the answer of a read at that position shows it.
  auto linked = writer->Link("c-000001", "c-000002", false, "same person, says the CRM");
  IHS_ASSERT_OK(linked);
  EXPECT_EQ(PersonId(*reader, "c-000002", *linked + 1), PersonId(*reader, "c-000001", *linked + 1));
  capnp::MallocMessageBuilder person;
  IHS_ASSERT_OK(reader->Person("c-000002", *linked + 1, person));
  bool recorded = false;
  for (auto l : person.getRoot<schema::Person>().asReader().getLinks()) {
    if (l.getReason() == "same person, says the CRM") recorded = !l.getInferred();
  }
  EXPECT_TRUE(recorded);
  // The timeline of the person merges both streams, and pages through them without a gap or a
  // repeat.
  {
    namespace tl = projections::timeline;
    Client::TimelineOptions o;
    o.person = true;
    o.min_position = *linked + 1;
    tl::Query q;
    q.party = "c-000001";
    q.limit = 1000;
    q.as_of = absl::Now();
    capnp::MallocMessageBuilder whole;
    IHS_ASSERT_OK(reader->Timeline(q, o, whole));
    auto page = whole.getRoot<schema::TimelinePage>();
    ASSERT_EQ(page.getStreams().size(), 2u);
    EXPECT_EQ(std::string(page.getStreams()[1].cStr()), "c-000002");
    std::vector<std::string> all;
    std::map<std::string, int> by_party;
    for (auto e : page.getEntries()) {
      all.push_back(absl::StrCat(e.getPosition()));
      ++by_party[e.getParty().cStr()];
    }
    capnp::MallocMessageBuilder alone;
    q.party = "c-000002";
    o.person = false;
    IHS_ASSERT_OK(reader->Timeline(q, o, alone));
    EXPECT_EQ(by_party["c-000002"],
              static_cast<int>(alone.getRoot<schema::TimelinePage>().getEntries().size()));
    EXPECT_GT(by_party["c-000001"], 0);
    std::vector<std::string> paged;
    q.party = "c-000001";
    q.limit = 7;
    o.person = true;
    for (int pages = 0; pages < 1000; ++pages) {
      capnp::MallocMessageBuilder m;
      IHS_ASSERT_OK(reader->Timeline(q, o, m));
      auto p = m.getRoot<schema::TimelinePage>();
      for (auto e : p.getEntries()) paged.push_back(absl::StrCat(e.getPosition()));
      if (p.getNextCursor().size() == 0) break;
      q.cursor = p.getNextCursor().cStr();
    }
    EXPECT_EQ(paged, all);
  }
  auto unlinked = writer->Link("c-000001", "c-000002", true, "they are not");
  IHS_ASSERT_OK(unlinked);
  EXPECT_NE(PersonId(*reader, "c-000002", *unlinked + 1),
            PersonId(*reader, "c-000001", *unlinked + 1));

  // Bad input is refused with nothing appended.
  const uint64_t head = *reader->Head();
  EXPECT_EQ(writer->Link("c-000001", "c-000001", false, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writer->Link("c-000001", "no-such", false, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writer->Link("c-000001", "c-000003", false, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writer->Link("c-000001", "c-000003", true, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writer->DecideSuggestion("000000000000", true, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*reader->Head(), head);

  // Suggestions: a writer rejects one, and it does not come back.
  capnp::MallocMessageBuilder list;
  IHS_ASSERT_OK(reader->IdentitySuggestions("", 10, 0, list));
  auto pairs = list.getRoot<schema::PairList>().getPairs();
  ASSERT_GT(pairs.size(), 0u) << "the history holds no suggestion";
  {
    const std::string id = pairs[0].getSuggestionId().cStr();
    auto rejected = writer->DecideSuggestion(id, false, "different people");
    IHS_ASSERT_OK(rejected);
    capnp::MallocMessageBuilder after;
    IHS_ASSERT_OK(reader->IdentitySuggestions("", 1000, *rejected + 1, after));
    for (auto p : after.getRoot<schema::PairList>().getPairs()) {
      EXPECT_NE(std::string(p.getSuggestionId().cStr()), id);
    }
  }
  // An admin erases a whole person in one append.
  auto admin = MustConnect("admin");
  ASSERT_TRUE(admin);
  std::vector<std::string> pair;
  for (int i = 10; i < 200 && pair.size() < 2; ++i) {
    const std::string s = absl::StrFormat("c-%06d", i);
    if (reader->GetStreamInfo(s).ok() && PersonId(*reader, s) == s) pair.push_back(s);
  }
  ASSERT_EQ(pair.size(), 2u);
  auto joined_again = writer->Link(pair[0], pair[1], false, "one household account");
  IHS_ASSERT_OK(joined_again);
  capnp::MallocMessageBuilder settled;
  IHS_ASSERT_OK(reader->Resolve(pair[0], *joined_again + 1, settled));
  auto erased = admin->Erase(pair[1], "asked to be forgotten", /*person=*/true);
  IHS_ASSERT_OK(erased);
  for (const std::string& s : pair) {
    auto info = reader->GetStreamInfo(s);
    IHS_ASSERT_OK(info);
    EXPECT_TRUE(info->erased_position.has_value()) << s;
  }
  // Hostile or careless input to the reads: refused with the field named, or an empty answer.
  capnp::MallocMessageBuilder none;
  EXPECT_EQ(reader->IdentitySuggestions("", 0, 0, none).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->IdentitySuggestions("", 1001, 0, none).code(),
            absl::StatusCode::kInvalidArgument);
  IHS_ASSERT_OK(reader->IdentitySuggestions(std::string(100000, 'z'), 10, 0, none));
  EXPECT_EQ(none.getRoot<schema::PairList>().getPairs().size(), 0u);
  EXPECT_EQ(reader->FindHandle(static_cast<schema::HandleKind>(999), "x", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->FindHandle(schema::HandleKind::EMAIL, "", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->Resolve("", 0, none).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->Resolve("no-such-stream", 0, none).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reader->Person(std::string(300, 'p'), 0, none).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reader->IdentityStats(*reader->Head() + 10, none).code(),
            absl::StatusCode::kOutOfRange);
  // A reader decides nothing.
  EXPECT_EQ(reader->Link("c-000001", "c-000003", false, "x").status().code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace ihs
