// Tests of the store's audit surface (store/event_store.h "Audit", store/tlog.h): RFC 9162
// inclusion and consistency proofs for every pair of sizes of a small log, signed tree heads, and
// what an attacker or a wrong input gets.
#include "store/audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <sodium.h>

#include <array>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "store/backup.h"
#include "store/event_store.h"
#include "store/governance.h"
#include "store/internal/keys.h"
#include "store/internal/merkle.h"
#include "store/record.h"
#include "store/state_store.h"
#include "store/tlog.h"
#include "tests/testutil/raw_db.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"

namespace ihs::store {
namespace {

using ihs::testing::EventFactory;
using schema::Channel;
using schema::TouchpointType;
using ::testing::HasSubstr;

constexpr uint64_t kEvents = 70;  // past 64, so that sizes cross a power of two

class AuditTest : public ihs::testing::StoreTest {
 protected:
  void Append(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      ++next_id_;
      IHS_ASSERT_OK(store_->Append(
          {absl::StrCat("party-", next_id_ % 5),
           ExpectedVersion::Any(),
           {events_.Touchpoint(next_id_, Channel::EMAIL, TouchpointType::MESSAGE, "hi")}}));
    }
  }

  tlog::Hash RootOf(uint64_t size) {
    auto r = Root(*store_, size);
    EXPECT_TRUE(r.ok()) << r.status();
    tlog::Hash h{};
    EXPECT_TRUE(tlog::HashFromBytes(*r, &h));
    return h;
  }

  std::vector<std::string> AllBytes() { return ihs::testing::AllStoredBytes(*store_); }

