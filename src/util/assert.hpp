// DSV4_DASSERT checks internal invariants in debug builds only; release builds compile it out.
// It is for bugs in dsv4, never for validating input (input errors return a Status).
#pragma once

#include <cassert>

#ifdef NDEBUG
#define DSV4_DASSERT(cond) ((void)0)
#else
#define DSV4_DASSERT(cond) assert(cond)
#endif
