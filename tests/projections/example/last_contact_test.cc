// The worked example runs the conformance suite every projection runs, and answers what it says.
#include "tests/projections/example/last_contact.h"

#include "projections/runner.h"
#include "tests/projections/conformance.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"

namespace ihs::projections::last_contact {
namespace {

INSTANTIATE_TEST_SUITE_P(LastContact, ProjectionConformance,
                         ::testing::Values(ConformanceCase{kName, &NewLastContactProjection}),
                         ConformanceCaseName);

class LastContactTest : public ihs::testing::StoreTest {};

TEST_F(LastContactTest, AnswersEachPartysLastTouchpointAndNotFoundForOthers) {
  IHS_ASSERT_OK(Add("ada", "first", schema::Channel::EMAIL, 1000));
  IHS_ASSERT_OK(Add("bob", "hello", schema::Channel::CHAT, 2000));
  IHS_ASSERT_OK(Add("ada", "again", schema::Channel::TWITTER, 3000));
  auto runner = Runner::Open(store_.get(), {&NewLastContactProjection});
  IHS_ASSERT_OK(runner);
  IHS_ASSERT_OK((*runner)->CatchUp(kName));
  auto view = (*runner)->View(kName);
  IHS_ASSERT_OK(view);
  absl::StatusOr<LastContact> ada = ReadLastContact(*view, "ada");
  IHS_ASSERT_OK(ada);
  EXPECT_EQ(ada->occurred_at, 3000);
  EXPECT_EQ(ada->channel, schema::Channel::TWITTER);
  EXPECT_EQ(ada->direction, schema::Direction::INBOUND);
  EXPECT_EQ(ReadLastContact(*view, "carol").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ihs::projections::last_contact
