/*
 * heap: see heap.h. Whether tcmalloc is linked in is decided by the build
 * of the hookd binary alone (the tests and fuzz targets link the same core
 * without it), so it is looked up at run time rather than compiled in.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>

#include "heap.h"

static void (*tc_release)(void);
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

/* gperftools' C entry point (gperftools/malloc_extension_c.h). */
static void find_tcmalloc(void)
{
	*(void **)&tc_release = dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory");
}

void heap_release(void)
{
	pthread_once(&tc_once, find_tcmalloc);
	if (tc_release)
		tc_release();
	else
		malloc_trim(0);
}
