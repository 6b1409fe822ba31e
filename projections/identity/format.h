// The identity projection's state as held in memory and stored (identity.h lists the keys).
// Shared by the projection (identity.cc) and its reads (read.cc). Not API.
#ifndef IHS_PROJECTIONS_IDENTITY_FORMAT_H_
#define IHS_PROJECTIONS_IDENTITY_FORMAT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "schema/identity.capnp.h"

namespace ihs::projections::identity {

using schema::ClueKind;
using schema::PairState;

struct StreamClue {
  std::string key;  // kind | 16-byte keyed hash
  std::string event;
  std::vector<uint32_t> classes;   // sorted
  std::vector<uint64_t> variants;  // names: the whole name's hash first, then one letter out
  ClueKind kind() const { return static_cast<ClueKind>(static_cast<uint8_t>(key[0])); }
};

struct Node {
  uint64_t first_position = 0;
  std::string person;
  std::vector<StreamClue> clues;
  std::vector<std::string> partners;  // sorted
};

struct ClueEvidence {
  ClueKind kind = ClueKind::UNSPECIFIED;
  float weight = 0;
  std::vector<std::string> events;
};

struct PairRec {
  std::vector<std::pair<std::string, std::string>> follow_ups;  // (message, follow-up)
  PairState decision = PairState::UNSPECIFIED;
  float score = 0;
  PairState state = PairState::UNSPECIFIED;
  int64_t at = 0;
};

struct Link {
  std::string a, b, event_id;
  uint64_t position = 0;
  bool inferred = false;
  float confidence = 0;
  std::vector<ClueEvidence> clues;
  std::string reason;
};

struct PersonRec {
  std::string id;
  std::vector<std::string> streams;  // sorted
  std::vector<Link> links;           // in log order
};

struct Members {
  std::vector<std::string> streams;
  uint64_t count = 0;
};

struct Counters {
  uint64_t explicit_links = 0, inferred_links = 0, unlinks = 0, streams = 0;
};

inline constexpr size_t kMaxMembersKept = 4096;
inline constexpr uint64_t kMaxIdentifying = 16;  // a clue of more streams identifies nobody

std::string StreamKey(absl::string_view stream);
std::string PairKey(char prefix, absl::string_view a, absl::string_view b);
std::pair<std::string, std::string> SplitPairKey(absl::string_view key);  // after the prefix
std::string PersonKey(absl::string_view person);
std::string MembersKey(absl::string_view clue);
inline constexpr char kCountersKey[] = "N";

std::string EncodeNode(const Node& n);
absl::StatusOr<Node> DecodeNode(absl::string_view bytes);
std::string EncodePair(const PairRec& p);
absl::StatusOr<PairRec> DecodePair(absl::string_view bytes);
std::string EncodePerson(const PersonRec& p);
absl::StatusOr<PersonRec> DecodePerson(absl::string_view bytes);
std::string EncodeMembers(const Members& m);
absl::StatusOr<Members> DecodeMembers(absl::string_view bytes);
std::string EncodeCounters(const Counters& c);
absl::StatusOr<Counters> DecodeCounters(absl::string_view bytes);

void ToClue(const ClueEvidence& c, schema::IdentityClue::Builder b);
void ToPerson(const PersonRec& p, schema::Person::Builder b);

// The evidence that joins two streams: the clues both showed (less those shown by too many
// streams: `common` answers for a clue key), names, and follow-ups; and its score.
struct Score {
  float score = 0;
  std::vector<ClueEvidence> clues;
};
Score ScorePair(const Node& a, const Node& b, const PairRec& pair,
                absl::FunctionRef<bool(absl::string_view)> is_common);

}  // namespace ihs::projections::identity

#endif  // IHS_PROJECTIONS_IDENTITY_FORMAT_H_
