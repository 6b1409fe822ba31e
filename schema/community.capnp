# The records of the community projection (projections/community/): what its state family
# stores, and what reads return (`ihs community ... --json`). docs/community.md defines the
# figures. Evolution rules as in event.capnp.

@0xc7a93e51d20f6b84;

using Cxx = import "/capnp/c++.capnp";
using E = import "event.capnp";
$Cxx.namespace("ihs::schema");

struct DayReach {
  day @0 :Int32;           # UTC days since the epoch of the original posts' occurredAt
  reach @1 :UInt64;
}

struct CommunityStream {
  # Key "S" | stream. Every stream the log names, so that persons are named as identity names
  # them (by the stream seen first).
  person @0 :Text;         # the person's id; empty: the stream is a person of its own
  firstPosition @1 :UInt64;
  reach @2 :UInt64;        # the cascades of its original posts, retracted ones taken back
  posts @3 :UInt32;        # original public posts
  carried @4 :UInt64;      # shares and mentions of its posts, anywhere in their cascades, by others
  reactions @5 :UInt64;    # likes and other reactions of others to its posts
  maxDepth @6 :UInt32;     # the deepest cascade of its posts (1: shared directly)
  days @7 :List(DayReach); # reach by the day of the original post, the latest kKeptDays days
  erased @8 :Bool;         # its values are gone and it gains none
  anonymousIn @9 :UInt64;  # carries and reactions by streams since erased
  standing @10 :Float64;   # the estimate of its network standing (docs/community.md)
  residual @11 :Float64;   # what the estimate has not pushed on yet
  inGraph @12 :Bool;       # an end of some carry edge: a node of the amplification graph
  out @13 :List(OutEdge);  # its carry edges, by target: whose posts it carried, how often
  outTotal @14 :UInt64;
  value @15 :Float64;      # its person's community value, when it is a person of its own
  waited @16 :UInt32;      # its inbound messages, requests and complaints (they wait for an answer)
  wentPublic @17 :UInt32;  # of those, taken public: a public original names one by causationId
  risk @18 :Float64;       # its person's audience at risk, when it is a person of its own
  indexedStanding @19 :Float64;  # its person's standing as the "Q" index holds it (lone)
  ownAudience @20 :UInt64;     # the largest audience of its own posts (its followers, as the log
                               # shows them)
  carriedAudience @21 :UInt64; # the audiences of direct carries of its originals by others
  indexedReach @22 :UInt64;    # its person's reach as the "R" index holds it (lone)
}

struct OutEdge {
  target @0 :Text;
  weight @1 :UInt64;
}

struct CommunityPost {
  # Key "T" | event id (16 bytes): a public post, original or carried (a share or mention).
  author @0 :Text;         # its stream; empty once that stream is erased
  root @1 :Data;           # the original post at the root of its cascade (itself if original)
  parent @2 :Data;         # the post it carries; empty for an original
  depth @3 :UInt32;        # 0 for an original
  audience @4 :UInt64;
  cascade @5 :UInt64;      # its audience and those of the carries under it, retractions taken back
  retracted @6 :Bool;
  occurredAt @7 :Int64;
  carries @8 :UInt32;      # shares and mentions of this post directly
  type @9 :E.TouchpointType;
  channel @10 :E.Channel;
  direct @11 :UInt64;      # the audiences of its direct carries (shares and mentions of it)
}

struct StreamPair {
  a @0 :Text;
  b @1 :Text;
}

struct CommunityPerson {
  # Key "P" | person, for a person of more than one stream.
  streams @0 :List(Text);  # sorted
  links @1 :List(StreamPair);
  reach @2 :UInt64;        # the sum of its streams'
  standing @3 :Float64;    # the sum of its streams'
  posts @4 :UInt32;        # the sum of its streams'
  value @5 :Float64;       # its community value (docs/community.md "Value")
  waited @6 :UInt32;       # the sums of its streams'
  wentPublic @7 :UInt32;
  risk @8 :Float64;        # its audience at risk (docs/community.md "Audience at risk")
  indexedStanding @9 :Float64;  # its standing as the "Q" index holds it
  indexedReach @10 :UInt64;     # its reach as the "R" index holds it
}

struct CommunityEdge {
  # Key "E" | target stream | 0 | source stream: the source carried or reacted to the target's
  # posts (the author of the post it names by causationId).
  shares @0 :UInt64;
  mentions @1 :UInt64;
  likes @2 :UInt64;
  other @3 :UInt64;        # replies, recommendations and other reactions naming the post
  lastAt @4 :Int64;        # recordedAt of the latest
  follows @5 :UInt64;      # follow touchpoints of source whose counterpart is target
}

