// The generator is a discrete-event simulation. Actions (a party becomes active, a reply is due,
// a customer's patience runs out, a follower shares a post, a campaign goes out, a late record
// arrives) wait in one heap ordered by time; executing one emits events and schedules more.
// Events are emitted in the order they reach the store (a late letter is emitted when it is
// scanned, with its occurred_at days earlier), and the ground truth is updated as each is
// emitted, so it always describes exactly the events emitted so far.
#include "workload/generator.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/big_endian.h"
#include "common/service_hours.h"
#include "schema/json.h"
#include "schema/touchpoint.h"
#include "workload/model.h"

namespace ihs::workload {

using schema::Channel;
using schema::Direction;
using schema::PartyKind;
using schema::TouchpointType;

double MedianReplyServiceHours(Channel channel) {
  switch (channel) {
    case Channel::CHAT:
    case Channel::APP:
      return 0.05;  // 3 minutes
    case Channel::SMS:
      return 0.5;
    case Channel::EMAIL:
    case Channel::WEB_FORM:
      return 3.0;
    case Channel::LETTER:
    case Channel::FAX:
      return 16.0;  // one service day
    default:
      return 0.0;  // synchronous: phone, call centre, in person
  }
}

absl::Status Validate(const Config& c) {
  if (c.parties < 10 || c.parties > kMaxParties) {
    return absl::InvalidArgumentError(
        absl::StrCat("--parties ", c.parties, " is out of range: give 10 to ", kMaxParties));
  }
  if (c.days < 1 || c.days > kMaxDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("--days ", c.days, " is out of range: give 1 to ", kMaxDays));
  }
  if (c.max_events > kMaxEvents) {
    return absl::InvalidArgumentError(
        absl::StrCat("--events ", c.max_events, " is out of range: give 1 to ", kMaxEvents));
  }
  return absl::OkStatus();
}

namespace {

constexpr int64_t kSecond = 1000000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr uint32_t kNone = UINT32_MAX;
constexpr uint64_t kNoEvent = UINT64_MAX;
constexpr uint8_t kNoTopic = 255;

// Random numbers whose values are fixed by the C++ standard for a seed (mt19937_64), turned into
// distributions by our own formulas: the standard library's distributions may differ between
// implementations, and "same seed, same bytes" must hold everywhere.
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Uniform() < p; }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : engine_() % n; }
  double Exponential(double mean) { return -mean * std::log1p(-Uniform()); }
  double Normal(double mean, double sd) {
    const double u1 = 1.0 - Uniform(), u2 = Uniform();
    return mean + sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
  double Pareto(double alpha, double min) { return min / std::pow(1.0 - Uniform(), 1.0 / alpha); }
  uint64_t Poisson(double mean) {
    if (mean <= 0) return 0;
    if (mean > 30)
      return static_cast<uint64_t>(std::max(0.0, std::round(Normal(mean, std::sqrt(mean)))));
    const double limit = std::exp(-mean);
    uint64_t k = 0;
    for (double p = Uniform(); p > limit; p *= Uniform()) ++k;
    return k;
  }
  template <typename T, size_t N>
  const T& Pick(const std::array<T, N>& items) {
    double total = 0;
    for (const T& t : items) total += t.weight;
    double x = Uniform() * total;
    for (const T& t : items) {
      if (x < t.weight) return t;
      x -= t.weight;
    }
    return items[N - 1];
  }

 private:
  std::mt19937_64 engine_;
};

// The setters copy the bytes, so a temporary string is enough.
capnp::Data::Reader AsData(const std::string& bytes) {
  return capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(bytes.data()), bytes.size());
}

float Clamp1(double x) { return static_cast<float>(std::max(-1.0, std::min(1.0, x))); }

enum PartyFlags : uint16_t {
  kRegistered = 1 << 0,
  kNewsletter = 1 << 1,       // consents to the newsletter
  kAppUser = 1 << 2,          // has the app and consents to pushes
  kFollows = 1 << 3,          // follows the company's social account
  kUnlinkedAccount = 1 << 4,  // an unknown social account of the person `owner`
  kStory = 1 << 5,
  kLinkedInLog = 1 << 6,   // an identityLink event names this unlinked account
  kWasProspect = 1 << 7,   // became a customer: keeps its stream id "p-..."
  kQuotedOrder = 1 << 8,   // a text of this party's stream named the person's order reference
  kQuotedFriend = 1 << 9,  // a text of this party's stream named a friend's order reference
  kFollowedUp = 1 << 10,   // an unlinked account took its person's unanswered message public
};

struct Party {
  PartyKind kind;
  uint8_t cohort = 0;  // index into kCohorts (customers, prospects)
  uint16_t flags = 0;
  uint32_t number = 0;      // within its kind, from 1: the stream id's digits
  uint32_t owner = kNone;   // for an unlinked account: the person's main party
  uint32_t social = kNone;  // the party whose stream carries this person's public posts
  float rate = 0;           // episodes per day
  uint32_t followers = 0;
  // For the ground truth.
  // The segments' facts. Corrections and retractions are not the party's behaviour and count
  // for nothing; a retraction takes the post it withdraws out.
  int64_t opens[kEngagedOpens] = {};  // the latest campaign opens by occurred time (0: none)
  std::vector<std::pair<uint64_t, int64_t>> complaints;  // inbound or public: (seq, occurred)
  std::vector<uint64_t> advocate_posts;                  // seqs
  int64_t last_inbound = 0, last_purchase = 0;
  uint64_t first_seq = ~uint64_t{0};  // the first event that names the party's stream
  uint64_t reach = 0;  // how far this party's own posts travelled (audience incl. shares)
  uint32_t posts = 0;
  Group group() const { return kCohorts[cohort].group; }
};

// A touchpoint, profile or identity link about to be emitted, in plain values.
struct Ev {
  enum Kind : uint8_t { kTouchpoint, kProfile, kLink, kSegment } kind = kTouchpoint;
  uint32_t party = kNone;  // whose stream
  int64_t occurred = 0;
  Channel channel = Channel::UNSPECIFIED;
  Direction direction = Direction::UNSPECIFIED;
  TouchpointType type = TouchpointType::UNSPECIFIED;
  float sentiment = NAN;
  uint8_t topic = kNoTopic;
  bool second_topic = false;
  uint8_t topic2 = 0;
  uint64_t thread = 0;  // 0: none
  uint64_t in_reply_to = kNoEvent;
  uint64_t causation = kNoEvent;
  uint64_t corrects = kNoEvent;
  uint32_t counterpart = kNone;
  uint64_t audience = 0;
  uint32_t campaign = 0;  // 0: none; odd newsletter, even push (see CampaignId)
  bool content = false;
  uint32_t other = kNone;  // kLink: the second party
  bool company = false;    // said by the company (an employee): replies, outbound messages
  PartyKind profile_kind = PartyKind::UNSPECIFIED;  // kProfile: the kind registered
  int64_t arrived = 0;  // the simulated moment it reaches the store (set by Emit)
};

enum class Act : uint8_t {
  kActivity,    // party: start an episode
  kNewsletter,  // weekly campaigns
  kPush,
  kArrive,    // ev: a record that arrives late
  kReply,     // ref: the inbound to answer
  kPatience,  // ref: the inbound the customer waits on
  kReaction,  // party reacts (type) to ref, a public post of `other` (the root author)
  kOpen,      // party opens campaign `campaign`
  kUnsubscribe,
  kCorrect,      // ref: the event corrected (type correction) or retracted
  kPublicReply,  // ref: the public post the company answers
  kLink,         // party: an unlinked account; the company links it to its owner
  kReview,       // party reviews a purchase
  kStory,        // step of the demo story
};

struct Action {
  int64_t time = 0;
  uint64_t order = 0;  // tie-break: the order actions were scheduled in
  Act act = Act::kActivity;
  uint8_t depth = 0;
  uint32_t party = kNone;
  uint32_t other = kNone;
  uint64_t ref = kNoEvent;
  uint64_t root = kNoEvent;  // kReaction: the original post at the root of the cascade
  uint32_t campaign = 0;
  Ev ev;  // kArrive: the event; kReaction/kCorrect: the type and channel in ev
  bool operator>(const Action& o) const { return time != o.time ? time > o.time : order > o.order; }
};

Action At(int64_t time, Act act) {
  Action a;
  a.time = time;
  a.act = act;
  return a;
}

// What the truth remembers of an inbound message while it waits for an answer.
struct Inbound {
  uint64_t seq;
  uint32_t party;
  int64_t occurred;
  Channel channel;
  TouchpointType type;
  uint64_t thread;
  uint8_t topic;
  bool switched;  // the customer already acted on it
};

// What the truth remembers of an original public post: what its cascade reached so far.
struct Cascade {
  uint64_t reach = 0;
  bool retracted = false;
};

// A reply by the company, as the truth remembers it per thread.
struct Reply {
  uint64_t seq;
  int64_t occurred;
  uint32_t party;
};

struct Response {
  uint64_t inbound, reply;
  int64_t wall_us, service_us;
};
struct Switch {
  uint32_t party, to_party;
  uint64_t from_event, to_event;
  Channel from_channel, to_channel;
  bool is_public;
};
struct Correction {
  uint64_t event, corrects;
  bool retraction;
};

constexpr std::array<const char*, 8> kTopics = {"billing",  "delivery",       "product-defect",
                                                "contract", "app-login",      "store-visit",
                                                "price",    "service-quality"};
constexpr std::array<const char*, 8> kTopicPhrases = {"my last invoice charges me twice",
                                                      "my parcel has still not arrived",
                                                      "the product arrived broken",
                                                      "I want to change my contract",
                                                      "I cannot log in to the app",
                                                      "how I was treated in your store",
                                                      "your new prices",
                                                      "the service I received last week"};
constexpr std::array<const char*, 16> kFirstNames = {
    "anna", "ben",   "clara", "david", "emma", "felix", "greta", "hugo",
    "ida",  "jonas", "karla", "leon",  "mila", "noah",  "olga",  "paul"};
