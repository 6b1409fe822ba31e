#include "tools/ihs/export.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <fcntl.h>
#include <kj/io.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "schema/export.capnp.h"
#include "schema/json.h"
#include "store/audit.h"
#include "store/record.h"
#include "store/tlog.h"
#include "tools/ihs/audit.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/progress.h"

namespace ihs::tools {
namespace {

using nlohmann::json;
constexpr char kFormat[] = "ihs export v1";

kj::ArrayPtr<const kj::byte> Bytes(absl::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
absl::string_view View(capnp::Data::Reader d) {
  return absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size());
}
std::string Hex(const tlog::Hash& h) { return HashHex(h); }

// A running SHA-256 of the bytes written or read so far.
class Digest {
 public:
  Digest() { crypto_hash_sha256_init(&state_); }
  void Add(const void* data, size_t n) {
    crypto_hash_sha256_update(&state_, static_cast<const unsigned char*>(data), n);
  }
  std::string Value() {  // of everything added so far; the digest goes on
    crypto_hash_sha256_state copy = state_;
    std::string out(crypto_hash_sha256_BYTES, '\0');
    crypto_hash_sha256_final(&copy, reinterpret_cast<unsigned char*>(out.data()));
    return out;
  }

 private:
  crypto_hash_sha256_state state_;
};

// The two forms of an archive, written side by side: each record goes to both, and each file's
// trailer holds the digest of that file's own bytes before it.
class ArchiveWriter {
 public:
  static absl::StatusOr<std::unique_ptr<ArchiveWriter>> Create(const std::string& out) {
    auto w = std::unique_ptr<ArchiveWriter>(new ArchiveWriter(out));
    w->fd_ = ::open(w->packed_tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd_ < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write ", out, ": ", std::strerror(errno)));
    }
    w->jsonl_.open(w->jsonl_tmp_, std::ios::binary | std::ios::trunc);
    if (!w->jsonl_) return absl::InvalidArgumentError(absl::StrCat("cannot write ", out, ".jsonl"));
    return w;
  }
  ~ArchiveWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) {
      std::error_code ec;
      std::filesystem::remove(packed_tmp_, ec);
      std::filesystem::remove(jsonl_tmp_, ec);
    }
  }

  absl::Status Write(capnp::MessageBuilder& record) {
    kj::VectorOutputStream packed;
    capnp::writePackedMessage(packed, record);
    auto bytes = packed.getArray();
    packed_digest_.Add(bytes.begin(), bytes.size());
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::write(fd_, bytes.begin() + done, bytes.size() - done);
      if (n < 0)
        return absl::UnavailableError(absl::StrCat("write ", out_, ": ", std::strerror(errno)));
      done += static_cast<size_t>(n);
    }
    std::string line = codec_.Encode(record.getRoot<schema::ExportRecord>().asReader());
    line.push_back('\n');
    jsonl_digest_.Add(line.data(), line.size());
    jsonl_ << line;
    if (!jsonl_) return absl::UnavailableError(absl::StrCat("write ", out_, ".jsonl"));
    return absl::OkStatus();
  }

  // The trailers (each with its own file's digest), then both files synced and renamed.
  absl::Status Finish(uint64_t events) {
    for (bool packed : {true, false}) {
      capnp::MallocMessageBuilder m;
      auto t = m.initRoot<schema::ExportRecord>().initTrailer();
      t.setEvents(events);
      const std::string digest = packed ? packed_digest_.Value() : jsonl_digest_.Value();
      t.setSha256(Bytes(digest));
      if (packed) {
        kj::FdOutputStream out(fd_);
        capnp::writePackedMessage(out, m);
      } else {
        jsonl_ << codec_.Encode(m.getRoot<schema::ExportRecord>().asReader()) << "\n";
      }
    }
    jsonl_.close();
    if (!jsonl_ || ::fsync(fd_) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot finish writing ", out_));
    }
    ::close(fd_);
    fd_ = -1;
    std::error_code ec;
    std::filesystem::rename(packed_tmp_, out_, ec);
    if (!ec) std::filesystem::rename(jsonl_tmp_, out_ + ".jsonl", ec);
    if (ec)
      return absl::UnavailableError(
          absl::StrCat("cannot move ", out_, " into place: ", ec.message()));
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  explicit ArchiveWriter(std::string out)
      : out_(std::move(out)), packed_tmp_(out_ + ".tmp"), jsonl_tmp_(out_ + ".jsonl.tmp") {}
  const std::string out_, packed_tmp_, jsonl_tmp_;
  int fd_ = -1;
  std::ofstream jsonl_;
  Digest packed_digest_, jsonl_digest_;
  schema::EventJson codec_;
  bool committed_ = false;
};

