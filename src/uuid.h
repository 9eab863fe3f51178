/*
 * uuid: UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then randomness,
 * so ids sort by creation time and index well.
 */
#ifndef HK_UUID_H
#define HK_UUID_H

#define UUID_STR_LEN 37

/* Writes a new UUIDv7, lowercase canonical 8-4-4-4-12 and NUL, into out.
 * Thread-safe, never fails. Strictly increasing (as strings too) within the
 * process, even within one millisecond: the 12-bit rand_a field counts up
 * from a random start (RFC 9562 section 6.2, method 1). */
void uuid_v7(char out[UUID_STR_LEN]);

/* Accept a canonical UUID of any version in any case (exactly 36 characters,
 * hyphens at 8, 13, 18, 23, hex digits elsewhere) and write it lowercase to
 * out; in may be NULL. 0, or -1 when in is not one (out untouched). in and
 * out may be the same buffer. */
int uuid_parse(const char *in, char out[UUID_STR_LEN]);

#endif
