/*
 * unit_sign: delivery signatures, secrets and keys.
 * The Standard Webhooks test vector is the published one; the other
 * expected values were computed independently with `openssl dgst -hmac`.
 */
#include <string.h>

#include "secret.h"
#include "sign.h"
#include "unit.h"

#define HEX_SECRET "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_vector(void)
{
	unsigned char key[SIGN_KEY_MAX];
	char sig[SIGN_STD_LEN];
	int kl = sign_key_from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key);
	CHECK_INT(kl, 24, "whsec_ key is the base64-decoded bytes");
	const char *body = "{\"test\": 2432232314}";
	CHECK(sign_standard(key, (size_t)kl, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
	                    strlen(body), sig) == 0, "signs");
	CHECK_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "Standard Webhooks test vector");
	CHECK(sign_standard(key, (size_t)kl, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body,
	                    strlen(body), sig) == 0 &&
	      strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") != 0,
	      "another timestamp gives another signature");
}

static void test_raw_secret(void)
{
	unsigned char key[SIGN_KEY_MAX];
	char sig[SIGN_STD_LEN], av[SIGN_AV_LEN];
	int kl = sign_key_from_secret(HEX_SECRET, key);
	CHECK_INT(kl, 64, "a raw secret's key is its own 64 bytes");
	CHECK(sign_standard(key, (size_t)kl, "msg_1", 1614265330, "{}", 2, sig) == 0, "signs raw");
	CHECK_STR(sig, "v1,ZZePDNe6t1TN4fZgJgNra5oLfrlL60yyUmfKbG8v5HM=", "standard signature, raw key");
	const char *body = "{\"test\": 2432232314}";
	CHECK(sign_agentvista(key, (size_t)kl, 1614265330, body, strlen(body), av) == 0, "signs AV");
	CHECK_STR(av, "t=1614265330,v1=c9f57d6e1a42b0750fc227dfa66bc8cad4250ed836d236469b232584a07e7da9",
	          "X-AgentVista-Signature matches openssl dgst -hmac");
}

static void test_bad_keys(void)
{
	unsigned char key[SIGN_KEY_MAX];
	CHECK(sign_key_from_secret("whsec_", key) < 0, "empty whsec_ refused");
	CHECK(sign_key_from_secret("whsec_abc", key) < 0, "whsec_ with bad base64 length refused");
	CHECK(sign_key_from_secret("whsec_!!!!", key) < 0, "whsec_ with non-base64 refused");
}

static void test_secrets(void)
{
	char hex[SECRET_HEX_LEN], hex2[SECRET_HEX_LEN], wh[SECRET_WHSEC_LEN], api[SECRET_API_KEY_LEN];
	CHECK(secret_new_hex(hex) == 0 && secret_new_hex(hex2) == 0, "hex secrets");
	CHECK(strlen(hex) == 64 && strspn(hex, "0123456789abcdef") == 64, "64 lowercase hex");
	CHECK(strcmp(hex, hex2) != 0, "two secrets differ");
	CHECK(secret_new_whsec(wh) == 0 && strncmp(wh, "whsec_", 6) == 0 && strlen(wh) == 50,
	      "whsec_ + 44 base64 characters");
	unsigned char key[SIGN_KEY_MAX];
	CHECK_INT(sign_key_from_secret(wh, key), 32, "a whsec_ secret decodes to 32 bytes");
	CHECK(secret_new_api_key(api) == 0 && strncmp(api, "hk_", 3) == 0 && strlen(api) == 46 &&
	      strcspn(api + 3, "+/=") == 43, "API key: hk_ + 43 base64url characters");
	unsigned char h[32];
	char hx[65];
	secret_sha256("abc", 3, h);
	secret_to_hex(h, 32, hx);
	CHECK_STR(hx, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "SHA-256(abc)");
}

int main(void)
{
	test_vector();
	test_raw_secret();
	test_bad_keys();
	test_secrets();
	return unit_done();
}
