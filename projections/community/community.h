// The community projection: how far each person's voice carries (docs/community.md). From the
// public touchpoints of the log it keeps the cascades of posts (a share or mention names the post
// it carries by causationId), each person's reach (the audiences of their original posts and of
// every carry down the cascade, a retracted post's taken back), how often and how deep others
// carry them, and the interaction graph: who carried or reacted to whose posts. A person is all
// the streams identity links join; it folds the identityLink events itself, as segments does.
//
// Keys of its state family (stream ids never hold a 0 byte):
//   "S" stream                 -> CommunityStream
//   "P" person                 -> CommunityPerson, for a person of more than one stream
//   "T" event id (16)          -> CommunityPost: a public post, original or carried
//   "A" stream 0 event id (16) -> "": the stream's posts (the evidence, and erasure)
//   "E" target 0 source        -> CommunityEdge: source carried or reacted to target's posts
//   "O" source 0 target        -> "": the same edge from the source's side (erasure)
//   "R" ~reach (8) person      -> "": persons with reach > 0, most first
//   "X"                        -> CommunityCounters
#ifndef IHS_PROJECTIONS_COMMUNITY_COMMUNITY_H_
#define IHS_PROJECTIONS_COMMUNITY_COMMUNITY_H_

#include <capnp/message.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "projections/projection.h"
#include "projections/runner.h"
#include "schema/community.capnp.h"

namespace ihs::projections::community {

inline constexpr char kName[] = "community";
// A cascade deeper than this counts for nobody (docs/community.md "Bad input"): the work of a
// carry is bounded by it.
inline constexpr uint32_t kMaxDepth = 64;
// The reach by day is kept for this many days back from a stream's latest original post.
inline constexpr int32_t kKeptDays = 120;
inline constexpr int32_t kRecentDays = 90;
inline constexpr size_t kMaxTop = 10000;
inline constexpr size_t kEvidence = 10;
// The network standing (docs/community.md "Standing"): a walk stops with this chance at each
// step (PageRank's damping is 1 - kReset); residuals above kPushThreshold are pushed, at most
// kMaxPushes per event.
inline constexpr double kReset = 0.15;
inline constexpr double kPushThreshold = 0.25;
inline constexpr size_t kMaxPushes = 20000;

// The chance a person takes a message that waits public (docs/community.md "Audience at
// risk"): their own rate under a Beta(1, 4) prior, so 0.2 for a person with no history.
double PublicChance(uint32_t waited, uint32_t went_public);

// The audience at risk (docs/community.md "Audience at risk"): what a message taken public would
// reach, from the person's history of being carried: their largest own audience, and what others
// carried directly per original post of theirs; 0 without posts (nothing known).
double AudienceAtRisk(uint64_t own_audience, uint64_t carried_audience, uint32_t posts);

// What `top` ranks by.
enum class TopBy { kReach, kStanding, kValue, kRisk };
// From its wire form (schema::CommunityRank; unspecified: reach).
TopBy TopByOf(schema::CommunityRank rank);

std::unique_ptr<Projection> NewCommunityProjection();

// The person of `party` as of `as_of` (µs; the 90-day reach is counted to it) into `out` (root
// CommunityCard): figures, rank and evidence. kNotFound: the log has no such stream.
absl::Status ReadCard(const StateView& view, const std::string& party, int64_t as_of,
                      capnp::MessageBuilder& out);

// The `n` (1..kMaxTop) persons of most reach into `out` (root CommunityTop).
absl::Status ReadTop(const StateView& view, size_t n, TopBy by, capnp::MessageBuilder& out);

// The post with this event id (16 bytes): its audience, what its cascade reached (retracted:
// what it had reached), the audiences of its direct carries and its depth (0: an original);
// nullopt if the projection holds no such post.
struct PostFigures {
  uint64_t audience = 0, cascade = 0, direct = 0;
  uint32_t depth = 0;
  bool retracted = false;
};
absl::StatusOr<std::optional<PostFigures>> ReadPost(const StateView& view, const std::string& id);

// Every post of `stream` (originals and carries), by event id, with its figures.
absl::Status ForEachPostOf(
    const StateView& view, const std::string& stream,
    const std::function<void(const std::string&, const PostFigures&)>& visit);

// Every stream of the amplification graph, with its person, its standing's estimate and its carry
// edges (targets by name, with how often it carried them), in stream order until `visit` returns
// false; for tests and benchmarks that compute the standing exactly.
struct GraphStream {
  std::string stream, person;
  double standing = 0;
  std::vector<std::pair<std::string, uint64_t>> out;
};
absl::Status ForEachGraphStream(const StateView& view,
                                const std::function<bool(const GraphStream&)>& visit);

}  // namespace ihs::projections::community

#endif  // IHS_PROJECTIONS_COMMUNITY_COMMUNITY_H_
