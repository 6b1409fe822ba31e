// One line of JSON for `ihs ... --json`. nlohmann's plain dump() throws on text that is not UTF-8
// (only stores written before ihs checked text on input can hold such bytes); JsonLine prints them
// as U+FFFD instead, so that every --json line is valid JSON whatever the store holds.
#ifndef IHS_TOOLS_IHS_JSON_OUT_H_
#define IHS_TOOLS_IHS_JSON_OUT_H_

#include <charconv>
#include <cstdlib>
#include <string>

#include "nlohmann/json.hpp"

namespace ihs::tools {

inline std::string JsonLine(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A stored 32-bit float as JSON prints it: the double nearest the float's shortest decimal form,
// so that -0.6f prints as -0.6 (as `ihs read --json` prints it), not -0.6000000238418579.
inline double JsonFloat(float f) {
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, f);
  return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
}

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_JSON_OUT_H_
