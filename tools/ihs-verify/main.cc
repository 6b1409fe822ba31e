// ihs-verify: checks ihs's signed tree heads and proofs without ihs, its store or its libraries.
// It is built from store/tlog.cc and libsodium alone (docs/audit.md), so an auditor can read all
// of what it trusts in one sitting.
//
//   ihs-verify head KEY HEAD                    the head is signed by the store with KEY
//   ihs-verify inclusion KEY PROOF              the event in PROOF is in the tree of its head
//   ihs-verify consistency KEY OLD NEW PROOF    the log of head NEW extends the log of head OLD
//   ihs-verify inclusion-values LEAF_HASH INDEX SIZE ROOT [HASH...]
//                                               bare values: the leaf hash is at INDEX in the
//                                               tree of SIZE leaves with ROOT (RFC 9162 2.1.3.2)
//   ihs-verify consistency-values OLD_SIZE NEW_SIZE OLD_ROOT NEW_ROOT [HASH...]
//                                               bare values: the tree of NEW_SIZE extends the
//                                               tree of OLD_SIZE (RFC 9162 2.1.4.2)
//
// KEY is a file with the verifier key from `ihs audit pubkey`; HEAD, OLD and NEW are heads from
// `ihs audit head --out`; PROOF comes from `ihs audit prove-event --out` or
// `ihs audit verify-head --out`. In the bare forms, hashes are 64 hex digits or base64, and the
// proof's hashes are given in the RFC's order; nothing of ihs's formats is needed, so test
// vectors and other logs' proofs can be checked.
// Exit codes: 0 verified, 1 usage, 2 a file cannot be read or is not what it should be (a head
// that does not parse included), 4 it does not verify (and the message says what failed).
#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "store/tlog.h"

