#include "store/cluster/node.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "schema/cluster.capnp.h"
#include "store/internal/codec.h"

namespace ihs::cluster {
namespace {

// A reply holds up to this many bytes of events, and up to this many events (as an RPC read
// does), whatever the request asks: a longer read asks again from where it ended.
constexpr size_t kReplyBytes = 512 << 10;
constexpr uint32_t kReplyEvents = 10000;

std::string Bytes(capnp::MessageBuilder& m) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(m);
  return std::string(words.asChars().begin(), words.asChars().size());
}

// A Cap'n Proto message from bytes that may be anyone's: its words, copied and aligned.
kj::Array<capnp::word> Words(absl::string_view bytes) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  memcpy(words.begin(), bytes.data(), words.size() * sizeof(capnp::word));
  return words;
}

std::string ErrorReply(const absl::Status& s) {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<schema::ForwardReply>();
  r.setCode(static_cast<uint32_t>(s.code()));
  r.setMessage(std::string(s.message()));
  if (std::optional<int64_t> v = store::ConflictCurrentVersion(s)) {
    r.setHasCurrentVersion(true);
    r.setCurrentVersion(*v);
  }
  r.setNone();
  return Bytes(m);
}

absl::Status StatusOf(schema::ForwardReply::Reader r) {
  if (r.getCode() == 0) return absl::OkStatus();
  const std::string message = r.getMessage();
  if (r.getHasCurrentVersion()) {
    return store::VersionConflictError(message, r.getCurrentVersion());
  }
  return absl::Status(static_cast<absl::StatusCode>(r.getCode()), message);
}

// Reads a reply, which comes from another node: a reply that does not decode is the cluster's
// trouble, not the caller's.
template <typename F>
auto WithReply(const std::string& bytes, F read) -> decltype(read(schema::ForwardReply::Reader())) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return absl::InternalError("a node's reply is not a Cap'n Proto message");
  }
  kj::Array<capnp::word> words = Words(bytes);
  try {
    capnp::FlatArrayMessageReader reader(words);
    auto r = reader.getRoot<schema::ForwardReply>();
    IHS_RETURN_IF_ERROR(StatusOf(r));
    return read(r);
  } catch (const kj::Exception& e) {
    return absl::InternalError(
        absl::StrCat("a node's reply does not decode: ", e.getDescription().cStr()));
  }
}

}  // namespace

std::string ClusterNode::ServeSubject(uint32_t partition) {
  return absl::StrCat("ihs.serve.p", partition);
}

ClusterNode::ClusterNode(NodeOptions options, std::unique_ptr<Cluster> cluster)
    : options_(std::move(options)),
      log_(options_.log != nullptr ? options_.log : DefaultLog()),
      cluster_(std::move(cluster)) {}

absl::StatusOr<std::unique_ptr<ClusterNode>> ClusterNode::Start(NodeOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("a node needs a data directory");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot make the data directory ", options.dir, ": ", ec.message()));
  }
  IHS_ASSIGN_OR_RETURN(std::unique_ptr<Cluster> cluster, Cluster::Connect(options.cluster));
  std::unique_ptr<ClusterNode> node(new ClusterNode(std::move(options), std::move(cluster)));
  OwnershipOptions oo;
  oo.lease = node->options_.lease;
  IHS_ASSIGN_OR_RETURN(node->ownership_, Ownership::Join(node->cluster_.get(), oo));
  IHS_ASSIGN_OR_RETURN(OwnershipRound first, node->ownership_->Round());
  node->ApplyRound(first);
  node->rounds_ = std::thread([n = node.get()] { n->RunRounds(); });
  return node;
}

ClusterNode::~ClusterNode() { Stop(); }

void ClusterNode::Stop(bool leave) {
  if (stopped_.exchange(true)) return;
  stopping_.Notify();
  if (rounds_.joinable()) rounds_.join();
  std::vector<uint32_t> held;
  {
    MutexLock l(&mu_);
    for (const auto& [p, h] : held_) held.push_back(p);
  }
  for (uint32_t p : held) Drop(p, "the node stops");
  if (leave && ownership_ != nullptr) {
    absl::Status s = ownership_->Leave();
    if (!s.ok()) log_->Log(absl::StrCat("leaving the cluster: ", s.message()));
  }
}

