# The RPC contract of ihsd (docs/rpc.md). Events travel as the same `Event` struct that the store
# keeps, so there is one definition of an event on disk, in JSON and on the wire.
#
# Security is by capability (DESIGN.md decision 7): the bootstrap object, a Gateway, can only
# log in. A token yields a capability of one role, and what a role may not do its capability does
# not have:
#   Writer   append, appendMulti, and the plain reads (Reads)
#   Reader   Reads, plus subscribe, the timeline and summary of a party, projection status
#   Auditor  Reader, plus the Merkle root, signed tree heads and proofs (docs/audit.md)
#   Admin    Writer and Auditor, plus server status, projection rebuilds, erasure and holds
#
# Errors a client must tell apart are typed results (`Error`, a union arm of every result), not
# exception text. Exceptions are left for the transport: DISCONNECTED, and UNIMPLEMENTED when a
# client casts a capability to a role it was not given (the client library reports that as
# permission denied).
#
# Evolution: as schema/event.capnp: add fields, methods and enumerants only with higher ordinals.

@0xa9b0c4d1e2f30718;

using Cxx = import "/capnp/c++.capnp";
using Ev = import "event.capnp";
using Tl = import "timeline.capnp";
using Id = import "identity.capnp";
using Sg = import "segments.capnp";
using Cm = import "community.capnp";
$Cxx.namespace("ihs::rpc");

enum Role {
  unspecified @0;
  writer @1;
  reader @2;
  auditor @3;
  admin @4;
}

enum ErrorKind {
  unspecified @0;
  versionConflict @1;    # the expected version did not match: `currentVersion` has the stream's
  badInput @2;           # the request is malformed or out of range: `field` names what
  unauthenticated @3;    # no such token
  permissionDenied @4;   # the role may not do this
  overloaded @5;         # too many calls in flight on this connection, or the server is busy:
                         # back off and retry
  notFound @6;           # no such stream
  alreadyExists @7;      # an event id is stored with other content
  outOfRange @8;         # past the log's end
  unavailable @9;        # the store failed, or the server is shutting down
  dataLoss @10;          # stored bytes do not verify
  internal @11;          # a bug in ihsd
  failedPrecondition @12;  # the party's state forbids it (under legal hold, already erased), or
                           # the store's (open for reading only, no signing key)
  unimplemented @13;     # this server does not do this: a node of a cluster (ihsd --cluster)
                         # does not serve what needs a single log (docs/scale.md)
}

struct Error {
  kind @0 :ErrorKind;
  message @1 :Text;        # for people: names the problem
  field @2 :Text;          # badInput: the request field at fault, when known (e.g. "limit")
  currentVersion @3 :Int64;  # versionConflict: the stream's current version; -1: no stream
}

enum ExpectedKind {
  unspecified @0;        # refused: say what you expect
  any @1;
  noStream @2;
  streamExists @3;
  exact @4;              # `version` is the stream's last version
}

struct Expected {
  kind @0 :ExpectedKind;
  version @1 :UInt64;
}

struct StreamAppend {
  # The events of one stream for one append (store::StreamAppend).
  stream @0 :Text;
  expected @1 :Expected;
  events @2 :List(Ev.Event);   # as for the store: no store-set fields, content in the clear
}

struct Appended {
  positions @0 :List(UInt64);  # of each event, in request order
  versions @1 :List(UInt64);
  duplicate @2 :Bool;          # every id was already stored: nothing written, original positions
}

struct AppendResult {
  union {
    ok @0 :Appended;
    error @1 :Error;
  }
}

struct AppendMultiResult {
  union {
    ok @0 :List(Appended);     # one per StreamAppend, in request order
    error @1 :Error;
  }
}

enum ContentState {
  unspecified @0;
  none @1;               # the event carries no personal content
  sealed @2;             # not opened: openContent was false
  open @3;               # `content` holds it
  erased @4;             # the party's data key is gone
}

struct ReadEvent {
  position @0 :UInt64;
  event @1 :Ev.Event;          # exactly as stored: content sealed, store-set fields filled in
  contentState @2 :ContentState;
  content @3 :Ev.Content;      # when contentState is open
}

