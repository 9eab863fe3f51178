/*
 * fuzz: what every libFuzzer target shares: the input as a NUL-terminated
 * string (the parsers under test take C strings from outside).
 */
#ifndef HK_FUZZ_H
#define HK_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A malloc'd NUL-terminated copy of the input; NULL when it holds a NUL,
 * which no C-string input from a request or flag can. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	if (memchr(data, 0, size))
		return NULL;
	char *s = malloc(size + 1);
	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

#endif
