// The community projection's records in plain values, their keys and codecs (community.h).
#ifndef IHS_PROJECTIONS_COMMUNITY_STATE_H_
#define IHS_PROJECTIONS_COMMUNITY_STATE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "projections/community/community.h"
#include "schema/event.capnp.h"

namespace ihs::projections::community {

struct StreamRec {
  std::string person;  // empty: a person of its own
  uint64_t first_position = 0;
  uint64_t reach = 0;
  uint32_t posts = 0;
  uint64_t carried = 0, reactions = 0;
  uint32_t max_depth = 0;
  std::vector<std::pair<int32_t, uint64_t>> days;  // by day, ascending
  bool erased = false;
  uint64_t anonymous_in = 0;
  // The amplification graph (community.cc "Standing").
  double standing = 0, residual = 0;
  bool in_graph = false;
  std::vector<std::pair<std::string, uint64_t>> out;  // by target
  uint64_t out_total = 0;
  double value = 0;  // its person's, when it is a person of its own
  uint32_t waited = 0, went_public = 0;
  double risk = 0;                // its person's, when it is a person of its own
  double indexed_standing = 0;    // its person's standing as the index holds it (lone)
  uint64_t own_audience = 0;      // the largest audience of its own posts
  uint64_t carried_audience = 0;  // the audiences of direct carries of its originals by others
  uint64_t indexed_reach = 0;     // its person's reach as the index holds it (lone)
};

struct PostRec {
  std::string author;
  std::string root, parent;  // event ids (16 bytes); parent empty for an original
  uint32_t depth = 0;
  uint64_t audience = 0, cascade = 0;
  bool retracted = false;
  int64_t occurred_at = 0;
  uint32_t carries = 0;
  schema::TouchpointType type = schema::TouchpointType::UNSPECIFIED;
  schema::Channel channel = schema::Channel::UNSPECIFIED;
  uint64_t direct = 0;  // the audiences of its direct carries
};

struct PersonRec {
  std::vector<std::string> streams;
  std::vector<std::pair<std::string, std::string>> links;
  uint64_t reach = 0;
  double standing = 0;
  uint32_t posts = 0;
  double value = 0;
  uint32_t waited = 0, went_public = 0;
  double risk = 0;
  double indexed_standing = 0;  // as the index holds it
  uint64_t indexed_reach = 0;   // as the index holds it
};

struct EdgeRec {
  uint64_t shares = 0, mentions = 0, likes = 0, other = 0, follows = 0;
  int64_t last_at = 0;
  uint64_t total() const { return shares + mentions + likes + other + follows; }
};

struct Counters {
  uint64_t persons = 0, unknown_targets = 0, too_deep = 0, dead_carries = 0, anonymous_edges = 0,
           foreign_retractions = 0, nodes = 0, pushes = 0, capped_events = 0, standing_persons = 0,
           value_persons = 0, risk_persons = 0;
};

// What the projection folded of a person's communityBand events for one clause: whether the
// latest says inside, and how many there were (the next one's id is a function of it).
struct BandRec {
  bool inside = false;
  uint64_t count = 0;
};
// "B" clause 0 party -> BandRec.
std::string BandKey(absl::string_view clause, absl::string_view party);
std::string BandPrefix(absl::string_view clause);
std::string EncodeBand(const BandRec& b);
absl::StatusOr<BandRec> DecodeBand(absl::string_view v);

inline constexpr char kCountersKey[] = "X";
// The counters as `view` holds them (none yet: all 0).
absl::StatusOr<Counters> LoadCounters(const StateView& view);
std::string StreamKey(absl::string_view stream);
std::string PersonKey(absl::string_view person);
std::string PostKey(absl::string_view id);
std::string AuthoredKey(absl::string_view stream, absl::string_view id);
std::string AuthoredPrefix(absl::string_view stream);
std::string EdgeKey(absl::string_view target, absl::string_view source);
std::string EdgePrefix(absl::string_view target);
std::string OutKey(absl::string_view source, absl::string_view target);
std::string OutPrefix(absl::string_view source);
std::string RankKey(uint64_t reach, absl::string_view person);
// "Q" ~standing (in thousandths) person: persons in the graph, most standing first.
std::string StandingKey(double standing, absl::string_view person);
// "V" ~value (in thousandths) person: persons with a community value, most first.
std::string ValueKey(double value, absl::string_view person);
// Community value (docs/community.md "Value"): what one post reaches on average, cascade
// included, times the standing (at least 1); 0 without posts.
double CommunityValue(uint64_t reach, uint32_t posts, double standing);
// "K" ~risk (in thousandths) person: persons with an audience at risk, most first.
std::string RiskKey(double risk, absl::string_view person);
// The end of the keys that start with `prefix`.
std::string PrefixEnd(absl::string_view prefix);

std::string EncodeStream(const StreamRec& s);
absl::StatusOr<StreamRec> DecodeStream(absl::string_view bytes);
std::string EncodePost(const PostRec& p);
absl::StatusOr<PostRec> DecodePost(absl::string_view bytes);
std::string EncodePerson(const PersonRec& p);
absl::StatusOr<PersonRec> DecodePerson(absl::string_view bytes);
std::string EncodeEdge(const EdgeRec& e);
absl::StatusOr<EdgeRec> DecodeEdge(absl::string_view bytes);
std::string EncodeCounters(const Counters& c);
absl::StatusOr<Counters> DecodeCounters(absl::string_view bytes);

}  // namespace ihs::projections::community

#endif  // IHS_PROJECTIONS_COMMUNITY_STATE_H_
