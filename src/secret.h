/*
 * secret: random secrets and keys, and SHA-256, from OpenSSL.
 *
 * All randomness comes from RAND_bytes (the OS CSPRNG behind OpenSSL), 32
 * bytes (256 bits) per secret. Each generator writes a NUL-terminated string
 * and returns 0, or -1 when no randomness could be had (out untouched).
 * All are thread-safe; none allocates (beyond OpenSSL's own first-use setup).
 */
#ifndef HK_SECRET_H
#define HK_SECRET_H

#include <stddef.h>

#define SECRET_HEX_LEN 65     /* 64 hex characters + NUL */
#define SECRET_WHSEC_LEN 51   /* "whsec_" + 44 base64 characters + NUL */
#define SECRET_API_KEY_LEN 48 /* "hk_" + 43 base64url characters + NUL */

/* An organization endpoint secret: 32 random bytes as 64 lowercase hex. */
int secret_new_hex(char out[SECRET_HEX_LEN]);
/* A workspace secret: "whsec_" + base64 of 32 random bytes. */
int secret_new_whsec(char out[SECRET_WHSEC_LEN]);
/* An API key: "hk_" + unpadded base64url of 32 random bytes. */
int secret_new_api_key(char out[SECRET_API_KEY_LEN]);

/* SHA-256 of len bytes at data into out (how API keys are stored). */
void secret_sha256(const void *data, size_t len, unsigned char out[32]);

/* n bytes as 2n lowercase hex characters and a NUL: out holds 2n+1 bytes. */
void secret_to_hex(const unsigned char *in, size_t n, char *out);

#endif
