/*
 * heap: hand the allocator's free memory back to the operating system.
 *
 * Neither allocator hookd runs on does this promptly by itself: tcmalloc
 * (the release build, see meson.build) keeps freed pages for reuse, and
 * glibc keeps what it freed below the top of its heaps. After a burst of
 * thousands of attempts in flight that is well over 100 MiB of RSS kept
 * for good. The dispatcher calls this when such a burst subsides.
 */
#ifndef HK_HEAP_H
#define HK_HEAP_H

/* Return free heap pages to the OS: tcmalloc's when hookd is linked with
 * it, glibc's otherwise. Takes a few milliseconds for a large heap; call it
 * rarely. Thread-safe. */
void heap_release(void);

#endif
