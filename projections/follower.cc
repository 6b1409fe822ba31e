#include "projections/follower.h"

#include <sodium.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ihs::projections {

Follower::Follower(store::EventStore& store, Runner& runner, std::string projection,
                   std::string what, std::function<absl::Status()> pass, LogSink* log)
    : store_(store),
      runner_(runner),
      projection_(std::move(projection)),
      what_(std::move(what)),
      pass_(std::move(pass)),
      log_(log) {}

Follower::~Follower() { Stop(); }

void Follower::Start() {
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Follower::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Follower::Loop() {
  uint64_t seen = 0;
  bool failing = false;
  while (!stop_) {
    const uint64_t head = store_.WaitForCommit(seen, absl::Now() + absl::Milliseconds(200));
    if (stop_) break;
    if (head == seen) continue;
    if (!runner_.WaitFor(projection_, head, absl::Now() + absl::Milliseconds(500))) continue;
    absl::Status s = pass_();
    if (!s.ok()) {
      if (!failing) log_->Log(absl::StrCat(what_, ": ", s.ToString()));
      failing = true;
      // Tried again in a second (the store may be failing; the log may not have changed).
      for (int i = 0; i < 10 && !stop_; ++i) absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    failing = false;
    seen = head;
  }
}

std::string DerivedEventId(absl::string_view label,
                           std::initializer_list<absl::string_view> parts) {
  std::string in(label);
  in.push_back('\0');
  for (absl::string_view p : parts) {
    in.append(p.data(), p.size());
    in.push_back('\0');
  }
  std::string out(16, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     reinterpret_cast<const unsigned char*>(in.data()), in.size(), nullptr, 0);
  return out;
}

absl::Status AppendOnce(store::EventStore& store, const store::StreamAppend& append,
                        AppendCount& count) {
  if (append.events.empty()) return absl::OkStatus();
  absl::StatusOr<store::AppendResult> r = store.Append(append);
  if (r.ok()) {
    (r->duplicate ? count.present : count.appended) += append.events.size();
    return absl::OkStatus();
  }
  if (!absl::IsAlreadyExists(r.status())) return r.status();
  for (const schema::Event::Reader& e : append.events) {
    store::StreamAppend one;
    one.stream = append.stream;
    one.events = {e};
    absl::StatusOr<store::AppendResult> single = store.Append(one);
    if (single.ok() && !single->duplicate) {
      ++count.appended;
    } else if (single.ok() || absl::IsAlreadyExists(single.status())) {
      ++count.present;
    } else {
      return single.status();
    }
  }
  return absl::OkStatus();
}

}  // namespace ihs::projections
