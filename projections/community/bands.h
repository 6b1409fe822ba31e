// The band appender (docs/community.md "Bands"): for every condition on community figures that
// a live segment's rule names ("community value in top 5%", "community risk > 10000"), it
// publishes who is inside, as communityBand events on "$community": one when a person comes
// inside, one when they go outside. The segments projection folds these events like any other,
// so its memberships stay a function of the log alone, and a rebuild gives the same bytes.
//
// Each event's id is a function of the clause, the person and how many band events of theirs for
// that clause the community projection has folded, so a pass tried again after a crash lands
// nothing twice. ihsd runs one (Start); `ihs community publish --data DIR` runs passes until
// nothing changes. A pass costs the persons inside each clause (a scan of the index), not the
// number of persons.
#ifndef IHS_PROJECTIONS_COMMUNITY_BANDS_H_
#define IHS_PROJECTIONS_COMMUNITY_BANDS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/log.h"
#include "projections/follower.h"
#include "projections/runner.h"
#include "projections/segments/rule.h"
#include "store/event_store.h"

namespace ihs::projections::community {

inline constexpr char kBandSource[] = "ihs-community";

struct BandReport {
  uint64_t appended = 0;  // band events appended
  uint64_t present = 0;   // band events the log held already
  uint64_t passes = 0;
  size_t clauses = 0;  // community conditions of live segments
};

// One person inside a clause: their figure and rank, among `ranked` persons with that figure.
struct Inside {
  std::string person;
  double figure = 0;
  uint64_t rank = 0, ranked = 0;
};

// The persons inside `c` (a community condition) in the projection's state, best first.
absl::Status ForEachInside(const StateView& view, const segments::Condition& c,
                           const std::function<void(const Inside&)>& visit);

// The id of the `n`th band event (from 0) of `party` for `clause`.
std::string BandEventId(const std::string& clause, const std::string& party, uint64_t n);

class BandAppender {
 public:
  // The store and runner (which runs the community projection) must outlive the appender.
  BandAppender(store::EventStore& store, Runner& runner, LogSink* log = DefaultLog());
  BandAppender(const BandAppender&) = delete;
  BandAppender& operator=(const BandAppender&) = delete;

  // Follows the projection on a thread of its own until Stop (Follower).
  void Start();
  void Stop();

  // One pass against the projection as it stands (call CatchUp first when no worker runs).
  absl::StatusOr<BandReport> RunOnce();
  // Catches the projection up and runs passes until one appends nothing, at most `max_passes`.
  absl::StatusOr<BandReport> RunUntilSettled(int max_passes = 8);

 private:
  // The community conditions of live segments, read again when "$segments" has changed.
  absl::StatusOr<const std::vector<segments::Condition>*> Clauses();

  store::EventStore& store_;
  Runner& runner_;
  int64_t segments_version_ = -2;  // of "$segments" when clauses_ was read (-1: no stream)
  std::vector<segments::Condition> clauses_;
  Follower follower_;
};

}  // namespace ihs::projections::community

#endif  // IHS_PROJECTIONS_COMMUNITY_BANDS_H_
