// The fixture of tests that work on one store: a temporary directory, a fake clock, an event
// factory, and the small reads most tests need. Also one Dump of a state family and one Hex of
// an id, for every test that prints or compares them.
#ifndef IHS_TESTS_TESTUTIL_STORE_FIXTURE_H_
#define IHS_TESTS_TESTUTIL_STORE_FIXTURE_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "schema/event.capnp.h"
#include "store/event_store.h"
#include "tests/testutil/testutil.h"

namespace ihs::testing {

// Every key and value of a state family, in key order.
std::vector<std::pair<std::string, std::string>> DumpState(store::EventStore& store,
                                                           const std::string& family);

// Bytes (an event id) as lowercase hex.
std::string Hex(capnp::Data::Reader bytes);

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // Closes the store and opens DIR/`dir` again with `options` (path set here; the fake clock
  // unless the options name another, or `real_clock_` is set).
  void Reopen(store::Options options = {}, const std::string& dir = "data");

  // Appends one touchpoint with a new id (next_id_) to `party`.
  absl::Status Add(const std::string& party, const std::string& text = "words",
                   schema::Channel channel = schema::Channel::EMAIL,
                   int64_t occurred_at = 1700000000000000);
  // Appends an identityLink (an unlink if `unlink`) of `a` and `b` to "$identity".
  absl::Status Link(const std::string& a, const std::string& b, bool unlink = false);
  // The party's events, up to 1000, content opened.
  std::vector<store::StoredEvent> Read(const std::string& party);
  // Every byte of every file under the store's db/ (SST, WAL, MANIFEST, LOG, OPTIONS).
  std::string AllFileBytes();

  TempDir dir_;
  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  bool real_clock_ = false;  // set before Reopen: recordedAt from the wall clock
  EventFactory events_;
  uint64_t next_id_ = 0;
  std::string data_dir_ = "data";
  std::unique_ptr<store::EventStore> store_;
};

}  // namespace ihs::testing

#endif  // IHS_TESTS_TESTUTIL_STORE_FIXTURE_H_
