# The event envelope and the touchpoint vocabulary of ihs: one definition of an event, used for
# the bytes stored in RocksDB, for JSON in and out of the `ihs` tool (through capnp::JsonCodec)
# and, later, on the RPC wire.
#
# Evolution rules (see docs/format.md "Schema evolution"):
# - add fields and enumerants only with higher ordinals; never renumber, rename on the wire or
#   change a type;
# - every enum starts with `unspecified @0`, so a reader that meets an enumerant newer than itself
#   still reads the number and can print it, and a writer that forgets a field is caught;
# - timestamps are microseconds since the Unix epoch, UTC (JSON: RFC 3339 strings).

@0xd3e4ec377a5d1f20;

using Cxx = import "/capnp/c++.capnp";
using Json = import "/capnp/compat/json.capnp";
$Cxx.namespace("ihs::schema");

enum PartyKind {
  unspecified @0;
  customer @1;
  prospect @2;
  employee @3;
  partner @4;
  serviceProvider @5;
  company @6;        # the company itself, e.g. the sender of a campaign
}

enum Channel {
  unspecified @0;
  letter @1;
  fax @2;
  email @3;
  newsletter @4;
  phone @5;
  callCentre @6;
  sms @7;
  chat @8;
  app @9;
  push @10;
  webForm @11;
  facebook @12;
  twitter @13;
  youtube @14;
  forum @15;
  inPerson @16;
}

enum Direction {
  unspecified @0;
  inbound @1;        # from the party to the company
  outbound @2;       # from the company to the party
  public @3;         # said in public (a post, a review), seen by an audience
}

enum TouchpointType {
  unspecified @0;
  message @1;
  reply @2;
  complaint @3;
  request @4;
  purchase @5;
  review @6;
  recommendation @7;
  share @8;
  mention @9;
  like @10;
  follow @11;
  campaignSent @12;
  campaignOpened @13;
  consentGiven @14;
  consentRevoked @15;
  correction @16;    # `corrects` names the event whose facts this one replaces
  retraction @17;    # `corrects` names the event that is withdrawn
  unsubscribe @18;
}

enum HandleKind {
  unspecified @0;
  email @1;
  phone @2;
  postal @3;
  facebook @4;
  twitter @5;
  youtube @6;
  forum @7;
  appUser @8;
  fax @9;
}

struct Handle {
  # A party's address on one channel.
  kind @0 :HandleKind;
  address @1 :Text;    # "ada@example.org", "+4930123456", "@ada"
}

struct Content {
  # The personal part of an event. It never reaches the disk in the clear: the store seals it
  # with the data key of the event's stream (see SealedContent) before it is written.
  subject @0 :Text;
  text @1 :Text;
  from @2 :Handle;
  to @3 :List(Handle);
}

struct SealedContent {
  # Content as stored: the canonical Cap'n Proto bytes of a Content, encrypted with
  # XChaCha20-Poly1305 (libsodium crypto_aead_xchacha20poly1305_ietf) under the data key of the
  # stream, with additional data = event id (16 bytes) || stream id (UTF-8).
  keyVersion @0 :UInt32;   # which data key of the stream sealed it (1 for the first)
  nonce @1 :Data $Json.base64;       # 24 random bytes
  ciphertext @2 :Data $Json.base64;  # ciphertext || 16-byte tag
}

struct Touchpoint {
  # One interaction between the company and a party.
  channel @0 :Channel;
  direction @1 :Direction;
  type @2 :TouchpointType;
  sentiment @3 :Float32 = nan;   # in [-1, 1]; NaN (the default, omitted in JSON) = unknown
  topics @4 :List(Text);
  threadId @5 :Text;             # conversation this belongs to
  inReplyTo @6 :Data;           # (JSON: hex)  # event id answered by this one (16 bytes), or empty
  counterpart @7 :Text;          # the other party (stream id), e.g. the employee who answered
  audienceSize @8 :UInt64;       # for public posts: how many could see it
  corrects @9 :Data;            # (JSON: hex)   # for corrections and retractions: the event id concerned
  campaignId @10 :Text;          # for campaign sent / opened, unsubscribe
}

struct PartyProfile {
  # The party's registration or a change of its non-personal attributes.
  kind @0 :PartyKind;
  cohort @1 :Text;         # e.g. an age cohort "1950s"; free text, not personal by itself
}

enum ClueKind {
  # What made identity resolution think two streams are one person (docs/identity.md).
  unspecified @0;
  email @1;           # the same email address in both streams' handles
  address @2;         # the same phone or fax number or postal address (a household shares them)
  socialHandle @3;    # the same social account (Twitter, Facebook, YouTube, forum)
  appUser @4;         # the same app user id
  orderReference @5;  # an order or contract reference quoted in both streams' texts
  followUp @6;        # a message of one stream follows up (causationId) a message of the other
  name @7;            # the same name in both streams' handles
  similarName @8;     # names one typo apart
}

struct IdentityClue {
  kind @0 :ClueKind;
  weight @1 :Float32;
  events @2 :List(Data);   # (JSON: hex) the event of each stream that showed it
}

struct IdentityLink {
  # The parties named are the same person (or, with `unlink`, are not: the link between them is
  # removed, and identity resolution never links them again). On the stream "$identity".
  parties @0 :List(Text);
  unlink @1 :Bool;
  confidence @2 :Float32;  # resolver links: the score, the sum of the clues' weights
  reason @3 :Text;         # why, for the trail (required from operators)
  clues @4 :List(IdentityClue);  # what identity resolution saw (resolver links, accepted
                                 # suggestions)
  requestedBy @5 :Text;    # who: the token's name over RPC, the operator on the command line
}

