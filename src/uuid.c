/*
 * uuid: UUIDv7 generation and parsing. See uuid.h.
 *
 * Layout (RFC 9562 section 5.7): 48 bits unix_ts_ms | ver 7 | 12 bits rand_a |
 * var 10 | 62 bits rand_b. rand_a is the counter of "method 1" (section 6.2):
 * it starts at a random value below 0x800 in each new millisecond, leaving at
 * least 2048 ids of room, and counts up for each id within that millisecond.
 * Should it still run out, or the wall clock step back, the timestamp is held
 * one tick ahead instead, so ids never go backwards in a process. One mutex
 * guards (last_ms, counter); the randomness is drawn outside it.
 */
#include "uuid.h"

#include <ctype.h>
#include <stdbool.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "timeutil.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms;
static unsigned counter; /* 12 bits of rand_a within last_ms */

void uuid_v7(char out[UUID_STR_LEN])
{
	unsigned char b[16];
	/* Should the CSPRNG ever fail, the ids stay unique within the process
	 * (time and counter) rather than use uninitialized bytes. */
	if (RAND_bytes(b, sizeof(b)) != 1)
		memset(b, 0, sizeof(b));
	int64_t ms = tu_now_ms();
	pthread_mutex_lock(&lock);
	if (ms <= last_ms) {
		/* Same (or earlier) millisecond: count up; on overflow borrow the next ms. */
		ms = last_ms;
		if (++counter > 0xFFF) {
			ms = ++last_ms;
			counter = b[6] & 0x3F;
		}
	} else {
		last_ms = ms;
		counter = ((unsigned)(b[6] & 0x07) << 8) | b[7]; /* random start, room to count */
	}
	unsigned c = counter;
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (c >> 8));
	b[7] = (unsigned char)(c & 0xFF);
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3F));
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[n++] = '-';
		out[n++] = hex[b[i] >> 4];
		out[n++] = hex[b[i] & 15];
	}
	out[n] = '\0';
}

int uuid_parse(const char *in, char out[UUID_STR_LEN])
{
	if (!in)
		return -1;
	for (int i = 0; i < 36; i++) {
		char c = in[i];
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? c != '-' : !isxdigit((unsigned char)c))
			return -1;
	}
	if (in[36] != '\0')
		return -1;
	for (int i = 0; i < 36; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[36] = '\0';
	return 0;
}
