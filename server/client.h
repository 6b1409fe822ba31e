// The C++ client of ihsd, for the services that use ihs over Cap'n Proto RPC and for `ihs
// --connect`. It mirrors store::EventStore: the same request and result types, and the same
// absl::Status codes for the same outcomes (a version conflict is kAborted and
// store::ConflictCurrentVersion reads it; a bad request is kInvalidArgument and ErrorField names
// the field), plus kUnauthenticated (no such token), kPermissionDenied (the role lacks the call),
// kResourceExhausted (overloaded: back off) and kUnavailable (disconnected or shutting down).
//
//   auto client = ihs::client::Client::Connect({"127.0.0.1:7420", token});
//   if (!client.ok()) ...;
//   auto r = (*client)->Append({"customer-ada", ExpectedVersion::NoStream(), {event}});
//
// A Client is one connection, used from the thread that made it (it runs a Cap'n Proto event
// loop there while a call waits). Several Clients may share a thread. Not safe for concurrent
// use: give each thread its own.
#ifndef IHS_SERVER_CLIENT_H_
#define IHS_SERVER_CLIENT_H_

#include <capnp/message.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "projections/status.h"
#include "projections/timeline/query.h"
#include "schema/event.capnp.h"
#include "schema/rpc.capnp.h"
#include "server/wire.h"
#include "store/tlog.h"
#include "store/types.h"

namespace ihs::client {

// The request field a kInvalidArgument status names ("limit", "appends[2].expected.kind").
using server::ErrorField;

struct ConnectOptions {
  std::string address;  // "127.0.0.1:7420", "[::1]:7420", "localhost", "unix:/run/ihsd.sock"
  std::string token;
  absl::Duration timeout = absl::Seconds(60);  // for connecting, logging in, and each call
  // TLS (an ihsd started with --tls-cert): the PEM file of the certificate(s) to trust, e.g. the
  // server's own self-signed one, and the name its certificate must carry (default: the host
  // part of `address`; for an IP address give the certificate's DNS name, e.g. "localhost").
  std::string tls_ca_file{};
  std::string tls_server_name{};
};

// An event read over RPC: the stored event and its opened content. Cheap to copy; the events of
// one reply share their message.
class RemoteEvent {
 public:
  RemoteEvent(std::shared_ptr<const void> owner, rpc::ReadEvent::Reader e)
      : owner_(std::move(owner)), e_(e) {}
  uint64_t position() const { return e_.getPosition(); }
  schema::Event::Reader event() const { return e_.getEvent(); }
  store::ContentState content_state() const;
  schema::Content::Reader content() const { return e_.getContent(); }

 private:
  std::shared_ptr<const void> owner_;
  rpc::ReadEvent::Reader e_;
};

struct SubscribeOptions {
  uint64_t from_position = 0;
  std::string stream_prefix;                  // empty: all streams
  std::vector<schema::Channel> channels;      // empty: all
  std::vector<schema::TouchpointType> types;  // empty: all
  bool open_content = true;
};

struct ServerStatus {
  std::string version;
  uint64_t events = 0, streams = 0, disk_bytes = 0, connections_total = 0, appends = 0, syncs = 0;
  uint32_t connections = 0, calls_in_flight = 0, subscriptions = 0;
  std::string root;  // 32 bytes
  double uptime_seconds = 0;
  uint32_t connections_awaiting_login = 0;
  // The limits in force (ihsd's flags).
  uint32_t max_connections = 0, max_pending_logins = 0, max_subscriptions = 0,
           max_subscriptions_per_connection = 0, max_calls_in_flight = 0;
  double login_timeout_seconds = 0, subscriber_timeout_seconds = 0;
};

class Client {
 public:
  // Connects and logs in. kUnauthenticated for a wrong token, kUnavailable when nothing answers.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ConnectOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  rpc::Role role() const;
  const std::string& name() const;  // the token's holder, from the tokens file

  absl::StatusOr<store::AppendResult> Append(const store::StreamAppend& append);
  absl::StatusOr<std::vector<store::AppendResult>> AppendMulti(
      const std::vector<store::StreamAppend>& appends);
  // At most max_count events (the server may return fewer; see docs/rpc.md).
  absl::StatusOr<std::vector<RemoteEvent>> ReadStream(const std::string& stream,
                                                      uint64_t from_version, uint32_t max_count,
                                                      store::ReadDirection direction,
                                                      bool open_content = true);
  absl::StatusOr<std::vector<RemoteEvent>> ReadAll(uint64_t from_position, uint32_t max_count,
                                                   bool open_content = true);
  absl::StatusOr<store::StreamInfo> GetStreamInfo(const std::string& stream);
  absl::StatusOr<uint64_t> Head();
  absl::StatusOr<std::string> Root(uint64_t size);  // auditor, admin
  // Audit (auditor, admin; docs/audit.md): as store::EventStore's calls of the same names.
  absl::StatusOr<std::string> SignedHead();
  absl::StatusOr<std::string> VerifierKey();  // NAME+KEYID+BASE64
  absl::StatusOr<std::vector<tlog::Hash>> InclusionProof(uint64_t index, uint64_t size);
  absl::StatusOr<std::vector<tlog::Hash>> ConsistencyProof(uint64_t old_size, uint64_t new_size);
  // Erasure and legal holds (admin), as store::EventStore's: the server records this token's
  // holder as requestedBy. Return the position of the event recorded.
  // `person`: every stream of the party's person, in one atomic append; the first position.
  absl::StatusOr<uint64_t> Erase(const std::string& party, const std::string& reason,
                                 bool person = false);
  absl::StatusOr<uint64_t> SetLegalHold(const std::string& party, bool lift,
                                        const std::string& reason);
  // A copy of the store into `to` on ihsd's machine (admin): the log's size when it began.
  absl::StatusOr<uint64_t> Backup(const std::string& to, bool with_master_key);
  absl::StatusOr<ServerStatus> Status();  // admin

