# What ihs keeps in a NATS JetStream cluster (docs/scale.md): the cluster's configuration, fixed
# when the cluster is created, and one message per append in the log of the append's partition.
#
# Evolution: as schema/event.capnp.

@0xf3e4684512616e35;

using Cxx = import "/capnp/c++.capnp";
using Ev = import "event.capnp";
$Cxx.namespace("ihs::schema");

struct ClusterConfig {
  # The value of the key "config" in the key-value bucket IHS_CLUSTER, written once (a create
  # that fails when the key exists), so that every node that joins reads the same.
  format @0 :UInt32;          # 1
  partitions @1 :UInt32;      # P: a stream's partition is PartitionOf(stream id, P), for ever
  replicas @2 :UInt8;         # JetStream replicas of every partition's log (3 in production)
  createdAt @3 :Int64;        # µs since the epoch, by the creating node's clock
  createdBy @4 :Text;         # the creating node's name
}

enum Expect {
  # ExpectedVersion's kind (store/types.h).
  any @0;
  noStream @1;
  streamExists @2;
  exact @3;
}

struct PartitionAppend {
  # One append (one stream, one or more events) as published to its partition's log: one
  # JetStream message, so that the events of one append stay together. A node materialising the
  # partition applies the messages in JetStream's order and decides each append's fate (version
  # check, idempotency) from what it has applied before, the same on every node.
  stream @0 :Text;
  expect @1 :Expect;
  expectedVersion @2 :UInt64;   # with `exact`: the version of the stream's last event
  events @3 :List(Ev.Event);
  # As the client sent them, except personal content: that never enters JetStream in the clear
  # (an erasure could not reach it there), it is sealed by the accepting node with the party's
  # key as the store seals it (`sealedContent` set, `content` unset). Until the cluster keeps
  # party keys (docs/scale.md, "Steps"), an append with personal content is refused.
  acceptedAt @4 :Int64;         # µs since the epoch, by the accepting node's clock
  acceptedBy @5 :Text;          # the accepting node's name
}

struct ForwardRequest {
  # A node's question to the node that holds a partition (docs/scale.md, "Forwarding"): a core
  # NATS request on the subject ihs.serve.pN, which only the holder of partition N subscribes to.
  # Nothing of it is stored.
  union {
    verdict @0 :UInt64;              # the fate of the append at this sequence of the log
    readStream @1 :ReadStreamRequest;
    streamInfo @2 :Text;             # a stream id
  }
}

struct ReadStreamRequest {
  stream @0 :Text;
  fromVersion @1 :UInt64;
  maxCount @2 :UInt32;
  backward @3 :Bool;
}

struct ForwardReply {
  code @0 :UInt32;                   # absl::StatusCode of the answer; 0: it succeeded
  message @1 :Text;                  # what went wrong, when code is not 0
  hasCurrentVersion @2 :Bool;        # a version conflict (code 10, aborted) says the current one
  currentVersion @3 :Int64;          # -1: the stream does not exist
  union {
    none @4 :Void;
    appended @5 :Appended;
    events @6 :List(StoredRecord);   # in the order read; fewer than asked when the reply is full
    info @7 :StreamInfoReply;
  }
}

struct Appended {
  positions @0 :List(UInt64);        # in the partition's log
  versions @1 :List(UInt64);
  duplicate @2 :Bool;
}

struct StoredRecord {
  position @0 :UInt64;               # in the partition's log
  record @1 :Data;                   # the record as stored (docs/format.md)
}

struct StreamInfoReply {
  eventCount @0 :UInt64;
  currentVersion @1 :UInt64;
  firstPosition @2 :UInt64;
  lastPosition @3 :UInt64;
  firstOccurredAt @4 :Int64;
  lastOccurredAt @5 :Int64;
  holdPosition @6 :UInt64;           # with hasHold
  hasHold @7 :Bool;
  erasedPosition @8 :UInt64;         # with hasErased
  hasErased @9 :Bool;
}
