#include "store/cluster/replica.h"

#include <capnp/serialize.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "common/status_macros.h"

namespace ihs::cluster {
namespace {

constexpr size_t kReadBatch = 1024;
// The store's mark (EventStore::AppendMarked) of the last message that wrote events.
constexpr char kAppliedMark[] = "cluster/applied";

store::ExpectedVersion ExpectedOf(schema::PartitionAppend::Reader a) {
  switch (a.getExpect()) {
    case schema::Expect::ANY:
      return store::ExpectedVersion::Any();
    case schema::Expect::NO_STREAM:
      return store::ExpectedVersion::NoStream();
    case schema::Expect::STREAM_EXISTS:
      return store::ExpectedVersion::StreamExists();
    case schema::Expect::EXACT:
      return store::ExpectedVersion::Exact(a.getExpectedVersion());
  }
  return store::ExpectedVersion::Any();
}

// Whether an append's failure is its verdict (the same on every node for the same log), or the
// node's trouble (I/O, corruption, a full disk), after which the message must be applied again.
bool IsVerdict(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return true;
    default:
      return false;
  }
}

}  // namespace

PartitionReplica::PartitionReplica(Cluster* cluster, uint32_t partition, std::string dir)
    : cluster_(cluster), partition_(partition), dir_(std::move(dir)) {}

PartitionReplica::~PartitionReplica() {
  stop_ = true;
  if (follower_.joinable()) follower_.join();
}

void PartitionReplica::StartFollowing() {
  MutexLock l(&mu_);
  if (following_) return;
  following_ = true;
  reader_.reset();  // the follower reads with a reader of its own
  follower_ = std::thread([this] { Follow(); });
}

void PartitionReplica::Follow() {
  std::unique_ptr<PartitionReader> reader;
  while (!stop_) {
    uint64_t from = 0;
    {
      MutexLock l(&mu_);
      if (!failed_.ok()) return;
      from = applied_;
    }
    if (reader == nullptr) {
      absl::StatusOr<std::unique_ptr<PartitionReader>> r = cluster_->Follow(partition_, from + 1);
      if (!r.ok()) {
        absl::SleepFor(absl::Milliseconds(200));  // the cluster is busy or away: try again
        continue;
      }
      reader = *std::move(r);
    }
    absl::StatusOr<std::vector<PartitionMessage>> batch =
        reader->Next(kReadBatch, absl::Milliseconds(200));
    if (stop_) return;
    if (!batch.ok()) {
      reader.reset();
      absl::SleepFor(absl::Milliseconds(200));
      continue;
    }
    if (batch->empty()) continue;
    MutexLock l(&mu_);
    if (!ApplyAndKeepLocked(*batch).ok()) reader.reset();  // applied again from applied_ + 1
  }
}

bool PartitionReplica::AwaitApplied(uint64_t sequence) {
  auto done = [this, sequence]()
                  ABSL_NO_THREAD_SAFETY_ANALYSIS { return applied_ >= sequence || !failed_.ok(); };
  return AwaitWithTimeout(mu_, absl::Condition(&done), absl::Seconds(10));
}

absl::StatusOr<std::unique_ptr<PartitionReplica>> PartitionReplica::Open(Cluster* cluster,
                                                                         uint32_t partition,
                                                                         const std::string& dir) {
  if (partition >= cluster->config().partitions) {
    return absl::OutOfRangeError(absl::StrCat("partition ", partition,
                                              " does not exist: the cluster has ",
                                              cluster->config().partitions));
  }
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot make ", dir));
  }
  std::unique_ptr<PartitionReplica> r(new PartitionReplica(cluster, partition, dir));
  store::Options o;
  o.path = dir + "/store";
  // One sync per batch of messages, not per message: what a crash loses after the last sync,
  // the mark and the events alike (one WAL record each), is applied again from the log.
  o.sync = false;
  o.synced_by_caller = true;
  IHS_ASSIGN_OR_RETURN(r->store_, store::EventStore::Open(o));
  // How far it got: the mark of the last message that wrote, written with its events, so that a
  // crash cannot separate them; and the file, written after each batch, which may be further
  // (messages after that one that wrote nothing: refused or repeats) or, after a crash, behind.
  // Behind the mark, applying again would be wrong: a message refused then may pass against the
  // log as later messages left it.
  uint64_t applied = 0;
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> mark, r->store_->ReadMark(kAppliedMark));
  if (mark.has_value() && !absl::SimpleAtoi(*mark, &applied)) {
    return absl::DataLossError(absl::StrCat("the replica's mark is not a sequence: ", *mark));
  }
  std::ifstream in(dir + "/applied");
  std::string text;
  if (in && std::getline(in, text)) {
    uint64_t saved = 0;
    if (!absl::SimpleAtoi(text, &saved)) {
      return absl::DataLossError(absl::StrCat(dir, "/applied does not hold a sequence: ", text));
    }
    applied = std::max(applied, saved);
  }
  MutexLock l(&r->mu_);
  r->applied_ = applied;
  return r;
}