struct ReadResult {
  union {
    ok @0 :List(ReadEvent);    # may be shorter than asked (limits in docs/rpc.md): go on from
                               # the next version or position; empty at the end
    error @1 :Error;
  }
}

struct StreamInfo {
  stream @0 :Text;
  eventCount @1 :UInt64;
  currentVersion @2 :UInt64;
  firstPosition @3 :UInt64;
  lastPosition @4 :UInt64;
  firstOccurredAt @5 :Int64;
  lastOccurredAt @6 :Int64;
  held @7 :Bool;               # a legal hold is in force, placed at heldSince
  heldSince @8 :UInt64;
  erased @9 :Bool;             # the party was erased at erasedAt
  erasedAt @10 :UInt64;
}

struct StreamInfoResult {
  union {
    ok @0 :StreamInfo;
    error @1 :Error;
  }
}

struct RootResult {
  union {
    ok @0 :Data;               # RFC 9162 Merkle tree hash over the first `size` events
    error @1 :Error;
  }
}

struct SignedHeadResult {
  union {
    ok @0 :Text;               # a C2SP signed note: origin, size, base64 root, time (docs/audit.md)
    error @1 :Error;
  }
}

struct VerifierKeyResult {
  union {
    ok @0 :Text;               # NAME+KEYID+BASE64 (golang.org/x/mod/sumdb/note's verifier key)
    error @1 :Error;
  }
}

struct ProofResult {
  union {
    ok @0 :List(Data);         # RFC 9162 hashes (32 bytes each), in the RFC's order
    error @1 :Error;           # outOfRange: unless index < size <= head, old <= new <= head
  }
}

struct PositionResult {
  union {
    ok @0 :UInt64;             # the position of the event recorded (the erasure, the hold)
    error @1 :Error;           # notFound: no such party; badInput: no reason;
                               # failedPrecondition: under legal hold, already erased, ...
  }
}

struct Filter {
  # Which events a subscription delivers. Empty lists match everything; events that are not
  # touchpoints match only when `channels` and `types` are both empty.
  streamPrefix @0 :Text;
  channels @1 :List(Ev.Channel);
  types @2 :List(Ev.TouchpointType);
}

interface Subscriber {
  # Implemented by the client. ihsd sends a subscription's events in position order, each once.
  events @0 (events :List(ReadEvent), scannedTo :UInt64) -> stream;
  # `scannedTo`: every position below it has been delivered or filtered out.
  end @1 (error :Error);
  # The server ended the subscription (it is shutting down, or the store failed).
}

interface Subscription {
  # The handle of a running subscription: dropping it stops the subscription.
  scannedTo @0 () -> (position :UInt64);
}

interface SegmentSubscriber {
  # Implemented by the client. ihsd sends the transitions of the segments subscribed to in seq
  # order, each once (docs/segments.md "Subscriptions").
  transitions @0 (transitions :List(Sg.Transition), scannedTo :UInt64) -> stream;
  # `scannedTo`: every transition below this seq has been delivered or filtered out; resume
  # with fromSeq = scannedTo.
  end @1 (error :Error);
  # The server ended the subscription (it is shutting down, or the projection failed).
}

interface SegmentSubscription {
  # The handle of a running subscription to transitions: dropping it stops the subscription.
  scannedTo @0 () -> (seq :UInt64);
}

struct SegmentSubscribeResult {
  union {
    ok @0 :SegmentSubscription;
    error @1 :Error;
  }
}

struct SubscribeResult {
  union {
    ok @0 :Subscription;
    error @1 :Error;
  }
}

struct ServerStatus {
  version @0 :Text;            # ihsd's version
  events @1 :UInt64;
  streams @2 :UInt64;
  diskBytes @3 :UInt64;
  root @4 :Data;
  connections @5 :UInt32;      # open now
  connectionsTotal @6 :UInt64; # accepted since start
  callsInFlight @7 :UInt32;
  subscriptions @8 :UInt32;
  appends @9 :UInt64;          # store appends that wrote, since start
  syncs @10 :UInt64;           # write groups (one WAL sync each)
  uptimeSeconds @11 :Float64;
  connectionsAwaitingLogin @12 :UInt32;  # open, not logged in yet
  maxConnections @13 :UInt32;            # the limits in force (ihsd's flags, docs/rpc.md)
  maxPendingLogins @14 :UInt32;
  loginTimeoutSeconds @15 :Float64;
  maxSubscriptions @16 :UInt32;
  maxSubscriptionsPerConnection @17 :UInt32;
  subscriberTimeoutSeconds @18 :Float64;
  maxCallsInFlight @19 :UInt32;          # per connection
}

