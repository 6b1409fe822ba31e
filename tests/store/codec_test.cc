// Tests of store/internal/codec.h: what the append path checks in an event's text, and the
// canonical bytes it makes.
#include "store/internal/codec.h"

#include <capnp/any.h>
#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "schema/event.capnp.h"

namespace ihs::store::internal {
namespace {

// One way down to a Text field: the fields on the way, and whether the last is a list of text.
struct TextField {
  std::vector<capnp::StructSchema::Field> path;
  std::string name;  // "content.to.address"
};

void FindTextFields(capnp::StructSchema s, std::vector<capnp::StructSchema::Field>& path,
                    const std::string& prefix, std::vector<TextField>& out) {
  for (auto f : s.getFields()) {
    const std::string name = prefix + std::string(f.getProto().getName().cStr());
    capnp::Type t = f.getType();
    path.push_back(f);
    if (t.isList()) t = t.asList().getElementType();
    if (t.isText()) {
      out.push_back({path, name});
    } else if (t.isStruct() && path.size() < 6) {
      FindTextFields(t.asStruct(), path, name + ".", out);
    }
    path.pop_back();
  }
}

// Every Text field of an event, found by walking the schema, is checked: an event with only that
// field set to bytes that are not UTF-8 is refused, naming it. A field added to the schema and not
// to EventTextProblem fails here.
TEST(EventTextProblem, EveryTextFieldOfTheSchemaIsChecked) {
  std::vector<TextField> fields;
  std::vector<capnp::StructSchema::Field> path;
  FindTextFields(capnp::Schema::from<schema::Event>(), path, "", fields);
  ASSERT_GT(fields.size(), 15u);
  for (const TextField& f : fields) {
    capnp::MallocMessageBuilder mb;
    capnp::DynamicStruct::Builder at = mb.initRoot<schema::Event>();
    for (size_t i = 0; i + 1 < f.path.size(); ++i) {
      const capnp::StructSchema::Field step = f.path[i];
      if (step.getType().isList()) {
        at = at.init(step, 2).as<capnp::DynamicList>()[1].as<capnp::DynamicStruct>();
      } else {
        at = at.init(step).as<capnp::DynamicStruct>();
      }
    }
    const capnp::StructSchema::Field last = f.path.back();
    const char bad[] = "ok\xff";
    if (last.getType().isList()) {
      auto list = at.init(last, 2).as<capnp::DynamicList>();
      list.set(0, capnp::Text::Reader("fine"));
      list.set(1, capnp::Text::Reader(bad));
    } else {
      at.set(last, capnp::Text::Reader(bad));
    }
    const std::string problem = EventTextProblem(mb.getRoot<schema::Event>().asReader());
    EXPECT_NE(problem.find("not UTF-8"), std::string::npos) << f.name << ": " << problem;
    // The problem names the field: its last part at least.
    EXPECT_NE(problem.find(last.getProto().getName().cStr()), std::string::npos)
        << f.name << ": " << problem;
  }
}

TEST(EventTextProblem, ValidTextPassesAndNulIsRefused) {
  capnp::MallocMessageBuilder mb;
  auto e = mb.initRoot<schema::Event>();
  e.setStreamId("kunde-zo\xc3\xab");
  e.initContent().setText("caf\xc3\xa9 \xf0\x9f\x98\x80");
  e.initTouchpoint().initTopics(1).set(0, "r\xc3\xa9seau");
  EXPECT_EQ(EventTextProblem(e.asReader()), "");
  const char with_nul[] = "a\0b";
  e.getContent().setText(capnp::Text::Reader(with_nul, 3));
  EXPECT_EQ(EventTextProblem(e.asReader()), "content.text: a NUL byte at offset 1");
}

// The bytes every digest, record and Merkle leaf is made of: CanonicalBytes and EncodeRecord
// give exactly what capnp::canonicalize gives, for messages in one segment and in many (far
// pointers), with trailing zero fields (which canonical form cuts), for a struct inside a
// message, in any order of sizes (the thread's scratch buffer is reused, and an event over its
// 512 KiB gets a buffer of its own).
std::string Reference(capnp::AnyStruct::Reader r) {
  kj::Array<capnp::word> words = r.canonicalize();
  return std::string(reinterpret_cast<const char*>(words.asBytes().begin()),
                     words.asBytes().size());
}

void FillEvent(schema::Event::Builder e, size_t text_bytes, int variant) {
  e.setId(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>("0123456789abcdef"), 16));
  e.setStreamId("customer-ada");
  e.setOccurredAt(1700000000000000 + variant);
  auto t = e.initTouchpoint();
  t.setChannel(schema::Channel::EMAIL);
  if (variant % 2 == 0) t.setSentiment(0);  // a zero at the end of the data section
  auto topics = t.initTopics(static_cast<unsigned>(variant % 4));
  for (unsigned i = 0; i < topics.size(); ++i) topics.set(i, "billing");
  if (variant % 3 != 0) {
    auto c = e.initContent();
    c.setSubject("Router");
    c.setText(std::string(text_bytes, static_cast<char>('a' + variant % 26)));
    c.initTo(static_cast<unsigned>(variant % 3));
  }
}

TEST(CanonicalBytes, EqualCapnpCanonicalizeForEveryShapeAndSize) {
  int checked = 0;
  for (size_t text : {size_t{0}, size_t{7}, size_t{300}, size_t{70000}, size_t{600000}, size_t{20},
                      size_t{900000}, size_t{1}}) {
    for (int variant = 0; variant < 12; ++variant) {
      for (bool many_segments : {false, true}) {
        // One word per segment forces every pointer far; the default makes one segment.
        capnp::MallocMessageBuilder mb(many_segments ? 1 : capnp::SUGGESTED_FIRST_SEGMENT_WORDS,
                                       many_segments ? capnp::AllocationStrategy::FIXED_SIZE
                                                     : capnp::SUGGESTED_ALLOCATION_STRATEGY);
        auto e = mb.initRoot<schema::Event>();
        FillEvent(e, text, variant);
        if (many_segments) {
          ASSERT_GT(mb.getSegmentsForOutput().size(), 2u);
        }
        const std::string want = Reference(capnp::toAny(e.asReader()));
        ASSERT_EQ(CanonicalBytes(e.asReader()), want) << text << " " << variant;
        ASSERT_EQ(EncodeRecord(e.asReader()), std::string(1, kRecordTagCapnpV1) + want);
        if (e.hasContent()) {
          ASSERT_EQ(CanonicalBytes(e.getContent().asReader()),
                    Reference(capnp::toAny(e.getContent().asReader())));
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 8 * 12 * 2);
}

}  // namespace
}  // namespace ihs::store::internal