absl::Status WriteEvent(ArchiveWriter& w, const store::StoredEvent& e,
                        const std::vector<tlog::Hash>* path) {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<schema::ExportRecord>().initEvent();
  r.setPosition(e.position());
  r.setStored(Bytes(e.bytes()));
  r.setEvent(e.event());
  if (path != nullptr) {
    std::string joined;
    for (const tlog::Hash& h : *path) {
      joined.append(reinterpret_cast<const char*>(h.data()), h.size());
    }
    r.setPath(Bytes(joined));
  }
  return w.Write(m);
}

}  // namespace

absl::Status AuditExport(store::EventStore& store, const std::string& party, const std::string& out,
                         bool json_out) {
  IHS_ASSIGN_OR_RETURN(std::string note, SignedHead(store));
  IHS_ASSIGN_OR_RETURN(tlog::VerifierKey key, VerifierKey(store));
  tlog::TreeHead head;
  std::string why;
  if (!tlog::OpenHead(note, key, &head, &why)) return absl::InternalError(why);
  store::ReadOptions sealed;
  sealed.open_content = false;

  // A party's events (those the head covers) are few enough to hold; the log is streamed.
  std::vector<store::StoredEvent> events;
  if (!party.empty()) {
    absl::StatusOr<store::StreamInfo> info = store.GetStreamInfo(party);
    if (info.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat("no such party: ", party));
    }
    IHS_RETURN_IF_ERROR(info.status());
    for (uint64_t version = 0; version < info->event_count;) {
      IHS_ASSIGN_OR_RETURN(
          std::vector<store::StoredEvent> page,
          store.ReadStream(party, version, 1000, store::ReadDirection::kForward, sealed));
      if (page.empty()) break;
      version += page.size();
      for (store::StoredEvent& e : page) {
        if (e.position() < head.size) events.push_back(std::move(e));
      }
    }
  }
  const uint64_t total = party.empty() ? head.size : events.size();

  IHS_ASSIGN_OR_RETURN(std::unique_ptr<ArchiveWriter> w, ArchiveWriter::Create(out));
  {
    capnp::MallocMessageBuilder m;
    auto h = m.initRoot<schema::ExportRecord>().initHeader();
    h.setFormat(kFormat);
    h.setParty(party);
    h.setHead(note);
    h.setVerifierKey(tlog::FormatVerifierKey(key));
    h.setExportedAt(absl::ToUnixMicros(absl::Now()));
    h.setEvents(total);
    IHS_RETURN_IF_ERROR(w->Write(m));
  }
  Progress progress(absl::StrCat("export ", party.empty() ? "the log" : party));
  if (json_out) progress.Disable();
  uint64_t written = 0;
  if (!party.empty()) {
    constexpr size_t kBatch = 1000;
    for (size_t from = 0; from < events.size(); from += kBatch) {
      const size_t to = std::min(events.size(), from + kBatch);
      std::vector<uint64_t> positions;
      for (size_t i = from; i < to; ++i) positions.push_back(events[i].position());
      IHS_ASSIGN_OR_RETURN(std::vector<std::vector<tlog::Hash>> paths,
                           InclusionProofs(store, positions, head.size));
      for (size_t i = from; i < to; ++i) {
        IHS_RETURN_IF_ERROR(WriteEvent(*w, events[i], &paths[i - from]));
      }
      written = to;
      progress.Update(written, total);
    }
  } else {
    while (written < head.size) {
      IHS_ASSIGN_OR_RETURN(
          std::vector<store::StoredEvent> page,
          store.ReadAll(written, std::min<uint64_t>(16384, head.size - written), sealed));
      if (page.empty()) return absl::DataLossError(absl::StrCat("no event at position ", written));
      for (const store::StoredEvent& e : page) IHS_RETURN_IF_ERROR(WriteEvent(*w, e, nullptr));
      written += page.size();
      progress.Update(written, total);
    }
  }
  IHS_RETURN_IF_ERROR(w->Finish(written));
  progress.Finish();
  if (json_out) {
    std::cout << JsonLine(json{{"ok", true},
                               {"party", party},
                               {"events", written},
                               {"treeSize", head.size},
                               {"root", Hex(head.root)},
                               {"files", json::array({out, out + ".jsonl"})}})
              << "\n";
  } else {
    absl::PrintF(
        "exported %d events of %s, proved against a head of %d events, to %s and "
        "%s.jsonl\n",
        written, party.empty() ? "the log" : party, head.size, out, out);
  }
  return absl::OkStatus();
}

