/*
 * sign: HMAC-SHA256 signatures on OpenSSL's EVP_MAC. See sign.h.
 *
 * The HMAC algorithm is fetched once per process (pthread_once). Each thread
 * keeps one EVP_MAC_CTX under a pthread key, created with its digest set on
 * the thread's first signature and freed when the thread exits; a signature
 * only re-keys it (EVP_MAC_init with the key and no parameters), so the hot
 * path neither allocates nor looks the digest up again.
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
static int ctx_key_ok;

static void free_ctx(void *ctx)
{
	EVP_MAC_CTX_free(ctx);
}

static void fetch_hmac(void)
{
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ctx_key_ok = pthread_key_create(&ctx_key, free_ctx) == 0;
}

/* This thread's MAC context, made on first use; NULL when OpenSSL fails. */
static EVP_MAC_CTX *thread_ctx(void)
{
	pthread_once(&hmac_once, fetch_hmac);
	if (!hmac || !ctx_key_ok)
		return NULL;
	EVP_MAC_CTX *ctx = pthread_getspecific(ctx_key);
	if (ctx)
		return ctx;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	if (!(ctx = EVP_MAC_CTX_new(hmac)))
		return NULL;
	if (!EVP_MAC_CTX_set_params(ctx, params) || pthread_setspecific(ctx_key, ctx) != 0) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Standard base64 with padding: length a multiple of 4, only the alphabet,
 * at most two '=' and only at the end. EVP_DecodeBlock alone would also take
 * surrounding whitespace and decode '=' in the middle. */
static int valid_base64(const char *s, size_t n)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (n == 0 || n % 4 != 0)
		return 0;
	size_t body = strspn(s, alphabet);
	size_t pad = n - body;
	return pad <= 2 && strspn(s + body, "=") == pad;
}

int sign_key_from_secret(const char *secret, unsigned char key[SIGN_KEY_MAX])
{
	if (!secret)
		return -1;
	size_t n = strlen(secret);
	if (strncmp(secret, "whsec_", 6) != 0) {
		if (n == 0 || n > SIGN_KEY_MAX)
			return -1;
		memcpy(key, secret, n);
		return (int)n;
	}
	const char *b64 = secret + 6;
	size_t bl = n - 6;
	if (!valid_base64(b64, bl) || bl / 4 * 3 > SIGN_KEY_MAX)
		return -1;
	int len = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)bl);
	if (len < 0)
		return -1;
	/* EVP_DecodeBlock counts padding as zero bytes: take them back off. */
	for (size_t i = bl; i > 0 && b64[i - 1] == '='; i--)
		len--;
	return len > 0 ? len : -1;
}

/* HMAC-SHA256 over nparts pieces into mac[32]. */
static int hmac_pieces(const unsigned char *key, size_t keylen, const void *const *parts,
                       const size_t *lens, int nparts, unsigned char mac[32])
{
	EVP_MAC_CTX *ctx = thread_ctx();
	if (!ctx || !EVP_MAC_init(ctx, key, keylen, NULL))
		return -1;
	for (int i = 0; i < nparts; i++)
		if (lens[i] && !EVP_MAC_update(ctx, parts[i], lens[i]))
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
	EVP_EncodeBlock((unsigned char *)out + 3, mac, sizeof(mac)); /* 44 chars + NUL */
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
