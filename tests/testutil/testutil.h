// Shared test helpers: temp directories, status assertions, event builders.
#ifndef IHS_TESTS_TESTUTIL_TESTUTIL_H_
#define IHS_TESTS_TESTUTIL_TESTUTIL_H_

#include <capnp/message.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "schema/event.capnp.h"

#define IHS_ASSERT_OK(expr)                                       \
  do {                                                            \
    const ::absl::Status ihs_s_ = ::ihs::testing::AsStatus(expr); \
    ASSERT_TRUE(ihs_s_.ok()) << ihs_s_;                           \
  } while (0)
#define IHS_EXPECT_OK(expr)                                       \
  do {                                                            \
    const ::absl::Status ihs_s_ = ::ihs::testing::AsStatus(expr); \
    EXPECT_TRUE(ihs_s_.ok()) << ihs_s_;                           \
  } while (0)

namespace ihs::testing {

inline absl::Status AsStatus(const absl::Status& s) { return s; }
template <typename T>
absl::Status AsStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

// How many rounds a randomised or repeated test runs: `fallback` in the default suite, the number
// in the environment variable `name` for longer runs (the soak label sets it).
int Rounds(const char* name, int fallback);

// Runs a shell command (its stderr joined to its stdout): the exit code (-1 if it did not exit)
// and what it printed.
std::pair<int, std::string> RunCommand(const std::string& shell_command);

// A fresh directory under TEST_TMPDIR or /tmp, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// MTH(D[begin:end]) exactly as RFC 9162 section 2.1.1 states it, recursively and plainly: the
// reference the store's Merkle tree is checked against.
std::string ReferenceTreeHash(const std::vector<std::string>& leaves, size_t begin, size_t end);

// The 16-byte event id whose last 8 bytes are `n` big-endian (and first byte 0x1e).
std::string EventId(uint64_t n);

// Owns the messages of events built for a test, so their readers stay valid. Safe for
// concurrent use (tests build events from several threads).
class EventFactory {
 public:
  // A touchpoint with the given id; content (subject/text) when `text` is not empty.
  schema::Event::Reader Touchpoint(uint64_t id, schema::Channel channel,
                                   schema::TouchpointType type, const std::string& text = "",
                                   int64_t occurred_at = 1700000000000000);
  // A builder to fill by hand; streamId unset, id set.
  schema::Event::Builder New(uint64_t id);

 private:
  absl::Mutex mu_;
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> messages_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ihs::testing

#endif  // IHS_TESTS_TESTUTIL_TESTUTIL_H_
