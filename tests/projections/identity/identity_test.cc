// Identity: what its users rely on. Clues are read and normalised as docs/identity.md says; links
// join and split persons deterministically; the resolver links what is above the threshold once
// and never against an operator's unlink; households and shared clues are suggestions at most;
// erasure takes the evidence its content gave; and no handle is kept in the clear.
#include "projections/identity/identity.h"

#include <gtest/gtest.h>

#include "projections/identity/clues.h"
#include "projections/identity/links.h"
#include "projections/identity/resolver.h"
#include "projections/runner.h"
#include "store/governance.h"
#include "tests/testutil/store_fixture.h"
#include "workload/generator.h"
#include "workload/identity_score.h"
#include "workload/load.h"

namespace ihs::projections::identity {
namespace {

using schema::ClueKind;
using schema::Direction;
using schema::HandleKind;
using schema::PairState;
using schema::TouchpointType;

// --- clues ---------------------------------------------------------------------------------------

TEST(Clues, HandlesWrittenTwoWaysAreOneHandle) {
  EXPECT_EQ(*NormalizeHandle(HandleKind::EMAIL, " Ada.Lovelace@Example.ORG "),
            "ada.lovelace@example.org");
  EXPECT_EQ(*NormalizeHandle(HandleKind::PHONE, "+49 30 1234567"), "+49301234567");
  EXPECT_EQ(*NormalizeHandle(HandleKind::PHONE, "0049 (30) 123-4567"), "+49301234567");
  EXPECT_EQ(*NormalizeHandle(HandleKind::POSTAL, "Ada Lovelace,  Lindenstr.  5,\t10115 Berlin"),
            *NormalizeHandle(HandleKind::POSTAL, "lindenstr 5, 10115 BERLIN"));
  EXPECT_EQ(*NormalizeHandle(HandleKind::TWITTER, "Ada_L"), "@ada_l");
}

TEST(Clues, AHandleThatDoesNotParseIsNamed) {
  auto bad_email = NormalizeHandle(HandleKind::EMAIL, "ada.example.org");
  EXPECT_EQ(bad_email.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_email.status().message().find("ada.example.org"), std::string::npos);
  EXPECT_FALSE(NormalizeHandle(HandleKind::PHONE, "+49 30 12x4567").ok());
  EXPECT_FALSE(NormalizeHandle(HandleKind::PHONE, "12345").ok());
  EXPECT_FALSE(NormalizeHandle(HandleKind::EMAIL, "").ok());
  EXPECT_FALSE(NormalizeHandle(HandleKind::UNSPECIFIED, "x").ok());
}

TEST(Clues, NamesComeFromEmailsSocialHandlesAndSignedLetters) {
  EXPECT_EQ(NameOf(HandleKind::EMAIL, "Ada.Lovelace.42@example.net"), "ada lovelace");
  EXPECT_EQ(NameOf(HandleKind::TWITTER, "@ada_lovelace1815"), "ada lovelace");
  EXPECT_EQ(NameOf(HandleKind::FACEBOOK, "fb:ada.lovelace.7"), "ada lovelace");
  EXPECT_EQ(NameOf(HandleKind::POSTAL, "Ada Lovelace, Lindenstr. 5, 10115 Berlin"), "ada lovelace");
  EXPECT_EQ(NameOf(HandleKind::POSTAL, "Lindenstr. 5, 10115 Berlin"), std::nullopt);
  EXPECT_EQ(NameOf(HandleKind::EMAIL, "service@company.example"), std::nullopt);
  EXPECT_EQ(NameOf(HandleKind::PHONE, "+49301234567"), std::nullopt);
}

TEST(Clues, ReferencesAreWordsOfTheirOwn) {
  EXPECT_EQ(References("My order is A-123456. And CT-20231105, too"),
            (std::vector<std::string>{"A-123456", "CT-20231105"}));
  EXPECT_TRUE(References("XA-12 A-123 aA-123456 A-123456x ABCDE-123456").empty());
}

TEST(Clues, OneTypoApartSharesALetterLeftOut) {
  auto shares = [](const std::string& a, const std::string& b) {
    std::vector<std::string> va = OneLetterOut(a), vb = OneLetterOut(b);
    va.push_back(a);
    vb.push_back(b);
    for (const auto& x : va) {
      if (std::find(vb.begin(), vb.end(), x) != vb.end()) return true;
    }
    return false;
  };
  EXPECT_TRUE(shares("greta richter", "greta rihcter"));  // swapped
  EXPECT_TRUE(shares("greta richter", "greta richer"));   // dropped
  EXPECT_TRUE(shares("greta richter", "greta richtar"));  // changed
  EXPECT_FALSE(shares("greta richter", "greta weber"));
}

// --- the projection over a store -----------------------------------------------------------------

class IdentityTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    OpenRunner();
  }
  void OpenRunner() {
    runner_.reset();
    auto r = Runner::Open(store_.get(), {[] { return NewIdentityProjection(); }});
    IHS_ASSERT_OK(r);
    runner_ = std::move(*r);
  }

