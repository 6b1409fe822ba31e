// Network namespaces a test makes itself, so that it can cut a process off the network and heal
// it without touching the machine's own network (iproute2 and util-linux; root).
//
//   int main(int argc, char** argv) {
//     ihs::testing::RunInPrivateNetwork(argc, argv);  // from here on: a namespace of its own
//     ...
//   }
//   IHS_ASSIGN_OR_RETURN(auto room, ihs::testing::SideRoom::Make());
//   // a server started with `ip netns exec room->name()` listens on room->inside(); the test's
//   // own namespace is room->outside() to it
//   room->Cut();   // the link between the two goes down: nothing passes either way
//   room->Heal();
#ifndef IHS_TESTS_TESTUTIL_NETNS_H_
#define IHS_TESTS_TESTUTIL_NETNS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace ihs::testing {

// Runs the program again under `unshare --net` (once: the variable IHS_TEST_NETNS marks the
// second run) and, there, brings its loopback up. Returns in the private namespace; exits with
// 1 if it cannot make one. `--gtest_list_tests` (test discovery) stays where it is.
void RunInPrivateNetwork(int argc, char** argv);

// A named network namespace joined to the caller's by a pair of virtual links, with a /30
// between them. Deleted (and its link with it) when the object dies.
class SideRoom {
 public:
  static absl::StatusOr<std::unique_ptr<SideRoom>> Make();
  ~SideRoom();

  const std::string& name() const { return name_; }  // for `ip netns exec NAME`
  std::string inside() const { return "10.231.0.2"; }
  std::string outside() const { return "10.231.0.1"; }

  absl::Status Cut();   // the link goes down on the caller's side
  absl::Status Heal();  // and up again

 private:
  SideRoom() = default;
  std::string name_, link_;
};

}  // namespace ihs::testing

#endif  // IHS_TESTS_TESTUTIL_NETNS_H_
