// Crash test: a writer child process (several threads, single and batched appends) is killed
// with SIGKILL at random moments, at least 50 times. After each kill the store is reopened and
// every acknowledged event must be there, once, at the position it was acknowledged with; no
// batch may be there in part; and Verify() must pass.
// IHS_CRASH_ITERATIONS overrides the number of kills (default 50).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <sstream>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "store/audit.h"
#include "store/event_store.h"
#include "tests/testutil/testutil.h"

namespace ihs::store {
namespace {

struct Child {
  pid_t pid;
  int out;
};

Child StartWriter(const std::string& dir, int run) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    std::string run_s = std::to_string(run);
    ::execl(IHS_CRASH_WRITER, "crash_writer", dir.c_str(), run_s.c_str(), "4", nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

// Reads from the child until its first complete line (it has acknowledged an append) or the
// deadline; returns what was read.
std::string ReadFirstLine(int fd, absl::Time deadline) {
  std::string out;
  char buf[4096];
  while (out.find('\n') == std::string::npos && absl::Now() < deadline) {
    struct pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

std::string ReadAllFrom(int fd, std::string out = "") {
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  ::close(fd);
  return out;
}

TEST(CrashTest, KilledWriterLosesNoAcknowledgedAppendAndLeavesNoHalfBatch) {
  int iterations = 50;
  if (const char* env = std::getenv("IHS_CRASH_ITERATIONS")) iterations = std::atoi(env);
  ihs::testing::TempDir tmp;
  const std::string dir = tmp.Sub("data");
  std::mt19937 rng(20261123);
  absl::flat_hash_map<std::string, uint64_t> acked;  // id -> position, over all runs
  uint64_t kills_with_acks = 0;

  for (int run = 0; run < iterations; ++run) {
    Child child = StartWriter(dir, run);
    // Random moments: every tenth run while the store may still be opening (or creating); the
    // others after the writer's first acknowledgement, so a slow start (a sanitizer build, a
    // busy machine) cannot turn the test into one of start-ups only.
    std::string head;
    if (run % 10 != 0) head = ReadFirstLine(child.out, absl::Now() + absl::Seconds(60));
    absl::SleepFor(absl::Milliseconds(rng() % 100));
    ASSERT_EQ(::kill(child.pid, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child.pid, &wstatus, 0), child.pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus))
        << "the writer exited by itself (status " << wstatus << "); see its stderr";
    std::string out = ReadAllFrom(child.out, head);
    std::istringstream lines(out);
    std::string line;
    size_t acks = 0;
    while (std::getline(lines, line)) {
      if (lines.eof()) break;  // a cut last line was never wholly acknowledged on the pipe
      std::istringstream f(line);
      std::string tag, id_hex;
      uint64_t position;
      ASSERT_TRUE(f >> tag >> id_hex >> position) << line;
      ASSERT_EQ(tag, "ACK");
      auto [it, fresh] = acked.emplace(absl::HexStringToBytes(id_hex), position);
      ASSERT_TRUE(fresh) << "acknowledged twice: " << id_hex;
      ++acks;
    }
    if (acks > 0) ++kills_with_acks;

    Options options;
    options.path = dir;
    auto opened = EventStore::Open(options);
    ASSERT_TRUE(opened.ok()) << "run " << run << ": " << opened.status();
    EventStore& store = **opened;
    // Every event in the log, once; every batch whole.
    absl::flat_hash_map<std::string, uint64_t> logged;
    absl::flat_hash_map<std::string, int> batch_seen;  // run|thread|batch -> events seen
    absl::flat_hash_map<std::string, int> batch_size;
    for (uint64_t pos = 0; pos < store.Head();) {
      auto events = store.ReadAll(pos, 4096, ReadOptions{false});
      ASSERT_TRUE(events.ok()) << events.status();
      for (const auto& e : *events) {
        auto id = e.event().getId();
        std::string key(reinterpret_cast<const char*>(id.begin()), id.size());
        ASSERT_TRUE(logged.emplace(key, e.position()).second) << "event stored twice";
        std::string batch = key.substr(0, 10);
        ++batch_seen[batch];
        batch_size[batch] = (static_cast<uint8_t>(key[12]) << 8) | static_cast<uint8_t>(key[13]);
      }
      pos += events->size();
    }
    for (const auto& [batch, seen] : batch_seen) {
      ASSERT_EQ(seen, batch_size[batch]) << "run " << run << ": half a batch is stored";
    }
    for (const auto& [id, position] : acked) {
      auto it = logged.find(id);
      ASSERT_NE(it, logged.end()) << "run " << run << ": acknowledged event "
                                  << absl::BytesToHexString(id) << " is lost";
      ASSERT_EQ(it->second, position) << "run " << run << ": acknowledged event moved";
    }
    auto verified = Verify(store);
    ASSERT_TRUE(verified.ok()) << "run " << run << ": " << verified.status();
  }
  // The kills must have hit a writer at work, not only ones still starting up.
  EXPECT_GE(kills_with_acks, static_cast<uint64_t>(iterations) * 9 / 10);
  EXPECT_GT(acked.size(), 0u);
}

}  // namespace
}  // namespace ihs::store
