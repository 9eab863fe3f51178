/*
 * sign: the signatures a delivery carries (spec "What a delivery sends").
 *
 *   webhook-signature:      v1,<base64(HMAC-SHA256(key, "<id>.<ts>.<body>"))>
 *   X-AgentVista-Signature: t=<ts>,v1=<hex(HMAC-SHA256(key, "<ts>.<body>"))>
 *
 * The key: for a whsec_<base64> secret the decoded bytes, else the secret
 * string's own bytes. On the hot path: no allocation, the message is fed to
 * the MAC in pieces, and each thread reuses one MAC context.
 */
#ifndef HK_SIGN_H
#define HK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_KEY_MAX 128
#define SIGN_STD_LEN 64
#define SIGN_AV_LEN 96

/* The HMAC key bytes of a secret; its length, or -1 when malformed. */
int sign_key_from_secret(const char *secret, unsigned char key[SIGN_KEY_MAX]);

/* Standard Webhooks signature into out. 0, or -1 on failure. */
int sign_standard(const unsigned char *key, size_t keylen, const char *msg_id, int64_t ts,
                  const char *body, size_t body_len, char out[SIGN_STD_LEN]);

/* X-AgentVista-Signature value into out. 0, or -1 on failure. */
int sign_agentvista(const unsigned char *key, size_t keylen, int64_t ts, const char *body,
                    size_t body_len, char out[SIGN_AV_LEN]);

#endif
