#include "tools/ihs/audit.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "schema/json.h"
#include "store/audit.h"
#include "store/tlog.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/progress.h"

namespace ihs::tools {
namespace {

using nlohmann::json;

std::string Hex(const tlog::Hash& h) { return HashHex(h); }

absl::Status WriteFile(const std::string& path, absl::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InvalidArgumentError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// A head the auditor kept, checked: signed by this store, and the store's log still hashes to
// it at its size (else the history it attests was rewritten or lost).
absl::StatusOr<tlog::TreeHead> CheckedHead(store::EventStore& store, const std::string& file) {
  IHS_ASSIGN_OR_RETURN(std::string note, ReadHead(file));
  IHS_ASSIGN_OR_RETURN(tlog::VerifierKey key, VerifierKey(store));
  tlog::TreeHead head;
  std::string why;
  if (!tlog::ParseHead(note, &head, nullptr, &why)) {  // not a head at all: bad input, not a
    return absl::InvalidArgumentError(absl::StrCat(file, " is not a signed tree head: ", why));
  }
  if (!tlog::OpenHead(note, key, &head, &why)) {
    return absl::DataLossError(absl::StrCat("head ", file, " refused: ", why));
  }
  if (head.size > store.Head()) {
    return absl::DataLossError(absl::StrCat("head ", file, " attests ", head.size,
                                            " events, but the log holds only ", store.Head(),
                                            ": events were lost"));
  }
  IHS_ASSIGN_OR_RETURN(std::string root, Root(store, head.size));
  if (root != tlog::AsBytes(head.root)) {
    return absl::DataLossError(absl::StrCat(
        "history was rewritten: the log's first ", head.size,
        " events no longer hash to the root of head ", file,
        " (`ihs verify` names the first changed position if the stored hashes were left alone)"));
  }
  return head;
}

}  // namespace

std::string HashHex(const tlog::Hash& h) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

absl::StatusOr<std::string> ReadHead(const std::string& path) {
  IHS_ASSIGN_OR_RETURN(std::string text, ReadFile(path, "head"));
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') return text;  // the note itself
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("note") && j["note"].is_string()) {
    return j["note"].get<std::string>();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path,
                   " is JSON but holds no \"note\": give a head as `ihs audit head` "
                   "writes it (plain, or the line of --json)"));
}

absl::Status AuditPubkey(store::EventStore& store, bool json_out) {
  IHS_ASSIGN_OR_RETURN(tlog::VerifierKey key, VerifierKey(store));
  const std::string text = tlog::FormatVerifierKey(key);
  if (json_out) {
    std::cout << JsonLine(json{{"name", key.name},
                               {"keyId", absl::StrFormat("%08x", key.key_id)},
                               {"ed25519", absl::BytesToHexString(absl::string_view(
                                               reinterpret_cast<const char*>(key.key.data()), 32))},
                               {"verifierKey", text}})
              << "\n";
  } else {
    std::cout << text << "\n";
  }
  return absl::OkStatus();
}

absl::Status AuditHead(store::EventStore& store, const std::string& out, bool json_out) {
  IHS_ASSIGN_OR_RETURN(std::string note, SignedHead(store));
  if (!out.empty()) IHS_RETURN_IF_ERROR(WriteFile(out, note));
  if (json_out) {
    IHS_ASSIGN_OR_RETURN(tlog::VerifierKey key, VerifierKey(store));
    tlog::TreeHead head;
    std::string why;
    if (!tlog::OpenHead(note, key, &head, &why)) return absl::InternalError(why);
    std::cout << JsonLine(json{{"origin", head.origin},
                               {"size", head.size},
                               {"root", Hex(head.root)},
                               {"time", schema::FormatMicros(head.time_micros)},
                               {"timeMicros", head.time_micros},
                               {"note", note}})
              << "\n";
  } else {
    std::cout << note;
  }
  return absl::OkStatus();
}