struct CommunityCounters {
  # Key "X": what the projection met and how it handled it (docs/community.md "Bad input").
  persons @0 :UInt64;          # persons with reach > 0 (the "R" index)
  unknownTargets @1 :UInt64;   # shares and mentions of a post the log does not hold: originals
  tooDeep @2 :UInt64;          # carries deeper than kMaxDepth: counted for nobody
  deadCarries @3 :UInt64;      # carries of a retracted post or of an erased stream's post
  anonymousEdges @4 :UInt64;   # edges into erased streams, kept only as this count
  foreignRetractions @5 :UInt64;  # retractions of a post by another stream: ignored
  nodes @6 :UInt64;            # streams in the amplification graph
  pushes @7 :UInt64;           # standing pushes done, in all
  cappedEvents @8 :UInt64;     # events that stopped pushing at kMaxPushes
  standingPersons @9 :UInt64;  # persons with standing (the "Q" index)
  valuePersons @10 :UInt64;    # persons with a community value (the "V" index)
  riskPersons @11 :UInt64;     # persons with an audience at risk (the "K" index)
}

# --- reads ----------------------------------------------------------------------------------

struct PostEvidence {
  id @0 :Data;             # (JSON: hex)
  stream @1 :Text;
  occurredAt @2 :Int64;
  type @3 :E.TouchpointType;
  channel @4 :E.Channel;
  audience @5 :UInt64;
  cascade @6 :UInt64;      # what it reached with its carries
  carries @7 :UInt32;      # direct shares and mentions
  retracted @8 :Bool;
}

struct Carrier {
  stream @0 :Text;
  shares @1 :UInt64;
  mentions @2 :UInt64;
  likes @3 :UInt64;
  other @4 :UInt64;
  follows @5 :UInt64;
}

struct CommunityCard {
  # `ihs community PARTY`: the person of the party, their figures and the evidence.
  person @0 :Text;
  streams @1 :List(Text);
  asOf @2 :Int64;          # the moment the 90-day figure is counted to
  reach @3 :UInt64;
  reach90d @4 :UInt64;     # the reach of original posts of the last 90 days
  posts @5 :UInt32;
  carried @6 :UInt64;
  reactions @7 :UInt64;
  maxDepth @8 :UInt32;
  rank @9 :UInt64;         # by reach among persons with reach > 0 (1 = most); 0: no reach
  persons @10 :UInt64;     # persons with reach > 0
  percentile @11 :Float64; # share of those persons this one's reach is above, in percent
  topPosts @12 :List(PostEvidence);   # the original posts that reached most
  carriers @13 :List(Carrier);        # the streams that carried them most
  erasedStreams @14 :UInt32;
  anonymousIn @15 :UInt64;
  standing @16 :Float64;       # network standing: expected visits of a carrier's random walk
  standingRank @17 :UInt64;    # by standing among persons in the graph (1 = most); 0: none
  standingPercentile @18 :Float64;
  graphPersons @19 :UInt64;    # persons in the amplification graph
  value @20 :Float64;          # community value: audience per post x standing
  valueRank @21 :UInt64;       # among persons with a value (1 = most); 0: none
  valuePercentile @22 :Float64;
  valuePersons @23 :UInt64;
  risk @24 :Float64;           # audience at risk: ownAudience + carriedAudience / posts
  riskRank @25 :UInt64;
  riskPercentile @26 :Float64;
  riskPersons @27 :UInt64;
  waited @28 :UInt32;          # inbound messages, requests and complaints
  wentPublic @29 :UInt32;      # of those, taken public
  publicChance @30 :Float64;   # (wentPublic + 1) / (waited + 5)
  ownAudience @31 :UInt64;     # the largest audience of the person's own posts
  carriedAudience @32 :UInt64; # the audiences of others' direct carries of their originals
}

struct CommunityTopEntry {
  person @0 :Text;
  reach @1 :UInt64;
  posts @2 :UInt32;
  carried @3 :UInt64;
  maxDepth @4 :UInt32;
  standing @5 :Float64;
  value @6 :Float64;
  risk @7 :Float64;
}

enum CommunityRank {
  unspecified @0;
  reach @1;
  standing @2;
  value @3;
  risk @4;
}

struct CommunityTop {
  entries @0 :List(CommunityTopEntry);
  persons @1 :UInt64;      # persons with reach > 0
  counters @2 :CommunityCounters;  # what the projection met (docs/community.md "Bad input")
  by @3 :CommunityRank;
  standingPersons @4 :UInt64;  # persons with standing
  valuePersons @5 :UInt64;     # persons with a value
  riskPersons @6 :UInt64;      # persons with an audience at risk
}
