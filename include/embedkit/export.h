/* Symbol visibility for libembedkit: the library is built with hidden visibility, and only
 * names marked EMBEDKIT_API are exported. Usable from C and C++. */
#ifndef EMBEDKIT_EXPORT_H
#define EMBEDKIT_EXPORT_H

#if defined(_WIN32)
#if defined(EMBEDKIT_BUILDING)
#define EMBEDKIT_API __declspec(dllexport)
#else
#define EMBEDKIT_API __declspec(dllimport)
#endif
#else
#define EMBEDKIT_API __attribute__((visibility("default")))
#endif

#endif /* EMBEDKIT_EXPORT_H */
