// Session: the auditor's calls: roots, signed heads, proofs (server/internal/session.h).
#include "server/internal/session.h"

namespace ihs::server::internal {

kj::Promise<void> Session::Root(RootCtx c) {
  auto result = c.getResults().initResult();
  auto admitted = Admit(absl::OkStatus());
  if (!admitted.ok()) return Refuse(result, admitted.status());
  store::EventStore* store = &shared_.store;
  uint64_t size = c.getParams().getSize();
  return shared_.reads.Run([=] { return store::Root(*store, size); })
      .then([c](absl::StatusOr<std::string> root) mutable {
        auto result = c.getResults().getResult();
        if (root.ok()) {
          result.setOk(
              capnp::Data::Reader(reinterpret_cast<const kj::byte*>(root->data()), root->size()));
        } else {
          SetError(result.initError(), root.status());
        }
      })
      .attach(kj::mv(*admitted));
}

kj::Promise<void> Session::SignedHead(SignedHeadCtx c) {
  auto result = c.getResults().initResult();
  auto admitted = Admit(absl::OkStatus());
  if (!admitted.ok()) return Refuse(result, admitted.status());
  store::EventStore* store = &shared_.store;
  return shared_.reads.Run([=] { return store::SignedHead(*store); })
      .then([c](absl::StatusOr<std::string> head) mutable {
        auto result = c.getResults().getResult();
        if (head.ok()) {
          result.setOk(*head);
        } else {
          SetError(result.initError(), head.status());
        }
      })
      .attach(kj::mv(*admitted));
}

kj::Promise<void> Session::VerifierKey(VerifierKeyCtx c) {
  auto result = c.getResults().initResult();
  absl::StatusOr<tlog::VerifierKey> key = store::VerifierKey(shared_.store);  // in memory: no I/O
  if (!key.ok()) return Refuse(result, key.status());
  result.setOk(tlog::FormatVerifierKey(*key));
  return kj::READY_NOW;
}

kj::Promise<void> Session::InclusionProof(InclusionProofCtx c) {
  store::EventStore* store = &shared_.store;
  const uint64_t index = c.getParams().getIndex(), size = c.getParams().getSize();
  return Proof(c, [=] { return store::InclusionProof(*store, index, size); });
}

kj::Promise<void> Session::ConsistencyProof(ConsistencyProofCtx c) {
  store::EventStore* store = &shared_.store;
  const uint64_t old_size = c.getParams().getOldSize(), new_size = c.getParams().getNewSize();
  return Proof(c, [=] { return store::ConsistencyProof(*store, old_size, new_size); });
}

}  // namespace ihs::server::internal
