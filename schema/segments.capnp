# Segment definitions as reads return them, over RPC and (through capnp::JsonCodec) as
# `ihs segments list --json` (docs/segments.md). The definitions themselves are events
# (event.capnp SegmentDefinition on "$segments"). Evolution rules as in event.capnp.

@0xfcaad15083c8bb17;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ihs::schema");
using Ev = import "event.capnp";

enum SegmentOp {
  unspecified @0;
  define @1;     # a new segment (or a retired name defined again)
  change @2;     # a new version of a live segment
  retire @3;
}

struct SegmentVersion {
  version @0 :UInt32;      # from 1, per name
  rule @1 :Text;           # canonical text; empty when retired
  description @2 :Text;
  retired @3 :Bool;
  requestedBy @4 :Text;
  position @5 :UInt64;     # of the definition's event
  recordedAt @6 :Int64;    # µs since the epoch
}

struct SegmentInfo {
  name @0 :Text;
  versions @1 :List(SegmentVersion);  # oldest first; the last is the current one
}

struct RejectedDefinition {
  # A definition event that a plain append let through and that the checks refuse; it changes
  # nothing.
  position @0 :UInt64;
  name @1 :Text;
  reason @2 :Text;
}

struct SegmentList {
  segments @0 :List(SegmentInfo);       # by name, after `after`, at most `limit`
  rejected @1 :List(RejectedDefinition);  # on the first page only
  streamVersion @2 :Int64;              # of "$segments" as read (-1: nothing defined)
}

# --- membership, as reads return it (docs/segments.md "Membership") ---------------------------

enum TransitionCause {
  unspecified @0;
  event @1;       # a touchpoint, profile or consent of the person
  clock @2;       # time passed: a window slid, a message waited long enough
  definition @3;  # the segment was defined, changed or retired
  identity @4;    # the person's streams were linked or unlinked
  erasure @5;     # content-derived facts went with an erasure
}

struct Clause {
  # One condition of the rule as it stood at the transition.
  text @0 :Text;              # the condition's canonical text
  holds @1 :Bool;
  value @2 :Float64;          # count and sum: the aggregate; unanswered: messages waiting
  events @3 :List(Data);      # (JSON: hex) the touchpoints behind it, latest first, at most 8
}

struct Transition {
  seq @0 :UInt64;             # from 0, over all segments: the order subscribers see
  segment @1 :Text;
  person @2 :Text;            # the person's id: the stream of theirs the log saw first
  at @3 :Int64;               # µs since the epoch: the moment membership changed
  entered @4 :Bool;           # false: left
  version @5 :UInt32;         # of the definition that decided it (retirement: the retiring one)
  cause @6 :TransitionCause;
  position @7 :UInt64;        # the event that caused it (clock: the log's size then)
  clauses @8 :List(Clause);   # empty for a retirement or a person merged into another
}

struct Membership {
  segment @0 :Text;
  person @1 :Text;
  since @2 :Int64;            # µs since the epoch
  version @3 :UInt32;
}

struct MemberPage {
  segment @0 :Text;
  asOf @1 :Int64;             # 0: now
  count @2 :UInt64;           # members at that moment
  members @3 :List(Membership);  # by person id after `after`, at most `limit`
  more @4 :Bool;
}

struct PartySegments {
  party @0 :Text;
  person @1 :Text;
  streams @2 :List(Text);     # the person's streams
  asOf @3 :Int64;             # 0: now
  segments @4 :List(Membership);  # by segment name
}

struct SegmentWhy {
  party @0 :Text;
  person @1 :Text;
  segment @2 :Text;
  asOf @3 :Int64;             # 0: now
  member @4 :Bool;
  transitions @5 :List(Transition);  # the person's in this segment, oldest first, up to asOf
}

struct TransitionPage {
  transitions @0 :List(Transition);
  scannedTo @1 :UInt64;       # every transition below this seq was delivered or filtered out
}

# --- the segments projection's own state (docs/format.md "Segments") --------------------------

