// Projection state records as packed Cap'n Proto messages, and the views between capnp's Text
// and Data and absl::string_view that reading and writing them needs.
#ifndef IHS_PROJECTIONS_PACKED_RECORD_H_
#define IHS_PROJECTIONS_PACKED_RECORD_H_

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/io.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ihs::projections {

inline absl::string_view View(capnp::Text::Reader t) {
  return absl::string_view(t.cStr(), t.size());
}
inline absl::string_view View(capnp::Data::Reader d) {
  return absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size());
}
inline capnp::Data::Reader AsData(absl::string_view s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// --- capnp records as strings -----------------------------------------------------------------

// Records are stored packed (capnp's packing drops the zero bytes that unset fields leave): a
// timeline entry shrinks to about half, and a rebuild writes out gigabytes fewer.
inline std::string Encode(capnp::MessageBuilder& m) {
  kj::VectorOutputStream out(512);
  capnp::writePackedMessage(out, m);
  const kj::ArrayPtr<kj::byte> bytes = out.getArray();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// Owns a stored record's bytes and a reader over them (which may read segments lazily).
//
// Without capnp's traversal limit: that limit (64 MiB of words read, by default) guards a reader
// against a hostile message that points at the same bytes again and again, and these records are
// the projection's own, read back from RocksDB under its checksums. Their size grows with what
// they keep (a stream's touchpoints, a party's open messages), and Root() reads them once whole
// to check them, so with the default a record of 32 MiB stopped decoding: a writer of one long
// stream could stop a projection (and, before the runner caught exceptions, ihsd).
class PackedRecord {
 public:
  // `what`: the projection, named in errors.
  PackedRecord(absl::string_view bytes, const char* what) : bytes_(bytes), what_(what) {
    error_ = kj::runCatchingExceptions([&] {
      in_.emplace(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes_.data()), bytes_.size()));
      capnp::ReaderOptions options;
      options.traversalLimitInWords = kj::maxValue;
      reader_.emplace(*in_, options);
    });
  }
  template <typename T>
  absl::StatusOr<typename T::Reader> Root() {
    typename T::Reader r;
    if (error_ == nullptr) {
      error_ = kj::runCatchingExceptions([&] {
        r = reader_->getRoot<T>();
        (void)r.totalSize();
      });
    }
    KJ_IF_MAYBE (e, error_) {
      return absl::DataLossError(
          absl::StrCat(what_, " state does not decode: ", e->getDescription().cStr()));
    }
    return r;
  }

 private:
  const std::string bytes_;
  const char* const what_;
  std::optional<kj::ArrayInputStream> in_;
  std::optional<capnp::PackedMessageReader> reader_;
  kj::Maybe<kj::Exception> error_;
};

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_PACKED_RECORD_H_