uint64_t PartitionReplica::applied() const {
  MutexLock l(&mu_);
  return applied_;
}

absl::StatusOr<uint64_t> PartitionReplica::CatchUp(uint64_t through) {
  MutexLock l(&mu_);
  return CatchUpLocked(through);
}

absl::StatusOr<uint64_t> PartitionReplica::CatchUpLocked(uint64_t through) {
  uint64_t target = through;
  if (target == 0) {
    IHS_ASSIGN_OR_RETURN(target, cluster_->LastSequence(partition_));
  }
  if (following_) {
    AwaitApplied(target);
    IHS_RETURN_IF_ERROR(failed_);
    return applied_;
  }
  while (applied_ < target) {
    IHS_RETURN_IF_ERROR(failed_);
    if (reader_ == nullptr) {
      IHS_ASSIGN_OR_RETURN(reader_, cluster_->Follow(partition_, applied_ + 1));
    }
    IHS_ASSIGN_OR_RETURN(
        std::vector<PartitionMessage> batch,
        reader_->Next(std::min<uint64_t>(kReadBatch, target - applied_), absl::Seconds(10)));
    if (batch.empty()) break;  // not there (yet)
    absl::Status s = ApplyAndKeepLocked(batch);
    if (!s.ok()) {
      reader_.reset();  // it has moved past the batch: follow again from it next time
      return s;
    }
  }
  return applied_;
}

absl::Status PartitionReplica::ApplyAndKeepLocked(const std::vector<PartitionMessage>& batch) {
  IHS_ASSIGN_OR_RETURN(std::vector<Verdict> verdicts, ApplyBatch(batch));
  // Durable before anyone hears a verdict, or reads the events. A sync that fails leaves the
  // batch written but perhaps not durable; applying it again here would judge it against itself,
  // so the replica stops, and a restart goes on from what the store holds (its mark).
  if (absl::Status sync = store_->SyncLog(); !sync.ok()) {
    failed_ = absl::InternalError(absl::StrCat("the replica of partition ", partition_,
                                               " could not sync its store: ", sync.message(),
                                               "; restart the node"));
    return failed_;
  }
  for (Verdict& v : verdicts) {
    applied_ = v.sequence;
    const uint64_t seq = v.sequence;
    verdicts_[seq] = std::move(v);
    verdict_order_.push_back(seq);
    if (verdict_order_.size() > kVerdictsKept) {
      verdicts_.erase(verdict_order_.front());
      verdict_order_.pop_front();
    }
  }
  return SaveApplied();
}

absl::StatusOr<Verdict> PartitionReplica::VerdictOf(uint64_t sequence) {
  MutexLock l(&mu_);
  if (sequence > applied_) {
    if (following_) {
      AwaitApplied(sequence);
      IHS_RETURN_IF_ERROR(failed_);
    } else {
      IHS_RETURN_IF_ERROR(CatchUpLocked(sequence).status());
    }
  }
  if (sequence > applied_) {
    return absl::NotFoundError(absl::StrCat("partition ", partition_, "'s log has no message ",
                                            sequence, " yet (it ends at ", applied_, ")"));
  }
  auto it = verdicts_.find(sequence);
  if (it == verdicts_.end()) return RecomputedVerdict(sequence);
  return it->second;
}

