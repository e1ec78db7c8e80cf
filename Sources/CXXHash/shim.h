#ifndef CXXHASH_SHIM_H
#define CXXHASH_SHIM_H
#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
/* Swift cannot see the header's macro renames; the _dispatch entry points are called by name. */
#define XXH_DISPATCH_DISABLE_REPLACE 1
#include <xxh_x86dispatch.h>
#endif
#endif