  // A touchpoint of `stream` from `handle`, saying `text`.
  void Say(const std::string& stream, HandleKind kind, const std::string& address,
           const std::string& text = "hello", Direction direction = Direction::INBOUND,
           const std::string& causation = "") {
    auto e = events_.New(++next_id_);
    e.setStreamId(stream);
    e.setOccurredAt(1700000000000000 + static_cast<int64_t>(next_id_));
    auto tp = e.initTouchpoint();
    tp.setChannel(kind == HandleKind::TWITTER ? schema::Channel::TWITTER : schema::Channel::EMAIL);
    tp.setDirection(direction);
    tp.setType(TouchpointType::COMPLAINT);
    if (!causation.empty()) {
      e.setCausationId(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(causation.data()),
                                           causation.size()));
    }
    auto c = e.initContent();
    c.setText(text);
    auto from = c.initFrom();
    from.setKind(kind);
    from.setAddress(address);
    IHS_ASSERT_OK(store_->Append({stream, store::ExpectedVersion::Any(), {e.asReader()}}));
  }

  absl::Status Link(const std::string& a, const std::string& b, bool unlink = false) {
    auto e = events_.New(++next_id_);
    e.setStreamId(kIdentityStream);
    e.setOccurredAt(1700000000000000);
    e.setSourceSystem("crm");
    auto l = e.initIdentityLink();
    auto p = l.initParties(2);
    p.set(0, a);
    p.set(1, b);
    l.setUnlink(unlink);
    l.setReason("test");
    return store_->Append({kIdentityStream, store::ExpectedVersion::Any(), {e.asReader()}})
        .status();
  }

  StateView View() {
    EXPECT_TRUE(runner_->CatchUp(kName).ok());
    auto v = runner_->View(kName);
    EXPECT_TRUE(v.ok()) << v.status();
    return *v;
  }

  // The person's streams, joined by spaces, and its id first: "id: a b c".
  std::string PersonOf(const std::string& stream) {
    capnp::MallocMessageBuilder m;
    absl::Status s = ReadPerson(View(), stream, m);
    if (!s.ok()) return s.ToString();
    auto p = m.getRoot<schema::Person>();
    std::string out = absl::StrCat(p.getId().cStr(), ":");
    for (auto x : p.getStreams()) absl::StrAppend(&out, " ", x.cStr());
    return out;
  }

  // What StateOf answers when no evidence and no link joins the two.
  static constexpr PairState kNoPair = PairState::UNSPECIFIED;

  PairState StateOf(const std::string& a, const std::string& b, float* score = nullptr,
                    std::vector<ClueKind>* clues = nullptr) {
    capnp::MallocMessageBuilder m;
    if (!ReadPair(View(), a, b, m).ok()) return PairState::UNSPECIFIED;
    auto p = m.getRoot<schema::PairScore>();
    if (score) *score = p.getScore();
    if (clues) {
      for (auto c : p.getClues()) clues->push_back(c.getKind());
    }
    return p.getState();
  }

  std::vector<std::pair<std::string, std::string>> Dump() {
    auto v = View();
    return testing::DumpState(*store_, std::string(runner_->Status()[0].family));
  }

  std::unique_ptr<Runner> runner_;
};

