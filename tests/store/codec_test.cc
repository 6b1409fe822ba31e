// Tests of store/internal/codec.h: what the append path checks in an event's text.
#include "store/internal/codec.h"

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

}  // namespace
}  // namespace ihs::store::internal
