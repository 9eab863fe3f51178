/*
 * secret: secrets, keys and hashes. See secret.h.
 *
 * Encodings are OpenSSL's (EVP_EncodeBlock); base64url is that output with
 * two characters swapped and the padding dropped.
 */
#include "secret.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

void secret_to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int secret_new_hex(char out[SECRET_HEX_LEN])
{
	unsigned char b[32];
	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	secret_to_hex(b, sizeof(b), out);
	return 0;
}

int secret_new_whsec(char out[SECRET_WHSEC_LEN])
{
	unsigned char b[32];
	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	memcpy(out, "whsec_", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, b, sizeof(b)); /* 44 chars + NUL */
	return 0;
}

int secret_new_api_key(char out[SECRET_API_KEY_LEN])
{
	unsigned char b[32];
	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	memcpy(out, "hk_", 3);
	int n = EVP_EncodeBlock((unsigned char *)out + 3, b, sizeof(b));
	/* base64 → base64url, without the padding */
	for (int i = 0; i < n; i++) {
		char *c = &out[3 + i];
		if (*c == '+')
			*c = '-';
		else if (*c == '/')
			*c = '_';
	}
	while (n > 0 && out[3 + n - 1] == '=')
		n--;
	out[3 + n] = '\0';
	return 0;
}

void secret_sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 32;
	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}