TEST_F(IdentityTest, AnEmailAndANameAreLinkedOnceByTheResolver) {
  Say("c-1", HandleKind::EMAIL, "Ada.Lovelace@example.org");
  Say("s-1", HandleKind::TWITTER, "@ada_lovelace");
  Say("s-1", HandleKind::EMAIL, "ada.lovelace@EXAMPLE.org ");
  float score = 0;
  std::vector<ClueKind> clues;
  EXPECT_EQ(StateOf("c-1", "s-1", &score, &clues), PairState::PENDING);
  EXPECT_FLOAT_EQ(score, ClueWeight(ClueKind::EMAIL) + ClueWeight(ClueKind::NAME));
  EXPECT_EQ(clues, (std::vector<ClueKind>{ClueKind::EMAIL, ClueKind::NAME}));
  EXPECT_EQ(PersonOf("s-1"), "s-1: s-1");  // inference alone joins nobody

  Resolver resolver(*store_, *runner_);
  auto r = resolver.RunUntilSettled();
  IHS_ASSERT_OK(r);
  EXPECT_EQ(r->appended, 1u);
  EXPECT_EQ(PersonOf("s-1"), "c-1: c-1 s-1");  // named by the stream seen first
  EXPECT_EQ(StateOf("c-1", "s-1"), PairState::LINKED);
  auto links = store_->ReadStream(kIdentityStream, 0, 10, store::ReadDirection::kForward);
  IHS_ASSERT_OK(links);
  ASSERT_EQ(links->size(), 1u);
  auto link = (*links)[0].event();
  EXPECT_EQ(std::string(link.getSourceSystem().cStr()), kResolverSource);
  EXPECT_EQ(testing::Hex(link.getId()),
            testing::Hex(capnp::Data::Reader(
                reinterpret_cast<const kj::byte*>(ResolverEventId("c-1", "s-1").data()), 16)));
  EXPECT_EQ(link.getIdentityLink().getClues().size(), 2u);

  // A second resolver, as after a crash before the projection saw the link: nothing doubles.
  const uint64_t head = store_->Head();
  OpenRunner();
  Resolver again(*store_, *runner_);
  IHS_ASSERT_OK(again.RunUntilSettled());
  EXPECT_EQ(store_->Head(), head);
}

TEST_F(IdentityTest, LinksAreTransitiveAndAnUnlinkSplitsDeterministically) {
  for (const char* s : {"a", "b", "c", "d"}) Say(s, HandleKind::EMAIL, absl::StrCat(s, "@x.org"));
  IHS_ASSERT_OK(Link("b", "c"));
  IHS_ASSERT_OK(Link("a", "b"));
  IHS_ASSERT_OK(Link("c", "d"));
  EXPECT_EQ(PersonOf("d"), "a: a b c d");
  IHS_ASSERT_OK(Link("b", "c", /*unlink=*/true));
  EXPECT_EQ(PersonOf("a"), "a: a b");
  EXPECT_EQ(PersonOf("d"), "c: c d");
  EXPECT_EQ(StateOf("b", "c"), PairState::DISTINCT);
  // An unlink of streams joined only through others changes no person.
  IHS_ASSERT_OK(Link("a", "b", /*unlink=*/false));
  IHS_ASSERT_OK(Link("a", "d", /*unlink=*/true));
  EXPECT_EQ(PersonOf("a"), "a: a b");

  const auto live = Dump();
  IHS_ASSERT_OK(runner_->Rebuild(kName));
  EXPECT_EQ(Dump(), live) << "a rebuild from zero gives other bytes";
}

TEST_F(IdentityTest, AnOperatorsUnlinkWinsOverInference) {
  Say("c-1", HandleKind::EMAIL, "ada@example.org", "my order A-123456");
  Say("s-1", HandleKind::EMAIL, "ada@example.org", "order A-123456 again");
  Resolver resolver(*store_, *runner_);
  IHS_ASSERT_OK(resolver.RunUntilSettled());
  EXPECT_EQ(PersonOf("s-1"), "c-1: c-1 s-1");
  IHS_ASSERT_OK(Link("c-1", "s-1", /*unlink=*/true));
  Say("s-1", HandleKind::TWITTER, "@ada_x", "still A-123456");  // more evidence comes
  auto r = resolver.RunUntilSettled();
  IHS_ASSERT_OK(r);
  EXPECT_EQ(r->appended, 0u);
  EXPECT_EQ(PersonOf("s-1"), "s-1: s-1");
  EXPECT_EQ(StateOf("c-1", "s-1"), PairState::DISTINCT);
}

