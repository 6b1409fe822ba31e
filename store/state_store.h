// State families: where projections/ keeps derived state, beside the log, without opening
// RocksDB itself. What a projection needs of the store is this and a LogReader
// (store/log_reader.h); the runner takes the two apart so that a node of a cluster can keep its
// state here while it follows a log kept elsewhere.
//
// Each family is a RocksDB column family of its own ("state." + name), so dropping one is cheap
// and touches nothing else. Writes are atomic per call and go through the WAL without a sync:
// what a crash loses of them, the projection recomputes from its checkpoint, which is written in
// the same batch as the state it covers. kInvalidArgument for a bad name, kNotFound for a family
// that does not exist, kFailedPrecondition for writes on a read-only store.
#ifndef IHS_STORE_STATE_STORE_H_
#define IHS_STORE_STATE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ihs::store {

class EventStore;

// Puts and deletes for one state family, applied atomically by StateStore::WriteState.
class StateBatch {
 public:
  struct Op {
    std::string key;
    std::optional<std::string> value;  // nullopt: delete the key
  };
  void Put(std::string key, std::string value) {
    ops_.push_back({std::move(key), std::move(value)});
  }
  void Delete(std::string key) { ops_.push_back({std::move(key), std::nullopt}); }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  const std::vector<Op>& ops() const { return ops_; }
  void Clear() { ops_.clear(); }

 private:
  std::vector<Op> ops_;
};

// A file of state for StateStore::IngestState, written outside the memtable and the WAL: a bulk
// load, for state that is new as a whole (a rebuild). One thread at a time per file; several
// files may be written at once on different threads.
class StateFile {
 public:
  virtual ~StateFile() = default;
  // Keys strictly ascending across Put and Delete; kInvalidArgument otherwise.
  virtual absl::Status Put(absl::string_view key, absl::string_view value) = 0;
  virtual absl::Status Delete(absl::string_view key) = 0;
  virtual uint64_t entries() const = 0;
};

// Called for each key of a scan, in key order; returning false ends the scan.
using StateVisitor = std::function<bool(absl::string_view key, absl::string_view value)>;

// A state family's name: 1 to 64 bytes of [a-z0-9_.@-].
inline constexpr size_t kMaxStateFamilyName = 64;

// Safe for concurrent use.
class StateStore {
 public:
  virtual ~StateStore() = default;

  // Creates the family; nothing happens if it exists.
  virtual absl::Status CreateStateFamily(absl::string_view name) = 0;
  // Drops the family and its data. Readers already inside a call finish on the old data.
  virtual absl::Status DropStateFamily(absl::string_view name) = 0;
  // The names of the state families, sorted.
  virtual std::vector<std::string> StateFamilies() = 0;
  virtual absl::Status WriteState(absl::string_view family, const StateBatch& batch) = 0;
  virtual absl::StatusOr<std::optional<std::string>> GetState(absl::string_view family,
                                                              absl::string_view key) = 0;
  // Visits the keys in [from, to) in order (an empty `to`: no upper bound).
  virtual absl::Status ScanState(absl::string_view family, absl::string_view from,
                                 absl::string_view to, const StateVisitor& visit) = 0;
  // A new, empty file for the family (DIR/ingest/, cleared at Open).
  virtual absl::StatusOr<std::unique_ptr<StateFile>> NewStateFile(absl::string_view family) = 0;
  // Makes the files' keys part of the family, all at once or not at all; they win over what the
  // family held. The files' key ranges must not overlap each other. The files are synced before
  // they are added, so the state survives a crash as a write through WriteState would.
  virtual absl::Status IngestState(absl::string_view family,
                                   std::vector<std::unique_ptr<StateFile>> files) = 0;
};

// The state families of an embedded store (the same RocksDB as its log). Never null for a store
// from EventStore::Open; the store owns it.
StateStore* StateStoreOf(EventStore& store);

}  // namespace ihs::store

#endif  // IHS_STORE_STATE_STORE_H_
