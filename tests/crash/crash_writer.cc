// The child of crash_test: appends to a store from several threads, single events and batches,
// until it is killed, and reports every acknowledged event on stdout as
//   ACK <event id hex> <position>
// written with one write(2) per append after the append returned, so that a line on the pipe
// means the store acknowledged it.
//   crash_writer DIR RUN THREADS
// Event ids: run (4 bytes) | thread (2) | batch (4) | index in batch (2) | batch size (2) | 0xc4
// 0x5e so the test can tell, for every batch it sees, whether the whole batch is there.
#include <capnp/message.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "store/event_store.h"

using ihs::store::EventStore;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: crash_writer DIR RUN THREADS\n");
    return 1;
  }
  uint32_t run = static_cast<uint32_t>(std::atoi(argv[2]));
  int threads = std::atoi(argv[3]);
  ihs::store::Options options;
  options.path = argv[1];
  auto opened = EventStore::Open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "crash_writer: %s\n", opened.status().ToString().c_str());
    return 2;
  }
  EventStore& store = **opened;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&store, run, t] {
      std::mt19937 rng(run * 977 + t);
      for (uint32_t batch = 0;; ++batch) {
        uint16_t size = rng() % 3 == 0 ? 1 + rng() % 20 : 1;
        std::string stream = absl::StrCat("party-", t, "-", rng() % 4);
        std::vector<capnp::MallocMessageBuilder> messages(size);
        ihs::store::StreamAppend req{stream, ihs::store::ExpectedVersion::Any(), {}};
        std::vector<std::string> ids;
        for (uint16_t i = 0; i < size; ++i) {
          std::string id;
          ihs::PutBigEndian32(&id, run);
          id += std::string{static_cast<char>(t >> 8), static_cast<char>(t)};
          ihs::PutBigEndian32(&id, batch);
          id += std::string{static_cast<char>(i >> 8),
                            static_cast<char>(i),
                            static_cast<char>(size >> 8),
                            static_cast<char>(size),
                            '\xc4',
                            '\x5e'};
          auto ev = messages[i].initRoot<ihs::schema::Event>();
          ev.setId(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(id.data()), 16));
          ev.setOccurredAt(1700000000000000 + batch);
          auto tp = ev.initTouchpoint();
          tp.setChannel(ihs::schema::Channel::CHAT);
          tp.setDirection(ihs::schema::Direction::INBOUND);
          tp.setType(ihs::schema::TouchpointType::MESSAGE);
          if (rng() % 2) ev.initContent().setText(absl::StrCat("message ", batch, "/", i));
          req.events.push_back(ev.asReader());
          ids.push_back(id);
        }
        auto r = store.Append(req);
        if (!r.ok()) {
          std::fprintf(stderr, "crash_writer: %s\n", r.status().ToString().c_str());
          std::_Exit(3);
        }
        std::string lines;
        for (size_t i = 0; i < ids.size(); ++i) {
          absl::StrAppend(&lines, "ACK ", absl::BytesToHexString(ids[i]), " ", r->positions[i],
                          "\n");
        }
        // One write per append: atomic on a pipe for up to PIPE_BUF bytes; larger ones are
        // still whole lines because the test only counts complete lines.
        if (::write(STDOUT_FILENO, lines.data(), lines.size()) < 0) std::_Exit(4);
        // A short random pause keeps the log small enough to verify after every kill, while the
        // other threads' appends still overlap with this one.
        ::usleep(rng() % 1500);
      }
    });
  }
  for (auto& w : workers) w.join();
  return 0;
}
