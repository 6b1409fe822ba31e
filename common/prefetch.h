// Hints to the CPU to start fetching memory that will be read soon.
#ifndef IHS_COMMON_PREFETCH_H_
#define IHS_COMMON_PREFETCH_H_

#include <cstddef>
#include <cstdint>

namespace ihs {

inline constexpr size_t kCacheLine = 64;

// Starts to fetch every cache line that [at, at + size) touches. Changes nothing.
inline void PrefetchBytes(const void* at, size_t size) {
  const uintptr_t end = reinterpret_cast<uintptr_t>(at) + size;
  for (uintptr_t p = reinterpret_cast<uintptr_t>(at) & ~(kCacheLine - 1); p < end;
       p += kCacheLine) {
    __builtin_prefetch(reinterpret_cast<const void*>(p));
  }
}

}  // namespace ihs

#endif  // IHS_COMMON_PREFETCH_H_
