// The event the store's benchmarks append: a complaint by email with topics, a thread and a
// sentiment, and, when `content`, personal content of a typical size (a short email).
#ifndef IHS_BENCH_BENCH_EVENT_H_
#define IHS_BENCH_BENCH_EVENT_H_

#include <capnp/blob.h>

#include <cstdint>
#include <string>

#include "common/big_endian.h"
#include "schema/event.capnp.h"

namespace ihs::bench {

// The id is 0xbe bytes then `id` big-endian.
inline void FillBenchEvent(schema::Event::Builder ev, uint64_t id, int64_t occurred_at,
                           bool content) {
  std::string bytes(8, '\xbe');
  PutBigEndian64(&bytes, id);
  ev.setId(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), 16));
  ev.setOccurredAt(occurred_at);
  ev.setSourceSystem("crm");
  auto tp = ev.initTouchpoint();
  tp.setChannel(schema::Channel::EMAIL);
  tp.setDirection(schema::Direction::INBOUND);
  tp.setType(schema::TouchpointType::COMPLAINT);
  tp.setSentiment(-0.4f);
  auto topics = tp.initTopics(2);
  topics.set(0, "router");
  topics.set(1, "delivery");
  tp.setThreadId("thread-42");
  if (!content) return;
  auto c = ev.initContent();
  c.setSubject("Router drops the connection every hour");
  c.setText(
      "Hello, the router I bought last week loses the connection every hour. I have restarted "
      "it several times. Please help or send a replacement.");
  auto from = c.initFrom();
  from.setKind(schema::HandleKind::EMAIL);
  from.setAddress("ada@example.org");
}

}  // namespace ihs::bench

#endif  // IHS_BENCH_BENCH_EVENT_H_