namespace {

using namespace ihs::tlog;

constexpr int kOk = 0, kUsage = 1, kBadInput = 2, kFailed = 4;

int Usage() {
  std::cerr << "usage: ihs-verify head KEY HEAD\n"
               "       ihs-verify inclusion KEY PROOF\n"
               "       ihs-verify consistency KEY OLD NEW PROOF\n"
               "       ihs-verify inclusion-values LEAF_HASH INDEX SIZE ROOT [HASH...]\n"
               "       ihs-verify consistency-values OLD_SIZE NEW_SIZE OLD_ROOT NEW_ROOT "
               "[HASH...]\n"
               "exit codes: 0 verified, 1 usage, 2 unreadable input, 4 does not verify\n";
  return kUsage;
}

bool Read(const char* path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "ihs-verify: cannot read " << path << "\n";
    return false;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  *out = buf.str();
  return true;
}

int Refuse(const std::string& what, const std::string& why) {
  std::cerr << "ihs-verify: " << what << ": " << why << "\n";
  return kFailed;
}

std::string Hex(const Hash& h) {
  char out[65];
  sodium_bin2hex(out, sizeof(out), h.data(), h.size());
  return out;
}

// Checks a head's signature; a head that does not parse is bad input (2), one that parses but
// does not verify fails (4). Prints nothing on success.
int CheckHead(const VerifierKey& key, const std::string& note, const std::string& what,
              TreeHead* head) {
  std::string why;
  if (!ParseHead(note, head, nullptr, &why)) {
    std::cerr << "ihs-verify: " << what << ": " << why << "\n";
    return kBadInput;
  }
  if (!OpenHead(note, key, head, &why)) return Refuse(what, why);
  return kOk;
}

// Reads a head and checks its signature.
int Head(const VerifierKey& key, const char* path, TreeHead* head) {
  std::string note;
  if (!Read(path, &note)) return kBadInput;
  return CheckHead(key, note, std::string("head ") + path, head);
}

// A hash given on the command line: 64 hex digits or base64.
bool ParseHashArg(const std::string& text, Hash* out) {
  std::string bytes;
  if (text.size() == 64) {
    bytes.resize(32);
    size_t len = 0;
    if (sodium_hex2bin(reinterpret_cast<unsigned char*>(bytes.data()), bytes.size(), text.data(),
                       text.size(), nullptr, &len, nullptr) == 0 &&
        len == 32) {
      return HashFromBytes(bytes, out);
    }
  }
  return FromBase64(text, &bytes) && HashFromBytes(bytes, out);
}

bool ParseNumberArg(const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 20 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

// The bare forms: values on the command line, no key, no files.
int Values(const std::string& cmd, int argc, char** argv) {
  auto bad = [](const std::string& what, const std::string& text) {
    std::cerr << "ihs-verify: " << what << " \"" << text << "\" is not "
              << (what.find("size") != std::string::npos || what == "INDEX"
                      ? "a whole number"
                      : "a SHA-256 hash (64 hex digits or base64)")
              << "\n";
    return kBadInput;
  };
  std::vector<Hash> proof;
  auto hashes_from = [&](int first) {
    for (int i = first; i < argc; ++i) {
      Hash h;
      if (!ParseHashArg(argv[i], &h)) return bad("HASH", argv[i]);
      proof.push_back(h);
    }
    return kOk;
  };
  std::string why;
  if (cmd == "inclusion-values" && argc >= 6) {
    Hash leaf, root;
    uint64_t index = 0, size = 0;
    if (!ParseHashArg(argv[2], &leaf)) return bad("LEAF_HASH", argv[2]);
    if (!ParseNumberArg(argv[3], &index)) return bad("INDEX", argv[3]);
    if (!ParseNumberArg(argv[4], &size)) return bad("tree size", argv[4]);
    if (!ParseHashArg(argv[5], &root)) return bad("ROOT", argv[5]);
    if (int rc = hashes_from(6); rc != kOk) return rc;
    if (!VerifyInclusion(index, size, leaf, proof, root, &why)) {
      return Refuse("leaf " + std::to_string(index), why);
    }
    std::printf("ok: leaf %s is at index %s of the tree of %s leaves with root %s\n",
                Hex(leaf).c_str(), argv[3], argv[4], Hex(root).c_str());
    return kOk;
  }
  if (cmd == "consistency-values" && argc >= 6) {
    uint64_t old_size = 0, new_size = 0;
    Hash old_root, new_root;
    if (!ParseNumberArg(argv[2], &old_size)) return bad("old size", argv[2]);
    if (!ParseNumberArg(argv[3], &new_size)) return bad("new size", argv[3]);
    if (!ParseHashArg(argv[4], &old_root)) return bad("OLD_ROOT", argv[4]);
    if (!ParseHashArg(argv[5], &new_root)) return bad("NEW_ROOT", argv[5]);
    if (int rc = hashes_from(6); rc != kOk) return rc;
    if (!VerifyConsistency(old_size, new_size, old_root, new_root, proof, &why)) {
      return Refuse(
          "the tree of " + std::string(argv[3]) + " does not extend the tree of " + argv[2], why);
    }
    std::printf("ok: the tree of %s leaves extends the tree of %s leaves unchanged\n", argv[3],
                argv[2]);
    return kOk;
  }
  return Usage();
}

int Run(int argc, char** argv) {
  if (argc < 3) return Usage();
  if (sodium_init() < 0) {
    std::cerr << "ihs-verify: libsodium failed to start\n";
    return kFailed;
  }
  const std::string cmd = argv[1];
  if (cmd == "inclusion-values" || cmd == "consistency-values") return Values(cmd, argc, argv);
  std::string key_text, why;
  if (!Read(argv[2], &key_text)) return kBadInput;
  VerifierKey key;
  if (!ParseVerifierKey(key_text, &key, &why)) {
    std::cerr << "ihs-verify: " << argv[2] << ": " << why << "\n";
    return kBadInput;
  }
  if (cmd == "head" && argc == 4) {
    TreeHead head;
    if (int rc = Head(key, argv[3], &head); rc != kOk) return rc;
    std::printf("ok: %s signed a tree of %llu events, root %s, at %lld µs\n", head.origin.c_str(),
                static_cast<unsigned long long>(head.size), Hex(head.root).c_str(),
                static_cast<long long>(head.time_micros));
    return kOk;
  }
  if (cmd == "inclusion" && argc == 4) {
    std::string text;
    if (!Read(argv[3], &text)) return kBadInput;
    InclusionProof proof;
    if (!ParseInclusionProof(text, &proof, &why)) {
      std::cerr << "ihs-verify: " << argv[3] << ": " << why << "\n";
      return kBadInput;
    }
    TreeHead head;
    if (int rc = CheckHead(key, proof.head, "the proof's head", &head); rc != kOk) return rc;
    if (!VerifyInclusion(proof.index, head.size, LeafHash(proof.leaf_bytes), proof.path, head.root,
                         &why)) {
      return Refuse("event " + std::to_string(proof.index), why);
    }
    std::printf("ok: the event at position %llu (leaf %s) is in the tree of %llu events\n",
                static_cast<unsigned long long>(proof.index),
                Hex(LeafHash(proof.leaf_bytes)).c_str(),
                static_cast<unsigned long long>(head.size));
    return kOk;
  }
  if (cmd == "consistency" && argc == 6) {
    TreeHead old_head, new_head;
    if (int rc = Head(key, argv[3], &old_head); rc != kOk) return rc;
    if (int rc = Head(key, argv[4], &new_head); rc != kOk) return rc;
    std::string text;
    if (!Read(argv[5], &text)) return kBadInput;
    ConsistencyProof proof;
    if (!ParseConsistencyProof(text, &proof, &why)) {
      std::cerr << "ihs-verify: " << argv[5] << ": " << why << "\n";
      return kBadInput;
    }
    if (proof.old_size != old_head.size || proof.new_size != new_head.size) {
      return Refuse("the proof", "it is for other tree sizes than the two heads");
    }
    if (!VerifyConsistency(old_head.size, new_head.size, old_head.root, new_head.root, proof.path,
                           &why)) {
      return Refuse("NEW does not extend OLD", why);
    }
    std::printf("ok: the log of %llu events extends the log of %llu events unchanged\n",
                static_cast<unsigned long long>(new_head.size),
                static_cast<unsigned long long>(old_head.size));
    return kOk;
  }
  return Usage();
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