absl::Status AuditProveEvent(store::EventStore& store, uint64_t position,
                             const std::string& head_file, const std::string& out, bool json_out) {
  IHS_ASSIGN_OR_RETURN(tlog::TreeHead head, CheckedHead(store, head_file));
  if (position >= head.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("position ", position, " is not covered by the head, which attests ",
                     head.size, " events (0 to ", head.size - 1, "); take a newer head"));
  }
  store::ReadOptions ro;
  ro.open_content = false;
  IHS_ASSIGN_OR_RETURN(std::vector<store::StoredEvent> events, store.ReadAll(position, 1, ro));
  if (events.empty()) return absl::DataLossError(absl::StrCat("no event at ", position));
  tlog::InclusionProof proof;
  proof.index = position;
  proof.leaf_bytes = std::string(events[0].bytes());
  IHS_ASSIGN_OR_RETURN(proof.path, InclusionProof(store, position, head.size));
  IHS_ASSIGN_OR_RETURN(proof.head, ReadHead(head_file));
  const tlog::Hash leaf = tlog::LeafHash(proof.leaf_bytes);
  std::string why;
  if (!tlog::VerifyInclusion(position, head.size, leaf, proof.path, head.root, &why)) {
    return absl::DataLossError(absl::StrCat("the event at position ", position,
                                            " does not verify against the head: ", why));
  }
  if (!out.empty()) IHS_RETURN_IF_ERROR(WriteFile(out, tlog::FormatInclusionProof(proof)));
  if (json_out) {
    json path = json::array();
    for (const tlog::Hash& h : proof.path) path.push_back(Hex(h));
    std::cout << JsonLine(json{{"ok", true},
                               {"position", position},
                               {"treeSize", head.size},
                               {"root", Hex(head.root)},
                               {"leafHash", Hex(leaf)},
                               {"path", path}})
              << "\n";
  } else {
    absl::PrintF("ok: position %d is in the tree of %d events (root %s), %d hashes\n", position,
                 head.size, Hex(head.root), proof.path.size());
  }
  return absl::OkStatus();
}

absl::Status AuditVerifyHead(store::EventStore& store, const std::string& old_file,
                             const std::string& new_file, const std::string& out, bool json_out) {
  IHS_ASSIGN_OR_RETURN(tlog::VerifierKey key, VerifierKey(store));
  tlog::TreeHead heads[2];
  const std::string* files[2] = {&old_file, &new_file};
  for (int i = 0; i < 2; ++i) {
    IHS_ASSIGN_OR_RETURN(std::string note, ReadHead(*files[i]));
    std::string why;
    if (!tlog::OpenHead(note, key, &heads[i], &why)) {
      return absl::DataLossError(absl::StrCat("head ", *files[i], " refused: ", why));
    }
  }
  const tlog::TreeHead& older = heads[0];
  const tlog::TreeHead& newer = heads[1];
  if (older.size > newer.size) {
    return absl::InvalidArgumentError(absl::StrCat("OLD (", older.size,
                                                   " events) is larger than NEW (", newer.size,
                                                   "): pass the earlier head first"));
  }
  if (newer.size > store.Head()) {
    return absl::DataLossError(absl::StrCat("NEW attests ", newer.size,
                                            " events, but the log holds only ", store.Head(),
                                            ": events were lost"));
  }
  tlog::ConsistencyProof proof{older.size, newer.size, {}};
  IHS_ASSIGN_OR_RETURN(proof.path, ConsistencyProof(store, older.size, newer.size));
  std::string why;
  if (!tlog::VerifyConsistency(older.size, newer.size, older.root, newer.root, proof.path, &why)) {
    if (json_out) std::cout << JsonLine(json{{"ok", false}, {"error", why}}) << "\n";
    return absl::DataLossError(absl::StrCat(
        "NEW does not extend OLD: ", why,
        older.size > 0 ? absl::StrCat(" (at a position below ", older.size, ")") : ""));
  }
  if (!out.empty()) IHS_RETURN_IF_ERROR(WriteFile(out, tlog::FormatConsistencyProof(proof)));
  if (json_out) {
    json path = json::array();
    for (const tlog::Hash& h : proof.path) path.push_back(Hex(h));
    std::cout << JsonLine(json{{"ok", true},
                               {"oldSize", older.size},
                               {"newSize", newer.size},
                               {"oldRoot", Hex(older.root)},
                               {"newRoot", Hex(newer.root)},
                               {"proof", path}})
              << "\n";
  } else {
    absl::PrintF("ok: the log of %d events extends the log of %d events unchanged (%d hashes)\n",
                 newer.size, older.size, proof.path.size());
  }
  return absl::OkStatus();
}

absl::Status AuditVerifyParty(store::EventStore& store, const std::string& party,
                              const std::string& head_file, bool json_out) {
  IHS_ASSIGN_OR_RETURN(tlog::TreeHead head, CheckedHead(store, head_file));
  Progress progress("verify-party");
  if (json_out) progress.Disable();
  IHS_ASSIGN_OR_RETURN(store::PartyAudit audit,
                       store::VerifyParty(store, party, head, [&](uint64_t done, uint64_t total) {
                         progress.Update(done, total);
                       }));
  const uint64_t verified = audit.verified, after = audit.after_head;
  progress.Finish();
  if (json_out) {
    std::cout << JsonLine(json{{"ok", true},
                               {"party", party},
                               {"verified", verified},
                               {"afterHead", after},
                               {"treeSize", head.size},
                               {"root", Hex(head.root)}})
              << "\n";
  } else {
    absl::PrintF("ok: %d events of %s are in the tree of %d events (root %s)", verified, party,
                 head.size, Hex(head.root));
    if (after > 0) absl::PrintF("; %d later events are not covered by this head", after);
    absl::PrintF("\n");
  }
  return absl::OkStatus();
}

}  // namespace ihs::tools
