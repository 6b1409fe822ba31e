// ihs-verify: checks ihs's signed tree heads and proofs without ihs, its store or its libraries.
// It is built from store/tlog.cc and libsodium alone (docs/audit.md), so an auditor can read all
// of what it trusts in one sitting.
//
//   ihs-verify head KEY HEAD                    the head is signed by the store with KEY
//   ihs-verify inclusion KEY PROOF              the event in PROOF is in the tree of its head
//   ihs-verify consistency KEY OLD NEW PROOF    the log of head NEW extends the log of head OLD
//
// KEY is a file with the verifier key from `ihs audit pubkey`; HEAD, OLD and NEW are heads from
// `ihs audit head --out`; PROOF comes from `ihs audit prove-event --out` or
// `ihs audit verify-head --out`.
// Exit codes: 0 verified, 1 usage, 2 a file cannot be read or is not what it should be,
// 4 it does not verify (and the message says what failed).
#include <sodium.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "store/tlog.h"

namespace {

using namespace ihs::tlog;

constexpr int kOk = 0, kUsage = 1, kBadInput = 2, kFailed = 4;

int Usage() {
  std::cerr << "usage: ihs-verify head KEY HEAD\n"
               "       ihs-verify inclusion KEY PROOF\n"
               "       ihs-verify consistency KEY OLD NEW PROOF\n"
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

// Reads a head and checks its signature; prints nothing on success.
int Head(const VerifierKey& key, const char* path, TreeHead* head) {
  std::string note, why;
  if (!Read(path, &note)) return kBadInput;
  if (!OpenHead(note, key, head, &why)) return Refuse(std::string("head ") + path, why);
  return kOk;
}

int Run(int argc, char** argv) {
  if (argc < 3) return Usage();
  if (sodium_init() < 0) {
    std::cerr << "ihs-verify: libsodium failed to start\n";
    return kFailed;
  }
  const std::string cmd = argv[1];
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
    if (!OpenHead(proof.head, key, &head, &why)) return Refuse("the proof's head", why);
    if (!VerifyInclusion(proof.index, head.size, LeafHash(proof.leaf_bytes), proof.path,
                         head.root, &why)) {
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
    if (!VerifyConsistency(old_head.size, new_head.size, old_head.root, new_head.root,
                           proof.path, &why)) {
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
