#ifndef CXXH3DIRECT_H
#define CXXH3DIRECT_H
#include <stddef.h>
#include <stdint.h>

/// XXH3-128 of `length` bytes through libxxhash's run-time dispatch (AVX2/AVX-512), called from C.
/// Writes the high and low 64 bits; the baseline against which Casket's Digest(hashing:) is measured.
void cxxh3_direct_128(const void *bytes, size_t length, uint64_t *high, uint64_t *low);

#endif