constexpr std::array<const char*, 16> kLastNames = {
    "meyer", "schulz",  "fischer", "weber", "wagner",  "becker", "hoffmann", "koch",
    "bauer", "richter", "klein",   "wolf",  "neumann", "braun",  "zimmer",   "kraus"};

}  // namespace

struct Generator::Impl {
  explicit Impl(const Config& c) : config(c), rng(c.seed), end(c.start + c.days * kDay) {
    fingerprint = Fingerprint(c);
    const uint64_t n = c.parties;
    digits = std::max<int>(6, static_cast<int>(std::to_string(n).size()));
    const uint64_t employees = std::max<uint64_t>(kMinEmployees, n * kEmployeeShare);
    const uint64_t partners = n * kPartnerShare, providers = n * kProviderShare;
    const uint64_t prospects = n * kProspectShare;
    const uint64_t customers = n - employees - partners - providers - prospects;
    auto add = [&](PartyKind kind, uint64_t count) {
      for (uint64_t i = 0; i < count; ++i) {
        Party p;
        p.kind = kind;
        p.number = static_cast<uint32_t>(++kind_counts[static_cast<int>(kind)]);
        parties.push_back(p);
      }
    };
    parties.reserve(n + n / 2 + 1);
    add(PartyKind::EMPLOYEE, employees);
    employee_count = employees;
    add(PartyKind::PARTNER, partners);
    add(PartyKind::SERVICE_PROVIDER, providers);
    add(PartyKind::PROSPECT, prospects);
    first_customer = parties.size();
    add(PartyKind::CUSTOMER, customers);
    const size_t people = parties.size();
    customer_end = people;
    for (size_t i = employees; i < people; ++i) InitParty(static_cast<uint32_t>(i));
    // Landlines that move: a customer takes over the number another one gave up.
    for (size_t r = first_customer; r < customer_end; ++r) {
      const uint32_t to = static_cast<uint32_t>(r);
      if (!Trait(to, kTraitMovedPhone, kMovedPhoneShare)) continue;
      const uint32_t from = static_cast<uint32_t>(
          first_customer + Mix(to ^ (config.seed << 20)) % (customer_end - first_customer));
      if (from == to || phone_taken_by.contains(from) || phone_taken_by.contains(to)) continue;
      phone_taken_by[from] = to;
      phone_taken_from[to] = from;
    }
    if (c.story && c.days >= 4) PlantStory();
    // The truth's segments are defined before anything happens.
    now = c.start;
    for (uint32_t s = 0; s < std::size(kTruthSegments); ++s) {
      Ev def;
      def.kind = Ev::kSegment;
      def.party = s;  // the index into kTruthSegments
      def.occurred = c.start;
      Emit(def);
    }
    for (uint32_t s = 0; s < c.extra_segments.size(); ++s) {
      Ev def;
      def.kind = Ev::kSegment;
      def.party = static_cast<uint32_t>(std::size(kTruthSegments)) + s;  // then extra_segments
      def.occurred = c.start;
      Emit(def);
    }
    // Weekly campaigns: the first Tuesday 09:00 and Thursday 18:00 at or after the start.
    Schedule(At(NextWeekday(c.start, 1, 9), Act::kNewsletter));
    Schedule(At(NextWeekday(c.start, 3, 18), Act::kPush));
    // Employees are on the payroll from the start.
    for (uint32_t e = 0; e < employee_count; ++e) Register(e, c.start);
  }