TEST_F(IdentityTest, AHouseholdsPhoneAndAddressMakeASuggestionNotALink) {
  Say("c-1", HandleKind::PHONE, "+49 30 1234567");
  Say("c-1", HandleKind::POSTAL, "Ada Weber, Lindenstr. 5, 10115 Berlin");
  Say("c-2", HandleKind::PHONE, "0049 30 1234567");
  Say("c-2", HandleKind::POSTAL, "Ben Weber, Lindenstr. 5, 10115 Berlin");
  float score = 0;
  EXPECT_EQ(StateOf("c-1", "c-2", &score), PairState::SUGGESTED);
  EXPECT_LT(score, kLinkThreshold);
  auto suggestions = ListPairs(View(), PairState::SUGGESTED, 10);
  IHS_ASSERT_OK(suggestions);
  ASSERT_EQ(suggestions->size(), 1u);
  auto found = FindSuggestion(View(), SuggestionId("c-1", "c-2"));
  IHS_ASSERT_OK(found);
  EXPECT_EQ(found->first, "c-1");
  EXPECT_EQ(FindSuggestion(View(), "000000000000").status().code(), absl::StatusCode::kNotFound);
  Resolver resolver(*store_, *runner_);
  auto r = resolver.RunUntilSettled();
  IHS_ASSERT_OK(r);
  EXPECT_EQ(r->appended, 0u);
}

TEST_F(IdentityTest, AClueOfManyStreamsIdentifiesNobody) {
  for (int i = 0; i < 17; ++i) {
    Say(absl::StrCat("c-", i), HandleKind::PHONE, "+49 800 000000");  // a hotline, say
  }
  EXPECT_EQ(StateOf("c-0", "c-1"), kNoPair);
  auto suggestions = ListPairs(View(), PairState::SUGGESTED, 100);
  IHS_ASSERT_OK(suggestions);
  EXPECT_TRUE(suggestions->empty());
}

TEST_F(IdentityTest, AFollowUpInAnotherStreamIsAClue) {
  Say("c-1", HandleKind::EMAIL, "greta.richter@example.net", "help");
  const std::string message = testing::EventId(next_id_);
  Say("s-1", HandleKind::TWITTER, "@greta_rihcter", "nobody answers", Direction::PUBLIC, message);
  float score = 0;
  std::vector<ClueKind> clues;
  EXPECT_EQ(StateOf("c-1", "s-1", &score, &clues), PairState::SUGGESTED);
  EXPECT_EQ(clues, (std::vector<ClueKind>{ClueKind::FOLLOW_UP, ClueKind::SIMILAR_NAME}));
}

TEST_F(IdentityTest, ErasureTakesTheEvidenceItsContentGaveAndKeepsTheLinks) {
  Say("c-1", HandleKind::PHONE, "+49 30 1234567");
  Say("c-2", HandleKind::PHONE, "+49 30 1234567");
  Say("c-3", HandleKind::EMAIL, "x@y.org");
  IHS_ASSERT_OK(Link("c-2", "c-3"));
  EXPECT_EQ(StateOf("c-1", "c-2"), PairState::SUGGESTED);
  IHS_ASSERT_OK(store::Erase(*store_, "c-2", "asked to", "test"));
  EXPECT_EQ(StateOf("c-1", "c-2"), kNoPair);
  EXPECT_EQ(PersonOf("c-3"), "c-2: c-2 c-3");
  const auto live = Dump();
  IHS_ASSERT_OK(runner_->Rebuild(kName));
  EXPECT_EQ(Dump(), live) << "a rebuild after the erasure gives other bytes";
}

