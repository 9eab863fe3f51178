/*
 * uuid: UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then randomness,
 * so ids sort by creation time and index well.
 */
#ifndef HK_UUID_H
#define HK_UUID_H

#define UUID_STR_LEN 37

/* A new lowercase canonical UUIDv7. Monotonic within the process: within
 * one millisecond the 12-bit rand_a field counts up (RFC 9562 method 1). */
void uuid_v7(char out[UUID_STR_LEN]);

/* Accept a canonical UUID in any case (36 characters, hyphens at 8, 13, 18,
 * 23); write it lowercase to out. 0, or -1 when in is not one. */
int uuid_parse(const char *in, char out[UUID_STR_LEN]);

#endif
