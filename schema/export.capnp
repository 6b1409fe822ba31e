# An audit export (`ihs audit export`, docs/audit.md): a stream of ExportRecord messages, the
# header first, then one record per event in position order, then the trailer. Written twice:
# as a Cap'n Proto packed stream, readable with the stock tool,
#   capnp decode --packed -I/usr/include schema/export.capnp ExportRecord < FILE
# and as JSON Lines (FILE.jsonl), one record per line. `ihs audit verify-export` checks either
# without the store: the head's signature, every event's stored bytes against the decoded event
# and against the head (an audit path per event, or the whole tree for an export of the log),
# and the trailer's digest of every byte before it.
#
# Evolution: as schema/event.capnp.

@0x83b11a52a6e08147;

using Cxx = import "/capnp/c++.capnp";
using Json = import "/capnp/compat/json.capnp";
using Ev = import "event.capnp";
$Cxx.namespace("ihs::schema");

struct ExportHeader {
  format @0 :Text;            # "ihs export v1"
  party @1 :Text;             # the party exported; empty: the whole log
  head @2 :Text;              # the signed tree head every event is proved against (a signed note)
  verifierKey @3 :Text;       # the key that signed it, as `ihs audit pubkey` prints it: check it
                              # against one you got from a channel you trust
  exportedAt @4 :Int64;       # µs since the epoch
  events @5 :UInt64;          # how many event records follow
}

struct ExportedEvent {
  position @0 :UInt64;
  stored @1 :Data $Json.base64;
  # Exactly the bytes the store keeps (docs/format.md): the Merkle leaf is SHA-256(0x00 || stored).
  event @2 :Ev.Event;
  # The same event decoded, for reading (content stays sealed): verify-export checks that it is
  # `stored`'s event.
  path @3 :Data $Json.base64;
  # A party's export: the RFC 9162 audit path of `position` in the head's tree, 32-byte hashes
  # leaf to root, concatenated. An export of the whole log has none: its events give the root.
}

struct ExportTrailer {
  events @0 :UInt64;          # event records written
  sha256 @1 :Data $Json.base64;
  # SHA-256 of every byte of the file before this record, so that no byte goes unchecked.
}

struct ExportRecord {
  union {
    header @0 :ExportHeader;
    event @1 :ExportedEvent;
    trailer @2 :ExportTrailer;
  }
}
