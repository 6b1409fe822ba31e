#include "tests/testutil/testutil.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>

#include "common/big_endian.h"

namespace ihs::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ihs-test-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  if (p == nullptr) std::abort();
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string EventId(uint64_t n) {
  std::string id(8, '\0');
  id[0] = '\x1e';
  PutBigEndian64(&id, n);
  return id;
}

schema::Event::Builder EventFactory::New(uint64_t id) {
  auto message = std::make_unique<capnp::MallocMessageBuilder>();
  auto ev = message->initRoot<schema::Event>();
  {
    absl::MutexLock lock(&mu_);
    messages_.push_back(std::move(message));  // the builder's memory does not move
  }
  std::string bytes = EventId(id);
  ev.setId(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
  ev.setOccurredAt(1700000000000000);
  return ev;
}

schema::Event::Reader EventFactory::Touchpoint(uint64_t id, schema::Channel channel,
                                               schema::TouchpointType type, const std::string& text,
                                               int64_t occurred_at) {
  auto ev = New(id);
  ev.setOccurredAt(occurred_at);
  auto tp = ev.initTouchpoint();
  tp.setChannel(channel);
  tp.setDirection(schema::Direction::INBOUND);
  tp.setType(type);
  if (!text.empty()) {
    auto c = ev.initContent();
    c.setSubject("subject of " + std::to_string(id));
    c.setText(text);
  }
  return ev.asReader();
}

}  // namespace ihs::testing
