// The segments projection's state as held in memory and stored (segments.h lists the keys).
// Shared by the projection (segments.cc) and its reads (read.cc). Not API.
#ifndef IHS_PROJECTIONS_SEGMENTS_STATE_H_
#define IHS_PROJECTIONS_SEGMENTS_STATE_H_

#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "projections/segments/evaluate.h"
#include "projections/segments/kept.h"
#include "schema/event.capnp.h"
#include "schema/segments.capnp.h"

namespace ihs::projections::segments {

// One touchpoint of a stream (key "T" stream 0 seq).
struct StoredTouch {
  uint64_t seq = 0;  // its number among the stream's touchpoints
  int64_t occurred = 0;
  uint64_t position = 0;
  std::array<char, 16> id{};  // the event id
  schema::Channel channel = schema::Channel::UNSPECIFIED;
  schema::Direction direction = schema::Direction::UNSPECIFIED;
  schema::TouchpointType type = schema::TouchpointType::UNSPECIFIED;
  std::vector<std::string> topics;
  std::string campaign, source;
  float sentiment = std::nanf("");
  uint64_t audience = 0;
  bool original = true;
  std::string thread;  // its thread as the timeline names it; empty: none
  bool company_reply = false;
  int64_t answered = 0;  // 0: unanswered
  bool retracted = false;

  absl::string_view event_id() const { return absl::string_view(id.data(), id.size()); }
};

struct ConsentState {
  schema::Channel channel = schema::Channel::UNSPECIFIED;
  bool given = false;
  uint64_t position = 0;
};

struct StreamRec {
  uint64_t first_position = 0;
  std::string person;
  schema::PartyKind kind = schema::PartyKind::UNSPECIFIED;
  std::string cohort;
  uint64_t profile_position = 0;  // 0: no profile
  std::vector<ConsentState> consents;
  uint64_t touch_count = 0;        // its touchpoints: StoredTouch::seq < touch_count
  std::vector<std::string> bands;  // the community clauses it is inside (SegStream.bands)
};

// A waiting message of a thread (SegWaiting).
struct Waiting {
  uint64_t seq = 0;
  int64_t occurred = 0;
  int64_t answered = 0;  // 0: unanswered
};

// What answers need of one thread of a stream (key "Y" stream 0 thread).
struct ThreadRec {
  std::vector<int64_t> replies;  // the company's, when each occurred, in the order recorded
  std::vector<Waiting> waiting;  // in the order recorded
};

struct MemberRec {
  std::string segment;
  int64_t since = 0;
  uint32_t version = 0;
};

struct PersonRec {
  std::vector<std::string> streams;                        // sorted
  std::vector<std::pair<std::string, std::string>> links;  // log order
  std::vector<MemberRec> members;                          // by segment name
  int64_t due = 0;                                         // next timer; 0: none
  // What the next evaluation starts from (SegPerson).
  uint64_t epoch = 0;
  Profile profile;
  std::vector<Kept> kept;     // by index
  std::vector<int64_t> dues;  // per live segment; 0: none
  // Not stored: per live segment, whether `members` holds it (1) or not (0), so that an
  // evaluation need not search `members` by name. Empty until Reevaluate makes it; emptied
  // wherever `members` or the live segments change other than by Reevaluate.
  std::vector<uint8_t> in;
};

// Keys (segments.h).
std::string StreamKey(absl::string_view stream);
std::string TouchKey(absl::string_view stream, uint64_t seq);
std::string EventIndexKey(absl::string_view stream, absl::string_view event_id);  // -> seq (8)
std::string ThreadKey(absl::string_view stream, absl::string_view thread);
std::string PersonKey(absl::string_view person);
// An unanswered condition's spilled messages (kept.h SpillStore): by slot, and the slot by id.
std::string SpillKey(absl::string_view person, uint32_t index, uint64_t slot);
std::string SpillIndexKey(absl::string_view person, uint32_t index, absl::string_view event_id);
// A spilled message: occurred (8) | due (8) | event id (16); never answered.
std::string EncodeSpilled(const KeptTouch& t);
absl::StatusOr<KeptTouch> DecodeSpilled(absl::string_view bytes);
std::string MemberKey(absl::string_view segment, absl::string_view person);
std::string CountKey(absl::string_view segment);
std::string HistoryKey(absl::string_view segment, absl::string_view person, uint64_t seq);
std::string HistoryPrefix(absl::string_view segment, absl::string_view person);
std::string FeedKey(uint64_t seq);
std::string TimerKey(int64_t due, absl::string_view person);
std::string DefinitionKey(uint64_t index);
inline constexpr char kDefinitionCountKey[] = "d";
inline constexpr char kTagKey[] = "g";
inline constexpr char kNextSeqKey[] = "n";

std::string EncodeStream(const StreamRec& s);
absl::StatusOr<StreamRec> DecodeStream(absl::string_view bytes);
std::string EncodeTouch(const StoredTouch& t);
absl::StatusOr<StoredTouch> DecodeTouch(absl::string_view bytes);
std::string EncodeThread(const ThreadRec& t);
absl::StatusOr<ThreadRec> DecodeThread(absl::string_view bytes);
std::string EncodePerson(const PersonRec& p);
absl::StatusOr<PersonRec> DecodePerson(absl::string_view bytes);
// A member key's value: since (8 bytes) | version (4 bytes).
std::string EncodeMember(int64_t since, uint32_t version);
absl::StatusOr<MemberRec> DecodeMember(absl::string_view bytes);

// The packed bytes (Encode) of a Transition built with seq 0 (as the projection builds one: its
// root struct the first allocation, in a first segment that holds it), made those of the same
// message built with `seq`. Capnp's packing writes each word as a tag byte that names its non-zero
// bytes and then those bytes; a zero word's tag is followed by how many zero words come after it,
// an all-non-zero word's by how many raw words do. The seq is the word after the segment table and
// the root pointer (schema Transition.seq @0 is the root struct's first data word): packed as
// zero, it is two bytes, 0 and a count, that become the seq's own tag and bytes (and a zero run
// one shorter). nullopt where that does not hold (a word before it packed as all zero or all
// non-zero, or a seq with no zero byte): decode and encode again.
std::optional<std::string> PatchPackedSeq(absl::string_view packed, uint64_t seq);
// The same by decoding and encoding again.
std::string ReencodeWithSeq(absl::string_view held, uint64_t seq);
// PatchPackedSeq, or ReencodeWithSeq where it cannot.
std::string WithSeq(absl::string_view held, uint64_t seq);

// The touchpoint as the evaluator takes it.
Touch ToTouch(const StoredTouch& t);

}  // namespace ihs::projections::segments

#endif  // IHS_PROJECTIONS_SEGMENTS_STATE_H_