void ClusterNode::RunRounds() {
  while (!stopping_.WaitForNotificationWithTimeout(options_.lease / 3)) {
    absl::StatusOr<OwnershipRound> round = ownership_->Round();
    if (round.ok()) {
      ApplyRound(*round);
      continue;
    }
    log_->Log(absl::StrCat("ownership: ", round.status().message()));
    if (round.status().code() == absl::StatusCode::kFailedPrecondition) {
      // Another node took this node's name: it holds nothing any more.
      for (uint32_t p : held()) Drop(p, "this node's name was taken");
      return;
    }
  }
}

void ClusterNode::ApplyRound(const OwnershipRound& round) {
  for (uint32_t p : round.released) {
    Drop(p, absl::StrCat("given up to share among ", round.live_nodes, " nodes"));
  }
  for (const auto& [p, why] : round.lost) Drop(p, why);
  for (uint32_t p : round.taken) {
    absl::Status s = Hold(p);
    if (s.ok()) continue;
    log_->Log(absl::StrCat("partition ", p, " cannot be held here: ", s.message()));
    absl::Status r = ownership_->Release(p);
    if (!r.ok()) log_->Log(absl::StrCat("partition ", p, ": ", r.message()));
  }
}

absl::Status ClusterNode::Hold(uint32_t partition) {
  const std::string dir = absl::StrFormat("%s/p%04d", options_.dir, partition);
  std::shared_ptr<PartitionReplica> replica;
  {
    MutexLock l(&mu_);
    auto it = opened_.find(partition);
    if (it != opened_.end()) replica = it->second.lock();
  }
  if (replica == nullptr) {
    IHS_ASSIGN_OR_RETURN(std::unique_ptr<PartitionReplica> opened,
                         PartitionReplica::Open(cluster_.get(), partition, dir));
    replica = std::move(opened);
    MutexLock l(&mu_);
    opened_[partition] = replica;
  }
  replica->StartFollowing();  // already, if it was held before
  {
    MutexLock l(&mu_);
    held_[partition].replica = replica;
  }
  absl::StatusOr<std::unique_ptr<Service>> service = cluster_->Serve(
      ServeSubject(partition),
      [this, partition](absl::string_view request) { return Answer(partition, request); });
  if (!service.ok()) {
    MutexLock l(&mu_);
    held_.erase(partition);
    return service.status();
  }
  {
    MutexLock l(&mu_);
    held_[partition].service = *std::move(service);
  }
  log_->Log(absl::StrCat("holds partition ", partition, " (applied through message ",
                         replica->applied(), ")"));
  return absl::OkStatus();
}

void ClusterNode::Drop(uint32_t partition, absl::string_view why) {
  Held h;
  {
    MutexLock l(&mu_);
    auto it = held_.find(partition);
    if (it == held_.end()) return;
    h = std::move(it->second);
    held_.erase(it);
  }
  h.service.reset();  // waits for a request being answered
  log_->Log(absl::StrCat("no longer holds partition ", partition, ": ", why));
}

std::set<uint32_t> ClusterNode::held() const {
  MutexLock l(&mu_);
  std::set<uint32_t> out;
  for (const auto& [p, h] : held_) out.insert(p);
  return out;
}

std::shared_ptr<PartitionReplica> ClusterNode::replica(uint32_t partition) const {
  MutexLock l(&mu_);
  auto it = held_.find(partition);
  return it == held_.end() ? nullptr : it->second.replica;
}

