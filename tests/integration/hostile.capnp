# Requests no honest client sends, for tests/integration/hostile_test.cc: structs laid out as
# schema/rpc.capnp's and schema/event.capnp's (Cap'n Proto lays fields out by ordinal and type, so
# the fields they share sit where ihsd reads them), with capabilities where ihs's schema has none.

@0xc4f1b2a3d4e5f607;

using Cxx = import "/capnp/c++.capnp";
using Ev = import "/schema/event.capnp";
using Rpc = import "/schema/rpc.capnp";
$Cxx.namespace("ihs::hostile");

interface Probe {
  # The capability sent: a plain object of the test's.
  ping @0 ();
}

struct WideEvent {
  # Event with one more pointer field, as from a newer client: a capability in it.
  id @0 :Data;
  streamId @1 :Text;
  occurredAt @2 :Int64;
  recordedAt @3 :Int64;
  position @4 :UInt64;
  streamVersion @5 :UInt64;
  sourceSystem @6 :Text;
  correlationId @7 :Data;
  causationId @8 :Data;
  content @9 :Ev.Content;
  sealedContent @10 :Ev.SealedContent;
  union {
    unspecified @11 :Void;
    touchpoint @12 :Ev.Touchpoint;
    partyProfile @13 :Ev.PartyProfile;
    identityLink @14 :Ev.IdentityLink;
    erasureRequest @15 :Ev.ErasureRequest;
    legalHold @16 :Ev.LegalHold;
    contentExpiry @17 :Ev.ContentExpiry;
    retentionRun @18 :Ev.RetentionRun;
  }
  extra @19 :Probe;
}

struct CapInTextEvent {
  # Event with a capability where sourceSystem, a Text, belongs.
  id @0 :Data;
  streamId @1 :Text;
  occurredAt @2 :Int64;
  recordedAt @3 :Int64;
  position @4 :UInt64;
  streamVersion @5 :UInt64;
  sourceSystem @6 :Probe;
  correlationId @7 :Data;
  causationId @8 :Data;
  content @9 :Ev.Content;
  sealedContent @10 :Ev.SealedContent;
  union {
    unspecified @11 :Void;
    touchpoint @12 :Ev.Touchpoint;
    partyProfile @13 :Ev.PartyProfile;
    identityLink @14 :Ev.IdentityLink;
    erasureRequest @15 :Ev.ErasureRequest;
    legalHold @16 :Ev.LegalHold;
    contentExpiry @17 :Ev.ContentExpiry;
    retentionRun @18 :Ev.RetentionRun;
  }
}

struct WideStreamAppend {
  # rpc.StreamAppend with events of either kind above, and a capability of its own.
  stream @0 :Text;
  expected @1 :Rpc.Expected;
  events @2 :List(WideEvent);
  extra @3 :Probe;
}

struct CapInTextStreamAppend {
  stream @0 :Text;
  expected @1 :Rpc.Expected;
  events @2 :List(CapInTextEvent);
}

struct AppendParams {
  # Writer.append's parameters: (append :StreamAppend).
  append @0 :WideStreamAppend;
}

struct CapInTextAppendParams {
  append @0 :CapInTextStreamAppend;
}

struct AppendMultiParams {
  # Writer.appendMulti's parameters: (appends :List(StreamAppend)).
  appends @0 :List(WideStreamAppend);
}

struct ReadStreamParams {
  # Reads.readStream's parameters, with a capability in an unknown field.
  stream @0 :Text;
  fromVersion @1 :UInt64;
  limit @2 :UInt32;
  backward @3 :Bool;
  openContent @4 :Bool;
  extra @5 :Probe;
}

struct LoginParams {
  # Gateway.login's parameters, with a capability where the token belongs.
  token @0 :Probe;
}
