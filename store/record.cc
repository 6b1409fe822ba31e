#include "store/record.h"

#include "store/internal/codec.h"
#include "store/internal/merkle.h"

namespace ihs::store {

std::string EncodeRecord(schema::Event::Reader event) { return internal::EncodeRecord(event); }

std::string EventShapeProblem(schema::Event::Reader event) {
  return internal::EventShapeProblem(event);
}

tlog::Hash RecordLeafHash(absl::string_view stored_event_bytes) {
  return internal::LeafHash(stored_event_bytes);
}

tlog::Hash RecordNodeHash(const tlog::Hash& left, const tlog::Hash& right) {
  return internal::NodeHash(left, right);
}

struct LogRoot::Frontier {
  internal::Frontier tree;
};

LogRoot::LogRoot() : frontier_(std::make_unique<Frontier>()) {}
LogRoot::~LogRoot() = default;

void LogRoot::Add(absl::string_view stored_event_bytes) {
  frontier_->tree.Push(internal::LeafHash(stored_event_bytes),
                       [](internal::SubtreeId, const internal::Hash&) {});
}

uint64_t LogRoot::size() const { return frontier_->tree.size(); }

tlog::Hash LogRoot::Root() const { return frontier_->tree.Root(); }

}  // namespace ihs::store