  static uint64_t Fingerprint(const Config& c) {
    std::string text = absl::StrCat("ihs-workload/", kGeneratorVersion, "/", c.seed, "/", c.parties,
                                    "/", c.days, "/", c.start, "/", c.story);
    for (const auto& [name, rule] : c.extra_segments) absl::StrAppend(&text, "/", name, "=", rule);
    unsigned char out[8];
    crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(text.data()),
                       text.size(), nullptr, 0);
    uint64_t v = 0;
    for (unsigned char b : out) v = v << 8 | b;
    return v;
  }

  // The first time >= t that falls on `weekday` (0 = Monday) at `hour`.
  static int64_t NextWeekday(int64_t t, int weekday, int hour) {
    const int64_t day = t / kDay;  // days since 1970-01-01, a Thursday (weekday 3)
    for (int64_t d = day;; ++d) {
      const int64_t at = d * kDay + hour * kHour;
      if ((d + 3) % 7 == weekday && at >= t) return at;
    }
  }

  void InitParty(uint32_t i) {
    Party& p = parties[i];
    if (p.kind == PartyKind::PARTNER || p.kind == PartyKind::SERVICE_PROVIDER) {
      p.rate = static_cast<float>(kBusinessRate * rng.Pareto(2.0, 0.5));
      ScheduleActivity(i, config.start);
      return;
    }
    p.cohort = static_cast<uint8_t>(&rng.Pick(kCohorts) - kCohorts.data());
    const GroupModel& g = kGroups[static_cast<int>(p.group())];
    p.rate =
        static_cast<float>(kBaseRate * std::min(kActivityCap, rng.Pareto(kActivityAlpha, 1.0)));
    if (rng.Chance(g.newsletter_consent)) p.flags |= kNewsletter;
    if (rng.Chance(g.app_user_share)) p.flags |= kAppUser;
    if (rng.Chance(g.social_share)) {
      uint32_t social = i;
      if (rng.Chance(g.unlinked_share)) {
        Party account;
        account.kind = PartyKind::PROSPECT;  // the company sees an unknown account as a prospect
        account.cohort = p.cohort;
        account.flags = kUnlinkedAccount;
        account.owner = i;
        account.number = ++unlinked_count;
        social = static_cast<uint32_t>(parties.size());
        parties.push_back(account);
      }
      Party& self = parties[i];  // push_back may have moved it
      self.social = social;
      parties[social].social = social;
      parties[social].followers =
          static_cast<uint32_t>(std::min(kFollowerCap, rng.Pareto(kFollowerAlpha, kFollowerMin)));
      social_accounts.push_back(social);
    }
    ScheduleActivity(i, config.start);
  }

  void PlantStory() {
    Party ada;
    ada.kind = PartyKind::CUSTOMER;
    ada.cohort = 4;  // 1980s
    ada.flags = kNewsletter | kStory;
    ada.followers = 2400;
    story_party = static_cast<uint32_t>(parties.size());
    ada.social = story_party;
    parties.push_back(ada);  // not among the reactors: her stream tells the story alone
    const int64_t day = config.start + std::min<int64_t>(3, config.days - 4) * kDay;
    const int64_t at[] = {day + 8 * kHour + 30 * kMinute, day + 9 * kHour + 12 * kMinute,
                          day + 2 * kDay + 9 * kHour + 40 * kMinute,
                          day + 2 * kDay + 11 * kHour + 5 * kMinute};
    for (uint32_t step = 0; step < 4; ++step) {
      Action a = At(at[step], Act::kStory);
      a.campaign = step;
      Schedule(a);
    }
  }

  void Schedule(Action a) {
    if (a.time >= end) return;  // beyond the history
    a.order = next_order++;
    heap.push(a);
  }

  // The party's next episode: exponential gaps at its rate, moved into its waking hours.
  void ScheduleActivity(uint32_t i, int64_t from) {
    const Party& p = parties[i];
    if (p.rate <= 0) return;
    int64_t t = from + static_cast<int64_t>(rng.Exponential(1.0 / p.rate) * kDay);
    int from_hour = 8, to_hour = 18;  // business parties: office hours
    if (p.kind == PartyKind::CUSTOMER || p.kind == PartyKind::PROSPECT) {
      const GroupModel& g = kGroups[static_cast<int>(p.group())];
      from_hour = g.active_from_hour;
      to_hour = g.active_to_hour;
    }
    const int64_t day_start = t - ((t % kDay) + kDay) % kDay;
    const int64_t hour = (t - day_start) / kHour;
    if (hour < from_hour || hour >= to_hour) {
      const int64_t base = hour >= to_hour ? day_start + kDay : day_start;
      t = base + from_hour * kHour +
          static_cast<int64_t>(rng.Uniform() * (to_hour - from_hour) * kHour);
    }
    Action a = At(t, Act::kActivity);
    a.party = i;
    Schedule(a);
  }

  // --- emitting ---------------------------------------------------------------------------

  // Queues `ev` for output with the next sequence number and updates the truth. Returns the
  // number, or kNoEvent once the cap is reached (then nothing more is emitted).
  uint64_t Emit(Ev ev) {
    if (capped) return kNoEvent;
    if (config.max_events != 0 && next_seq == config.max_events) {
      capped = true;
      return kNoEvent;
    }
    const uint64_t seq = next_seq++;
    last_time = std::max(last_time, now);
    ev.arrived = now;
    Observe(seq, ev);
    out.push_back(ev);
    return seq;
  }

  // The party's registration (and consents) before its first touchpoint.
  void Register(uint32_t i, int64_t t) {
    Party& p = parties[i];
    if (p.flags & kRegistered) return;
    Ev profile;
    profile.kind = Ev::kProfile;
    profile.party = i;
    profile.occurred = t;
    profile.profile_kind = p.kind;
    if (Emit(profile) == kNoEvent) return;
    p.flags |= kRegistered;
    if (p.kind != PartyKind::CUSTOMER) {
      if (p.flags & kUnlinkedAccount && rng.Chance(kLinkDiscoveredChance)) {
        Action a = At(t + static_cast<int64_t>(rng.Exponential(14) * kDay), Act::kLink);
        a.party = i;
        Schedule(a);
      }
      return;
    }
    if (p.flags & kNewsletter) Emit(Consent(i, t, Channel::NEWSLETTER, true));
    if (p.flags & kAppUser) Emit(Consent(i, t, Channel::PUSH, true));
  }

  Ev Consent(uint32_t i, int64_t t, Channel channel, bool given) {
    Ev ev;
    ev.party = i;
    ev.occurred = t;
    ev.channel = channel;
    ev.direction = Direction::INBOUND;
    ev.type = given ? TouchpointType::CONSENT_GIVEN : TouchpointType::CONSENT_REVOKED;
    return ev;
  }

  // The `j`th member of `party`'s circle: a social account fixed by the seed, the party and j.
  uint32_t CircleMember(uint32_t party, uint32_t j) const {
    return social_accounts[Mix((uint64_t{party} << 8) + j + (config.seed << 40)) %
                           social_accounts.size()];
  }

  uint32_t RandomEmployee() { return static_cast<uint32_t>(rng.Below(employee_count)); }

  // Emits an inbound message now, or schedules its late arrival; then plans what follows it.
  void Receive(Ev ev, bool may_switch) {
    double late_chance = 0;
    int64_t late_min = 0, late_max = 0;
    switch (ev.channel) {
      case Channel::LETTER:
        late_chance = kLateLetterChance, late_min = kDay, late_max = 10 * kDay;
        break;
      case Channel::IN_PERSON:
        late_chance = kLateInPersonChance, late_min = kHour, late_max = 3 * kDay;
        break;
      case Channel::PHONE:
      case Channel::CALL_CENTRE:
        late_chance = kLatePhoneChance, late_min = 2 * kHour, late_max = 48 * kHour;
        break;
      default:
        break;
    }
    if (late_chance > 0 && rng.Chance(late_chance)) {
      Action a =
          At(ev.occurred + late_min + static_cast<int64_t>(rng.Uniform() * (late_max - late_min)),
             Act::kArrive);
      a.ev = ev;
      a.depth = may_switch;
      Schedule(a);
      return;
    }
    Arrived(ev, may_switch);
  }

  void Arrived(const Ev& ev, bool may_switch) {
    const uint64_t seq = Emit(ev);
    if (seq == kNoEvent) return;
    const Party& p = parties[ev.party];
    const bool needs_answer = ev.type == TouchpointType::MESSAGE ||
                              ev.type == TouchpointType::REQUEST ||
                              ev.type == TouchpointType::COMPLAINT;
    if (needs_answer) {
      const double answer =
          ev.type == TouchpointType::COMPLAINT ? kAnswerComplaint : kAnswerRequest;
      if (!(p.flags & kStory) && rng.Chance(answer)) {
        const double median = MedianReplyServiceHours(ev.channel);
        const int64_t service =
            median == 0
                ? static_cast<int64_t>(rng.Uniform() * 2 * kMinute)
                : static_cast<int64_t>(median * std::exp(rng.Normal(0, kReplySigma)) * kHour);
        // The company learns of a late record when it arrives: it cannot answer before.
        Action a =
            At(ServiceHours::Default().Add(std::max(now, ev.occurred), service), Act::kReply);
        a.ref = seq;
        a.party = ev.party;
        Schedule(a);
      }
      if (may_switch && (p.kind == PartyKind::CUSTOMER || p.kind == PartyKind::PROSPECT) &&
          !(p.flags & kStory)) {
        const GroupModel& g = kGroups[static_cast<int>(p.group())];
        const int64_t wait = static_cast<int64_t>(rng.Exponential(g.patience_mean_hours) * kHour);
        Action a = At(std::max(now + kMinute, ev.occurred + wait), Act::kPatience);
        a.ref = seq;
        a.party = ev.party;
        Schedule(a);
      }
    }
    if ((ev.channel == Channel::PHONE || ev.channel == Channel::CALL_CENTRE ||
         ev.channel == Channel::IN_PERSON) &&
        rng.Chance(kCorrectionChance)) {
      Action a = At(now + kHour + static_cast<int64_t>(rng.Uniform() * 71 * kHour), Act::kCorrect);
      a.ref = seq;
      a.party = ev.party;
      a.ev = ev;
      a.ev.type = TouchpointType::CORRECTION;
      Schedule(a);
    }
  }

  // A public post by `author` (or a share of one, in the cascade of the original post `root`):
  // emitted now, then reactions and replies.
  uint64_t PublicPost(Ev ev, uint32_t root_author, int depth, uint64_t root = kNoEvent) {
    const Party& a = parties[ev.party];
    ev.direction = Direction::PUBLIC;
    ev.audience = ev.channel == Channel::FORUM ? a.followers / 2 : a.followers;
    const uint64_t seq = Emit(ev);
    if (seq == kNoEvent) return seq;
    if (depth == 0) root = seq;
    // Reach: what a retracted post's cascade reached stops counting at the retraction, and what
    // it reaches after it counts for nothing.
    Cascade& cascade = cascades[root];
    if (!cascade.retracted) {
      cascade.reach += ev.audience;
      parties[root_author].reach += ev.audience;
    }
    if (depth == 0) ++parties[root_author].posts;
    const double outrage = ev.type == TouchpointType::COMPLAINT ? kComplaintOutrage : 1.0;
    const double damp = std::pow(kCascadeDamping, depth);
    const double f = static_cast<double>(ev.audience) * damp * outrage;
    uint64_t likes = rng.Poisson(f * kLikePerFollower);
    uint64_t shares = depth < kMaxCascadeDepth ? rng.Poisson(f * kSharePerFollower) : 0;
    uint64_t mentions = rng.Poisson(f * kMentionPerFollower);
    int budget = kMaxReactionsPerPost;
    auto reaction = [&](TouchpointType type, uint32_t r) {
      Action act = At(now + static_cast<int64_t>(rng.Exponential(kReactionMeanHours) * kHour),
                      Act::kReaction);
      act.party = r;
      act.other = root_author;
      act.ref = seq;
      act.root = root;
      act.depth = static_cast<uint8_t>(depth + 1);
      act.ev.type = type;
      act.ev.channel = ev.channel;
      act.ev.counterpart = ev.party;
      act.ev.thread = ev.thread;
      act.ev.sentiment = ev.sentiment;
      Schedule(act);
    };
    auto react = [&](TouchpointType type, uint64_t count) {
      for (uint64_t k = 0; k < count && budget > 0 && social_accounts.size() > 1; ++k, --budget) {
        uint32_t r = social_accounts[rng.Below(social_accounts.size())];
        if (r == ev.party) continue;
        reaction(type, r);
      }
    };
    react(TouchpointType::SHARE, shares);
    react(TouchpointType::MENTION, mentions);
    react(TouchpointType::LIKE, likes);
    // The author's circle: a few accounts that pass on what they post, however few follow the
    // author. Influence that a follower count does not show (docs/workload.md "The social
    // graph").
    if (depth < kMaxCascadeDepth && social_accounts.size() > 1) {
      const double chance = std::min(1.0, kCircleShareChance * outrage * damp);
      for (uint32_t j = 0; j < kCircleSize && budget > 0; ++j) {
        if (!rng.Chance(chance)) continue;
        const uint32_t r = CircleMember(ev.party, j);
        if (r == ev.party) continue;
        reaction(TouchpointType::SHARE, r);
        --budget;
      }
    }
    if (depth == 0 && rng.Chance(kRetractionChance)) {
      Action act = At(now + static_cast<int64_t>(rng.Exponential(10) * kHour), Act::kCorrect);
      act.ref = seq;
      act.party = ev.party;
      act.ev = ev;
      act.ev.type = TouchpointType::RETRACTION;
      Schedule(act);
    }
    return seq;
  }

  // --- episodes ---------------------------------------------------------------------------

  Ev Touch(uint32_t party, Channel channel, Direction direction, TouchpointType type) {
    Ev ev;
    ev.party = party;
    ev.occurred = now;
    ev.channel = channel;
    ev.direction = direction;
    ev.type = type;
    return ev;
  }

  void PickTopics(Ev& ev) {
    ev.topic = static_cast<uint8_t>(rng.Below(kTopics.size()));
    if (rng.Chance(0.2)) {
      ev.second_topic = true;
      ev.topic2 =
          static_cast<uint8_t>((ev.topic + 1 + rng.Below(kTopics.size() - 1)) % kTopics.size());
    }
  }

  void Dialogue(uint32_t i, Channel channel) {
    const bool complaint = rng.Chance(kComplaintShare);
    Ev ev = Touch(i, channel, Direction::INBOUND,
                  complaint ? TouchpointType::COMPLAINT : TouchpointType::REQUEST);
    ev.sentiment = complaint ? Clamp1(rng.Normal(-0.6, 0.2)) : Clamp1(rng.Normal(0.0, 0.25));
    PickTopics(ev);
    ev.thread = ++thread_count;
    ev.content = true;
    Receive(ev, true);
  }

  void BusinessEpisode(uint32_t i) {
    static constexpr std::array<ChannelWeight, 3> kBusiness = {
        {{Channel::EMAIL, 0.6}, {Channel::PHONE, 0.25}, {Channel::IN_PERSON, 0.15}}};
    const Channel channel = rng.Pick(kBusiness).channel;
    if (rng.Chance(0.5)) {
      Ev ev = Touch(i, channel, Direction::INBOUND, TouchpointType::REQUEST);
      PickTopics(ev);
      ev.thread = ++thread_count;
      ev.content = true;
      Receive(ev, false);
      return;
    }
    Ev ev = Touch(i, channel, Direction::OUTBOUND, TouchpointType::MESSAGE);
    ev.counterpart = RandomEmployee();
    ev.company = true;
    PickTopics(ev);
    ev.thread = ++thread_count;
    ev.content = true;
    const uint64_t seq = Emit(ev);
    if (seq != kNoEvent && rng.Chance(0.7)) {
      Action a =
          At(ServiceHours::Default().Add(now, static_cast<int64_t>(rng.Exponential(6) * kHour)),
             Act::kArrive);
      a.ev = Touch(i, channel, Direction::INBOUND, TouchpointType::REPLY);
      a.ev.thread = ev.thread;
      a.ev.topic = ev.topic;
      a.ev.in_reply_to = seq;
      a.ev.content = true;
      a.ev.occurred = a.time;
      Schedule(a);
    }
  }

  void Activity(uint32_t i) {
    Party& p = parties[i];
    ScheduleActivity(i, now);
    Register(i, now);
    if (p.kind == PartyKind::PARTNER || p.kind == PartyKind::SERVICE_PROVIDER) {
      BusinessEpisode(i);
      return;
    }
    const GroupModel& g = kGroups[static_cast<int>(p.group())];
    const bool social = p.social != kNone;
    const double w[] = {g.w_dialogue, g.w_purchase, social ? g.w_post : 0.0,
                        social ? g.w_like : 0.0, p.kind == PartyKind::CUSTOMER ? g.w_consent : 0.0};
    double total = 0;
    for (double x : w) total += x;
    double x = rng.Uniform() * total;
    int episode = 0;
    while (episode < 4 && x >= w[episode]) x -= w[episode++];
    switch (episode) {
      case 0:
        Dialogue(i, rng.Pick(g.private_channels).channel);
        break;
      case 1:
        Purchase(i);
        break;
      case 2:
        Post(i);
        break;
      case 3:
        LikeOrFollow(i);
        break;
      default:
        ConsentChange(i);
        break;
    }
  }

  void Purchase(uint32_t i) {
    static constexpr std::array<std::array<ChannelWeight, 3>, 3> kShop = {{
        {{{Channel::IN_PERSON, 0.5}, {Channel::PHONE, 0.2}, {Channel::WEB_FORM, 0.3}}},
        {{{Channel::WEB_FORM, 0.5}, {Channel::APP, 0.2}, {Channel::IN_PERSON, 0.3}}},
        {{{Channel::APP, 0.6}, {Channel::WEB_FORM, 0.3}, {Channel::IN_PERSON, 0.1}}},
    }};
    Party& p = parties[i];
    Ev ev = Touch(i, rng.Pick(kShop[static_cast<int>(p.group())]).channel, Direction::INBOUND,
                  TouchpointType::PURCHASE);
    ev.content = true;
    ev.topic = kNoTopic;  // no topic: an order
    if (Emit(ev) == kNoEvent) return;
    if (p.kind == PartyKind::PROSPECT && rng.Chance(kProspectConversion)) {
      p.kind = PartyKind::CUSTOMER;
      p.flags |= kWasProspect;
      Ev profile;
      profile.profile_kind = PartyKind::CUSTOMER;
      profile.kind = Ev::kProfile;
      profile.party = i;
      profile.occurred = now;
      Emit(profile);
    }
    if (p.social != kNone && rng.Chance(kReviewChance)) {
      Action a = At(now + static_cast<int64_t>(rng.Exponential(3) * kDay), Act::kReview);
      a.party = p.social;
      Schedule(a);
    }
  }

  Channel SocialChannel() {
    static constexpr std::array<ChannelWeight, 4> kSocial = {{{Channel::TWITTER, 0.5},
                                                              {Channel::FACEBOOK, 0.3},
                                                              {Channel::YOUTUBE, 0.05},
                                                              {Channel::FORUM, 0.15}}};
    return rng.Pick(kSocial).channel;
  }

  void Post(uint32_t i) {
    const uint32_t s = parties[i].social;
    Register(s, now);
    const double kind = rng.Uniform();
    Ev ev = Touch(s, SocialChannel(), Direction::PUBLIC, TouchpointType::MESSAGE);
    if (kind < 0.3) {
      ev.type = TouchpointType::RECOMMENDATION;
      ev.sentiment = Clamp1(rng.Normal(0.7, 0.2));
    } else if (kind < 0.6) {
      ev.type = TouchpointType::REVIEW;
      ev.sentiment = Clamp1(rng.Normal(0.2, 0.5));
    } else if (kind < 0.9) {
      ev.sentiment = Clamp1(rng.Normal(0.0, 0.3));
    } else {
      ev.type = TouchpointType::COMPLAINT;
      ev.sentiment = Clamp1(rng.Normal(-0.6, 0.2));
    }
    PickTopics(ev);
    ev.thread = ++thread_count;
    ev.content = true;
    PublicPost(ev, s, 0);
  }

  void LikeOrFollow(uint32_t i) {
    const uint32_t s = parties[i].social;
    Register(s, now);
    Party& p = parties[s];
    const bool follow = !(p.flags & kFollows);
    p.flags |= kFollows;
    Emit(Touch(s, rng.Chance(0.6) ? Channel::TWITTER : Channel::FACEBOOK, Direction::PUBLIC,
               follow ? TouchpointType::FOLLOW : TouchpointType::LIKE));
  }

  void ConsentChange(uint32_t i) {
    Party& p = parties[i];
    if (p.flags & kNewsletter) {
      p.flags &= ~kNewsletter;
      Emit(Consent(i, now, Channel::NEWSLETTER, false));
    } else if (rng.Chance(kConsentRegainChance)) {
      p.flags |= kNewsletter;
      Emit(Consent(i, now, Channel::NEWSLETTER, true));
    }
  }

  void Campaign(bool newsletter) {
    const uint32_t campaign = ++campaign_count;
    const uint16_t need = newsletter ? kNewsletter : kAppUser;
    for (size_t i = first_customer; i < parties.size(); ++i) {
      Party& p = parties[i];
      if (p.kind != PartyKind::CUSTOMER || !(p.flags & kRegistered) || !(p.flags & need)) continue;
      if (!rng.Chance(kCampaignReach)) continue;
      Ev ev = Touch(static_cast<uint32_t>(i), newsletter ? Channel::NEWSLETTER : Channel::PUSH,
                    Direction::OUTBOUND, TouchpointType::CAMPAIGN_SENT);
      ev.campaign = campaign;
      if (Emit(ev) == kNoEvent) return;
      const GroupModel& g = kGroups[static_cast<int>(p.group())];
      if (rng.Chance(newsletter ? g.newsletter_open : g.push_open)) {
        Action a =
            At(now + static_cast<int64_t>(rng.Exponential(newsletter ? kNewsletterOpenMeanHours
                                                                     : kPushOpenMeanHours) *
                                          kHour),
               Act::kOpen);
        a.party = static_cast<uint32_t>(i);
        a.campaign = campaign;
        a.ev.channel = ev.channel;
        Schedule(a);
      }
    }
    Action next = At(now + 7 * kDay, newsletter ? Act::kNewsletter : Act::kPush);
    Schedule(next);
  }

  // --- actions ----------------------------------------------------------------------------

  void Run(const Action& a) {
    switch (a.act) {
      case Act::kActivity:
        Activity(a.party);
        break;
      case Act::kNewsletter:
      case Act::kPush:
        Campaign(a.act == Act::kNewsletter);
        break;
      case Act::kArrive:
        Arrived(a.ev, a.depth != 0);
        break;
      case Act::kReply: {
        auto it = open_inbound.find(a.ref);
        if (it == open_inbound.end()) break;  // answered already (say, publicly)
        const Inbound& in = it->second;
        Ev ev = Touch(a.party, in.channel, Direction::OUTBOUND, TouchpointType::REPLY);
        if (!rng.Chance(kReplySameChannel)) {
          ev.channel = in.channel == Channel::PHONE ? Channel::EMAIL : Channel::PHONE;
        }
        ev.in_reply_to = a.ref;
        ev.thread = in.thread;
        ev.counterpart = RandomEmployee();
        ev.company = true;
        ev.content = true;
        Emit(ev);
        break;
      }
      case Act::kPatience:
        Patience(a);
        break;
      case Act::kReaction: {
        Register(a.party, now);
        Ev ev = Touch(a.party, a.ev.channel, Direction::PUBLIC, a.ev.type);
        ev.causation = a.ref;
        ev.counterpart = a.ev.counterpart;
        ev.thread = a.ev.thread;
        if (a.ev.type == TouchpointType::LIKE) {
          Emit(ev);
        } else {
          ev.sentiment = a.ev.sentiment;
          ev.content = true;
          PublicPost(ev, a.other, a.depth, a.root);
        }
        break;
      }
      case Act::kOpen: {
        Ev ev = Touch(a.party, a.ev.channel, Direction::INBOUND, TouchpointType::CAMPAIGN_OPENED);
        ev.campaign = a.campaign;
        if (Emit(ev) == kNoEvent) break;
        if (a.ev.channel == Channel::NEWSLETTER && rng.Chance(kUnsubscribeChance)) {
          Action u =
              At(now + static_cast<int64_t>(rng.Exponential(0.2) * kHour), Act::kUnsubscribe);
          u.party = a.party;
          u.campaign = a.campaign;
          Schedule(u);
        }
        break;
      }
      case Act::kUnsubscribe: {
        Party& p = parties[a.party];
        if (!(p.flags & kNewsletter)) break;
        p.flags &= ~kNewsletter;
        Ev ev =
            Touch(a.party, Channel::NEWSLETTER, Direction::INBOUND, TouchpointType::UNSUBSCRIBE);
        ev.campaign = a.campaign;
        Emit(ev);
        break;
      }
      case Act::kCorrect: {
        Ev ev = a.ev;
        ev.occurred = now;
        ev.corrects = a.ref;
        ev.in_reply_to = kNoEvent;
        ev.audience = 0;
        ev.content = false;
        if (ev.type == TouchpointType::CORRECTION) {
          PickTopics(ev);
          ev.sentiment = Clamp1(rng.Normal(std::isnan(ev.sentiment) ? 0 : ev.sentiment, 0.2));
        }
        if (Emit(ev) == kNoEvent || ev.type != TouchpointType::RETRACTION) break;
        if (auto it = cascades.find(a.ref); it != cascades.end() && !it->second.retracted) {
          it->second.retracted = true;
          parties[a.party].reach -= it->second.reach;
        }
        break;
      }
      case Act::kPublicReply: {
        Ev ev = Touch(a.party, a.ev.channel, Direction::PUBLIC, TouchpointType::REPLY);
        ev.in_reply_to = a.ref;
        ev.thread = a.ev.thread;
        ev.counterpart = RandomEmployee();
        ev.company = true;
        ev.content = true;
        Emit(ev);
        break;
      }
      case Act::kLink: {
        Ev ev;
        ev.kind = Ev::kLink;
        ev.party = parties[a.party].owner;
        ev.other = a.party;
        ev.occurred = now;
        if (!(parties[ev.party].flags & kRegistered)) break;  // the company never met the owner
        if (Emit(ev) != kNoEvent) parties[a.party].flags |= kLinkedInLog;
        break;
      }
      case Act::kReview: {
        Ev ev = Touch(a.party, rng.Chance(0.5) ? Channel::FORUM : Channel::FACEBOOK,
                      Direction::PUBLIC, TouchpointType::REVIEW);
        ev.sentiment = Clamp1(rng.Normal(0.3, 0.5));
        ev.topic = kNoTopic;
        ev.thread = ++thread_count;
        ev.content = true;
        Register(a.party, now);
        PublicPost(ev, a.party, 0);
        break;
      }
      case Act::kStory:
        Story(a.campaign);
        break;
    }
  }

  // The customer waited; if still unanswered, they act: publicly or on another channel.
  void Patience(const Action& a) {
    auto it = open_inbound.find(a.ref);
    if (it == open_inbound.end() || it->second.switched) return;
    const Party& p = parties[a.party];
    const GroupModel& g = kGroups[static_cast<int>(p.group())];
    if (!rng.Chance(g.switch_chance)) return;
    Inbound from = it->second;
    it->second.switched = true;
    if (p.social != kNone && rng.Chance(g.switch_public_chance)) {
      const uint32_t s = p.social;
      Register(s, now);
      Ev ev = Touch(s, rng.Chance(0.7) ? Channel::TWITTER : Channel::FACEBOOK, Direction::PUBLIC,
                    TouchpointType::COMPLAINT);
      ev.sentiment = Clamp1(rng.Normal(-0.8, 0.15));
      ev.topic = from.topic;
      ev.thread = s == a.party ? from.thread : ++thread_count;
      ev.causation = from.seq;
      ev.content = true;
      const uint64_t seq = PublicPost(ev, s, 0);
      if (seq == kNoEvent) return;
      if (s != a.party) parties[s].flags |= kFollowedUp;
      switches.push_back({a.party, s, from.seq, seq, from.channel, ev.channel, true});
      if (rng.Chance(kPublicReplyChance)) {
        Action r =
            At(ServiceHours::Default().Add(
                   now, static_cast<int64_t>(rng.Exponential(kPublicReplyMedianHours) * kHour)),
               Act::kPublicReply);
        r.party = s;
        r.ref = seq;
        r.ev.channel = ev.channel;
        r.ev.thread = ev.thread;
        Schedule(r);
      }
      return;
    }
    Channel to = from.channel;
    for (int tries = 0; tries < 8 && to == from.channel; ++tries) {
      to = rng.Pick(g.private_channels).channel;
    }
    if (to == from.channel) return;
    Ev ev = Touch(a.party, to, Direction::INBOUND, TouchpointType::COMPLAINT);
    ev.sentiment = Clamp1(rng.Normal(-0.7, 0.2));
    ev.topic = from.topic;
    ev.thread = from.thread;
    ev.causation = from.seq;
    ev.content = true;
    const uint64_t before = next_seq;
    Receive(ev, false);
    if (next_seq > before) {
      switches.push_back({a.party, a.party, from.seq, before, from.channel, to, false});
    } else {
      // A late record: the switch is recorded when it arrives (rare: letters of the patient).
      pending_switch.push_back({a.party, a.party, from.seq, 0, from.channel, to, false});
    }
  }

  void Story(uint32_t step) {
    const uint32_t ada = story_party;
    switch (step) {
      case 0: {  // registers and buys
        Register(ada, now);
        Ev ev = Touch(ada, Channel::WEB_FORM, Direction::INBOUND, TouchpointType::PURCHASE);
        ev.content = true;
        ev.topic = kNoTopic;
        Emit(ev);
        break;
      }
      case 1: {  // an email complaint that nobody answers
        Ev ev = Touch(ada, Channel::EMAIL, Direction::INBOUND, TouchpointType::COMPLAINT);
        ev.sentiment = -0.6f;
        ev.topic = 2;  // product-defect
        ev.thread = ++thread_count;
        ev.content = true;
        story_thread = ev.thread;
        story_email = Emit(ev);
        break;
      }
      case 2: {  // two days later, on Twitter, in public
        if (story_email == kNoEvent) break;
        Ev ev = Touch(ada, Channel::TWITTER, Direction::PUBLIC, TouchpointType::COMPLAINT);
        ev.sentiment = -0.9f;
        ev.topic = 2;
        ev.thread = story_thread;
        ev.causation = story_email;
        ev.content = true;
        const uint64_t seq = PublicPost(ev, ada, 0);
        if (seq == kNoEvent) break;
        story_tweet = seq;
        auto it = open_inbound.find(story_email);
        if (it != open_inbound.end()) it->second.switched = true;
        switches.push_back({ada, ada, story_email, seq, Channel::EMAIL, Channel::TWITTER, true});
        // It is shared: a few of the population pass it on within hours.
        for (int k = 0; k < 6 && social_accounts.size() > 1; ++k) {
          const uint32_t r = social_accounts[rng.Below(social_accounts.size())];
          if (r == ada) continue;
          Action act = At(now + (10 + 12 * k) * kMinute, Act::kReaction);
          act.party = r;
          act.other = ada;
          act.ref = seq;
          act.depth = 1;
          act.ev.type = k == 5 ? TouchpointType::MENTION : TouchpointType::SHARE;
          act.ev.channel = Channel::TWITTER;
          act.ev.counterpart = ada;
          act.ev.thread = story_thread;
          act.ev.sentiment = -0.7f;
          Schedule(act);
        }
        break;
      }
      case 3: {  // the company answers, in public, once the complaint is out
        if (story_tweet == kNoEvent) break;
        Ev ev = Touch(ada, Channel::TWITTER, Direction::PUBLIC, TouchpointType::REPLY);
        ev.in_reply_to = story_tweet;
        ev.thread = story_thread;
        ev.counterpart = RandomEmployee();
        ev.company = true;
        ev.content = true;
        Emit(ev);
        break;
      }
    }
  }

  // --- the ground truth, kept as events are emitted ----------------------------------------

  // What the truth's five segments count (docs/workload.md "Ground truth").
  static void ObserveSegmentFacts(uint64_t seq, const Ev& ev, Party& p) {
    if (ev.type == TouchpointType::CORRECTION) return;
    if (ev.type == TouchpointType::RETRACTION) {
      auto& c = p.complaints;
      c.erase(
          std::remove_if(c.begin(), c.end(), [&](const auto& x) { return x.first == ev.corrects; }),
          c.end());
      auto& a = p.advocate_posts;
      a.erase(std::remove(a.begin(), a.end(), ev.corrects), a.end());
      return;
    }
    const bool from_party = ev.direction == Direction::INBOUND || ev.direction == Direction::PUBLIC;
    const bool company = ev.company && ev.type == TouchpointType::REPLY;
    if (ev.direction == Direction::INBOUND) p.last_inbound = std::max(p.last_inbound, ev.occurred);
    if (ev.type == TouchpointType::PURCHASE) {
      p.last_purchase = std::max(p.last_purchase, ev.occurred);
    }
    if (from_party && !company && ev.type == TouchpointType::COMPLAINT) {
      p.complaints.emplace_back(seq, ev.occurred);
    }
    if (ev.type == TouchpointType::CAMPAIGN_OPENED) {
      // Keeps the latest kEngagedOpens by occurred time: a late record may be older.
      int64_t* oldest = std::min_element(std::begin(p.opens), std::end(p.opens));
      if (ev.occurred > *oldest) *oldest = ev.occurred;
    }
    if (ev.direction == Direction::PUBLIC && ev.causation == kNoEvent &&
        (ev.type == TouchpointType::RECOMMENDATION ||
         (ev.type == TouchpointType::REVIEW && ev.sentiment > 0.5f))) {
      p.advocate_posts.push_back(seq);
    }
  }

  void Observe(uint64_t seq, const Ev& ev) {
    if (ev.kind == Ev::kSegment) return;
    auto seen = [&](uint32_t i) {
      if (i != kNone) parties[i].first_seq = std::min(parties[i].first_seq, seq);
    };
    seen(ev.party);
    if (ev.kind == Ev::kLink) seen(ev.other);
    if (ev.kind != Ev::kTouchpoint) return;
    Party& p = parties[ev.party];
    if (ev.content && QuotesOwnOrder(ev)) p.flags |= kQuotedOrder;
    if (ev.content && QuotesFriend(ev)) p.flags |= kQuotedFriend;
    ObserveSegmentFacts(seq, ev, p);
    const bool company = ev.company && ev.type == TouchpointType::REPLY;
    if (schema::WaitsForAnswer(ev.direction, ev.type) && !company) {
      // A record that arrives late may find the thread answered already, after it happened.
      if (const Reply* reply = FirstReplyAtOrAfter(ev.thread, ev.party, ev.occurred)) {
        responses.push_back({seq, reply->seq, reply->occurred - ev.occurred,
                             ServiceHours::Default().Between(ev.occurred, reply->occurred)});
      } else {
        open_inbound[seq] = {seq,     ev.party,  ev.occurred, ev.channel,
                             ev.type, ev.thread, ev.topic,    false};
        open_by_thread[ev.thread].push_back(seq);
      }
      // A switch waiting for its late record (records that arrive late are inbound).
      for (size_t k = 0; ev.direction == Direction::INBOUND && k < pending_switch.size(); ++k) {
        Switch& s = pending_switch[k];
        if (s.party == ev.party && s.to_channel == ev.channel && ev.causation == s.from_event) {
          s.to_event = seq;
          switches.push_back(s);
          pending_switch.erase(pending_switch.begin() + static_cast<long>(k));
          break;
        }
      }
    }
    if (company) {
      thread_replies[ev.thread].push_back({seq, ev.occurred, ev.party});
      // The company's first reply in a thread answers every inbound message of the thread in
      // the same stream that happened before it, on whichever channel.
      auto t = open_by_thread.find(ev.thread);
      if (t == open_by_thread.end()) return;
      std::vector<uint64_t> still;
      for (uint64_t in_seq : t->second) {
        auto it = open_inbound.find(in_seq);
        if (it == open_inbound.end()) continue;
        if (it->second.party != ev.party || it->second.occurred > ev.occurred) {
          still.push_back(in_seq);
          continue;
        }
        responses.push_back({in_seq, seq, ev.occurred - it->second.occurred,
                             ServiceHours::Default().Between(it->second.occurred, ev.occurred)});
        open_inbound.erase(it);
      }
      if (still.empty()) {
        open_by_thread.erase(t);
      } else {
        t->second = std::move(still);
      }
    }
    if (ev.type == TouchpointType::CORRECTION || ev.type == TouchpointType::RETRACTION) {
      corrections.push_back({seq, ev.corrects, ev.type == TouchpointType::RETRACTION});
    }
    if (ev.type == TouchpointType::RETRACTION) {
      // A withdrawn complaint waits for nothing, and its answer is no response time
      // (docs/projections.md "Corrections").
      open_inbound.erase(ev.corrects);
      responses.erase(std::remove_if(responses.begin(), responses.end(),
                                     [&](const Response& r) { return r.inbound == ev.corrects; }),
                      responses.end());
    }
  }

  // The company's earliest reply in `thread` to `party` that happened at or after `t`.
  const Reply* FirstReplyAtOrAfter(uint64_t thread, uint32_t party, int64_t t) const {
    auto it = thread_replies.find(thread);
    if (it == thread_replies.end()) return nullptr;
    const Reply* best = nullptr;
    for (const Reply& r : it->second) {
      if (r.party == party && r.occurred >= t && (best == nullptr || r.occurred < best->occurred)) {
        best = &r;
      }
    }
    return best;
  }

  // --- output -----------------------------------------------------------------------------

  std::string StreamId(uint32_t i) const {
    const Party& p = parties[i];
    if (p.flags & kStory) return Generator::kStoryParty;
    const char* prefix = "c";
    switch (p.kind) {
      case PartyKind::EMPLOYEE:
        prefix = "e";
        break;
      case PartyKind::PARTNER:
        prefix = "pa";
        break;
      case PartyKind::SERVICE_PROVIDER:
        prefix = "sp";
        break;
      case PartyKind::PROSPECT:
        prefix = p.flags & kUnlinkedAccount ? "s" : "p";
        break;
      default:
        break;
    }
    if (p.flags & kWasProspect) prefix = "p";  // a converted prospect keeps its stream id
    return absl::StrFormat("%s-%0*u", prefix, digits, p.number);
  }

  std::string Id(uint64_t seq) const {
    std::string id;
    PutBigEndian64(&id, fingerprint);
    PutBigEndian64(&id, seq);
    return id;
  }

  // Names, handles and the order reference are functions of the party's index: they cost no
  // randomness and are the same in every event of the party.
  static uint64_t Mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  uint32_t Person(uint32_t i) const { return parties[i].owner == kNone ? i : parties[i].owner; }

  // The traps of identity resolution (model.h): each a function of a party's index.
  enum Trait : uint64_t {
    kTraitHousehold = 1,
    kTraitMovedPhone,
    kTraitFriend,
    kTraitTypo,
    kTraitReview
  };
  bool Trait(uint64_t i, Trait trait, double share) const {
    return static_cast<double>(Mix(i * 8 + trait + (config.seed << 32)) % 1000000) < share * 1e6;
  }
  bool IsCustomer(uint32_t i) const { return i >= first_customer && i < customer_end; }
  // The customer whose landline and postal address `person` shares (itself if none).
  uint32_t Household(uint32_t person) const {
    while (IsCustomer(person) && person > first_customer &&
           Trait(person, kTraitHousehold, kHouseholdShare)) {
      --person;
    }
    return person;
  }
  // The customer whose order reference a social account's public messages quote, or kNone.
  uint32_t Friend(uint32_t account) const {
    if (!Trait(account, kTraitFriend, kFriendQuoteShare) || customer_end == first_customer) {
      return kNone;
    }
    const uint32_t f = static_cast<uint32_t>(first_customer + Mix(account ^ (config.seed << 24)) %
                                                                  (customer_end - first_customer));
    return f == Person(account) ? kNone : f;
  }
  bool ReviewQuotesOrder(const Ev& ev) const {
    return ev.type == TouchpointType::REVIEW && !ev.company &&
           Trait(static_cast<uint64_t>(ev.occurred) ^ ev.party, kTraitReview, kReviewQuotesOrder);
  }
  bool QuotesFriend(const Ev& ev) const {
    return ev.type == TouchpointType::MESSAGE && ev.direction == Direction::PUBLIC && !ev.company &&
           Friend(ev.party) != kNone;
  }
  bool QuotesOwnOrder(const Ev& ev) const {
    return !ev.company && ((ev.type == TouchpointType::COMPLAINT) ||
                           ev.type == TouchpointType::REQUEST || ReviewQuotesOrder(ev));
  }
  bool HasNameTypo(uint32_t i) const {
    return (parties[i].flags & kUnlinkedAccount) && Trait(i, kTraitTypo, kNameTypoShare);
  }
  std::string Name(uint32_t i) const {
    if (parties[i].flags & kStory) return "ada.lovelace";
    const uint64_t first = Mix(Person(i) ^ config.seed);
    const uint64_t last = Mix(Household(Person(i)) ^ config.seed);  // a household shares it
    std::string name = absl::StrCat(kFirstNames[first % 16], ".", kLastNames[(last >> 8) % 16]);
    if (HasNameTypo(i)) {
      // Two neighbouring letters of the last name swapped, or one dropped.
      const size_t dot = name.find('.');
      const uint64_t h = Mix(i + config.seed);
      const size_t at = dot + 1 + h % (name.size() - dot - 2);
      if (h & 1 << 20) {
        std::swap(name[at], name[at + 1]);
      } else {
        name.erase(at, 1);
      }
    }
    return name;
  }
  // "greta.richter" as a letter is signed: "Greta Richter".
  std::string LetterName(uint32_t i) const {
    std::string n = Name(i);
    bool word = false;
    for (char& c : n) {
      if (c == '.') {
        c = ' ';
        word = false;
      } else if (!word) {
        c = absl::ascii_toupper(static_cast<unsigned char>(c));
        word = true;
      }
    }
    return n;
  }
  // One per person: a bijection of the index (under 10^7) onto 7 digits, shifted by the seed.
  std::string OrderRef(uint32_t i) const {
    constexpr uint64_t kSpace = 10000000, kStride = 7919;  // 7919 is prime to 10^7
    static_assert(kMaxParties <= kSpace);
    return absl::StrFormat(
        "A-%07u", static_cast<unsigned>((Person(i) * kStride + Mix(config.seed)) % kSpace));
  }
  // The landline of `person` at time t: its household's, or after the middle of the history a
  // moved number (a new one for who gave it up, the old one of another for who took it over).
  uint64_t Landline(uint32_t person, int64_t t) const {
    uint32_t who = Household(person);
    if (t >= config.start + config.days * kDay / 2) {
      if (auto it = phone_taken_from.find(who); it != phone_taken_from.end()) {
        who = it->second;
      } else if (phone_taken_by.contains(who)) {
        return Mix(who + config.seed * 13) % 10000000;
      }
    }
    return Mix(who + config.seed * 7) % 10000000;
  }
  void SetHandle(uint32_t i, Channel channel, int64_t t, schema::Handle::Builder h) const {
    const uint32_t person = Person(i);
    const uint64_t n = Mix(Household(person) + config.seed * 7);
    switch (channel) {
      case Channel::EMAIL:
      case Channel::WEB_FORM:
      case Channel::NEWSLETTER:
        h.setKind(schema::HandleKind::EMAIL);
        h.setAddress(absl::StrCat(Name(i), ".", person, "@example.net"));
        break;
      case Channel::PHONE:
      case Channel::CALL_CENTRE:
        h.setKind(schema::HandleKind::PHONE);
        h.setAddress(absl::StrFormat("+49 30 %07u", static_cast<unsigned>(Landline(person, t))));
        break;
      case Channel::SMS:
        h.setKind(schema::HandleKind::PHONE);
        h.setAddress(absl::StrFormat(
            "+49 170 %07u", static_cast<unsigned>(Mix(person + config.seed * 11) % 10000000)));
        break;
      case Channel::FAX:
        h.setKind(schema::HandleKind::FAX);
        h.setAddress(absl::StrFormat("+49 30 %07u-9", static_cast<unsigned>(n % 10000000)));
        break;
      case Channel::LETTER:
        h.setKind(schema::HandleKind::POSTAL);
        // The name as a letter shows it ("Greta Richter"), then the household's address.
        h.setAddress(absl::StrFormat("%s, Lindenstr. %u, %05u Berlin", LetterName(i),
                                     static_cast<unsigned>(n % 200 + 1),
                                     static_cast<unsigned>(10115 + (n / 200) % 2000)));
        break;
      case Channel::TWITTER:
        h.setKind(schema::HandleKind::TWITTER);
        h.setAddress(absl::StrCat("@", absl::StrReplaceAll(Name(i), {{".", "_"}}), i));
        break;
      case Channel::FACEBOOK:
        h.setKind(schema::HandleKind::FACEBOOK);
        h.setAddress(absl::StrCat("fb:", Name(i), ".", i));
        break;
      case Channel::YOUTUBE:
        h.setKind(schema::HandleKind::YOUTUBE);
        h.setAddress(absl::StrCat("yt:", Name(i), i));
        break;
      case Channel::FORUM:
        h.setKind(schema::HandleKind::FORUM);
        h.setAddress(absl::StrCat("forum:", Name(i), i));
        break;
      default:
        h.setKind(schema::HandleKind::APP_USER);
        h.setAddress(absl::StrCat("app:", person));
        break;
    }
  }

  void SetContent(const Ev& ev, schema::Content::Builder c) const {
    const std::string topic = ev.topic < kTopics.size() ? kTopicPhrases[ev.topic] : "my order";
    const std::string order = OrderRef(ev.party);
    const bool company = ev.company;
    switch (ev.type) {
      case TouchpointType::COMPLAINT:
        if (ev.direction == Direction::PUBLIC) {
          c.setText(absl::StrCat("@company ", topic, " (order ", order,
                                 ") and nobody answers. Not acceptable!"));
        } else {
          c.setSubject(absl::StrCat("Complaint: ", topic));
          c.setText(absl::StrCat("Hello, ", topic, ". My order is ", order,
                                 ". I expect this to be fixed."));
        }
        break;
      case TouchpointType::REQUEST:
        c.setSubject(absl::StrCat("Question about ", kTopics[ev.topic % kTopics.size()]));
        c.setText(
            absl::StrCat("Could you help me? It is about ", topic, ". Reference ", order, "."));
        break;
      case TouchpointType::REPLY:
        if (company) {
          c.setSubject("Re: your message");
          c.setText(ev.direction == Direction::PUBLIC
                        ? "We are sorry to hear this. We have sent you a direct message."
                        : "Thank you for your message. We have looked into it and fixed it.");
        } else {
          c.setText("Thank you, that works for us.");
        }
        break;
      case TouchpointType::PURCHASE:
        c.setSubject(absl::StrCat("Order ", order));
        c.setText(absl::StrCat("items: ", 1 + ev.occurred % 4, ", total ", 10 + ev.occurred % 190,
                               ".90 EUR"));
        break;
      case TouchpointType::RECOMMENDATION:
        c.setText("Great service from @company, I can only recommend them.");
        break;
      case TouchpointType::REVIEW:
        c.setText(absl::StrCat(ReviewQuotesOrder(ev) ? absl::StrCat("Order ", order, ": ") : "",
                               ev.sentiment > 0 ? "Solid product, fast delivery. 4 stars."
                                                : "Disappointing. 2 stars, would not buy again."));
        break;
      case TouchpointType::SHARE:
        c.setText("RT: look at this");
        break;
      case TouchpointType::MENTION:
        c.setText("Same here with @company. Anyone else?");
        break;
      default:
        if (QuotesFriend(ev)) {
          c.setText(absl::StrCat("@company my friend's order ", OrderRef(Friend(ev.party)),
                                 " has been waiting for weeks. Please sort it out."));
          break;
        }
        c.setSubject(absl::StrCat("About ", kTopics[ev.topic % kTopics.size()]));
        c.setText(absl::StrCat("A note about ", topic, "."));
        break;
    }
    if (company) {
      auto from = c.initFrom();
      from.setKind(ev.direction == Direction::PUBLIC ? schema::HandleKind::TWITTER
                                                     : schema::HandleKind::EMAIL);
      from.setAddress(ev.direction == Direction::PUBLIC ? "@company" : "service@company.example");
      if (ev.channel != Channel::IN_PERSON) {
        SetHandle(ev.party, ev.channel, ev.occurred, c.initTo(1)[0]);
      }
    } else if (ev.channel != Channel::IN_PERSON) {
      SetHandle(ev.party, ev.channel, ev.occurred, c.initFrom());
    }
  }

  static const char* SourceSystem(Channel channel) {
    switch (channel) {
      case Channel::EMAIL:
        return "mail-gateway";
      case Channel::PHONE:
      case Channel::CALL_CENTRE:
        return "call-centre";
      case Channel::LETTER:
      case Channel::FAX:
        return "scan-centre";
      case Channel::SMS:
        return "sms-gateway";
      case Channel::CHAT:
      case Channel::APP:
      case Channel::PUSH:
        return "app-backend";
      case Channel::WEB_FORM:
        return "web";
      case Channel::NEWSLETTER:
        return "campaigns";
      case Channel::IN_PERSON:
        return "store-pos";
      default:
        return "social-listening";
    }
  }

  void Materialise(uint64_t seq, const Ev& ev, schema::Event::Builder e) const {
    e.setId(AsData(Id(seq)));
    e.setOccurredAt(ev.occurred);
    if (ev.kind == Ev::kProfile) {
      e.setStreamId(StreamId(ev.party));
      e.setSourceSystem("crm");
      auto p = e.initPartyProfile();
      const Party& party = parties[ev.party];
      p.setKind(ev.profile_kind);
      const bool person =
          ev.profile_kind == PartyKind::CUSTOMER || ev.profile_kind == PartyKind::PROSPECT;
      if (person && !(party.flags & kUnlinkedAccount)) p.setCohort(kCohorts[party.cohort].name);
      return;
    }
    if (ev.kind == Ev::kSegment) {
      e.setStreamId("$segments");
      e.setSourceSystem("ihs-generate");
      auto d = e.initSegmentDefinition();
      d.setRequestedBy("ihs generate");
      if (ev.party >= std::size(kTruthSegments)) {
        const auto& [name, rule] = config.extra_segments[ev.party - std::size(kTruthSegments)];
        d.setName(name);
        d.setRule(rule);
        return;
      }
      const TruthSegment& s = kTruthSegments[ev.party];
      d.setName(s.name);
      d.setRule(s.rule);
      d.setDescription(s.description);
      return;
    }
    if (ev.kind == Ev::kLink) {
      e.setStreamId("$identity");
      e.setSourceSystem("crm");
      auto l = e.initIdentityLink();
      auto list = l.initParties(2);
      list.set(0, StreamId(ev.party));
      list.set(1, StreamId(ev.other));
      l.setConfidence(0.9f);
      return;
    }
    e.setStreamId(StreamId(ev.party));
    e.setSourceSystem(SourceSystem(ev.channel));
    if (ev.causation != kNoEvent) e.setCausationId(AsData(Id(ev.causation)));
    auto t = e.initTouchpoint();
    t.setChannel(ev.channel);
    t.setDirection(ev.direction);
    t.setType(ev.type);
    t.setSentiment(ev.sentiment);
    if (ev.topic < kTopics.size()) {
      auto topics = t.initTopics(ev.second_topic ? 2 : 1);
      topics.set(0, kTopics[ev.topic]);
      if (ev.second_topic) topics.set(1, kTopics[ev.topic2]);
    }
    if (ev.thread != 0) t.setThreadId(absl::StrCat("t-", ev.thread));
    if (ev.in_reply_to != kNoEvent) t.setInReplyTo(AsData(Id(ev.in_reply_to)));
    if (ev.corrects != kNoEvent) t.setCorrects(AsData(Id(ev.corrects)));
    if (ev.counterpart != kNone) t.setCounterpart(StreamId(ev.counterpart));
    if (ev.audience != 0) t.setAudienceSize(ev.audience);
    if (ev.campaign != 0) t.setCampaignId(CampaignId(ev.campaign, ev.channel));
    if (ev.content) SetContent(ev, e.initContent());
  }

  static std::string CampaignId(uint32_t campaign, Channel channel) {
    return absl::StrCat(channel == Channel::PUSH ? "push-" : "nl-", campaign);
  }

  // Runs actions until an event is ready or the history is over.
  bool Fill() {
    while (out.empty()) {
      if (capped || heap.empty()) return false;
      Action a = heap.top();
      heap.pop();
      now = a.time;
      Run(a);
    }
    return true;
  }

  const Config config;
  Random rng;
  const int64_t end;
  uint64_t fingerprint = 0;
  int digits = 6;
  std::vector<Party> parties;
  uint64_t kind_counts[8] = {};
  uint32_t unlinked_count = 0;
  uint64_t employee_count = 0;
  size_t first_customer = 0;
  size_t customer_end = 0;  // customers are [first_customer, customer_end)
  absl::flat_hash_map<uint32_t, uint32_t> phone_taken_by, phone_taken_from;  // moved landlines
  std::vector<uint32_t> social_accounts;
  std::priority_queue<Action, std::vector<Action>, std::greater<Action>> heap;
  uint64_t next_order = 0;
  int64_t now = 0, last_time = 0;
  int64_t arrived = 0;  // of the last event Next returned
  std::deque<Ev> out;
  uint64_t next_seq = 0;  // sequence number of the next event emitted
  uint64_t handed_out = 0;
  bool capped = false;
  uint64_t thread_count = 0;
  uint32_t campaign_count = 0;
  uint32_t story_party = kNone;
  uint64_t story_email = kNoEvent, story_tweet = kNoEvent, story_thread = 0;
  // Truth.
  absl::flat_hash_map<uint64_t, Inbound> open_inbound;
  absl::flat_hash_map<uint64_t, Cascade> cascades;  // by the original post's seq
  absl::flat_hash_map<uint64_t, std::vector<uint64_t>> open_by_thread;
  std::vector<Response> responses;
  absl::flat_hash_map<uint64_t, std::vector<Reply>> thread_replies;
  std::vector<Switch> switches, pending_switch;
  std::vector<Correction> corrections;
};