TEST_F(IdentityTest, AnErasureOfAPersonReachesEveryStreamOrNone) {
  Say("c-1", HandleKind::EMAIL, "ada@example.org");
  Say("s-1", HandleKind::TWITTER, "@ada");
  Say("c-9", HandleKind::EMAIL, "other@example.org");
  IHS_ASSERT_OK(Link("c-1", "s-1"));
  IHS_ASSERT_OK(store::SetLegalHold(*store_, "s-1", false, "a court case", "test").status());
  const uint64_t head = store_->Head();
  auto refused = ErasePerson(*store_, View(), "c-1", "asked to", "test");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_NE(refused.status().message().find("s-1"), std::string::npos) << refused.status();
  EXPECT_EQ(store_->Head(), head);  // the other stream was not erased either
  EXPECT_FALSE(store_->GetStreamInfo("c-1")->erased_position.has_value());

  IHS_ASSERT_OK(store::SetLegalHold(*store_, "s-1", true, "case closed", "test").status());
  auto erased = ErasePerson(*store_, View(), "s-1", "asked to", "test");
  IHS_ASSERT_OK(erased);
  EXPECT_EQ(erased->second, (std::vector<std::string>{"c-1", "s-1"}));
  ASSERT_EQ(erased->first.size(), 2u);
  EXPECT_EQ(erased->first[1], erased->first[0] + 1);  // one append
  for (const char* s : {"c-1", "s-1"}) {
    EXPECT_TRUE(store_->GetStreamInfo(s)->erased_position.has_value()) << s;
  }
  EXPECT_FALSE(store_->GetStreamInfo("c-9")->erased_position.has_value());
  // A link to an erased party is refused; the person stays as it was.
  auto again = AppendLink(*store_, View(), {"c-9", "c-1", false, "why not", "test"});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(PersonOf("s-1"), "c-1: c-1 s-1");
}

TEST_F(IdentityTest, NoHandleNameOrReferenceIsKeptInTheClear) {
  Say("c-1", HandleKind::EMAIL, "ada.lovelace@example.org", "order A-123456");
  Say("c-2", HandleKind::POSTAL, "Ada Lovelace, Lindenstr. 5, 10115 Berlin", "order A-123456");
  std::string all;
  for (const auto& [k, v] : Dump()) absl::StrAppend(&all, k, v);
  for (const char* secret : {"lovelace", "example.org", "A-123456", "lindenstr", "Lindenstr"}) {
    EXPECT_EQ(all.find(secret), std::string::npos) << secret;
  }
}

TEST_F(IdentityTest, TheStoreRefusesALinkOfAStreamWithItself) {
  const absl::Status s = Link("c-1", "c-1");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("twice"), std::string::npos) << s;
  EXPECT_EQ(store_->Head(), 0u);
}

// The generator's traps do not fool it, and what it joins is right, on a small history (the
// full measure is bench/identity_accuracy, docs/identity.md "Accuracy").
TEST_F(IdentityTest, OnAGeneratedHistoryItJoinsTheRightStreamsAndFallsForNoTrap) {
  workload::Config c;
  c.parties = 1500;
  c.days = 200;
  c.seed = 11;
  workload::Generator g(c);
  IHS_ASSERT_OK(workload::LoadIntoStore(g, *store_));
  std::stringstream truth;
  g.WriteTruth(truth);
  Resolver resolver(*store_, *runner_);
  IHS_ASSERT_OK(resolver.RunUntilSettled());
  std::vector<std::vector<std::string>> persons;
  IHS_ASSERT_OK(ForEachPerson(View(), [&](schema::Person::Reader p) {
    std::vector<std::string> streams;
    for (auto x : p.getStreams()) streams.emplace_back(x.cStr());
    persons.push_back(std::move(streams));
    return true;
  }));
  workload::IdentityScore s = workload::ScoreIdentity(nlohmann::json::parse(truth.str()), persons);
  EXPECT_GT(s.true_positives, 50u);
  EXPECT_GE(s.precision(), 0.99) << s.ToJson().dump();
  EXPECT_GE(s.recall_with_evidence(), 0.95) << s.ToJson().dump();
  EXPECT_GT(s.traps["household"] + s.traps["moved_phone"] + s.traps["friend_quotes_order"], 50u);
  // A shared landline or address never reaches the threshold, with a name or without.
  EXPECT_EQ(s.traps_joined["household"], 0u) << s.ToJson().dump();
  EXPECT_EQ(s.traps_joined["moved_phone"], 0u) << s.ToJson().dump();
  // A friend who quotes your order reference is joined only if the two names are the same (1 in
  // 256 names) or one typo apart: nothing in the log tells such a pair apart.
  EXPECT_LE(s.traps_joined["friend_quotes_order"] * 20, s.traps["friend_quotes_order"])
      << s.ToJson().dump();
}

}  // namespace
}  // namespace ihs::projections::identity
