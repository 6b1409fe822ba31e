// Segment definitions: the `segmentDefinition` events of the stream "$segments", folded into the
// set of segments and their versions (docs/segments.md "Definitions"), and the checked appends
// of `ihs segments define|change|retire` (and, later, their RPC calls), so that every way in
// checks the same things. Nothing is appended when a check fails.
//
// The fold is a pure function of the stream: a definition that a plain append let through and
// that fails the checks (a rule that does not parse, an unknown or retired segment named, a
// cycle, a change of a segment that does not exist) is kept as rejected, with the reason, and
// changes nothing. Thread-compatible.
#ifndef IHS_PROJECTIONS_SEGMENTS_DEFINITIONS_H_
#define IHS_PROJECTIONS_SEGMENTS_DEFINITIONS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "projections/segments/rule.h"
#include "schema/event.capnp.h"
#include "schema/segments.capnp.h"
#include "store/event_store.h"

namespace ihs::projections::segments {

// One version of a segment's definition.
struct Version {
  uint32_t version = 0;  // from 1, per name
  std::string rule;      // canonical text; empty when retired
  std::string description;
  bool retired = false;
  std::string requested_by;
  uint64_t position = 0;           // of the event in the log
  int64_t recorded_at = 0;         // µs since the epoch
  std::string event_id;            // 16 bytes
  std::vector<std::string> named;  // the segments the rule names (SegmentsNamed)
};

// At most this many names ever defined: a writer's definitions cannot make the checks, which
// look at every segment, grow without bound.
inline constexpr size_t kMaxSegments = 10000;

struct Segment {
  std::string name;
  std::vector<Version> versions;  // oldest first
  const Version& current() const { return versions.back(); }
  bool live() const { return !versions.empty() && !versions.back().retired; }
};

// A definition event the fold refused, and why.
struct Rejected {
  uint64_t position = 0;
  std::string name;
  std::string reason;
};

class Definitions {
 public:
  // Folds one event of "$segments" (in stream order); other kinds of event are ignored.
  void Apply(const schema::Event::Reader& event);

  // The segment, or nullptr.
  const Segment* Find(const std::string& name) const;
  const std::map<std::string, Segment>& all() const { return segments_; }
  const std::vector<Rejected>& rejected() const { return rejected_; }
  // The version of "$segments" folded so far (-1: none).
  int64_t stream_version() const { return stream_version_; }

  // Checks a new version of `name`: kInvalidArgument for a rule that does not parse or names an
  // unknown or retired segment or itself through others (the message names the cycle), or a
  // retirement of a segment that other live segments name; kNotFound for a change or retirement
  // of a segment that is not live; kAlreadyExists for a define of a live name. Returns the
  // rule's canonical text. kInvalidArgument for a new name beyond kMaxSegments.
  enum class Op { kDefine, kChange, kRetire };
  absl::StatusOr<std::string> Check(Op op, const std::string& name, const std::string& rule) const;

 private:
  std::map<std::string, Segment> segments_;
  std::vector<Rejected> rejected_;
  int64_t stream_version_ = -1;
};

// Reads "$segments" from the store and folds it.
absl::StatusOr<Definitions> ReadDefinitions(store::EventStore& store);

// A page of the definitions as reads return them: the segments by name after `after` ("" from
// the start), at most `limit`; the rejected definitions with the first page.
void ToList(const Definitions& d, const std::string& after, size_t limit,
            schema::SegmentList::Builder out);

// The op of an RPC request; kInvalidArgument for unspecified or unknown. SchemaOp is the other
// way, for the client.
absl::StatusOr<Definitions::Op> OpOf(schema::SegmentOp op);
schema::SegmentOp SchemaOp(Definitions::Op op);

struct DefineRequest {
  Definitions::Op op = Definitions::Op::kDefine;
  std::string name;
  std::string rule;          // define and change
  std::string description;   // a change without one keeps the current description
  std::string requested_by;  // required: the operator, or the RPC token's name
  std::string source_system = "operator";
};

struct DefineResult {
  uint64_t position = 0;
  uint32_t version = 0;
  std::string rule;  // canonical
};

// Checks the request against the definitions as the store holds them and appends it, expecting
// the version of "$segments" it checked against (a concurrent definition makes it check again).
// Errors: those of Definitions::Check; kInvalidArgument for a name that is not [a-z0-9_]{1,64}
// or an empty requested_by.
absl::StatusOr<DefineResult> AppendDefinition(store::EventStore& store,
                                              const DefineRequest& request);

}  // namespace ihs::projections::segments

#endif  // IHS_PROJECTIONS_SEGMENTS_DEFINITIONS_H_