struct TimelineQuery {
  # One page of a party's timeline (docs/projections.md): entries in order of occurredAt.
  party @0 :Text;
  from @1 :Int64 = -0x8000000000000000;  # occurredAt, µs since epoch, inclusive
  to @2 :Int64 = 0x7fffffffffffffff;     # exclusive
  channels @3 :List(Ev.Channel);         # empty: all
  cursor @4 :Text;                       # a previous page's nextCursor, unchanged
  limit @5 :UInt32 = 100;                # 1..1000
  openContent @6 :Bool;                  # fill the entries' subject and text from the log
  minPosition @7 :UInt64;
  # Read your own writes: answer only once the timeline has applied every position below this
  # (e.g. an append's position + 1). ihsd waits up to 5 s, then answers `unavailable`.
  asOf @8 :Int64;                        # waiting times are counted to here; 0: now
  person @9 :Bool;
  # The whole person of the party (docs/identity.md): the entries of every stream linked to it
  # merged in, each with its `party`; the page lists the streams. minPosition holds for both the
  # identity and the timeline projection.
}

struct TimelineResult {
  union {
    ok @0 :Tl.TimelinePage;    # page.checkpoint: the log position the timeline had applied
    error @1 :Error;           # notFound: no such party; badInput with `field`
  }
}

struct SummaryResult {
  union {
    ok @0 :Tl.TimelineSummary;
    error @1 :Error;
  }
}

struct ProjectionStatus {
  # One projection worker (projections/runner.h, ProjectionStatus).
  name @0 :Text;
  version @1 :UInt32;
  family @2 :Text;             # the active generation's state family, "timeline@3"
  checkpoint @3 :UInt64;       # the next position to apply
  head @4 :UInt64;
  lagEvents @5 :UInt64;
  lagSeconds @6 :Float64;
  eventsPerSecond @7 :Float64;
  state @8 :Text;              # "live", "catching up", "rebuilding", "corrupt", "failed"
  error @9 :Text;
  rebuilding @10 :Bool;
  rebuildCheckpoint @11 :UInt64;  # while rebuilding: how far the new generation is
}

struct ProjectionsResult {
  union {
    ok @0 :List(ProjectionStatus);
    error @1 :Error;
  }
}

struct RebuildResult {
  union {
    ok @0 :Void;               # started: follow it with projections()
    error @1 :Error;           # notFound: no such projection; unavailable: one is running
  }
}

struct ResolveResult {
  union {
    ok @0 :Id.Resolution;      # the stream's person, and its scored pairs
    error @1 :Error;           # notFound: the identity projection knows no such stream
  }
}

struct PersonResult {
  union {
    ok @0 :Id.Person;
    error @1 :Error;
  }
}

struct StreamsResult {
  union {
    ok @0 :List(Text);
    error @1 :Error;           # badInput: the handle does not parse
  }
}

struct SuggestionsResult {
  union {
    ok @0 :List(Id.PairScore);
    error @1 :Error;
  }
}

struct SegmentListResult {
  union {
    ok @0 :Sg.SegmentList;
    error @1 :Error;
  }
}

struct MemberPageResult {
  union {
    ok @0 :Sg.MemberPage;
    error @1 :Error;
  }
}

struct PartySegmentsResult {
  union {
    ok @0 :Sg.PartySegments;
    error @1 :Error;
  }
}

struct SegmentWhyResult {
  union {
    ok @0 :Sg.SegmentWhy;
    error @1 :Error;
  }
}

struct CommunityCardResult {
  union {
    ok @0 :Cm.CommunityCard;
    error @1 :Error;
  }
}

struct CommunityTopResult {
  union {
    ok @0 :Cm.CommunityTop;
    error @1 :Error;
  }
}

