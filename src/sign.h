/*
 * sign: the signatures a delivery carries (spec "What a delivery sends").
 *
 *   webhook-signature:      v1,<base64(HMAC-SHA256(key, "<id>.<ts>.<body>"))>
 *   X-AgentVista-Signature: t=<ts>,v1=<hex(HMAC-SHA256(key, "<ts>.<body>"))>
 *
 * The key: for a whsec_<base64> secret the decoded bytes, else the secret
 * string's own bytes; so "whsec_" + base64(raw secret) verifies with any
 * Standard Webhooks library. Callers turn the stored secret into key bytes
 * once per delivery (sign_key_from_secret) and sign with them.
 *
 * On the hot path: no allocation of our own, the message is fed to the MAC in
 * pieces (never concatenated), and each thread reuses one MAC context. All
 * functions are thread-safe.
 */
#ifndef HK_SIGN_H
#define HK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_KEY_MAX 128 /* longest key: a raw secret of 128 bytes, or 128 decoded */
#define SIGN_STD_LEN 64  /* "v1," + 44 base64 characters + NUL = 48 */
#define SIGN_AV_LEN 96   /* "t=" + up to 20 digits + ",v1=" + 64 hex + NUL = 91 */

/* The HMAC key bytes of a secret, into key (OUT). For "whsec_<base64>":
 * the decoded bytes; the base64 must be standard, padded, non-empty, with no
 * whitespace. Otherwise: the secret's own bytes, 1 to SIGN_KEY_MAX of them.
 * Returns the key length, or -1 when the secret is NULL, empty, too long or
 * malformed (key contents then unspecified). */
int sign_key_from_secret(const char *secret, unsigned char key[SIGN_KEY_MAX]);

/* The webhook-signature value for msg_id (NUL-terminated), the Unix-seconds
 * timestamp ts and body_len bytes of body (NULL allowed when body_len is 0),
 * written NUL-terminated to out. 0, or -1 when OpenSSL fails (out then
 * unspecified: do not send it). */
int sign_standard(const unsigned char *key, size_t keylen, const char *msg_id, int64_t ts,
                  const char *body, size_t body_len, char out[SIGN_STD_LEN]);

/* The X-AgentVista-Signature value (lowercase hex) for ts and body into out,
 * as sign_standard. 0, or -1 when OpenSSL fails. */
int sign_agentvista(const unsigned char *key, size_t keylen, int64_t ts, const char *body,
                    size_t body_len, char out[SIGN_AV_LEN]);

#endif
