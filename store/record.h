// An event's record as an auditor recomputes it, with no store behind it: the stored bytes of an
// event (what its Merkle leaf covers), the leaf hash, and the root over a whole log of them. The
// store writes with these same functions, so an export's or a peer's events can be checked
// byte for byte (tools/ihs/export.cc).
//
// store/tlog.h stays the verifier's header (libsodium and the standard library only, for
// tools/ihs-verify); this one needs Cap'n Proto and OpenSSL's SHA-256, which is several times
// faster than libsodium's portable one on many leaves. Both hash the same (AuditTest checks it).
#ifndef IHS_STORE_RECORD_H_
#define IHS_STORE_RECORD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "schema/event.capnp.h"
#include "store/tlog.h"

namespace ihs::store {

// The stored bytes of an event as the store holds it (docs/format.md "events"). Throws
// kj::Exception for a reader whose bytes are damaged; see EventShapeProblem.
std::string EncodeRecord(schema::Event::Reader event);

// Reads every pointer field of an event through its typed accessor, catching what damaged or
// hostile bytes throw. The problem as text; empty when the event has its schema's shape.
std::string EventShapeProblem(schema::Event::Reader event);

// RFC 9162 hashes, as tlog::LeafHash and tlog::NodeHash compute them.
tlog::Hash RecordLeafHash(absl::string_view stored_event_bytes);
tlog::Hash RecordNodeHash(const tlog::Hash& left, const tlog::Hash& right);

// The RFC 9162 root of a log given its records in position order, in O(log n) memory.
class LogRoot {
 public:
  LogRoot();
  ~LogRoot();
  void Add(absl::string_view stored_event_bytes);
  uint64_t size() const;
  tlog::Hash Root() const;

 private:
  struct Frontier;
  std::unique_ptr<Frontier> frontier_;
};

}  // namespace ihs::store

#endif  // IHS_STORE_RECORD_H_
