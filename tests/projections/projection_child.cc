// The child of runner_crash_test: appends a generated history to DIR (resuming whatever an
// earlier, killed child left) while the runner's workers follow it, then waits until every
// projection has applied the whole log and exits 0. The test kills it with SIGKILL at random.
#include <cstdio>
#include <cstdlib>

#include "workload/generator.h"
#include "workload/load.h"
#include "projections/registry.h"
#include "projections/runner.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: projection_child DIR\n");
    return 2;
  }
  ihs::store::Options o;
  o.path = argv[1];
  o.sync = false;  // SIGKILL loses nothing the kernel has; a power cut is not this test
  auto store = ihs::store::EventStore::Open(o);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  auto runner = ihs::projections::Runner::Open(store->get(), ihs::projections::AllProjections());
  if (!runner.ok()) {
    std::fprintf(stderr, "%s\n", runner.status().ToString().c_str());
    return 1;
  }
  (*runner)->Start();
  ihs::workload::Config c;
  // Enough work (about 90k events) that kills at 0.1-0.9 s land while it runs.
  c.parties = 3000;
  c.days = 90;
  c.seed = 21;
  ihs::workload::Generator g(c);
  auto report = ihs::workload::LoadIntoStore(g, **store);
  if (!report.ok()) {
    std::fprintf(stderr, "%s\n", report.status().ToString().c_str());
    return 1;
  }
  for (const std::string& name : (*runner)->Names()) {
    if (!(*runner)->WaitFor(name, (*store)->Head(), absl::Now() + absl::Seconds(120))) return 3;
  }
  std::printf("done %llu\n", static_cast<unsigned long long>((*store)->Head()));
  return 0;
}
