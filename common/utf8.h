// UTF-8 validity, as RFC 3629 defines it: no overlong forms, no surrogates (U+D800..U+DFFF),
// nothing above U+10FFFF. Cap'n Proto Text is UTF-8 by contract, and JSON output must be; the store
// checks text on input with this, so that what it keeps can be printed as it was sent.
#ifndef IHS_COMMON_UTF8_H_
#define IHS_COMMON_UTF8_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace ihs {

// The offset of the first byte that does not start a valid UTF-8 sequence, or npos.
inline size_t FindInvalidUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
    if (b >= 0xc2 && b <= 0xdf) {
      len = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
      len = 3;
      if (b == 0xe0) lo = 0xa0;  // overlong
      if (b == 0xed) hi = 0x9f;  // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      len = 4;
      if (b == 0xf0) lo = 0x90;  // overlong
      if (b == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
      return i;  // a continuation byte, an overlong lead (c0, c1) or f5..ff
    }
    if (n - i < len || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return i;
    }
    i += len;
  }
  return absl::string_view::npos;
}

}  // namespace ihs

#endif  // IHS_COMMON_UTF8_H_
