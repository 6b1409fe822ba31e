# Segment definitions as reads return them, over RPC and (through capnp::JsonCodec) as
# `ihs segments list --json` (docs/segments.md). The definitions themselves are events
# (event.capnp SegmentDefinition on "$segments"). Evolution rules as in event.capnp.

@0xfcaad15083c8bb17;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ihs::schema");

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