  // The timeline (reader, auditor, admin). `min_position` > 0: the server answers once the
  // timeline has applied every position below it (read your own writes: an append's position
  // + 1), or kUnavailable after 5 s. A page goes into `out` (root schema::TimelinePage), a
  // summary too (root schema::TimelineSummary), as projections::timeline::ReadPage and
  // ReadSummary do in process; the same errors (kNotFound: no such party).
  struct TimelineOptions {
    bool open_content = false;  // fill subject and text from the log
    uint64_t min_position = 0;
    bool person = false;  // the party's whole person: every linked stream merged in
  };
  absl::Status Timeline(const projections::timeline::Query& query, const TimelineOptions& options,
                        capnp::MessageBuilder& out);
  absl::Status Summary(const std::string& party, absl::Time as_of, uint64_t min_position,
                       capnp::MessageBuilder& out);
  // Identity (docs/identity.md). Reads (reader, auditor, admin) fill `out` with the root the
  // in-process reads of projections/identity/identity.h give: schema::Resolution, schema::Person,
  // schema::PairList (suggestions), schema::IdentityStats; the same errors. `min_position` as in
  // TimelineOptions.
  absl::Status Resolve(const std::string& stream, uint64_t min_position,
                       capnp::MessageBuilder& out);
  absl::Status Person(const std::string& id, uint64_t min_position, capnp::MessageBuilder& out);
  absl::StatusOr<std::vector<std::string>> FindHandle(schema::HandleKind kind,
                                                      const std::string& address,
                                                      uint64_t min_position);
  absl::Status IdentitySuggestions(const std::string& after, uint32_t limit, uint64_t min_position,
                                   capnp::MessageBuilder& out);
  absl::Status IdentityStats(uint64_t min_position, capnp::MessageBuilder& out);
  // Identity decisions (writer, admin), recorded with this token's holder as requestedBy: the
  // position of the identityLink appended (projections/identity/links.h gives the errors).
  absl::StatusOr<uint64_t> Link(const std::string& a, const std::string& b, bool unlink,
                                const std::string& reason);
  absl::StatusOr<uint64_t> DecideSuggestion(const std::string& id, bool accept,
                                            const std::string& reason);

  // Segment definitions (docs/segments.md): a define, change or retire (writer, admin), recorded
  // with this token's holder as requestedBy: the position of the segmentDefinition appended
  // (projections/segments/definitions.h gives the errors); and a page of the definitions
  // (reader, auditor, admin) into a schema::SegmentList.
  absl::StatusOr<uint64_t> DefineSegment(schema::SegmentOp op, const std::string& name,
                                         const std::string& rule, const std::string& description);
  absl::Status SegmentDefinitions(const std::string& after, uint32_t limit,
                                  capnp::MessageBuilder& out);
  // Membership (docs/segments.md "Membership"): `out` gets the root the in-process reads of
  // projections/segments/segments.h give (schema::MemberPage, schema::PartySegments,
  // schema::SegmentWhy), with the same errors. `as_of` µs since the epoch, 0: now.
  absl::Status SegmentMembers(const std::string& segment, int64_t as_of, const std::string& after,
                              uint32_t limit, uint64_t min_position, capnp::MessageBuilder& out);
  absl::Status PartySegments(const std::string& party, int64_t as_of, uint64_t min_position,
                             capnp::MessageBuilder& out);
  absl::Status SegmentWhy(const std::string& party, const std::string& segment, int64_t as_of,
                          uint64_t min_position, capnp::MessageBuilder& out);
  // Reads of the community projection, answered as projections/community/community.h give
  // (schema::CommunityCard, schema::CommunityTop), with the same errors.
  absl::Status Community(const std::string& party, int64_t as_of, uint64_t min_position,
                         capnp::MessageBuilder& out);
  absl::Status CommunityTop(uint32_t n, schema::CommunityRank by, uint64_t min_position,
                            capnp::MessageBuilder& out);

  // The projection workers' status (reader, auditor, admin).
  absl::StatusOr<std::vector<projections::ProjectionStatus>> Projections();
  // Starts a rebuild (admin); follow it with Projections(). kNotFound: no such projection;
  // kUnavailable: a rebuild of it runs already.
  absl::Status RebuildProjection(const std::string& name);

  // Runs a subscription on this thread: `on_events` gets each batch in position order, with
  // `scanned_to` (every position below it was delivered or filtered out), until it returns false
  // (then OkStatus), the server ends the subscription (its error), or the connection breaks
  // (kUnavailable). No gap, no duplicate. Reader, auditor, admin.
  using EventsFn = std::function<bool(const std::vector<RemoteEvent>& events, uint64_t scanned_to)>;
  absl::Status Subscribe(const SubscribeOptions& options, const EventsFn& on_events);

  // Runs a subscription to segment transitions on this thread (docs/segments.md
  // "Subscriptions"): `on_transitions` gets each batch in seq order (the message owns them while
  // it runs), with `scanned_to` (resume from it), until it returns false (then OkStatus), the
  // server ends the subscription (its error), or the connection breaks (kUnavailable). No gap,
  // no duplicate. `from_now`: from the next transition, whatever `from_seq` says.
  using TransitionsFn =
      std::function<bool(capnp::List<schema::Transition>::Reader transitions, uint64_t scanned_to)>;
  absl::Status SubscribeSegments(const std::vector<std::string>& segments, uint64_t from_seq,
                                 bool from_now, const TransitionsFn& on_transitions);

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ihs::client

#endif  // IHS_SERVER_CLIENT_H_