namespace {

// Reads an archive's records in order, in either form, with the digest of the bytes before
// each record.
class ArchiveReader {
 public:
  static absl::StatusOr<std::unique_ptr<ArchiveReader>> Open(const std::string& file) {
    auto r = std::unique_ptr<ArchiveReader>(new ArchiveReader);
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read export ", file, ": ", std::strerror(errno)));
    }
    struct stat st;
    ::fstat(fd, &st);
    r->size_ = static_cast<size_t>(st.st_size);
    if (r->size_ > 0) {
      void* p = ::mmap(nullptr, r->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return absl::InvalidArgumentError(absl::StrCat("cannot map export ", file));
      }
      r->data_ = static_cast<const char*>(p);
    }
    ::close(fd);
    r->json_ = r->size_ > 0 && r->data_[0] == '{';
    return r;
  }
  ~ArchiveReader() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  }

  bool json() const { return json_; }
  bool at_end() const { return offset_ >= size_; }
  size_t offset() const { return offset_; }
  // The digest of every byte before the record that Next will read.
  std::string DigestSoFar() { return digest_.Value(); }

  // The next record into `out`; kDataLoss names the byte where the archive stops making sense.
  absl::Status Next(capnp::MallocMessageBuilder& out) {
    const size_t start = offset_;
    if (json_) {
      const char* end =
          static_cast<const char*>(std::memchr(data_ + offset_, '\n', size_ - offset_));
      if (end == nullptr) return Damaged(start, "a line without its newline");
      const absl::string_view line(data_ + offset_, static_cast<size_t>(end - (data_ + offset_)));
      absl::Status s = codec_.Decode(line, out.initRoot<schema::ExportRecord>());
      if (!s.ok()) return Damaged(start, s.message());
      offset_ = static_cast<size_t>(end - data_) + 1;
    } else {
      kj::ArrayInputStream in(
          kj::arrayPtr(reinterpret_cast<const kj::byte*>(data_) + offset_, size_ - offset_));
      std::string shape;
      KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() {
                     capnp::PackedMessageReader reader(in);
                     out.setRoot(reader.getRoot<schema::ExportRecord>());
                     shape = RecordShapeProblem(out.getRoot<schema::ExportRecord>().asReader());
                   })) {
        return Damaged(start, e->getDescription().cStr());
      }
      // A copy keeps what the file held: text without its NUL, a struct where text belongs would
      // otherwise throw later, outside any catch, wherever the field is first read.
      if (!shape.empty()) return Damaged(start, shape);
      offset_ = size_ - in.tryGetReadBuffer().size();
    }
    digest_.Add(data_ + start, offset_ - start);
    return absl::OkStatus();
  }

 private:
  // Reads every field of a record through its typed accessor, inside a catch: the problem, or
  // "" when the record has the shape of its schema.
  static std::string RecordShapeProblem(schema::ExportRecord::Reader r) {
    std::string problem;
    KJ_IF_MAYBE (
        e, kj::runCatchingExceptions([&]() {
          switch (r.which()) {
            case schema::ExportRecord::HEADER: {
              auto h = r.getHeader();
              for (auto t : {h.getFormat(), h.getParty(), h.getHead(), h.getVerifierKey()}) {
                (void)t.size();
              }
              break;
            }
            case schema::ExportRecord::EVENT: {
              auto ev = r.getEvent();
              (void)ev.getStored().size();
              (void)ev.getPath().size();
              problem = store::EventShapeProblem(ev.getEvent());
              break;
            }
            case schema::ExportRecord::TRAILER:
              (void)r.getTrailer().getSha256().size();
              break;
            default:
              break;
          }
        })) {
      return e->getDescription().cStr();
    }
    return problem;
  }

  static absl::Status Damaged(size_t at, absl::string_view why) {
    return absl::DataLossError(absl::StrCat("the export is damaged at byte ", at, ": ", why));
  }
  const char* data_ = nullptr;
  size_t size_ = 0, offset_ = 0;
  bool json_ = false;
  Digest digest_;
  schema::EventJson codec_;
};

}  // namespace