Generator::Generator(const Config& config) : impl_(std::make_unique<Impl>(config)) {}
Generator::~Generator() = default;

bool Generator::Next(schema::Event::Builder out) {
  if (!impl_->Fill()) return false;
  impl_->Materialise(impl_->handed_out++, impl_->out.front(), out);
  impl_->arrived = impl_->out.front().arrived;
  impl_->out.pop_front();
  return true;
}

uint64_t Generator::Skip(uint64_t count) {
  uint64_t skipped = 0;
  while (skipped < count && impl_->Fill()) {
    impl_->out.pop_front();
    ++impl_->handed_out;
    ++skipped;
  }
  return skipped;
}

uint64_t Generator::emitted() const { return impl_->handed_out; }
int64_t Generator::arrived() const { return impl_->arrived; }
uint64_t Generator::fingerprint() const { return impl_->fingerprint; }
std::string Generator::EventId(uint64_t seq) const { return impl_->Id(seq); }

double Generator::fraction_done() const {
  const double span = static_cast<double>(impl_->end - impl_->config.start);
  return std::clamp(static_cast<double>(impl_->now - impl_->config.start) / span, 0.0, 1.0);
}

namespace {

// Writes `,"name":[...]` with one JSON object per item, without holding the array in memory.
template <typename Items, typename ToJson>
void WriteArray(std::ostream& os, const char* name, const Items& items, ToJson to_json) {
  os << ",\"" << name << "\":[";
  bool first = true;
  for (const auto& item : items) {
    nlohmann::json j = to_json(item);
    if (j.is_null()) continue;
    os << (first ? "" : ",") << j.dump();
    first = false;
  }
  os << "]";
}

}  // namespace

