#include "projections/timeline/replay.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "projections/internal/mem_state.h"
#include "projections/runner.h"

namespace ihs::projections::timeline {
namespace {

absl::string_view View(capnp::Text::Reader t) { return absl::string_view(t.cStr(), t.size()); }
absl::string_view View(capnp::Data::Reader d) {
  return absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size());
}

// Calls `each` with every event of `stream` below `size`, in order.
absl::Status ForEachEventBelow(store::EventStore* store, const std::string& stream, uint64_t size,
                               const std::function<absl::Status(const store::StoredEvent&)>& each) {
  store::ReadOptions ro;
  ro.open_content = false;
  constexpr size_t kPage = 1000;
  for (uint64_t version = 0;;) {
    IHS_ASSIGN_OR_RETURN(
        std::vector<store::StoredEvent> events,
        store->ReadStream(stream, version, kPage, store::ReadDirection::kForward, ro));
    for (const store::StoredEvent& e : events) {
      if (e.position() >= size) return absl::OkStatus();
      IHS_RETURN_IF_ERROR(each(e));
    }
    if (events.size() < kPage) return absl::OkStatus();
    version += events.size();
  }
}

}  // namespace

absl::Status ReplayTimeline(store::EventStore* store, uint64_t size, const Query& q,
                            capnp::MessageBuilder& summary, capnp::MessageBuilder& page) {
  IHS_RETURN_IF_ERROR(Validate(q));
  if (size > store->Head()) {
    return absl::OutOfRangeError(
        absl::StrCat("position ", size, " is past the log's end (", store->Head(), " events)"));
  }
  // The positions to apply: the party's events, and the events its entries depend on.
  std::set<uint64_t> positions;
  std::set<std::string> counterparts;
  absl::Status own = ForEachEventBelow(store, q.party, size, [&](const store::StoredEvent& e) {
    positions.insert(e.position());
    const schema::Event::Reader ev = e.event();
    if (!ev.isTouchpoint()) return absl::OkStatus();
    if (ev.getTouchpoint().getCounterpart().size() > 0) {
      counterparts.insert(std::string(View(ev.getTouchpoint().getCounterpart())));
    }
    if (ev.getCausationId().size() == 16) {
      IHS_ASSIGN_OR_RETURN(std::optional<uint64_t> cause,
                           store->FindEvent(View(ev.getCausationId())));
      if (cause && *cause < size) positions.insert(*cause);
    }
    return absl::OkStatus();
  });
  if (own.code() == absl::StatusCode::kNotFound || (own.ok() && positions.empty())) {
    return absl::NotFoundError(
        absl::StrCat("no such party: ", q.party, " (no event below position ", size, ")"));
  }
  IHS_RETURN_IF_ERROR(own);
  for (const std::string& c : counterparts) {
    if (c == q.party) continue;
    absl::Status s = ForEachEventBelow(store, c, size, [&](const store::StoredEvent& e) {
      if (e.event().isPartyProfile()) positions.insert(e.position());
      return absl::OkStatus();
    });
    if (s.code() == absl::StatusCode::kNotFound) continue;  // named, never registered
    IHS_RETURN_IF_ERROR(s);
  }

  // The projection, applied in memory: the state starts empty, and nothing reaches the store.
  std::unique_ptr<Projection> projection = NewTimelineProjection();
  MemState mem;
  Txn txn(LogAndState{store, nullptr}, "replay", &mem);
  store::ReadOptions ro;
  ro.open_content = false;
  for (uint64_t p : positions) {
    IHS_ASSIGN_OR_RETURN(std::vector<store::StoredEvent> events, store->ReadAll(p, 1, ro));
    if (events.empty()) return absl::DataLossError(absl::StrCat("no event at position ", p));
    txn.set_position(p);
    IHS_RETURN_IF_ERROR(projection->Apply(events[0], txn));
  }
  IHS_RETURN_IF_ERROR(projection->Flush(txn));
  auto state = std::make_shared<std::map<std::string, std::string>>();
  for (const auto& [key, value] : mem.index()) {
    if (!value.deleted()) state->emplace(key, value.view());
  }
  const StateView view(std::move(state), size);
  IHS_RETURN_IF_ERROR(ReadSummary(view, q.party, q.as_of, summary));
  return ReadPage(view, q, page, store);
}

}  // namespace ihs::projections::timeline
