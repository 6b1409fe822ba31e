// One line of JSON for `ihs ... --json`. nlohmann's plain dump() throws on text that is not UTF-8
// (only stores written before ihs checked text on input can hold such bytes); JsonLine prints them
// as U+FFFD instead, so that every --json line is valid JSON whatever the store holds.
#ifndef IHS_TOOLS_IHS_JSON_OUT_H_
#define IHS_TOOLS_IHS_JSON_OUT_H_

#include <string>

#include "nlohmann/json.hpp"

namespace ihs::tools {

inline std::string JsonLine(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_JSON_OUT_H_