void Generator::WriteTruth(std::ostream& os) const {
  const Impl& g = *impl_;
  using nlohmann::json;
  auto hex = [&g](uint64_t seq) {
    static constexpr char kDigits[] = "0123456789abcdef";
    const std::string id = g.Id(seq);
    std::string s;
    for (unsigned char c : id) {
      s += kDigits[c >> 4];
      s += kDigits[c & 15];
    }
    return s;
  };
  // "As of": the end of the days, or the last event's time when the history was capped.
  const int64_t as_of = g.capped ? g.last_time : g.end;
  json head = {{"generator_version", kGeneratorVersion},
               {"seed", g.config.seed},
               {"parties", g.config.parties},
               {"days", g.config.days},
               {"start", schema::FormatMicros(g.config.start)},
               {"as_of", schema::FormatMicros(as_of)},
               {"events", g.handed_out},
               {"fingerprint", absl::StrFormat("%016x", g.fingerprint)}};
  std::string head_text = head.dump();
  head_text.pop_back();  // the object stays open for the sections below
  os << head_text;

  // Parties by kind and cohort.
  std::map<std::string, uint64_t> kinds, cohorts;
  for (uint32_t i = 0; i < g.parties.size(); ++i) {
    const Party& p = g.parties[i];
    if (!(p.flags & kRegistered)) continue;
    ++kinds[p.flags & kUnlinkedAccount ? "unlinkedAccount" : schema::EnumName(p.kind)];
    if (p.kind == PartyKind::CUSTOMER) ++cohorts[kCohorts[p.cohort].name];
  }
  os << ",\"registered\":" << json(kinds).dump()
     << ",\"customer_cohorts\":" << json(cohorts).dump();

  // Identity: every person known under more than one stream.
  std::vector<uint32_t> accounts;
  for (uint32_t i = 0; i < g.parties.size(); ++i) {
    const Party& a = g.parties[i];
    if ((a.flags & kUnlinkedAccount) && (a.flags & kRegistered) &&
        (g.parties[a.owner].flags & kRegistered)) {
      accounts.push_back(i);
    }
  }
  WriteArray(os, "identities", accounts, [&g](uint32_t i) {
    const Party& a = g.parties[i];
    return json{{"person", g.StreamId(a.owner)},
                {"streams", {g.StreamId(a.owner), g.StreamId(i)}},
                {"linked_in_log", (a.flags & kLinkedInLog) != 0},
                {"order_ref", g.OrderRef(i)},
                {"quotes_order_ref", (a.flags & kQuotedOrder) != 0},
                {"follows_up", (a.flags & kFollowedUp) != 0},
                {"name_typo", g.HasNameTypo(i)}};
  });

  // Pairs of streams that look alike but are different people: the traps of identity resolution.
  struct NotSame {
    uint32_t a, b;
    const char* why;
  };
  std::vector<NotSame> not_same;
  auto registered = [&g](uint32_t i) { return (g.parties[i].flags & kRegistered) != 0; };
  for (uint32_t i = static_cast<uint32_t>(g.first_customer); i < g.customer_end; ++i) {
    const uint32_t head = g.Household(i);
    if (head != i && registered(i) && registered(head)) not_same.push_back({head, i, "household"});
    if (auto it = g.phone_taken_by.find(i);
        it != g.phone_taken_by.end() && registered(i) && registered(it->second)) {
      not_same.push_back({i, it->second, "moved_phone"});
    }
  }
  for (uint32_t i = 0; i < g.parties.size(); ++i) {
    if ((g.parties[i].flags & kQuotedFriend) && registered(g.Friend(i))) {
      not_same.push_back({g.Friend(i), i, "friend_quotes_order"});
    }
  }
  WriteArray(os, "not_same", not_same, [&g](const NotSame& n) {
    return json{{"streams", {g.StreamId(n.a), g.StreamId(n.b)}}, {"why", n.why}};
  });

  // Persons: the streams the log's links join (an owner and the accounts linked to it), named by
  // the stream the log named first, as the projections name them.
  std::map<uint32_t, std::vector<uint32_t>> persons;  // by the main party
  for (uint32_t i = 0; i < g.parties.size(); ++i) {
    const Party& p = g.parties[i];
    if (p.first_seq == ~uint64_t{0}) continue;  // never in the log
    const bool linked = (p.flags & kLinkedInLog) && p.owner != kNone;
    persons[linked ? p.owner : i].push_back(i);
  }
  auto person_id = [&g](const std::vector<uint32_t>& streams) {
    uint32_t id = streams[0];
    for (uint32_t i : streams) {
      if (g.parties[i].first_seq < g.parties[id].first_seq) id = i;
    }
    return id;
  };

  // The most influential persons: by the audience their own posts reached, shares included,
  // over all their streams.
  struct Influence {
    uint32_t id;
    uint64_t reach = 0, followers = 0;
    uint32_t posts = 0;
  };
  std::vector<Influence> ranked;
  for (const auto& [main, streams] : persons) {
    Influence in{person_id(streams)};
    for (uint32_t i : streams) {
      in.reach += g.parties[i].reach;
      in.posts += g.parties[i].posts;
      in.followers += g.parties[i].followers;
    }
    if (in.reach > 0 && in.posts > 0) ranked.push_back(in);
  }
  std::sort(ranked.begin(), ranked.end(), [&g](const Influence& a, const Influence& b) {
    return a.reach != b.reach ? a.reach > b.reach : g.StreamId(a.id) < g.StreamId(b.id);
  });
  if (ranked.size() > static_cast<size_t>(kTruthInfluential)) ranked.resize(kTruthInfluential);
  WriteArray(os, "influential", ranked, [&g](const Influence& in) {
    return json{{"person", g.StreamId(in.id)},
                {"reach", in.reach},
                {"posts", in.posts},
                {"followers", in.followers}};
  });

  // Segments as of the end (definitions in docs/workload.md).
  json segments = {{"campaign_engaged", json::array()},
                   {"churn_risk", json::array()},
                   {"social_advocates", json::array()},
                   {"dormant_buyers", json::array()},
                   {"open_complaint", json::array()}};
  // Per person: the streams the log's links join (an owner and the accounts linked to it),
  // named by the stream the log named first, as the segments projection names them.
  absl::flat_hash_map<uint32_t, bool> open_complaint;
  for (const auto& [seq, in] : g.open_inbound) {
    if (in.type == TouchpointType::COMPLAINT) open_complaint[in.party] = true;
  }
  for (const auto& [main, streams] : persons) {
    const uint32_t id = person_id(streams);
    std::vector<int64_t> opens, complaints;
    size_t advocate_posts = 0;
    int64_t last_purchase = 0, last_inbound = 0;
    bool open = false;
    for (uint32_t i : streams) {
      const Party& p = g.parties[i];
      for (int64_t t : p.opens) {
        if (t != 0) opens.push_back(t);
      }
      for (const auto& c : p.complaints) complaints.push_back(c.second);
      advocate_posts += p.advocate_posts.size();
      last_purchase = std::max(last_purchase, p.last_purchase);
      last_inbound = std::max(last_inbound, p.last_inbound);
      open |= open_complaint.contains(i);
    }
    // A window `last D` at as_of covers (as_of - D, as_of], as the rules count it.
    auto in_window = [as_of](const std::vector<int64_t>& times, int days) {
      return static_cast<int64_t>(std::count_if(times.begin(), times.end(), [&](int64_t t) {
        return t > as_of - days * kDay && t <= as_of;
      }));
    };
    const std::string person = g.StreamId(id);
    if (in_window(opens, kEngagedWindowDays) >= kEngagedOpens) {
      segments["campaign_engaged"].push_back(person);
    }
    if (in_window(complaints, kChurnWindowDays) >= kChurnComplaints) {
      segments["churn_risk"].push_back(person);
    }
    if (advocate_posts >= static_cast<size_t>(kAdvocatePosts)) {
      segments["social_advocates"].push_back(person);
    }
    if (last_purchase != 0 && last_purchase <= as_of - kDormantDays * kDay &&
        last_inbound <= as_of - kDormantDays * kDay) {
      segments["dormant_buyers"].push_back(person);
    }
    if (open) segments["open_complaint"].push_back(person);
  }
  for (auto& [name, members] : segments.items()) {
    std::vector<std::string> sorted = members.get<std::vector<std::string>>();
    std::sort(sorted.begin(), sorted.end());
    members = sorted;
  }
  os << ",\"segments\":" << segments.dump();

  // Inbound messages without an answer, in sequence order.
  std::vector<const Inbound*> open;
  for (const auto& [seq, in] : g.open_inbound) open.push_back(&in);
  std::sort(open.begin(), open.end(),
            [](const Inbound* a, const Inbound* b) { return a->seq < b->seq; });
  WriteArray(os, "unanswered", open, [&](const Inbound* in) {
    return json{{"event", hex(in->seq)},
                {"party", g.StreamId(in->party)},
                {"channel", schema::EnumName(in->channel)},
                {"type", schema::EnumName(in->type)},
                {"occurred_at", schema::FormatMicros(in->occurred)},
                {"waiting_s", (as_of - in->occurred) / kSecond}};
  });
  WriteArray(os, "responses", g.responses, [&](const Response& r) {
    return json{{"event", hex(r.inbound)},
                {"reply", hex(r.reply)},
                {"wall_s", r.wall_us / kSecond},
                {"service_s", r.service_us / kSecond}};
  });
  WriteArray(os, "channel_switches", g.switches, [&](const Switch& s) {
    return json{{"party", g.StreamId(s.party)},
                {"to_party", g.StreamId(s.to_party)},
                {"from_event", hex(s.from_event)},
                {"to_event", hex(s.to_event)},
                {"from_channel", schema::EnumName(s.from_channel)},
                {"to_channel", schema::EnumName(s.to_channel)},
                {"public", s.is_public}};
  });
  WriteArray(os, "corrections", g.corrections, [&](const Correction& c) {
    return json{
        {"event", hex(c.event)}, {"corrects", hex(c.corrects)}, {"retraction", c.retraction}};
  });

  json story = json::object();
  if (g.story_party != kNone) {
    story["party"] = Generator::kStoryParty;
    if (g.story_email != kNoEvent) story["email"] = hex(g.story_email);
    if (g.story_tweet != kNoEvent) story["tweet"] = hex(g.story_tweet);
  }
  os << ",\"story\":" << story.dump() << "}\n";
}

}  // namespace ihs::workload
