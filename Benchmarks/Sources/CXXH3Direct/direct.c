#include "CXXH3Direct.h"
#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xxh_x86dispatch.h>
#endif

void cxxh3_direct_128(const void *bytes, size_t length, uint64_t *high, uint64_t *low) {
#if defined(__x86_64__) || defined(__i386__)
    XXH128_hash_t h = XXH3_128bits_dispatch(bytes, length);
#else
    XXH128_hash_t h = XXH3_128bits(bytes, length);
#endif
    *high = h.high64;
    *low = h.low64;
}
