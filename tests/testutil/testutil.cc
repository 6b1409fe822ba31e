#include "tests/testutil/testutil.h"

#include <sodium.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "common/big_endian.h"
#include "common/mutex.h"

namespace ihs::testing {

int Rounds(const char* name, int fallback) {
  const char* v = std::getenv(name);
  int n = 0;
  return v != nullptr && absl::SimpleAtoi(v, &n) && n > 0 ? n : fallback;
}

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

std::string ReferenceTreeHash(const std::vector<std::string>& leaves, size_t begin, size_t end) {
  auto sha = [](const std::string& s) {
    std::string out(32, '\0');
    crypto_hash_sha256(reinterpret_cast<uint8_t*>(out.data()),
                       reinterpret_cast<const uint8_t*>(s.data()), s.size());
    return out;
  };
  size_t n = end - begin;
  if (n == 0) return sha("");
  if (n == 1) return sha(std::string(1, '\0') + leaves[begin]);
  size_t k = 1;
  while (k * 2 < n) k *= 2;  // the largest power of two smaller than n
  return sha(std::string(1, '\1') + ReferenceTreeHash(leaves, begin, begin + k) +
             ReferenceTreeHash(leaves, begin + k, end));
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
    MutexLock lock(&mu_);
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

std::pair<int, std::string> RunCommand(const std::string& shell_command) {
  const std::string command = shell_command + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace ihs::testing
