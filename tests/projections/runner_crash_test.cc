// A projection worker killed with SIGKILL at random moments resumes from its checkpoint, and
// ends with the same state, byte for byte, as a rebuild from zero.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "projections/registry.h"
#include "projections/runner.h"
#include "tests/testutil/testutil.h"

namespace ihs::projections {
namespace {

pid_t Spawn(const std::string& dir) {
  pid_t pid = fork();
  if (pid == 0) {
    execl(IHS_PROJECTION_CHILD, IHS_PROJECTION_CHILD, dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

std::vector<std::pair<std::string, std::string>> Dump(store::EventStore& store,
                                                      const std::string& family) {
  std::vector<std::pair<std::string, std::string>> out;
  EXPECT_TRUE(StateStoreOf(store)
                  ->ScanState(family, "", "",
                              [&](absl::string_view k, absl::string_view v) {
                                out.emplace_back(std::string(k), std::string(v));
                                return true;
                              })
                  .ok());
  return out;
}

TEST(RunnerCrash, KilledWorkerResumesFromItsCheckpointToTheRebuiltState) {
  ihs::testing::TempDir dir;
  const std::string data = dir.Sub("data");
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  for (int round = 0; round < 6; ++round) {
    pid_t pid = Spawn(data);
    ASSERT_GT(pid, 0);
    usleep(std::uniform_int_distribution<int>(150'000, 900'000)(rng));
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    kills += WIFSIGNALED(status);
  }
  EXPECT_GT(kills, 0) << "the child always finished before it was killed";
  pid_t pid = Spawn(data);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  store::Options o;
  o.path = data;
  auto store = store::EventStore::Open(o);
  IHS_ASSERT_OK(store);
  auto runner = Runner::Open(store->get(), AllProjections());
  IHS_ASSERT_OK(runner);
  for (const ProjectionStatus& st : (*runner)->Status()) {
    EXPECT_EQ(st.checkpoint, (*store)->Head()) << st.name;
    const auto live = Dump(**store, st.family);
    IHS_ASSERT_OK((*runner)->Rebuild(st.name));
    EXPECT_TRUE(Dump(**store, (*runner)->Status()[0].family) == live) << st.name;
  }
}

}  // namespace
}  // namespace ihs::projections
