# The records of the timeline projection (projections/timeline/): what its state family stores
# and what reads return, over RPC and (through capnp::JsonCodec) as `ihs timeline --json`.
# Evolution rules as in event.capnp.

@0xf3199cdee504f31e;

using Cxx = import "/capnp/c++.capnp";
using Json = import "/capnp/compat/json.capnp";
using E = import "event.capnp";
$Cxx.namespace("ihs::schema");

struct Answer {
  # The company's first reply to an inbound message, on any channel.
  replyPosition @0 :UInt64;
  replyEventId @1 :Data;        # (JSON: hex)
  replyChannel @2 :E.Channel;
  repliedAt @3 :Int64;          # µs since epoch
  wallSeconds @4 :Int64;        # repliedAt - occurredAt
  serviceSeconds @5 :Int64;     # the same, counted in service hours (common/service_hours.h)
}

struct SwitchFrom {
  # The unanswered message this one followed up on another channel (causationId).
  party @0 :Text;
  eventId @1 :Data;             # (JSON: hex)
  channel @2 :E.Channel;
  occurredAt @3 :Int64;
  position @4 :UInt64;
}

struct TimelineEntry {
  # One touchpoint of a party's timeline. Personal content is not part of the state: a read
  # that wants it opens the event from the log (`subject`, `text`).
  position @0 :UInt64;
  eventId @1 :Data;             # (JSON: hex)
  occurredAt @2 :Int64;
  recordedAt @3 :Int64;
  channel @4 :E.Channel;
  direction @5 :E.Direction;
  type @6 :E.TouchpointType;
  sentiment @7 :Float32 = nan;
  topics @8 :List(Text);
  thread @9 :Text;              # threadId, else the thread of the event it replies to, else
                                # "event:" + hex of the message's own id
  inReplyTo @10 :Data;          # (JSON: hex)
  counterpart @11 :Text;
  campaignId @12 :Text;
  audienceSize @13 :UInt64;
  sourceSystem @14 :Text;
  companyReply @15 :Bool;       # a reply by the company (answers the thread's open messages)
  response :union {
    none @16 :Void;             # not a message that waits for an answer
    open @17 :Void;             # an inbound message, unanswered
    answered @18 :Answer;
  }
  switchFrom @19 :SwitchFrom;   # set when this is a channel switch
  correctedBy @20 :Data;        # (JSON: hex) the last correction applied to it
  retractedBy @21 :Data;        # (JSON: hex) set: withdrawn by a retraction (kept, marked)
  waitingSeconds @22 :Int64;    # set on read for open messages: how long it has waited
  subject @23 :Text;            # set on read when content is asked for and not erased
  text @24 :Text;
  party @25 :Text;              # set on read when the page covers a person's streams: whose entry
}

struct ChannelSummary {
  channel @0 :E.Channel;
  firstAt @1 :Int64;
  lastAt @2 :Int64;
  inbound @3 :UInt32;
  outbound @4 :UInt32;
  public @5 :UInt32;
}

struct OpenMessage {
  position @0 :UInt64;
  eventId @1 :Data;             # (JSON: hex)
  channel @2 :E.Channel;
  type @3 :E.TouchpointType;
  occurredAt @4 :Int64;
  waitingSeconds @5 :Int64;     # set on read
}

struct TimelineSummary {
  party @0 :Text;
  kind @1 :E.PartyKind;
  entries @2 :UInt64;           # touchpoints, retracted ones excluded
  channels @3 :List(ChannelSummary);
  open @4 :List(OpenMessage);   # unanswered inbound messages, oldest first
  answered @5 :UInt64;
  medianResponseSeconds @6 :Int64;         # over answered messages; 0 if none
  medianResponseServiceSeconds @7 :Int64;
  sentiment90d @8 :Float32 = nan;          # mean over the 90 days before asOf
  sentimentCount90d @9 :UInt32;
  channelSwitches @10 :UInt32;
  asOf @11 :Int64;              # the moment waiting times and the 90 days are counted from
}

struct TimelinePage {
  party @0 :Text;
  entries @1 :List(TimelineEntry);
  nextCursor @2 :Text;          # empty: no more entries in the range
  checkpoint @3 :UInt64;        # the log position the projection had applied
  streams @4 :List(Text);       # a person's page: every stream it covers (party first)
}

# --- stored only -------------------------------------------------------------------------------

struct ResponseTime {
  position @0 :UInt64;          # of the inbound message
  wallSeconds @1 :Int64;
  serviceSeconds @2 :Int64;
}

struct SentimentDay {
  day @0 :Int32;                # days since the epoch (UTC)
  sum @1 :Float64;
  count @2 :UInt32;
}

struct TimelinePartyState {
  # Key "S" | party: what the summary is computed from.
  kind @0 :E.PartyKind;
  entries @1 :UInt64;
  channels @2 :List(ChannelSummary);
  open @3 :List(OpenMessage);  # empty since timeline version 7: keys "O" (docs/projections.md)
  responses @4 :List(ResponseTime);  # empty since version 7: keys "R"
  sentimentDays @5 :List(SentimentDay);
  channelSwitches @6 :UInt32;
}
