// Tests of projections/internal/mem_state.h: the in-memory state of a rebuild answers like a map
// through puts, deletes, growth of its index and arena, and a write-out.
#include "projections/internal/mem_state.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"

namespace ihs::projections {
namespace {

// What the index holds, as a map; a deletion reads as "<deleted>".
std::map<std::string, std::string> Contents(MemState& m) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : m.index()) {
    out.emplace(std::string(key), value.deleted() ? "<deleted>" : std::string(value.view()));
  }
  return out;
}

TEST(MemStateTest, RandomPutsAndDeletesAnswerLikeAMap) {
  // Few keys and many operations: keys come and go, values are stored again and again in the
  // arena, and the index grows several times.
  std::mt19937_64 rng(7);
  MemState m;
  std::map<std::string, std::string> model;
  for (int op = 0; op < 200000; ++op) {
    const std::string key = absl::StrCat("k", rng() % 3000);
    switch (rng() % 3) {
      case 0:
      case 1: {
        const std::string value = absl::StrCat("v", op, std::string(rng() % 40, 'x'));
        m.Put(key, value);
        model[key] = value;
        break;
      }
      case 2:
        m.Delete(key);
        model.erase(key);
        break;
    }
    if (op % 997 == 0) {
      const std::string probe = absl::StrCat("k", rng() % 3000);
      const MemState::Value* v = m.Find(probe);
      auto it = model.find(probe);
      ASSERT_EQ(v != nullptr, it != model.end()) << probe << " at op " << op;
      if (v != nullptr) {
        EXPECT_EQ(v->view(), it->second);
      }
    }
  }
  EXPECT_EQ(m.index().size(), model.size());
  EXPECT_EQ(Contents(m), model);
  for (const auto& [key, value] : model) {
    const MemState::Value* v = m.Find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_EQ(v->view(), value);
  }
}

TEST(MemStateTest, AfterAWriteOutADeleteIsKeptForTheFilesAndAnEmptyValueIsNotOne) {
  MemState m;
  m.Put("a", "1");
  m.Delete("a");  // before a write-out: gone
  EXPECT_EQ(m.Find("a"), nullptr);
  EXPECT_TRUE(m.index().empty());
  m.Put("b", "");
  ASSERT_NE(m.Find("b"), nullptr);
  EXPECT_FALSE(m.Find("b")->deleted());
  m.Spill();
  EXPECT_TRUE(m.spilled());
  EXPECT_EQ(m.Find("b"), nullptr);
  m.Delete("c");  // after it: a deletion the next files carry
  ASSERT_NE(m.Find("c"), nullptr);
  EXPECT_TRUE(m.Find("c")->deleted());
  EXPECT_EQ(Contents(m), (std::map<std::string, std::string>{{"c", "<deleted>"}}));
}

TEST(MemStateTest, KeysPutInOrderAreARunOfTheirOwnThatFindDoesNotSee) {
  MemState m;
  const MemState::Value one = m.Copy("1");
  const MemState::Value empty = m.Copy("");
  m.PutInOrder("b/1", one);
  m.PutInOrder("b/2", empty);
  m.Put("a", "indexed");
  ASSERT_EQ(m.ordered().size(), 2u);
  EXPECT_EQ(m.ordered()[0]->first, "b/1");
  EXPECT_EQ(m.ordered()[0]->second.view(), "1");
  EXPECT_EQ(m.ordered()[1]->first, "b/2");
  EXPECT_FALSE(m.ordered()[1]->second.deleted()) << "an empty value is not a deletion";
  EXPECT_FALSE(m.out_of_order());
  EXPECT_EQ(m.Find("b/1"), nullptr);
  EXPECT_EQ(Contents(m), (std::map<std::string, std::string>{{"a", "indexed"}}));
  // Many more, over several arena blocks: every key and value stays where it was put.
  for (int i = 0; i < 200000; ++i) {
    m.PutInOrder(absl::StrCat("c/", 100000 + i), m.Copy(absl::StrCat("value ", i)));
  }
  ASSERT_EQ(m.ordered().size(), 200002u);
  EXPECT_EQ(m.ordered()[2]->first, "c/100000");
  EXPECT_EQ(m.ordered().back()->first, "c/299999");
  EXPECT_EQ(m.ordered().back()->second.view(), "value 199999");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m.ordered()[12345]) % alignof(MemState::Entry), 0u);
  EXPECT_FALSE(m.out_of_order());
  // A key that is not greater than the one before is marked, for the write-out to refuse.
  m.PutInOrder("c/299999", one);
  EXPECT_TRUE(m.out_of_order());
  m.Spill();
  EXPECT_TRUE(m.ordered().empty());
  EXPECT_FALSE(m.out_of_order());
}

}  // namespace
}  // namespace ihs::projections
