// What correct JSON costs: ihs's event JSON (schema/json.h: nlohmann::json parses strictly, the
// codec maps the parsed value onto the schema; output printed by nlohmann with invalid UTF-8
// replaced) against the ceiling of the same run, Cap'n Proto 0.9.2's own text parser and printer
// through the same codec and handlers, the path `ihs append` and `ihs read --json` took before
// 0.5.1 (fast, and wrong for `\u` escapes with the hex letters a-f).
//
//   build/bin/json_benchmark [--benchmark_repetitions=3 --benchmark_report_aggregates_only=true]
//
// The raw codec has no handlers for ids (hex) and times (RFC 3339), so it reads the same event
// re-encoded in its own form (ids as arrays of numbers, times as numbers), and UTF-8 as it is.
// Two events: one in plain ASCII, one whose text is mostly non-ASCII written as `\u` escapes, as
// Python's json.dumps writes it.
#include <benchmark/benchmark.h>
#include <capnp/compat/json.h>
#include <capnp/message.h>

#include <string>

#include "nlohmann/json.hpp"
#include "schema/json.h"

namespace ihs::schema {
namespace {

const char kAscii[] =
    R"({"id":"5a3e0000000000000000000000000010","streamId":"customer-ada",)"
    R"("occurredAt":"2026-10-08T09:15:00Z","sourceSystem":"crm","touchpoint":{"channel":"email",)"
    R"("direction":"inbound","type":"complaint","sentiment":-0.6,"topics":["router","outage"],)"
    R"("threadId":"ada-router"},"content":{"subject":"Router drops the connection",)"
    R"("text":"Since Monday the router drops the connection every evening around eight. I )"
    R"(restarted it twice and nothing changed. Please call me back, I work from home and )"
    R"(this costs me clients.","from":{"kind":"email","address":"ada@example.org"}}})";

const char kEscaped[] =
    R"({"id":"5a3e0000000000000000000000000011","streamId":"kunde-zo\u00eb",)"
    R"("occurredAt":"2026-10-08T09:15:00Z","sourceSystem":"crm","touchpoint":{"channel":"email",)"
    R"("direction":"inbound","type":"complaint","sentiment":-0.6,"topics":["r\u00e9seau"],)"
    R"("threadId":"zoe-net"},"content":{"subject":"Le r\u00e9seau tombe en panne \u00e0 )"
    R"(20 h","text":"Depuis lundi le r\u00e9seau tombe chaque soir vers vingt heures. )"
    R"(J\u2019ai red\u00e9marr\u00e9 deux fois, rien n\u2019a chang\u00e9. \u00c0 )"
    R"(rappeler s\u2019il vous pla\u00eet \ud83d\ude20 \u00e9\u00e8\u00ea\u00eb )"
    R"(\u00fc\u00f6\u00e4\u00df","from":{"kind":"email","address":"zoe@example.org"}}})";

const char* Input(int which) { return which == 0 ? kAscii : kEscaped; }

void BM_DecodeEventJson(benchmark::State& state) {
  EventJson json;
  const std::string in = Input(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    capnp::MallocMessageBuilder mb;
    auto ev = mb.initRoot<Event>();
    if (!json.Decode(in, ev).ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(ev);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * in.size());
}

// The ceiling: the codec with the same handlers, parsing the text itself (Cap'n Proto 0.9.2).
struct RawCodec {
  capnp::JsonCodec codec;
  RawCodec() {
    codec.setRejectUnknownFields(true);
    codec.handleByAnnotation<Event>();
  }
};

void BM_DecodeCapnpText(benchmark::State& state) {
  RawCodec raw;
  EventJson json;  // to take the ids' and times' text form out of the comparison: same input
  const std::string in = Input(static_cast<int>(state.range(0)));
  // The raw codec has no handlers for hex ids and RFC 3339 times: give it an event it can read.
  capnp::MallocMessageBuilder mb0;
  if (!json.Decode(in, mb0.initRoot<Event>()).ok()) state.SkipWithError("decode failed");
  const kj::String plain = raw.codec.encode(mb0.getRoot<Event>().asReader());
  for (auto _ : state) {
    capnp::MallocMessageBuilder mb;
    auto ev = mb.initRoot<Event>();
    raw.codec.decode(kj::ArrayPtr<const char>(plain.begin(), plain.size()), ev);
    benchmark::DoNotOptimize(ev);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * plain.size());
}

void BM_EncodeEventJson(benchmark::State& state) {
  EventJson json;
  capnp::MallocMessageBuilder mb;
  if (!json.Decode(Input(static_cast<int>(state.range(0))), mb.initRoot<Event>()).ok()) {
    state.SkipWithError("decode failed");
  }
  const auto ev = mb.getRoot<Event>().asReader();
  for (auto _ : state) benchmark::DoNotOptimize(json.Encode(ev));
  state.SetItemsProcessed(state.iterations());
}

void BM_EncodeCapnpText(benchmark::State& state) {
  RawCodec raw;
  EventJson json;
  capnp::MallocMessageBuilder mb;
  if (!json.Decode(Input(static_cast<int>(state.range(0))), mb.initRoot<Event>()).ok()) {
    state.SkipWithError("decode failed");
  }
  const auto ev = mb.getRoot<Event>().asReader();
  for (auto _ : state) benchmark::DoNotOptimize(raw.codec.encode(ev));
  state.SetItemsProcessed(state.iterations());
}

// The parser alone, nlohmann::json's DOM: what the strict parse costs before the schema is met.
void BM_ParseNlohmann(benchmark::State& state) {
  const std::string in = Input(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(nlohmann::json::parse(in));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * in.size());
}

BENCHMARK(BM_ParseNlohmann)->Arg(0)->Arg(1);
BENCHMARK(BM_DecodeEventJson)->Arg(0)->Arg(1);
BENCHMARK(BM_DecodeCapnpText)->Arg(0)->Arg(1);
BENCHMARK(BM_EncodeEventJson)->Arg(0)->Arg(1);
BENCHMARK(BM_EncodeCapnpText)->Arg(0)->Arg(1);

}  // namespace
}  // namespace ihs::schema

BENCHMARK_MAIN();