struct SegTouch {
  occurred @0 :Int64;
  position @1 :UInt64;
  eventId @2 :Data;
  channel @3 :Ev.Channel;
  direction @4 :Ev.Direction;
  type @5 :Ev.TouchpointType;
  topics @6 :List(Text);
  campaign @7 :Text;
  source @8 :Text;
  sentiment @9 :Float32 = nan;
  audience @10 :UInt64;
  original @11 :Bool;
  thread @12 :Text;           # its thread as the timeline names it (empty: none); version 2-4
                              # used threadIndex instead
  companyReply @13 :Bool;
  answered @14 :Int64;        # inbound messages: when the answer occurred; 0 while unanswered
  retracted @15 :Bool;        # withdrawn: counts for nothing, but still names its thread and
                              # answers what it answered (as in the timeline)
  threadIndex @16 :UInt32;    # unused since version 5 (thread)
  seq @17 :UInt64;            # its number among the stream's touchpoints, from 0 (its key's)
}

# The touchpoints of one stream's thread that answers concern: the company's replies and the
# messages that wait for one (schema/touchpoint.h), in the order recorded.
struct SegThread {
  replies @0 :List(Int64);    # when each of the company's replies occurred
  waiting @1 :List(SegWaiting);
}

struct SegWaiting {
  seq @0 :UInt64;             # SegTouch.seq
  occurred @1 :Int64;
  answered @2 :Int64;         # when its answer occurred; 0 while unanswered
}

struct SegConsent {
  channel @0 :Ev.Channel;
  given @1 :Bool;
  position @2 :UInt64;
}

struct SegStream {
  firstPosition @0 :UInt64;
  person @1 :Text;
  kind @2 :Ev.PartyKind;
  cohort @3 :Text;
  profilePosition @4 :UInt64;  # of the profile event that set them (0: none)
  consents @5 :List(SegConsent);
  touches @6 :List(SegTouch);   # unused since version 5: one key per touchpoint ("T")
  threads @7 :List(Text);       # unused since version 5: one key per thread ("Y")
  bands @8 :List(Text);         # the community clauses its latest communityBand events say it is
                                # inside, sorted
  touchCount @9 :UInt64;        # its touchpoints: keys "T" stream 0 seq for seq < touchCount
}

struct SegLink {
  a @0 :Text;
  b @1 :Text;
}

struct SegPerson {
  streams @0 :List(Text);     # sorted
  links @1 :List(SegLink);    # the links that join them, in log order
  members @2 :List(Membership);  # the segments the person is in now, by name
  due @3 :Int64;              # the person's next timer (0: none)
  # What the person's next evaluation starts from (projections/segments/kept.h), made for the
  # live rules as of definition `epoch` (a count of definition events; another: made again
  # from the streams).
  epoch @4 :UInt64;
  kind @5 :Text;              # the profile that speaks for the person
  cohort @6 :Text;
  consent @7 :List(SegFlag);  # by channel name
  kept @8 :List(SegKept);     # by condition, for the conditions that hold anything
  dues @9 :List(Int64);       # per live segment in evaluation order: its next change (0: none)
  community @10 :List(Text);  # the community clauses any of its streams is inside, sorted
}

struct SegFlag {
  name @0 :Text;
  on @1 :Bool;
}

struct SegKeptTouch {
  occurred @0 :Int64;
  due @1 :Int64;
  answered @2 :Int64;         # 0: not answered
  value @3 :Float64;
  id @4 :Data;
}

struct SegKept {
  index @0 :UInt32;           # the condition: its place among the live rules' conditions over
                              # touchpoints, in evaluation order
  count @1 :UInt64;
  sum @2 :Float64;
  touches @3 :List(SegKeptTouch);
  latest @4 :List(SegKeptTouch);
  # unanswered: the waiting messages spilled to keys "K" and "V" (projections/segments/kept.h
  # SpillStore): how many, the slots used (holes included), and the latest of them.
  spilled @5 :UInt64;
  slots @6 :UInt64;
  top @7 :SegKeptTouch;
}