std::string ClusterNode::Answer(uint32_t partition, absl::string_view request) {
  std::shared_ptr<PartitionReplica> r = replica(partition);
  if (r == nullptr) {
    return ErrorReply(absl::UnavailableError(absl::StrCat(
        "partition ", partition, " is not held by node ", cluster_->node(), " (any more)")));
  }
  if (request.empty() || request.size() % sizeof(capnp::word) != 0) {
    return ErrorReply(absl::InvalidArgumentError("a request that is not a Cap'n Proto message"));
  }
  kj::Array<capnp::word> words = Words(request);
  try {
    capnp::FlatArrayMessageReader reader(words);
    auto q = reader.getRoot<schema::ForwardRequest>();
    capnp::MallocMessageBuilder m;
    auto reply = m.initRoot<schema::ForwardReply>();
    switch (q.which()) {
      case schema::ForwardRequest::VERDICT: {
        absl::StatusOr<Verdict> v = r->VerdictOf(q.getVerdict());
        if (!v.ok()) return ErrorReply(v.status());
        if (!v->status.ok()) return ErrorReply(v->status);
        auto a = reply.initAppended();
        const auto& res = v->result;
        auto positions = a.initPositions(static_cast<unsigned>(res.positions.size()));
        for (size_t i = 0; i < res.positions.size(); ++i) positions.set(i, res.positions[i]);
        auto versions = a.initVersions(static_cast<unsigned>(res.versions.size()));
        for (size_t i = 0; i < res.versions.size(); ++i) versions.set(i, res.versions[i]);
        a.setDuplicate(res.duplicate);
        return Bytes(m);
      }
      case schema::ForwardRequest::READ_STREAM: {
        auto rs = q.getReadStream();
        const std::string stream = rs.getStream();
        absl::StatusOr<std::vector<store::StoredEvent>> events = r->store().ReadStream(
            stream, rs.getFromVersion(), std::min<uint32_t>(rs.getMaxCount(), kReplyEvents),
            rs.getBackward() ? store::ReadDirection::kBackward : store::ReadDirection::kForward);
        if (!events.ok()) return ErrorReply(events.status());
        size_t count = 0, bytes = 0;
        for (const auto& e : *events) {
          if (count > 0 && bytes + e.bytes().size() > kReplyBytes) break;
          bytes += e.bytes().size();
          ++count;
        }
        auto list = reply.initEvents(static_cast<unsigned>(count));
        for (size_t i = 0; i < count; ++i) {
          const auto& e = (*events)[i];
          list[i].setPosition(e.position());
          list[i].setRecord(
              kj::arrayPtr(reinterpret_cast<const kj::byte*>(e.bytes().data()), e.bytes().size()));
        }
        return Bytes(m);
      }
      case schema::ForwardRequest::STREAM_INFO: {
        absl::StatusOr<store::StreamInfo> info = r->store().GetStreamInfo(q.getStreamInfo().cStr());
        if (!info.ok()) return ErrorReply(info.status());
        auto i = reply.initInfo();
        i.setEventCount(info->event_count);
        i.setCurrentVersion(info->current_version);
        i.setFirstPosition(info->first_position);
        i.setLastPosition(info->last_position);
        i.setFirstOccurredAt(info->first_occurred_at);
        i.setLastOccurredAt(info->last_occurred_at);
        if (info->hold_position.has_value()) {
          i.setHasHold(true);
          i.setHoldPosition(*info->hold_position);
        }
        if (info->erased_position.has_value()) {
          i.setHasErased(true);
          i.setErasedPosition(*info->erased_position);
        }
        return Bytes(m);
      }
    }
    return ErrorReply(absl::InvalidArgumentError("a request of a kind this node does not know"));
  } catch (const kj::Exception& e) {
    return ErrorReply(absl::InvalidArgumentError(
        absl::StrCat("a request that does not decode: ", e.getDescription().cStr())));
  }
}

