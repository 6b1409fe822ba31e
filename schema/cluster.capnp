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