struct IdentityStatsResult {
  union {
    ok @0 :Id.IdentityStats;
    error @1 :Error;
  }
}

interface Reads {
  readStream @0 (stream :Text, fromVersion :UInt64, limit :UInt32, backward :Bool,
                 openContent :Bool) -> (result :ReadResult);
  # Backward from 0xffffffffffffffff starts at the stream's last event.
  readAll @1 (fromPosition :UInt64, limit :UInt32, openContent :Bool) -> (result :ReadResult);
  streamInfo @2 (stream :Text) -> (result :StreamInfoResult);
  head @3 () -> (head :UInt64);
  # The log's size: the position the next event will get.
}

interface Writer extends(Reads) {
  append @0 (append :StreamAppend) -> (result :AppendResult);
  appendMulti @1 (appends :List(StreamAppend)) -> (result :AppendMultiResult);
  # One atomic append across streams; a stream may appear once.
  link @2 (a :Text, b :Text, unlink :Bool, reason :Text) -> (result :PositionResult);
  # An identityLink on "$identity" (docs/identity.md), recorded with this session's token name:
  # badInput names what is wrong (no such stream, the same stream twice, no reason, an unlink of
  # streams no link joins directly); failedPrecondition: a link to an erased party.
  decideSuggestion @3 (id :Text, accept :Bool, reason :Text) -> (result :PositionResult);
  # Accepts (a link with the suggestion's clues) or rejects (the pair is two people) a suggestion
  # of identitySuggestions. badInput: no current suggestion has that id.
  defineSegment @4 (op :Sg.SegmentOp, name :Text, rule :Text, description :Text)
      -> (result :PositionResult);
  # A segmentDefinition on "$segments" (docs/segments.md), recorded with this session's token
  # name: badInput names what is wrong (a rule that does not parse, with its column; an unknown,
  # retired or cyclic segment named; a name taken, unknown or not [a-z0-9_]{1,64}; a retirement
  # of a segment other segments name).
}

interface Reader extends(Reads) {
  subscribe @0 (fromPosition :UInt64, filter :Filter, openContent :Bool,
                subscriber :Subscriber) -> (result :SubscribeResult);
  # Catches up from `fromPosition`, then follows commits as they land.
  timeline @1 (query :TimelineQuery) -> (result :TimelineResult);
  summary @2 (party :Text, asOf :Int64, minPosition :UInt64) -> (result :SummaryResult);
  # asOf and minPosition as in TimelineQuery.
  projections @3 () -> (result :ProjectionsResult);
  resolve @4 (stream :Text, minPosition :UInt64) -> (result :ResolveResult);
  # The person a stream belongs to (docs/identity.md). minPosition as in TimelineQuery.
  person @5 (id :Text, minPosition :UInt64) -> (result :PersonResult);
  # The person with this id (any of its streams names it too).
  findHandle @6 (handle :Ev.Handle, minPosition :UInt64) -> (result :StreamsResult);
  # The streams whose content showed this handle, through the blind index.
  identitySuggestions @7 (after :Text, limit :UInt32, minPosition :UInt64)
      -> (result :SuggestionsResult);
  # Pairs below the threshold for an operator to decide, in order, `limit` (1..1000) after the
  # pair "a b" given in `after` ("" from the start).
  identityStats @8 (minPosition :UInt64) -> (result :IdentityStatsResult);
  segmentDefinitions @9 (after :Text, limit :UInt32) -> (result :SegmentListResult);
  # The segments and their versions, by name: `limit` (1..1000) after the name `after` ("" from
  # the start). As of the log's head when asked.
  segmentMembers @10 (segment :Text, asOf :Int64, after :Text, limit :UInt32,
                      minPosition :UInt64) -> (result :MemberPageResult);
  # The members of a segment at `asOf` (µs since the epoch; 0: now), by person id after `after`,
  # `limit` (1..10000), with their count (docs/segments.md "Membership"). notFound: no such
  # segment; invalidArgument: asOf before it was first defined. minPosition as in TimelineQuery.
  partySegments @11 (party :Text, asOf :Int64, minPosition :UInt64)
      -> (result :PartySegmentsResult);
  # The segments the person of `party` is in at `asOf`.
  segmentWhy @12 (party :Text, segment :Text, asOf :Int64, minPosition :UInt64)
      -> (result :SegmentWhyResult);
  # Whether the person of `party` is in `segment` at `asOf`, with the transitions that made it so.
  subscribeSegments @13 (fromSeq :UInt64, fromNow :Bool, segments :List(Text),
                         subscriber :SegmentSubscriber) -> (result :SegmentSubscribeResult);
  # Entries and exits of the named segments (1..100 names, each defined at some time) from the
  # transition `fromSeq` on (or from the next one, with fromNow), then as they happen. The same
  # guarantees as subscribe: no gap, no duplicate, one push in flight, and a subscriber that lets
  # no push through within the server's timeout is ended. notFound: a name that no definition
  # holds; the names are checked once the segments projection has applied the log as it was when
  # the call came (a segment defined just before is known), waiting at most 5 s for it.
  community @14 (party :Text, asOf :Int64, minPosition :UInt64) -> (result :CommunityCardResult);
  # The community figures of the person of `party` (docs/community.md), the 90-day reach counted
  # to `asOf` (µs since the epoch; 0: now), with the evidence. notFound: no such stream.
  communityTop @15 (n :UInt32, minPosition :UInt64, by :Cm.CommunityRank)
      -> (result :CommunityTopResult);
  # The `n` (1..10000) persons of most reach (or, with `by` standing, of most network standing),
  # and what the projection met. invalidArgument: n out of range. `by` unspecified: reach.
}