absl::StatusOr<std::string> ClusterNode::Ask(uint32_t partition, const std::string& request) {
  const absl::Time deadline = absl::Now() + options_.cluster.timeout;
  while (true) {
    std::string reply;
    if (replica(partition) != nullptr) {
      reply = Answer(partition, request);
    } else {
      IHS_ASSIGN_OR_RETURN(
          reply, cluster_->Request(ServeSubject(partition), request, deadline - absl::Now()));
    }
    // "Not held here (any more)": the partition is moving; ask again, wherever it went.
    absl::Status moving =
        WithReply(reply, [](schema::ForwardReply::Reader) { return absl::OkStatus(); });
    if (!absl::IsUnavailable(moving) || absl::Now() + absl::Milliseconds(100) >= deadline) {
      return reply;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::StatusOr<store::AppendResult> ClusterNode::Append(const store::StreamAppend& append) {
  IHS_ASSIGN_OR_RETURN(Published published, cluster_->Publish(append));
  capnp::MallocMessageBuilder m;
  m.initRoot<schema::ForwardRequest>().setVerdict(published.sequence);
  IHS_ASSIGN_OR_RETURN(std::string reply, Ask(published.partition, Bytes(m)));
  return WithReply(reply,
                   [](schema::ForwardReply::Reader r) -> absl::StatusOr<store::AppendResult> {
                     if (!r.isAppended())
                       return absl::InternalError("a node answered a verdict with no result");
                     store::AppendResult out;
                     for (uint64_t p : r.getAppended().getPositions()) out.positions.push_back(p);
                     for (uint64_t v : r.getAppended().getVersions()) out.versions.push_back(v);
                     out.duplicate = r.getAppended().getDuplicate();
                     return out;
                   });
}

absl::StatusOr<std::vector<store::StoredEvent>> ClusterNode::ReadStream(
    absl::string_view stream, uint64_t from_version, size_t max_count,
    store::ReadDirection direction) {
  const uint32_t partition = PartitionOf(stream, cluster_->config().partitions);
  const bool backward = direction == store::ReadDirection::kBackward;
  std::vector<store::StoredEvent> out;
  uint64_t from = from_version;
  while (out.size() < max_count) {
    const size_t asked = std::min<size_t>(max_count - out.size(), UINT32_MAX);
    capnp::MallocMessageBuilder m;
    auto rs = m.initRoot<schema::ForwardRequest>().initReadStream();
    rs.setStream(std::string(stream));
    rs.setFromVersion(from);
    rs.setMaxCount(static_cast<uint32_t>(asked));
    rs.setBackward(backward);
    IHS_ASSIGN_OR_RETURN(std::string reply, Ask(partition, Bytes(m)));
    IHS_ASSIGN_OR_RETURN(
        size_t got, WithReply(reply, [&](schema::ForwardReply::Reader r) -> absl::StatusOr<size_t> {
          if (!r.isEvents()) return absl::InternalError("a node answered a read with no events");
          for (auto e : r.getEvents()) {
            auto record = e.getRecord();
            IHS_ASSIGN_OR_RETURN(
                auto rep, store::internal::DecodeRecord(
                              e.getPosition(),
                              absl::string_view(reinterpret_cast<const char*>(record.begin()),
                                                record.size())));
            out.push_back(store::internal::StoredEventAccess::Make(std::move(rep)));
          }
          return static_cast<size_t>(r.getEvents().size());
        }));
    if (got == 0 || got == asked) break;  // the end, or all that was asked
    // The reply was full: ask again after the last event read.
    const uint64_t last = out.back().event().getStreamVersion();
    if (backward && last == 0) break;
    from = backward ? last - 1 : last + 1;
  }
  return out;
}

absl::StatusOr<store::StreamInfo> ClusterNode::GetStreamInfo(absl::string_view stream) {
  const uint32_t partition = PartitionOf(stream, cluster_->config().partitions);
  capnp::MallocMessageBuilder m;
  m.initRoot<schema::ForwardRequest>().setStreamInfo(std::string(stream));
  IHS_ASSIGN_OR_RETURN(std::string reply, Ask(partition, Bytes(m)));
  return WithReply(reply, [&](schema::ForwardReply::Reader r) -> absl::StatusOr<store::StreamInfo> {
    if (!r.isInfo()) return absl::InternalError("a node answered with no stream information");
    auto i = r.getInfo();
    store::StreamInfo info;
    info.stream = std::string(stream);
    info.event_count = i.getEventCount();
    info.current_version = i.getCurrentVersion();
    info.first_position = i.getFirstPosition();
    info.last_position = i.getLastPosition();
    info.first_occurred_at = i.getFirstOccurredAt();
    info.last_occurred_at = i.getLastOccurredAt();
    if (i.getHasHold()) info.hold_position = i.getHoldPosition();
    if (i.getHasErased()) info.erased_position = i.getErasedPosition();
    return info;
  });
}

}  // namespace ihs::cluster
