#include "tests/testutil/netns.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tests/testutil/testutil.h"

namespace ihs::testing {
namespace {

constexpr char kEnv[] = "IHS_TEST_NETNS";

absl::Status Run(const std::string& command) {
  auto [code, out] = RunCommand(command);
  if (code != 0) {
    return absl::InternalError(absl::StrCat("`", command, "` exited with ", code, ": ", out));
  }
  return absl::OkStatus();
}

}  // namespace

void RunInPrivateNetwork(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--gtest_list_tests") == 0) return;
  }
  if (std::getenv(kEnv) == nullptr) {
    setenv(kEnv, "1", 1);
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
      std::fprintf(stderr, "cannot find this program's path (/proc/self/exe)\n");
      std::exit(1);
    }
    self[n] = '\0';
    std::vector<char*> args = {const_cast<char*>("/usr/bin/unshare"), const_cast<char*>("--net"),
                               const_cast<char*>("--"), self};
    for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::fprintf(stderr, "cannot run /usr/bin/unshare: %s\n", std::strerror(errno));
    std::exit(1);
  }
  if (absl::Status s = Run("/usr/sbin/ip link set lo up"); !s.ok()) {
    std::fprintf(stderr, "in the test's own network namespace: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

absl::StatusOr<std::unique_ptr<SideRoom>> SideRoom::Make() {
  std::unique_ptr<SideRoom> r(new SideRoom());
  r->name_ = absl::StrCat("ihs-test-", getpid());
  r->link_ = absl::StrCat("ihs", getpid() % 10000000, "o");  // at most 15 characters
  const std::string peer = absl::StrCat("ihs", getpid() % 10000000, "i");
  const std::string in = absl::StrCat("/usr/sbin/ip -n ", r->name_, " ");
  for (const std::string& c : {
           absl::StrCat("/usr/sbin/ip netns add ", r->name_),
           absl::StrCat("/usr/sbin/ip link add ", r->link_, " type veth peer name ", peer,
                        " netns ", r->name_),
           absl::StrCat("/usr/sbin/ip addr add ", r->outside(), "/30 dev ", r->link_),
           absl::StrCat("/usr/sbin/ip link set ", r->link_, " up"),
           absl::StrCat(in, "addr add ", r->inside(), "/30 dev ", peer),
           absl::StrCat(in, "link set ", peer, " up"),
           absl::StrCat(in, "link set lo up"),
       }) {
    IHS_RETURN_IF_ERROR(Run(c));
  }
  return r;
}

SideRoom::~SideRoom() { (void)Run(absl::StrCat("/usr/sbin/ip netns delete ", name_)); }

absl::Status SideRoom::Cut() { return Run(absl::StrCat("/usr/sbin/ip link set ", link_, " down")); }

absl::Status SideRoom::Heal() { return Run(absl::StrCat("/usr/sbin/ip link set ", link_, " up")); }

}  // namespace ihs::testing
