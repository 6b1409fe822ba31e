#include "tests/projections/example/last_contact.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace ihs::projections::last_contact {
namespace {

// State: one key per party (its stream id), the value "OCCURRED CHANNEL DIRECTION" in decimal.
class LastContactProjection final : public Projection {
 public:
  absl::string_view name() const override { return kName; }
  uint32_t version() const override { return 1; }

  // Events come in position order, so the last one applied is the last one logged.
  absl::Status Apply(const store::StoredEvent& stored, Txn& txn) override {
    const schema::Event::Reader e = stored.event();
    if (!e.isTouchpoint()) return absl::OkStatus();
    const schema::Touchpoint::Reader t = e.getTouchpoint();
    txn.Put(e.getStreamId().cStr(),
            absl::StrCat(e.getOccurredAt(), " ", static_cast<int>(t.getChannel()), " ",
                         static_cast<int>(t.getDirection())));
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<Projection> NewLastContactProjection() {
  return std::make_unique<LastContactProjection>();
}

absl::StatusOr<LastContact> ReadLastContact(const StateView& view, const std::string& party) {
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> value, view.Get(party));
  if (!value) return absl::NotFoundError(absl::StrCat("no touchpoint of party ", party));
  std::vector<absl::string_view> fields = absl::StrSplit(*value, ' ');
  LastContact c;
  int channel = 0, direction = 0;
  if (fields.size() != 3 || !absl::SimpleAtoi(fields[0], &c.occurred_at) ||
      !absl::SimpleAtoi(fields[1], &channel) || !absl::SimpleAtoi(fields[2], &direction)) {
    return absl::DataLossError(absl::StrCat("last_contact of ", party, ": \"", *value, "\""));
  }
  c.channel = static_cast<schema::Channel>(channel);
  c.direction = static_cast<schema::Direction>(direction);
  return c;
}

}  // namespace ihs::projections::last_contact