  tlog::VerifierKey Key() {
    auto k = VerifierKey(*store_);
    EXPECT_TRUE(k.ok()) << k.status();
    return *k;
  }
};

TEST_F(AuditTest, EveryInclusionProofOfEverySizeVerifiesAndATamperedOneDoesNot) {
  Append(kEvents);
  const std::vector<std::string> bytes = AllBytes();
  for (uint64_t size = 1; size <= kEvents; ++size) {
    const tlog::Hash root = RootOf(size);
    for (uint64_t i = 0; i < size; ++i) {
      auto path = InclusionProof(*store_, i, size);
      ASSERT_TRUE(path.ok()) << path.status();
      const tlog::Hash leaf = tlog::LeafHash(bytes[i]);
      std::string why;
      ASSERT_TRUE(tlog::VerifyInclusion(i, size, leaf, *path, root, &why))
          << "index " << i << " size " << size << ": " << why;
      EXPECT_FALSE(tlog::VerifyInclusion(i, size, tlog::LeafHash(bytes[(i + 1) % kEvents]), *path,
                                         root, &why));
      if (!path->empty()) {
        std::vector<tlog::Hash> forged = *path;
        forged[i % forged.size()][7] ^= 0x10;
        EXPECT_FALSE(tlog::VerifyInclusion(i, size, leaf, forged, root, &why));
        EXPECT_FALSE(tlog::VerifyInclusion((i + 1) % size, size, leaf, *path, root, &why));
        std::vector<tlog::Hash> shorter(path->begin(), path->end() - 1);
        EXPECT_FALSE(tlog::VerifyInclusion(i, size, leaf, shorter, root, &why));
      }
    }
  }
  EXPECT_EQ(InclusionProof(*store_, 5, 5).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(InclusionProof(*store_, 0, kEvents + 1).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(AuditTest, ABatchOfPathsEqualsThePathsOneByOneAcrossTheSplitBatch) {
  // Enough events that the paths of all of them need more distinct nodes than one thread reads
  // (RangeHashes splits batches of 4,096 keys or more).
  constexpr uint64_t kMany = 5000;
  for (uint64_t done = 0; done < kMany; done += 500) {
    StreamAppend a{"bulk", ExpectedVersion::Any(), {}};
    for (uint64_t i = 0; i < 500; ++i) {
      a.events.push_back(events_.Touchpoint(++next_id_, Channel::EMAIL, TouchpointType::MESSAGE));
    }
    IHS_ASSERT_OK(store_->Append(a));
  }
  const std::vector<std::string> bytes = AllBytes();
  for (uint64_t size : {kMany, kMany - 77}) {
    std::vector<uint64_t> indices;
    for (uint64_t i = 0; i < size; i += (i % 3) + 1) indices.push_back(i);
    auto batch = InclusionProofs(*store_, indices, size);
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_EQ(batch->size(), indices.size());
    const tlog::Hash root = RootOf(size);
    for (size_t j = 0; j < indices.size(); ++j) {
      auto one = InclusionProof(*store_, indices[j], size);
      ASSERT_TRUE(one.ok()) << one.status();
      ASSERT_EQ((*batch)[j], *one) << "index " << indices[j];
      std::string why;
      ASSERT_TRUE(tlog::VerifyInclusion(indices[j], size, tlog::LeafHash(bytes[indices[j]]),
                                        (*batch)[j], root, &why))
          << why;
    }
  }
  EXPECT_EQ(InclusionProofs(*store_, {1, kMany}, kMany).status().code(),
            absl::StatusCode::kOutOfRange);
  auto none = InclusionProofs(*store_, {}, kMany);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST_F(AuditTest, TheTwoSha256ImplementationsAgree) {
  Append(3);
  const std::vector<std::string> bytes = AllBytes();
  for (const std::string& b : bytes) {
    EXPECT_EQ(tlog::LeafHash(b), store::internal::LeafHash(b));
  }
  EXPECT_EQ(tlog::NodeHash(tlog::LeafHash(bytes[0]), tlog::LeafHash(bytes[1])),
            store::internal::NodeHash(store::internal::LeafHash(bytes[0]),
                                      store::internal::LeafHash(bytes[1])));
}

// What an auditor recomputes with store/record.h, given only the events: the same stored bytes,
// leaf hashes and roots as the store's tree, at every size.
TEST_F(AuditTest, RecordsRecomputedFromTheEventsGiveTheStoresBytesAndRoots) {
  Append(13);
  ReadOptions ro;
  ro.open_content = false;
  auto events = store_->ReadAll(0, 100, ro);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 13u);
  LogRoot root;
  EXPECT_EQ(root.Root(), RootOf(0));
  for (const StoredEvent& e : *events) {
    EXPECT_EQ(EncodeRecord(e.event()), std::string(e.bytes()));
    EXPECT_EQ(EventShapeProblem(e.event()), "");
    EXPECT_EQ(RecordLeafHash(e.bytes()), tlog::LeafHash(std::string(e.bytes())));
    root.Add(e.bytes());
    EXPECT_EQ(root.size(), e.position() + 1);
    EXPECT_EQ(root.Root(), RootOf(e.position() + 1)) << "size " << e.position() + 1;
  }
}

// The calls of store/audit.h, governance.h and backup.h on a log that is not an embedded store
// say so, instead of reaching into memory that is not there.
TEST(StoreFaces, ALogThatIsNotAnEmbeddedStoreIsRefusedByName) {
  class OtherLog final : public EventStore {
   public:
    absl::StatusOr<AppendResult> Append(const StreamAppend&) override { return AppendResult{}; }
    absl::StatusOr<std::vector<AppendResult>> AppendMulti(
        const std::vector<StreamAppend>&) override {
      return std::vector<AppendResult>{};
    }
    absl::StatusOr<std::vector<StoredEvent>> ReadStream(absl::string_view, uint64_t, size_t,
                                                        ReadDirection,
                                                        const ReadOptions&) override {
      return std::vector<StoredEvent>{};
    }
    absl::StatusOr<std::vector<StoredEvent>> ReadAll(uint64_t, size_t,
                                                     const ReadOptions&) override {
      return std::vector<StoredEvent>{};
    }
    absl::StatusOr<StreamInfo> GetStreamInfo(absl::string_view) override { return StreamInfo{}; }
    uint64_t Head() override { return 0; }
    uint64_t WaitForCommit(uint64_t known, absl::Time) override { return known; }
    absl::StatusOr<int64_t> Watermark() override { return 0; }
    absl::StatusOr<StoreStats> Stats() override { return StoreStats{}; }
    StoreMetrics Metrics() override { return StoreMetrics{}; }
    absl::Status Flush() override { return absl::OkStatus(); }
    absl::StatusOr<std::unique_ptr<PreparedAppends>> PrepareAppends(
        const std::vector<StreamAppend>&) override {
      return absl::UnimplementedError("not a store");
    }
    absl::StatusOr<std::vector<AppendResult>> AppendPrepared(PreparedAppends&) override {
      return absl::UnimplementedError("not a store");
    }
    absl::StatusOr<std::optional<uint64_t>> FindEvent(absl::string_view) override {
      return std::nullopt;
    }
  } other;
  EXPECT_EQ(Root(other, 0).status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(SignedHead(other).status().message()), HasSubstr("signing key"));
  EXPECT_EQ(Verify(other).status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(Erase(other, "p", "r", "by").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(Backup(other, "/nonexistent/x", false).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(BackgroundWork(other).status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(StateStoreOf(other), nullptr);
}

TEST_F(AuditTest, EveryConsistencyProofVerifiesAndAForgedOneDoesNot) {
  Append(kEvents);
  for (uint64_t n = 0; n <= kEvents; ++n) {
    const tlog::Hash new_root = RootOf(n);
    for (uint64_t m = 0; m <= n; ++m) {
      const tlog::Hash old_root = RootOf(m);
      auto proof = ConsistencyProof(*store_, m, n);
      ASSERT_TRUE(proof.ok()) << proof.status();
      std::string why;
      ASSERT_TRUE(tlog::VerifyConsistency(m, n, old_root, new_root, *proof, &why))
          << m << " -> " << n << ": " << why;
      if (m == 0) continue;
      tlog::Hash other = old_root;
      other[0] ^= 1;
      EXPECT_FALSE(tlog::VerifyConsistency(m, n, other, new_root, *proof, &why));
      tlog::Hash other_new = new_root;
      other_new[0] ^= 1;
      EXPECT_FALSE(tlog::VerifyConsistency(m, n, old_root, other_new, *proof, &why));
      for (size_t k = 0; k < proof->size(); ++k) {
        std::vector<tlog::Hash> forged = *proof;
        forged[k][31] ^= 0x80;
        EXPECT_FALSE(tlog::VerifyConsistency(m, n, old_root, new_root, forged, &why))
            << m << " -> " << n << " node " << k;
      }
    }
  }
  EXPECT_EQ(ConsistencyProof(*store_, 5, 4).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ConsistencyProof(*store_, 1, kEvents + 1).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST_F(AuditTest, SignedHeadsOpenWithTheStoresKeyOnlyAndUnchanged) {
  Append(10);
  auto note = SignedHead(*store_);
  ASSERT_TRUE(note.ok()) << note.status();
  const tlog::VerifierKey key = Key();
  tlog::TreeHead head;
  std::string why;
  ASSERT_TRUE(tlog::OpenHead(*note, key, &head, &why)) << why << "\n" << *note;
  EXPECT_EQ(head.size, 10u);
  EXPECT_EQ(head.root, RootOf(10));
  EXPECT_EQ(head.time_micros, absl::ToUnixMicros(clock_.Now()));
  EXPECT_EQ(head.origin, key.name);

  // The verifier key survives being written out and read back; a broken one is refused.
  tlog::VerifierKey parsed;
  ASSERT_TRUE(tlog::ParseVerifierKey(tlog::FormatVerifierKey(key) + "\n", &parsed, &why)) << why;
  EXPECT_EQ(parsed.key, key.key);
  EXPECT_EQ(parsed.key_id, key.key_id);
  std::string broken = tlog::FormatVerifierKey(key);
  broken[broken.size() - 5] = broken[broken.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(tlog::ParseVerifierKey(broken, &parsed, &why));

  // One changed byte anywhere in the signed text: refused, and the message says so.
  for (size_t at : {size_t{2}, note->find('\n') + 1, note->find("time") + 6}) {
    std::string changed = *note;
    changed[at] = changed[at] == '1' ? '2' : '1';
    EXPECT_FALSE(tlog::OpenHead(changed, key, &head, &why)) << "byte " << at;
  }
  std::string bad_sig = *note;
  bad_sig[bad_sig.size() - 10] = bad_sig[bad_sig.size() - 10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(tlog::OpenHead(bad_sig, key, &head, &why));
  EXPECT_NE(why.find("signature"), std::string::npos) << why;
  EXPECT_FALSE(tlog::OpenHead("not a head\n", key, &head, &why));

  // A head from another store, checked with this store's key: refused as another store's.
  Reopen({}, "other");
  Append(10);
  auto foreign = SignedHead(*store_);
  ASSERT_TRUE(foreign.ok());
  EXPECT_FALSE(tlog::OpenHead(*foreign, key, &head, &why));
  EXPECT_NE(why.find("another store"), std::string::npos) << why;
}

// A note signed here with a key of the test's own, as another party (a witness, another log's
// operator) would: `body` verbatim, then one signature line per (name, blob).
std::string SignedNote(const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& lines) {
  std::string note = body + "\n";
  for (const auto& [name, blob] : lines)
    note += "\xE2\x80\x94 " + name + " " + tlog::Base64(blob) + "\n";
  return note;
}

struct TestKey {
  tlog::VerifierKey verifier;
  std::array<uint8_t, tlog::kSecretKeyBytes> secret{};
  TestKey() {
    if (sodium_init() < 0) std::abort();
    tlog::PublicKey pub;
    crypto_sign_keypair(pub.data(), secret.data());
    verifier = tlog::VerifierKeyFor(pub);
  }
  tlog::TreeHead Head(uint64_t size, const tlog::Hash& root) const {
    tlog::TreeHead h;
    h.origin = verifier.name;
    h.size = size;
    h.root = root;
    return h;
  }
  // KEYID || Ed25519(body)
  std::string Sign(const std::string& body) const {
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(body.data()),
                         body.size(), secret.data());
    const uint32_t id = verifier.key_id;
    std::string blob{static_cast<char>(id >> 24), static_cast<char>(id >> 16),
                     static_cast<char>(id >> 8), static_cast<char>(id)};
    return blob + std::string(reinterpret_cast<const char*>(sig), sizeof(sig));
  }
};

// C2SP signed-note: a verifier ignores signatures from keys it does not know, whatever their
// length or order; a witness cosignature (4 + 72 bytes) before ihs's own line is the case that
// tlog-checkpoint exists for.
TEST(Tlog, SignaturesOfOtherKeysAreIgnoredWhateverTheirLengthOrOrder) {
  TestKey key;
  tlog::TreeHead head = key.Head(3, tlog::NodeHash(tlog::LeafHash("a"), tlog::LeafHash("b")));
  head.time_micros = 1790000000000000;
  const std::string signed_note = tlog::SignHead(head, key.secret);
  const std::string body = signed_note.substr(0, signed_note.find("\n\n") + 1);
  const std::string ours = key.Sign(body);
  const std::string witness_blob = std::string(4, '\x7f') + std::string(72, 'w');
  for (const auto& lines : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"witness.example/w1", witness_blob}, {key.verifier.name, ours}},
           {{key.verifier.name, ours}, {"witness.example/w1", witness_blob}},
           {{"w2", std::string(5, 'x')}, {"w3", std::string(300, 'y')}, {key.verifier.name, ours}},
           // Another key under ihs's name (another key id): ignored too.
           {{key.verifier.name, std::string(4, '\0') + std::string(64, 's')},
            {key.verifier.name, ours}},
       }) {
    tlog::TreeHead opened;
    std::string why;
    EXPECT_TRUE(tlog::OpenHead(SignedNote(body, lines), key.verifier, &opened, &why)) << why;
    EXPECT_EQ(opened.size, 3u);
    EXPECT_EQ(opened.time_micros, head.time_micros);
  }
  // Without ours, the others do not make it valid.
  tlog::TreeHead opened;
  std::string why;
  EXPECT_FALSE(tlog::OpenHead(SignedNote(body, {{"witness.example/w1", witness_blob}}),
                              key.verifier, &opened, &why));
}

// tlog-checkpoint's extension lines are optional (and discouraged): a standard three-line
// checkpoint opens, with no time; other extension lines are passed over.
TEST(Tlog, CheckpointsWithoutATimeLineOrWithOtherExtensionsOpen) {
  TestKey key;
  const tlog::Hash root = tlog::LeafHash("only");
  for (const std::string& extra :
       {std::string(), std::string("rekor.example/ext 42\n"), std::string("other\ntime 77\n")}) {
    const std::string body =
        key.verifier.name + "\n1\n" + tlog::Base64(tlog::AsBytes(root)) + "\n" + extra;
    tlog::TreeHead opened;
    std::string why;
    ASSERT_TRUE(tlog::OpenHead(SignedNote(body, {{key.verifier.name, key.Sign(body)}}),
                               key.verifier, &opened, &why))
        << why << "\n"
        << body;
    EXPECT_EQ(opened.size, 1u);
    EXPECT_EQ(opened.root, root);
    EXPECT_EQ(opened.time_micros, extra.find("time 77") != std::string::npos ? 77 : 0);
  }
}

// The empty tree has one root, SHA-256 of nothing: a head of size 0 with another is refused, and
// so is a consistency proof from size 0 that claims another old root.
TEST(Tlog, TheEmptyTreeHasOnlyTheEmptyRoot) {
  TestKey key;
  tlog::TreeHead head = key.Head(0, tlog::EmptyRoot());
  tlog::TreeHead opened;
  std::string why;
  EXPECT_TRUE(tlog::OpenHead(tlog::SignHead(head, key.secret), key.verifier, &opened, &why)) << why;
  head.root = tlog::LeafHash("not empty");
  EXPECT_FALSE(tlog::OpenHead(tlog::SignHead(head, key.secret), key.verifier, &opened, &why));
  EXPECT_NE(why.find("empty tree"), std::string::npos) << why;

  const tlog::Hash some_root = tlog::LeafHash("x");
  EXPECT_TRUE(tlog::VerifyConsistency(0, 1, tlog::EmptyRoot(), some_root, {}, &why)) << why;
  EXPECT_FALSE(tlog::VerifyConsistency(0, 1, some_root, some_root, {}, &why));
  EXPECT_FALSE(tlog::VerifyConsistency(0, 0, some_root, some_root, {}, &why));
  EXPECT_TRUE(tlog::VerifyConsistency(0, 0, tlog::EmptyRoot(), tlog::EmptyRoot(), {}, &why));
}

TEST_F(AuditTest, TheSigningKeyIsMadeOnceAndAReadOnlyOpenSignsWithIt) {
  const tlog::VerifierKey key = Key();
  Append(4);
  Options read_only;
  read_only.read_only = true;
  Reopen(read_only);
  EXPECT_EQ(Key().key, key.key);
  auto note = SignedHead(*store_);
  ASSERT_TRUE(note.ok()) << note.status();
  tlog::TreeHead head;
  std::string why;
  EXPECT_TRUE(tlog::OpenHead(*note, key, &head, &why)) << why;
  EXPECT_EQ(head.size, 4u);
}

TEST_F(AuditTest, ProofFilesRoundTripAndRefuseGarbage) {
  Append(9);
  auto note = SignedHead(*store_);
  ASSERT_TRUE(note.ok());
  tlog::InclusionProof p;
  p.index = 3;
  p.leaf_bytes = AllBytes()[3];
  p.path = *InclusionProof(*store_, 3, 9);
  p.head = *note;
  tlog::InclusionProof back;
  std::string why;
  ASSERT_TRUE(tlog::ParseInclusionProof(tlog::FormatInclusionProof(p), &back, &why)) << why;
  EXPECT_EQ(back.index, 3u);
  EXPECT_EQ(back.leaf_bytes, p.leaf_bytes);
  EXPECT_EQ(back.path, p.path);
  EXPECT_EQ(back.head, p.head);
  EXPECT_FALSE(tlog::ParseInclusionProof("ihs inclusion proof v1\nindex x\n\n", &back, &why));
  EXPECT_FALSE(tlog::ParseInclusionProof("hello\n", &back, &why));

  tlog::ConsistencyProof c{4, 9, *ConsistencyProof(*store_, 4, 9)};
  tlog::ConsistencyProof cback;
  ASSERT_TRUE(tlog::ParseConsistencyProof(tlog::FormatConsistencyProof(c), &cback, &why)) << why;
  EXPECT_EQ(cback.old_size, 4u);
  EXPECT_EQ(cback.new_size, 9u);
  EXPECT_EQ(cback.path, c.path);
  EXPECT_FALSE(
      tlog::ParseConsistencyProof("ihs consistency proof v1\nold 1\nnew 2\n!!\n", &cback, &why));
}

// An operator (or an intruder) rewrites one old event directly in RocksDB, and recomputes every
// stored hash above it so that the store looks consistent with itself. A head given out before
// holds them to what they published: the consistency proof fails, and so does the inclusion
// proof of the rewritten event.
TEST_F(AuditTest, ARewrittenOldEventFailsTheConsistencyProofAgainstAnEarlierHead) {
  Append(20);
  const tlog::VerifierKey key = Key();
  tlog::TreeHead old_head;
  std::string why;
  ASSERT_TRUE(tlog::OpenHead(*SignedHead(*store_), key, &old_head, &why)) << why;
  Append(12);
  // party-2 holds ids 2, 7, ... 32: positions 1, 6, 11, 16 are below the head, 21, 26, 31 after.
  auto intact_party = VerifyParty(*store_, "party-2", old_head);
  ASSERT_TRUE(intact_party.ok()) << intact_party.status();
  EXPECT_EQ(intact_party->verified, 4u);
  EXPECT_EQ(intact_party->after_head, 3u);
  EXPECT_EQ(VerifyParty(*store_, "nobody", old_head).status().code(), absl::StatusCode::kNotFound);
  std::vector<std::string> bytes = AllBytes();
  store_.reset();
  {
    ihs::testing::RawDb raw(dir_.Sub("data"));
    constexpr uint64_t kVictim = 6;
    bytes[kVictim][bytes[kVictim].size() - 2] ^= 0x04;
    ASSERT_TRUE(
        raw.db->Put(rocksdb::WriteOptions(), raw.cf["events"], BigEndian64(kVictim), bytes[kVictim])
            .ok());
    // Every complete subtree, recomputed from the changed bytes.
    std::vector<tlog::Hash> level;
    for (const std::string& b : bytes) level.push_back(tlog::LeafHash(b));
    for (uint8_t l = 0; !level.empty(); ++l) {
      std::vector<tlog::Hash> up;
      for (size_t i = 0; i < level.size(); ++i) {
        ASSERT_TRUE(raw.db
                        ->Put(rocksdb::WriteOptions(), raw.cf["merkle"], internal::MerkleKey(l, i),
                              std::string(tlog::AsBytes(level[i])))
                        .ok());
        if (i % 2 == 1) up.push_back(tlog::NodeHash(level[i - 1], level[i]));
      }
      level = std::move(up);
    }
  }
  Reopen();
  IHS_ASSERT_OK(Verify(*store_));  // consistent with itself: only a head can tell
  tlog::TreeHead new_head;
  ASSERT_TRUE(tlog::OpenHead(*SignedHead(*store_), key, &new_head, &why)) << why;
  auto proof = ConsistencyProof(*store_, old_head.size, new_head.size);
  ASSERT_TRUE(proof.ok());
  EXPECT_FALSE(tlog::VerifyConsistency(old_head.size, new_head.size, old_head.root, new_head.root,
                                       *proof, &why));
  EXPECT_NE(why.find("were rewritten, or the proof is damaged"), std::string::npos) << why;
  auto path = InclusionProof(*store_, 6, old_head.size);
  ASSERT_TRUE(path.ok());
  EXPECT_FALSE(tlog::VerifyInclusion(6, old_head.size, tlog::LeafHash(bytes[6]), *path,
                                     old_head.root, &why));
  auto intact = InclusionProof(*store_, 15, old_head.size);
  EXPECT_FALSE(tlog::VerifyInclusion(15, old_head.size, tlog::LeafHash(bytes[15]), *intact,
                                     old_head.root, &why))
      << "its path passes through the rewritten subtree";
  auto party = VerifyParty(*store_, "party-2", old_head);
  EXPECT_EQ(party.status().code(), absl::StatusCode::kDataLoss);
  // Its first event (position 1) fails already: its path holds the subtree [4, 8), which the
  // rewrite recomputed.
  EXPECT_NE(party.status().message().find("the event at position 1 does not verify"),
            std::string::npos)
      << party.status();
}

}  // namespace
}  // namespace ihs::store