absl::Status AuditVerifyExport(const std::string& file, const std::string& key_file,
                               bool json_out) {
  IHS_ASSIGN_OR_RETURN(std::unique_ptr<ArchiveReader> reader, ArchiveReader::Open(file));
  auto fail = [&](const std::string& why) {
    if (json_out) std::cout << JsonLine(json{{"ok", false}, {"error", why}}) << "\n";
    return absl::DataLossError(why);
  };
  if (reader->at_end()) return fail("the export is empty");

  capnp::MallocMessageBuilder first;
  if (absl::Status s = reader->Next(first); !s.ok()) return fail(std::string(s.message()));
  auto rec = first.getRoot<schema::ExportRecord>().asReader();
  if (!rec.isHeader() || rec.getHeader().getFormat() != kFormat) {
    return fail(
        absl::StrCat("not an ihs export (its first record is not an \"", kFormat, "\" header)"));
  }
  const auto header = rec.getHeader();
  const std::string party = header.getParty();
  tlog::VerifierKey key;
  std::string why;
  const bool own_key = key_file.empty();
  if (own_key) {
    if (!tlog::ParseVerifierKey(header.getVerifierKey().cStr(), &key, &why)) {
      return fail(absl::StrCat("the export's verifier key is malformed: ", why));
    }
  } else {
    IHS_ASSIGN_OR_RETURN(std::string text, ReadFile(key_file, "verifier key"));
    if (!tlog::ParseVerifierKey(std::string(absl::StripAsciiWhitespace(text)), &key, &why)) {
      return absl::InvalidArgumentError(absl::StrCat("verifier key ", key_file, ": ", why));
    }
  }
  tlog::TreeHead head;
  if (!tlog::OpenHead(header.getHead().cStr(), key, &head, &why)) {
    return fail(absl::StrCat("the export's head is refused: ", why));
  }

  Progress progress("verify-export");
  if (json_out) progress.Disable();
  store::LogRoot tree;  // an export of the whole log: its events give the root
  uint64_t events = 0;
  int64_t last_position = -1;
  for (;;) {
    if (reader->at_end()) return fail("the export ends without its trailer: it was cut short");
    const std::string digest_before = reader->DigestSoFar();
    capnp::MallocMessageBuilder m;
    if (absl::Status s = reader->Next(m); !s.ok()) return fail(std::string(s.message()));
    auto r = m.getRoot<schema::ExportRecord>().asReader();
    if (r.isTrailer()) {
      const auto t = r.getTrailer();
      if (View(t.getSha256()) != digest_before) {
        return fail("the export's bytes do not match its trailer's digest: a byte was changed");
      }
      if (t.getEvents() != events || header.getEvents() != events) {
        return fail(absl::StrCat("the export holds ", events, " events; its header says ",
                                 header.getEvents(), " and its trailer ", t.getEvents()));
      }
      if (!reader->at_end()) return fail("there are bytes after the export's trailer");
      break;
    }
    if (!r.isEvent()) return fail("a second header inside the export");
    const auto e = r.getEvent();
    const uint64_t position = e.getPosition();
    const absl::string_view stored = View(e.getStored());
    // The readable event must be exactly the stored one.
    std::string encoded;
    KJ_IF_MAYBE (ex, kj::runCatchingExceptions(
                         [&]() { encoded = store::EncodeRecord(e.getEvent()); })) {
      return fail(absl::StrCat("the event at position ", position,
                               " does not encode: ", ex->getDescription().cStr()));
    }
    if (encoded != stored || e.getEvent().getPosition() != position) {
      return fail(
          absl::StrCat("the event at position ", position, " differs from its stored bytes"));
    }
    if (static_cast<int64_t>(position) <= last_position || position >= head.size) {
      return fail(absl::StrCat("position ", position, " is out of order or past the head"));
    }
    if (party.empty()) {
      if (position != static_cast<uint64_t>(last_position + 1)) {
        return fail(absl::StrCat("the export of the log skips position ", last_position + 1));
      }
      tree.Add(stored);
    } else {
      if (e.getEvent().getStreamId() != party) {
        return fail(absl::StrCat("the event at position ", position, " is not ", party, "'s"));
      }
      const absl::string_view joined = View(e.getPath());
      if (joined.size() % 32 != 0) return fail(absl::StrCat("position ", position, ": a bad path"));
      std::vector<tlog::Hash> path(joined.size() / 32);
      for (size_t i = 0; i < path.size(); ++i) {
        std::memcpy(path[i].data(), joined.data() + 32 * i, 32);
      }
      if (!tlog::VerifyInclusion(position, head.size, store::RecordLeafHash(stored), path,
                                 head.root, &why, &store::RecordNodeHash)) {
        return fail(
            absl::StrCat("the event at position ", position, " is not in the head's tree: ", why));
      }
    }
    last_position = static_cast<int64_t>(position);
    ++events;
    if (events % 4096 == 0) progress.Update(events, header.getEvents());
  }
  progress.Update(events, header.getEvents());
  progress.Finish();
  if (party.empty() && (events != head.size || tree.Root() != head.root)) {
    return fail("the exported log does not hash to the head's root");
  }
  const std::string warning =
      own_key ? "checked with the key the export names: pass --key with one you trust to know "
                "who signed it"
              : "";
  if (json_out) {
    json j = {{"ok", true},
              {"party", party},
              {"events", events},
              {"treeSize", head.size},
              {"root", Hex(head.root)},
              {"format", reader->json() ? "jsonl" : "packed"}};
    if (own_key) j["warning"] = warning;
    std::cout << JsonLine(j) << "\n";
  } else {
    absl::PrintF("ok: %d events of %s verified against a signed head of %d events (root %s)\n",
                 events, party.empty() ? "the log" : party, head.size, Hex(head.root));
    if (own_key) std::cerr << "ihs: " << warning << "\n";
  }
  return absl::OkStatus();
}

}  // namespace ihs::tools
