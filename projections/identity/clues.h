// What identity resolution reads in an event's content, normalised so that one handle written
// two ways is one clue, and hashed with the blind index key so that no handle is kept in the
// clear (docs/identity.md "Clues" and "The blind index").
#ifndef IHS_PROJECTIONS_IDENTITY_CLUES_H_
#define IHS_PROJECTIONS_IDENTITY_CLUES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "schema/event.capnp.h"

namespace ihs::projections::identity {

using schema::ClueKind;

// The weight of each kind of clue, and the thresholds (docs/identity.md "Scores").
float ClueWeight(ClueKind kind);
inline constexpr float kLinkThreshold = 1.0f;     // the resolver appends the link
inline constexpr float kSuggestThreshold = 0.3f;  // an operator decides

// A handle in its normal form: email lower-case; phone and fax in E.164 ("+" and digits, "00"
// becoming "+"); postal without a leading name line (a first part up to a comma with no digit),
// lower-case, with runs of whitespace and punctuation as one space; social handles and app ids
// lower-case and trimmed. kInvalidArgument naming the problem for a handle
// that does not parse (an email without "@", a phone number with letters or under 6 digits).
absl::StatusOr<std::string> NormalizeHandle(schema::HandleKind kind, absl::string_view address);

// The kind of clue a handle gives.
ClueKind ClueKindOf(schema::HandleKind kind);

// The name a handle shows, as "first last" in lower case, if it shows one: the first two words
// of letters of an email's local part, a social handle or a postal address's name line
// ("ada.lovelace.42@x", "@ada_lovelace42" and "Ada Lovelace, Main St 5, London" show "ada
// lovelace"). Phone numbers and app ids show none.
std::optional<std::string> NameOf(schema::HandleKind kind, absl::string_view address);

// The order and contract references a text quotes: 1-4 capital letters, "-", 4-12 digits, as a
// word of its own ("A-123456", "CT-20231105").
std::vector<std::string> References(absl::string_view text);

// `name` with one letter left out, for each letter (letters only; the space stays): two names
// one typo apart (a letter swapped with its neighbour, dropped, added or changed) share one.
std::vector<std::string> OneLetterOut(absl::string_view name);

// Keyed hashes (BLAKE2b) under the blind index key: the 17-byte clue key (kind | 16 bytes), and
// the 8-byte hash of a name variant.
class BlindIndex {
 public:
  explicit BlindIndex(std::string key) : key_(std::move(key)) {}
  std::string ClueKey(ClueKind kind, absl::string_view normalized) const;
  uint64_t NameHash(absl::string_view name) const;

 private:
  std::string key_;
};

}  // namespace ihs::projections::identity

#endif  // IHS_PROJECTIONS_IDENTITY_CLUES_H_
