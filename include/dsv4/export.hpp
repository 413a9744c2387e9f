// DSV4_API marks the symbols of the public API. The library is built with hidden visibility,
// so everything else (kernels, model internals) stays out of the shared object's symbol table.
#pragma once

#if defined(DSV4_STATIC_LIB)
#define DSV4_API
#elif defined(_WIN32) || defined(__CYGWIN__)
#if defined(DSV4_BUILDING)
#define DSV4_API __declspec(dllexport)
#else
#define DSV4_API __declspec(dllimport)
#endif
#else
#define DSV4_API [[gnu::visibility("default")]]
#endif