absl::StatusOr<Verdict> PartitionReplica::RecomputedVerdict(uint64_t sequence) {
  // Applied before this replica was opened (by it before a restart, or while another node held
  // the partition and this one followed for a while): what the log and the store say now.
  IHS_ASSIGN_OR_RETURN(std::vector<PartitionMessage> m, cluster_->Read(partition_, sequence, 1));
  if (m.size() != 1 || m[0].sequence != sequence) {
    return absl::DataLossError(absl::StrCat("partition ", partition_, "'s log has no message ",
                                            sequence, ", which the replica applied"));
  }
  // The checks the message failed without the log's state (its shape, its partition, its
  // events' fields) fail again.
  Verdict v;
  v.sequence = sequence;
  Decoded d;
  v.status = Decode(m[0], &d);
  if (!v.status.ok()) return v;
  absl::StatusOr<std::unique_ptr<store::PreparedAppends>> checked =
      store_->PrepareAppends({d.append.append});
  if (!checked.ok()) {
    v.status = checked.status();
    return v;
  }
  auto a = d.reader->getRoot<schema::PartitionAppend>();
  size_t found = 0;
  for (auto e : a.getEvents()) {
    const std::string id(reinterpret_cast<const char*>(e.getId().begin()), e.getId().size());
    IHS_ASSIGN_OR_RETURN(std::optional<uint64_t> position, store_->FindEvent(id));
    if (!position.has_value()) continue;
    IHS_ASSIGN_OR_RETURN(std::vector<store::StoredEvent> stored, store_->ReadAll(*position, 1));
    if (stored.size() != 1) {
      return absl::DataLossError(absl::StrCat("event at position ", *position, " cannot be read"));
    }
    v.result.positions.push_back(*position);
    v.result.versions.push_back(stored[0].event().getStreamVersion());
    ++found;
  }
  if (found == a.getEvents().size()) return v;  // applied (or a repeat of what was)
  v.result = {};
  const std::string stream = a.getStream();
  if (found > 0) {
    v.status = absl::AlreadyExistsError(absl::StrCat(
        "message ", sequence, " appends to ", stream,
        " events of which only some are stored, by an earlier append: it was refused"));
    return v;
  }
  // Refused, and why is no longer kept. A version conflict is the refusal a client can act on:
  // said when the expectation does not hold now either.
  const store::ExpectedVersion expected = ExpectedOf(a);
  absl::StatusOr<store::StreamInfo> info = store_->GetStreamInfo(stream);
  if (!info.ok() && !absl::IsNotFound(info.status())) return info.status();
  const int64_t current = info.ok() ? static_cast<int64_t>(info->current_version) : -1;
  bool holds = true;
  switch (expected.kind()) {
    case store::ExpectedVersion::Kind::kAny:
      break;
    case store::ExpectedVersion::Kind::kNoStream:
      holds = current < 0;
      break;
    case store::ExpectedVersion::Kind::kStreamExists:
      holds = current >= 0;
      break;
    case store::ExpectedVersion::Kind::kExact:
      holds = current == static_cast<int64_t>(expected.version());
      break;
  }
  v.status = holds
                 ? absl::FailedPreconditionError(absl::StrCat(
                       "message ", sequence, " (an append to ", stream,
                       ") was refused when it was applied, and why is no longer kept: none "
                       "of its events is stored"))
                 : store::VersionConflictError(
                       absl::StrCat("append to stream ", stream, ": expected ", expected.ToString(),
                                    ", but the current version is ", current),
                       current);
  return v;
}