interface Auditor extends(Reader) {
  root @0 (size :UInt64) -> (result :RootResult);
  signedHead @1 () -> (result :SignedHeadResult);
  # A signed tree head of the log as it is now. Keep it: later heads and proofs are checked
  # against it, without trusting ihsd (docs/audit.md).
  verifierKey @2 () -> (result :VerifierKeyResult);
  # The key that checks heads. Take it once from a channel you trust, not from every session.
  inclusionProof @3 (index :UInt64, size :UInt64) -> (result :ProofResult);
  # The audit path of event `index` in the tree of the first `size` events.
  consistencyProof @4 (oldSize :UInt64, newSize :UInt64) -> (result :ProofResult);
  # Proof that the tree of `newSize` events extends the tree of `oldSize` unchanged.
}

interface Admin extends(Writer, Auditor) {
  status @0 () -> (status :ServerStatus);
  rebuildProjection @1 (name :Text) -> (result :RebuildResult);
  # Starts rebuilding a projection from position 0 beside the live state, which keeps serving
  # until the new one has caught up and takes over.
  erase @2 (party :Text, reason :Text, person :Bool) -> (result :PositionResult);
  # Erases the party's personal content (EventStore::Erase): an erasureRequest event, recorded
  # with this session's token name as requestedBy, and the deletion of the party's data key.
  # With `person`: every stream of the party's person (docs/identity.md), one erasure each, in
  # one atomic append (all or none); ok is the position of the first.
  legalHold @3 (party :Text, lift :Bool, reason :Text) -> (result :PositionResult);
  # Places (or with `lift`, lifts) a legal hold on the party: a legalHold event.
  backup @4 (to :Text, withMasterKey :Bool) -> (result :PositionResult);
  # A consistent copy of the store into `to`, a new directory on ihsd's machine
  # (EventStore::Backup): ok is the log's size when the copy began. alreadyExists: `to` holds
  # something.
}

struct Session {
  role @0 :Role;
  name @1 :Text;               # the token's name in the tokens file
  union {
    # The role's capability. The members were named writer, reader, auditor and admin until
    # 0.5.1; the wire is the same, but `reader` clashed with the `Reader` type that Rust's (and
    # other) generators make for every struct (docs/rpc.md, "The schema in other languages").
    writerCap @2 :Writer;
    readerCap @3 :Reader;
    auditorCap @4 :Auditor;
    adminCap @5 :Admin;
  }
}

struct LoginResult {
  union {
    ok @0 :Session;
    error @1 :Error;
  }
}

interface Gateway {
  # The bootstrap object of every connection.
  login @0 (token :Text) -> (result :LoginResult);
}
