#include "tests/testutil/store_fixture.h"

#include "absl/strings/escaping.h"
#include "store/state_store.h"
#include "tests/testutil/raw_db.h"

namespace ihs::testing {

std::vector<std::pair<std::string, std::string>> DumpState(store::EventStore& store,
                                                           const std::string& family) {
  std::vector<std::pair<std::string, std::string>> out;
  absl::Status s = store::StateStoreOf(store)->ScanState(
      family, "", "", [&](absl::string_view k, absl::string_view v) {
        out.emplace_back(std::string(k), std::string(v));
        return true;
      });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

std::string Hex(capnp::Data::Reader bytes) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes.begin()), bytes.size()));
}

void StoreTest::Reopen(store::Options options, const std::string& dir) {
  store_.reset();
  data_dir_ = dir;
  options.path = dir_.Sub(dir);
  if (options.clock == nullptr && !real_clock_) options.clock = &clock_;
  auto s = store::EventStore::Open(options);
  ASSERT_TRUE(s.ok()) << s.status();
  store_ = std::move(*s);
}

absl::Status StoreTest::Add(const std::string& party, const std::string& text,
                            schema::Channel channel, int64_t occurred_at) {
  return store_
      ->Append({party,
                store::ExpectedVersion::Any(),
                {events_.Touchpoint(++next_id_, channel, schema::TouchpointType::MESSAGE, text,
                                    occurred_at)}})
      .status();
}

absl::Status StoreTest::Link(const std::string& a, const std::string& b, bool unlink) {
  schema::Event::Builder e = events_.New(++next_id_);
  auto l = e.initIdentityLink();
  auto parties = l.initParties(2);
  parties.set(0, a);
  parties.set(1, b);
  l.setUnlink(unlink);
  l.setReason("test");
  return store_->Append({"$identity", store::ExpectedVersion::Any(), {e.asReader()}}).status();
}

std::vector<store::StoredEvent> StoreTest::Read(const std::string& party) {
  auto r = store_->ReadStream(party, 0, 1000, store::ReadDirection::kForward);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : std::vector<store::StoredEvent>{};
}

std::string StoreTest::AllFileBytes() {
  return ihs::testing::AllFileBytes(dir_.Sub(data_dir_ + "/db"));
}

}  // namespace ihs::testing
