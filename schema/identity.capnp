# The records of the identity projection (projections/identity/): what its state family stores
# and what reads return, over RPC and (through capnp::JsonCodec) as `ihs identity ... --json`.
# Handles and references never appear here in the clear: clues are keyed hashes (docs/identity.md).
# Evolution rules as in event.capnp.

@0xb8f1c0a4d6e2937b;

using Cxx = import "/capnp/c++.capnp";
using E = import "event.capnp";
$Cxx.namespace("ihs::schema");

struct PersonLink {
  # One link between two streams of a person: an identityLink event of the log.
  a @0 :Text;
  b @1 :Text;
  eventId @2 :Data;             # (JSON: hex)
  position @3 :UInt64;
  inferred @4 :Bool;            # appended by identity resolution (sourceSystem "ihs-resolver")
  confidence @5 :Float32;
  clues @6 :List(E.IdentityClue);
  reason @7 :Text;
}

struct Person {
  # Key "P" | person. The person id is the stream of the cluster seen first in the log.
  id @0 :Text;
  streams @1 :List(Text);       # sorted
  links @2 :List(PersonLink);   # the links that join them, in log order
}

struct PairScore {
  # Two streams identity resolution compares, with its evidence and what it decided.
  a @0 :Text;
  b @1 :Text;                   # a < b
  score @2 :Float32;
  clues @3 :List(E.IdentityClue);
  state @4 :PairState;
  suggestionId @5 :Text;        # 12 hex digits, a function of the pair
  evidenceAt @6 :Int64;         # recordedAt of the event that last changed the score
}

enum PairState {
  unspecified @0;
  below @1;          # evidence too weak to suggest
  suggested @2;      # an operator accepts or rejects it (`ihs identity suggestions`)
  pending @3;        # above the threshold: the resolver appends the link
  linked @4;         # a link joins them
  distinct @5;       # an unlink or a rejection says they are different people
  samePerson @6;     # already one person through other links
}

struct PairList {
  # Suggestions (or pending pairs), as `ihs identity suggestions --json` prints them.
  pairs @0 :List(PairScore);
}

struct Resolution {
  # What `resolve` answers for a stream.
  stream @0 :Text;
  person @1 :Person;
  checkpoint @2 :UInt64;        # the log position the projection had applied
  pairs @3 :List(PairScore);    # the stream's evidence with streams of other persons
}

struct IdentityStats {
  streams @0 :UInt64;           # streams of parties seen (system streams excluded)
  persons @1 :UInt64;
  multiStreamPersons @2 :UInt64;
  largestPerson @3 :UInt64;     # streams in the largest person
  explicitLinks @4 :UInt64;     # link events from the company's systems and operators
  inferredLinks @5 :UInt64;     # link events of identity resolution
  unlinks @6 :UInt64;
  pending @7 :UInt64;           # pairs above the threshold not linked yet
  suggestions @8 :UInt64;
  checkpoint @9 :UInt64;
}

# --- stored only -------------------------------------------------------------------------------

struct StreamClue {
  # One thing a stream's content showed: a keyed hash, with the event that showed it first and
  # the retention classes of every event that showed it (so that expiry removes it exactly).
  key @0 :Data;                 # kind (1 byte) | BLAKE2b-128 keyed with the blind index key
  event @1 :Data;
  classes @2 :List(UInt32);     # store key versions: year << 10 | channel << 5 | type
  variants @3 :List(UInt64);    # names: keyed hashes of the name with one letter left out
}

struct StreamNode {
  # Key "S" | stream.
  firstPosition @0 :UInt64;
  person @1 :Text;
  clues @2 :List(StreamClue);
  partners @3 :List(Text);      # streams it has a PairRecord with, sorted
}

struct FollowUp {
  from @0 :Data;                # the message followed up
  to @1 :Data;                  # the follow-up
}

struct PairRecord {
  # Key "Q" | a | 0 | b.
  followUps @0 :List(FollowUp);
  decision @1 :PairState;       # unspecified, linked or distinct: what link events said
  score @2 :Float32;
  state @3 :PairState;
  at @4 :Int64;                 # recordedAt of the event that last changed the evidence
}

struct ClueMembers {
  # Key "X" | clue key: the streams whose content showed it, in log order (the first 4096).
  streams @0 :List(Text);
  count @1 :UInt64;             # all of them; over 16, it identifies nobody: not a clue
}
