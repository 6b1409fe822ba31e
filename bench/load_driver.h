// What the load drivers share (rpc_load, cluster_load): writers on threads for a bounded time,
// each calling its target in a loop, and the throughput and latency percentiles they saw.
#ifndef IHS_BENCH_LOAD_DRIVER_H_
#define IHS_BENCH_LOAD_DRIVER_H_

#include <capnp/message.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "server/client.h"
#include "store/types.h"

namespace ihs::bench {

// One append of events, owned by its builder.
struct Batch {
  capnp::MallocMessageBuilder mb;
  store::StreamAppend append;
};

struct LoadResult {
  double events_per_s = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0;
  bool failed = false;  // an append failed (printed on stderr); the figures are of what ran
};

inline double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

// The flags every load driver takes.
struct LoadFlags {
  double seconds = 3;
  bool json = false;
  std::string dir;   // scratch, removed first
  std::string ihsd;  // the binary
};

inline void AddLoadFlags(CLI::App& app, LoadFlags& f) {
  app.add_option("--seconds", f.seconds, "per case (default 3)")->check(CLI::Range(0.5, 60.0));
  app.add_flag("--json", f.json, "also print one JSON object per case");
  app.add_option("--dir", f.dir, "scratch directory (removed first)");
  app.add_option("--ihsd", f.ihsd, "the ihsd binary");
}

// The first line of a driver's output: which build measured (a debug build is not published).
inline void PrintBuild(const char* program, const char* build_type) {
#ifndef NDEBUG
  std::printf("%s: build %s (ASSERTIONS ON: do not publish)\n", program, build_type);
#else
  std::printf("%s: build %s\n", program, build_type);
#endif
}

// A client of ihsd at `address`, or the driver ends with exit code 5.
inline std::unique_ptr<client::Client> ConnectOrExit(const std::string& address,
                                                     const char* program) {
  auto c = client::Client::Connect({address, "bench"});
  if (!c.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, c.status().ToString().c_str());
    std::exit(5);
  }
  return std::move(*c);
}

// Runs `threads` writers for `seconds`. Writer w opens its context with target.Open(w), then
// appends make(w, seq) for seq = 0, 1, ... through target.Append(ctx, append) until the time is
// up or an append fails. Each batch counts batch->append.events.size() events.
template <typename Target, typename MakeFn>
LoadResult Drive(int threads, absl::Duration seconds, Target& target, MakeFn make) {
  std::vector<std::vector<double>> lat(threads);
  std::atomic<uint64_t> events{0};
  std::atomic<bool> failed{false};
  const absl::Time start = absl::Now();
  const absl::Time end = start + seconds;
  std::vector<std::thread> ts;
  for (int w = 0; w < threads; ++w) {
    ts.emplace_back([&, w] {
      auto ctx = target.Open(w);
      for (uint64_t seq = 0; absl::Now() < end && !failed; ++seq) {
        std::unique_ptr<Batch> b = make(w, seq);
        const absl::Time t0 = absl::Now();
        absl::Status s = target.Append(ctx, b->append);
        if (!s.ok()) {
          std::fprintf(stderr, "load: append failed: %s\n", s.ToString().c_str());
          failed = true;
          return;
        }
        lat[w].push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
        events += b->append.events.size();
      }
    });
  }
  for (auto& t : ts) t.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  LoadResult r;
  r.events_per_s = events / secs;
  r.p50_us = Percentile(all, 0.50);
  r.p99_us = Percentile(all, 0.99);
  r.p999_us = Percentile(all, 0.999);
  r.failed = failed;
  return r;
}

}  // namespace ihs::bench

#endif  // IHS_BENCH_LOAD_DRIVER_H_