struct SegmentDefinition {
  # A segment defined, changed (a new version of the same name) or retired, on the stream
  # "$segments" (docs/segments.md). `ihs segments define|change|retire` check the rule (it parses,
  # names only live segments, makes no cycle) before they append; the segments projection
  # ignores, with the reason, a definition that a plain append let through and that fails them.
  name @0 :Text;           # [a-z0-9_]{1,64}
  rule @1 :Text;           # the rule's canonical text; empty when retired
  description @2 :Text;
  retired @3 :Bool;
  requestedBy @4 :Text;    # who: the token's name over RPC, the operator on the command line
}

struct CommunityBand {
  # A person came inside, or went outside, what a segment condition on community figures asks
  # ("community value in top 5%", "community risk > 10000"), as the community projection saw it.
  # On the stream "$community", appended by ihsd's band appender only (docs/community.md
  # "Bands"): the store refuses it on any other stream, and the RPC server refuses it from a
  # client. The segments projection folds these into its conditions.
  party @0 :Text;          # the person, by the stream the community projection names them with
  clause @1 :Text;         # the condition's canonical text (docs/segments.md "Community")
  inside @2 :Bool;
  figure @3 :Float64;      # entering: the person's figure the condition looks at (0 on leaving)
  rank @4 :UInt64;         # entering: its rank among `ranked` persons (0 on leaving)
  ranked @5 :UInt64;       # persons with that figure, when it was decided
}

struct ContentAccess {
  # Personal content was shown to someone: who opened whose messages, when and where (the console's
  # "open" action, docs/console.md), so that an auditor sees access to personal data, not only its
  # changes. On the stream "$access", appended by ihsd only: the store refuses it on any other
  # stream, and the RPC server refuses it from a client.
  party @0 :Text;          # the stream whose content was shown
  events @1 :List(Data);   # (JSON: hex) the events whose subject and text were shown
  readBy @2 :Text;         # who: the token's name
  role @3 :Text;           # the token's role ("reader", "admin", ...)
  via @4 :Text;            # where: "console"
  peer @5 :Text;           # the address the request came from
}

struct ErasureRequest {
  # The party's personal content is erased: the store deletes its data key in the same write
  # (docs/audit.md, "Erasure"). Appended only by EventStore::Erase (`ihs erase`, Admin.erase),
  # never by a plain append.
  reason @0 :Text;         # why, for the trail: required
  requestedBy @1 :Text;    # who: the token's name over RPC, the operator on the command line
}

struct LegalHold {
  # A legal hold placed on the party, or lifted (`lift`): while it holds, the party's content
  # can be neither erased nor expired. Appended only by EventStore::SetLegalHold (`ihs hold`,
  # Admin.hold), never by a plain append.
  lift @0 :Bool;
  reason @1 :Text;         # required
  requestedBy @2 :Text;
}

struct ExpiredClass {
  # Content of one retention class and year: the data key that sealed it.
  channel @0 :Channel;
  type @1 :TouchpointType;
  year @2 :Int32;               # UTC year of the events' occurredAt
}

struct ContentExpiry {
  # Retention erased the party's content of these classes: their data keys are deleted in the
  # same write. Appended only by EventStore::RunRetention (`ihs retention run`).
  expired @0 :List(ExpiredClass);
  rules @1 :Text;               # the policy's rules that expired them, one per line
  requestedBy @2 :Text;
}

struct RetentionRun {
  # One run of the retention policy, on the stream "$retention": what it did, and why.
  policy @0 :Text;              # the whole policy, as given
  asOf @1 :Int64;               # the moment it judged expiry against (µs since the epoch)
  parties @2 :UInt64;           # parties whose content expired
  classes @3 :UInt64;           # data keys deleted
  held @4 :List(Text);          # parties with expired content it left alone: under legal hold
  requestedBy @5 :Text;
}

struct Event {
  # One immutable record of the log. Fields marked "set by the store" are rejected on input.
  id @0 :Data;                    # (JSON: hex) 16 bytes chosen by the client: the idempotency key
  streamId @1 :Text;              # party id, or a system stream such as "$identity"
  occurredAt @2 :Int64;           # when it happened at the source (µs since epoch, UTC; years 1-9999)
  recordedAt @3 :Int64;           # set by the store: when it accepted the event
  position @4 :UInt64;            # set by the store: index in the global log
  streamVersion @5 :UInt64;       # set by the store: index inside its stream
  sourceSystem @6 :Text;          # the system that reported it, e.g. "crm", "zendesk"
  correlationId @7 :Data;         # (JSON: hex)
  causationId @8 :Data;           # (JSON: hex)
  content @9 :Content;            # plaintext on input and on read; never stored
  sealedContent @10 :SealedContent;  # set by the store: content as stored

  union {
    # The event type. New kinds of event are new members, with higher ordinals.
    unspecified @11 :Void;
    touchpoint @12 :Touchpoint;
    partyProfile @13 :PartyProfile;
    identityLink @14 :IdentityLink;
    erasureRequest @15 :ErasureRequest;
    legalHold @16 :LegalHold;
    contentExpiry @17 :ContentExpiry;
    retentionRun @18 :RetentionRun;
    segmentDefinition @19 :SegmentDefinition;
    communityBand @20 :CommunityBand;
    contentAccess @21 :ContentAccess;
  }
}
