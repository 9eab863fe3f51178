/*
 * sign: HMAC-SHA256 signatures on OpenSSL's EVP_MAC. See sign.h.
 *
 * The MAC algorithm is fetched once per process; each thread keeps one
 * EVP_MAC_CTX (under a pthread key, freed at thread exit) and re-keys it per delivery, so signing costs
 * no allocation after a thread's first signature.
 */
#include "sign.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "secret.h"

static EVP_MAC *hmac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key; /* this thread's EVP_MAC_CTX, freed when it exits */

static void free_ctx(void *ctx)
{
	EVP_MAC_CTX_free(ctx);
}

static void fetch_hmac(void)
{
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	pthread_key_create(&ctx_key, free_ctx);
}

int sign_key_from_secret(const char *secret, unsigned char key[SIGN_KEY_MAX])
{
	size_t n = strlen(secret);
	if (strncmp(secret, "whsec_", 6) != 0) {
		if (n > SIGN_KEY_MAX)
			return -1;
		memcpy(key, secret, n);
		return (int)n;
	}
	const char *b64 = secret + 6;
	size_t bl = n - 6;
	if (bl == 0 || bl % 4 != 0 || bl / 4 * 3 > SIGN_KEY_MAX)
		return -1;
	int len = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)bl);
	if (len < 0)
		return -1;
	/* EVP_DecodeBlock counts padding as zero bytes: take them back off. */
	for (size_t i = bl; i > 0 && b64[i - 1] == '='; i--)
		len--;
	return len;
}

/* HMAC-SHA256 over up to four pieces into mac[32]. */
static int hmac_pieces(const unsigned char *key, size_t keylen, const void *const *parts,
                       const size_t *lens, int nparts, unsigned char mac[32])
{
	pthread_once(&hmac_once, fetch_hmac);
	if (!hmac)
		return -1;
	EVP_MAC_CTX *ctx = pthread_getspecific(ctx_key);
	if (!ctx) {
		if (!(ctx = EVP_MAC_CTX_new(hmac)))
			return -1;
		pthread_setspecific(ctx_key, ctx);
	}
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	if (!EVP_MAC_init(ctx, key, keylen, params))
		return -1;
	for (int i = 0; i < nparts; i++)
		if (!EVP_MAC_update(ctx, parts[i], lens[i]))
			return -1;
	size_t outl = 0;
	return EVP_MAC_final(ctx, mac, &outl, 32) && outl == 32 ? 0 : -1;
}

int sign_standard(const unsigned char *key, size_t keylen, const char *msg_id, int64_t ts,
                  const char *body, size_t body_len, char out[SIGN_STD_LEN])
{
	char mid[32];
	int ml = snprintf(mid, sizeof(mid), ".%lld.", (long long)ts);
	const void *parts[] = { msg_id, mid, body };
	size_t lens[] = { strlen(msg_id), (size_t)ml, body_len };
	unsigned char mac[32];
	if (hmac_pieces(key, keylen, parts, lens, 3, mac) != 0)
		return -1;
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, sizeof(mac));
	return 0;
}

int sign_agentvista(const unsigned char *key, size_t keylen, int64_t ts, const char *body,
                    size_t body_len, char out[SIGN_AV_LEN])
{
	char t[32];
	int tl = snprintf(t, sizeof(t), "%lld.", (long long)ts);
	const void *parts[] = { t, body };
	size_t lens[] = { (size_t)tl, body_len };
	unsigned char mac[32];
	if (hmac_pieces(key, keylen, parts, lens, 2, mac) != 0)
		return -1;
	int n = snprintf(out, SIGN_AV_LEN, "t=%lld,v1=", (long long)ts);
	secret_to_hex(mac, sizeof(mac), out + n);
	return 0;
}