absl::Status PartitionReplica::Decode(const PartitionMessage& m, Decoded* out) const {
  if (m.data.empty() || m.data.size() % sizeof(capnp::word) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("message ", m.sequence, " is not a Cap'n Proto message"));
  }
  out->words = kj::heapArray<capnp::word>(m.data.size() / sizeof(capnp::word));
  memcpy(out->words.begin(), m.data.data(), m.data.size());
  try {
    out->reader = std::make_unique<capnp::FlatArrayMessageReader>(out->words);
    auto a = out->reader->getRoot<schema::PartitionAppend>();
    store::EventStore::OrderedAppend& o = out->append;
    o.append.stream = a.getStream();
    o.append.expected = ExpectedOf(a);
    if (PartitionOf(o.append.stream, cluster_->config().partitions) != partition_) {
      // Only a writer that ignores the partition function can put it here; every node
      // refuses it alike.
      return absl::InvalidArgumentError(absl::StrCat("message ", m.sequence, " appends to ",
                                                     o.append.stream,
                                                     ", which is not of partition ", partition_));
    }
    for (auto e : a.getEvents()) o.append.events.push_back(e);
    o.recorded_at = a.getAcceptedAt();
    o.mark_key = kAppliedMark;
    o.mark_value = absl::StrCat(m.sequence);
  } catch (const kj::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("message ", m.sequence, " does not decode: ", e.getDescription().cStr()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Verdict>> PartitionReplica::ApplyBatch(
    const std::vector<PartitionMessage>& batch) {
  std::vector<Verdict> verdicts(batch.size());
  std::vector<Decoded> decoded(batch.size());
  std::vector<store::EventStore::OrderedAppend> appends;
  std::vector<size_t> which;  // appends[j] is batch[which[j]]
  for (size_t i = 0; i < batch.size(); ++i) {
    const PartitionMessage& m = batch[i];
    Verdict& v = verdicts[i];
    v.sequence = m.sequence;
    if (m.sequence != applied_ + 1 + i) {
      return absl::DataLossError(absl::StrCat("partition ", partition_, "'s log jumps from ",
                                              applied_ + i, " to ", m.sequence));
    }
    v.status = Decode(m, &decoded[i]);
    if (!v.status.ok()) continue;
    appends.push_back(decoded[i].append);
    which.push_back(i);
  }
  if (appends.empty()) return verdicts;
  absl::StatusOr<std::vector<absl::StatusOr<store::AppendResult>>> results;
  try {
    results = store_->AppendEach(appends);
  } catch (const kj::Exception& e) {  // a reader deeper into a hostile message than it checked
    results = absl::InternalError(e.getDescription().cStr());
  }
  if (!results.ok()) return results.status();  // nothing written: applied again next time
  for (size_t j = 0; j < appends.size(); ++j) {
    absl::StatusOr<store::AppendResult>& r = (*results)[j];
    Verdict& v = verdicts[which[j]];
    if (r.ok()) {
      v.result = *std::move(r);
    } else if (IsVerdict(r.status())) {
      v.status = r.status();
    } else {
      // The others of the batch are written: applying it again could decide otherwise.
      failed_ = absl::InternalError(
          absl::StrCat("the replica of partition ", partition_, " stopped at message ", v.sequence,
                       ": ", r.status().message(), "; rebuild it from the log"));
      return failed_;
    }
  }
  return verdicts;
}

absl::Status PartitionReplica::SaveApplied() {
  // Not synced: after a crash the replica starts from the store's mark (Open), or from this.
  const std::string tmp = dir_ + "/applied.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << applied_ << "\n";
    if (!out.good()) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), (dir_ + "/applied").c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp));
  }
  return absl::OkStatus();
}

absl::StatusOr<store::AppendResult> AppendThrough(Cluster& cluster, PartitionReplica& replica,
                                                  const store::StreamAppend& append) {
  const uint32_t partition = PartitionOf(append.stream, cluster.config().partitions);
  if (partition != replica.partition()) {
    return absl::InvalidArgumentError(absl::StrCat("the append to ", append.stream,
                                                   " belongs to partition ", partition,
                                                   ", not to the replica's ", replica.partition()));
  }
  IHS_ASSIGN_OR_RETURN(Published p, cluster.Publish(append));
  IHS_ASSIGN_OR_RETURN(Verdict v, replica.VerdictOf(p.sequence));
  if (!v.status.ok()) return v.status;
  return v.result;
}

}  // namespace ihs::cluster
